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


def test_block_bootstrap_of_equal_blocks_is_their_rate():
    rates = stats.block_rates([10, 10, 10], [0.5, 0.5, 0.5])
    assert stats.interval(rates) == pytest.approx((20.0, 20.0))


def test_block_bootstrap_weights_blocks_by_their_time():
    # a resample of one 8-step block of 0.08 s and one 100-step block of 0.5 s runs 108 steps in 0.58 s
    rates = stats.block_rates([8, 100], [0.08, 0.5], resamples=4000)
    assert set(np.round(np.unique(rates), 6)) == {100.0, round(108 / 0.58, 6), 200.0}


def test_block_interval_brackets_the_rate_and_narrows_with_more_blocks():
    rng = np.random.default_rng(0)

    def interval(blocks):
        seconds = rng.normal(0.5, 0.05, blocks)  # 100 steps per block: 200 steps/s, give or take 10%
        low, high = stats.interval(stats.block_rates([100] * blocks, seconds))
        return low, high, 100 * blocks / seconds.sum()

    lo_s, hi_s, rate_s = interval(20)
    lo_l, hi_l, rate_l = interval(2000)
    assert lo_s <= rate_s <= hi_s and lo_l <= 200 <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 4  # width ~ 1/sqrt(blocks): 100x the blocks, a tenth of the width


def test_block_bootstrap_is_repeatable_and_seeded():
    n, s = [5, 6, 5, 7], [0.1, 0.13, 0.09, 0.16]
    assert (stats.block_rates(n, s) == stats.block_rates(n, s)).all()
    assert not (stats.block_rates(n, s, seed=1) == stats.block_rates(n, s, seed=2)).all()


def test_a_stall_widens_the_interval():
    steady = stats.interval(stats.block_rates([100] * 20, [0.5] * 20))
    stalled = stats.interval(stats.block_rates([100] * 20, [0.5] * 18 + [5.0, 5.0]))
    assert steady[1] - steady[0] == 0 and stalled[1] - stalled[0] > 20


def test_empty_sample_is_an_error_not_nan():
    with pytest.raises(ValueError, match="no values"):
        stats.median([])
    with pytest.raises(ValueError, match="no blocks"):
        stats.block_rates([], [])
    assert math.isinf(stats.relative_iqr([0.0, 0.0]))
