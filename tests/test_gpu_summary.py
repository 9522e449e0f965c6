"""scripts/gpu_summary.py over the committed H200 reference of 2026-11-28: the figures the GPU check exists for,
read from the records as they came back (no GPU, no torch needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bench import pairing
from bench.results import load

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reports" / "reference" / "h200-2026-11-28"
spec = importlib.util.spec_from_file_location("gpu_summary", ROOT / "scripts" / "gpu_summary.py")
gs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gs)


@pytest.fixture(scope="module")
def df():
    return load([REFERENCE / "results"])


def test_the_headline_is_the_tutorial_configuration_on_one_machine(df):
    lines = gs.headline(df)
    assert any(line.startswith("as written: cuda:0 1,368 images/s, cpu at 4 threads 1,509: 0.91x [0.68-1.19]")
               for line in lines), lines
    assert not any("ACROSS MACHINES" in line for line in lines)


def test_energy_gives_one_tutorial_cell_per_device_not_the_thread_probe_s(df):
    """The CPU's tutorial configuration ran at five thread counts in the probe and once in the headline: one line."""
    lines = [line for line in gs.energy(pairing.usable(df)) if line.startswith("tutorial configuration")]
    assert len(lines) == 2, lines
    cpu, gpu = sorted(lines)
    assert cpu.startswith("tutorial configuration, cpu at 4 threads batch 4 eager: no figure (unavailable)")
    assert gpu.startswith("tutorial configuration, cuda:0 batch 4 eager: 0.0903 J per image (nvml, measured)")


def test_eager_against_a_cuda_graph_at_batch_4(df):
    lines = gs.graphs(pairing.usable(df))
    assert any(line.startswith("batch 4: eager 1,647 images/s, cudagraph 24,032 images/s: 14.60x") for line in lines)


def test_the_whole_summary_has_every_part(capsys):
    assert gs.main(REFERENCE) == 0
    text = capsys.readouterr().out
    for part in ("== the tutorial configuration", "== the CPU's thread probe", "== eager against a CUDA graph",
                 "== the highest images/s on cuda", "== energy", "== timing cross-checks", "== every cell: 73",
                 "== pytest-benchmark suite: 18 train-step cells"):
        assert part in text, part
    assert "harness/torch_utils_benchmark = 1.038" in text
