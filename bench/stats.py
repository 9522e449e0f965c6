"""Statistics over raw step times, as pure functions: median, quantiles, IQR, MAD, bootstrap intervals."""

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


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median (unscaled)."""
    a = _array(values)
    return float(np.median(np.abs(a - np.median(a))))


def relative_iqr(values: Sequence[float]) -> float:
    m = median(values)
    return iqr(values) / m if m else math.inf


def is_noisy(values: Sequence[float], threshold: float = NOISY_RELATIVE_IQR) -> bool:
    return len(values) > 1 and relative_iqr(values) > threshold


def coefficient_of_variation(values: Sequence[float]) -> float:
    a = _array(values)
    return float(np.std(a, ddof=1) / np.mean(a)) if a.size > 1 else 0.0


def _bootstrap_medians(a: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, a.size, size=(resamples, a.size))
    return np.median(a[idx], axis=1)


def bootstrap_median_ci(values: Sequence[float], level: float = 0.95, resamples: int = 2000,
                        seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the median (seeded: the same data give the same interval)."""
    a = _array(values)
    if a.size == 1:
        return float(a[0]), float(a[0])
    meds = _bootstrap_medians(a, resamples, np.random.default_rng(seed))
    tail = (1 - level) / 2
    return float(np.quantile(meds, tail)), float(np.quantile(meds, 1 - tail))


def bootstrap_ratio_ci(numerator: Sequence[float], denominator: Sequence[float], level: float = 0.95,
                       resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Interval of median(numerator) / median(denominator), resampling the two samples independently.

    For a speedup pass CPU step times as the numerator and GPU step times as the denominator."""
    a, b = _array(numerator), _array(denominator)
    rng = np.random.default_rng(seed)
    ratios = _bootstrap_medians(a, resamples, rng) / _bootstrap_medians(b, resamples, rng)
    tail = (1 - level) / 2
    return float(np.quantile(ratios, tail)), float(np.quantile(ratios, 1 - tail))


def bootstrap_change_ci(old: Sequence[float], new: Sequence[float], level: float = 0.95,
                        resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Interval of the relative change median(new)/median(old) - 1."""
    low, high = bootstrap_ratio_ci(new, old, level, resamples, seed)
    return low - 1, high - 1
