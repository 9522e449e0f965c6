"""Accuracy targets: the accuracy each configuration is timed to, and when (and at what energy) a cell reached it."""

from __future__ import annotations

import pandas as pd

from bench.pairing import CONFIG, usable


def reached(curve: list[dict], target: float) -> dict | None:
    """The first checkpoint that reached target, or None."""
    for point in curve or []:
        if point["accuracy"] is not None and point["accuracy"] >= target - 1e-12:
            return point
    return None


def time_to_accuracy(curve: list[dict], target: float) -> float | None:
    """Training seconds at the first checkpoint that reached target, or None."""
    point = reached(curve, target)
    return point["seconds"] if point else None


def energy_to_accuracy(curve: list[dict], energy_by_step: list | None, target: float) -> float | None:
    """Joules spent training up to the first checkpoint that reached target (Zeus's energy-to-accuracy): the
    windows of the blocks before it (evaluation excluded, like time to accuracy); None when either is unknown."""
    point = reached(curve, target)
    if point is None or not energy_by_step:
        return None
    return max((joules for steps, joules in energy_by_step if steps <= point["step"]), default=0.0)


def common_accuracy(group: pd.DataFrame) -> float | None:
    """The highest accuracy that every device with an accuracy curve reached."""
    best = [max(p["accuracy"] for p in c) for c in group["accuracy_curve"] if c]
    return min(best) if best else None


CHANCE_MULTIPLE = 2  # a default target below twice chance (20% of 10 classes) says nothing about learning


def floor(group: pd.DataFrame) -> float:
    """Twice the accuracy of a uniform guess over the configuration's classes (10 where unrecorded)."""
    classes = group["classes"].dropna() if "classes" in group else pd.Series(dtype=float)
    return CHANCE_MULTIPLE / (float(classes.iloc[0]) if len(classes) else 10.0)


def targets(df: pd.DataFrame, target: float | None = None) -> dict[tuple, float | None]:
    """Per configuration (pairing.CONFIG): the given target accuracy, or else the highest accuracy that every
    device of that configuration reached, when that is at least twice chance (None below: no device learned
    enough for a time to accuracy to mean anything)."""
    out = {}
    for key, group in usable(df).groupby(CONFIG, sort=True, dropna=False):
        common = common_accuracy(group)
        out[key] = target if target is not None else (common if common is not None and common >= floor(group)
                                                      else None)
    return out


def config_of(r: pd.Series) -> tuple:
    """A row's configuration, as the keys of targets() are written."""
    return tuple(r[c] for c in CONFIG)
