"""Writers for the real on-disk dataset formats (CIFAR-10 python pickles, Fashion-MNIST idx), for tests."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from bench import data

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_TRAIN_ROWS = 6  # per data batch; the real files hold 10,000
CIFAR_TEST_ROWS = 4





def write_cifar10(root: Path, bytes_keys: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """A cifar-10-batches-py folder like torchvision extracts, with tiny batches; returns the raw rows written."""
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
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        written[name] = pixels
        written[name + "/labels"] = np.array(labels)
    meta = {key("num_cases_per_batch"): CIFAR_TRAIN_ROWS, key("label_names"): CIFAR_CLASSES, key("num_vis"): 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
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
