"""Reading results: records files (JSON Lines) and pytest-benchmark documents, from files and folders.

Bad input (malformed, foreign or empty files) is a UserError naming the file and line; a line cut short by a
crash is skipped with a warning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from bench import pbjson
from bench.errors import UserError, one_line
from bench.records import Record

RESULT_PATTERNS = ("*.jsonl", "*.json")  # bench records; pytest-benchmark documents
RECORD_START = '{"cell":'  # how every line Record.to_json writes begins: a line cut short still does


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
            raise UserError(f"{path}:{number}: not a bench record ({one_line(str(exc), 160)}); "
                            f"remove the line or give only files written by `bench run`") from None
    return records


def _warn(warnings: list[str] | None, message: str) -> None:
    if warnings is not None:
        warnings.append(message)


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
    problem = pbjson.schema_problem(doc)
    if problem:
        raise UserError(f"{path}: not a pytest-benchmark document ({problem}); {fix}")
    return pbjson.records(path, doc)


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
    """Records from files and folders; bad input (including no records at all) is a UserError naming the file.

    A file named on its own must be results. In a folder, a .json file that is not a pytest-benchmark
    document of this bench (a check's fidelity.json beside its records, say) is skipped, and the warning names
    it; a bad records file there is still bad input."""
    paths = list(paths)
    if not paths:
        raise UserError("no results given: name a results folder or file written by `bench run`")
    named = {Path(p) for p in paths}
    files = record_files(paths)
    records, skipped = [], []
    for f in files:
        try:
            records += read_file(f, warnings)
        except UserError as exc:
            if f in named or f.suffix != ".json":
                raise
            skipped.append(f"skipped {exc}")
            _warn(warnings, skipped[-1])
    if not records:
        names = ", ".join(map(str, files[:3])) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        why = f" ({skipped[0]})" if skipped else ""
        raise UserError(f"no records in {names}{why}: every file is empty, holds only incomplete lines or is not "
                        f"results; give results of a `bench run` that finished at least one cell")
    return records
