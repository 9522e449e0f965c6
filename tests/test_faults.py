"""Faults in the middle of a grid: out of memory and divergence become records and the next cell runs; Ctrl-C,
a dead DataLoader worker or a lost device stop the run with one line, and every finished record is kept."""

import functools
import math
import os
import shlex
import signal
import sys

import pytest
import torch

from bench import devices, runner
from bench.cli import main
from bench.config import Budget, RunConfig
from bench.reading import read_records
from bench.records import Environment
from bench.writer import RecordWriter
from bench.train import train
from bench.tuning import eager_step as make_step


def faulty_steps(at_cell: int, at_step: int, fault):
    """A step_factory whose cell number `at_cell` (1-based, counting train() calls) calls fault() at its
    step number `at_step` (warm-up steps included) instead of training."""
    cells = {"n": 0}

    def factory(net, optimizer, host_loss):
        cells["n"] += 1
        step = make_step(net, optimizer, host_loss)
        if cells["n"] != at_cell:
            return step
        calls = {"n": 0}

        def wrapped(x, y):
            calls["n"] += 1
            return fault() if calls["n"] == at_step else step(x, y)

        return wrapped

    return factory


def raiser(exc):
    def fault():
        raise exc

    return fault


def grid(batches=(4, 8, 16, 32), widths=(1.0,), budget="6steps") -> RunConfig:
    return RunConfig(dataset="synthetic", devices=("cpu",), configs=tuple(("resident", b) for b in batches),
                     widths=widths, threads=(1,), budget=Budget.parse(budget), eval_points=1, warmup_steps=1,
                     workers=0)


def run_grid(tmp_path, tiny, fault=None, at_cell=2, at_step=3, config=None):
    config = config or grid()
    writer = RecordWriter(tmp_path / "out")
    train_cell = functools.partial(train, step_factory=faulty_steps(at_cell, at_step, fault)) if fault else None
    return config, writer, runner.run(config, tiny, writer, train_cell=train_cell)


def test_out_of_memory_at_cell_k_is_recorded_the_cache_emptied_and_the_next_cell_runs(tmp_path, tiny, monkeypatch):
    released = []
    real = devices.release_memory
    monkeypatch.setattr(devices, "release_memory", lambda d: (released.append(d), real(d)))
    oom = raiser(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    config, writer, records = run_grid(tmp_path, tiny, oom, at_cell=2)
    assert [r.status for r in records] == ["ok", "oom", "ok", "ok"]
    assert "batch size 8" in records[1].message and "width 1" in records[1].message
    assert released == ["cpu"]  # once, for the failed cell
    assert [r.key for r in read_records(writer.path)] == [c.key for c in config.cells()]


def test_host_out_of_memory_building_a_huge_model_is_an_oom_record(tiny, monkeypatch):
    def huge(*args, **kwargs):
        return torch.empty(10**13)  # 40 TB: the host allocator refuses

    monkeypatch.setattr("bench.train.build_model", huge)
    from tests.conftest import make_cell

    r = train(make_cell(width=3.0), tiny, Environment(), "run")
    assert r.status == "oom" and "width 3" in r.message and "can't allocate memory" in r.message


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_loss_mid_grid_is_diverged_with_its_step_and_the_next_cell_runs(tmp_path, tiny, bad):
    # warm-up takes call 1 of each cell, so call 4 is the cell's counted step 3
    _, writer, records = run_grid(tmp_path, tiny, lambda: torch.tensor(bad), at_cell=3, at_step=4)
    assert [r.status for r in records] == ["ok", "ok", "diverged", "ok"]
    assert records[2].timing.diverged_at_step == 3 and "step 3" in records[2].message
    assert len(read_records(writer.path)) == 4


@pytest.mark.parametrize("fault,match", [
    (torch.AcceleratorError("CUDA error: unspecified launch failure"), "AcceleratorError: CUDA error"),
    (RuntimeError("CUDA error: device not ready\nCUDA kernel errors might be asynchronously reported"),
     "RuntimeError: CUDA error: device not ready"),
    (OSError(5, "Input/output error"), "Input/output error"),
])
def test_a_lost_device_stops_the_run_keeping_finished_records(tmp_path, tiny, fault, match):
    with pytest.raises(runner.CellFailed) as stop:
        run_grid(tmp_path, tiny, raiser(fault), at_cell=3)
    message = str(stop.value)
    assert "\n" not in message and match in message
    assert "cell 3 of 4" in message and "2 of 4 cells are recorded" in message
    assert [r.cell.batch_size for r in read_records(tmp_path / "out" / "records.jsonl")] == [4, 8]


def test_a_bug_is_not_dressed_up_as_a_fault(tmp_path, tiny):
    with pytest.raises(ZeroDivisionError):
        run_grid(tmp_path, tiny, raiser(ZeroDivisionError("a bug")), at_cell=2)
    assert len(read_records(tmp_path / "out" / "records.jsonl")) == 1


def test_ctrl_c_in_a_cell_drops_it_and_keeps_the_finished_ones(tmp_path, tiny):
    with pytest.raises(runner.Interrupted) as stop:
        run_grid(tmp_path, tiny, raiser(KeyboardInterrupt()), at_cell=2)
    assert "interrupted during cell 2 of 4" in str(stop.value) and "1 of 4 cells are recorded" in str(stop.value)
    assert [r.cell.batch_size for r in read_records(tmp_path / "out" / "records.jsonl")] == [4]


# --- through the command line -----------------------------------------------------------------------------


def argv(fashion, out, *extra):
    return ["run", "--dataset", "fashion-mnist", "--data-dir", str(fashion), "--devices", "cpu", "--budget",
            "4steps", "--warmup", "1", "--eval", "1", "--workers", "0", "--threads", "1", "--quiet",
            "--pipeline", "resident", "--batch-size", "4,8,16", "--out", str(out), *extra]


def inject(monkeypatch, fault, at_cell, at_step=2):
    monkeypatch.setattr(runner, "train", functools.partial(train, step_factory=faulty_steps(at_cell, at_step, fault)))


def keys_of(out):
    return [r.key for r in read_records(out / "records.jsonl")]


def test_ctrl_c_prints_one_line_with_the_exact_resume_command_and_exits_130(capsys, tmp_path, fashion, monkeypatch):
    out = tmp_path / "out"
    inject(monkeypatch, raiser(KeyboardInterrupt()), at_cell=2)
    assert main(argv(fashion, out)) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if "interrupted" in line]) == 1
    last = err[-1]
    assert last.startswith("bench: interrupted during cell 2 of 3") and "Traceback" not in "\n".join(err)
    assert len(keys_of(out)) == 1
    command = shlex.split(last.split("resume with: ", 1)[1])
    assert command[0] == "bench" and command[-1] == "--resume"
    monkeypatch.undo()
    assert main(command[1:]) == 0  # the printed command, as printed, finishes the grid
    assert "skipping 1 of 3 cells" in capsys.readouterr().err
    keys = keys_of(out)
    assert len(keys) == len(set(keys)) == 3


