"""Deciding when the clock is read: blocks of steps, accuracy checkpoints, budget enforcement, step sampling."""

from __future__ import annotations

import math
import random

from bench.config import Budget
from bench.method import (FIRST_BLOCK_STEPS, MAX_BLOCK_STEPS, MIN_BLOCK_SECONDS, STEP_SAMPLE, TARGET_BLOCK_SECONDS,
                          TARGET_BLOCKS)


class Schedule:
    """Splits a budget into blocks that end exactly at accuracy checkpoints (work budgets) or soon after them
    (time budgets, where the clock is read only at block boundaries)."""

    def __init__(self, budget: Budget, total_steps: int | None, eval_points: int,
                 max_block_steps: int = MAX_BLOCK_STEPS, target_block_seconds: float = TARGET_BLOCK_SECONDS):
        self.budget = budget
        self.max_block_steps = max_block_steps
        self.target_block_seconds = target_block_seconds
        points = max(eval_points, 1)
        if budget.is_time:
            self.limit = budget.amount
        else:
            self.limit = float(total_steps)
        # progress marks in budget units (steps or seconds); evaluation happens at each one crossed
        marks = sorted({self.limit * k / points for k in range(1, points + 1)})
        if not budget.is_time:
            marks = sorted({max(1, round(m)) for m in marks})
        self.marks = marks
        self.evaluate = eval_points > 0
        self._next = 0

    def done(self, steps: int, seconds: float) -> bool:
        return self._position(steps, seconds) >= self.limit

    def _position(self, steps: int, seconds: float) -> float:
        return seconds if self.budget.is_time else steps

    def next_block(self, steps: int, seconds: float, step_seconds: float | None, provisional: bool = False) -> int:
        """How many steps to run before the next clock read; 0 once the budget is spent.

        step_seconds is the latest estimate of one step's time; provisional means it does not come from timed
        steps yet (say, from warm-up), so the block is kept to FIRST_BLOCK_STEPS at most."""
        if self.done(steps, seconds):
            return 0
        cap = self.max_block_steps
        if step_seconds and step_seconds > 0:
            cap = max(1, min(cap, int(self.block_seconds(step_seconds) / step_seconds)))
        if provisional or not step_seconds or step_seconds <= 0:
            cap = min(cap, FIRST_BLOCK_STEPS)
        target = self.marks[self._next] if self._next < len(self.marks) else self.limit
        if self.budget.is_time:
            if not step_seconds or step_seconds <= 0:
                return cap
            return max(1, min(cap, math.ceil((target - seconds) / step_seconds)))
        return max(1, min(cap, int(target) - steps))

    def block_seconds(self, step_seconds: float) -> float:
        """How long a block should last: about target_block_seconds, shorter when the whole budget is short,
        so every cell has about TARGET_BLOCKS blocks (the unit of its interval), but never under
        MIN_BLOCK_SECONDS."""
        expected = self.limit if self.budget.is_time else self.limit * step_seconds
        return min(self.target_block_seconds, max(MIN_BLOCK_SECONDS, expected / TARGET_BLOCKS))

    def checkpoint_due(self, steps: int, seconds: float) -> bool:
        """True once per mark crossed (several marks crossed by one block give one checkpoint)."""
        pos = self._position(steps, seconds)
        crossed = False
        while self._next < len(self.marks) and pos >= self.marks[self._next] - 1e-12:
            self._next += 1
            crossed = True
        return crossed and self.evaluate

    def progress(self, steps: int, seconds: float) -> float:
        return min(self._position(steps, seconds), self.limit)


class StepSample:
    """Per-step seconds: all of them up to `capacity`, then a uniform reservoir sample (seeded, so repeatable)."""

    def __init__(self, capacity: int = STEP_SAMPLE, seed: int = 0):
        self.capacity = capacity
        self.count = 0
        self.values: list[float] = []
        self._rng = random.Random(seed)

    def extend(self, seconds: list[float]) -> None:
        for s in seconds:
            self.count += 1
            if len(self.values) < self.capacity:
                self.values.append(s)
            else:
                j = self._rng.randrange(self.count)
                if j < self.capacity:
                    self.values[j] = s

    @property
    def sampled(self) -> bool:
        return self.count > len(self.values)
