"""Energy from records to words: the derived columns, energy to the target, the report's Energy section with
measured, estimated, missing and unrecorded figures mixed, and the verdict's per-joule line (measured only)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from bench import method, prices, sentences, verdict
from bench.report import ReportConfig, render
from bench.results import to_frame
from bench.targets import energy_to_accuracy
from tests import reportdata as rd
from tests.conftest import as_record, record_dict

LONG = 1200  # steps: 1.1 s of windows at the GPU's 0.9 ms resident step, NVML's minimum (method.NVML_MIN_SECONDS)

NO_NVML = "nvidia-ml-py is not installed (pip install nvidia-ml-py)"


def per_image(r, watts: float) -> float:
    return watts * sum(s for _, s in r.timing.blocks) / r.timing.samples


def mixed() -> dict:
    """Cells keyed (device, pipeline, batch): measured, estimated, unavailable and unrecorded energy mixed."""
    base = {(r.cell.device, r.cell.pipeline, r.cell.batch_size): r
            for r in rd.grid(batches=(4, 64, 256), widths=(1,), n=LONG)}
    plan = {
        ("cpu", "tutorial", 4): (("rapl", 40.0), None),
        ("cuda:0", "tutorial", 4): (("nvml", 120.0), ("rapl", 30.0)),
        ("cpu", "resident", 4): (("estimate", 65.0), None),
        ("cuda:0", "resident", 4): (("nvml", 100.0), ("unavailable", None)),
        ("cpu", "resident", 64): (("unavailable", None), None),
        ("cuda:0", "resident", 64): (("unavailable", None, NO_NVML), ("unavailable", None)),
        ("cpu", "resident", 256): (("rapl", 45.0), None),
        ("cuda:0", "resident", 256): (("estimate", 250.0, "", "--gpu-watts 250"), ("rapl", 20.0)),
    }
    out = {k: rd.with_energy(base[k], *plan[k]) for k in plan}
    out[("cuda:0", "resident", 1024)] = rd.record("cuda:0", "resident", 1024, 1, n=LONG)  # from before energy: none
    return out


# --- derived columns ----------------------------------------------------------------------------------------------

def test_joules_per_image_and_watts_per_device_with_the_host_apart():
    cells = mixed()
    df = to_frame(cells.values()).set_index(["device", "pipeline", "batch_size"])
    gpu = df.loc[("cuda:0", "tutorial", 4)]
    r = cells[("cuda:0", "tutorial", 4)]
    assert gpu["energy_method"] == "nvml" and gpu["host_energy_method"] == "rapl"
    assert gpu["joules_per_image"] == pytest.approx(per_image(r, 120.0))  # the GPU alone
    assert gpu["host_joules_per_image"] == pytest.approx(per_image(r, 30.0))
    assert (gpu["watts"], gpu["host_watts"]) == pytest.approx((120.0, 30.0))
    cpu = df.loc[("cpu", "tutorial", 4)]
    assert cpu["energy_method"] == "rapl" and pd.isna(cpu["host_energy_method"])  # a CPU cell has no host apart
    assert cpu["joules_per_image"] == pytest.approx(per_image(cells[("cpu", "tutorial", 4)], 40.0))
    missing = df.loc[("cpu", "resident", 64)]
    assert missing["energy_method"] == "unavailable" and pd.isna(missing["joules_per_image"])
    old = df.loc[("cuda:0", "resident", 1024)]
    assert pd.isna(old["energy_method"]) and old["energy"] is None


def test_energy_to_target_sums_the_blocks_before_the_checkpoint_that_reached_it():
    curve = [{"step": 0, "accuracy": 0.1, "seconds": 0.0}, {"step": 10, "accuracy": 0.4, "seconds": 1.0},
             {"step": 20, "accuracy": 0.6, "seconds": 2.0}]
    by_step = [(5, 1.0), (10, 2.5), (15, 3.0), (20, 4.0)]
    assert energy_to_accuracy(curve, by_step, 0.4) == 2.5
    assert energy_to_accuracy(curve, by_step, 0.55) == 4.0
    assert energy_to_accuracy(curve, by_step, 0.1) == 0.0  # reached before any training
    assert energy_to_accuracy(curve, by_step, 0.7) is None  # never reached
    assert energy_to_accuracy(curve, None, 0.4) is None  # no energy


def test_energy_to_target_of_a_cell_from_its_windows():
    d = record_dict(step_seconds=[0.01] * 6)
    d["timing"]["blocks"] = [[2, 0.02], [2, 0.02], [2, 0.02]]
    d["accuracy_curve"] = [{"step": 0, "samples": 0, "seconds": 0.0, "accuracy": 0.1},
                           {"step": 4, "samples": 16, "seconds": 0.04, "accuracy": 0.5},
                           {"step": 6, "samples": 24, "seconds": 0.06, "accuracy": 0.5}]
    d["energy"] = {"cpu": {"method": "rapl", "joules": 6.0, "seconds": 0.06, "windows": 3,
                           "window_joules": [1.0, 2.0, 3.0], "source": "RAPL package-0"}}
    e = prices.energies(to_frame([as_record(d)]), target=0.5)
    assert e.iloc[0]["energy_to_target"] == 3.0  # the first two blocks: the checkpoint at step 4
    assert e.iloc[0]["joules_per_image"] == pytest.approx(6.0 / 24)
    assert e.iloc[0]["energy_how"] == "rapl, measured"


# --- the verdict's per-joule line ---------------------------------------------------------------------------------

def judge(records):
    df = to_frame(records)
    v = verdict.judge(df)
    return v, sentences.describe(v, df)


def test_the_per_joule_line_appears_only_where_both_devices_were_measured():
    cells = mixed()
    v, w = judge(cells.values())
    assert set(zip(v.energy["pipeline"], v.energy["batch_size"])) == {("tutorial", 4)}
    (written,) = w.energy  # as written and at their best compare the same cells here: one line
    gpu, cpu = cells[("cuda:0", "tutorial", 4)], cells[("cpu", "tutorial", 4)]
    ratio = per_image(gpu, 120.0) / per_image(cpu, 40.0)
    with_host = (per_image(gpu, 120.0) + per_image(gpu, 30.0)) / per_image(cpu, 40.0)
    assert written.startswith("Per joule, as written and at their best (both measured: nvml on the GPU, rapl "
                               "on the CPU): the NVIDIA H100 80GB HBM3 used ")
    assert f"used {ratio:.2g}x the CPU's joules per image at the tutorial pipeline, batch 4, width 1" in written
    assert f"{with_host:.2g}x with its host's CPU packages, rapl" in written
    assert "nvml on the GPU, rapl on the CPU" in written and "NVIDIA H100" in written
    assert not any("resident" in line for line in w.energy)  # estimate, unavailable or unrecorded on a side


@pytest.mark.parametrize("gpu,cpu", [
    (("nvml", 120.0), ("estimate", 65.0)), (("estimate", 300.0), ("rapl", 40.0)),
    (("nvml", 120.0), ("unavailable", None)), (("unavailable", None, NO_NVML), ("rapl", 40.0)),
])
def test_estimates_and_missing_energy_never_make_a_per_joule_line(gpu, cpu):
    records = [rd.with_energy(rd.record("cuda:0", "tutorial", 4, n=LONG), gpu, ("rapl", 30.0)),
               rd.with_energy(rd.record("cpu", "tutorial", 4, n=LONG), cpu)]
    v, w = judge(records)
    assert v.energy.empty and w.energy == []
    assert not v.pairs.empty  # the speedup is still judged


def test_records_without_energy_give_no_per_joule_line_and_no_error():
    v, w = judge(rd.grid(batches=(4,), widths=(1,), n=LONG))
    assert v.energy.empty and w.energy == []


# --- the report -----------------------------------------------------------------------------------------------------

def rows_of(md: str, section: str) -> dict:
    """The Energy table's rows keyed (device, pipeline, batch), as lists of stripped cells."""
    text = md.split(f"## {section}")[1].split("\n## ")[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| cpu") or line.startswith("| cuda")]
    return {(r[0], r[1], int(r[2])): r for r in rows}


@pytest.fixture(scope="module")
def mixed_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("energy")
    rd.write(root / "results" / "run" / "records.jsonl", list(mixed().values()))
    html = render([root / "results" / "run"], ReportConfig(name="mixed"), root / "reports")
    return html.parent


def test_the_energy_section_shows_each_figure_with_how_it_was_obtained(mixed_report):
    md = (mixed_report / "report.md").read_text()
    cells = mixed()
    rows = rows_of(md, "Energy")
    gpu = cells[("cuda:0", "tutorial", 4)]
    tut = rows[("cuda:0", "tutorial", 4)]
    assert float(tut[4]) == pytest.approx(per_image(gpu, 120.0), rel=5e-3) and float(tut[5]) == pytest.approx(120)
    assert tut[8] == "nvml, measured" and tut[11] == "rapl, measured"
    assert float(tut[9]) == pytest.approx(per_image(gpu, 30.0), rel=5e-3) and float(tut[10]) == pytest.approx(30)
    # both devices reach the target at the last checkpoint, past every block: all the windows' joules
    assert float(tut[7].replace(",", "")) == pytest.approx(gpu.energy["cuda:0"].joules, rel=5e-3)
    assert rows[("cpu", "tutorial", 4)][9:] == ["", "", ""]  # a CPU cell has no host apart
    assert rows[("cpu", "resident", 4)][8] == "estimate from --cpu-watts 65, not measured"
    assert rows[("cuda:0", "resident", 256)][8] == "estimate from --gpu-watts 250, not measured"
    # cells with no figure at all (their own or their host's) are counted below the table, not given rows
    assert ("cpu", "resident", 64) not in rows and ("cuda:0", "resident", 1024) not in rows
    assert ("cuda:0", "resident", 4) in rows  # its own figure, and a host without one
    energy = md.split("## Energy")[1].split("\n## ")[0]
    assert "- 1 cell(s) with no energy figure, unavailable [1]: cpu" in energy
    assert re.search(r"- 1 cell\(s\) with no energy figure, unavailable \[\d\]: cuda:0\n", energy)
    unrecorded = "not recorded (written before bench measured energy, or by pytest-benchmark)"
    for reason in (rd.NO_RAPL, NO_NVML, unrecorded):
        assert energy.count(f"] {reason}") == 1, reason  # each reason once, numbered, below the table
    assert "No energy was measured" not in energy


def test_the_report_verdict_has_the_per_joule_line_and_the_method_says_how(mixed_report):
    md = (mixed_report / "report.md").read_text()
    head = md.split("## Verdict")[1].split("\n## ")[0]
    assert "Per joule, as written and at their best (both measured" in head
    method = md.split("## Method")[1]
    assert "**Energy**: each timed block is one window" in method
    assert "CPU cells: estimate 1, rapl 2, unavailable 1" in method
    assert "GPUs: estimate 1, nvml 2, unavailable 1" in method and "GPU hosts' CPU packages: rapl 2, unavailable 2" \
        in method


def test_cells_csv_has_the_energy_columns_but_not_the_nested_record(mixed_report):
    df = pd.read_csv(mixed_report / "cells.csv")
    assert {"energy_method", "joules_per_image", "watts", "host_joules_per_image"} <= set(df.columns)
    assert "energy" not in df.columns and "energy_by_step" not in df.columns


def test_a_report_where_nothing_was_measured_says_so_and_how_to_estimate(tmp_path):
    records = [rd.with_energy(rd.record("cpu", "tutorial", 4, n=LONG), ("unavailable", None)),
               rd.with_energy(rd.record("cpu", "resident", 256, n=LONG), ("estimate", 65.0))]
    rd.write(tmp_path / "run" / "records.jsonl", records)
    md = (render([tmp_path / "run"], ReportConfig(name="none"), tmp_path / "reports").parent / "report.md").read_text()
    energy = md.split("## Energy")[1].split("\n## ")[0]
    assert "No energy was measured in these results" in energy and "--cpu-watts W" in energy
    assert f"[1] {rd.NO_RAPL}" in energy and "estimate from --cpu-watts 65, not measured" in energy
    assert "Per joule" not in md


def test_at_their_best_gets_its_own_line_when_it_compares_other_cells():
    from dataclasses import replace

    eager = rd.record("cuda:0", "tutorial", 4, n=LONG)
    tuned = rd.record("cuda:0", "tutorial", 4, scale=0.5, seed=1, n=LONG)
    tuned = replace(tuned, cell=replace(tuned.cell, variant="fast", tune=("channels_last",)))
    records = [rd.with_energy(eager, ("nvml", 120.0)), rd.with_energy(tuned, ("nvml", 150.0)),
               rd.with_energy(rd.record("cpu", "tutorial", 4, n=LONG), ("rapl", 40.0))]
    _, w = judge(records)
    assert [line.split(" (")[0] for line in w.energy] == ["Per joule, as written", "Per joule, at their best"]
    cpu = per_image(records[2], 40.0)
    assert f"used {per_image(eager, 120.0) / cpu:.2g}x" in w.energy[0]
    assert f"used {per_image(tuned, 150.0) / cpu:.2g}x" in w.energy[1]
    assert "with its host" not in w.energy[0]  # no host figure recorded: nothing added, nothing said


@pytest.mark.parametrize("change,match", [
    ({"method": "guess"}, "energy.cpu.method must be one of nvml, rapl, estimate, unavailable"),
    ({"joules": -1.0}, "energy.cpu.joules must be >= 0"),
    ({"method": "unavailable"}, "energy.cpu.joules must be given exactly when"),
    ({"window_joules": [1.0, "x"]}, "energy.cpu.window_joules[1] must be a finite number"),
])
def test_a_record_with_impossible_energy_is_refused_naming_the_field(change, match):
    d = record_dict()
    d["energy"] = {"cpu": {"method": "rapl", "joules": 2.0, "seconds": 0.03, "windows": 1, "window_joules": [2.0],
                           **change}}
    with pytest.raises(ValueError, match=re.escape(match)):
        as_record(d)


def test_an_nvml_total_shorter_than_its_refresh_gives_no_figure_and_says_why():
    """On the H200, CUDA-graph cells of 0.02 s read 0 J and eager ones of 0.1-0.2 s disagreed by half: the
    joules stay in the record, but no J per image, watts or per-joule line comes from them."""
    short = rd.with_energy(rd.record("cuda:0", "tutorial", 4, n=60), ("nvml", 120.0), ("rapl", 30.0))  # 0.14 s
    assert short.energy["cuda:0"].joules > 0 and short.energy["cuda:0"].seconds < method.NVML_MIN_SECONDS
    cpu = rd.with_energy(rd.record("cpu", "tutorial", 4, n=60), ("rapl", 40.0))  # RAPL: no such limit
    df = to_frame([short, cpu]).set_index("device")
    assert pd.isna(df.loc["cuda:0", "joules_per_image"]) and pd.isna(df.loc["cuda:0", "watts"])
    assert df.loc["cuda:0", "host_joules_per_image"] > 0 and df.loc["cpu", "joules_per_image"] > 0
    how = prices.how(df.loc["cuda:0", "energy"]["cuda:0"])
    assert how.startswith("nvml, too short to read: 0.14 s of windows, under 1 s")
    v = verdict.judge(to_frame([short, cpu]))
    assert v.energy is None or v.energy.empty
    from bench import sections
    from bench.report import ReportConfig

    parts = sections.energy_section(to_frame([short, cpu]), ReportConfig(name="x"))
    text = "\n".join(str(p) for p in parts)
    assert "nvml, too short (0.14 s) [1]" in text and "[1] nvml: its windows added up to under 1 s" in text
