"""Statistics on small hand-checkable samples, with the expected numbers written out."""

import math

import numpy as np
import pytest

from bench import stats


def test_median_quantiles_iqr():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([1, 2, 3, 4]) == 2.5
    # linear interpolation: position q*(n-1) in the sorted sample
    assert stats.quantile([1, 2, 3, 4, 5], 0.25) == 2
    assert stats.quantile([1, 2, 3, 4, 5], 0.75) == 4
    assert stats.quantile([1, 2, 3, 4], 0.10) == pytest.approx(1.3)
    assert stats.iqr([1, 2, 3, 4, 5]) == 2
    assert stats.relative_iqr([1, 2, 3, 4, 5]) == pytest.approx(2 / 3)


def test_coefficient_of_variation():
    # mean 2, sample standard deviation 1
    assert stats.coefficient_of_variation([1, 2, 3]) == pytest.approx(0.5)
    assert stats.coefficient_of_variation([5.0]) == 0.0


def test_noisy_threshold_is_ten_percent_of_the_median():
    assert not stats.is_noisy([0.95, 1.0, 1.0, 1.0, 1.05])  # IQR 0
    assert stats.is_noisy([0.8, 0.9, 1.0, 1.1, 1.2])  # IQR 0.2 / median 1.0 = 20%
    assert not stats.is_noisy([1.0])


def test_bootstrap_interval_of_a_constant_is_that_constant():
    assert stats.bootstrap_median_ci([2.0] * 10) == (2.0, 2.0)
    assert stats.bootstrap_ratio_ci([6.0] * 5, [2.0] * 7) == (3.0, 3.0)
    assert stats.interval(stats.bootstrap_medians([2.0] * 5)) == (2.0, 2.0)


def test_bootstrap_interval_brackets_the_median_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small = rng.normal(10, 1, 20)
    large = rng.normal(10, 1, 2000)
    lo_s, hi_s = stats.bootstrap_median_ci(small)
    lo_l, hi_l = stats.bootstrap_median_ci(large)
    assert lo_s <= stats.median(small) <= hi_s
    assert lo_l <= 10 <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 4  # width ~ 1/sqrt(n): 10x the data, a third of the width


def test_bootstrap_interval_is_repeatable():
    data = [1.0, 1.2, 0.9, 1.1, 1.05, 0.95]
    assert stats.bootstrap_median_ci(data) == stats.bootstrap_median_ci(data)


def test_speedup_interval_contains_the_ratio_of_medians():
    rng = np.random.default_rng(1)
    cpu = rng.normal(4.0, 0.2, 200)  # ms per step
    gpu = rng.normal(1.0, 0.05, 200)
    lo, hi = stats.bootstrap_ratio_ci(cpu, gpu)
    ratio = stats.median(cpu) / stats.median(gpu)
    assert lo <= ratio <= hi
    assert 3.8 < lo and hi < 4.2


def test_empty_sample_is_an_error_not_nan():
    with pytest.raises(ValueError, match="no values"):
        stats.median([])
    assert math.isinf(stats.relative_iqr([0.0, 0.0]))
