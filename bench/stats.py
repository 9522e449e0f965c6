"""Statistics over raw step times, as pure functions: median, quantiles, IQR, bootstrap intervals."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

NOISY_RELATIVE_IQR = 0.10  # IQR/median above this: the machine was noisy (torch.utils.benchmark's threshold)


def _array(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        raise ValueError("no values: a statistic needs at least one measurement")
    return a


def median(values: Sequence[float]) -> float:
    return float(np.median(_array(values)))


def quantile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default, and pandas')."""
    return float(np.quantile(_array(values), q))


def iqr(values: Sequence[float]) -> float:
    return quantile(values, 0.75) - quantile(values, 0.25)


def relative_iqr(values: Sequence[float]) -> float:
    m = median(values)
    return iqr(values) / m if m else math.inf


def is_noisy(values: Sequence[float], threshold: float = NOISY_RELATIVE_IQR) -> bool:
    return len(values) > 1 and relative_iqr(values) > threshold


def coefficient_of_variation(values: Sequence[float]) -> float:
    a = _array(values)
    return float(np.std(a, ddof=1) / np.mean(a)) if a.size > 1 else 0.0


RESAMPLES = 2000  # bootstrap resamples per interval
LEVEL = 0.95  # two-sided interval level


def bootstrap_medians(values: Sequence[float], resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """The medians of `resamples` resamples (with replacement) of values; seeded, so repeatable."""
    a = _array(values)
    if a.size == 1:
        return np.full(resamples, a[0])
    idx = np.random.default_rng(seed).integers(0, a.size, size=(resamples, a.size))
    return np.median(a[idx], axis=1)


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of a bootstrap distribution."""
    tail = (1 - level) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_median_ci(values: Sequence[float], level: float = LEVEL, resamples: int = RESAMPLES,
                        seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the median (seeded: the same data give the same interval)."""
    return interval(bootstrap_medians(values, resamples, seed), level)


def bootstrap_ratio_ci(numerator: Sequence[float], denominator: Sequence[float], level: float = LEVEL,
                       resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Interval of median(numerator) / median(denominator), resampling the two samples independently.

    For a speedup pass CPU step times as the numerator and GPU step times as the denominator."""
    ratios = bootstrap_medians(numerator, resamples, seed) / bootstrap_medians(denominator, resamples, seed + 1)
    return interval(ratios, level)
