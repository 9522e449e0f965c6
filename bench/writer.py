"""Writing results: the append-only records file of a run, and checks that a folder can be written at all."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import platform
import re
from pathlib import Path

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
