"""How a results row's device is named in tables and figures: cpu, cuda:0 @ host, cpu (2 thr), cuda:0 [fast]."""

from __future__ import annotations

import pandas as pd

from bench.errors import printable
from bench.pairing import MACHINE


def multi_machine(df: pd.DataFrame) -> bool:
    return df[MACHINE].nunique(dropna=True) > 1


def label(r: pd.Series, show_threads: bool = False, show_machine: bool = False) -> str:
    """cpu, cuda:0, cpu (2 thr), cuda:0 @ host, and cuda:0 [fast] for a tuned cell (the --tune variant;
    eager cells carry no suffix)."""
    text = r["device"]
    if r["device_kind"] == "cpu" and show_threads:
        text += f" ({r['threads']} thr)"
    if show_machine and isinstance(r[MACHINE], str):
        text += f" @ {r[MACHINE]}"
    variant = r.get("variant")
    if isinstance(variant, str) and variant:
        text += f" [{variant}]"
    return printable(text)  # a record's device or host name may hold control characters: shown, not obeyed


def labels(df: pd.DataFrame, threads: bool | None = None) -> pd.Series:
    """label() for every row, showing machines only where the results hold several, and threads where the results
    hold several counts for one machine's CPU (threads=None) or as told."""
    if df.empty:
        return pd.Series(dtype=str)
    if threads is None:
        cpu = df[df["device_kind"] == "cpu"]
        threads = bool(cpu.groupby(MACHINE, dropna=False)["threads"].nunique().max() > 1) if not cpu.empty else False
    machines = multi_machine(df)
    return df.apply(lambda r: label(r, threads, machines), axis=1)


def device_label(r: pd.Series, show_threads: bool, show_machine: bool = False) -> str:
    """label(), and for a variant that resolves per device (fast) the options it became on this one."""
    text = label(r, show_threads, show_machine)
    tune, variant = r.get("tune"), r.get("variant")
    if isinstance(tune, str) and tune and tune != variant:
        text += f" = {tune}"
    return text
