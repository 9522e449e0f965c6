"""Fuzzed flag values (hypothesis): every value `bench run` or `bench data` rejects is one line on stderr and exit
status 2, never a traceback; every value it accepts reaches the runner with a grid that could train. The runner
and the synthetic data are replaced by stand-ins, so nothing trains and each example takes milliseconds."""

import contextlib
import io
from dataclasses import replace

import pytest
import torch
pytest.importorskip("hypothesis", reason="hypothesis comes with the dev extra: pip install -e \".[dev]\"")
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import bench.data
from bench import runner
from bench.cli import main
from bench.timing import Schedule
from tests.conftest import tiny_dataset

# What argv can hold: no NUL byte; lone surrogates only as Python's stand-ins for undecodable bytes (\udc80-\udcff)
CHARS = st.characters(exclude_characters="\x00", exclude_categories=("Cs",)) | st.sampled_from("\udc80\udcff")
TEXT = st.text(CHARS, max_size=12) | st.sampled_from(["a" * 300, "x/" + "b" * 300])  # names too long for the disk
NUMBER = st.one_of(
    st.integers(-10**30, 10**30).map(str),
    st.floats().map(str),
    st.sampled_from(["", " ", "0", "-0", "+4", " 4 ", "4.0", "1e3", "1e309", "-1e-400", "nan", "inf", "-inf",
                     "0x10", "1_000", "\u0663", "\uff14", "2**4", "1/2", "9" * 40]),
)
SMALL = st.one_of(st.integers(1, 300).map(str), st.floats(0.001, 2).map(str))  # values a run may accept
VALUE = st.one_of(SMALL, SMALL, NUMBER, TEXT)
LIST = st.one_of(VALUE, st.lists(VALUE, max_size=4).map(",".join), st.lists(SMALL, max_size=3).map(",".join))
DEVICES = ["auto", "cpu", "CPU ", "cuda", "cuda:0", "cuda:1", "mps", "meta", "cuda:-1", "cpu:0", "xla", "cpu,cpu"]
BUDGET_UNITS = ["ep", "epochs", "steps", "samples", "s", "sec", "x", "", " ep"]

RUN_FLAGS = {
    "--dataset": st.one_of(st.sampled_from(["auto", "synthetic", "cifar10", "SYNTHETIC", "imagenet"]), TEXT),
    "--data-dir": TEXT,
    "--devices": st.one_of(st.sampled_from(DEVICES), st.lists(st.sampled_from(DEVICES) | TEXT, max_size=3)
                           .map(",".join)),
    "--pipeline": st.one_of(st.lists(st.sampled_from(["tutorial", "resident", "", " tutorial"]) | TEXT, max_size=3)
                            .map(",".join), TEXT),
    "--batch-size": LIST,
    "--width": LIST,
    "--threads": st.one_of(LIST, st.sampled_from(["auto", " AUTO ", "auto,2", "aut0"])),
    "--budget": st.one_of(st.builds(lambda a, u: a + u, NUMBER | SMALL, st.sampled_from(BUDGET_UNITS)), TEXT),
    "--lr": VALUE,
    "--momentum": VALUE,
    "--seed": VALUE,
    "--eval": st.one_of(st.sampled_from(["none", " NONE ", "0", "1"]), VALUE),
    "--warmup": VALUE,
    "--workers": VALUE,
    "--out": st.text(CHARS.filter(lambda c: c != "/"), max_size=12),
    "--tune": st.one_of(st.lists(st.sampled_from(["none", "fast", "amp", "channels_last+amp", "cudagraph", "turbo",
                                                  "fast+amp", "", "+"]) | TEXT, max_size=3).map(",".join), TEXT),
    "--price": st.one_of(st.sampled_from(["cpu=0.19", "cuda=3.06", "cpu=", "=1", "cpu=-1", "cpu=inf", "tpu=1"]),
                         TEXT),
}


def flag_values(flags):
    names = st.lists(st.sampled_from(sorted(flags)), min_size=1, max_size=4, unique=True)
    return names.flatmap(lambda ns: st.tuples(*[st.tuples(st.just(n), flags[n]) for n in ns]))


class Reached(Exception):
    """The stand-in runner was called: the flags were accepted."""


@pytest.fixture
def stand_ins(monkeypatch):
    data = tiny_dataset(n_train=512, n_test=16)
    monkeypatch.setattr(bench.data, "_synthetic", lambda seed, reason: replace(data, reason=reason))

    def run(config, data, writer, hooks=None, clock=None, *, plan=None, train_cell=None, breakdown=True):
        raise Reached(config, data, plan)

    monkeypatch.setattr(runner, "run", run)
    monkeypatch.setattr(bench.data, "download", _no_network(bench.data.download))


def run_main(argv):
    """main(argv) -> (status or None when it reached the runner, stderr, what reached the runner)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return main(argv), err.getvalue(), None
        except Reached as reached:
            return None, err.getvalue(), reached.args


def assert_rejected_in_one_line(code, err, argv):
    assert code == 2, (argv, err)
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), (argv, err)
    assert "Traceback" not in err


def assert_could_train(config, data, plan):
    """What a cell needs before its first step, checked without training: seeds, threads, the schedule."""
    assert plan.todo and plan.cells == tuple(config.cells())
    for cell in plan.cells:
        torch.Generator().manual_seed(cell.seed + 1)
        assert cell.batch_size <= len(data.train_labels)
        assert (cell.threads is None or cell.threads <= 1024) and cell.workers <= 256 and cell.eval_points <= 1000 and cell.width <= 1000
        Schedule(cell.budget, cell.budget.total_steps(len(data.train_labels), cell.batch_size), cell.eval_points)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flags=flag_values(RUN_FLAGS))
def test_fuzzed_run_flags_are_rejected_in_one_line_or_reach_the_runner(stand_ins, tmp_path, flags):
    argv = ["run", "--quiet", "--out", str(tmp_path / "out")]
    for name, value in flags:
        argv.append(f"{name}={tmp_path / 'o' / value}" if name == "--out" and value else f"{name}={value}")
    code, err, reached = run_main(argv)
    event("accepted" if reached else "rejected")  # pytest --hypothesis-show-statistics shows the balance
    if reached is None:
        assert_rejected_in_one_line(code, err, argv)
    else:
        assert_could_train(*reached)


DATA_FLAGS = {"--dataset": RUN_FLAGS["--dataset"], "--data-dir": TEXT, "--seed": VALUE}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flags=flag_values(DATA_FLAGS), download=TEXT)
def test_fuzzed_data_flags_are_rejected_in_one_line_or_answered(stand_ins, flags, download):
    for argv in (["data", "show", *(f"{n}={v}" for n, v in flags)], ["data", "download", download]):
        code, err, _ = run_main(argv)
        if code != 0:
            assert_rejected_in_one_line(code, err, argv)


def _no_network(download):
    def guarded(name, data_dir):
        if name in ("cifar10", "fashion-mnist"):
            pytest.fail("the fuzz reached a real download")
        return download(name, data_dir)

    return guarded
