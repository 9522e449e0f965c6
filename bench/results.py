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

from bench import machines, method, peaks, stats
from bench.reading import read_all
from bench.records import Record
from bench.schema import encode
from bench.variants import kind

COLUMNS = [
    "device", "device_kind", "device_name", "machine", "host", "dataset", "pipeline", "batch_size", "width", "threads",
    "threads_asked", "thread_probe",
    "budget", "lr", "status", "message", "images_per_s", "images_per_s_low", "images_per_s_high",
    "images_per_s_median", "step_ms", "step_ms_p10", "step_ms_p90", "step_ms_iqr", "noisy", "block_iqr", "blocks",
    "too_few_blocks", "stalled", "slow_share", "others_cpu", "steal", "busy",
    "accuracy", "train_seconds", "eval_seconds", "steps", "samples", "throughput_overall", "params",
    "flops_per_image", "achieved_flops", "peak_flops", "peak_fraction", "tune", "variant", "peak_memory_bytes",
    "run_id", "created_utc", "torch", "cuda", "git_commit", "accuracy_curve", "step_seconds",
    "train_size", "classes", "warmup_steps", "clock", "env", "profile",  # for reports: provenance, method, breakdown, cost
    # energy of the cell's device over its timed windows, and (GPU cells) of its host's CPU packages, kept apart
    "energy_method", "joules_per_image", "watts", "host_energy_method", "host_joules_per_image", "host_watts",
    "energy",  # the record's energy per device (source, reason, note), for the report
    "rate_boot",  # the bootstrap distribution of images_per_s (numpy array): intervals of ratios between cells
    "energy_by_step",  # [(timed steps, joules)] at the end of each block: energy to a checkpoint (bench.targets)
]
DERIVED_ONLY = ("rate_boot", "energy_by_step")  # in memory only: never written to a CSV


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
    df = pd.DataFrame(rows, columns=COLUMNS)
    # whole numbers stay whole where some cells have none (an unsupported cell trained at no thread count)
    return df.astype({"threads": "Int64", "blocks": "Int64"})


def blocks(r: Record) -> tuple[np.ndarray, np.ndarray]:
    """A cell's timed blocks as (steps, seconds): the blocks between host clock reads, or a pytest-benchmark's
    rounds (each step time there is a round's seconds per step)."""
    t = r.timing
    if t.blocks:
        n, s = zip(*t.blocks)
        return np.asarray(n, dtype=float), np.asarray(s, dtype=float)
    per_round = t.steps_per_round or 1
    s = np.asarray(t.step_seconds, dtype=float) * per_round
    return np.full(s.size, float(per_round)), s


def rate_bootstrap(r: Record) -> np.ndarray:
    """The bootstrap distribution of a cell's images/s: its blocks resampled (stats.block_rates), widened by the
    variation between runs that no single run shows (stats.run_to_run); seeded by the cell itself, so two cells'
    resamples are independent and every load gives the same intervals."""
    seed = zlib.crc32(f"{r.run_id}|{r.key}|{r.created_utc}".encode())
    return stats.run_to_run(r.cell.batch_size * stats.block_rates(*blocks(r), seed=seed), seed)


def row(r: Record) -> dict:
    cell, t, env = r.cell, r.timing, r.env
    steps = list(t.step_seconds)
    out = {
        "device": cell.device, "device_kind": kind(cell.device), "device_name": r.device_name, "host": env.host,
        "dataset": cell.dataset, "pipeline": cell.pipeline, "batch_size": cell.batch_size, "width": cell.width,
        "threads": t.threads or cell.threads, "threads_asked": "auto" if cell.threads is None else str(cell.threads),
        "thread_probe": {int(k): v for k, v in t.thread_probe.items()} or None, "budget": str(cell.budget), "lr": cell.lr, "status": r.status,
        "message": r.message, "tune": "+".join(cell.tune), "variant": cell.variant, "noisy": False, "blocks": 0,
        "others_cpu": r.load.others_cpu if r.load else None, "steal": r.load.steal if r.load else None,
        "busy": bool(r.load and (r.load.others_cpu > stats.BUSY_OTHERS_CPU or r.load.steal > stats.BUSY_STEAL)),
        "train_seconds": t.train_seconds, "eval_seconds": t.eval_seconds, "steps": t.steps, "samples": t.samples,
        "params": r.model.parameters, "flops_per_image": r.model.train_flops_per_image,
        "peak_memory_bytes": r.memory.peak_bytes, "run_id": r.run_id, "created_utc": r.created_utc,
        "torch": env.torch, "cuda": env.cuda, "git_commit": env.git.commit,
        "accuracy_curve": [encode(p) for p in r.accuracy_curve], "step_seconds": steps,
        "accuracy": r.final_accuracy, "train_size": r.dataset.train_size, "classes": r.dataset.classes,
        "warmup_steps": t.warmup_steps if t.clock else cell.warmup_steps, "clock": t.clock or None,
        "env": encode(env), "profile": encode(r.profile) if r.profile else None, "rate_boot": None,
        "energy": None,
    }
    if steps and r.status == "ok":
        out.update(_step_stats(steps, cell.batch_size), **_rate_stats(r))
        if out["flops_per_image"]:
            out["achieved_flops"] = out["flops_per_image"] * out["images_per_s"]
            peak = peaks.peak_flops(r.device_name, peaks.precision_of(cell.tune, cell.device))
            if peak:
                out["peak_flops"] = peak
                out["peak_fraction"] = out["achieved_flops"] / peak
    if t.train_seconds:
        out["throughput_overall"] = t.samples / t.train_seconds
    if r.energy is not None:
        out.update(_energy_stats(r))
    return out


