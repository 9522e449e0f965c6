"""Timing logic, driven by a fake clock: blocks, checkpoints, budget enforcement and step sampling."""

import pytest

from bench.config import Budget
from bench.devices import EventStepClock, StepClock
from bench.timing import Schedule, StepSample


class FakeClock:
    """Advances by `tick` seconds every time it is read."""

    def __init__(self, tick=0.01):
        self.t = 100.0
        self.tick = tick

    def __call__(self):
        self.t += self.tick
        return self.t


def drive(schedule, step_seconds):
    """Run a schedule as train() does, with every step taking step_seconds; returns blocks and checkpoints."""
    steps, seconds, est, blocks, checkpoints = 0, 0.0, None, [], []
    while (n := schedule.next_block(steps, seconds, est)) > 0:
        steps += n
        seconds += n * step_seconds
        est = step_seconds
        blocks.append(n)
        if schedule.checkpoint_due(steps, seconds):
            checkpoints.append((steps, round(seconds, 6)))
    return steps, seconds, blocks, checkpoints


def test_work_budget_runs_exactly_its_steps_and_ends_blocks_at_checkpoints():
    s = Schedule(Budget.parse("1000steps"), 1000, eval_points=8, max_block_steps=64)
    steps, _, blocks, checkpoints = drive(s, 0.001)
    assert steps == 1000
    assert [c[0] for c in checkpoints] == [125, 250, 375, 500, 625, 750, 875, 1000]
    assert max(blocks) <= 64


def test_blocks_last_about_the_target_seconds():
    s = Schedule(Budget.parse("10000steps"), 10000, eval_points=1, max_block_steps=256, target_block_seconds=0.5)
    _, _, blocks, _ = drive(s, 0.01)  # 10 ms steps: 50 per half second
    assert blocks[0] == 8 and set(blocks[1:-1]) == {50}


def test_time_budget_stops_within_one_step_of_the_limit():
    s = Schedule(Budget.parse("2s"), None, eval_points=8)
    steps, seconds, _, checkpoints = drive(s, 0.003)
    assert 2.0 - 1e-6 <= seconds <= 2.0 + 0.003 + 1e-6
    assert len(checkpoints) == 8
    # each checkpoint comes at the first block boundary after its mark, within one step
    for k, (_, sec) in enumerate(checkpoints, 1):
        assert 2.0 * k / 8 - 1e-6 <= sec <= 2.0 * k / 8 + 0.003 + 1e-6


def test_no_evaluation_means_no_checkpoints_but_the_same_work():
    s = Schedule(Budget.parse("300steps"), 300, eval_points=0)
    steps, _, _, checkpoints = drive(s, 0.001)
    assert steps == 300 and checkpoints == []


def test_a_budget_shorter_than_the_checkpoints_still_evaluates_at_its_end():
    s = Schedule(Budget.parse("3steps"), 3, eval_points=8)
    steps, _, _, checkpoints = drive(s, 0.001)
    assert steps == 3 and checkpoints[-1][0] == 3 and len(checkpoints) == 3


def test_step_clock_measures_each_step_and_the_block_on_the_host_clock():
    clock = FakeClock(tick=0.25)
    timer = StepClock("cpu", clock)
    timer.start_block()  # reads 100.25
    for _ in range(3):
        timer.mark()  # 100.5, 100.75, 101.0
    steps, block = timer.finish_block()  # 101.25
    assert steps == [0.25, 0.25, 0.25]
    assert block == pytest.approx(1.0)


def test_step_sample_keeps_everything_until_capacity_then_a_uniform_sample():
    s = StepSample(capacity=100, seed=1)
    s.extend([1.0] * 50)
    assert s.values == [1.0] * 50 and not s.sampled
    s.extend([2.0] * 950)
    assert s.count == 1000 and len(s.values) == 100 and s.sampled
    # 95% of all steps are 2.0: a uniform sample holds mostly 2.0 but (almost surely) some 1.0
    assert 80 <= s.values.count(2.0) < 100


def test_step_sample_is_repeatable():
    a, b = StepSample(10, seed=3), StepSample(10, seed=3)
    data = [float(i) for i in range(1000)]
    a.extend(data)
    b.extend(data)
    assert a.values == b.values


class FakeEvent:
    """Stands in for torch.cuda.Event: record() stamps the fake device timeline, elapsed_time() is in ms."""

    timeline = [0.0]

    def record(self):
        self.at = FakeEvent.timeline[0]

    def elapsed_time(self, other):
        return (other.at - self.at) * 1000.0


def test_event_step_clock_takes_step_times_from_events_and_reuses_them():
    clock = FakeClock(tick=1.0)
    made = []

    def factory():
        made.append(FakeEvent())
        return made[-1]

    timer = EventStepClock("cpu", clock, event_factory=factory)  # the CUDA path, run on the CPU
    for durations in ([0.002, 0.003, 0.004], [0.001, 0.001]):
        FakeEvent.timeline[0] = 0.0
        timer.start_block()
        for d in durations:
            FakeEvent.timeline[0] += d  # the device spends d on the step
            timer.mark()
        steps, block = timer.finish_block()
        assert steps == pytest.approx(durations)
        assert block == pytest.approx(1.0)  # the host clock is read only at the block's start and end
    assert len(made) == 4  # events are pooled: the largest block needed 4, the second reused them


def test_a_slow_step_known_from_warmup_keeps_the_first_block_short():
    s = Schedule(Budget.parse("1s"), None, eval_points=1)
    assert s.next_block(0, 0.0, 3.0, provisional=True) == 1  # a 3 s step: one step overshoots enough
    assert s.next_block(0, 0.0, 0.0001, provisional=True) == 8  # fast, but still only an estimate
    assert s.next_block(0, 0.0, None) == 8
    w = Schedule(Budget.parse("1000steps"), 1000, eval_points=1)
    assert w.next_block(0, 0.0, 0.0001, provisional=True) == 8
    assert w.next_block(8, 0.0008, 0.0001) == 100  # 0.1 s of work in all: blocks of the 10 ms minimum
    long = Schedule(Budget.parse("100000steps"), 100000, eval_points=1)
    assert long.next_block(8, 0.0008, 0.0001) == 256  # 10 s of work: blocks of at most 256 steps


def test_a_short_budget_still_gets_enough_blocks_for_an_interval():
    s = Schedule(Budget.parse("1s"), None, eval_points=0)
    _, seconds, blocks, _ = drive(s, 0.0002)  # a CUDA-graph step: 5,000 in the budget
    assert len(blocks) >= 30 and max(blocks) * 0.0002 <= 1 / 32 + 1e-9
    s = Schedule(Budget.parse("400steps"), 400, eval_points=0)
    _, _, blocks, _ = drive(s, 0.001)  # 0.4 s of work
    assert len(blocks) >= 30


def test_blocks_never_shrink_below_the_minimum():
    s = Schedule(Budget.parse("0.05s"), None, eval_points=0)
    _, _, blocks, _ = drive(s, 0.001)
    assert all(n >= 10 for n in blocks[1:-1])  # 10 ms blocks, not 1.5 ms ones
