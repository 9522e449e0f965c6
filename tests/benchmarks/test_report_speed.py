"""How long a report takes, as a user runs it: `bench report` in a fresh interpreter, on the committed H200
reference (61 cells) and on 1,000 synthetic records. Timed, so run with --benchmark-only."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import reportdata as rd

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "reports" / "reference" / "h200-2026-11-27" / "results"
REFERENCE_SECONDS = 3.0  # asked of `bench report` on the reference, on a 2-core machine
THOUSAND_SECONDS = 20.0  # asked of it on 1,000 records


@pytest.fixture(autouse=True)
def only_when_timing(timing):
    if not timing:
        pytest.skip("a timing measurement: run with --benchmark-only")


def report_seconds(results: Path, reports: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench", "report", str(results), "--reports", str(reports), "--name", "r"],
                   cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t0


def test_report_on_the_h200_reference(benchmark, tmp_path):
    seconds = []
    benchmark.pedantic(lambda: seconds.append(report_seconds(REFERENCE, tmp_path)), rounds=3, iterations=1)
    benchmark.extra_info.update(cells=61, seconds=seconds)
    assert statistics.median(seconds) <= REFERENCE_SECONDS, seconds


def test_report_on_a_thousand_records(benchmark, tmp_path):
    records = rd.many(1000)
    rd.write(tmp_path / "results" / "records.jsonl", records)
    seconds = []
    benchmark.pedantic(lambda: seconds.append(report_seconds(tmp_path / "results", tmp_path)), rounds=1,
                       iterations=1)
    benchmark.extra_info.update(cells=len(records), seconds=seconds)
    assert seconds[0] <= THOUSAND_SECONDS, seconds
