"""Fixtures of the benchmark suite: the dataset, the device grid, and whether timing is on."""

from __future__ import annotations

import os

import pytest

from bench import data, devices
from tests.conftest import tiny_dataset

ALWAYS_LISTED = ("cpu", "cuda:0", "mps")  # listed even when absent, so their absence shows as a skip with a reason


def _list(name: str, default: str, convert) -> list:
    return [convert(v) for v in os.environ.get(name, default).split(",") if v.strip()]


BATCHES = _list("BENCH_BATCHES", "4,32,256,1024", int)
WIDTHS = _list("BENCH_WIDTHS", "1,4,16", float)
DEVICES = list(dict.fromkeys([*ALWAYS_LISTED, *devices.available()]))


def timing_enabled(config) -> bool:
    return not config.getoption("benchmark_disable") or config.getoption("benchmark_enable")


@pytest.fixture(scope="session")
def timing(request) -> bool:
    """True under `pytest --benchmark-only` (or --benchmark-enable); False in a plain `pytest`, where each
    benchmark runs once as a smoke test."""
    return timing_enabled(request.config)


@pytest.fixture(scope="session")
def bench_data(timing):
    """The synthetic CIFAR-shaped set when timing (2 s to generate), a small stand-in for smoke runs."""
    return data.load("synthetic", seed=0) if timing else tiny_dataset(n_train=2048, n_test=64)


def require(device: str) -> None:
    if device not in devices.available():
        pytest.skip(f"{device} is not present on this machine (present: {', '.join(devices.available())})")
