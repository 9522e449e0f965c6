"""Writing results: the append-only records file of a run, and checks that a folder can be written at all."""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import os
import platform
import re
import stat
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
    try:
        kind = file_kind(os.stat(records).st_mode)
    except OSError:
        return  # not there yet (RecordWriter creates it), or not reachable: the writer says why
    if kind:  # opening a FIFO there would wait for a reader for ever
        raise UserError(f"cannot write results to {out_dir}: {records} is {kind}, not a regular file; "
                        f"choose another folder with --out")
    if not os.access(records, os.W_OK):
        raise UserError(f"cannot write results to {out_dir}: {records} is read-only; "
                        f"choose another folder with --out")


_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFDIR: "a folder", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def file_kind(mode: int) -> str:
    """'' for a regular file, else what it is, in words ("a FIFO"): for refusing it in one line."""
    return "" if stat.S_ISREG(mode) else _KINDS.get(stat.S_IFMT(mode), "a special file")


def open_regular(path: str | Path, flags: int, mode: int = 0o644) -> int:
    """os.open that never waits on a FIFO (O_NONBLOCK) and refuses anything but a regular file
    (OSError naming what it is), so a results path can never hang a command."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    kind = file_kind(os.fstat(fd).st_mode)
    if kind:
        os.close(fd)
        raise OSError(errno.EINVAL, f"{kind}, not a regular file", str(path))
    return fd


class AppendFailed(OSError):
    """The file system did not take a record whole (a full disk, a short write, a failed sync). The file was
    cut back to its size before the append, so it still holds whole records only; the cell has no record, and
    --resume measures it again."""


class RecordWriter:
    """Appends records to <out>/records.jsonl: one complete line per write, under an exclusive lock,
    flushed to disk before the call returns. Nothing already in the file is ever rewritten.

    An append lands whole or not at all: every write is checked, and when the file system takes only part
    of a line (ENOSPC, a short write, a failed fsync, or any exception between the first write and the
    sync) the file is cut back, under the lock, to the size it had, and AppendFailed is raised."""

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        self.path = self.dir / RECORDS_FILE
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            os.close(open_regular(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT))
            _fsync_dir(self.dir)  # the new file's name survives a crash, not only its contents
        except OSError as exc:
            raise UserError(f"cannot write results to {self.dir}: {exc.strerror or exc}; "
                            f"choose a writable folder with --out") from None

    def append(self, record: Record) -> None:
        data = (record.to_json() + "\n").encode()
        try:
            fd = open_regular(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        except OSError as exc:
            raise AppendFailed(exc.errno or errno.EIO, f"cannot open {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A writer killed mid-line left a torn tail: end it, so this record starts a line of its own
                # (readers skip the torn line with a warning) instead of being glued onto it.
                data = b"\n" + data
            _land(fd, data, size, self.path)
        finally:
            os.close(fd)  # closing releases the lock


def _land(fd: int, data: bytes, size: int, path: Path) -> None:
    """Write data at the end of fd and sync it; on any failure cut the file back to size and raise."""
    written = 0
    try:
        while written < len(data):
            n = _write(fd, memoryview(data)[written:])
            if n <= 0:
                raise OSError(errno.ENOSPC, "the file system took no more bytes")
            written += n  # a short write: the rest follows, or the next write says why it cannot
        os.fsync(fd)
    except BaseException as exc:
        cut = _cut_back(fd, size)
        if not isinstance(exc, OSError):
            raise  # Ctrl-C, say: the file is as it was, and the caller drops the cell
        reason = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
        raise AppendFailed(exc.errno or errno.EIO, f"{path} took {written} of the {len(data)} bytes of this "
                           f"cell's record ({reason}); {cut}") from None


def _cut_back(fd: int, size: int) -> str:
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
        return "the partial line was removed, so the file holds whole records only"
    except OSError as exc:  # readers still skip the partial line: it is the start of a record, cut short
        return f"the partial line could not be removed ({exc.strerror or exc}), and is skipped when read"


_write = os.write  # tests swap in a file system that takes fewer bytes than asked


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the records themselves are still synced
    finally:
        os.close(fd)
