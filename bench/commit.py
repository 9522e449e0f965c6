"""Which commit of this project ran: the caller's word (BENCH_COMMIT, BENCH_DIRTY), else git's for this very folder.

Stdlib only: bench.env records it, and scripts/gpu_check.py (which refuses bad arguments before anything imports
torch) names it in its summary and in the command it prints for a lent GPU machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from pathlib import Path

COMMIT_ENV = "BENCH_COMMIT"  # the commit of a copy of the tree without .git (scripts/gpu-check.sh passes it on)
DIRTY_ENV = "BENCH_DIRTY"  # 1 or 0: whether that copy's tracked files had uncommitted changes
_SHA = re.compile(r"[0-9a-f]{7,64}")


def given() -> tuple[str, bool | None] | None:
    """(commit, dirty) as the caller named them, or None where BENCH_COMMIT is not a hex hash. It comes first: a
    lent machine's copy of the tree may carry a stale .git from an older checkout, which names the wrong commit.
    dirty is None unless BENCH_DIRTY is 1 or 0."""
    commit = os.environ.get(COMMIT_ENV, "").strip().lower()
    if not _SHA.fullmatch(commit):
        return None
    return commit, {"1": True, "0": False}.get(os.environ.get(DIRTY_ENV, "").strip())


def from_git(root: Path) -> tuple[str | None, bool | None]:
    """(commit, whether tracked files changed) of a git checkout of root itself (not one it sits inside);
    (None, None) elsewhere, dirty None where git status could not say."""
    top = _git(root, "rev-parse", "--show-toplevel")
    commit = _git(root, "rev-parse", "HEAD") if top and Path(top).resolve() == Path(root).resolve() else None
    if not commit:
        return None, None
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def _git(root: Path, *args: str) -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            return out.stdout.strip()
    return None
