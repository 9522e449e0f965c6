"""What one energy read costs: RAPL on a fake powercap tree, a user's watts, and a whole meter window.

    pytest tests/benchmarks/test_energy_read.py --benchmark-only

The reads happen between blocks, off the clock, so this is the time they add to a run, not to a measured step.
A file on tmpfs or disk stands in for sysfs: the kernel's energy_uj read (an MSR read on the package) costs more,
and NVML's read is a driver call that only a GPU machine can time.
"""

from __future__ import annotations

import pytest

from bench.energy import Meter, RaplCounter, meter_for


@pytest.fixture(autouse=True)
def only_when_timing(timing):
    if not timing:
        pytest.skip("a timing: run with --benchmark-only")


@pytest.fixture
def powercap(tmp_path):
    for i in (0, 1):  # a two-socket host: two package zones, each with a core subdomain that is skipped
        for zone, name in ((f"intel-rapl:{i}", f"package-{i}"), (f"intel-rapl:{i}:0", "core")):
            d = tmp_path / zone
            d.mkdir()
            (d / "name").write_text(name + "\n")
            (d / "energy_uj").write_text("123456789012\n")
            (d / "max_energy_range_uj").write_text("262143328850\n")
    return tmp_path


def test_rapl_read(benchmark, powercap):
    counter = RaplCounter(powercap)
    assert benchmark(counter.read) == (123456789012, 123456789012)


def test_rapl_window(benchmark, powercap):
    """start() and stop(): two reads of both packages, two clock reads, the joules of the window."""
    meter = meter_for("cpu", powercap=powercap)

    def window():
        meter.start()
        meter.stop()

    benchmark(window)
    assert meter.result()["cpu"]["method"] == "rapl"


def test_estimate_window(benchmark, tmp_path):
    meter = meter_for("cpu", cpu_watts=65, powercap=tmp_path / "absent")

    def window():
        meter.start()
        meter.stop()

    benchmark(window)
    assert meter.result()["cpu"]["method"] == "estimate"


def test_unavailable_window(benchmark, tmp_path):
    """This machine's case: no counter, so a window is two clock reads."""
    meter: Meter = meter_for("cpu", powercap=tmp_path / "absent")

    def window():
        meter.start()
        meter.stop()

    benchmark(window)
    assert meter.result()["cpu"]["method"] == "unavailable"
