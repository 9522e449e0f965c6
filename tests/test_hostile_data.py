"""A hostile data folder: crafted pickles, FIFOs, devices, symlink loops, gzip bombs and absurd idx headers."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import pickle
import signal
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from bench import data, synthetic
from bench.cli import main
from bench.errors import UserError
from tests.formats import Global, Reduce, idx_bytes, py2_array, py2_pickle, trust_cifar10, write_cifar10, write_fashion

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs, symlinks and /dev/zero are POSIX")

TINY_RUN = ["run", "--budget", "2steps", "--eval", "none", "--no-report", "--quiet", "--devices", "cpu",
            "--batch-size", "4", "--pipeline", "resident", "--warmup", "0", "--no-breakdown", "--out", "out"]


class System:
    """Unpickled, runs a shell command: the payload of the issue."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _touch(marker: Path) -> Reduce:
    return Reduce(Global("builtins", "open"), (str(marker), "w"))


def _live(payload: bytes, marker: Path) -> bytes:
    """The payload, after proving that plain pickle.loads does create the marker with it."""
    pickle.loads(payload, encoding="latin1")
    assert marker.exists(), "the crafted pickle is no payload: the test would prove nothing"
    marker.unlink()
    return payload


@contextlib.contextmanager
def no_hang(seconds: int = 20):
    """Fail instead of blocking forever (opening a FIFO with no writer blocks)."""
    def expire(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def one_line(code: int, err: str) -> str:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("bench: error: ") and "Traceback" not in err, err
    return err


# --- the issue: a crafted pickle in ./data ---------------------------------------------------------


def test_crafted_batches_meta_creates_nothing_on_data_show_or_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    write_cifar10(Path("data"))  # the scratch cwd's ./data, where --dataset auto looks
    meta = Path("data") / data.CIFAR10_FOLDER / "batches.meta"
    meta.write_bytes(_live(pickle.dumps({"label_names": System(f"touch {marker}")}, protocol=2), marker))
    passed_over = "found CIFAR-10 at data/cifar-10-batches-py but batches.meta does not match the official MD5"

    assert main(["data", "show"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("synthetic: 50000 train") and f"why: {passed_over}; using synthetic" in out
    assert main(TINY_RUN) == 0
    assert f"dataset: synthetic ({passed_over}" in capsys.readouterr().err
    records = [json.loads(line) for line in next(Path("out").rglob("*.jsonl")).read_text().splitlines()]
    assert records and all(r["dataset"]["reason"].startswith(passed_over) for r in records)
    for argv in (["data", "show", "--dataset", "cifar10"], [*TINY_RUN, "--dataset", "cifar10"]):
        err = one_line(main(argv), capsys.readouterr().err)
        assert f"{meta} does not match the official MD5" in err and "bench data download cifar10" in err
    assert not marker.exists()


@pytest.mark.parametrize("victim", ["batches.meta", "data_batch_3", "test_batch"])
@pytest.mark.parametrize("payload", ["os.system", "builtins.open"])
def test_even_a_trusted_digest_unpickles_no_code(tmp_path, monkeypatch, capsys, victim, payload):
    """Defense in depth: were a crafted file's digest in the table, the pickle reader still refuses its globals."""
    marker = tmp_path / "pwned"
    write_cifar10(tmp_path)
    evil = System(f"touch {marker}") if payload == "os.system" else _touch(marker)
    entry = {"label_names": evil} if victim == "batches.meta" else {"data": evil, "labels": [0]}
    raw = pickle.dumps(entry, protocol=2) if payload == "os.system" else py2_pickle(entry)
    (tmp_path / data.CIFAR10_FOLDER / victim).write_bytes(_live(raw, marker))
    trust_cifar10(monkeypatch, tmp_path)
    for dataset in ("cifar10", "auto"):  # verified, so auto does not fall back: it says what the file asked for
        err = one_line(main(["data", "show", "--dataset", dataset, "--data-dir", str(tmp_path)]),
                       capsys.readouterr().err)
        asked = "'posix.system'" if payload == "os.system" else "'builtins.open'"
        assert f"{victim} asks to run {asked}, which no CIFAR-10 file needs" in err
    assert not marker.exists()


BYTES = np.arange(6, dtype=np.uint8).reshape(2, 3)


@pytest.mark.parametrize("entry, says", [
    # numpy's own __setstate__ would take these flags and treat the pixels as object pointers.
    (py2_array(BYTES, dtype_state=(3, "|", None, None, None, -1, -1, 0x3F)), "beyond byte order"),
    (py2_array(BYTES, dtype_state=(3, "|", None, ("a",), {"a": (None, 0)}, 1, 1, 0)), "beyond byte order"),
    (Reduce(Global("numpy", "ndarray"), ((2**40,), "u1")), "numpy.ndarray called directly"),  # a terabyte
    (Reduce(Global("numpy.core.multiarray", "_reconstruct"), (Global("numpy", "ndarray"), (2**40,), b"b")),
     "_reconstruct of something other than an empty numpy.ndarray"),
    (Reduce(Global("numpy", "dtype"), ("O8", 0, 1)), "dtype object"),
    (Reduce(Global("_codecs", "encode"), ("x", "zlib_codec")), "only latin1"),
    (Reduce(Global("numpy", "load"), ("/etc/passwd",)), "asks to run 'numpy.load'"),
])
def test_numpy_names_allowed_for_arrays_build_nothing_else(tmp_path, monkeypatch, entry, says):
    write_cifar10(tmp_path)
    path = tmp_path / data.CIFAR10_FOLDER / "data_batch_2"
    path.write_bytes(py2_pickle({"data": entry, "labels": [0, 1]}))
    trust_cifar10(monkeypatch, tmp_path)
    with pytest.raises(UserError) as info:
        data.load("cifar10", tmp_path)
    assert str(path) in str(info.value) and says in str(info.value)


# --- files that are not files ----------------------------------------------------------------------


def _fifo(path: Path) -> str:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return "is a FIFO, not a regular file"


def _zero_device(path: Path) -> str:
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/zero")  # endless, were it read
    return "is a character device, not a regular file"


def _folder(path: Path) -> str:
    path.unlink(missing_ok=True)
    path.mkdir()
    return "is a folder, not a regular file"


def _symlink_loop(path: Path) -> str:
    path.unlink(missing_ok=True)
    path.symlink_to(path.name + ".other")
    path.with_name(path.name + ".other").symlink_to(path.name)
    return "could not be opened (Too many levels of symbolic links)"


def _huge_sparse(path: Path) -> str:
    with path.open("r+b") as f:
        f.truncate(data.CIFAR10_MAX_FILE_BYTES + 1)
    return f"is {data.CIFAR10_MAX_FILE_BYTES + 1:,} bytes, more than any file of the official release"


@pytest.mark.parametrize("make", [_fifo, _zero_device, _folder, _symlink_loop, _huge_sparse])
def test_a_cifar10_file_that_is_not_one_is_refused_unopened(tmp_path, monkeypatch, capsys, make):
    generate = synthetic.generate  # the fallback's data is beside the point here: make it small
    monkeypatch.setattr(synthetic, "generate", lambda seed: generate(seed, synthetic.SyntheticSpec(40, 20)))
    write_cifar10(tmp_path)
    trust_cifar10(monkeypatch, tmp_path)
    path = tmp_path / data.CIFAR10_FOLDER / "data_batch_1"
    problem = make(path)
    with no_hang():
        err = one_line(main(["data", "show", "--dataset", "cifar10", "--data-dir", str(tmp_path)]),
                       capsys.readouterr().err)
        assert f"{path} {problem}: delete " in err
        d = data.load("auto", tmp_path)
    assert d.name == "synthetic" and f"but data_batch_1 {problem}; using synthetic" in d.reason


@pytest.mark.parametrize("make", [_fifo, _zero_device, _folder, _symlink_loop])
@pytest.mark.parametrize("name", ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte"])
def test_a_fashion_mnist_file_that_is_not_one_is_refused_unopened(tmp_path, capsys, make, name):
    write_fashion(tmp_path, gz=True)
    if not name.endswith(".gz"):
        (tmp_path / f"{name}.gz").unlink()  # so the plain name is the one looked up
    problem = make(tmp_path / name)
    with no_hang():
        err = one_line(main(["data", "show", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path)]),
                       capsys.readouterr().err)
    assert f"{tmp_path / name} {problem}: replace it with `bench data download fashion-mnist" in err


# --- idx files that promise too much ---------------------------------------------------------------


def _header(*dims: int) -> bytes:
    return struct.pack(">I", 0x0800 + len(dims)) + struct.pack(f">{len(dims)}I", *dims)


def test_a_gzip_bomb_is_decompressed_no_further_than_its_header_allows(tmp_path, capsys):
    write_fashion(tmp_path, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    zeros = gzip.compress(bytes(16 * 2**20), compresslevel=1)
    path.write_bytes(gzip.compress(_header(5, 28, 28) + bytes(5 * 784)) + zeros * 16)  # 256 MiB once inflated
    assert path.stat().st_size < 2 * 2**20
    tracemalloc.start()
    try:
        err = one_line(main(["data", "show", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path)]),
                       capsys.readouterr().err)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"{path} holds more than 3920 bytes of data but its header (5, 28, 28) needs 3920" in err
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MiB traced: the bomb was inflated"


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("name, dims, says", [
    ("train-images-idx3-ubyte", (2**32 - 1, 28, 28), "a header claiming 4,294,967,295 entries, more than the 60,000"),
    ("t10k-images-idx3-ubyte", (60_001, 28, 28), "a header claiming 60,001 entries"),
    ("train-images-idx3-ubyte", (5, 2**32 - 1, 2**32 - 1), "holds 4294967295x4294967295 images, not 28x28"),
    ("t10k-labels-idx1-ubyte", (2**31,), "a header claiming 2,147,483,648 entries"),
    ("train-labels-idx1-ubyte", (60_000,), "its header (60000,) needs 60000"),  # allowed, but the bytes are not there
])
def test_an_absurd_idx_header_is_refused_before_reading(tmp_path, capsys, gz, name, dims, says):
    write_fashion(tmp_path, gz=gz)
    path = tmp_path / (name + (".gz" if gz else ""))
    content = _header(*dims) + bytes(100)
    path.write_bytes(gzip.compress(content) if gz else content)
    err = one_line(main(["data", "show", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path)]),
                   capsys.readouterr().err)
    assert str(path) in err and says in err


def test_idx_files_as_large_as_the_format_allows_are_read_whole(tmp_path):
    """The bound is the real train split's size, and a file with a byte more than its header says is refused."""
    arrays = write_fashion(tmp_path, gz=False, n_train=data.FASHION_MNIST_MAX_ITEMS)
    images = arrays["train-images-idx3-ubyte"]
    (tmp_path / "train-images-idx3-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images), compresslevel=1))
    np.testing.assert_array_equal(data.load("fashion-mnist", tmp_path).train_images[..., 0], images)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((3, 28, 28))) + b"\0")
    with pytest.raises(UserError, match=r"holds more than 2352 bytes of data but its header \(3, 28, 28\)"):
        data.load("fashion-mnist", tmp_path)
