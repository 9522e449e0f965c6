"""`bench report`: rendered from fixture records (no training, no device) for CPU only, CPU and GPU, two
machines, missing and oom cells; figures exist, the verdict's numbers are the records', the HTML is self-contained."""

import re
from dataclasses import replace
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest

from bench import sidebyside, stats
from bench.cli import main
from bench.errors import UserError
from bench.report import ReportConfig, default_name, render
from bench.results import load as load_records
from bench.results import rate_bootstrap
from tests import reportdata as rd
from tests.test_verdict import mean_step

REFERENCE_2026_11_28 = Path(__file__).resolve().parent.parent / "reports/reference/h200-2026-11-28/results"

PNG = b"\x89PNG\r\n\x1a\n"
SMALL = dict(batches=(4, 64, 256), widths=(1, 4))


def rendered(tmp_path_factory, name, folders, **config):
    root = tmp_path_factory.mktemp(name)
    for folder, records in folders.items():
        rd.write(root / "results" / folder / "records.jsonl", records)
    html = render([root / "results" / f for f in folders], ReportConfig(name=name, **config), root / "reports")
    return html.parent


@pytest.fixture(scope="module")
def cpu_only(tmp_path_factory):
    """A CPU-only run with evaluation and breakdown off (like pytest-benchmark rows: no accuracy, no profile)."""
    records = [replace(rd.record("cpu", pipeline, batch, 1, profile=False), accuracy_curve=())
               for pipeline, batch in (("tutorial", 4), ("resident", 256))]
    return rendered(tmp_path_factory, "cpu-only", {"run": records})


@pytest.fixture(scope="module")
def one_machine(tmp_path_factory):
    """CPU and GPU on one machine, with a GPU oom cell and a cell the CPU never ran."""
    records = rd.grid(**SMALL) + [
        rd.record("cuda:0", "resident", 4096, 1, status="oom", message="CUDA out of memory"),
        rd.record("cuda:0", "resident", 1024, 1)]
    return rendered(tmp_path_factory, "one-machine", {"run": records}, prices={"cpu": 0.19, "cuda": 3.06})


@pytest.fixture(scope="module")
def two_machines(tmp_path_factory):
    return rendered(tmp_path_factory, "two-machines", {
        "gpu-box": rd.grid(batches=(4, 64), widths=(1,), host="alpha"),
        "laptop": rd.grid(devices=("cpu",), batches=(4, 64), widths=(1,), host="beta", scale=1.5)})


