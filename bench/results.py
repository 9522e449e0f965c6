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

from bench import pbjson, peaks, stats
from bench.errors import UserError
from bench.records import Record

RECORDS_FILE = "records.jsonl"


def default_out_dir(root: str | Path = "results") -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", platform.node() or "host")
    return Path(root) / f"{stamp}-{host}"


def unwritable_reason(folder: str | Path) -> str | None:
    """Why folder could not be created or written (a file in the way, no permission, a name the system
    refuses), or None when it can; creates nothing."""
    existing = Path(folder).absolute()
    try:
        while not existing.exists():
            existing = existing.parent
    except OSError as exc:  # a name too long, a folder we may not enter
        return str(exc.strerror or exc)
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def check_writable(out_dir: str | Path) -> None:
    """Fail early, creating nothing, when out_dir could not be created or written."""
    reason = unwritable_reason(out_dir)
    if reason:
        raise UserError(f"cannot write results to {out_dir}: {reason}; choose a writable folder with --out")
    records = Path(out_dir) / RECORDS_FILE
    if records.exists() and not os.access(records, os.W_OK):
        raise UserError(f"cannot write results to {out_dir}: {records} is read-only; "
                        f"choose another folder with --out")


class RecordWriter:
    """Appends records to <out>/records.jsonl: one complete line per write, under an exclusive lock,
    flushed to disk before the call returns. Nothing already in the file is ever rewritten."""

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        self.path = self.dir / RECORDS_FILE
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.close(fd)
            _fsync_dir(self.dir)  # the new file's name survives a crash, not only its contents
        except OSError as exc:
            raise UserError(f"cannot write results to {self.dir}: {exc.strerror or exc}; "
                            f"choose a writable folder with --out") from None

    def append(self, record: Record) -> None:
        data = (record.to_json() + "\n").encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A writer killed mid-line left a torn tail: end it, so this record starts a line of its own
                # (readers skip the torn line with a warning) instead of being glued onto it.
                data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the records themselves are still synced
    finally:
        os.close(fd)


RESULT_PATTERNS = ("*.jsonl", "*.json")  # bench records; pytest-benchmark documents


def record_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders to the results files under them; a path that does not exist is bad input."""
    files: list[Path] = []
    for p in map(Path, paths):
        try:
            files += _results_in(p)
        except OSError as exc:  # a name too long, a folder we may not enter
            raise UserError(f"cannot read {p}: {exc.strerror or exc}; give a results folder or file") from None
    return files


def _results_in(p: Path) -> list[Path]:
    if p.is_dir():
        found = sorted(f for pattern in RESULT_PATTERNS for f in p.rglob(pattern) if f.is_file())
        if not found:
            raise UserError(f"no results (*.jsonl or *.json) under {p}: give a folder written by `bench run`")
        return found
    if p.is_file():
        return [p]
    raise UserError(f"{p} does not exist: give a results folder or file written by `bench run`")


RECORD_START = '{"cell":'  # how every line Record.to_json writes begins: a line cut short still does


def read_records(path: str | Path, warnings: list[str] | None = None) -> list[Record]:
    """Read one JSON Lines file of records. A line cut short by a crash (the torn last line of a killed run, or
    such a line that a later run ended with a newline) is skipped with a warning naming file and line; any
    other bad line is bad input naming the file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}; give a results file written by `bench run`") \
            from None
    lines = raw.split(b"\n")
    records = []
    for number, data in enumerate(lines, 1):
        is_last = number == len(lines)  # only a file not ending in a newline has a non-empty last piece
        try:
            line = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if is_last:
                _warn(warnings, f"{path}:{number}: skipped an incomplete last line (a run was cut short)")
                continue
            raise UserError(f"{path}:{number}: not UTF-8 text (byte {exc.start}); "
                            f"give only files written by `bench run`") from None
        if not line.strip():
            continue
        try:
            records.append(Record.from_json(line))
        except (ValueError, TypeError) as exc:
            if isinstance(exc, json.JSONDecodeError) and (is_last or line.startswith(RECORD_START)):
                where = "last line" if is_last else "line"
                _warn(warnings, f"{path}:{number}: skipped an incomplete {where} (a run was cut short)")
                continue
            raise UserError(f"{path}:{number}: not a bench record ({_one_line(exc)}); "
                            f"remove the line or give only files written by `bench run`") from None
    return records


