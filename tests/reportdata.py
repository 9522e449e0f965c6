"""Fixture records for report, verdict and compare tests: CPU and GPU cells from a simple cost model, with
seeded noise, accuracy curves, environments and step-time breakdowns. No training, no device."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bench.records import Record
from tests.conftest import as_record, record_dict

TRAIN_SIZE = 50_000
ENV = {
    "alpha": {"host": "alpha", "os": "Linux-6.1", "python": "3.11.2", "cpu_model": "AMD EPYC 7B13",
              "cpu_logical_cores": 16, "cpu_physical_cores": 8, "cpu_threads_available": 16, "torch": "2.14.1",
              "torchvision": "0.29.1", "cuda": "12.8", "cudnn": 91000,
              "gpus": [{"device": "cuda:0", "name": "NVIDIA H100 80GB HBM3", "memory_bytes": 85_520_000_000,
                        "capability": "9.0", "multiprocessors": 132, "driver": "580.159.04"}],
              "git": {"commit": "0123456789abcdef", "dirty": False}},
    "beta": {"host": "beta", "os": "Linux-6.8", "python": "3.12.3", "cpu_model": "Intel Core i7-1185G7",
             "cpu_logical_cores": 8, "cpu_physical_cores": 4, "cpu_threads_available": 8, "torch": "2.14.1",
             "torchvision": "0.29.1", "cuda": None, "cudnn": None, "gpus": [],
             "git": {"commit": "0123456789abcdef", "dirty": True}},
}


def step_model(device: str, pipeline: str, batch: int, width: float, scale: float = 1.0) -> float:
    """Median seconds per step: a fixed overhead plus work per image; the GPU's overhead is larger, its work
    per image far smaller; the tutorial's DataLoader adds a per-step cost on every device."""
    loader = 0.0015 if pipeline == "tutorial" else 0.0
    if device == "cpu":
        return scale * (0.0003 + 0.00004 * batch * width ** 2 + loader)
    return scale * (0.0009 + 0.0000004 * batch * width ** 2 + loader)


def record(device: str = "cpu", pipeline: str = "resident", batch: int = 4, width: float = 1.0, *,
           host: str = "alpha", status: str = "ok", message: str = "", threads: int = 16, seed: int = 0,
           scale: float = 1.0, n: int = 60, noise: float = 0.04, run_id: str = "run-1",
           created: str = "2026-11-26T00:00:00+00:00", profile: bool = True) -> Record:
    rng = np.random.default_rng(seed + batch * 7 + int(width * 13) + len(device) + len(host) * 3)
    median = step_model(device, pipeline, batch, width, scale)
    steps = (median * np.exp(rng.normal(0, noise, n))).tolist() if status == "ok" else []
    r = record_dict(status=status, step_seconds=steps, device=device, pipeline=pipeline, batch_size=batch,
                    width=float(width), threads=threads, budget=_budget())
    env = ENV[host]
    name = env["gpus"][0]["name"] if device.startswith("cuda") else env["cpu_model"]
    curve = []
    if status == "ok":
        spe = TRAIN_SIZE // batch
        for k in range(5):
            step = k * spe // 2
            acc = 0.1 + (0.5 + 0.04 * np.log2(width)) * (1 - np.exp(-step * batch / 30_000)) \
                - (0.03 if batch >= 256 else 0)
            curve.append({"step": step, "samples": step * batch, "seconds": step * median, "accuracy": float(acc)})
    blocks = [[len(steps[i:i + 5]), sum(steps[i:i + 5])] for i in range(0, len(steps), 5)]  # 5 steps a block
    timing = dict(r["timing"], warmup_steps=20, clock="events" if device != "cpu" else "host", blocks=blocks,
                  steps=len(steps), samples=len(steps) * batch,
                  train_seconds=curve[-1]["seconds"] if curve else r["timing"]["train_seconds"])
    prof = None
    if profile and status == "ok":
        compute = max(median * 1e3 - (1.5 if pipeline == "tutorial" else 0.0), 0.1 * median * 1e3)
        prof = {"method": "synchronized section timers", "steps": 30,
                "sections_ms": {"data": 1.4 if pipeline == "tutorial" else 0.02,
                                "h2d": 0.05 if pipeline == "tutorial" and device != "cpu" else 0.0,
                                "forward": 0.4 * compute, "backward": 0.45 * compute, "optimizer": 0.15 * compute}}
        prof["total_ms"] = sum(prof["sections_ms"].values())
    return as_record(dict(r, env=env, device_name=name, message=message, timing=timing, accuracy_curve=curve,
                          dataset={"name": "synthetic", "train_size": TRAIN_SIZE, "test_size": 10_000},
                          profile=prof, run_id=run_id, created_utc=created,
                          memory={"peak_bytes": 1_000_000} if status != "unavailable" else {}))


