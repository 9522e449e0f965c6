"""A cell prepared for micro-benchmarks: run k training steps, then synchronize the device once."""

from __future__ import annotations

import time

from bench import devices, tuning, variants
from bench.config import CellConfig
from bench.data import Dataset
from bench.preparation import build_model, prepare, restore_state, snapshot_state


class StepRunner:
    """The same model, optimizer, batches and step as `bench run` trains with, callable in rounds.

    run(k) does k steps (fetching each batch, as the cell's pipeline does) and synchronizes once at the end,
    so a timer around it measures the device's work, not just its enqueueing, with one synchronize per round.
    """

    def __init__(self, cell: CellConfig, data: Dataset):
        reason = variants.unsupported(cell.tune, cell.device, cell.pipeline)
        if reason:
            raise ValueError(reason)
        self.cell = cell
        net = build_model(cell, data)
        prep = prepare(cell, data, net)
        self.net = prep.net
        self.optimizer = prep.optimizer
        self.step = tuning.make_step(cell.tune, cell.device, prep.net, prep.optimizer,
                                     host_loss=cell.pipeline == "tutorial")
        self._batches = iter(prep.batches)

    def run(self, k: int = 1, sync: bool = True) -> None:
        """k steps, then (unless sync is False, for a timer that synchronizes itself) one synchronize."""
        with tuning.applied(self.cell.tune):
            for _ in range(k):
                self.step(*next(self._batches))
            if sync:
                devices.synchronize(self.cell.device)

    def warmup(self, k: int) -> None:
        """k steps off the record, then weights and optimizer state put back in place, as `bench run` warms
        up (a CUDA graph is captured, or a model compiled, during these steps)."""
        snapshot = snapshot_state(self.net, self.optimizer)
        self.run(k)
        restore_state(self.net, self.optimizer, snapshot)

    def losses(self, k: int) -> list[float]:
        """The training loss of each of the next k steps (for checking tuned paths against eager)."""
        with tuning.applied(self.cell.tune):
            return [float(self.step(*next(self._batches))) for _ in range(k)]

    def seconds_per_step(self, steps: int = 3, warmup: int = 2) -> float:
        """A rough estimate, for choosing how many steps a round holds."""
        self.run(warmup)
        t0 = time.perf_counter()
        self.run(steps)
        return (time.perf_counter() - t0) / steps

    def close(self) -> None:
        """Stop the DataLoader workers of the tutorial pipeline."""
        self._batches = None


def plan_rounds(step_seconds: float, round_seconds: float = 0.05, total_seconds: float = 2.0,
                min_rounds: int = 3, max_rounds: int = 50) -> tuple[int, int]:
    """(steps per round, rounds): rounds of at least round_seconds (so one synchronize and the timer's
    resolution are negligible), about total_seconds in all, and never fewer than min_rounds."""
    per_round = max(1, min(1000, round(round_seconds / max(step_seconds, 1e-9))))
    rounds = max(min_rounds, min(max_rounds, round(total_seconds / (per_round * step_seconds))))
    return per_round, rounds
