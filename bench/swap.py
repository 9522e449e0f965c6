"""A folder replaced as a whole: its new version is written beside it and swapped in, so a reader, or a command
killed at any moment, finds the old version or the new one, never a mix of both.

    with swap.replacing(Path("reports/mine")) as new:
        (new / "report.html").write_bytes(html)          # swapped in when the block ends without an error

On Linux the two folders trade names in one step (renameat2 with RENAME_EXCHANGE); elsewhere, or on a file
system without it, the old folder is first renamed to a hidden name, and a crash between the two renames is
undone by the next call for that folder. Ctrl-C and SIGTERM wait while the names change (bench.signals), and
an error or a signal before that removes the new version. What a killed process leaves (.NAME.new-PID-*,
.NAME.old-PID-*) is removed by the next call for that folder once that process is gone.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from bench import signals

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)  # glibc 2.28 and later
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}


def _leftover(folder: Path, kind: str) -> Path:
    return folder.with_name(f".{folder.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _exchange(a: Path, b: Path) -> bool:
    """Trade the names of a and b in one step; False when this system cannot."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(b))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def recover(folder: Path) -> None:
    """Undo what a killed call left beside folder: put an old version back where none is, remove the rest."""
    pattern = re.compile(rf"\.{re.escape(folder.name)}\.(new|old)-(\d+)-[0-9a-f]+")
    try:
        names = os.listdir(folder.parent)
    except FileNotFoundError:
        return
    for name in sorted(names, key=lambda n: "new" in n):  # old versions first: one may go back in place
        m = pattern.fullmatch(name)
        if not m or int(m.group(2)) == os.getpid() or _alive(int(m.group(2))):
            continue
        path = folder.parent / name
        if m.group(1) == "old" and not os.path.lexists(folder):
            os.rename(path, folder)  # killed between the two renames: the old version was complete
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def replacing(folder: Path) -> Iterator[Path]:
    """A fresh, empty folder beside `folder`; when the block ends without an error it takes folder's place
    (the old version is removed), otherwise it is removed and folder is left as it was."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    recover(folder)
    new = _leftover(folder, "new")
    new.mkdir()
    try:
        yield new
        with signals.deferred():  # both names change, and the old version goes, before a signal can stop us
            _install(new, folder)
            shutil.rmtree(new, ignore_errors=True)  # after an exchange, the old version is what is there
    except BaseException:
        with signals.deferred():
            shutil.rmtree(new, ignore_errors=True)
        raise


def _install(new: Path, folder: Path) -> None:
    if not os.path.lexists(folder):
        os.rename(new, folder)
        return
    if _exchange(new, folder):
        return
    old = _leftover(folder, "old")
    os.rename(folder, old)
    try:
        os.rename(new, folder)
    except BaseException:
        os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)
