"""The environment a record was measured in: host, CPU, threads, library versions, GPU, driver, git commit."""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import torch

import bench
from bench import commit, devices
from bench.records import Environment, Git, Gpu

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            return out.stdout.strip()
    return None


COMMIT_ENV, DIRTY_ENV = commit.COMMIT_ENV, commit.DIRTY_ENV


def git_commit() -> Git:
    """The project's commit and whether the tree had uncommitted changes (bench.commit: the caller's word, else
    git's for this very folder); commit is null unless it is a hex hash, dirty unless known."""
    return Git(*(commit.given() or commit.from_git(PROJECT_ROOT)))


def machine_id() -> str | None:
    """A short hash of the OS install's id: two machines with one host name differ here; nothing identifying
    leaves the machine (the id itself is not recorded)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            text = Path(path).read_text().strip()
            if text:
                return hashlib.sha256(f"bench:{text}".encode()).hexdigest()[:12]
    return None


def _gpus() -> list[Gpu]:
    gpus = []
    driver = None
    if torch.cuda.is_available():
        driver = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
        driver = driver.splitlines()[0] if driver else None
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append(Gpu(device=f"cuda:{i}", name=p.name, memory_bytes=int(p.total_memory),
                            capability=f"{p.major}.{p.minor}", multiprocessors=p.multi_processor_count,
                            driver=driver))
    if "mps" in devices.available():
        gpus.append(Gpu(device="mps", name=devices.name("mps")))
    return gpus


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Collected once per process: it runs nvidia-smi and git."""
    import psutil
    import torchvision

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return Environment(
        host=platform.node(),
        machine_id=machine_id(),
        os=platform.platform(),
        python=sys.version.split()[0],
        cpu_model=devices.cpu_model(),
        cpu_logical_cores=os.cpu_count(),
        cpu_physical_cores=psutil.cpu_count(logical=False),
        cpu_threads_available=devices.default_threads(),
        memory_bytes=psutil.virtual_memory().total,
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        cuda=torch.version.cuda,
        cudnn=cudnn,
        gpus=tuple(_gpus()),
        git=git_commit(),
        bench=bench.__version__,
    )
