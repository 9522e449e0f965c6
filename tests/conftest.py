"""Shared fixtures: tiny datasets and records, so tests train for milliseconds, not minutes."""

from __future__ import annotations

import numpy as np
import pytest

from bench.config import Budget, CellConfig
from bench.data import Dataset
from bench.records import SCHEMA_VERSION, Record
from bench.schema import decode
from tests.formats import write_fashion


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """A plain `pytest` runs each benchmark once, untimed (a smoke test); timing needs --benchmark-only,
    --benchmark-enable, or an option that saves timings."""
    opt = config.option
    if not getattr(opt, "benchmark_only", True):
        wants_timing = opt.benchmark_enable or opt.benchmark_json or opt.benchmark_autosave or opt.benchmark_save
        if not wants_timing:
            opt.benchmark_disable = True


@pytest.fixture(autouse=True)
def _run_in_a_scratch_folder(tmp_path_factory, monkeypatch):
    """Each test runs in its own empty folder, so nothing a command writes by default (./results, ./reports,
    ./data) lands in the checkout."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def tiny_dataset(n_train=64, n_test=32, size=32, channels=3, seed=0) -> Dataset:
    """Random images whose class is written into the mean brightness, so a few steps learn something."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, size=(n, size, size, channels)) + (labels * 19)[:, None, None, None]
        return images.astype(np.uint8), labels.astype(np.int64)

    tx, ty = make(n_train)
    vx, vy = make(n_test)
    return Dataset(name="synthetic", train_images=tx, train_labels=ty, test_images=vx, test_labels=vy,
                   classes=tuple(str(i) for i in range(10)), source="test fixture", reason="test fixture")


@pytest.fixture
def tiny():
    return tiny_dataset()


@pytest.fixture
def fashion(tmp_path):
    """A tiny Fashion-MNIST in the real idx format (64 train, 20 test images), for `bench run` end to end; a module
    that needs another size defines its own."""
    folder = tmp_path / "fm"
    write_fashion(folder, gz=True, n_train=64, n_test=20)
    return folder


def make_cell(**kw) -> CellConfig:
    base = dict(dataset="synthetic", device="cpu", pipeline="resident", batch_size=4, width=1.0, threads=1,
                budget=Budget.parse("10steps"), lr=0.01, warmup_steps=2, workers=0, eval_points=2)
    base.update(kw)
    return CellConfig(**base)


def record_dict(status="ok", step_seconds=(0.01, 0.011, 0.009), device="cpu", **cell_kw) -> dict:
    """A record as its JSON object, for tests that edit fields before reading it back."""
    cell = make_cell(device=device, **cell_kw)
    steps = list(step_seconds)
    return {
        "cell": cell.to_dict(), "status": status, "run_id": "run-1", "created_utc": "2026-11-26T00:00:00+00:00",
        "env": {"host": "testhost", "torch": "2.x", "git": {"commit": "abc", "dirty": False}},
        "device_name": "Test CPU", "model": {"parameters": 62006, "train_flops_per_image": 3_204_720},
        "timing": {"steps": len(steps), "samples": len(steps) * cell.batch_size, "train_seconds": sum(steps),
                   "eval_seconds": 0.1, "step_seconds": steps, "blocks": [[len(steps), sum(steps)]] if steps else []},
        "accuracy_curve": [{"step": 0, "samples": 0, "seconds": 0.0, "accuracy": 0.1},
                           {"step": len(steps), "samples": len(steps) * cell.batch_size, "seconds": sum(steps),
                            "accuracy": 0.5}] if status == "ok" else [],
        "schema_version": SCHEMA_VERSION,
    }


def make_record(status="ok", step_seconds=(0.01, 0.011, 0.009), device="cpu", **cell_kw) -> Record:
    return as_record(record_dict(status, step_seconds, device, **cell_kw))


def as_record(d: dict) -> Record:
    """A record read from its JSON object, through the same types and checks as a results file."""
    return decode(Record, d, "")
