"""Statistics over raw timings, as pure functions: median, quantiles, IQR, bootstrap intervals over blocks."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

NOISY_RELATIVE_IQR = 0.10  # IQR/median above this: the machine was noisy (torch.utils.benchmark's threshold)
# Run-to-run variation a single run cannot see in its own blocks (a fresh process, memory placement, DataLoader
# timing, a neighbour on the host): the coefficient of variation of images/s between runs of one cell, measured
# with benchmarks/calibration.py: three sets of 12 fresh runs of the tutorial configuration on the quiet 2-core
# VM (no other program above 10% of its CPUs) gave 5.7%, 9.1% and 9.7%; the host drifts, so 10% is taken.
# Every interval folds it in, so that it covers what another run of the same cell would measure, not only what
# this run's blocks agree on.
RUN_TO_RUN_CV = 0.10
BUSY_OTHERS_CPU = 0.10  # other processes used more than this fraction of all cores during a cell: busy
BUSY_STEAL = 0.05  # a hypervisor stole more than this fraction of CPU time: busy


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
MAX_BLOCKS = 4096  # blocks a bootstrap resamples; beyond this, neighbours are merged into this many runs
LEVEL = 0.95  # two-sided interval level


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of a bootstrap distribution."""
    tail = (1 - level) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    return float(low), float(high)


def run_to_run(rates: np.ndarray, seed: int = 0, cv: float = RUN_TO_RUN_CV) -> np.ndarray:
    """A bootstrap distribution of a rate widened by the variation between runs: each resample scaled by an
    independent lognormal factor of coefficient of variation cv."""
    sigma = np.sqrt(np.log1p(cv**2))
    factors = np.random.default_rng(seed + 1).lognormal(-sigma**2 / 2, sigma, size=len(rates))
    return rates * factors


def block_rates(steps: Sequence[float], seconds: Sequence[float], resamples: int = RESAMPLES,
                seed: int = 0) -> np.ndarray:
    """Bootstrap distribution of steps per second over blocks: each resample draws as many blocks as were run,
    with replacement, and divides their steps by their seconds. Blocks, not steps, are the unit, so slow
    stretches of a run (another program, a stall) widen the interval as they widen run-to-run differences.
    More than MAX_BLOCKS blocks (a week-long cell, a pytest-benchmark's million rounds) are merged into
    MAX_BLOCKS runs of neighbouring blocks first, so memory and time stay bounded (resamples x MAX_BLOCKS)."""
    n, s = np.asarray(steps, dtype=float), np.asarray(seconds, dtype=float)
    if n.size == 0:
        raise ValueError("no blocks: a rate needs at least one timed block")
    if n.size > MAX_BLOCKS:
        starts = np.linspace(0, n.size, MAX_BLOCKS, endpoint=False).astype(int)
        n, s = np.add.reduceat(n, starts), np.add.reduceat(s, starts)
    idx = np.random.default_rng(seed).integers(0, n.size, size=(resamples, n.size))
    return n[idx].sum(axis=1) / s[idx].sum(axis=1)
