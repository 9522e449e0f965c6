"""The environment a record was measured in: host, CPU, threads, library versions, GPU, driver, git commit."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import torch

from bench import devices

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            return out.stdout.strip()
    return None


COMMIT_ENV = "BENCH_COMMIT"  # the commit of a copy of the tree without .git (scripts/gpu-check.sh passes it on)
DIRTY_ENV = "BENCH_DIRTY"  # 1 or 0: whether that copy's tracked files had uncommitted changes
_SHA = re.compile(r"[0-9a-f]{7,64}")


def git_commit() -> dict:
    """The project's commit and whether the tree had uncommitted changes. Without a git checkout of this very
    folder (a copy of the tree, as a lent GPU machine gets, or one inside another repository): BENCH_COMMIT and
    BENCH_DIRTY, as the GPU check's caller set them. commit is null unless it is a hex hash, dirty unless 1 or 0."""
    top = _run(["git", "rev-parse", "--show-toplevel"], PROJECT_ROOT)
    commit = _run(["git", "rev-parse", "HEAD"], PROJECT_ROOT) if top and Path(top).resolve() == PROJECT_ROOT else None
    if commit:
        status = _run(["git", "status", "--porcelain", "--untracked-files=no"], PROJECT_ROOT)
        return {"commit": commit, "dirty": bool(status) if status is not None else None}
    given = os.environ.get(COMMIT_ENV, "").strip().lower()
    if not _SHA.fullmatch(given):
        return {"commit": None, "dirty": None}
    return {"commit": given, "dirty": {"1": True, "0": False}.get(os.environ.get(DIRTY_ENV, "").strip())}


def _gpus() -> list[dict]:
    gpus = []
    driver = None
    if torch.cuda.is_available():
        driver = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
        driver = driver.splitlines()[0] if driver else None
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append({"device": f"cuda:{i}", "name": p.name, "memory_bytes": int(p.total_memory),
                         "capability": f"{p.major}.{p.minor}", "multiprocessors": p.multi_processor_count,
                         "driver": driver})
    if "mps" in devices.available():
        gpus.append({"device": "mps", "name": devices.name("mps")})
    return gpus


@lru_cache(maxsize=1)
def environment() -> dict:
    """Collected once per process: it runs nvidia-smi and git."""
    import torchvision

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    physical = None
    with contextlib.suppress(ImportError):
        import psutil

        physical = psutil.cpu_count(logical=False)
    return {
        "host": platform.node(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_model": devices.cpu_model(),
        "cpu_logical_cores": os.cpu_count(),
        "cpu_physical_cores": physical,
        "cpu_threads_available": devices.default_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "gpus": _gpus(),
        "git": git_commit(),
    }
