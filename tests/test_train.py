"""Training one cell on tiny data: clock accounting, budgets, warm-up, evaluation, and faults as records."""

import math

import pytest
import torch

from bench.config import Budget
from bench.records import Environment
from bench.pipelines import ImageArrayDataset, normalized_tensor, tutorial_transform
from bench.train import train
from bench.tuning import eager_step as make_step
from tests.conftest import make_cell
from tests.test_timing import FakeClock

ENV = Environment(host="test")


def test_fake_clock_accounting_excludes_warmup_and_evaluation(tiny):
    tick = 0.001
    r = train(make_cell(budget=Budget.parse("10steps"), eval_points=2, warmup_steps=3), tiny, ENV, "run",
              clock=FakeClock(tick))
    t = r.timing
    assert r.status == "ok" and t.steps == 10 and t.samples == 40
    assert t.step_seconds == pytest.approx([tick] * 10)  # one clock read per step
    # each block: one read at its start, one per step, one at its end -> (n + 1) ticks; nothing else counts
    assert t.train_seconds == pytest.approx(sum((n + 1) * tick for n, _ in t.blocks))
    assert sum(n for n, _ in t.blocks) == 10
    assert t.eval_seconds == pytest.approx(3 * tick)  # checkpoints at steps 0, 5 and 10, one tick each
    assert t.warmup_steps == 3 and t.warmup_seconds == pytest.approx(tick)
    assert [p.step for p in r.accuracy_curve] == [0, 5, 10]
    assert r.accuracy_curve[-1].seconds == pytest.approx(t.train_seconds)


def test_time_budget_is_enforced_on_training_time(tiny):
    r = train(make_cell(budget=Budget.parse("0.2s"), eval_points=8, warmup_steps=2), tiny, ENV, "run",
              clock=FakeClock(0.001))
    t = r.timing
    assert 0.2 <= t.train_seconds < 0.2 + 0.01
    assert len(r.accuracy_curve) == 9  # step 0 plus 8 checkpoints


def test_default_eval_gives_eight_checkpoints_plus_the_start(tiny):
    r = train(make_cell(budget=Budget.parse("16steps"), eval_points=8), tiny, ENV, "run")
    assert [p.step for p in r.accuracy_curve] == [0, 2, 4, 6, 8, 10, 12, 14, 16]
    assert all(0 <= p.accuracy <= 1 for p in r.accuracy_curve)


def test_eval_none_skips_accuracy(tiny):
    r = train(make_cell(eval_points=0), tiny, ENV, "run")
    assert r.status == "ok" and r.accuracy_curve == () and r.timing.eval_seconds == 0


def test_warmup_is_undone_so_counted_samples_are_all_the_training(tiny):
    # a fake clock, so both runs cut their steps into the same blocks (block sizes follow measured step times)
    a = train(make_cell(warmup_steps=0, budget=Budget.parse("12steps")), tiny, ENV, "run", clock=FakeClock(0.001))
    b = train(make_cell(warmup_steps=7, budget=Budget.parse("12steps")), tiny, ENV, "run", clock=FakeClock(0.001))
    assert [s for s, _ in a.loss_curve] == [s for s, _ in b.loss_curve]
    assert [v for _, v in a.loss_curve] == pytest.approx([v for _, v in b.loss_curve], rel=1e-6)
    assert a.accuracy_curve[-1].accuracy == b.accuracy_curve[-1].accuracy


def test_training_learns_the_tiny_task(tiny):
    r = train(make_cell(budget=Budget.parse("30ep"), batch_size=16, lr=0.05, eval_points=1), tiny, ENV, "run")
    assert r.loss_curve[-1][1] < math.log(10)  # below the loss of a uniform guess
    assert r.accuracy_curve[-1].accuracy > max(0.3, r.accuracy_curve[0].accuracy)  # chance is 0.1


def test_tutorial_pipeline_runs_with_worker_processes(tiny):
    r = train(make_cell(pipeline="tutorial", workers=2, budget=Budget.parse("1ep")), tiny, ENV, "run")
    assert r.status == "ok" and r.timing.steps == 64 // 4


def test_both_pipelines_feed_the_same_normalized_pixels(tiny):
    ds = ImageArrayDataset(tiny.train_images, tiny.train_labels, tutorial_transform(3))
    resident = normalized_tensor(tiny.train_images)
    for i in (0, 17, 63):
        x, y = ds[i]
        assert torch.allclose(x, resident[i], atol=1e-6) and y == tiny.train_labels[i]


def test_threads_are_set_for_the_cell_and_restored(tiny):
    before = torch.get_num_threads()
    seen = []

    def spy(net, optimizer, host_loss):
        step = make_step(net, optimizer, host_loss)

        def wrapped(x, y):
            seen.append(torch.get_num_threads())
            return step(x, y)

        return wrapped

    train(make_cell(threads=1), tiny, ENV, "run", step_factory=spy)
    assert set(seen) == {1} and torch.get_num_threads() == before


def failing_at(k, make_failure):
    def factory(net, optimizer, host_loss):
        step = make_step(net, optimizer, host_loss)
        calls = {"n": 0}

        def wrapped(x, y):
            calls["n"] += 1
            if calls["n"] == k:
                return make_failure()
            return step(x, y)

        return wrapped

    return factory


def test_nan_loss_stops_the_cell_as_diverged_with_its_step(tiny):
    # warm-up takes the first 2 calls, so call 9 is counted step 7
    r = train(make_cell(warmup_steps=2, budget=Budget.parse("40steps")), tiny, ENV, "run",
              step_factory=failing_at(9, lambda: torch.tensor(math.nan)))
    assert r.status == "diverged"
    assert r.timing.diverged_at_step == 7 and "step 7" in r.message
    assert r.timing.steps < 40


def test_out_of_memory_becomes_an_oom_record(tiny):
    def boom():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    r = train(make_cell(batch_size=8, width=4.0), tiny, ENV, "run", step_factory=failing_at(5, boom))
    assert r.status == "oom"
    assert "batch size 8" in r.message and "width 4" in r.message


def test_other_errors_are_not_swallowed(tiny):
    def bug():
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        train(make_cell(), tiny, ENV, "run", step_factory=failing_at(3, bug))


def test_record_carries_model_and_dataset_facts(tiny):
    r = train(make_cell(), tiny, ENV, "run")
    assert r.model.parameters == 62006 and r.model.train_flops_per_image == 3_204_720
    assert r.dataset.train_size == 64 and r.dataset.input_shape == (3, 32, 32)
    assert r.memory.peak_bytes > 0
    assert r.timing.clock == "host"
