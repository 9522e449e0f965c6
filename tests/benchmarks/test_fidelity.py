"""Does the harness measure what it claims? Its step times against a bare loop and torch.utils.benchmark,
its repeatability, and the resident pipeline against the tutorial's. Timed, so run with --benchmark-only."""

from __future__ import annotations

import time

import pytest
from torch.utils import benchmark as tub

from bench import devices, stats
from bench.records import Environment
from bench.config import Budget, CellConfig, default_lr
from bench.steprunner import StepRunner
from bench.train import train
from tests.benchmarks.conftest import require

ENV = Environment(host="benchmark")
TOLERANCE = 0.05  # relative agreement asked of the harness on the CPU


@pytest.fixture(autouse=True)
def only_when_timing(timing):
    if not timing:
        pytest.skip("a timing comparison: run with --benchmark-only")


def cell(device, pipeline="resident", batch=4, steps=3000) -> CellConfig:
    return CellConfig(dataset="synthetic", device=device, pipeline=pipeline, batch_size=batch, width=1.0,
                      threads=devices.default_threads(), budget=Budget.parse(f"{steps}steps"), lr=default_lr(batch),
                      eval_points=0, warmup_steps=50, workers=2)


def harness_median(c: CellConfig, data) -> float:
    return stats.median(train(c, data, ENV, "fidelity").timing.step_seconds)


def bare_loop_median(c: CellConfig, data, blocks: int = 30, block_steps: int = 100) -> float:
    """The same steps with nothing but a clock read around each block of 100 steps."""
    runner = StepRunner(c, data)
    try:
        with devices.cpu_threads(c.threads):
            runner.run(50)
            per_step = []
            for _ in range(blocks):
                t0 = time.perf_counter()
                runner.run(block_steps)
                per_step.append((time.perf_counter() - t0) / block_steps)
    finally:
        runner.close()
    return stats.median(per_step)


def torch_benchmark_median(c: CellConfig, data) -> float:
    runner = StepRunner(c, data)
    try:
        # the Timer synchronizes CUDA around each block of its own; a synchronize per step would add its cost
        timer = tub.Timer(stmt="runner.run(1, sync=False)", globals={"runner": runner}, num_threads=c.threads)
        return timer.blocked_autorange(min_run_time=3).median
    finally:
        runner.close()


def check_agreement(benchmark, data, device, batch, reference: str, measure_reference, harness_runs=1):
    """Time the cell with the harness and with a reference method; within TOLERANCE on the CPU (the bound
    asked for); on a GPU the ratio is recorded for the notes."""
    require(device)
    c = cell(device, batch=batch, steps=3000 if batch == 4 else 300)
    result = {}

    def measure():
        result["harness"] = stats.median([harness_median(c, data) for _ in range(harness_runs)])
        result[reference] = measure_reference(c, data)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    ratio = result["harness"] / result[reference]
    benchmark.extra_info.update(device=device, batch_size=batch, threads=c.threads, ratio=ratio, **result)
    if devices.kind(device) == "cpu":
        assert abs(ratio - 1) <= TOLERANCE, result


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
@pytest.mark.parametrize("batch", [4, 256])
def test_harness_agrees_with_a_bare_loop(benchmark, bench_data, device, batch):
    check_agreement(benchmark, bench_data, device, batch, "bare_loop", bare_loop_median, harness_runs=2)


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
@pytest.mark.parametrize("batch", [4, 256])
def test_harness_agrees_with_torch_utils_benchmark(benchmark, bench_data, device, batch):
    check_agreement(benchmark, bench_data, device, batch, "torch_utils_benchmark", torch_benchmark_median)


def test_tutorial_step_is_repeatable_on_the_cpu(benchmark, bench_data):
    """Five repeats of the tutorial configuration (its DataLoader pipeline, batch 4): CV of the medians <= 5%."""
    c = cell("cpu", pipeline="tutorial", batch=4, steps=2000)
    medians = []
    benchmark.pedantic(lambda: medians.extend(harness_median(c, bench_data) for _ in range(5)), rounds=1)
    cv = stats.coefficient_of_variation(medians)
    benchmark.extra_info.update(step_medians_s=medians, coefficient_of_variation=cv)
    assert cv <= 0.05, medians


def test_resident_trains_twice_as_fast_as_the_tutorial_pipeline_at_batch_4(benchmark, bench_data):
    rates = {}

    def measure():
        for pipeline in ("tutorial", "resident"):
            r = train(cell("cpu", pipeline, 4, steps=4000), bench_data, ENV, "fidelity")
            rates[pipeline] = r.timing.samples / r.timing.train_seconds

    benchmark.pedantic(measure, rounds=1, iterations=1)
    ratio = rates["resident"] / rates["tutorial"]
    benchmark.extra_info.update(images_per_s=rates, ratio=ratio)
    assert ratio >= 2.0, rates
