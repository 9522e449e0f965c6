"""Durable results: --resume measures only the missing cells, a run killed with SIGKILL or SIGINT loses only the
cell in flight, concurrent runs share a folder without interleaving lines, and no command rewrites a file."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from bench.api import run_config
from bench.cli import main
from bench.options import build_parser
from bench.reading import read_records
from bench.writer import RecordWriter
from tests.conftest import make_record
from tests.processes import finish, start, wait_for_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_args(fashion, out, batches="4,8,16", widths="1", budget="4steps", *extra):
    return ["run", "--dataset", "fashion-mnist", "--data-dir", str(fashion), "--devices", "cpu", "--pipeline",
            "resident", "--batch-size", batches, "--width", widths, "--budget", budget, "--warmup", "1", "--eval",
            "1", "--workers", "0", "--threads", "1", "--quiet", "--out", str(out), *extra]


def records_of(out):
    return read_records(out / "records.jsonl")


def assert_one_record_per_cell(out, cells):
    keys = [r.key for r in records_of(out)]
    assert len(keys) == len(set(keys)) == cells, keys


def one_line_error(capsys, argv, match):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err and "Traceback" not in err and match in err, err
    return err


# --- resume, in process ---------------------------------------------------------------------------------------


def test_resume_measures_only_cells_without_a_record_and_says_how_many_it_skipped(capsys, tmp_path, fashion):
    out = tmp_path / "out"
    assert main(run_args(fashion, out, "4,8")) == 0
    first = records_of(out)
    capsys.readouterr()
    assert main(run_args(fashion, out, "4,8,16", "1", "4steps", "--resume")) == 0
    printed = capsys.readouterr()
    assert "skipping 2 of 3 cells that already have a record, measuring the other 1" in printed.err
    records = records_of(out)
    assert records[:2] == first and [r.cell.batch_size for r in records] == [4, 8, 16]
    assert printed.out.count("resident | batch") == 3  # the table shows the whole grid, old cells included


def test_resume_of_a_finished_run_measures_nothing(capsys, tmp_path, fashion):
    out = tmp_path / "out"
    assert main(run_args(fashion, out)) == 0
    before = (out / "records.jsonl").read_bytes()
    assert main(run_args(fashion, out, "4,8,16", "1", "4steps", "--resume")) == 0
    assert "skipping 3 of 3 cells" in capsys.readouterr().err
    assert (out / "records.jsonl").read_bytes() == before


def test_resume_keeps_oom_and_diverged_cells_as_results(capsys, tmp_path, fashion):
    out = tmp_path / "out"
    config = run_config(build_parser().parse_args(run_args(fashion, out)))
    cells = replace(config, dataset="fashion-mnist").cells()
    w = RecordWriter(out)
    for cell, status in zip(cells, ["oom", "diverged"]):
        w.append(replace(make_record(status=status), cell=cell.to_dict()))
    assert main(run_args(fashion, out, "4,8,16", "1", "4steps", "--resume")) == 0
    assert "skipping 2 of 3" in capsys.readouterr().err
    assert [r.status for r in records_of(out)] == ["oom", "diverged", "ok"]


def test_resume_refuses_a_folder_whose_records_are_all_from_other_arguments(capsys, tmp_path, fashion):
    out = tmp_path / "out"
    assert main(run_args(fashion, out, "4")) == 0
    before = (out / "records.jsonl").read_bytes()
    capsys.readouterr()
    one_line_error(capsys, run_args(fashion, out, "4", "1", "5steps", "--resume"), "from other arguments")
    assert (out / "records.jsonl").read_bytes() == before


def test_resume_leaves_records_of_other_arguments_alone_when_some_cells_match(capsys, tmp_path, fashion):
    out = tmp_path / "out"
    assert main(run_args(fashion, out, "4,8")) == 0
    assert main(run_args(fashion, out, "8,16", "1", "4steps", "--resume")) == 0
    assert "1 records there are from other arguments and are left alone" in capsys.readouterr().err
    assert [r.cell.batch_size for r in records_of(out)] == [4, 8, 16]


def test_resume_needs_an_existing_out(capsys, tmp_path, fashion):
    one_line_error(capsys, run_args(fashion, "x", "4", "1", "4steps", "--resume")[:-3] + ["--resume"],
                   "--resume needs --out")
    one_line_error(capsys, run_args(fashion, tmp_path / "nope", "4", "1", "4steps", "--resume"), "does not exist")
    assert not (tmp_path / "nope").exists()


def test_resume_with_a_corrupt_results_file_names_the_line(capsys, tmp_path, fashion):
    out = tmp_path / "out"
    assert main(run_args(fashion, out, "4")) == 0
    with open(out / "records.jsonl", "a") as f:
        f.write("[1, 2]\n")
    capsys.readouterr()
    one_line_error(capsys, run_args(fashion, out, "4,8", "1", "4steps", "--resume"), "records.jsonl:2")


def test_a_value_listed_twice_is_one_cell(capsys, tmp_path, fashion):
    out = tmp_path / "out"
    assert main(run_args(fashion, out, "4,4,8", "1,1.0")) == 0
    assert_one_record_per_cell(out, 2)


def test_a_batch_larger_than_the_training_set_is_bad_input(capsys, tmp_path, fashion):
    one_line_error(capsys, run_args(fashion, tmp_path / "o", "4,65"), "--batch-size 65 is larger than the 64")
    assert not (tmp_path / "o").exists()


# --- the writer ---------------------------------------------------------------------------------------------


def test_a_record_appended_after_a_torn_tail_starts_its_own_line(tmp_path):
    w = RecordWriter(tmp_path)
    w.append(make_record(batch_size=4))
    with open(w.path, "ab") as f:
        f.write(make_record().to_json().encode()[:70])  # a writer killed mid-line
    w.append(make_record(batch_size=8))
    warnings = []
    assert [r.cell.batch_size for r in read_records(w.path, warnings)] == [4, 8]
    assert warnings == [f"{w.path}:2: skipped an incomplete line (a run was cut short)"]


def _append_many(path, tag, count):
    w = RecordWriter(path)
    for i in range(count):
        # about 200 kB a line: far beyond what one write() is guaranteed to keep whole without the lock
        w.append(make_record(step_seconds=[0.001 * (i + 1)] * 12_000, batch_size=tag))


def test_concurrent_writers_never_interleave_lines(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(tmp_path, tag, 15)) for tag in (1, 2, 3, 4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = (tmp_path / "records.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 61
    tags = [json.loads(line)["cell"]["batch_size"] for line in lines[:-1]]
    assert sorted(tags) == sorted([1, 2, 3, 4] * 15)


# --- real processes -----------------------------------------------------------------------------------------


def bench_process(fashion, out, batches, widths, budget, *extra):
    argv = [sys.executable, "-m", "bench", *run_args(fashion, out, batches, widths, budget, *extra)]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_records(proc, path, count, timeout=90.0):
    """Poll the results file until it holds `count` complete lines; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"bench ended (status {proc.returncode}) before writing {count} records: "
                        f"{proc.stderr.read()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no {count} records in {path} after {timeout} s")


