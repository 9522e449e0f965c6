"""Energy in a cell's record: fake counters count only the timed blocks, `bench run` records unavailable with the
reason where nothing can be read, --cpu-watts gives an estimate, and the watts never change a cell's key."""

from __future__ import annotations

import functools
import json

import pytest

import bench.train
from bench import energy
from bench.api import run_config
from bench.cli import main
from bench.config import Budget
from bench.energy import Meter
from bench.options import build_parser
from bench.records import Environment
from bench.train import train
from bench.tuning import eager_step
from tests.conftest import make_cell
from tests.test_timing import FakeClock

ENV = Environment(host="test")
STEP_J, EVAL_J = 1.0, 100.0  # what the fake counter gains per training step and per evaluation


class EventCounter:
    """A counter that gains STEP_J on every training step (warm-up included) and EVAL_J on every evaluation:
    energy is spent outside the timed blocks too, and must not be counted."""

    method, source = "rapl", "fake counter"

    def __init__(self):
        self.total = 0.0

    def read(self) -> float:
        return self.total

    def joules(self, start: float, end: float, seconds: float) -> float:
        return end - start


@pytest.fixture
def counted(monkeypatch):
    """(counter, step_factory, meter_factory): steps and evaluations feed the counter; the meter reads it."""
    counter = EventCounter()
    evaluate = bench.train.evaluate

    def spending_evaluate(*args):
        counter.total += EVAL_J
        return evaluate(*args)

    monkeypatch.setattr(bench.train, "evaluate", spending_evaluate)

    def step_factory(net, optimizer, host_loss):
        step = eager_step(net, optimizer, host_loss)

        def spending_step(x, y):
            counter.total += STEP_J
            return step(x, y)

        return spending_step

    def meter_factory(device, *, synchronize, clock):
        return Meter({device: counter}, synchronize, clock)

    return counter, step_factory, meter_factory


def test_the_record_holds_the_joules_of_the_timed_blocks_only(tiny, counted):
    counter, step_factory, meter_factory = counted
    tick = 0.001
    r = train(make_cell(budget=Budget.parse("10steps"), eval_points=2, warmup_steps=3), tiny, ENV, "run",
              clock=FakeClock(tick), step_factory=step_factory, meter_factory=meter_factory)
    cpu = r.energy["cpu"]
    assert cpu.method == "rapl" and cpu.source == "fake counter"
    assert counter.total == 3 * STEP_J + 10 * STEP_J + 3 * EVAL_J  # warm-up, timed steps, checkpoints 0, 5, 10
    assert cpu.joules == 10 * STEP_J  # the timed steps and nothing else
    assert cpu.windows == len(r.timing.blocks)
    assert list(cpu.window_joules) == [n * STEP_J for n, _ in r.timing.blocks]  # one window per block, aligned
    # a window is its block plus the meter's own two clock reads around it: never the checkpoints between blocks
    assert cpu.seconds == pytest.approx(r.timing.train_seconds + 2 * tick * len(r.timing.blocks))


def test_counter_reads_leave_the_timing_as_it_was(tiny):
    def timed(**kw):
        return train(make_cell(budget=Budget.parse("12steps"), eval_points=3, warmup_steps=2), tiny, ENV, "run",
                     clock=FakeClock(0.001), **kw).timing

    without = timed(meter_factory=lambda device, **kw: None)
    with_meter = timed(cpu_watts=65.0)
    assert [n for n, _ in with_meter.blocks] == [n for n, _ in without.blocks]
    assert [s for _, s in with_meter.blocks] == pytest.approx([s for _, s in without.blocks])
    assert with_meter.step_seconds == pytest.approx(without.step_seconds)
    assert (with_meter.train_seconds, with_meter.eval_seconds) == pytest.approx(
        (without.train_seconds, without.eval_seconds))


def test_no_meter_records_no_energy(tiny):
    r = train(make_cell(), tiny, ENV, "run", meter_factory=lambda device, **kw: None)
    assert r.status == "ok" and r.energy is None


@pytest.fixture
def no_rapl(monkeypatch, tmp_path):
    """A machine with no powercap folder (this one, and most VMs), whatever the machine running the test has."""
    monkeypatch.setattr(energy, "meter_for", functools.partial(energy.meter_for, powercap=tmp_path / "absent"))


