"""Results as a pandas DataFrame: one row per cell, raw facts beside the statistics derived from them.

    import bench.results; df = bench.results.load(["results/"])

Each cell's statistics (medians, quantiles, its rate's bootstrap distribution and interval) are derived here,
once per load; everything that compares cells (tables, the verdict, compare, costs, figures) reads these
columns instead of deriving them again.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from bench import machines, peaks, stats
from bench.reading import read_all
from bench.records import Record
from bench.schema import encode
from bench.variants import kind

COLUMNS = [
    "device", "device_kind", "device_name", "machine", "host", "dataset", "pipeline", "batch_size", "width", "threads",
    "budget", "lr", "status", "message", "images_per_s", "images_per_s_low", "images_per_s_high",
    "images_per_s_p10", "images_per_s_p90", "step_ms", "step_ms_p10", "step_ms_p90", "step_ms_iqr", "noisy",
    "accuracy", "train_seconds", "eval_seconds", "steps", "samples", "throughput_overall", "params",
    "flops_per_image", "achieved_flops", "peak_flops", "peak_fraction", "tune", "variant", "peak_memory_bytes",
    "run_id", "created_utc", "torch", "cuda", "git_commit", "accuracy_curve", "step_seconds",
    "train_size", "warmup_steps", "clock", "env", "profile",  # for reports: provenance, method, breakdown, cost
    "rate_boot",  # the bootstrap distribution of images_per_s (numpy array): intervals of ratios between cells
]
DERIVED_ONLY = ("rate_boot",)  # in memory only: never written to a CSV


def load(paths: Iterable[str | Path] | str | Path, warnings: list[str] | None = None) -> pd.DataFrame:
    """Records from files or folders as a DataFrame, one row per cell, with derived statistics."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return to_frame(read_all(paths, warnings))


def to_frame(records: Iterable[Record]) -> pd.DataFrame:
    rows = [row(r) for r in records]
    prints = [machines.fingerprint(r["env"]) for r in rows]
    named = machines.names(prints)
    for r, f in zip(rows, prints):
        r["machine"] = named[f]
    return pd.DataFrame(rows, columns=COLUMNS)


def rate_bootstrap(r: Record) -> np.ndarray:
    """The bootstrap distribution of a cell's images/s: batch over the medians of resampled step times, seeded
    by the cell itself, so two cells' resamples are independent and every load gives the same intervals."""
    seed = zlib.crc32(f"{r.run_id}|{r.key}|{r.created_utc}".encode())
    return r.cell.batch_size / stats.bootstrap_medians(r.timing.step_seconds, seed=seed)


def row(r: Record) -> dict:
    cell, t, env = r.cell, r.timing, r.env
    steps = list(t.step_seconds)
    out = {
        "device": cell.device, "device_kind": kind(cell.device), "device_name": r.device_name, "host": env.host,
        "dataset": cell.dataset, "pipeline": cell.pipeline, "batch_size": cell.batch_size, "width": cell.width,
        "threads": cell.threads, "budget": str(cell.budget), "lr": cell.lr, "status": r.status,
        "message": r.message, "tune": "+".join(cell.tune), "variant": cell.variant, "noisy": False,
        "train_seconds": t.train_seconds, "eval_seconds": t.eval_seconds, "steps": t.steps, "samples": t.samples,
        "params": r.model.parameters, "flops_per_image": r.model.train_flops_per_image,
        "peak_memory_bytes": r.memory.peak_bytes, "run_id": r.run_id, "created_utc": r.created_utc,
        "torch": env.torch, "cuda": env.cuda, "git_commit": env.git.commit,
        "accuracy_curve": [encode(p) for p in r.accuracy_curve], "step_seconds": steps,
        "accuracy": r.final_accuracy, "train_size": r.dataset.train_size,
        "warmup_steps": t.warmup_steps if t.clock else cell.warmup_steps, "clock": t.clock or None,
        "env": encode(env), "profile": encode(r.profile) if r.profile else None, "rate_boot": None,
    }
    if steps and r.status == "ok":
        out.update(_step_stats(steps, cell.batch_size), rate_boot=rate_bootstrap(r))
        out["images_per_s_low"], out["images_per_s_high"] = stats.interval(out["rate_boot"])
        if out["flops_per_image"]:
            out["achieved_flops"] = out["flops_per_image"] * out["images_per_s"]
            peak = peaks.peak_flops(r.device_name, peaks.precision_of(cell.tune, cell.device))
            if peak:
                out["peak_flops"] = peak
                out["peak_fraction"] = out["achieved_flops"] / peak
    if t.train_seconds:
        out["throughput_overall"] = t.samples / t.train_seconds
    return out


def _step_stats(steps: list[float], batch: int) -> dict:
    """The statistics of one cell's step times: the median step as images/s, quantiles, and whether the cell
    was noisy."""
    a = np.asarray(steps, dtype=float)
    med = float(np.median(a))
    p10, p25, p75, p90 = np.quantile(a, [0.10, 0.25, 0.75, 0.90])
    return {"step_ms": med * 1e3, "step_ms_p10": p10 * 1e3, "step_ms_p90": p90 * 1e3,
            "step_ms_iqr": (p75 - p25) * 1e3, "images_per_s": batch / med, "images_per_s_p10": batch / p90,
            "images_per_s_p90": batch / p10, "noisy": stats.is_noisy(steps)}
