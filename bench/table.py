"""Terminal tables of device timings per configuration, with intervals, built from the results DataFrame."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from bench import stats

CONFIG_COLUMNS = ["dataset", "pipeline", "batch_size", "width", "budget"]
OPTIONAL_CONFIG_COLUMNS = ["variant"]  # grouped on when present: the --tune variant asked for


def config_columns(df: pd.DataFrame) -> list[str]:
    return CONFIG_COLUMNS + [c for c in OPTIONAL_CONFIG_COLUMNS if c in df.columns]


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """The ok rows that have step times: the ones every rate, interval and speedup is computed from."""
    has_steps = df["step_seconds"].map(lambda v: isinstance(v, list) and len(v) > 0)
    return df[(df["status"] == "ok") & has_steps]


def multi_host(df: pd.DataFrame) -> bool:
    return df["host"].nunique(dropna=True) > 1


def label(r: pd.Series, show_threads: bool = False, show_host: bool = False) -> str:
    """How a row's device is named in tables and figures: cpu, cuda:0, cpu (2 thr), cuda:0 @ host, and
    cuda:0 [fast] for a tuned cell (the --tune variant; eager cells carry no suffix)."""
    text = r["device"]
    if r["device_kind"] == "cpu" and show_threads:
        text += f" ({r['threads']} thr)"
    if show_host and isinstance(r["host"], str):
        text += f" @ {r['host']}"
    variant = r.get("variant")
    if isinstance(variant, str) and variant:
        text += f" [{variant}]"
    return text


def labels(df: pd.DataFrame) -> pd.Series:
    """label() for every row, showing threads and hosts only where the results hold several."""
    cpu = df[df["device_kind"] == "cpu"]
    threads = cpu.groupby("host", dropna=False)["threads"].nunique().max() > 1 if not cpu.empty else False
    hosts = multi_host(df)
    return df.apply(lambda r: label(r, bool(threads), hosts), axis=1) if not df.empty else pd.Series(dtype=str)


def _fmt_rate(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


fmt_rate = _fmt_rate  # images/s as other tables print it


def rate_with_ci(steps: list[float], batch: int) -> str:
    lo, hi = stats.bootstrap_median_ci(steps)
    return f"{_fmt_rate(batch / stats.median(steps))} [{_fmt_rate(batch / hi)}-{_fmt_rate(batch / lo)}]"


def speedup_with_ci(base_steps: list[float], steps: list[float]) -> tuple[float, str]:
    value = stats.median(base_steps) / stats.median(steps)
    lo, hi = stats.bootstrap_ratio_ci(base_steps, steps)
    return value, f"{value:.2f}x [{lo:.2f}-{hi:.2f}]"


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


def baseline_row(group: pd.DataFrame, baseline: str = "cpu") -> pd.Series | None:
    """The baseline device's ok row with the most threads (the CPU as a user would run it)."""
    rows = group[(group["device_kind"] == baseline) | (group["device"] == baseline)]
    rows = rows[rows["status"] == "ok"]
    rows = rows[rows["step_seconds"].map(bool)]
    if rows.empty:
        return None
    return rows.sort_values("threads").iloc[-1]


def device_label(r: pd.Series, show_threads: bool, show_host: bool = False) -> str:
    """label(), and for a variant that resolves per device (fast) the options it became on this one."""
    text = label(r, show_threads, show_host)
    tune, variant = r.get("tune"), r.get("variant")
    if isinstance(tune, str) and tune and tune != variant:
        text += f" = {tune}"
    return text


def summary(df: pd.DataFrame, baseline: str = "cpu") -> str:
    """One table per configuration: device, images/s [95% CI], median step, speedup [95% CI],
    final accuracy, and seconds to the highest accuracy every device reached."""
    if df.empty:
        return "no results"
    parts = []
    hosts = multi_host(df)
    for key, group in df.groupby(config_columns(df), sort=False, dropna=False):
        dataset, pipeline, batch, width, budget = key[:5]
        target = common_accuracy(group[group["status"] == "ok"])
        show_threads = group[group["device_kind"] == "cpu"]["threads"].nunique() > 1
        rows = []
        for _, r in group.iterrows():
            steps = r["step_seconds"]
            if r["status"] != "ok" or not steps:
                rows.append([device_label(r, show_threads, hosts), r["status"], "", "", "", "", r["message"]])
                continue
            # the same machine's baseline when it has one, else the first machine's
            base = baseline_row(group[group["host"] == r["host"]], baseline)
            if base is None:
                base = baseline_row(group, baseline)
            speed = "-"
            if base is not None and r.name != base.name:
                speed = speedup_with_ci(base["step_seconds"], steps)[1]
            elif base is not None:
                speed = "1.00x (baseline)"
            tta = time_to_accuracy(r["accuracy_curve"], target) if target is not None else None
            acc = f"{r['accuracy']:.1%}" if r["accuracy"] is not None and not pd.isna(r["accuracy"]) else "-"
            rows.append([device_label(r, show_threads, hosts), rate_with_ci(steps, batch), f"{r['step_ms']:.3f}",
                         speed, acc, f"{tta:.1f}" if tta is not None else "-", r["device_name"]])
        title = " | ".join([f"{dataset}", f"{pipeline}", f"batch {batch}", f"width {width:g}"]
                           + [(v or "eager") if c == "variant" else f"{c} {v}"
                              for c, v in zip(OPTIONAL_CONFIG_COLUMNS, key[5:])] + [f"budget {budget}"])
        tta_head = f"s to {target:.1%}" if target is not None else "s to acc"
        table = tabulate(rows, headers=["device", "images/s [95% CI]", "step ms", f"speedup vs {baseline}",
                                        "accuracy", tta_head, "name"], disable_numparse=True)
        parts.append(title + "\n" + table)
    return "\n\n".join(parts)


def noisy_cells(df: pd.DataFrame) -> list[str]:
    """A line per cell whose step times spread more than 10% (IQR/median): the machine was busy."""
    out = []
    for _, r in df.iterrows():
        steps = r["step_seconds"]
        if r["status"] == "ok" and steps and stats.is_noisy(steps):
            out.append(f"noisy: {r['device']} {r['pipeline']} bs{r['batch_size']} w{r['width']:g}: "
                       f"step times spread widely (IQR/median {stats.relative_iqr(steps):.0%} > 10%): the machine "
                       f"was busy or the pipeline uneven; close other programs and rerun for tighter numbers")
    return out
