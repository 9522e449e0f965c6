"""Nothing lost: an append lands whole or fails loudly (a full disk, a short write), and no torn append (a writer
killed mid-line, a zero-filled tail after a power cut) can ever make a results folder unreadable."""

import errno
import json
import os
import shlex
import subprocess
import sys

import pytest
pytest.importorskip("hypothesis", reason="hypothesis comes with the dev extra: pip install -e \".[dev]\"")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bench.writer
from bench import reading
from bench.cli import main
from bench.errors import UserError
from bench.reading import read_records
from bench.torn import is_torn
from bench.writer import AppendFailed, RecordWriter
from tests.conftest import make_record, record_dict, as_record
from tests.test_resume import run_args

LINES = [make_record(batch_size=b).to_json() for b in (4, 8)]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def grid(fashion, out, *extra):
    """The issue's grid: --batch-size 4,8 --width 1,2, four cells of a few steps."""
    return run_args(fashion, out, "4,8", "1,2", "4steps", "--no-report", *extra)


def whole_lines(path):
    """The file's lines, asserting that every one is a whole record and the file ends with a newline."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), data[-80:]
    lines = data.split(b"\n")[:-1]
    assert all(json.loads(line)["cell"] for line in lines)
    return lines


# --- what is torn, what is corrupt --------------------------------------------------------------------------


def test_every_prefix_of_a_record_line_is_torn_and_the_whole_line_is_not():
    d = record_dict(step_seconds=[1e-05, 2.5e-7, 0.013, 123456.0])
    d["env"]["host"] = 'h\u00e9 "quoted" \\ back\nslash \U0001f600'  # escapes of every kind, a surrogate pair
    d["message"] = "\u2603\t-1e-05"
    line = as_record(d).to_json()
    assert [k for k in range(1, len(line)) if not is_torn(line[:k].encode())] == []
    assert not is_torn(line.encode())
    assert all(is_torn(line[:k].encode() + b"\0" * 9) for k in range(0, len(line), 97))  # a zero-filled tail


@pytest.mark.parametrize("line", [
    '{"cell": garbage}', '{"cell":{}}', '{"cell":{"a":1}t', '{"cell":{"a":1}}x', '{"cell":[1,]',
    '{"cell":{"a":"x\\q', '{"cell":{"a":"\\u00zz"}', "hello", "[1, 2]", "{not json", '{"status":"ok"}',
])
@pytest.mark.parametrize("where", ["middle", "last"])
def test_a_corrupt_line_is_refused_naming_file_and_line_wherever_it_is(tmp_path, line, where):
    """On main a corrupt line that starts like a record ({"cell": garbage}) was skipped as "a run was cut
    short", and any bad last line was only a warning."""
    path = tmp_path / "records.jsonl"
    tail = "\n" + LINES[1] + "\n" if where == "middle" else ""
    path.write_text(LINES[0] + "\n" + line + tail)
    with pytest.raises(UserError, match=rf"records\.jsonl:2: not a bench record") as err:
        read_records(path)
    assert "\n" not in str(err.value)


def test_a_line_over_the_bound_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "MAX_LINE_BYTES", 4096)
    path = tmp_path / "records.jsonl"
    path.write_text(make_record().to_json().replace('"message":""', '"message":"' + "x" * 10_000 + '"') + "\n")
    with pytest.raises(UserError, match=r"records\.jsonl:1: a line longer than 0.0039\d* MiB is not a bench record"):
        read_records(path)


# --- torn appends never lock a folder -----------------------------------------------------------------------


def torn_append(path, line: str, keep: int, zeros: int = 0) -> None:
    """What a writer killed mid-append leaves: the first `keep` bytes of what it writes (a newline first when
    the file does not end in one, as RecordWriter does), then perhaps NULs where a power cut lost the rest."""
    data = path.read_bytes() if path.exists() else b""
    sep = b"\n" if data and not data.endswith(b"\n") else b""
    with open(path, "ab") as f:
        f.write((sep + line.encode() + b"\n")[:keep] + b"\0" * zeros)