def _budget():
    from bench.config import Budget

    return Budget.parse("2ep")


def grid(devices=("cpu", "cuda:0"), batches=(4, 16, 64, 256), widths=(1, 2, 4), host="alpha", **kw) -> list[Record]:
    """The tutorial configuration, resident batches at width 1, and widths at batch 4, on each device."""
    out = []
    for dev in devices:
        out.append(record(dev, "tutorial", 4, 1, host=host, **kw))
        out += [record(dev, "resident", b, 1, host=host, **kw) for b in batches]
        out += [record(dev, "resident", 4, w, host=host, **kw) for w in widths if w != 1]
    return out


def write(path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.to_json() + "\n" for r in records))


ENV["gamma"] = dict(ENV["alpha"], host="gamma",
                    gpus=[dict(ENV["alpha"]["gpus"][0], name="NVIDIA H200", memory_bytes=150_000_000_000)])


def many(count: int) -> list[Record]:
    """count distinct cells of a large grid: machines x devices x batches x widths x eager and tuned, each of
    realistic size (2,000 step times, an accuracy curve and a breakdown)."""
    batches = [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
    out = []
    for m in range(-(-count // 220)):
        host = f"node{m}"
        ENV.setdefault(host, dict(ENV["alpha" if m % 2 == 0 else "gamma"], host=host))
        for device in ("cpu", "cuda:0"):
            for batch in batches:
                for width in (1, 2, 4, 8, 16):
                    for variant in ("", "fast"):
                        r = record(device, "resident", batch, width, host=host, seed=len(out), n=2000)
                        if variant:
                            r = replace(r, cell=replace(r.cell, variant=variant, tune=("channels_last",)))
                        out.append(r)
    return out[:count]


NO_RAPL = "no RAPL counters at /sys/class/powercap (a virtual machine usually has none)"


def figure(r: Record, method: str, watts: float | None = None, reason: str = "", source: str = ""):
    """One device's energy over r's blocks: a constant `watts` in every window (None: unavailable)."""
    from bench.records import DeviceEnergy

    blocks = r.timing.blocks
    seconds = sum(s for _, s in blocks)
    known = method != "unavailable"
    source = source or {"rapl": "RAPL package-0", "nvml": "NVML total energy, GPU 0",
                        "estimate": f"--cpu-watts {watts:g}" if known else ""}.get(method, "")
    return DeviceEnergy(method, joules=watts * seconds if known else None, seconds=seconds, windows=len(blocks),
                        window_joules=tuple(watts * s for _, s in blocks) if known else (), source=source,
                        reason=reason or (NO_RAPL if method == "unavailable" else ""))


def with_energy(r: Record, own: tuple, host: tuple | None = None) -> Record:
    """r with energy for its device (own = (method, watts[, reason])) and, for a GPU cell, its host CPU."""
    energy = {r.cell.device: figure(r, *own)}
    if host is not None:
        energy["cpu"] = figure(r, *host)
    return replace(r, energy=energy)
