"""`bench compare`: a device table for one set of results; two runs of a grid cell by cell, gating CI."""

import pytest

from bench import compare, stats
from bench.cli import main
from bench.results import rate_bootstrap, to_frame
from tests import reportdata as rd
from tests.test_verdict import mean_step

GRID = dict(batches=(4, 256), widths=(1,))


def runs(tmp_path, new_scale=1.0, **new_kw):
    """Two runs of the same grid; the new one's steps scaled (1.25 = 20% fewer images/s)."""
    rd.write(tmp_path / "old" / "records.jsonl", rd.grid(**GRID))
    rd.write(tmp_path / "new" / "records.jsonl", rd.grid(**GRID, scale=new_scale, seed=1, **new_kw))
    return str(tmp_path / "old"), str(tmp_path / "new")


def test_change_and_interval_are_computed_from_the_step_times():
    old, new = rd.grid(**GRID), rd.grid(**GRID, scale=1.25, seed=1)
    c = compare.changes(to_frame(old), to_frame(new))
    assert len(c) == len(old) and set(c["status"]) == {"ok"}
    row = c[(c.device == "cpu") & (c.pipeline == "tutorial")].iloc[0]
    assert row["change"] == pytest.approx(mean_step(old[0]) / mean_step(new[0]) - 1)
    low, high = stats.interval(rate_bootstrap(new[0]) / rate_bootstrap(old[0]))
    assert (row["low"] + 1, row["high"] + 1) == pytest.approx((low, high))
    assert row["change"] == pytest.approx(-0.2, abs=0.03) and row["significant"]


def test_a_rerun_of_the_same_machine_is_not_flagged():
    c = compare.changes(to_frame(rd.grid(**GRID)), to_frame(rd.grid(**GRID, seed=1)))
    assert not c["significant"].all()
    assert compare.regressions(c, 0.10).empty


def test_cells_only_in_one_run_or_broken_are_reported():
    old = rd.grid(**GRID)
    new = [r for r in rd.grid(**GRID) if r.cell.batch_size != 256] + [
        rd.record("cuda:0", "resident", 256, 1, status="oom", message="out of memory")]
    c = compare.changes(to_frame(old), to_frame(new))
    assert set(c["status"]) == {"ok", "only in old", "ok -> oom"}
    assert list(compare.regressions(c, 0.5)["status"]) == ["ok -> oom"]


@pytest.mark.parametrize("text,value", [("10%", 0.10), ("5", 0.05), (" 2.5 % ", 0.025)])
def test_threshold_parses_percentages(text, value):
    assert compare.parse_threshold(text) == pytest.approx(value)


def test_fail_above_exits_1_on_a_regression_and_names_it(tmp_path, capsys):
    old, new = runs(tmp_path, new_scale=1.25)
    assert main(["compare", old, new, "--fail-above", "10%"]) == 1
    out = capsys.readouterr()
    assert "REGRESSION (> 10%)" in out.out
    assert out.err.splitlines()[-1] == ("bench: 6 cells compared: 0 faster, 6 slower, 0 unchanged; gate failed: "
                                        "6 cell(s) lost more than 10% of their images/s or stopped working")
    assert main(["compare", old, new, "--fail-above", "30%"]) == 0
    out = capsys.readouterr()
    assert "REGRESSION" not in out.out
    assert out.err.splitlines()[-1].endswith("gate passed: no cell lost more than 30% of its images/s")


def test_an_improvement_passes_the_gate_and_is_flagged_faster(tmp_path, capsys):
    old, new = runs(tmp_path, new_scale=0.8)
    assert main(["compare", old, new, "--fail-above", "10%"]) == 0
    assert "faster" in capsys.readouterr().out


def test_runs_that_share_no_cell_say_so_first_in_one_line(tmp_path, capsys):
    rd.write(tmp_path / "a" / "records.jsonl", rd.grid(batches=(4, 256), widths=(1,), devices=("cpu",)))
    rd.write(tmp_path / "b" / "records.jsonl", rd.grid(batches=(8, 512), widths=(2,), devices=("cuda:0",)))
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    out = capsys.readouterr()
    assert out.out == "" and len(out.err.strip().splitlines()) == 1
    assert "share no cell" in out.err and "--no-pair" in out.err


def test_the_change_table_names_the_variant(tmp_path, capsys):
    old, new = runs(tmp_path)
    assert main(["compare", old, new]) == 0
    assert " variant " in capsys.readouterr().out.splitlines()[3]


def test_single_run_mode_prints_images_per_second_and_speedup(tmp_path, capsys):
    rd.write(tmp_path / "a" / "records.jsonl", rd.grid(**GRID))
    assert main(["compare", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "images/s [95% CI]" in out and "speedup vs cpu" in out and "1.00x (baseline)" in out


def test_two_machines_side_by_side_with_no_pair(tmp_path, capsys):
    rd.write(tmp_path / "a" / "records.jsonl", rd.grid(**GRID, host="alpha"))
    rd.write(tmp_path / "b" / "records.jsonl", rd.grid(devices=("cpu",), **GRID, host="beta"))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--no-pair", "--baseline", "cuda"]) == 0
    out = capsys.readouterr().out
    assert "cpu @ alpha" in out and "cpu @ beta" in out and "speedup vs cuda" in out


@pytest.mark.parametrize("argv,match", [
    (["--fail-above", "lots"], "cannot read --fail-above 'lots'"),
    (["--fail-above", "10%", "--no-pair"], "--fail-above compares two runs"),
])
def test_bad_compare_options_are_one_line(tmp_path, capsys, argv, match):
    old, new = runs(tmp_path)
    assert main(["compare", old, new, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench: error:") and match in err and "\n" not in err


def test_a_foreign_json_file_is_named_with_its_line(tmp_path, capsys):
    old, _ = runs(tmp_path)
    other = tmp_path / "bench.json"
    other.write_text('{"machine_info": {}, "benchmarks": [{"name": "x"}], "version": "0.1"}\n')
    assert main(["compare", old, str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert "bench.json" in err and "\n" not in err


def test_a_missing_path_is_one_line(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_two_machines_as_old_and_new_are_compared_with_a_note(tmp_path, capsys):
    rd.write(tmp_path / "a" / "records.jsonl", rd.grid(**GRID, host="alpha"))
    rd.write(tmp_path / "b" / "records.jsonl", rd.grid(devices=("cpu",), **GRID, host="beta", scale=1.5))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr()
    assert "different machines (alpha; beta)" in out.err and "only in old" in out.out
