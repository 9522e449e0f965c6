"""The command line: bad input is one line and exit status 2; a tiny real run writes records and a summary."""

import os
import subprocess
import sys

import pytest

from bench.cli import main
from bench.results import load
from tests.formats import write_fashion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def fashion(tmp_path):
    """A tiny Fashion-MNIST in the real idx format: 300 train images (more than the default resident batch of
    256, since a batch larger than the training set is refused) and 50 test images."""
    folder = tmp_path / "fm"
    write_fashion(folder, gz=True, n_train=300, n_test=50)
    return folder


def tiny_run(fashion, out, *extra):
    return ["run", "--dataset", "fashion-mnist", "--data-dir", str(fashion), "--budget", "20steps",
            "--warmup", "2", "--eval", "2", "--workers", "0", "--quiet", "--out", str(out), "--no-report", *extra]


def one_line_error(capsys, argv, match):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("bench: error:") and match in err, err
    return err


@pytest.mark.parametrize("flags,match", [
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--devices", "tpu9"], "unknown device 'tpu9'"),
    (["--devices", ","], "--devices is empty"),
    (["--budget", "lots"], "cannot read budget 'lots'"),
    (["--budget", "-2ep"], "budget"),
    (["--budget", "0s"], "positive"),
    (["--pipeline", "fast"], "unknown pipeline 'fast'"),
    (["--batch-size", "0"], "--batch-size must be positive"),
    (["--batch-size", "-4"], "--batch-size must be positive"),
    (["--batch-size", "four"], "cannot read --batch-size value 'four'"),
    (["--width", "0"], "--width must be positive"),
    (["--width", "nan"], "--width must be positive"),
    (["--threads", "0"], "--threads must be positive"),
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--lr", "fast"], "cannot read --lr"),
    (["--momentum", "1.5"], "momentum"),
    (["--eval", "0"], "--eval must be at least 1"),
    (["--warmup", "-1"], "--warmup must be at least 0"),
    (["--frobnicate"], "unrecognized arguments"),
])
def test_bad_flags_are_one_line_and_exit_2(capsys, tmp_path, flags, match):
    one_line_error(capsys, ["run", "--out", str(tmp_path / "o"), *flags], match)
    assert not (tmp_path / "o").exists()  # nothing written for bad input


def test_bad_subcommand(capsys):
    one_line_error(capsys, ["fly"], "invalid choice")


def test_missing_cifar10_says_how_to_get_it(capsys, tmp_path):
    one_line_error(capsys, ["run", "--dataset", "cifar10", "--data-dir", str(tmp_path)],
                   "bench data download cifar10")