@pytest.mark.slow
def test_sigkill_mid_grid_then_resume_gives_every_cell_exactly_one_record(tmp_path, fashion):
    out = tmp_path / "out"
    grid = ("4,8,16", "1,2", "0.25s")  # 6 cells of a quarter second of training each
    proc = bench_process(fashion, out, *grid)
    wait_for_records(proc, out / "records.jsonl", 2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    killed_with = len(records_of(out))
    assert 2 <= killed_with < 6  # killed mid-grid
    resumed = bench_process(fashion, out, *grid, "--resume")
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert f"skipping {killed_with} of 6 cells" in err
    assert_one_record_per_cell(out, 6)
    assert {(r.cell.batch_size, r.cell.width) for r in records_of(out)} == {
        (b, w) for b in (4, 8, 16) for w in (1.0, 2.0)}


def test_sigint_exits_130_with_one_line_saying_how_to_resume(tmp_path, fashion):
    """Deterministic: Ctrl-C is sent once the run says cell 2 has started (its progress bar), and each cell
    trains for 2 s, so it lands inside cell 2 however slow the machine. Before, it was sent after the first
    record appeared, and could land between cells or after the last (`bench: interrupted`, no resume line)."""
    out = tmp_path / "out"
    proc = start([a for a in run_args(fashion, out, "4,8,16", "1", "2s") if a != "--quiet"])
    seen = wait_for_text(proc, b"[2/3]")
    proc.send_signal(signal.SIGINT)
    code, err = finish(proc, seen)
    assert code == 130, err
    lines = [line for line in err.splitlines() if line.startswith("bench: interrupted")]
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("bench: interrupted during cell 2 of 3") and "1 of 3 cells are recorded" in lines[0]
    assert f"resume with: {sys.executable} -m bench run " in lines[0] and lines[0].endswith(" --resume")
    assert len(records_of(out)) == 1


@pytest.mark.slow
def test_two_runs_into_one_folder_leave_both_sets_complete(tmp_path, fashion):
    out = tmp_path / "out"
    a = bench_process(fashion, out, "4,8", "1", "12steps")
    b = bench_process(fashion, out, "16,32", "1", "12steps")
    for p in (a, b):
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    lines = (out / "records.jsonl").read_text().split("\n")
    assert lines[-1] == "" and all(json.loads(line) for line in lines[:-1])  # whole lines only
    assert_one_record_per_cell(out, 4)
    assert sorted(r.cell.batch_size for r in records_of(out)) == [4, 8, 16, 32]


# --- append only --------------------------------------------------------------------------------------------


def snapshot(folder):
    return {p: (p.stat().st_ino, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def assert_only_appended(before, after):
    for path, (inode, data) in before.items():
        assert path in after, f"{path} was removed"
        new_inode, new_data = after[path]
        assert new_inode == inode, f"{path} was replaced by another file"
        assert new_data[: len(data)] == data, f"{path} was rewritten, not appended to"


def test_no_command_rewrites_a_results_file(capsys, tmp_path, fashion, monkeypatch):
    import functools

    import torch

    from bench import runner
    from bench.results import load
    from bench.train import train
    from tests.test_faults import faulty_steps, raiser

    out = tmp_path / "out"
    grid = run_args(fashion, out, "4,8")
    assert main(grid) == 0
    steps = [
        lambda: main(grid),  # the same grid again: a second set of records
        lambda: main(run_args(fashion, out, "4,8,16", "1", "4steps", "--resume")),
        lambda: main(run_args(fashion, out, "4,8,16", "1", "4steps", "--resume")),  # nothing left to do
        lambda: main(run_args(fashion, out, "0")),  # bad input
        lambda: main(run_args(fashion, out, "4", "1", "9steps", "--resume")),  # refused: other arguments
        lambda: main(run_args(fashion, out, "32,64", "1", "4steps")),  # Ctrl-C in its second cell
        lambda: main(run_args(fashion, out, "4", "2")),  # out of memory, recorded
        lambda: load(out),
        lambda: main(["report", str(out)]),  # until `bench report` and `bench compare` are merged, these
        lambda: main(["compare", str(out), str(out)]),  # are rejected as unknown commands
    ]
    faults = {5: KeyboardInterrupt(), 6: torch.cuda.OutOfMemoryError("CUDA out of memory.")}
    sizes = []
    for i, step in enumerate(steps):
        before = snapshot(out)
        with monkeypatch.context() as m:
            if i in faults:
                m.setattr(runner, "train", functools.partial(train, step_factory=faulty_steps(
                    2 if i == 5 else 1, 2, raiser(faults[i]))))
            step()
        capsys.readouterr()
        assert_only_appended(before, snapshot(out))
        sizes.append(len(records_of(out)))
    assert sizes[:8] == [4, 5, 5, 5, 5, 6, 7, 7]
