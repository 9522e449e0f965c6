"""The Python API: bench.run and bench.render give the command line's records, files and one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest

import bench
from bench.cli import main
from bench.errors import UserError
from bench.reading import read_records
from tests.conftest import tiny_dataset

ARGS = dict(devices="cpu", pipeline="resident", batch_size=[4, 8], width=1, budget="6steps", eval=2, warmup=1,
            threads=1, dataset="synthetic")
ARGV = ["run", "--devices", "cpu", "--pipeline", "resident", "--batch-size", "4,8", "--width", "1", "--budget",
        "6steps", "--eval", "2", "--warmup", "1", "--threads", "1", "--dataset", "synthetic", "--quiet",
        "--no-report"]


@pytest.fixture(autouse=True)
def tiny_synthetic(monkeypatch):
    """The synthetic set replaced by a tiny one: these tests compare runs, not train them."""
    import bench.data

    data = tiny_dataset()
    monkeypatch.setattr(bench.data, "_synthetic", lambda seed, reason: data)


def cells(path):
    return [(r.cell, r.status, r.key, r.dataset.name) for r in read_records(path)]


def test_run_gives_the_records_the_command_line_gives(tmp_path, capsys):
    assert main([*ARGV, "--out", str(tmp_path / "cli")]) == 0
    capsys.readouterr()
    df = bench.run(**ARGS, out=tmp_path / "api", progress=False)
    assert cells(tmp_path / "api" / "records.jsonl") == cells(tmp_path / "cli" / "records.jsonl")
    assert list(df["batch_size"]) == [4, 8] and (df["status"] == "ok").all()
    assert df.attrs["out"] == str(tmp_path / "api") and df.attrs["report"] is None
    assert any(m.startswith("dataset: ") for m in df.attrs["messages"])
    assert capsys.readouterr() == ("", "")  # nothing printed that the caller did not ask for


def test_run_resumes_like_the_command_line(tmp_path):
    bench.run(**{**ARGS, "batch_size": 4}, out=tmp_path / "r", progress=False)
    df = bench.run(**ARGS, out=tmp_path / "r", resume=True, progress=False)
    assert sorted(df["batch_size"]) == [4, 8] and len(read_records(tmp_path / "r" / "records.jsonl")) == 2
    assert any("skipping 1 of 2 cells" in m for m in df.attrs["messages"])


@pytest.mark.parametrize("kwargs,argv", [
    (dict(batch_size=0), ["--batch-size", "0"]),
    (dict(budget="forever"), ["--budget", "forever"]),
    (dict(devices="tpu9"), ["--devices", "tpu9"]),
    (dict(threads="many"), ["--threads", "many"]),
    (dict(width=[1, -2]), ["--width", "1,-2"]),
    (dict(tune="turbo"), ["--tune", "turbo"]),
    (dict(resume=True), ["--resume"]),
])
def test_a_bad_argument_raises_the_command_lines_message(tmp_path, capsys, kwargs, argv):
    out = tmp_path / "o"
    code = main(["run", "--quiet", *argv] + (["--out", str(out)] if "resume" not in kwargs else []))
    printed = capsys.readouterr().err.strip()
    assert code == 2 and printed.startswith("bench: error: ")
    with pytest.raises(UserError) as raised:
        bench.run(**kwargs, **({"out": out} if "resume" not in kwargs else {}), progress=False)
    assert str(raised.value) == printed.removeprefix("bench: error: ")
    assert raised.value._render_traceback_() == [f"UserError: {raised.value}"]  # one line in a notebook
    assert not out.exists()


def test_render_returns_the_path_and_the_verdict_as_data(tmp_path):
    df = bench.run(**ARGS, out=tmp_path / "r", progress=False)
    rep = bench.render(df, reports=tmp_path / "reports")
    assert rep.path == tmp_path / "reports" / "r" / "report.html" and rep.path.is_file()
    assert rep.status == "none" and "only CPU" in rep.headline
    assert set(rep.answers["status"]) == {"not measured"} and len(rep.answers) == 6
    with pytest.raises(UserError, match="does not say where its records are"):
        bench.render(pd.DataFrame(df.to_dict()))  # a frame built elsewhere, without the run's attrs


def test_bench_imports_nothing_heavy_until_used():
    import subprocess
    import sys

    code = "import sys, bench; print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
