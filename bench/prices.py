"""What a cell costs: money from hourly prices per device kind, and energy from the record's counters, each per
epoch or image and to reach a target accuracy.

    bench report results/ --price cpu=0.19 --price cuda=3.06     (any currency, per hour)
"""

from __future__ import annotations

import math
import re

import pandas as pd

from bench.config import steps_per_epoch
from bench.errors import UserError
from bench.labels import labels
from bench.method import NVML_MIN_SECONDS
from bench.pairing import MACHINE, usable
from bench.results import too_short
from bench.targets import config_of, energy_to_accuracy, targets, time_to_accuracy

COLUMNS = ["label", "device", MACHINE, "dataset", "pipeline", "batch_size", "width", "price_per_hour",
           "epoch_seconds", "cost_per_epoch", "target_accuracy", "seconds_to_target", "cost_to_target"]
ENERGY_COLUMNS = ["label", "device", MACHINE, "dataset", "pipeline", "batch_size", "width", "energy_method",
                  "energy_how", "joules_per_image", "watts", "target_accuracy", "energy_to_target",
                  "host_energy_method", "host_how", "host_joules_per_image", "host_watts"]
MEASURED = ("nvml", "rapl")  # read from a counter; an estimate is the user's watts, not a measurement


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


def _cells(df: pd.DataFrame, target: float | None):
    """The ok cells, labelled, each with its configuration's target accuracy and its accuracy curve."""
    ok = usable(df)
    if ok.empty:
        return
    ok = ok.assign(label=labels(ok))
    goals = targets(df, target)
    for _, r in ok.iterrows():
        yield r, goals.get(config_of(r)), r["accuracy_curve"] if isinstance(r["accuracy_curve"], list) else []


def costs(df: pd.DataFrame, prices: dict[str, float], target: float | None = None) -> pd.DataFrame:
    """One row per ok cell: epoch seconds (full batches x median step), time to the target accuracy
    (training seconds, evaluation excluded) and, where a price is known, what each costs."""
    rows = []
    for r, goal, curve in _cells(df, target):
        price = price_for(prices, r["device"])
        train_size = r.get("train_size")
        epoch = None
        if isinstance(train_size, (int, float)) and not pd.isna(train_size) and train_size > 0:
            epoch = steps_per_epoch(int(train_size), int(r["batch_size"])) * r["batch_size"] / r["images_per_s"]
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


TOO_SHORT = ", too short to read: "  # how() of an NVML total under NVML_MIN_SECONDS; footnoted() splits on it


def how(figure: dict | None) -> str:
    """How one device's figure was obtained, in words: the counter, the watts given, or why there is none."""
    if not isinstance(figure, dict):
        return "not recorded (written before bench measured energy, or by pytest-benchmark)"
    method = figure.get("method")
    if method in MEASURED and too_short(figure):
        return (f"{method}{TOO_SHORT}{figure.get('seconds', 0):.2g} s of windows, under "
                f"{NVML_MIN_SECONDS:g} s (NVML refreshes every 20-100 ms); train longer for a figure")
    if method in MEASURED:
        return f"{method}, measured"
    if method == "estimate":
        return f"estimate from {figure.get('source') or 'the watts given'}, not measured"
    return f"unavailable: {figure.get('reason') or 'no reason recorded'}"


def no_figure(text) -> bool:
    """Whether how() said there is no figure at all: unavailable, or from before energy was recorded."""
    return not isinstance(text, str) or text.startswith(("unavailable: ", "not recorded"))


def footnoted(text: str) -> tuple[str, str | None]:
    """What how() said, split for a table: a short cell, and the reason to number below the table (None where the
    cell says it all)."""
    if TOO_SHORT in text:  # "nvml, too short to read: 0.15 s of windows, under 1 s (...)..."
        method, rest = text.split(TOO_SHORT, 1)
        return (f"{method}, too short ({rest.split(' of windows', 1)[0]})",
                f"{method}: its windows added up to under {NVML_MIN_SECONDS:g} s, and NVML's counter refreshes "
                f"every 20-100 ms, so no figure is taken from them; train the cell longer for one")
    if no_figure(text):
        return "unavailable", text.split(": ", 1)[1] if text.startswith("unavailable") else text
    return text, None


def energies(df: pd.DataFrame, target: float | None = None) -> pd.DataFrame:
    """One row per ok cell: joules per timed image, average watts and joules to the target accuracy for its
    device, how each was obtained, and, for a GPU cell, its host CPU packages' figures beside them."""
    rows = []
    for r, goal, curve in _cells(df, target):
        figures = r["energy"] if isinstance(r["energy"], dict) else {}
        by_step = r["energy_by_step"] if isinstance(r["energy_by_step"], list) else None
        gpu = r["device"] != "cpu"
        rows.append({
            "label": r["label"], "device": r["device"], MACHINE: r[MACHINE], "dataset": r["dataset"],
            "pipeline": r["pipeline"], "batch_size": r["batch_size"], "width": r["width"],
            "energy_method": r["energy_method"], "energy_how": how(figures.get(r["device"]) if figures else None),
            "joules_per_image": r["joules_per_image"], "watts": r["watts"], "target_accuracy": goal,
            "energy_to_target": energy_to_accuracy(curve, by_step, goal) if goal is not None else None,
            "host_energy_method": r["host_energy_method"] if gpu else None,
            "host_how": how(figures.get("cpu") if figures else None) if gpu else "",
            "host_joules_per_image": r["host_joules_per_image"] if gpu else None,
            "host_watts": r["host_watts"] if gpu else None,
        })
    return pd.DataFrame(rows, columns=ENERGY_COLUMNS)
