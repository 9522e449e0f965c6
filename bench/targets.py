"""Accuracy targets: the accuracy each configuration is timed to, and when a cell reached it."""

from __future__ import annotations

import pandas as pd

from bench.pairing import CONFIG, usable


def time_to_accuracy(curve: list[dict], target: float) -> float | None:
    """Training seconds at the first checkpoint that reached target, or None."""
    for point in curve or []:
        if point["accuracy"] is not None and point["accuracy"] >= target - 1e-12:
            return point["seconds"]
    return None


def common_accuracy(group: pd.DataFrame) -> float | None:
    """The highest accuracy that every device with an accuracy curve reached."""
    best = [max(p["accuracy"] for p in c) for c in group["accuracy_curve"] if c]
    return min(best) if best else None


def targets(df: pd.DataFrame, target: float | None = None) -> dict[tuple, float | None]:
    """Per configuration (pairing.CONFIG): the given target accuracy, or else the highest accuracy that every
    device of that configuration reached."""
    out = {}
    for key, group in usable(df).groupby(CONFIG, sort=True, dropna=False):
        out[key] = target if target is not None else common_accuracy(group)
    return out


def config_of(r: pd.Series) -> tuple:
    """A row's configuration, as the keys of targets() are written."""
    return tuple(r[c] for c in CONFIG)
