"""`--threads auto`: a short probe of candidate CPU thread counts for one cell, picking the fastest.

All cores is not the CPU at its best for a small network: on a 16-core host a batch-4 step took 2.3 ms with 16
threads and 1.0 ms with 2. So each CPU cell times a few steps at 1, 2, 4, ... threads, up to the cores it may
use, during its warm-up (off the clock, its weights restored afterwards), and trains at the fastest.
"""

from __future__ import annotations

from typing import Callable, Iterator

from bench import devices

PROBE_SECONDS = 0.15  # per candidate thread count, about
PROBE_MIN_STEPS = 3
PROBE_MAX_STEPS = 200
GIVE_UP = 1.5  # fewer threads than a count this much slower than the best so far are not tried


def candidates(cores: int) -> list[int]:
    """1, 2, 4, ... below the cores, and the cores themselves."""
    out, n = [], 1
    while n < cores:
        out.append(n)
        n *= 2
    return out + [cores]


def probe(step: Callable, batches: Iterator, counts: list[int], clock: Callable[[], float],
          step_seconds: float | None, device: str = "cpu") -> dict[int, float]:
    """Seconds per step at each thread count, most threads first: one untimed step after switching (the pool
    spins up), then about PROBE_SECONDS of steps. Once a count is GIVE_UP times slower than the best so far,
    fewer threads are not tried (a large batch only gets slower with fewer, and each try costs steps).
    step_seconds, a rough estimate, sizes the probe."""
    steps = PROBE_MIN_STEPS
    if step_seconds and step_seconds > 0:
        steps = max(PROBE_MIN_STEPS, min(PROBE_MAX_STEPS, int(PROBE_SECONDS / step_seconds)))
    out: dict[int, float] = {}
    for n in sorted(counts, reverse=True):
        with devices.cpu_threads(n):
            step(*next(batches))
            devices.synchronize(device)
            t0 = clock()
            for _ in range(steps):
                step(*next(batches))
            devices.synchronize(device)
            out[n] = (clock() - t0) / steps
        if out[n] > GIVE_UP * min(out.values()):
            break
    return out


TIE = 0.05  # counts whose steps are within this of the fastest are a tie: a short probe cannot tell them apart


def fastest(seconds: dict[int, float]) -> int:
    """The fewest threads whose step is within TIE of the shortest: a tie goes to fewer threads, which leave
    more of the machine to the DataLoader's workers and vary less from run to run."""
    best = min(seconds.values())
    return min(n for n, s in seconds.items() if s <= best * (1 + TIE))