def test_figures_exist_and_are_non_empty_pngs(one_machine):
    md = (one_machine / "report.md").read_text()
    names = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert set(names) == {"headline.png", "throughput.png", "speedup_width.png", "time_to_accuracy.png",
                          "samples_to_accuracy.png", "breakdown.png"}
    assert names[0] == "headline.png"  # the answer in one picture comes first
    for name in names:
        data = (one_machine / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, name


class Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.tags = [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.refs += [(tag, k, v) for k, v in attrs if k in ("src", "href", "srcset", "data", "poster", "action")]


@pytest.mark.parametrize("scenario", ["cpu_only", "one_machine", "two_machines"])
def test_html_references_nothing_outside_itself(scenario, request):
    text = (request.getfixturevalue(scenario) / "report.html").read_text()
    parser = Refs()
    parser.feed(text)
    assert not {"script", "link", "iframe", "object", "embed"} & parser.tags
    for tag, attr, value in parser.refs:
        assert value.startswith("#") or value.startswith("data:image/png;base64,"), (tag, attr, value[:60])
    assert "@import" not in text and not re.search(r"url\((?!data:)", text)
    if scenario == "one_machine":
        assert sum(1 for t, a, _ in parser.refs if t == "img") == 6  # every figure embedded


def table_rows(md: str, heading: str) -> list[list[str]]:
    """The cells of each row of the first Markdown table after heading."""
    section = md.split(heading)[1].split("\n## ")[0]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()
            if line.startswith("|") and not line.startswith("|--") and not line.startswith("| comparison")]


def test_verdict_numbers_are_the_records_numbers(one_machine):
    md = (one_machine / "report.md").read_text()
    df = pd.read_csv(one_machine / "cells.csv")
    assert len(df) == len(rd.grid(**SMALL)) + 2
    records = {(r.cell.device, r.cell.pipeline, r.cell.batch_size, r.cell.width): r for r in rd.grid(**SMALL)}
    for key in [("tutorial", 4, 1.0), ("resident", 256, 1.0), ("resident", 4, 4.0)]:
        cpu, gpu = records[("cpu", *key)], records[("cuda:0", *key)]
        value = mean_step(cpu) / mean_step(gpu)
        low, high = stats.interval(rate_bootstrap(gpu) / rate_bootstrap(cpu))
        cells = next(c for c in table_rows(md, "## Appendix: every comparison")
                     if c[:6] == ["as written", "cuda:0 vs cpu", key[0], str(key[1]), f"{key[2]:g}", "eager"])
        assert cells[8:10] == [f"{value:.2f}x", f"{low:.2f}-{high:.2f}"], cells
    speedups = pd.read_csv(one_machine / "speedups.csv")
    # every configuration both devices ran ok, as written and at their best; 1024 and 4096 are not compared
    assert len(speedups) == 10 and set(speedups["comparison"]) == {"as written", "at their best"}


def test_verdict_section_reads_the_regimes_and_the_crossovers(one_machine):
    md = (one_machine / "report.md").read_text()
    verdict = md.split("## Verdict")[1].split("## Speedup")[0]
    rows = {line.split("|")[1].strip(): line for line in verdict.splitlines() if line.startswith("| **")}
    assert "| **holds**: NVIDIA H100" in rows["**Tutorial configuration** (the tutorial's DataLoader loop at batch 4, width 1)"]
    assert "**does not hold**: resident pipeline" in rows["**Larger batches** (batch > 4 at width 1)"]
    assert "**does not hold**: resident pipeline" in rows["**Wider models** (width > 1)"]
    assert "the GPU becomes 2x faster somewhere between batch 4 and 64" in verdict


def test_oom_and_missing_cells_are_listed(one_machine):
    gaps = (one_machine / "report.md").read_text().split("## Gaps and warnings")[1]
    assert "cuda:0, resident pipeline, batch 4096, width 1: **oom** (CUDA out of memory)" in gaps
    assert "cpu: no record for resident pipeline at batch 1024, 4096, width 1 (synthetic)" in gaps


def test_missing_cells_are_grouped_and_a_variant_the_device_cannot_run_is_no_gap():
    """The H200 check ran cudagraph and compile+cudnn on CUDA only and the CPU to batch 4096: 23 lines of
    'no record' became two, and none for a CPU cudagraph cell, which cannot exist."""
    from bench.sections import missing_cells

    lines = missing_cells(load_records([REFERENCE_2026_11_28]))
    assert lines == [
        "cpu: no record for resident pipeline at batch 8192, 16384, 32768, width 1; batch 256, 1024, 4096, width 4; "
        "batch 256, 1024, 4096, width 16 (synthetic)",
        "cpu: no record for resident pipeline [fast] at batch 8192, 16384, 32768, width 1; batch 256, 1024, 4096, "
        "width 4; batch 256, 1024, 4096, width 16 (synthetic)"]


def test_costs_follow_from_prices_step_times_and_time_to_accuracy(one_machine):
    md = (one_machine / "report.md").read_text()
    r = rd.record("cuda:0", "resident", 256, 1)
    epoch = (rd.TRAIN_SIZE // 256) * mean_step(r)  # full batches at the pace the wall clock saw
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in md.split("## Cost")[1].splitlines()
            if line.startswith("| cuda:0 ")]
    cells = next(r for r in rows if r[1:4] == ["resident", "256", "1"])
    assert float(cells[4]) == 3.06 and float(cells[5]) == pytest.approx(epoch, abs=0.05)
    assert float(cells[6]) == pytest.approx(epoch * 3.06 / 3600, rel=0.01)
    tta = r.accuracy_curve[-1].seconds  # both devices learn alike, so the target is the final accuracy
    assert float(cells[8]) == pytest.approx(tta, abs=0.05)
    assert float(cells[9]) == pytest.approx(tta * 3.06 / 3600, rel=0.01)


def test_cpu_only_says_so_and_what_to_run(cpu_only):
    md = (cpu_only / "report.md").read_text()
    assert "only CPU measurements" in md and "Run `bench run` on a machine with a GPU" in md and "--reference" in md
    assert "no accuracy curves" in md and "No step-time breakdown" in md and "No prices given" in md
    assert (cpu_only / "throughput.png").read_bytes().startswith(PNG)
    assert not (cpu_only / "headline.png").exists()


def test_two_machines_get_an_environment_column_each(two_machines):
    md = (two_machines / "report.md").read_text()
    env = md.split("## Provenance")[1].split("## Method")[0]
    header = env.splitlines()[4]
    assert "alpha" in header and "beta" in header
    assert "AMD EPYC 7B13" in env and "Intel Core i7-1185G7" in env and "NVIDIA H100 80GB HBM3" in env
    assert "580.159.04" in env and "(uncommitted changes)" in env
    assert "cuda:0 @ alpha" in md and "cpu @ beta" in md


def test_method_notes_state_what_was_measured(one_machine):
    method = (one_machine / "report.md").read_text().split("## Method")[1]
    for needle in ("20 real training steps", "60 step times per cell", "12 blocks per cell", "cuda: events",
                   "upper bound is below 2x", "fewer than 10 blocks", "evaluation", "synchronized section timers"):
        assert needle in method, needle


def test_nothing_is_left_half_written(one_machine):
    assert not [p.name for p in one_machine.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    assert (one_machine / "report.html").stat().st_mode & 0o044  # readable by others, not mkstemp's 0600


def test_default_name_is_the_results_folder(tmp_path):
    (tmp_path / "run-a").mkdir()
    (tmp_path / "run-b").mkdir()
    assert default_name([tmp_path / "run-a"]) == "run-a"
    assert default_name([tmp_path / "run-a", tmp_path / "run-b"]) == "run-a+1-more"


@pytest.mark.parametrize("content,match", [
    ("", "no records"),
    ('{"not": "a record"}\n', "records.jsonl:1"),
    ('{"benchmarks": []}\n{"machine_info": 1}\n', "records.jsonl:1"),
])
def test_bad_results_are_one_line_naming_the_file(tmp_path, capsys, content, match):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "records.jsonl").write_text(content)
    assert main(["report", str(tmp_path / "run"), "--reports", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench: error:") and match in err and "\n" not in err
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("flags,match", [
    (["--price", "cuda"], "cannot read --price 'cuda'"),
    (["--price", "cpu=cheap"], "cannot read --price"),
    (["--target", "150%"], "--target must be between"),
    (["--name", "a/b"], "plain folder name"),
])
def test_bad_report_options_are_one_line(tmp_path, capsys, flags, match):
    rd.write(tmp_path / "run" / "records.jsonl", [rd.record("cpu")])
    assert main(["report", str(tmp_path / "run"), "--reports", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench: error:") and match in err and "\n" not in err


def test_report_of_an_empty_folder_is_bad_input(tmp_path):
    with pytest.raises(UserError, match="no results"):
        render([tmp_path], ReportConfig(name="x"), tmp_path / "reports")


def test_cells_csv_loads_in_pandas_with_breakdown_columns(one_machine):
    df = pd.read_csv(StringIO((one_machine / "cells.csv").read_text()))
    assert {"device", "images_per_s", "breakdown_forward_ms", "breakdown_h2d_ms"} <= set(df.columns)
    assert (df[df.status == "ok"].breakdown_forward_ms > 0).all()


def test_bench_run_ends_by_rendering_its_report(tmp_path, capsys):
    from tests.formats import write_fashion

    write_fashion(tmp_path / "fm", gz=True, n_train=64, n_test=16)
    out, reports = tmp_path / "results" / "my-run", tmp_path / "reports"
    argv = ["run", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "fm"), "--budget", "8steps",
            "--warmup", "1", "--eval", "1", "--workers", "0", "--quiet", "--pipeline", "resident",
            "--batch-size", "4,8", "--out", str(out), "--reports", str(reports), "--price", "cpu=0.19"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    html = reports / "my-run" / "report.html"
    assert f"report: {html}" in printed and html.is_file()
    md = (reports / "my-run" / "report.md").read_text()
    assert "only CPU measurements" in md and "0.19/h" in md
    assert (reports / "my-run" / "breakdown.png").read_bytes().startswith(PNG)  # the run recorded a breakdown


def test_bench_run_checks_the_reports_folder_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    argv = ["run", "--dataset", "synthetic", "--out", str(tmp_path / "out"), "--reports", str(blocker / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot write reports" in err and "--no-report" in err and not (tmp_path / "out").exists()


def test_eager_and_tuned_side_by_side_with_fraction_of_peak():
    from dataclasses import replace as _replace

    from bench import sidebyside
    from bench.results import to_frame
    from tests.conftest import make_record

    def gpu(tune, variant, steps):
        r = make_record(device="cuda:0", step_seconds=steps, tune=tune)
        return _replace(r, device_name="NVIDIA H100 80GB HBM3", cell=_replace(r.cell, variant=variant))

    df = to_frame([gpu((), "", (0.004,) * 5), gpu(("amp", "cudagraph"), "fast", (0.001,) * 5),
                   make_record(step_seconds=(0.01,) * 5)])
    p = sidebyside.pairs(df)
    assert len(p) == 1
    r = p.iloc[0]
    assert r["gain"] == pytest.approx(4.0) and r["tune"] == "amp+cudagraph"
    assert r["eager_peak"] == pytest.approx(3_204_720 * 1000 / 494.7e12)  # TF32 peak for the eager CUDA step
    assert r["tuned_peak"] == pytest.approx(3_204_720 * 4000 / 989.4e12)  # bf16 peak under amp
    text = "\n".join(str(b) for b in sidebyside.section(df.assign(label=df["device"])))
    assert "4.00x" in text


def test_reference_results_are_the_committed_results_folders(tmp_path):
    from bench.report import reference_results

    with pytest.raises(UserError, match="no reference results"):
        reference_results(tmp_path)
    (tmp_path / "h200-2026-11-27" / "results").mkdir(parents=True)
    (tmp_path / "h200-2026-11-27" / "report").mkdir()
    assert reference_results(tmp_path) == [tmp_path / "h200-2026-11-27" / "results"]
    for name in ("h200-2026-11-28", "a100-2026-10-01", "mi300x"):
        (tmp_path / name / "results").mkdir(parents=True)
    # the newest run of each GPU; the older H200 run stays committed as history
    assert reference_results(tmp_path) == [tmp_path / n / "results" for n in ("a100-2026-10-01", "h200-2026-11-28",
                                                                              "mi300x")]


@pytest.mark.parametrize("sections", [{"data": 0.0, "forward": 0.0}, {"unknown": 1.0}])
def test_a_profile_with_nothing_to_draw_renders_without_a_warning(tmp_path, sections):
    """Found by mutating records: a breakdown whose known sections add up to 0 asked matplotlib for a log axis
    from 0 (a warning, an error where warnings are errors)."""
    from tests.conftest import record_dict
    from tests.test_hostile_results import bench, records_file

    r = record_dict()
    r["profile"] = {"method": "m", "steps": 3, "sections_ms": sections, "total_ms": 0.0}
    code, _, err = bench("report", records_file(tmp_path / "run", r), "--reports", tmp_path / "r")
    assert code == 0 and err == "", err


def test_a_tuned_cell_is_paired_once_with_its_own_budget_s_eager_twin():
    """The GPU check measured resident batch 4 eager in two stages (60 and 100 steps): each tuned cell once,
    beside the eager cell of its own budget, not beside both."""
    df = load_records([REFERENCE_2026_11_28])
    p = sidebyside.pairs(df)
    graph = p[(p["device"] == "cuda:0") & (p["batch_size"] == 4) & (p["width"] == 1) & (p["tune"] == "cudagraph")]
    assert len(graph) == 1 and round(graph.iloc[0]["eager_images_per_s"]) == 1647  # the peak stage's 100 steps
    assert not p.duplicated(["device", "threads", "pipeline", "batch_size", "width", "tune",
                             "tuned_images_per_s"]).any()
    # and a tuned cell measured in two stages (grid-cuda's 60 steps, peak's 100) is one row, its longer run: the
    # table showed two "cuda:0 [fast], batch 4, width 1" rows no column told apart
    fast = p[(p["device"] == "cuda:0") & (p["batch_size"] == 4) & (p["width"] == 1) & (p["variant"] == "fast")]
    assert len(fast) == 1 and round(fast.iloc[0]["eager_images_per_s"]) == 1647, fast
    assert not p.duplicated(["machine", "device", "pipeline", "batch_size", "width", "variant"]).any()