def test_cpu_watts_gives_an_estimate_of_watts_times_window_seconds(tiny, no_rapl):
    tick = 0.001
    r = train(make_cell(budget=Budget.parse("10steps")), tiny, ENV, "run", clock=FakeClock(tick), cpu_watts=65.0)
    cpu = r.energy["cpu"]
    assert cpu.method == "estimate" and cpu.source == "--cpu-watts 65"
    assert "not measured" in cpu.reason and "no RAPL counters" in cpu.reason
    assert cpu.joules == pytest.approx(65.0 * cpu.seconds)
    assert list(cpu.window_joules) == pytest.approx([65.0 * (n + 3) * tick for n, _ in r.timing.blocks])


def test_a_record_with_energy_reads_back_as_written(tiny, no_rapl):
    from bench.records import Record

    r = train(make_cell(), tiny, ENV, "run", cpu_watts=40.0)
    assert Record.from_json(r.to_json()).energy == r.energy


def run_args(fashion, out, *extra):
    return ["run", "--dataset", "fashion-mnist", "--data-dir", str(fashion), "--devices", "cpu", "--pipeline",
            "resident", "--batch-size", "4", "--budget", "3steps", "--eval", "none", "--warmup", "1",
            "--workers", "0", "--threads", "1", "--no-breakdown", "--no-report", "--quiet", "--out", str(out),
            *extra]


def energy_of(out) -> dict:
    return json.loads((out / "records.jsonl").read_text().splitlines()[0])["energy"]


def test_bench_run_without_a_counter_records_unavailable_with_the_reason(capsys, tmp_path, fashion, no_rapl):
    out = tmp_path / "out"
    assert main(run_args(fashion, out)) == 0, capsys.readouterr().err
    cpu = energy_of(out)["cpu"]
    assert cpu["method"] == "unavailable" and cpu["joules"] is None and cpu["window_joules"] == []
    assert cpu["reason"].startswith("no RAPL counters at") and cpu["windows"] >= 1


def test_bench_run_with_cpu_watts_records_an_estimate(capsys, tmp_path, fashion, no_rapl):
    out = tmp_path / "out"
    assert main(run_args(fashion, out, "--cpu-watts", "35")) == 0, capsys.readouterr().err
    cpu = energy_of(out)["cpu"]
    assert cpu["method"] == "estimate" and cpu["joules"] == pytest.approx(35 * cpu["seconds"])


def test_the_watts_do_not_change_cell_keys_so_resume_finds_earlier_cells(capsys, tmp_path, fashion):
    def keys(*extra):
        return [c.key for c in run_config(build_parser().parse_args(run_args(fashion, tmp_path, *extra))).cells()]

    assert keys() == keys("--cpu-watts", "65", "--gpu-watts", "300")
    out = tmp_path / "out"
    assert main(run_args(fashion, out)) == 0
    capsys.readouterr()
    assert main(run_args(fashion, out, "--cpu-watts", "65", "--resume")) == 0
    assert "skipping 1 of 1 cells" in capsys.readouterr().err
    assert len((out / "records.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("flags,match", [
    (["--cpu-watts", "0"], "--cpu-watts must be a positive number"),
    (["--cpu-watts", "-65"], "--cpu-watts must be a positive number"),
    (["--cpu-watts", "lots"], "cannot read --cpu-watts 'lots'"),
    (["--gpu-watts", "nan"], "--gpu-watts must be a positive number"),
    (["--gpu-watts", "20000"], "--gpu-watts must be at most 10000"),
])
def test_bad_watts_are_one_line_and_exit_2(capsys, tmp_path, fashion, flags, match):
    assert main(run_args(fashion, tmp_path / "out", *flags)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and err.startswith("bench: error:") and match in err, err
    assert not (tmp_path / "out" / "records.jsonl").exists()


def test_run_config_refuses_watts_out_of_range():
    from bench.config import RunConfig

    base = dict(dataset="synthetic", devices=("cpu",), configs=(("resident", 4),), widths=(1.0,), threads=(1,),
                budget=Budget.parse("3steps"))
    assert RunConfig(**base, cpu_watts=65.0).cpu_watts == 65.0
    for bad in (0, -1.0, 1e9, True, "65"):
        with pytest.raises(ValueError, match="--cpu-watts must be a number of watts"):
            RunConfig(**base, cpu_watts=bad)
