"""The benchmark suite: one training step (forward, backward, optimizer step) per device x pipeline x batch x width.

    pytest --benchmark-only                          # time every cell on every present device
    pytest --benchmark-only --benchmark-json out.json && bench report out.json

Each round runs k steps and synchronizes the device once, so pytest-benchmark's timer (which never synchronizes)
measures the device's work rather than its enqueueing. Statistics are per round; extra_info carries per-step
figures: images/s, FLOPs per image, achieved FLOP/s, the per-step seconds of every round, and the machine's identity
(bench.pbjson.machine_extra), so that a report joins these rows to a bench run's records from the same machine.
"""

from __future__ import annotations

import os

import pytest
import torch

from bench import devices, pbjson, peaks, stats, variants
from bench.config import Budget, CellConfig, default_lr
from bench.env import environment
from bench.steprunner import StepRunner, plan_rounds
from bench.preparation import build_model
from bench.train import model_facts
from tests.benchmarks.conftest import BATCHES, DEVICES, WIDTHS, require

SMOKE_MAX_CPU_FLOPS = 5e9  # per step: cells heavier than this are only timed, not smoke-run, on the CPU
BENCHMARK_SCHEMA = "bench-train-step/1"
SECONDS_PER_CELL = float(os.environ.get("BENCH_SECONDS", "2"))  # timed work per cell, about


def _cells():
    for device in DEVICES:
        # eager everywhere; on CUDA also the tuned resident step (bf16, channels_last, cuDNN autotune, CUDA graph)
        tunes = [(), variants.resolve(("fast",), device, "resident")] if devices.kind(device) == "cuda" else [()]
        for tune in tunes:
            for batch in BATCHES:
                for width in WIDTHS:
                    yield device, "resident", batch, width, tune
        # the tutorial's DataLoader pipeline, where it makes sense: the tutorial net at small batches
        for batch in (b for b in BATCHES if b <= 32):
            if 1.0 in WIDTHS:
                yield device, "tutorial", batch, 1.0, ()


def _id(cell):
    device, pipeline, batch, width, tune = cell
    return f"{device}-{pipeline}-bs{batch}-w{width:g}" + ("-tuned" if tune else "")


CELLS = list(_cells())


def make_cell(device, pipeline, batch, width, tune, dataset) -> CellConfig:
    return CellConfig(dataset=dataset, device=device, pipeline=pipeline, batch_size=batch, width=width,
                      threads=devices.default_threads(), budget=Budget.parse("1ep"), lr=default_lr(batch),
                      warmup_steps=0, eval_points=0, workers=2 if pipeline == "tutorial" else 0, tune=tune)


@pytest.mark.parametrize("cell", CELLS, ids=[_id(c) for c in CELLS])
def test_train_step(benchmark, bench_data, timing, cell):
    device, pipeline, batch, width, tune = cell
    require(device)
    config = make_cell(device, pipeline, batch, width, tune, bench_data.name)
    facts = model_facts(build_model(config, bench_data), bench_data)
    if not timing and devices.kind(device) == "cpu" and facts.train_flops_per_image * batch > SMOKE_MAX_CPU_FLOPS:
        pytest.skip("heavy on a CPU: timed under --benchmark-only, not smoke-run")
    runner = StepRunner(config, bench_data)
    benchmark.group = f"{pipeline} bs{batch} w{width:g}"
    info = benchmark.extra_info
    info.update(schema=BENCHMARK_SCHEMA, device=device, device_name=devices.name(device), pipeline=pipeline,
                batch_size=batch, width=width, threads=config.threads, dataset=bench_data.name, tune=list(tune), variant="fast" if tune else "",
                lr=config.lr, torch=torch.__version__, flops_per_image=facts.train_flops_per_image,
                parameters=facts.parameters, machine=pbjson.machine_extra(environment()))
    try:
        with devices.cpu_threads(config.threads):
            if not timing:
                benchmark(runner.run, 1)  # benchmarks disabled: runs once, untimed
                return
            per_round, rounds = plan_rounds(runner.seconds_per_step(), total_seconds=SECONDS_PER_CELL)
            benchmark.pedantic(runner.run, args=(per_round,), rounds=rounds, warmup_rounds=1, iterations=1)
    finally:
        runner.close()
    step_seconds = [d / per_round for d in benchmark.stats.stats.data]
    median = stats.median(step_seconds)
    achieved = facts.train_flops_per_image * batch / median
    peak = peaks.peak_flops(info["device_name"], peaks.precision_of(tune, device))
    info.update(steps_per_round=per_round, step_seconds=step_seconds, images_per_s=batch / median,
                achieved_flops=achieved, peak_fraction=achieved / peak if peak else None)

