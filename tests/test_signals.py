"""Nothing swallowed: Ctrl-C and SIGTERM stop a run in any phase (a cell, a DataLoader's fork, between cells, the
report) with exit 130 or 143 and one line saying how to resume; a report killed at any moment leaves the old report
or the new one, and no temporary file."""

import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import bench.report
from bench import runner, swap
from bench.cli import main
from bench.reading import read_records
from bench.train import train
from tests.processes import finish, start, wait_for_text
from tests.test_faults import faulty_steps
from tests.test_resume import records_of, run_args

def the_stop_line(err: str, verb: str = "interrupted") -> str:
    """The one line that says the run stopped; nothing else in stderr may look like a crash."""
    assert "Traceback" not in err and "Exception ignored" not in err and "DataLoader worker" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(f"bench: {verb}")]
    assert len(lines) == 1, err
    return lines[0]


# --- a signal mid-cell, from outside ------------------------------------------------------------------------


def test_sigterm_once_cell_2_has_started_exits_143_with_the_resume_line(tmp_path, fashion):
    """As test_resume's Ctrl-C test, with SIGTERM: on main bench died without a word (status -15)."""
    sig, verb, status = signal.SIGTERM, "terminated (SIGTERM)", 143
    out = tmp_path / "out"
    argv = [a for a in run_args(fashion, out, "4,8,16", "1", "2s") if a != "--quiet"]
    proc = start(argv)
    seen = wait_for_text(proc, b"[2/3]")
    proc.send_signal(sig)
    code, err = finish(proc, seen)
    assert code == status, err
    line = the_stop_line(err, verb)
    assert line.startswith(f"bench: {verb} during cell 2 of 3") and "1 of 3 cells are recorded" in line
    assert f"resume with: {sys.executable} -m bench run " in line and line.endswith(" --resume")
    assert len(records_of(out)) == 1


# --- a signal as DataLoader workers fork ----------------------------------------------------------------------

FORK_HOOK = textwrap.dedent("""
    import os, signal, sys
    import torch.utils.data.dataloader as dl
    from bench.cli import main

    mode, state = sys.argv[1], {"armed": False, "fired": False, "child": False}
    start = dl._MultiProcessingDataLoaderIter.__init__

    def init(self, *a, **k):  # the DataLoader forks its workers in here
        state["armed"] = True
        try:
            return start(self, *a, **k)
        finally:
            state["armed"] = False

    dl._MultiProcessingDataLoaderIter.__init__ = init

    def before():  # in the parent, before each fork
        if state["armed"] and not state["fired"]:
            state["fired"] = True
            if mode == "group":
                state["child"] = True  # the first worker signals the whole group, as a terminal's Ctrl-C does
            else:
                os.kill(os.getpid(), signal.SIGTERM if mode == "term" else signal.SIGINT)

    def after_in_parent():
        state["child"] = False

    def after_in_child():
        if state["child"]:
            os.killpg(0, signal.SIGINT)

    os.register_at_fork(before=before, after_in_parent=after_in_parent, after_in_child=after_in_child)
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("mode,verb,status", [("parent", "interrupted", 130), ("group", "interrupted", 130),
                                              ("term", "terminated (SIGTERM)", 143)])
def test_a_signal_as_dataloader_workers_fork_is_never_swallowed(tmp_path, fashion, mode, verb, status):
    """The signal arrives in the middle of the fork of the first cell's workers: to the main process (whose
    handler then runs in an at-fork hook, where Python prints and drops its exception: on main the run went
    on and exited 0), or to the whole group from the newborn worker (on main: sometimes a dead worker and
    exit 1 with a traceback)."""
    out = tmp_path / "out"
    argv = run_args(fashion, out, "4,8", "1", "3steps")
    argv[argv.index("--pipeline") + 1] = "tutorial"
    argv[argv.index("--workers") + 1] = "2"
    code, err = finish(start([mode, *argv], FORK_HOOK), timeout=120)
    assert code == status, err
    line = the_stop_line(err, verb)
    assert line.startswith(f"bench: {verb} during cell 1 of 2") and line.endswith(" --resume"), line
    assert not (out / "records.jsonl").read_bytes()
    command = shlex.split(line.split("resume with: ", 1)[1])
    assert main(command[command.index("run"):]) == 0  # the printed command resumes the run
    assert len(records_of(out)) == 2


# --- a signal outside the cells, or one that something swallowed ---------------------------------------------


def test_ctrl_c_while_the_run_renders_its_report_says_how_to_resume(capsys, tmp_path, fashion, monkeypatch):
    """On main: `bench: interrupted`, and no word of the results or how to finish."""
    out = tmp_path / "out"
    argv = [a for a in run_args(fashion, out, "4") if a != "--no-report"] + ["--reports", str(tmp_path / "r")]
    monkeypatch.setattr(bench.report, "render", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert main(argv) == 130
    line = the_stop_line(capsys.readouterr().err)
    assert f"the finished cells are recorded in {out}; resume with: bench run " in line and line.endswith("--resume")
    monkeypatch.undo()
    assert main(shlex.split(line.split("resume with: ")[1])[1:]) == 0  # measures nothing, renders the report
    assert "skipping 1 of 1 cells" in capsys.readouterr().err and (tmp_path / "r" / "out" / "report.html").exists()


def test_ctrl_c_between_cells_keeps_the_recorded_cell_and_says_so(capsys, tmp_path, fashion, monkeypatch):
    import bench.progress

    monkeypatch.setattr(bench.progress.Bars, "cell_finished", lambda self, r: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    assert main(run_args(fashion, tmp_path / "out", "4,8,16")) == 130
    line = the_stop_line(capsys.readouterr().err)
    assert line.startswith("bench: interrupted after cell 1 of 3") and "which is recorded; 1 of 3 cells" in line
    assert len(records_of(tmp_path / "out")) == 1


def test_a_ctrl_c_that_something_swallowed_still_stops_the_run(capsys, tmp_path, fashion, monkeypatch):
    """Python prints and drops an exception raised in an at-fork hook or a destructor; the run must not go on
    as if nothing happened (on main it finished with exit 0)."""
    def swallowed():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        except KeyboardInterrupt:
            pass  # as Python does with an exception raised in an at-fork hook
        return torch.tensor(1.0)

    factory = faulty_steps(2, 2, swallowed)
    monkeypatch.setattr(runner, "train", lambda *a, **k: train(*a, step_factory=factory, **k))
    assert main(run_args(fashion, tmp_path / "out", "4,8,16", "1", "6steps")) == 130
    line = the_stop_line(capsys.readouterr().err)
    assert line.startswith("bench: interrupted during cell 2 of 3") and line.endswith("--resume")
    assert len(read_records(tmp_path / "out" / "records.jsonl")) == 1


# --- the report, killed ---------------------------------------------------------------------------------------

KILL_IN_RENDER = textwrap.dedent("""
    import os, signal, sys
    import bench.document
    from bench.cli import main

    sig = getattr(signal, sys.argv[1])
    html = bench.document.to_html

    def to_html(*a, **k):  # figures, CSVs and report.md are written by now; report.html is next
        os.kill(os.getpid(), sig)
        return html(*a, **k)

    bench.document.to_html = to_html
    sys.exit(main(sys.argv[2:]))
