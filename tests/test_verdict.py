"""The verdict: speedups, intervals, outcomes and crossovers equal what the records give by hand."""

import re

import pytest

from dataclasses import replace

from bench import sentences, stats, verdict
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


def judge(records):
    df = to_frame(records)
    v = verdict.judge(df)
    return v, sentences.describe(v, df)


def answer(words, regime_name, comparison=verdict.AS_WRITTEN):
    return next(a for a in words.answers if a.regime == regime_name and a.comparison == comparison)


def test_pairs_give_the_speedup_and_interval_computed_from_the_records():
    records = rd.grid(batches=(4, 64), widths=(1,))
    v, _ = judge(records)
    cpu = {(r.cell.pipeline, r.cell.batch_size): r for r in records if r.cell.device == "cpu"}
    gpu = {(r.cell.pipeline, r.cell.batch_size): r for r in records if r.cell.device == "cuda:0"}
    written = v.of(verdict.AS_WRITTEN)
    assert len(written) == 3
    for _, p in written.iterrows():
        key = (p["pipeline"], p["batch_size"])
        value, (low, high) = by_hand(cpu[key], gpu[key])
        assert (p["speedup"], p["low"], p["high"]) == pytest.approx((value, low, high))
        assert p["outcome"] == verdict.outcome(low, high)


def test_the_fixture_grid_holds_in_the_tutorial_and_fails_at_large_sizes():
    v, w = judge(rd.grid(n=200))  # 40 blocks of 5 steps per cell: enough to decide
    assert {(a.regime, a.comparison): a.status for a in w.answers} == {
        (name, comparison): status for name, status in (("tutorial configuration", "holds"),
                                                        ("larger batches", "fails"), ("wider models", "fails"))
        for comparison in (verdict.AS_WRITTEN, verdict.AT_BEST)}
    assert "holds at batch 16" in answer(w, "larger batches").text
    assert "does not hold at batch 64, 256" in answer(w, "larger batches").text
    assert any("2x faster somewhere between batch 16 and 64" in c for c in w.crossovers)  # 32 not measured
    status, headline = w.headline
    # 0.81x, but each side's interval carries 10% run-to-run variation: 1 is inside the interval
    assert status == "holds" and "is about as fast as the CPU**" in headline and ": 0.81x" in headline


def test_a_gpu_clearly_slower_in_the_tutorial_is_called_slower():
    records = [rd.record("cuda:0", "tutorial", 4, 1, n=200, scale=2.0) if (r.cell.device, r.cell.pipeline) ==
               ("cuda:0", "tutorial") else r for r in rd.grid(n=200)]
    status, headline = judge(records)[1].headline
    assert status == "holds" and "is slower than the CPU**" in headline and ": 0.41x" in headline


def test_a_regime_with_no_pairs_is_not_measured_with_its_command():
    _, w = judge(rd.grid(batches=(4,), widths=(1,)))  # no larger batch, no wider model
    a = answer(w, "wider models")
    assert a.status == "not measured" and a.command.startswith("bench run ") and f"`{a.command}`" in a.text
    assert answer(w, "larger batches", verdict.AT_BEST).status == "not measured"


def test_a_grid_gap_gives_a_bracket():
    _, w = judge(rd.grid(batches=(4, 1024), widths=(1,), n=200))
    assert any("between batch 4 and 1024" in c for c in w.crossovers), w.crossovers
    # neighbours: no gap to bracket (the GPU's batch-32 cell slowed to 1.3x, clear of 2x with run-to-run width)
    records = [rd.record("cuda:0", "resident", 32, 1, n=200, scale=1.3) if (r.cell.device, r.cell.pipeline,
               r.cell.batch_size) == ("cuda:0", "resident", 32) else r for r in rd.grid(batches=(32, 64), widths=(1,), n=200)]
    _, w = judge(records)
    assert any("2x faster from batch 64 (not at 32)" in c for c in w.crossovers), w.crossovers


