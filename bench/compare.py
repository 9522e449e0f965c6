"""Comparing runs: one set of results as a device table, or two runs of a grid cell by cell, for a CI gate.

    bench compare results/old results/new --fail-above 10%
"""

from __future__ import annotations

import re

import pandas as pd
from tabulate import tabulate

from bench import stats, table
from bench.errors import UserError

KEY = ["device", "dataset", "pipeline", "batch_size", "width", "threads", "budget"]
COLUMNS = [*KEY, "old_images_per_s", "new_images_per_s", "change", "low", "high", "significant", "status"]


def parse_threshold(text: str) -> float:
    """'10%' or '10' -> 0.10: the largest drop in images/s tolerated."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*%?\s*", text or "")
    if not m:
        raise UserError(f"cannot read --fail-above {text!r}: give a percentage such as 10%")
    return float(m.group(1)) / 100


def key_columns(df: pd.DataFrame) -> list[str]:
    return KEY + [c for c in table.OPTIONAL_CONFIG_COLUMNS if c in df.columns]


def _latest(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    order = df.assign(_t=df["created_utc"].fillna("").astype(str)).sort_values("_t", kind="stable")
    return order.drop_duplicates(keys, keep="last").drop(columns="_t")


def changes(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """One row per cell configuration in either run: the relative change of median images/s (new/old - 1)
    with its 95% bootstrap interval; significant when the interval excludes zero. A cell only in one run,
    or not ok in one, has status saying so and no change."""
    keys = key_columns(pd.concat([old.head(0), new.head(0)]))
    old = old.assign(**{c: None for c in keys if c not in old})
    new = new.assign(**{c: None for c in keys if c not in new})
    o, n = _latest(old, keys), _latest(new, keys)
    merged = o.merge(n, on=keys, how="outer", suffixes=("_old", "_new"), indicator=True)
    rows = []
    for _, r in merged.iterrows():
        row = {k: r[k] for k in keys}
        row.update(old_images_per_s=None, new_images_per_s=None, change=None, low=None, high=None,
                   significant=False)
        if r["_merge"] != "both":
            row["status"] = "only in old" if r["_merge"] == "left_only" else "only in new"
        elif r["status_old"] != "ok" or r["status_new"] != "ok":
            row["status"] = f"{r['status_old']} -> {r['status_new']}"
        elif not _steps(r["step_seconds_old"]) or not _steps(r["step_seconds_new"]):
            row["status"] = "no step times"
        else:
            a, b = r["step_seconds_old"], r["step_seconds_new"]
            # images/s is batch / step time, so new/old images/s = median(old steps) / median(new steps)
            change = stats.median(a) / stats.median(b) - 1
            low, high = stats.bootstrap_ratio_ci(a, b)
            row.update(old_images_per_s=r["images_per_s_old"], new_images_per_s=r["images_per_s_new"],
                       change=change, low=low - 1, high=high - 1, significant=low > 1 or high < 1, status="ok")
        rows.append(row)
    out = pd.DataFrame(rows, columns=COLUMNS + [k for k in keys if k not in COLUMNS])
    return out.sort_values(["device", "pipeline", "batch_size", "width", "threads"], kind="stable",
                           ignore_index=True)


def _steps(v) -> bool:
    return isinstance(v, list) and len(v) > 0


def regressions(c: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Cells whose images/s dropped by more than threshold, and cells that were ok and now are not."""
    dropped = c["change"].astype(float) < -threshold
    broke = c["status"].str.startswith("ok -> ")
    return c[dropped.fillna(False) | broke]


def _pct(v) -> str:
    return "-" if v is None or pd.isna(v) else f"{v:+.1%}"


def change_table(c: pd.DataFrame, threshold: float | None = None) -> str:
    bad = set(regressions(c, threshold).index) if threshold is not None else set()
    rows = []
    for i, r in c.iterrows():
        flag = ""
        if r["status"] == "ok" and r["significant"]:
            flag = "faster" if r["change"] > 0 else "slower"
        if i in bad:
            flag = f"REGRESSION (> {threshold:.0%})" if r["status"] == "ok" else "REGRESSION"
        rate = table.fmt_rate
        rows.append([r["device"], r["pipeline"], str(r["batch_size"]), f"{r['width']:g}", str(r["threads"]),
                     rate(r["old_images_per_s"]) if r["status"] == "ok" else "-",
                     rate(r["new_images_per_s"]) if r["status"] == "ok" else "-",
                     _pct(r["change"]), f"[{_pct(r['low'])}, {_pct(r['high'])}]" if r["status"] == "ok" else "",
                     flag or ("" if r["status"] == "ok" else r["status"])])
    return tabulate(rows, headers=["device", "pipeline", "batch", "width", "threads", "old images/s",
                                   "new images/s", "change", "95% CI", "note"], disable_numparse=True)


def notes(old: pd.DataFrame, new: pd.DataFrame, c: pd.DataFrame) -> list[str]:
    """What a reader of the change table should know: runs from different machines, nothing matched."""
    out = []
    hosts_old, hosts_new = set(old["host"].dropna()), set(new["host"].dropna())
    if hosts_old and hosts_new and not hosts_old & hosts_new:
        out.append(f"old and new come from different machines ({', '.join(sorted(hosts_old))}; "
                   f"{', '.join(sorted(hosts_new))}): changes include the hardware; to list them side by side as "
                   f"one set use --no-pair")
    if not (c["status"] == "ok").any():
        out.append("no cell was measured ok in both runs; to list them side by side use --no-pair")
    return out


def device_table(df: pd.DataFrame, baseline: str = "cpu") -> str:
    """Single-run mode: per configuration, images/s [95% CI] per device and the speedup against baseline."""
    return table.summary(df, baseline)