def test_the_issue_case_an_append_killed_in_its_first_8_bytes_then_another_append(tmp_path, capsys):
    """On main: after the next append, compare, report and run --resume all exit 2 with
    `records.jsonl:2: not a bench record`, and three good records are unreachable."""
    out = tmp_path / "out"
    w = RecordWriter(out)
    for b in (4, 8, 16):
        w.append(make_record(batch_size=b))
    torn_append(w.path, LINES[0], keep=5)  # {"cel
    w.append(make_record(batch_size=32))
    torn_append(w.path, LINES[0], keep=0, zeros=300)  # then a power cut: a zero-filled tail
    w.append(make_record(batch_size=64))
    assert [r.cell.batch_size for r in read_records(w.path)] == [4, 8, 16, 32, 64]
    for argv in (["compare", str(out)], ["report", str(out), "--reports", str(tmp_path / "reports")]):
        assert main(argv) == 0, capsys.readouterr().err
        err = capsys.readouterr().err
        assert "records.jsonl:4: skipped an incomplete line" in err and "records.jsonl:6: skipped" in err


pieces = st.lists(st.tuples(st.sampled_from(["whole", "torn", "zeros"]), st.integers(0, 2000), st.integers(0, 600),
                            st.sampled_from(LINES)), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=pieces)
def test_no_sequence_of_torn_appends_makes_a_file_unreadable(tmp_path, steps):
    """Any mix of whole appends, appends cut at any byte and zero-filled tails reads back as exactly the
    records that were written whole, in order, with a warning per torn piece and never an error."""
    path = tmp_path / "r" / "records.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.unlink(missing_ok=True)
    w, expected = RecordWriter(path.parent), []
    for kind, keep, zeros, line in steps:
        if kind == "whole":
            w.append(as_record(json.loads(line)))
            expected.append(line)
            continue
        sep = 1 if path.read_bytes()[-1:] not in (b"", b"\n") else 0
        keep = min(keep, sep + len(line))  # never the newline itself: that append would be whole
        zeros = zeros if kind == "zeros" else 0
        torn_append(path, line, keep, zeros)
        if keep == sep + len(line):
            expected.append(line)  # all but its newline (lost, or zero-filled): still a whole record
    warnings = []
    assert [r.to_json() for r in read_records(path, warnings)] == expected
    assert all("skipped an incomplete" in w for w in warnings)


