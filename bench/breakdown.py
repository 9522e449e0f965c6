"""The step-time breakdown: a separate profiling pass that times each section of a training step.

    from bench.breakdown import profile_step; profile_step(cell, data).sections_ms

It runs after a cell's timed training (never inside it), on a fresh copy of the cell's model and pipeline, with
the cell's own --tune options (autocast, memory format, pinned copies), and synchronizes the device between
sections so each section's time is its own. A step that runs as one unit (a CUDA graph, a compiled step) is
recorded as not profiled. That synchronization removes the
overlap of host and device work, so the sections add up to more than the timed step on a GPU: the breakdown
says where the time goes, the timed run says how long a step takes.
"""

from __future__ import annotations

import time
from typing import Iterator

import torch
from torch import nn

from bench import devices, tuning
from bench.config import CellConfig
from bench.data import Dataset
from bench.devices import Clock
from bench.pipelines import TutorialBatches
from bench.method import BREAKDOWN_MAX_SECONDS as MAX_SECONDS
from bench.method import BREAKDOWN_METHOD as METHOD
from bench.method import BREAKDOWN_MIN_STEPS as MIN_STEPS
from bench.method import BREAKDOWN_STEPS as STEPS
from bench.method import BREAKDOWN_WARMUP_STEPS as WARMUP_STEPS
from bench.method import SECTIONS
from bench.preparation import build_model, prepare
from bench.records import Profile
from bench.variants import kind


def _host_batches(batches) -> Iterator[tuple]:
    """Batches as the pipeline fetches them, before any copy to the device: the tutorial's DataLoader output
    (copied in the h2d section), or the resident pipeline's on-device index selections (nothing to copy)."""
    if isinstance(batches, TutorialBatches):
        yield from batches.host()
    else:
        yield from batches


# Tuned paths whose step runs as one unit: timing its sections apart would profile another step than the timed one.
NOT_PROFILED = {"cudagraph": "a CUDA graph replays forward, backward and the optimizer step as one launch",
                "compile": "torch.compile fuses the step's sections into compiled kernels"}


def profile_step(cell: CellConfig, data: Dataset, steps: int = STEPS, warmup: int = WARMUP_STEPS,
                 max_seconds: float = MAX_SECONDS, clock: Clock = time.perf_counter) -> Profile:
    """Mean milliseconds per section of a training step (data, h2d, forward, backward, optimizer) and their
    total, with the raw per-step seconds. Out of memory becomes an "error" entry, not an exception."""
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps must be >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    whole = NOT_PROFILED.keys() & set(cell.tune)
    if whole:
        return Profile(method=METHOD, steps=0, error=f"not profiled: {NOT_PROFILED[min(whole)]}")
    try:
        with devices.cpu_threads(cell.threads), tuning.applied(cell.tune):
            return _profile(cell, data, steps, warmup, max_seconds, clock)
    except Exception as exc:  # noqa: BLE001 - only out-of-memory is turned into a result here
        if not devices.is_out_of_memory(exc):
            raise
        devices.release_memory(cell.device)
        return Profile(method=METHOD, steps=0, error=f"out of memory: {str(exc).splitlines()[0]}")


def _profile(cell: CellConfig, data: Dataset, steps: int, warmup: int, max_seconds: float, clock: Clock) -> Profile:
    device = cell.device
    prep = prepare(cell, data, build_model(cell, data))
    net, optimizer = prep.net, prep.optimizer
    criterion = nn.CrossEntropyLoss()
    # the timed step's own options: bf16 autocast (fp16 with a GradScaler), channels_last, pinned copies
    dtype = tuning.amp_dtype(device) if "amp" in cell.tune else None
    scaler = torch.amp.GradScaler(kind(device)) if dtype == torch.float16 else None
    channels_last = "channels_last" in cell.tune
    non_blocking = "pinned" in cell.tune
    resident = not isinstance(prep.batches, TutorialBatches)
    source = _host_batches(prep.batches)
    seconds: dict[str, list[float]] = {name: [] for name in SECTIONS}

    def sync_clock() -> float:
        devices.synchronize(device)
        return clock()

    optimizer.zero_grad()
    start = sync_clock()
    for i in range(warmup + steps):
        t0 = sync_clock()
        x, y = next(source)
        t1 = sync_clock()
        if resident:
            t2 = t1  # the batch is already on the device: no copy to time
        else:
            x, y = x.to(device, non_blocking=non_blocking), y.to(device, non_blocking=non_blocking)
            t2 = sync_clock()
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=kind(device), dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = criterion(net(x), y)
        t3 = sync_clock()
        (scaler.scale(loss) if scaler else loss).backward()
        t4 = sync_clock()
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad()
        t5 = sync_clock()
        if i < warmup:
            continue
        for name, (a, b) in zip(SECTIONS, [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)]):
            seconds[name].append(b - a)
        if t5 - start > max_seconds and len(seconds["data"]) >= MIN_STEPS:
            break
    del source  # ends the DataLoader's workers
    n = len(seconds["data"])
    means = {name: sum(v) / n * 1e3 for name, v in seconds.items()}
    return Profile(method=METHOD, steps=n, warmup_steps=warmup, sections_ms=means, total_ms=sum(means.values()),
                   section_seconds={k: tuple(v) for k, v in seconds.items()},
                   note="device synchronized after every section: no overlap of data loading and compute")