def test_default_out_is_added_to_the_resume_command(capsys, tmp_path, fashion, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inject(monkeypatch, raiser(KeyboardInterrupt()), at_cell=1)
    args = argv(fashion, "x")[:-2]  # no --out: results/<time>-<host>
    assert main(args) == 130
    command = shlex.split(capsys.readouterr().err.strip().splitlines()[-1].split("resume with: ", 1)[1])
    out = command[command.index("--out") + 1]
    assert out.startswith("results/") and (tmp_path / out / "records.jsonl").exists()


@pytest.mark.parametrize("how", ["exit", "signal"])
def test_dataloader_worker_death_is_one_line_and_finished_records_are_kept(capsys, tmp_path, fashion, monkeypatch,
                                                                           how):
    """The worker of cell 2 dies (os._exit, or SIGKILL); no record is written for that cell (it measured
    nothing about the cell), the run stops with status 1 and one line, and --resume finishes the grid."""
    import bench.pipelines
    import bench.train

    out = tmp_path / "out"
    state = {"cells": 0, "doomed": False}
    real_prepare, real_getitem = bench.train.prepare, bench.pipelines.ImageArrayDataset.__getitem__

    def prepare(*args):
        state["cells"] += 1
        state["doomed"] = state["cells"] == 2  # workers forked from here on inherit the flag
        return real_prepare(*args)

    def getitem(self, i):
        if state["doomed"] and torch.utils.data.get_worker_info() is not None:
            if how == "exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGKILL)
        return real_getitem(self, i)

    monkeypatch.setattr(bench.train, "prepare", prepare)
    monkeypatch.setattr(bench.pipelines.ImageArrayDataset, "__getitem__", getitem)
    args = argv(fashion, out)
    args[args.index("--pipeline") + 1] = "tutorial"
    args[args.index("--workers") + 1] = "1"
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("bench: error: cell 2 of 3") and "DataLoader worker" in err
    assert ("exited unexpectedly" in err or "killed by signal" in err) and err.endswith("--resume")
    assert len(keys_of(out)) == 1
    monkeypatch.undo()
    assert main(args + ["--resume"]) == 0
    keys = keys_of(out)
    assert len(keys) == len(set(keys)) == 3


def test_lost_device_through_the_cli_is_one_line_exit_1(capsys, tmp_path, fashion, monkeypatch):
    out = tmp_path / "out"
    inject(monkeypatch, raiser(torch.AcceleratorError("CUDA error: an illegal memory access was encountered")), 3)
    assert main(argv(fashion, out)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("bench: error: cell 3 of 3") and "illegal memory access" in err[-1]
    assert "Traceback" not in "\n".join(err) and len(keys_of(out)) == 2


def test_oom_through_the_cli_is_a_row_of_the_table(capsys, tmp_path, fashion, monkeypatch):
    out = tmp_path / "out"
    inject(monkeypatch, raiser(torch.cuda.OutOfMemoryError("CUDA out of memory.")), 2)
    assert main(argv(fashion, out)) == 0
    printed = capsys.readouterr().out
    assert "oom" in printed and "out of memory at batch size 8" in printed
    assert [r.status for r in read_records(out / "records.jsonl")] == ["ok", "oom", "ok"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_real_cuda_out_of_memory_mid_grid(tmp_path, tiny):
    """On a GPU: a step that asks for more memory than the card has, in cell 2; the cell is recorded as oom,
    the cache is emptied and the next cell trains on the same device."""
    def grab():
        return torch.empty(1 << 50, device="cuda:0")  # 4 PiB

    config = RunConfig(dataset="synthetic", devices=("cuda:0",), configs=(("resident", 4), ("resident", 8),
                       ("resident", 16)), widths=(1.0,), threads=(1,), budget=Budget.parse("6steps"),
                       eval_points=1, warmup_steps=1, workers=0)
    _, _, records = run_grid(tmp_path, tiny, grab, at_cell=2, config=config)
    assert [r.status for r in records] == ["ok", "oom", "ok"], [r.message for r in records]
    # nothing of the 4 PiB request or the failed cell stays allocated: what remains is the tiny data and
    # cuBLAS's workspaces, which live in the caching allocator (65 MiB on an H200 with torch 2.11)
    assert torch.cuda.memory_allocated() < 256 << 20
    print("oom message:", records[1].message, file=sys.stderr)
