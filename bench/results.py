"""Where records live: append-only JSON Lines files, read back as records or as a pandas DataFrame."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import platform
import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from bench import stats
from bench.errors import UserError
from bench.records import Record

RECORDS_FILE = "records.jsonl"


def default_out_dir(root: str | Path = "results") -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", platform.node() or "host")
    return Path(root) / f"{stamp}-{host}"


def check_writable(out_dir: str | Path) -> None:
    """Fail early, creating nothing, when out_dir could not be created or written."""
    path = Path(out_dir).absolute()
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot write results to {out_dir}: {existing} is a file, not a folder; "
                        f"choose a writable folder with --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write results to {out_dir}: {existing} is not writable; "
                        f"choose a writable folder with --out")
    if path.exists() and (path / RECORDS_FILE).exists() and not os.access(path / RECORDS_FILE, os.W_OK):
        raise UserError(f"cannot write results to {out_dir}: {path / RECORDS_FILE} is read-only; "
                        f"choose another folder with --out")


class RecordWriter:
    """Appends records to <out>/records.jsonl: one complete line per write, under an exclusive lock,
    flushed to disk before the call returns. Nothing already in the file is ever rewritten."""

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        self.path = self.dir / RECORDS_FILE
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab"):
                pass
        except OSError as exc:
            raise UserError(f"cannot write results to {self.dir}: {exc.strerror or exc}; "
                            f"choose a writable folder with --out") from None

    def append(self, record: Record) -> None:
        data = (record.to_json() + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock


def record_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders to the records files under them; a path that does not exist is bad input."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("*.jsonl"))
            if not found:
                raise UserError(f"no results (*.jsonl) under {p}: give a folder written by `bench run`")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"{p} does not exist: give a results folder or file written by `bench run`")
    return files


def read_records(path: str | Path, warnings: list[str] | None = None) -> list[Record]:
    """Read one JSON Lines file. A torn last line (a write cut short by a crash) is skipped with a warning;
    any other bad line is bad input naming the file and line."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}; give a results file written by `bench run`") from None
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(Record.from_json(line))
        except (ValueError, TypeError) as exc:
            is_torn_tail = number == len(lines) and not text.endswith("\n")
            if is_torn_tail and isinstance(exc, json.JSONDecodeError):
                if warnings is not None:
                    warnings.append(f"{path}:{number}: skipped an incomplete last line (a run was cut short)")
                continue
            raise UserError(f"{path}:{number}: not a bench record ({exc}); "
                            f"remove the line or give only files written by `bench run`") from None
    return records


def read_all(paths: Iterable[str | Path], warnings: list[str] | None = None) -> list[Record]:
    records = []
    for f in record_files(paths):
        records += read_records(f, warnings)
    return records


def load(paths: Iterable[str | Path] | str | Path, warnings: list[str] | None = None) -> pd.DataFrame:
    """Records from files or folders as a DataFrame, one row per cell, with derived statistics."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return to_frame(read_all(paths, warnings))


COLUMNS = [
    "device", "device_kind", "device_name", "host", "dataset", "pipeline", "batch_size", "width", "threads",
    "budget", "lr", "status", "message", "images_per_s", "images_per_s_p10", "images_per_s_p90", "step_ms",
    "step_ms_p10", "step_ms_p90", "step_ms_iqr", "accuracy", "train_seconds", "eval_seconds", "steps", "samples",
    "throughput_overall", "params", "flops_per_image", "achieved_flops", "peak_memory_bytes", "run_id",
    "created_utc", "torch", "cuda", "git_commit", "accuracy_curve", "step_seconds",
    "train_size", "warmup_steps", "clock", "env", "profile",  # for reports: provenance, method, breakdown, cost
]


def row(r: Record) -> dict:
    cell, t = r.cell, r.timing
    device = cell["device"]
    bs = cell["batch_size"]
    steps = t.get("step_seconds") or []
    out = {
        "device": device, "device_kind": device.split(":")[0], "device_name": r.device_name,
        "host": r.env.get("host"), "dataset": cell.get("dataset"), "pipeline": cell["pipeline"],
        "batch_size": bs, "width": cell["width"], "threads": cell["threads"], "budget": cell.get("budget"),
        "lr": cell.get("lr"), "status": r.status, "message": r.message,
        "train_seconds": t.get("train_seconds"), "eval_seconds": t.get("eval_seconds"),
        "steps": t.get("steps"), "samples": t.get("samples"),
        "params": r.model.get("parameters"), "flops_per_image": r.model.get("train_flops_per_image"),
        "peak_memory_bytes": r.memory.get("peak_bytes"), "run_id": r.run_id, "created_utc": r.created_utc,
        "torch": r.env.get("torch"), "cuda": r.env.get("cuda"), "git_commit": (r.env.get("git") or {}).get("commit"),
        "accuracy_curve": r.accuracy_curve, "step_seconds": steps,
        "accuracy": r.accuracy_curve[-1]["accuracy"] if r.accuracy_curve else None,
        "train_size": r.dataset.get("train_size"), "warmup_steps": t.get("warmup_steps", cell.get("warmup_steps")),
        "clock": t.get("clock"), "env": r.env, "profile": r.profile or None,
    }
    if steps:
        med = stats.median(steps)
        p10, p90 = stats.quantile(steps, 0.10), stats.quantile(steps, 0.90)
        out.update(step_ms=med * 1e3, step_ms_p10=p10 * 1e3, step_ms_p90=p90 * 1e3,
                   step_ms_iqr=stats.iqr(steps) * 1e3, images_per_s=bs / med,
                   images_per_s_p10=bs / p90, images_per_s_p90=bs / p10)
        if out["flops_per_image"]:
            out["achieved_flops"] = out["flops_per_image"] * out["images_per_s"]
    if t.get("train_seconds"):
        out["throughput_overall"] = t["samples"] / t["train_seconds"]
    return out


def to_frame(records: Iterable[Record]) -> pd.DataFrame:
    return pd.DataFrame([row(r) for r in records], columns=COLUMNS)