def test_a_noisy_cell_is_inconclusive_and_says_why():
    records = rd.grid(batches=(4, 256), widths=(1,), n=200)
    noisy = [rd.record("cuda:0", "resident", 256, 1, n=200, noise=0.5) if (r.cell.device, r.cell.batch_size) ==
             ("cuda:0", 256) and r.cell.pipeline == "resident" else r for r in records]
    v, w = judge(noisy)
    p = v.of(verdict.AS_WRITTEN)
    row = p[p["batch_size"] == 256].iloc[0]
    assert row["low"] > 2  # the interval alone would say the claim fails
    assert row["outcome"] == "inconclusive" and "pace varied" in row["reason"] and row["doubt"] == "noisy"
    assert "inconclusive at batch 256" in answer(w, "larger batches").text and "noisy (1)" in \
        answer(w, "larger batches").text


def test_a_cell_with_too_few_blocks_is_inconclusive():
    v, _ = judge(rd.grid(batches=(4,), widths=(1,), n=20))  # 4 blocks of 5 steps
    assert set(v.pairs["outcome"]) == {"inconclusive"} and set(v.pairs["doubt"]) == {"too few blocks"}


def test_only_cpu_results_say_so_and_what_to_run():
    v, w = judge(rd.grid(devices=("cpu",)))
    assert v.pairs.empty and v.kinds == ["cpu"]
    status, text = w.headline
    assert status == "none" and "only CPU" in text and "bench run" in text and "--reference" in text


def test_only_gpu_results_say_what_to_run():
    _, w = judge(rd.grid(devices=("cuda:0",)))
    assert any("--devices cpu" in n for n in w.notes)


def test_a_gpu_is_compared_with_its_own_cpu_and_with_cpu_only_machines_not_other_gpu_machines():
    v, _ = judge(rd.grid(batches=(4,), widths=(1,), host="alpha")
                 + rd.grid(batches=(4,), widths=(1,), host="gamma", scale=2.0)
                 + rd.grid(devices=("cpu",), batches=(4,), widths=(1,), host="beta", scale=3.0))
    p = v.of(verdict.AS_WRITTEN)
    pairs = set(zip(p["machine"], p["base_machine"]))
    assert pairs == {("alpha", "alpha"), ("alpha", "beta"), ("gamma", "gamma"), ("gamma", "beta")}
    assert set(p[p["cross_machine"]]["base_machine"]) == {"beta"}
    assert set(verdict.evidence(p)["cross_machine"]) == {False}  # sentences rest on same-machine pairs


def test_a_gpu_without_a_cpu_on_its_machine_is_compared_with_each_other_machines_cpu():
    v, w = judge(rd.grid(devices=("cuda:0",), batches=(4,), widths=(1,), host="alpha", n=200)
                 + rd.grid(devices=("cpu",), batches=(4,), widths=(1,), host="beta", n=200))
    p = v.of(verdict.AS_WRITTEN)
    assert set(p["base_machine"]) == {"beta"} and p["cross_machine"].all()
    assert "@ alpha vs cpu @ beta" in verdict.pair_label(p.iloc[0], True)
    assert "across machines: GPU on alpha, CPU on beta" in w.headline[1]
    assert any("another machine's CPU" in c for c in w.caveats)


def test_the_headline_puts_a_gpu_beside_its_own_cpu_first_and_states_the_terms_once():
    """The H200 folder read whole: a pytest-benchmark GPU with no CPU of its own came first, across machines, and
    each sentence repeated the tutorial's terms."""
    _, w = judge(rd.grid(devices=("cuda:0",), batches=(4,), widths=(1,), host="gamma", n=200)
                 + rd.grid(batches=(4,), widths=(1,), host="alpha", n=200))
    text = w.headline[1]
    assert text.count("On the tutorial's own terms") == 1 and text.count("across machines") == 1, text
    assert text.index("NVIDIA H100") < text.index("across machines: GPU on gamma, CPU on alpha"), text