def test_corrupt_data_file_is_named(capsys, tmp_path, fashion):
    (fashion / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    one_line_error(capsys, tiny_run(fashion, tmp_path / "o"), "train-labels-idx1-ubyte.gz")


def test_unwritable_out_is_bad_input(capsys, tmp_path, fashion):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    one_line_error(capsys, tiny_run(fashion, blocker / "out"), "--out")


def test_bad_input_leaves_earlier_results_untouched(capsys, tmp_path, fashion):
    out = tmp_path / "out"
    assert main(tiny_run(fashion, out)) == 0
    before = (out / "records.jsonl").read_bytes()
    capsys.readouterr()
    one_line_error(capsys, tiny_run(fashion, out, "--batch-size", "0"), "--batch-size")
    one_line_error(capsys, tiny_run(fashion, out, "--devices", "tpu9"), "tpu9")
    assert (out / "records.jsonl").read_bytes() == before


def test_tiny_run_writes_records_and_prints_the_table(capsys, tmp_path, fashion):
    out = tmp_path / "out"
    code = main(tiny_run(fashion, out, "--pipeline", "tutorial,resident", "--batch-size", "4,8", "--width", "1,2"))
    printed = capsys.readouterr()
    assert code == 0, printed.err
    df = load([out])
    assert len(df) == 2 * 2 * 2
    assert set(df.status) == {"ok"}
    assert set(df.pipeline) == {"tutorial", "resident"} and set(df.batch_size) == {4, 8}
    assert (df.images_per_s > 0).all() and df.accuracy.between(0, 1).all()
    assert "fashion-mnist | tutorial | batch 4 | width 1 | eager" in printed.out
    assert "1.00x (baseline)" in printed.out  # a CPU-only run: each configuration's CPU cell is its baseline
    assert "images/s [95% CI]" in printed.out and str(out / "records.jsonl") in printed.out
    assert "fashion-mnist requested" in printed.err
    # a CPU-only machine cannot answer the question itself: it says so, and how to see a real GPU beside it
    assert "verdict: These results hold only CPU measurements" in printed.out
    assert f"beside a real GPU: bench report {out} --reference" in printed.out


def test_absent_device_is_named_and_the_others_still_run(capsys, tmp_path, fashion):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the test needs an absent device")
    out = tmp_path / "out"
    assert main(tiny_run(fashion, out, "--devices", "cpu,cuda:0", "--pipeline", "resident")) == 0
    err = capsys.readouterr().err
    assert "cuda:0 not present on this machine (present: cpu" in err
    df = load([out]).set_index("device")
    assert df.loc["cpu", "status"] == "ok"
    assert df.loc["cuda:0", "status"] == "unavailable"


def test_data_show(capsys, fashion):
    assert main(["data", "show", "--dataset", "fashion-mnist", "--data-dir", str(fashion)]) == 0
    out = capsys.readouterr().out
    assert "300 train / 50 test images of 1x28x28" in out


def test_data_download_of_synthetic_is_refused(capsys):
    one_line_error(capsys, ["data", "download", "synthetic"], "synthetic")


def test_python_dash_m_bench_has_no_traceback_on_bad_input():
    p = subprocess.run([sys.executable, "-m", "bench", "run", "--budget", "forever"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr
    assert "cannot read budget 'forever'" in p.stderr


# --- bounds, folders, pipes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flag,value", [
    ("--warmup", "100000000"), ("--workers", "1000000"), ("--threads", "100000"), ("--eval", "100000"),
    ("--width", "1e9"), ("--batch-size", "1000000000000"), ("--lr", "1e9"), ("--seed", str(2**64)),
    ("--budget", "1e30steps"), ("--budget", "1e9s"), ("--momentum", "5"),
])
def test_every_number_flag_has_a_bound(capsys, tmp_path, flag, value):
    """A typo (--warmup 100000000) is refused at once rather than run for days."""
    one_line_error(capsys, ["run", "--out", str(tmp_path / "o"), flag, value], flag.lstrip("-").split("-")[0])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("out", [".", "sub/.."])
def test_out_dot_names_the_report_after_the_folder(capsys, tmp_path, fashion, monkeypatch, out):
    """On main: trained, wrote, then `ValueError: report name must be a plain folder name, got ''`."""
    here = tmp_path / "my-run"
    (here / "sub").mkdir(parents=True)
    monkeypatch.chdir(here)
    argv = [a for a in tiny_run(fashion, out) if a != "--no-report"] + ["--reports", str(tmp_path / "reports")]
    assert main(argv) == 0, capsys.readouterr().err
    assert (here / "records.jsonl").is_file() and (tmp_path / "reports" / "my-run" / "report.html").is_file()


@pytest.mark.parametrize("command", ["run", "report"])
@pytest.mark.parametrize("reports", ["", "  "])
def test_empty_reports_folder_is_refused(capsys, tmp_path, fashion, monkeypatch, command, reports):
    """On main `--reports ""` wrote the report into the current folder (for `bench run --out x`: into x)."""
    monkeypatch.chdir(tmp_path)
    argv = tiny_run(fashion, "x")[:-1] if command == "run" else ["report", str(tmp_path)]
    one_line_error(capsys, argv + ["--reports", reports], "--reports is empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fm"]


def test_a_report_never_replaces_a_folder_that_holds_results(capsys, tmp_path, fashion):
    out = tmp_path / "reports" / "run"
    argv = [a for a in tiny_run(fashion, out) if a != "--no-report"] + ["--reports", str(tmp_path / "reports")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "the run is recorded but its report was not written" in err and "holds records.jsonl" in err
    before = (out / "records.jsonl").read_bytes()
    one_line_error(capsys, ["report", str(out), "--reports", str(tmp_path / "reports")], "holds records.jsonl")
    assert main(argv + ["--resume"]) == 2  # refused before anything runs, now that the folder exists
    assert "holds records.jsonl" in capsys.readouterr().err
    assert (out / "records.jsonl").read_bytes() == before and sorted(p.name for p in out.iterdir()) == [
        "records.jsonl"]


def test_a_closed_pipe_ends_quietly_with_141(tmp_path, fashion):
    """`bench compare ... | head -1`: on main, `Broken pipe` and exit 2."""
    out = tmp_path / "out"
    assert main(tiny_run(fashion, out, "--batch-size", "4,8")) == 0
    read, write = os.pipe()
    os.close(read)  # the reader is gone before bench writes a byte
    try:
        p = subprocess.run([sys.executable, "-m", "bench", "compare", str(out)], cwd=ROOT, stdout=write,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert p.returncode == 141 and p.stderr == "", p.stderr
