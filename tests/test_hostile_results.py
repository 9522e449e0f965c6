"""Hostile results files: the issue's crafted records and documents, and records mutated field by field, are each
one line and exit 2 (or read safely) through `bench report`, `bench compare` and `bench run --resume`, never a
traceback; text from records is escaped wherever it goes (Markdown, HTML, CSV, figures, the terminal)."""

import contextlib
import copy
import csv
import io
import json
import os
import re
import warnings

import numpy as np
import pytest
pytest.importorskip("hypothesis", reason="hypothesis comes with the dev extra: pip install -e \".[dev]\"")
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bench.cli import main
from bench.errors import UserError
from bench.results import load
from tests.conftest import record_dict
from tests.test_bad_results import BENCHMARK_DOC
from tests.test_resume import run_args
from tests.formats import write_fashion


def bench(*argv):
    """main(argv) with warnings as errors (a numpy overflow is a defect too) -> (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def assert_one_line_exit_2(code, err, *names):
    assert code == 2 and err.count("\n") == 1 and err.startswith("bench: error: "), err
    assert all(str(n) in err for n in names), err


def records_file(folder, *records) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def mutated(path: tuple, value) -> dict:
    d = record_dict()
    d["profile"] = {"method": "m", "steps": 3, "sections_ms": {"data": 1.0}, "total_ms": 1.0}
    parent = d
    for key in path[:-1]:
        parent = parent.setdefault(key, {})
    parent[path[-1]] = value
    return d


def pb_doc(**info) -> dict:
    doc = copy.deepcopy(BENCHMARK_DOC)
    doc["benchmarks"][0]["extra_info"] = {"schema": "bench-train-step/1", "step_seconds": [0.01, 0.02],
                                          "batch_size": 4, "device": "cpu", "pipeline": "resident", "width": 1.0,
                                          "threads": 1, **info}
    return doc


DEEP = "[" * 100_000 + "]" * 100_000
CRAFTED = {  # the 17 crafted files, and the ranges it names; what each may say
    "deep nesting": ('{"cell":' + DEEP + "}\n", "nested more deeply"),
    "400-digit steps": (mutated(("timing", "steps"), int("9" * 400)), "below 2^63"),
    "400-digit step time": (mutated(("timing", "step_seconds"), [int("9" * 400)]), "too large for a float"),
    "400-digit batch": (mutated(("cell", "batch_size"), int("9" * 400)), "batch_size"),
    "400-digit width": (mutated(("cell", "width"), int("9" * 400)), "width"),
    "5 million step times": (pb_doc(step_seconds=[0.01] * 5_000_000), "more than a record holds"),
    "env.gpus a string": (mutated(("env", "gpus"), "H100"), "env.gpus must be a list"),
    "env.gpus of numbers": (mutated(("env", "gpus"), [1, 2]), "env.gpus[0] must be an object"),
    "memory_bytes a string": (mutated(("env", "memory_bytes"), "80GB"), "env.memory_bytes"),
    "git.commit a number": (mutated(("env", "git", "commit"), 12345), "env.git.commit"),
    "sections_ms a list": (mutated(("profile", "sections_ms"), [1, 2]), "profile.sections_ms"),
    "sections_ms negative": (mutated(("profile", "sections_ms"), {"data": -1.0}), "profile.sections_ms"),
    "warmup_steps a string": (mutated(("cell", "warmup_steps"), "20"), "warmup_steps"),
    "timing.warmup_steps negative": (mutated(("timing", "warmup_steps"), -5), "warmup_steps"),
    "pytest-benchmark zero step": (pb_doc(step_seconds=[0.0, 0.01]), "step_seconds"),
    "pytest-benchmark negative step": (pb_doc(step_seconds=[-1.0]), "step_seconds"),
    "pytest-benchmark device list": (pb_doc(device=["cpu"]), "device"),
    "accuracy 7.0": (mutated(("accuracy_curve",), [{"step": 0, "samples": 0, "seconds": 0.0, "accuracy": 7.0}]),
                     "accuracy must be a fraction"),
    "negative seconds": (mutated(("timing", "train_seconds"), -1.0), "train_seconds"),
    "width true": (mutated(("cell", "width"), True), "width"),
    "device empty": (mutated(("cell", "device"), ""), "device must be a non-empty string"),
    "infinite step time": (json.dumps(record_dict()).replace("0.011", "1e999") + "\n", "step_seconds[1]"),
    "tiny step time": (mutated(("timing", "step_seconds"), [5e-324, 0.01]), "step_seconds"),
    "block of no time": (mutated(("timing", "blocks"), [[3, 0.0]]), "blocks"),
    "thread_probe not by count": (mutated(("timing", "thread_probe"), {"": 0}), "thread_probe"),  # ValueError
    "no classes": (mutated(("dataset", "classes"), 0), "classes must be >= 1"),  # ZeroDivisionError in targets
    "a checkpoint at 1e308 s": (mutated(("accuracy_curve",), [{"step": 3, "samples": 12, "seconds": 1e308,
                                                                 "accuracy": 0.5}]), "seconds must be from 0"),
}


@pytest.mark.parametrize("command", ["compare", "report"])
@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_a_crafted_file_is_one_line_and_exit_2(tmp_path, command, case):
    """On main: RecursionError, OverflowError, a 74.5 GiB allocation, or a record read as if it were fine."""
    content, match = CRAFTED[case]
    name = "bench.json" if isinstance(content, dict) and "benchmarks" in content else "records.jsonl"
    path = tmp_path / "run" / name
    path.parent.mkdir()
    path.write_text(content if isinstance(content, str) else json.dumps(content) + ("\n" if "records" in name else ""))
    argv = [command, path] + (["--reports", tmp_path / "r"] if command == "report" else [])
    code, _, err = bench(*argv)
    assert_one_line_exit_2(code, err, path, match)


# --- text from records, escaped wherever it goes ------------------------------------------------------------

HOSTILE = {"host": "<script>alert(1)</script>|evil\nhost", "message": "<img src=x onerror=alert(1)>|a\nb",
           "device_name": "=HYPERLINK(\"http://x\",\"click\")", "variant": "+cmd|' /C calc'!A0"}


def hostile_results(tmp_path):
    cpu, gpu = record_dict(), record_dict(device="cuda:0", step_seconds=(0.001, 0.0011, 0.0009))
    for r in (cpu, gpu):
        r["env"]["host"], r["device_name"] = HOSTILE["host"], HOSTILE["device_name"]
        r["cell"]["variant"] = "@SUM(1+1)*cmd|' /C calc'!A0"
    gpu["status"], gpu["message"] = "oom", HOSTILE["message"]
    return records_file(tmp_path / "run", cpu, gpu)


def test_report_md_html_and_csv_show_record_text_without_running_it(tmp_path):
    """On main report.md passed <script> and <img onerror> through, `|` and newlines broke its tables, and
    cells.csv kept =HYPERLINK(...), +cmd|... and @SUM(...) as given."""
    code, _, err = bench("report", hostile_results(tmp_path), "--reports", tmp_path / "r")
    assert code == 0, err
    folder = tmp_path / "r" / "run"
    md, page = (folder / "report.md").read_text(), (folder / "report.html").read_text()
    for text in (md, page):
        assert "<script" not in text and "<img src=x" not in text
    for table in md.split("\n\n"):
        rows = [line for line in table.splitlines() if line.startswith("|")]
        bars = {line.replace("\\|", "").count("|") for line in rows}
        assert len(bars) <= 1, table  # every row of a table has as many cells as its header
    for name in ("cells.csv", "speedups.csv"):
        for row in csv.reader(io.StringIO((folder / name).read_text())):
            assert not [c for c in row if re.match(r"[=+@\t\r]|-(?![0-9.]+(e[+-]?[0-9]+)?$)", c)], row
    assert "'=HYPERLINK" in (folder / "cells.csv").read_text() and "'@SUM" in (folder / "cells.csv").read_text()


@pytest.mark.parametrize("field,value", [("host", "$\\frac{a}{$"), ("variant", "$x^{$"), ("device", "cuda:$0^{$")])
def test_a_dollar_in_a_name_is_printed_not_read_as_math_text(tmp_path, field, value):
    """On main matplotlib's math text failed to parse `$...$` in a host name or a variant: a traceback."""
    cpu, gpu = record_dict(), record_dict(device="cuda:0", step_seconds=(0.001, 0.0011, 0.0009))
    other = record_dict(device="cuda:0", step_seconds=(0.002,))
    other["env"]["host"], other["env"]["machine_id"] = "second", "2"  # two machines: names go into the legends
    for r in (cpu, gpu, other):
        if field == "host":
            r["env"]["host"] = value
        elif field == "variant":
            r["cell"]["variant"] = value
    if field == "device":
        gpu["cell"]["device"] = value
    code, _, err = bench("report", records_file(tmp_path / "run", cpu, gpu, other), "--reports", tmp_path / "r")
    assert code == 0, err
    assert (tmp_path / "r" / "run" / "throughput.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("two", [False, True])
def test_compare_prints_no_terminal_escape_from_a_results_file(tmp_path, two):
    """On main `bench compare` printed ESC sequences (a colour, a window title) and line breaks from records."""
    r = record_dict()
    r["device_name"], r["env"]["host"] = "\x1b[31mred\x1b]0;owned\x07", "host\r\u202eevil"
    r["cell"]["variant"] = "v\x1b[2J"
    records_file(tmp_path / "run" / "sub\x1b[5m", r)
    with open(tmp_path / "run" / "sub\x1b[5m" / "records.jsonl", "a") as f:
        f.write('{"cell":{"dev')  # a torn line: its warning names the file, whose name holds an escape
    folder = tmp_path / "run"
    argv = ["compare", folder, folder] if two else ["compare", folder]
    code, out, err = bench(*argv)
    assert code == 0, err
    for text in (out, err):
        assert not any(c in text for c in "\x1b\x07\r\u202e"), repr(text)
    assert "\\x1b[31mred" in out + err or two  # shown, escaped (the change table has no device names)
    assert "sub\\x1b[5m" in err


def test_eager_and_tuned_results_with_no_shared_configuration_render(tmp_path):
    """On main: KeyError: 'machine' in sidebyside.pairs, from `bench report A B`."""
    eager, tuned = record_dict(batch_size=4), record_dict(batch_size=8)
    tuned["cell"]["tune"], tuned["cell"]["variant"] = ["channels_last"], "channels_last"
    code, _, err = bench("report", records_file(tmp_path / "A", eager), records_file(tmp_path / "B", tuned),
                         "--reports", tmp_path / "r")
    assert code == 0 and "Traceback" not in err, err


# --- unreadable subfolders ----------------------------------------------------------------------------------


def test_an_unreadable_subfolder_is_named_in_a_warning(tmp_path, monkeypatch):
    """On main it was skipped without a word (pathlib's rglob drops PermissionError)."""
    records_file(tmp_path / "all" / "a", record_dict())
    blocked = tmp_path / "all" / "b"
    records_file(blocked, record_dict(batch_size=8))
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(blocked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    warned = []
    assert len(load(tmp_path / "all", warned)) == 1
    assert warned == [f"skipped {blocked}: cannot read it (Permission denied); results there, if any, are left out"]
    monkeypatch.undo()
    if os.geteuid() != 0:  # and for real, where permissions bind
        blocked.chmod(0)
        try:
            warned = []
            assert len(load(tmp_path / "all", warned)) == 1 and str(blocked) in warned[0]
        finally:
            blocked.chmod(0o755)


# --- records mutated field by field -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """A real one-cell run: its record, the folder's data and the run's arguments, to resume against."""
    root = tmp_path_factory.mktemp("mutations")
    write_fashion(root / "fm", gz=True, n_train=64, n_test=20)
    out = root / "good"
    assert main(run_args(root / "fm", out, "4") + ["--no-report"]) == 0
    return root, json.loads((out / "records.jsonl").read_text()), out


def _paths(value, prefix=()):
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield from _paths(v, prefix + (i,))


SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
           | st.sampled_from([0, -1, 1e-300, 5e-324, 1e300, -0.0, 2**63, 7.0, "", "$x^{$", "\x1b[31m", "<b>|\n"])
           | st.text(max_size=6))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                          max_size=3), max_leaves=5)