""")


@pytest.fixture
def old_report(tmp_path):
    """A results folder and its rendered report, and a second run's records added to it."""
    from tests.conftest import make_record
    from bench.writer import RecordWriter

    w = RecordWriter(tmp_path / "results")
    w.append(make_record(batch_size=4))
    argv = ["report", str(w.dir), "--reports", str(tmp_path / "reports")]
    assert main(argv) == 0
    folder = tmp_path / "reports" / "results"
    w.append(make_record(batch_size=8, device="cuda:0"))
    return argv, folder, {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("sig,status", [("SIGTERM", 143), ("SIGINT", 130), ("SIGKILL", -9)])
def test_a_report_killed_mid_render_leaves_the_old_report_whole(old_report, sig, status):
    """On main: new CSVs and figures beside the old report.html, a hidden temp file per kill, and SIGTERM
    ended bench without a word."""
    argv, folder, before = old_report
    code, err = finish(start([sig, *argv], KILL_IN_RENDER))
    assert code == status, err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    leftovers = [p.name for p in folder.parent.iterdir() if p.name.startswith(".")]
    if sig != "SIGKILL":  # a handled signal cleans up; a SIGKILL's leftovers go with the next render
        assert leftovers == [] and err.strip() == f"bench: {'terminated (SIGTERM)' if status == 143 else 'interrupted'}"
    assert main(argv) == 0
    assert [p.name for p in folder.parent.iterdir()] == ["results"]  # the new report, and nothing else
    assert "cuda:0" in (folder / "report.md").read_text()


def test_with_two_renames_a_crash_between_them_is_undone_by_the_next_render(old_report, monkeypatch):
    argv, folder, before = old_report
    monkeypatch.setattr(swap, "_exchange", lambda a, b: False)  # a system without renameat2
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    old = folder.with_name(f".{folder.name}.old-{int(dead.stdout)}-abcd")
    os.rename(folder, old)  # killed after the first rename
    (folder.parent / f".{folder.name}.new-{int(dead.stdout)}-beef").mkdir()  # and its half-written new version
    swap.recover(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in folder.parent.iterdir()] == ["results"]
    assert main(argv) == 0 and "cuda:0" in (folder / "report.md").read_text()
    assert [p.name for p in folder.parent.iterdir()] == ["results"]
