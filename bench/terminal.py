"""Tables for the terminal: each configuration's devices with images/s, speedup and time to accuracy.

    print(bench.terminal.summary(bench.results.load("results/")))      # what `bench run` and `bench compare` print
"""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from bench import pairing, stats
from bench.errors import printable
from bench.labels import device_label, multi_machine
from bench.targets import targets, time_to_accuracy


def fmt_rate(v) -> str:
    """images/s: thousands separated above 100, three digits below; '-' for nothing."""
    if v is None or pd.isna(v) or not math.isfinite(v):
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def rate_with_ci(r: pd.Series) -> str:
    return f"{fmt_rate(r['images_per_s'])} [{fmt_rate(r['images_per_s_low'])}-{fmt_rate(r['images_per_s_high'])}]"


def speedup_text(value: float, low: float, high: float) -> str:
    return f"{value:.2f}x [{low:.2f}-{high:.2f}]"


def _title(key: tuple) -> str:
    config = dict(zip(pairing.CONFIG, key))
    return " | ".join([str(config["dataset"]), str(config["pipeline"]), f"batch {config['batch_size']}",
                       f"width {config['width']:g}", config["variant"] or "eager"])


def summary(df: pd.DataFrame, baseline: str = pairing.BASELINE) -> str:
    """One table per configuration: device, images/s [95% CI], median step, speedup [95% CI] against the
    baseline cell the pairing rule gives it, final accuracy, and seconds to the highest accuracy every device
    reached (when that is at least twice chance)."""
    if df.empty:
        return "no results"
    p = pairing.pairs(df, baseline)
    first = p.drop_duplicates("row").set_index("row")  # a cell's own machine's baseline comes first
    bases = set(pairing.baselines(df, baseline).index)
    machines = multi_machine(df)
    goals = targets(df)
    parts = []
    for key, group in df.groupby(pairing.CONFIG, sort=False, dropna=False):
        target = goals.get(key)
        show_threads = group[group["device_kind"] == "cpu"]["threads"].nunique() > 1
        rows = []
        for i, r in group.iterrows():
            name = device_label(r, show_threads, machines)
            if r["status"] != "ok" or not r["step_seconds"]:
                rows.append([name, r["status"], "", "", "", "", r["message"]])
                continue
            speed = "-"
            if i in first.index:
                s = first.loc[i]
                speed = speedup_text(s["speedup"], s["low"], s["high"])
                if s["cross_machine"]:
                    speed += f" vs {s['base_device']} @ {s[f'base_{pairing.MACHINE}']}"
            elif i in bases:
                speed = "1.00x (baseline)"
            tta = time_to_accuracy(r["accuracy_curve"], target) if target is not None else None
            acc = f"{r['accuracy']:.1%}" if r["accuracy"] is not None and not pd.isna(r["accuracy"]) else "-"
            rows.append([name, rate_with_ci(r), f"{r['step_ms']:.3f}", speed, acc,
                         f"{tta:.1f}" if tta is not None else "-", r["device_name"]])
        budgets = ", ".join(sorted(set(map(str, group["budget"]))))
        tta_head = f"s to {target:.1%}" if target is not None else "s to acc"
        rows = [[printable(c) for c in row] for row in rows]  # text from records: shown, never obeyed
        table = tabulate(rows, headers=["device", "images/s [95% CI]", "step ms", f"speedup vs {baseline}",
                                        "accuracy", tta_head, "name"], disable_numparse=True)
        parts.append(f"{printable(_title(key))} | budget {printable(budgets)}\n{table}")
    return "\n\n".join(parts)


def noisy_cells(df: pd.DataFrame) -> list[str]:
    """A line per cell whose numbers the reader should doubt: its blocks' pace spread more than 10%
    (IQR/median), other programs used the machine, or stalls kept the wall clock well below the median step."""
    out = []
    for _, r in pairing.usable(df).iterrows():
        name = printable(f"{r['device']} {r['pipeline']} bs{r['batch_size']} w{r['width']:g}" + (
            f" [{r['variant']}]" if r["variant"] else ""))
        if r["noisy"]:
            out.append(f"noisy: {name}: its blocks' pace spread widely (IQR/median {r['block_iqr']:.0%} > "
                       f"{stats.NOISY_RELATIVE_IQR:.0%}): the machine was busy or the pipeline uneven; close other "
                       f"programs and rerun for tighter numbers")
        if r["busy"]:
            out.append(f"busy: {name}: other programs used {r['others_cpu']:.0%} of the CPUs"
                       + (f" and the hypervisor stole {r['steal']:.0%}" if r["steal"] > stats.BUSY_STEAL else "")
                       + " while it ran; rerun on a quiet machine")
        if r["stalled"]:
            out.append(f"stalls: {name}: the wall clock saw {fmt_rate(r['images_per_s'])} images/s, the median "
                       f"step's pace is {fmt_rate(r['images_per_s_median'])}; {r['slow_share']:.0%} of its step "
                       f"time went to steps taking over twice the median (waiting for data, another program, a "
                       f"pause)")
    return out