SPECIAL = st.sampled_from(["deep", "wide", "long"])  # nesting, size


def mutate(record: dict, where: tuple, value, special: str | None, delete: bool) -> str:
    d = copy.deepcopy(record)
    parent = d
    for key in where[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        parent.pop(where[-1], None)
    else:
        parent[where[-1]] = {"deep": "__DEEP__", "wide": [0.5] * 200_000, "long": "x" * 3_000_000}.get(special, value)
    return json.dumps(d).replace('"__DEEP__"', "[" * 5000 + "]" * 5000) + "\n"


def check_mutation(tmp_path, base_run, data, commands):
    """Draw a place in the real record (or a key it lacks), then a new value, a deep or huge one, or nothing."""
    root, record, good = base_run
    places = sorted(_paths(record), key=str)
    where = data.draw(st.sampled_from(places) | st.tuples(st.sampled_from(
        ["timing", "env", "cell", "profile", "load", "memory", "dataset"]), st.text(max_size=5)), label="where")
    if where not in places and not isinstance(record.get(where[0]), dict):
        where = where[:1]  # a key the record lacks, at the top
    value = data.draw(VALUES, label="value")
    special, delete = data.draw(st.none() | SPECIAL, label="special"), data.draw(st.booleans(), label="delete")
    folder = tmp_path / "m"
    folder.mkdir(exist_ok=True)
    (folder / "records.jsonl").write_text(mutate(record, where, value, special, delete))
    for argv in commands(root, folder, good):
        code, _, err = bench(*argv)  # an exception here (a traceback) fails the test
        event(f"{argv[0]} {len(argv)}: exit {code}")  # pytest --hypothesis-show-statistics: the balance
        assert code == 0 or (code == 2 and err.count("\n") == 1 and err.startswith("bench: error: ")), (argv, err)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_record_is_one_line_and_exit_2_or_reads_through_compare_and_resume(tmp_path, base_run, data):
    check_mutation(tmp_path, base_run, data, lambda root, m, good: [
        ["compare", m], ["compare", good, m],
        run_args(root / "fm", m, "4") + ["--no-report", "--resume"]])


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_record_is_one_line_and_exit_2_or_renders(tmp_path, base_run, data):
    check_mutation(tmp_path, base_run, data, lambda root, m, good: [
        ["report", good, m, "--reports", tmp_path / "r"]])