def too_short(fig) -> bool:
    """An NVML figure over windows too short for its refresh step (method.NVML_MIN_SECONDS): kept in the record,
    never turned into joules per image or watts. fig: a DeviceEnergy, or its dict as the DataFrame holds it."""
    method_, seconds = (fig.get("method"), fig.get("seconds")) if isinstance(fig, dict) else (fig.method, fig.seconds)
    return method_ == "nvml" and isinstance(seconds, (int, float)) and seconds < method.NVML_MIN_SECONDS


def _energy_stats(r: Record) -> dict:
    """Joules per timed image and average watts over the windows, with the method, for the cell's device and,
    in host_ columns, for the CPU packages that drove a GPU: the GPU's figure never includes its host's."""
    e, samples = r.energy, r.timing.samples
    out = {"energy": {device: encode(fig) for device, fig in e.items()}}
    host = "cpu" if r.cell.device != "cpu" else None
    for prefix, device in (("", r.cell.device), ("host_", host)):
        fig = e.get(device) if device else None
        if fig is None:
            continue
        out[f"{prefix}energy_method"] = fig.method
        if fig.joules is not None and not too_short(fig):
            out[f"{prefix}joules_per_image"] = fig.joules / samples if samples else None
            out[f"{prefix}watts"] = fig.joules / fig.seconds if fig.seconds > 0 else None
    own = e.get(r.cell.device)
    if own is not None and own.joules is not None and not too_short(own) \
            and len(own.window_joules) == len(r.timing.blocks) > 0:
        steps = np.cumsum([n for n, _ in r.timing.blocks])
        out["energy_by_step"] = list(zip(steps.tolist(), np.cumsum(own.window_joules).tolist()))
    return out


def _step_stats(steps: list[float], batch: int) -> dict:
    """The statistics of one cell's step times: the median step as images/s, and quantiles."""
    a = np.asarray(steps, dtype=float)
    med = float(np.median(a))
    p10, p25, p75, p90 = np.quantile(a, [0.10, 0.25, 0.75, 0.90])
    return {"step_ms": med * 1e3, "step_ms_p10": p10 * 1e3, "step_ms_p90": p90 * 1e3,
            "step_ms_iqr": (p75 - p25) * 1e3, "images_per_s_median": batch / med}


def _rate_stats(r: Record) -> dict:
    """images/s as the wall clock saw it (timed images over timed seconds) with its interval over blocks; how
    many blocks there were and how much their pace varied (noisy: IQR/median of the blocks' seconds per step
    above 10%); and whether stalls kept the wall clock well below the median step's pace, with the share of
    step time that went to steps taking more than twice the median step."""
    n, s = blocks(r)
    batch = r.cell.batch_size
    boot = rate_bootstrap(r)
    low, high = stats.interval(boot)
    rate = batch * n.sum() / s.sum()
    per_step = s / np.maximum(n, 1)
    steps = np.asarray(r.timing.step_seconds, dtype=float)
    median_step = float(np.median(steps))
    median_rate = batch / median_step
    spread = stats.relative_iqr(per_step)
    return {"images_per_s": rate, "images_per_s_low": low, "images_per_s_high": high, "rate_boot": boot,
            "blocks": int(n.size), "too_few_blocks": n.size < method.MIN_BLOCKS, "block_iqr": spread,
            "noisy": n.size > 1 and spread > stats.NOISY_RELATIVE_IQR,
            "stalled": abs(rate / median_rate - 1) > stats.NOISY_RELATIVE_IQR,
            "slow_share": float(steps[steps > 2 * median_step].sum() / steps.sum())}