def test_failed_cells_are_named_not_compared():
    records = rd.grid(batches=(4, 64), widths=(1,)) + [
        rd.record("cuda:0", "resident", 4096, 1, status="oom", message="CUDA out of memory"),
        rd.record("cpu", "resident", 4096, 1)]
    v, w = judge(records)
    assert 4096 not in set(v.pairs["batch_size"])
    assert "batch 4096, width 1 ended oom" in answer(w, "larger batches").text


def test_the_fastest_cpu_is_the_baseline_whatever_its_threads():
    records = [rd.record("cpu", threads=16, scale=2.0), rd.record("cpu", threads=2), rd.record("cuda:0")]
    p = verdict.judge(to_frame(records)).of(verdict.AS_WRITTEN)
    assert list(p["base_threads"]) == [2]


def test_a_cpu_variant_slower_than_eager_is_never_the_baseline_at_their_best():
    eager = rd.record("cpu", "resident", 4, 1)
    slow = rd.record("cpu", "resident", 4, 1, scale=1.5, seed=3)
    slow = replace(slow, cell=replace(slow.cell, variant="fast", tune=("channels_last",)))
    gpu = rd.record("cuda:0", "resident", 4, 1, scale=0.1)
    gpu = replace(gpu, cell=replace(gpu.cell, variant="fast", tune=("cudagraph",)))
    v, _ = judge([eager, slow, gpu])
    best = v.of(verdict.AT_BEST)
    assert len(best) == 1 and best.iloc[0]["variant"] == "fast" and best.iloc[0]["base_variant"] == ""
    assert best.iloc[0]["base_images_per_s"] == pytest.approx(to_frame([eager])["images_per_s"][0])


def test_no_usable_cells_give_an_empty_verdict_not_an_error():
    v, w = judge([rd.record("cuda:0", status="oom")])
    assert v.pairs.empty and "nothing to compare" in w.notes[0]
    assert w.headline[0] == "none" and w.crossovers == []


def test_two_noisy_cells_name_both_paces():
    """Both sides of a pair noisy: the reason named only the GPU's pace (one dict key overwrote the other)."""
    records = [rd.record(d, "resident", 256, 1, n=200, noise=0.5, seed=i) for i, d in enumerate(("cpu", "cuda:0"))]
    row = judge(records)[0].of(verdict.AS_WRITTEN).iloc[0]
    assert row["doubt"] == "noisy"
    assert re.fullmatch(r"cuda:0's pace varied \d+% between blocks; cpu's pace varied \d+% between blocks",
                        row["reason"]), row["reason"]


def test_a_machine_without_a_gpu_is_set_beside_each_gpu_in_its_own_line():
    """Your CPU-only machine beside the committed reference (--reference): the headline stays same-machine, and
    one line says how the two machines compare, labelled so."""
    records = rd.grid(batches=(4,), widths=(1,), n=200) + [rd.record("cpu", "tutorial", 4, 1, host="beta", n=200,
                                                                      scale=2.0)]
    v, w = judge(records)
    assert "the **NVIDIA H100 80GB HBM3 is" in w.headline[1] and "beta" not in w.headline[1]
    (line,) = w.beside
    gpu, cpu = (4 / rd.step_model(d, "tutorial", 4, 1, s) for d, s in (("cuda:0", 1.0), ("cpu", 2.0)))
    assert line.startswith("Beside beta, which has no GPU (two machines, not two devices): the NVIDIA H100 80GB "
                           "HBM3 on alpha trained the tutorial configuration at ")
    speedup = float(re.search(r"configuration at ([\d.]+)x", line).group(1))
    assert speedup == pytest.approx(gpu / cpu, rel=0.05) and line.endswith(": inconclusive: the interval contains 2x.")
    assert judge(rd.grid(batches=(4,), widths=(1,), n=200))[1].beside == []  # one machine: no such line
