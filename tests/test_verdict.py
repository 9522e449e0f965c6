"""The verdict: speedups, intervals, outcomes and crossovers equal what the records give by hand."""

import pandas as pd
import pytest

from bench import stats, verdict
from bench.results import rate_bootstrap, to_frame
from tests import reportdata as rd


def mean_step(r) -> float:
    """Timed seconds over timed steps: what the wall clock saw per step (images/s = batch / this)."""
    return sum(s for _, s in r.timing.blocks) / sum(n for n, _ in r.timing.blocks)


def by_hand(cpu, gpu):
    return mean_step(cpu) / mean_step(gpu), stats.interval(rate_bootstrap(gpu) / rate_bootstrap(cpu))


@pytest.mark.parametrize("pipeline,batch,width,name", [
    ("tutorial", 4, 1, "tutorial configuration"), ("resident", 4, 1, None), ("resident", 8, 1, "larger batches"),
    ("tutorial", 256, 1, "larger batches"), ("resident", 4, 2, "wider models"), ("resident", 256, 0.5, None),
])
def test_regimes_follow_their_definitions(pipeline, batch, width, name):
    assert verdict.regime(pipeline, batch, width) == name


@pytest.mark.parametrize("low,high,expected", [(0.5, 1.9, "holds"), (2.1, 3.0, "fails"), (1.5, 2.5, "inconclusive")])
def test_outcome_compares_the_interval_with_the_threshold(low, high, expected):
    assert verdict.outcome(low, high) == expected


def test_pairs_give_the_speedup_and_interval_computed_from_the_records():
    records = rd.grid(batches=(4, 64), widths=(1,))
    v = verdict.judge(to_frame(records))
    cpu = {(r.cell.pipeline, r.cell.batch_size): r for r in records if r.cell.device == "cpu"}
    gpu = {(r.cell.pipeline, r.cell.batch_size): r for r in records if r.cell.device == "cuda:0"}
    assert len(v.pairs) == 3
    for _, p in v.pairs.iterrows():
        key = (p["pipeline"], p["batch_size"])
        value, (low, high) = by_hand(cpu[key], gpu[key])
        assert (p["speedup"], p["low"], p["high"]) == pytest.approx((value, low, high))
        assert p["outcome"] == verdict.outcome(low, high)


def test_the_fixture_grid_holds_in_the_tutorial_and_fails_at_large_sizes():
    v = verdict.judge(to_frame(rd.grid()))
    status = {f.regime: f.status for f in v.findings}
    assert status == {"tutorial configuration": "holds", "larger batches": "mixed", "wider models": "mixed"}
    c = v.crossovers.set_index(["axis", "pipeline"])
    assert c.loc[("batch", "resident"), "crossover"] == 64  # 16 gives about 1x, 64 about 3x
    assert c.loc[("width", "resident"), "crossover"] == 4
    assert "**64**" in " ".join(v.summary) and "**4**" in " ".join(v.summary)
    [(outcome, headline)] = v.headlines
    assert outcome == "holds" and "is slower than the CPU**: 0.8" in headline


def test_only_cpu_results_say_so_and_what_to_run():
    v = verdict.judge(to_frame(rd.grid(devices=("cpu",))))
    assert v.pairs.empty and v.kinds == ["cpu"]
    assert "only CPU" in v.summary[0] and "bench run" in v.summary[0] and "GPU" in v.summary[0]


def test_only_gpu_results_say_what_to_run():
    v = verdict.judge(to_frame(rd.grid(devices=("cuda:0",))))
    assert "--devices cpu" in v.summary[0]


def test_a_gpu_is_compared_with_its_own_cpu_and_with_cpu_only_machines_not_other_gpu_machines():
    df = to_frame(rd.grid(batches=(4,), widths=(1,), host="alpha")
                  + rd.grid(batches=(4,), widths=(1,), host="gamma", scale=2.0)
                  + rd.grid(devices=("cpu",), batches=(4,), widths=(1,), host="beta", scale=3.0))
    p = verdict.pairs(df)
    pairs = set(zip(p["machine"], p["base_machine"]))
    assert pairs == {("alpha", "alpha"), ("alpha", "beta"), ("gamma", "gamma"), ("gamma", "beta")}
    assert set(p[p["cross_machine"]]["base_machine"]) == {"beta"}


def test_a_gpu_without_a_cpu_on_its_machine_is_compared_with_each_other_machines_cpu():
    df = to_frame(rd.grid(devices=("cuda:0",), batches=(4,), widths=(1,), host="alpha")
                  + rd.grid(devices=("cpu",), batches=(4,), widths=(1,), host="beta"))
    p = verdict.pairs(df)
    assert set(p["base_machine"]) == {"beta"} and p["cross_machine"].all()
    assert "@ alpha vs cpu @ beta" in verdict.pair_label(p.iloc[0], True)


def test_failed_and_missing_cells_are_named_not_compared():
    records = rd.grid(batches=(4, 64), widths=(1,)) + [
        rd.record("cuda:0", "resident", 4096, 1, status="oom", message="CUDA out of memory"),
        rd.record("cpu", "resident", 4096, 1)]
    v = verdict.judge(to_frame(records))
    assert 4096 not in set(v.pairs["batch_size"])
    larger = next(f for f in v.findings if f.regime == "larger batches")
    assert any("batch 4096" in s and "oom" in s for s in larger.sentences)


def test_the_cpu_with_the_most_threads_is_the_baseline():
    records = [rd.record("cpu", threads=1, scale=2.0), rd.record("cpu", threads=16), rd.record("cuda:0")]
    p = verdict.pairs(to_frame(records))
    assert list(p["base_threads"]) == [16]


def test_no_usable_cells_give_an_empty_verdict_not_an_error():
    v = verdict.judge(to_frame([rd.record("cuda:0", status="oom")]))
    assert v.pairs.empty and "nothing to compare" in v.summary[0]
    assert isinstance(v.crossovers, pd.DataFrame)
