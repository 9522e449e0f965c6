"""What "the same configuration" means, and which cell each cell is compared with: defined once, here.

    pairs(bench.results.load("results/"))   # one row per (cell, baseline cell) comparison

Everything that compares cells asks this module: the table `bench run` and `bench compare` print, the verdict,
costs, the eager-vs-tuned section, the gaps list and `bench compare OLD NEW`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench import stats

WORK = ["dataset", "pipeline", "batch_size", "width"]  # the work a step does, whatever runs it, however tuned
CONFIG = [*WORK, "variant"]  # a configuration: the work, and the --tune variant asked for
MACHINE = "machine"  # the column that tells machines apart (bench.machines: host name and hardware)
CELL = ["device", *CONFIG, "threads_asked", "budget"]  # one cell of a grid: what `bench compare OLD NEW` matches
BASELINE = "cpu"  # the device kind speedups are measured against
PAIR_COLUMNS = [*CONFIG, "device", "device_kind", "device_name", MACHINE, "threads", "base_device",
                "base_device_name", f"base_{MACHINE}", "base_threads", "cross_machine", "images_per_s",
                "base_images_per_s", "speedup", "low", "high", "row", "base_row"]


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """The ok rows that have step times: the ones every rate, interval and speedup is computed from."""
    has_steps = df["step_seconds"].map(lambda v: isinstance(v, list) and len(v) > 0)
    return df[(df["status"] == "ok") & has_steps]


def latest(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per key: the most recently created (a cell measured again replaces the earlier record)."""
    order = df.assign(_t=df["created_utc"].fillna("").astype(str)).sort_values("_t", kind="stable")
    return order.drop_duplicates(keys, keep="last").drop(columns="_t")


def longest(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell but for its budget: where one machine measured a cell at several budgets (a GPU check
    measures resident batch 4 eager in two stages), the one with the most timed samples, the surest; not the
    fastest, which would favour whichever short run happened to go well."""
    if df.empty:
        return df
    order = df.assign(_n=df["samples"].fillna(0)).sort_values("_n", kind="stable")
    keys = [MACHINE, *(c for c in CELL if c != "budget")]
    return order.drop_duplicates(keys, keep="last").drop(columns="_n")


def is_baseline(df: pd.DataFrame, baseline: str = BASELINE) -> pd.Series:
    return (df["device_kind"] == baseline) | (df["device"] == baseline)


def fastest(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per key, the usable row with the most images/s (a device at its best across the other columns)."""
    ok = usable(df)
    return ok.loc[ok.groupby(keys, sort=False, dropna=False)["images_per_s"].idxmax()] if not ok.empty else ok


def baselines(df: pd.DataFrame, baseline: str = BASELINE, key: list[str] = CONFIG) -> pd.DataFrame:
    """Per machine and configuration, the baseline device's cell speedups are measured against: its fastest
    (at the thread count that ran best), so the CPU is never handicapped by a count that suits it badly."""
    ok = usable(df)
    return fastest(ok[is_baseline(ok, baseline)], [MACHINE, *key])


def ratio(df: pd.DataFrame, row, base) -> tuple[float, float, float]:
    """images/s of row over images/s of base, with the 95% interval of their independent bootstraps."""
    a, b = df.at[row, "rate_boot"], df.at[base, "rate_boot"]
    value = df.at[row, "images_per_s"] / df.at[base, "images_per_s"]
    low, high = stats.interval(np.asarray(a) / np.asarray(b))
    return value, low, high


def pairs(df: pd.DataFrame, baseline: str = BASELINE, key: list[str] = CONFIG) -> pd.DataFrame:
    """One row per comparison of a cell with a baseline cell of the same configuration (key).

    A cell is compared with its own machine's baseline; an accelerator cell also with the baseline of every
    machine that has no accelerator (a laptop beside a GPU server), and, when its own machine has no baseline
    cell, with every machine's."""
    ok = longest(latest(usable(df), [MACHINE, *CELL]))
    base = baselines(ok, baseline, key)
    if ok.empty or base.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    is_base = is_baseline(ok, baseline)
    accelerated = set(ok.loc[~is_base, MACHINE])
    base_only = set(base[MACHINE]) - accelerated
    by_config = {k: g for k, g in base.groupby(key, sort=False, dropna=False)}
    out = []
    for i, r in ok.iterrows():
        same = by_config.get(tuple(r[c] for c in key))
        if same is None:
            continue
        local = same[same[MACHINE] == r[MACHINE]]
        chosen = local
        if not is_base[i]:
            others = same[same[MACHINE].isin(base_only - {r[MACHINE]})]
            chosen = pd.concat([local, others]) if not local.empty else same
        for j, b in chosen.iterrows():
            if j == i:
                continue
            value, low, high = ratio(df, i, j)
            out.append({**{c: r[c] for c in CONFIG}, "device": r["device"], "device_kind": r["device_kind"],
                        "device_name": r["device_name"], MACHINE: r[MACHINE], "threads": r["threads"],
                        "base_device": b["device"], "base_device_name": b["device_name"],
                        f"base_{MACHINE}": b[MACHINE], "base_threads": b["threads"],
                        "cross_machine": b[MACHINE] != r[MACHINE], "images_per_s": r["images_per_s"],
                        "base_images_per_s": b["images_per_s"], "speedup": value, "low": low, "high": high,
                        "row": i, "base_row": j})
    return pd.DataFrame(out, columns=PAIR_COLUMNS)


def best_pairs(df: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Each device at its best: per machine, device and work (pipeline, batch, width), its fastest cell across
    thread counts and --tune variants, compared with the baseline's fastest. Each row's variant is the
    accelerator's; base_variant is the baseline's."""
    best = fastest(latest(usable(df), [MACHINE, *CELL]), [MACHINE, "device", *WORK])
    p = pairs(df.loc[best.index], baseline, key=WORK)
    return p.assign(base_variant=[df.at[j, "variant"] for j in p["base_row"]])


def accelerator_pairs(p: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """The pairs whose cell is not itself a baseline device (GPU against CPU): what the verdict judges."""
    return p[(p["device_kind"] != baseline) & (p["device"] != baseline)]
