"""--threads auto: the probe times each candidate count and the cell trains at the fastest."""

from __future__ import annotations

import itertools

import pytest
import torch

from bench import threads
from bench.config import Budget
from bench.records import Environment
from bench.train import train
from tests.conftest import make_cell


class ThreadClock:
    """A clock that a fake step advances by the seconds one step takes at the current thread count."""

    def __init__(self, seconds_at: dict[int, float]):
        self.t, self.seconds_at = 0.0, seconds_at

    def __call__(self) -> float:
        return self.t

    def step(self, *batch) -> None:
        self.t += self.seconds_at[torch.get_num_threads()]


def test_candidates_double_up_to_the_cores():
    assert threads.candidates(1) == [1]
    assert threads.candidates(2) == [1, 2]
    assert threads.candidates(16) == [1, 2, 4, 8, 16]
    assert threads.candidates(12) == [1, 2, 4, 8, 12]


def test_the_probe_picks_the_fastest_count_not_the_most():
    clock = ThreadClock({1: 0.004, 2: 0.002, 4: 0.003, 8: 0.009})  # a small model: more threads, more overhead
    seconds = threads.probe(clock.step, itertools.repeat(()), [1, 2, 4, 8], clock, step_seconds=0.002)
    assert seconds == pytest.approx({1: 0.004, 2: 0.002, 4: 0.003, 8: 0.009})
    assert threads.fastest(seconds) == 2
    assert threads.fastest({1: 0.002, 2: 0.002}) == 1  # a tie goes to fewer threads


def test_the_probe_restores_the_thread_count():
    before = torch.get_num_threads()
    clock = ThreadClock({n: 0.001 for n in (1, 2, 4)})
    threads.probe(clock.step, itertools.repeat(()), [1, 2, 4], clock, step_seconds=None)
    assert torch.get_num_threads() == before


def test_an_auto_cell_records_its_probe_and_trains_at_the_fastest(tiny, monkeypatch):
    monkeypatch.setattr(threads, "candidates", lambda cores: [1, 2])
    monkeypatch.setattr(threads, "fastest", lambda seconds: 1)  # whatever this machine measures, choose 1
    seen = []

    def spying_step(net, optimizer, host_loss):
        from bench.tuning import eager_step

        step = eager_step(net, optimizer, host_loss)
        return lambda x, y: (seen.append(torch.get_num_threads()), step(x, y))[1]

    r = train(make_cell(threads=None, budget=Budget.parse("6steps"), warmup_steps=2), tiny, Environment(), "run",
              step_factory=spying_step)
    assert r.status == "ok" and r.cell.threads is None and r.timing.threads == 1
    assert set(r.timing.thread_probe) == {"1", "2"} and all(v > 0 for v in r.timing.thread_probe.values())
    assert seen[-6:] == [1] * 6  # the timed steps ran at the chosen count
    assert 2 in seen[:-6]  # the probe tried 2 threads


def test_a_fixed_count_is_not_probed(tiny):
    r = train(make_cell(threads=1, budget=Budget.parse("4steps")), tiny, Environment(), "run")
    assert r.timing.threads == 1 and r.timing.thread_probe == {}


def test_the_probe_stops_trying_fewer_threads_once_they_are_much_slower():
    clock = ThreadClock({16: 0.10, 8: 0.16, 4: 0.30, 2: 0.6, 1: 1.2})  # a large batch: halving threads hurts
    seconds = threads.probe(clock.step, itertools.repeat(()), [1, 2, 4, 8, 16], clock, step_seconds=0.1)
    assert list(seconds) == [16, 8] and threads.fastest(seconds) == 16  # 8 threads: 1.6x slower, stop there


def test_counts_within_five_percent_are_a_tie_that_goes_to_fewer_threads():
    assert threads.fastest({1: 0.00101, 2: 0.00100}) == 1  # 1% apart: the probe cannot tell them apart
    assert threads.fastest({1: 0.00110, 2: 0.00100}) == 2  # 10% apart: two threads are faster
