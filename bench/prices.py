"""Hourly prices per device kind and what a cell costs: per epoch and to reach a target accuracy.

    bench report results/ --price cpu=0.19 --price cuda=3.06     (any currency, per hour)
"""

from __future__ import annotations

import math
import re

import pandas as pd

from bench.config import steps_per_epoch
from bench.errors import UserError
from bench.labels import labels
from bench.pairing import MACHINE, usable
from bench.targets import config_of, targets, time_to_accuracy

COLUMNS = ["label", "device", MACHINE, "dataset", "pipeline", "batch_size", "width", "price_per_hour",
           "epoch_seconds", "cost_per_epoch", "target_accuracy", "seconds_to_target", "cost_to_target"]


def parse(items: list[str] | None) -> dict[str, float]:
    """['cpu=0.19', 'cuda=3.06'] -> {'cpu': 0.19, 'cuda': 3.06}; a key is a device kind or a device (cuda:1)."""
    prices: dict[str, float] = {}
    for item in items or []:
        m = re.fullmatch(r"\s*([A-Za-z]+(?::\d+)?)\s*=\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*", item)
        if not m:
            raise UserError(f"cannot read --price {item!r}: write DEVICE=PRICE_PER_HOUR, such as "
                            f"--price cpu=0.19 --price cuda=3.06")
        value = float(m.group(2))
        if not math.isfinite(value):
            raise UserError(f"--price {item!r} is not a finite number")
        prices[m.group(1).lower()] = value
    return prices


def price_for(prices: dict[str, float], device: str) -> float | None:
    """The price of the exact device (cuda:1) when given, else of its kind (cuda)."""
    if device in prices:
        return prices[device]
    return prices.get(device.split(":")[0])


def costs(df: pd.DataFrame, prices: dict[str, float], target: float | None = None) -> pd.DataFrame:
    """One row per ok cell: epoch seconds (full batches x median step), time to the target accuracy
    (training seconds, evaluation excluded) and, where a price is known, what each costs."""
    ok = usable(df)
    if ok.empty:
        return pd.DataFrame(columns=COLUMNS)
    ok = ok.assign(label=labels(ok))
    goals = targets(df, target)
    rows = []
    for _, r in ok.iterrows():
        price = price_for(prices, r["device"])
        train_size = r.get("train_size")
        epoch = None
        if isinstance(train_size, (int, float)) and not pd.isna(train_size) and train_size > 0:
            epoch = steps_per_epoch(int(train_size), int(r["batch_size"])) * r["batch_size"] / r["images_per_s"]
        goal = goals.get(config_of(r))
        curve = r["accuracy_curve"] if isinstance(r["accuracy_curve"], list) else []
        tta = time_to_accuracy(curve, goal) if goal is not None else None
        rows.append({
            "label": r["label"], "device": r["device"], MACHINE: r[MACHINE], "dataset": r["dataset"],
            "pipeline": r["pipeline"], "batch_size": r["batch_size"], "width": r["width"], "price_per_hour": price,
            "epoch_seconds": epoch, "cost_per_epoch": epoch * price / 3600 if epoch and price is not None else None,
            "target_accuracy": goal, "seconds_to_target": tta,
            "cost_to_target": tta * price / 3600 if tta is not None and price is not None else None,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def money(v) -> str:
    """Three significant digits in plain decimals (0.000302, 0.0254, 1.50): costs here are often tiny."""
    if v is None or pd.isna(v):
        return "-"
    if v == 0:
        return "0"
    return f"{v:.{max(2, 2 - math.floor(math.log10(abs(v))))}f}"


def cheapest(c: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per device, the cell with the lowest value of a cost column (cells without one are skipped)."""
    priced = c[c[column].notna()]
    if priced.empty:
        return priced
    return priced.loc[priced.groupby("label")[column].idxmin()]