# --- a full disk --------------------------------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    """A real 12 KiB tmpfs: two records of this grid fit, the third does not. Skipped where mount is refused."""
    where = tmp_path / "tmpfs"
    where.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(where)], capture_output=True,
                       text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({(p.stderr or p.stdout).strip() or p.returncode}); the injected "
                    f"short write below covers the same path")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_on_a_real_tmpfs_loses_no_record_and_says_so(capsys, fashion, small_tmpfs):
    """On main this grid exited 0 with a table of 4 cells, and the disk held 3 records and a torn fourth."""
    out = small_tmpfs / "out"
    assert main(grid(fashion, out)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    last = err[-1]
    assert last.startswith("bench: error: cell ") and "the disk is full" in last and last.endswith(" --resume")
    kept = whole_lines(out / "records.jsonl")  # the partial line was cut back
    assert 1 <= len(kept) < 4 and f"cell {len(kept) + 1} of 4" in last
    assert f"{len(kept)} of 4 cells are recorded" in last
    subprocess.run(["mount", "-o", "remount,size=1m", str(small_tmpfs)], check=True)
    command = shlex.split(last.split("resume with: ", 1)[1])
    assert main(command[1:]) == 0  # the printed command, once there is room, measures the rest
    assert f"skipping {len(kept)} of 4 cells" in capsys.readouterr().err
    lines = whole_lines(out / "records.jsonl")
    assert len(lines) == 4 and lines[:len(kept)] == kept
    assert len({r.key for r in read_records(out / "records.jsonl")}) == 4


def short_writes(taken: int, then=errno.ENOSPC):
    """A file system that takes `taken` bytes of the next write, then fails with `then`."""
    state = {"left": taken}

    def write(fd, data):
        if state["left"] <= 0:
            raise OSError(then, os.strerror(then))
        n = min(len(data), state["left"])
        state["left"] -= n
        return os.write(fd, bytes(data[:n]))

    return write


@pytest.mark.parametrize("taken", [0, 1, 8, 700])
def test_a_short_write_is_cut_back_and_raises(tmp_path, monkeypatch, taken):
    w = RecordWriter(tmp_path)
    w.append(make_record(batch_size=4))
    before = w.path.read_bytes()
    monkeypatch.setattr(bench.writer, "_write", short_writes(taken))
    with pytest.raises(AppendFailed, match=rf"took {taken} of the \d+ bytes .*the disk is full.*partial line was "
                                           rf"removed"):
        w.append(make_record(batch_size=8))
    assert w.path.read_bytes() == before


def test_a_short_write_that_the_file_system_then_completes_lands_whole(tmp_path, monkeypatch):
    calls = []

    def halves(fd, data):
        calls.append(len(data))
        return os.write(fd, bytes(data[: max(1, len(data) // 2)]))

    monkeypatch.setattr(bench.writer, "_write", halves)
    w = RecordWriter(tmp_path)
    w.append(make_record(batch_size=4))
    assert len(calls) > 5 and [r.cell.batch_size for r in read_records(w.path)] == [4]


def test_a_failed_sync_or_a_ctrl_c_between_writes_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    w = RecordWriter(tmp_path)
    w.append(make_record(batch_size=4))
    before = w.path.read_bytes()
    monkeypatch.setattr(bench.writer.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "I/O")))
    with pytest.raises(AppendFailed, match="I/O"):
        w.append(make_record(batch_size=8))
    monkeypatch.undo()
    assert w.path.read_bytes() == before
    calls = []

    def interrupted(fd, data):  # ten bytes land, then Ctrl-C
        calls.append(len(data))
        if len(calls) > 1:
            raise KeyboardInterrupt
        return os.write(fd, bytes(data[:10]))

    monkeypatch.setattr(bench.writer, "_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        w.append(make_record(batch_size=8))
    assert w.path.read_bytes() == before


def test_a_full_disk_mid_grid_through_the_cli_is_one_line_exit_1_and_resume_finishes(capsys, tmp_path, fashion,
                                                                                    monkeypatch):
    """The injected twin of the tmpfs test, for machines where mount is refused: cell 3's record meets a full
    disk after 100 bytes."""
    out = tmp_path / "out"
    real = bench.writer._land
    calls = {"n": 0}

    def land(fd, data, size, path):
        calls["n"] += 1
        if calls["n"] == 3:
            monkeypatch.setattr(bench.writer, "_write", short_writes(100))
        return real(fd, data, size, path)

    monkeypatch.setattr(bench.writer, "_land", land)
    assert main(grid(fashion, out)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("bench: error: cell 3 of 4") and "took 100 of the" in err[-1]
    assert "2 of 4 cells are recorded" in err[-1] and len(whole_lines(out / "records.jsonl")) == 2
    monkeypatch.undo()
    assert main(grid(fashion, out, "--resume")) == 0
    assert len(whole_lines(out / "records.jsonl")) == 4


# --- a FIFO where a records file should be ------------------------------------------------------------------


def test_a_fifo_named_records_jsonl_is_refused_not_waited_on(tmp_path, fashion):
    """On main `bench run` blocked for ever in open()."""
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "records.jsonl")
    p = subprocess.run([sys.executable, "-m", "bench", *grid(fashion, out)], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert p.returncode == 2 and "a FIFO, not a regular file" in p.stderr and "Traceback" not in p.stderr, p.stderr
    for argv in (["compare", str(out / "records.jsonl")], ["compare", str(out)], ["report", str(out)]):
        p = subprocess.run([sys.executable, "-m", "bench", *argv], capture_output=True, text=True, timeout=120,
                           cwd=ROOT)
        assert p.returncode == 2 and "not a regular file" in p.stderr and p.stderr.count("\n") == 1, p.stderr
