"""Writers for the real on-disk dataset formats (CIFAR-10 python pickles, Fashion-MNIST idx), for tests."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import data

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_TRAIN_ROWS = 6  # per data batch; the real files hold 10,000
CIFAR_TEST_ROWS = 4


def cifar10_md5s(root: Path) -> dict[str, str]:
    """data.CIFAR10_MD5 with the digests of the regular files now in root's cifar-10-batches-py.

    Tiny test files cannot have the official digests: a test that wants them read swaps this table in
    (monkeypatch.setattr(data, "CIFAR10_MD5", cifar10_md5s(root))), after any damage it means to test.
    """
    folder = root / data.CIFAR10_FOLDER
    table = dict(data.CIFAR10_MD5)
    for name in table:
        if (folder / name).is_file():
            table[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    return table


def trust_cifar10(monkeypatch, root: Path) -> None:
    """Accept the CIFAR-10 files now under root as if they were the official release, for this test only."""
    monkeypatch.setattr(data, "CIFAR10_MD5", cifar10_md5s(root))


@dataclass(frozen=True)
class Global:
    """A name a pickle looks up, such as numpy.core.multiarray._reconstruct."""

    module: str
    name: str


@dataclass(frozen=True)
class Reduce:
    """func(*args), then __setstate__(state) unless state is None: how a pickle builds an object."""

    func: Any
    args: tuple
    state: Any = None


def py2_array(array: np.ndarray, module: str = "numpy.core.multiarray", dtype_state: tuple | None = None) -> Reduce:
    """A numpy array as numpy 1 under Python 2 pickled it (the form the CIFAR-10 originals hold)."""
    descr = np.dtype(array.dtype)
    state = dtype_state or (3, descr.byteorder if descr.itemsize > 1 else "|", None, None, None, -1, -1, 0)
    dtype = Reduce(Global("numpy", "dtype"), (descr.str[1:], 0, 1), state)
    return Reduce(Global(module, "_reconstruct"), (Global("numpy", "ndarray"), (0,), b"b"),
                  (1, array.shape, dtype, False, array.tobytes()))


def py2_pickle(obj) -> bytes:
    """Protocol 2 as Python 2 wrote it: str (here bytes or ascii text) as BINSTRING, numbers, lists, dicts, tuples,
    and the Global and Reduce above. Python 3's pickle writes bytes otherwise, so this is written by hand."""
    def enc(o) -> bytes:
        if o is None or isinstance(o, bool):
            return {None: b"N", True: b"\x88", False: b"\x89"}[o]
        if isinstance(o, int):  # BININT, or LONG1 beyond 32 bits
            if -2**31 <= o < 2**31:
                return b"J" + struct.pack("<i", o)
            size = (o.bit_length() + 8) // 8
            return b"\x8a" + bytes([size]) + o.to_bytes(size, "little", signed=True)
        if isinstance(o, (str, bytes)):
            raw = o.encode("latin1") if isinstance(o, str) else o
            return b"T" + struct.pack("<I", len(raw)) + raw
        if isinstance(o, tuple):
            return b"(" + b"".join(map(enc, o)) + b"t"
        if isinstance(o, list):
            return b"](" + b"".join(map(enc, o)) + b"e"
        if isinstance(o, dict):
            return b"}(" + b"".join(enc(k) + enc(v) for k, v in o.items()) + b"u"
        if isinstance(o, Global):
            return b"c" + o.module.encode() + b"\n" + o.name.encode() + b"\n"
        if isinstance(o, Reduce):
            return enc(o.func) + enc(o.args) + b"R" + (b"" if o.state is None else enc(o.state) + b"b")
        raise TypeError(f"py2_pickle cannot write {type(o).__name__}")

    return b"\x80\x02" + enc(obj) + b"."


def write_cifar10(root: Path, bytes_keys: bool = False, seed: int = 0, python2: bool = False) -> dict[str, np.ndarray]:
    """A cifar-10-batches-py folder like torchvision extracts, with tiny batches; returns the raw rows written.

    python2: written as the originals are (py2_pickle); otherwise by Python 3's pickle at protocol 2.
    """
    dumps = py2_pickle if python2 else (lambda obj: pickle.dumps(obj, protocol=2))
    rng = np.random.default_rng(seed)
    folder = root / data.CIFAR10_FOLDER
    folder.mkdir(parents=True)
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    written = {}
    for name, rows in [(f, CIFAR_TRAIN_ROWS) for f in data.CIFAR10_TRAIN_FILES] + [("test_batch", CIFAR_TEST_ROWS)]:
        pixels = rng.integers(0, 256, size=(rows, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=rows)]  # a plain list, as in the originals
        entry = {key("batch_label"): f"{name} of tiny", key("labels"): labels, key("data"): pixels,
                 key("filenames"): [f"img_{i}.png" for i in range(rows)]}
        if python2:
            entry[key("data")] = py2_array(pixels)
        (folder / name).write_bytes(dumps(entry))
        written[name] = pixels
        written[name + "/labels"] = np.array(labels)
    meta = {key("num_cases_per_batch"): CIFAR_TRAIN_ROWS, key("label_names"): CIFAR_CLASSES, key("num_vis"): 3072}
    (folder / "batches.meta").write_bytes(dumps(meta))
    return written


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte idx file: magic 0x0000080N, N big-endian uint32 sizes, then the bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fashion(folder: Path, gz: bool, n_train: int = 7, n_test: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(array)))
        else:
            (folder / stem).write_bytes(idx_bytes(array))
    return arrays