def _warn(warnings: list[str] | None, message: str) -> None:
    if warnings is not None:
        warnings.append(message)


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_benchmark_json(path: str | Path) -> list[Record]:
    """Read a pytest-benchmark JSON document (a .json file); anything else is bad input naming the file."""
    path = Path(path)
    fix = "give a records.jsonl written by `bench run` or a JSON file written by pytest --benchmark-json"
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}; {fix}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); {fix}") from None
    if not text.strip():
        raise UserError(f"{path}: empty file; {fix}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); {fix}") from None
    problem = _benchmark_schema_problem(doc)
    if problem:
        raise UserError(f"{path}: not a pytest-benchmark document ({problem}); {fix}")
    return pbjson.records(path, doc)


def _benchmark_schema_problem(doc) -> str | None:
    """What keeps doc from being a pytest-benchmark document this bench reads, or None."""
    if not isinstance(doc, dict):
        return f"the top level is a JSON {type(doc).__name__}, not an object"
    if not isinstance(doc.get("benchmarks"), list):
        return "no 'benchmarks' list"
    for i, bench in enumerate(doc["benchmarks"]):
        if not isinstance(bench, dict) or not isinstance(bench.get("name"), str):
            return f"benchmarks[{i}] has no 'name'"
        stats_ = bench.get("stats")
        if not isinstance(stats_, dict) or not _is_number(stats_.get("median")):
            return f"benchmarks[{i}] ({bench['name']!r}) has no numeric stats.median"
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_file(path: str | Path, warnings: list[str] | None = None) -> list[Record]:
    """Records from one results file: JSON Lines of records, or a pytest-benchmark .json document."""
    path = Path(path)
    if path.suffix == ".json":
        return read_benchmark_json(path)
    records = read_records(path, warnings)
    if not records:
        _warn(warnings, f"{path}: no records (a run stopped before its first cell finished)")
    return records


def read_all(paths: Iterable[str | Path], warnings: list[str] | None = None) -> list[Record]:
    """Records from files and folders; bad input (including no records at all) is a UserError naming the file."""
    paths = list(paths)
    if not paths:
        raise UserError("no results given: name a results folder or file written by `bench run`")
    files = record_files(paths)
    records = []
    for f in files:
        records += read_file(f, warnings)
    if not records:
        names = ", ".join(map(str, files[:3])) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        raise UserError(f"no records in {names}: every file is empty or holds only incomplete lines; "
                        f"give results of a `bench run` that finished at least one cell")
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
    "throughput_overall", "params", "flops_per_image", "achieved_flops", "peak_flops", "peak_fraction", "tune", "variant",
    "peak_memory_bytes", "run_id",
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
        "lr": cell.get("lr"), "status": r.status, "message": r.message, "tune": "+".join(cell.get("tune") or []),
        "variant": cell.get("variant", "+".join(cell.get("tune") or [])),
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
            peak = peaks.peak_flops(r.device_name, peaks.precision_of(cell.get("tune"), device))
            if peak:
                out["peak_flops"] = peak
                out["peak_fraction"] = out["achieved_flops"] / peak
    if t.get("train_seconds") and t.get("samples") is not None:
        out["throughput_overall"] = t["samples"] / t["train_seconds"]
    return out


def to_frame(records: Iterable[Record]) -> pd.DataFrame:
    return pd.DataFrame([row(r) for r in records], columns=COLUMNS)
