"""Time-to-accuracy targets: the highest accuracy every device reached, never below twice chance."""

from __future__ import annotations

from dataclasses import replace

from bench.records import AccuracyPoint
from bench.results import to_frame
from bench.targets import targets
from tests import reportdata as rd


def with_curve(record, accuracies):
    curve = tuple(AccuracyPoint(i, i * 4, i * 0.1, a) for i, a in enumerate(accuracies))
    return replace(record, accuracy_curve=curve)


def test_the_target_is_what_every_device_reached():
    cpu = with_curve(rd.record("cpu"), [0.1, 0.4, 0.62])
    gpu = with_curve(rd.record("cuda:0"), [0.1, 0.5, 0.58])
    assert list(targets(to_frame([cpu, gpu])).values()) == [0.58]


def test_a_noisy_run_never_targets_chance():
    cpu = with_curve(rd.record("cpu"), [0.1, 0.101])  # a run that learned nothing: 10.1% on 10 classes
    gpu = with_curve(rd.record("cuda:0"), [0.1, 0.35])
    assert list(targets(to_frame([cpu, gpu])).values()) == [None]  # below twice chance (20%): no target
    cpu = with_curve(rd.record("cpu"), [0.1, 0.21])
    assert list(targets(to_frame([cpu, gpu])).values()) == [0.21]


def test_the_users_target_wins():
    cpu = with_curve(rd.record("cpu"), [0.1, 0.101])
    assert list(targets(to_frame([cpu]), 0.05).values()) == [0.05]
