"""The step-time breakdown: sections add up, the resident pipeline copies nothing, the runner records it."""

import itertools
from dataclasses import replace

import pytest
import torch

from bench import runner
from bench.breakdown import SECTIONS, profile_step
from bench.config import Budget, RunConfig
from bench.reading import read_records
from bench.writer import RecordWriter
from tests.conftest import make_cell


def ticking_clock(tick=0.001):
    """Each read advances one tick: every timed section then lasts exactly one tick."""
    counter = itertools.count()
    return lambda: next(counter) * tick


@pytest.mark.parametrize("pipeline", ["resident", "tutorial"])
def test_each_section_is_timed_between_its_own_clock_reads(tiny, pipeline):
    p = profile_step(make_cell(pipeline=pipeline), tiny, steps=7, warmup=2, clock=ticking_clock())
    assert p.method == "synchronized section timers" and p.steps == 7
    assert set(p.sections_ms) == set(SECTIONS)
    copy_ms = 0.0 if pipeline == "resident" else 1.0  # resident batches already live on the device
    assert p.sections_ms == pytest.approx({"data": 1.0, "h2d": copy_ms, "forward": 1.0, "backward": 1.0,
                                              "optimizer": 1.0})
    assert p.total_ms == pytest.approx(sum(p.sections_ms.values()))
    assert all(len(v) == 7 for v in p.section_seconds.values())


def test_the_pass_stops_early_when_its_time_budget_runs_out(tiny):
    p = profile_step(make_cell(), tiny, steps=50, warmup=0, max_seconds=0.010, clock=ticking_clock())
    assert p.steps == 5  # the minimum kept: each step reads the clock 5 times (1 ms each)


def test_real_clock_gives_positive_sections(tiny):
    p = profile_step(make_cell(pipeline="tutorial", batch_size=8), tiny, steps=4, warmup=1)
    assert all(p.sections_ms[s] > 0 for s in ("data", "forward", "backward", "optimizer"))


def test_bad_step_counts_are_refused(tiny):
    with pytest.raises(ValueError, match="steps"):
        profile_step(make_cell(), tiny, steps=0)


def test_runner_records_the_breakdown_without_touching_the_timed_numbers(tiny, tmp_path):
    config = RunConfig(dataset="synthetic", devices=("cpu",), configs=(("resident", 4),), widths=(1.0,),
                       threads=(1,), budget=Budget.parse("6steps"), lr=0.01, eval_points=1, warmup_steps=1,
                       workers=0)
    with_bd = runner.run(config, tiny, RecordWriter(tmp_path / "a"), clock=ticking_clock(), breakdown=True)
    without = runner.run(config, tiny, RecordWriter(tmp_path / "b"), clock=ticking_clock(), breakdown=False)
    def timed(r):  # all but the wall-clock window, which only says when the cell ran
        return replace(r.timing, started_unix=None, finished_unix=None)

    assert timed(with_bd[0]) == timed(without[0])
    assert without[0].profile is None
    assert with_bd[0].profile.method == "synchronized section timers"
    assert read_records(tmp_path / "a" / "records.jsonl")[0].profile.sections_ms["h2d"] == 0.0


def test_a_tuned_cell_is_profiled_with_its_own_options(tiny, monkeypatch):
    seen = []
    real_autocast = torch.autocast

    def spy(*args, **kwargs):
        seen.append((kwargs.get("dtype"), kwargs.get("enabled")))
        return real_autocast(*args, **kwargs)

    monkeypatch.setattr(torch, "autocast", spy)
    p = profile_step(make_cell(tune=("amp", "channels_last")), tiny, steps=3, warmup=1)
    assert p.steps == 3 and not p.error and p.sections_ms["forward"] > 0
    assert seen and all(s == (torch.bfloat16, True) for s in seen)  # the forward ran under bf16 autocast


def test_a_step_that_runs_as_one_unit_is_marked_not_profiled(tiny):
    for tune in (("cudagraph",), ("compile",), ("amp", "cudagraph")):
        p = profile_step(make_cell(tune=tune, device="cuda:0"), tiny)
        assert p.steps == 0 and p.error.startswith("not profiled: ") and not p.sections_ms
