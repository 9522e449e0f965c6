"""Reading results: records files (JSON Lines) and pytest-benchmark documents, from files and folders.

Bad input (malformed, foreign or empty files, a FIFO or device where a file is expected, a line over
MAX_LINE_BYTES) is a UserError naming the file and line; what a crash leaves of an append (bench.torn: a line
cut short, NUL bytes) is skipped with a warning, wherever it is in the file. A subfolder that cannot be read
is named in a warning. Nothing here waits on a FIFO or reads past a bound.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from bench import pbjson
from bench.errors import UserError, one_line, printable
from bench.records import Record
from bench.torn import RECORD_START, is_torn  # noqa: F401  (RECORD_START: where it used to live)
from bench.writer import open_regular

RESULT_SUFFIXES = (".jsonl", ".json")  # bench records; pytest-benchmark documents
MAX_LINE_BYTES = 64 << 20  # a record line; a week-long cell's blocks take a few MB
MAX_DOCUMENT_BYTES = 256 << 20  # a pytest-benchmark document


def record_files(paths: Iterable[str | Path], warnings: list[str] | None = None) -> list[Path]:
    """Expand folders to the results files under them; a path that does not exist is bad input. A subfolder
    that cannot be read is skipped, and the warning names it."""
    files: list[Path] = []
    for p in map(Path, paths):
        try:
            files += _results_in(p, warnings)
        except OSError as exc:  # a name too long, a folder we may not enter
            raise UserError(f"cannot read {p}: {exc.strerror or exc}; give a results folder or file") from None
    return files


def _results_in(p: Path, warnings: list[str] | None) -> list[Path]:
    if p.is_dir():
        def unreadable(exc: OSError) -> None:
            if exc.filename is None or Path(exc.filename) == p:
                raise exc
            _warn(warnings, f"skipped {exc.filename}: cannot read it ({exc.strerror or exc}); results there, "
                            f"if any, are left out")

        found = sorted(Path(root) / name for root, _, names in os.walk(p, onerror=unreadable)
                       for name in names if name.endswith(RESULT_SUFFIXES))
        if not found:
            raise UserError(f"no results (*.jsonl or *.json) under {p}: give a folder written by `bench run`")
        return found
    if os.path.lexists(p):
        return [p]  # a FIFO or a device is refused when read, naming what it is
    raise UserError(f"{p} does not exist: give a results folder or file written by `bench run`")


def _open(path: Path, fix: str) -> int:
    try:
        return open_regular(path, os.O_RDONLY)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}; {fix}") from None


def read_records(path: str | Path, warnings: list[str] | None = None) -> list[Record]:
    """Read one JSON Lines file of records. What a crash leaves of an append (bench.torn) is skipped with a
    warning naming file and line; any other bad line is bad input naming the file and line."""
    path = Path(path)
    fix = "give a results file written by `bench run`"
    records = []
    try:
        with os.fdopen(_open(path, fix), "rb") as f:
            for number, data, ended in _pieces(f, path):
                records += _read_piece(path, number, data, ended, warnings)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}; {fix}") from None
    return records


def _pieces(f, path: Path):
    """(line number, bytes without the newline, whether a newline ended it) for each line of f, within bounds."""
    number = 0
    while data := f.readline(MAX_LINE_BYTES + 1):
        number += 1
        ended = data.endswith(b"\n")
        if not ended and len(data) > MAX_LINE_BYTES:
            raise UserError(f"{path}:{number}: a line longer than {MAX_LINE_BYTES / 2**20:g} MiB is not a bench "
                            f"record; give only files written by `bench run`")
        yield number, data[:-1] if ended else data, ended


def _read_piece(path: Path, number: int, data: bytes, ended: bool, warnings) -> list[Record]:
    # From its first NUL on, a piece is a power cut's zero fill (bench.torn); what comes before it is read as
    # any line: a record whose newline was lost with the append after it is still a whole record.
    head, zeros, _ = data.partition(b"\0")
    torn = _warn_torn if zeros else (lambda *a: None)
    if not head.strip():
        torn(warnings, path, number, ended)
        return []
    try:
        line = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}:{number}: not UTF-8 text (byte {exc.start}); "
                        f"give only files written by `bench run`") from None
    try:
        record = Record.from_json(line)
    except RecursionError:
        problem = "nested more deeply than any record"
    except (ValueError, TypeError, OverflowError) as exc:
        problem = one_line(str(exc), 160)
    else:
        torn(warnings, path, number, ended)
        return [record]
    if is_torn(head):
        _warn_torn(warnings, path, number, ended)
        return []
    raise UserError(f"{path}:{number}: not a bench record ({problem}); "
                    f"remove the line or give only files written by `bench run`")


def _warn_torn(warnings, path: Path, number: int, ended: bool) -> None:
    _warn(warnings, f"{path}:{number}: skipped an incomplete {'line' if ended else 'last line'} "
                    f"(a run was cut short)")


def _warn(warnings: list[str] | None, message: str) -> None:
    if warnings is not None:
        warnings.append(printable(message))  # it names files, whose names may hold anything


def read_benchmark_json(path: str | Path) -> list[Record]:
    """Read a pytest-benchmark JSON document (a .json file); anything else is bad input naming the file."""
    path = Path(path)
    fix = "give a records.jsonl written by `bench run` or a JSON file written by pytest --benchmark-json"
    try:
        with os.fdopen(_open(path, fix), "rb") as f:
            raw = f.read(MAX_DOCUMENT_BYTES + 1)
        text = raw.decode("utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}; {fix}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); {fix}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise UserError(f"{path}: larger than {MAX_DOCUMENT_BYTES / 2**20:g} MiB, so not a pytest-benchmark document "
                        f"of this bench; {fix}")
    if not text.strip():
        raise UserError(f"{path}: empty file; {fix}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); {fix}") from None
    except RecursionError:
        raise UserError(f"{path}: nested more deeply than any pytest-benchmark document; {fix}") from None
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
    files = record_files(paths, warnings)
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
