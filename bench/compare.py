"""Comparing runs: one set of results as a device table, or two runs of a grid cell by cell, for a CI gate.

    bench compare results/old results/new --fail-above 10%
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench import stats
from bench.errors import UserError, printable
from bench.pairing import CELL, latest
from bench.terminal import fmt_rate

COLUMNS = [*CELL, "old_images_per_s", "new_images_per_s", "change", "low", "high", "significant", "status"]


def parse_threshold(text: str) -> float:
    """'10%' or '10' -> 0.10: the largest drop in images/s tolerated."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*%?\s*", text or "")
    if not m:
        raise UserError(f"cannot read --fail-above {text!r}: give a percentage such as 10%")
    return float(m.group(1)) / 100


def changes(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """One row per cell configuration in either run: the relative change of median images/s (new/old - 1)
    with its 95% bootstrap interval; significant when the interval excludes zero. A cell only in one run,
    or not ok in one, has status saying so and no change."""
    o, n = latest(old, CELL), latest(new, CELL)
    merged = o.merge(n, on=CELL, how="outer", suffixes=("_old", "_new"), indicator=True)
    rows = []
    for _, r in merged.iterrows():
        row = {k: r[k] for k in CELL}
        row.update(old_images_per_s=None, new_images_per_s=None, change=None, low=None, high=None,
                   significant=False)
        if r["_merge"] != "both":
            row["status"] = "only in old" if r["_merge"] == "left_only" else "only in new"
        elif r["status_old"] != "ok" or r["status_new"] != "ok":
            row["status"] = f"{r['status_old']} -> {r['status_new']}"
        elif not _steps(r["step_seconds_old"]) or not _steps(r["step_seconds_new"]):
            row["status"] = "no step times"
        else:
            change = r["images_per_s_new"] / r["images_per_s_old"] - 1
            low, high = stats.interval(np.asarray(r["rate_boot_new"]) / np.asarray(r["rate_boot_old"]))
            row.update(old_images_per_s=r["images_per_s_old"], new_images_per_s=r["images_per_s_new"],
                       change=change, low=low - 1, high=high - 1, significant=low > 1 or high < 1, status="ok")
        rows.append(row)
    out = pd.DataFrame(rows, columns=COLUMNS)
    return out.sort_values(["device", "pipeline", "batch_size", "width", "variant", "threads_asked"], kind="stable",
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
        rate = fmt_rate
        rows.append([r["device"], r["pipeline"], str(r["batch_size"]), f"{r['width']:g}", r["variant"] or "eager",
                     str(r["threads_asked"]),
                     rate(r["old_images_per_s"]) if r["status"] == "ok" else "-",
                     rate(r["new_images_per_s"]) if r["status"] == "ok" else "-",
                     _pct(r["change"]), f"[{_pct(r['low'])}, {_pct(r['high'])}]" if r["status"] == "ok" else "",
                     flag or ("" if r["status"] == "ok" else r["status"])])
    rows = [[printable(c) for c in row] for row in rows]  # text from records: shown, never obeyed
    return tabulate(rows, headers=["device", "pipeline", "batch", "width", "variant", "threads", "old images/s",
                                   "new images/s", "change", "95% CI", "note"], disable_numparse=True)


def notes(old: pd.DataFrame, new: pd.DataFrame, c: pd.DataFrame) -> list[str]:
    """What a reader of the change table should know: runs from different machines, nothing matched."""
    out = []
    hosts_old, hosts_new = set(old["machine"].dropna()), set(new["machine"].dropna())
    if hosts_old and hosts_new and not hosts_old & hosts_new:
        out.append(printable(f"old and new come from different machines ({', '.join(sorted(hosts_old))}; "
                             f"{', '.join(sorted(hosts_new))}): changes include the hardware; to list them side "
                             f"by side as one set use --no-pair"))
    return out


def shared(c: pd.DataFrame) -> bool:
    """Whether OLD and NEW have any cell in common (ok or not)."""
    return not c["status"].isin(["only in old", "only in new"]).all()


def summary(c: pd.DataFrame, threshold: float | None) -> str:
    """One line: how many cells were compared, how many moved, and the gate's verdict when there is one."""
    ok = c[c["status"] == "ok"]
    faster = int((ok["significant"] & (ok["change"] > 0)).sum())
    slower = int((ok["significant"] & (ok["change"] < 0)).sum())
    text = f"{len(ok)} cells compared: {faster} faster, {slower} slower, {len(ok) - faster - slower} unchanged"
    others = len(c) - len(ok)
    if others:
        text += f"; {others} not comparable (only in one run, or not ok in one)"
    if threshold is not None:
        bad = len(regressions(c, threshold))
        text += (f"; gate failed: {bad} cell(s) lost more than {threshold:.0%} of their images/s or stopped working"
                 if bad else f"; gate passed: no cell lost more than {threshold:.0%} of its images/s")
    return text
