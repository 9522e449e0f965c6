"""The images a benchmark trains on: CIFAR-10 or Fashion-MNIST read from disk, or a synthetic stand-in."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from bench import datafiles, synthetic
from bench.datafiles import UntrustedFile
from bench.errors import UserError, one_line

DATASETS = ("auto", "cifar10", "fashion-mnist", "synthetic")
DEFAULT_DATA_DIR = "./data"
CACHE_ENV = "BENCH_SYNTHETIC_CACHE"  # a folder where the synthetic set is kept once generated (the GPU check sets it)
DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # where Debian's dataset-fashion-mnist puts it

CIFAR10_FOLDER = "cifar-10-batches-py"  # torchvision's name for the extracted archive
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
# The official release's digests, as torchvision checks them (torchvision.datasets.CIFAR10's meta, train_list and
# test_list). A file is unpickled only when its MD5 is here; tests swap in the digests of their own tiny files.
CIFAR10_MD5 = MappingProxyType({
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
})
CIFAR10_MAX_FILE_BYTES = 64 * 2**20  # a larger file is refused unread: the official batches are about 31 MB
FASHION_MNIST_FILES = (  # train images, train labels, test images, test labels; each may also end in .gz
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FASHION_MNIST_MAX_ITEMS = 60_000  # per idx file (the train split); a header claiming more is refused unread
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Dataset:
    """Both splits in memory, with where they came from and why they were picked."""

    name: str  # "cifar10" | "fashion-mnist" | "synthetic"
    train_images: np.ndarray = field(repr=False)  # uint8 (N, H, W, C); C = 1 for grayscale
    train_labels: np.ndarray = field(repr=False)  # int64 (N,)
    test_images: np.ndarray = field(repr=False)  # uint8 (M, H, W, C)
    test_labels: np.ndarray = field(repr=False)  # int64 (M,)
    classes: tuple[str, ...]
    source: str  # the path read, or "generated in memory (seed=S)"
    reason: str  # one line: why this dataset was chosen

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != images.shape[2]:
                raise ValueError(f"{split}_images must be uint8 (N, H, H, C); got {images.dtype} {images.shape}")
            if images.shape[1:] != self.train_images.shape[1:]:
                raise ValueError(f"{split}_images are {images.shape[1:]}, train_images {self.train_images.shape[1:]}")
            if labels.dtype != np.int64 or labels.shape != images.shape[:1]:
                raise ValueError(f"{split}_labels must be int64 ({len(images)},), got {labels.dtype} {labels.shape}")
            if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
                raise ValueError(f"{split}_labels must lie in 0..{len(self.classes) - 1} (one per entry of classes)")

    @property
    def channels(self) -> int:
        return self.train_images.shape[3]

    @property
    def image_size(self) -> int:
        return self.train_images.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W), the shape one image has once it is a tensor."""
        return (self.channels, self.image_size, self.image_size)


def load(name: str, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """Load a dataset by name; never downloads. `seed` only matters for synthetic data."""
    try:
        return _load(name, data_dir, seed)
    except OSError as exc:  # looking into a folder we may not enter, or a name too long for the file system
        raise UserError(f"cannot look for {name} data in {exc.filename or data_dir}: {exc.strerror or exc}; "
                        f"give a readable --data-dir") from None


def _load(name: str, data_dir: str | Path | None, seed: int) -> Dataset:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    if name == "synthetic":
        return _synthetic(seed, "synthetic requested")
    if name == "fashion-mnist":
        return _load_fashion_mnist(data_dir)
    root = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR)
    found = find_cifar10(root)
    if name == "cifar10":
        if found is None:
            raise UserError(
                f"CIFAR-10 not found under {root} (no {CIFAR10_FOLDER} folder): "
                f"run `bench data download cifar10 --data-dir {root}`, or use --dataset synthetic"
            )
        return _load_cifar10(found, "cifar10 requested")
    if found is not None:
        try:
            return _load_cifar10(found, f"found CIFAR-10 at {found / CIFAR10_FOLDER}")
        except UntrustedFile as e:  # nothing unverified was unpickled; say why the copy was passed over
            return _synthetic(seed, f"found CIFAR-10 at {found / CIFAR10_FOLDER} but {e.path.name} {e.problem}; "
                              f"using synthetic (for a verified copy, {_cifar10_fix(found)})")
    hint = "bench data download cifar10" + (f" --data-dir {root}" if data_dir is not None else "")
    return _synthetic(seed, f"no CIFAR-10 under {root} (run `{hint}` to get it); using synthetic")


def find_cifar10(data_dir: str | Path | None) -> Path | None:
    """The folder holding cifar-10-batches-py, or None; data_dir may also name that folder itself."""
    root = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR)
    if (root / CIFAR10_FOLDER).is_dir():
        return root
    if root.name == CIFAR10_FOLDER and root.is_dir():
        return root.parent
    return None


def find_fashion_mnist(data_dir: str | Path | None) -> Path | None:
    """The folder holding the Fashion-MNIST idx files, flat (Debian) or under FashionMNIST/raw (torchvision), or None.

    With no data_dir, looks in ./data and then in Debian's folder.
    """
    roots = [Path(data_dir)] if data_dir is not None else [Path(DEFAULT_DATA_DIR), Path(DEFAULT_FASHION_MNIST_DIR)]
    for root in roots:
        for folder in (root / "FashionMNIST" / "raw", root):
            if any(_idx_path(folder, stem) is not None for stem in FASHION_MNIST_FILES):
                return folder
    return None


def download(name: str, data_dir: str | Path | None) -> Path:
    """Fetch cifar10 or fashion-mnist with torchvision into data_dir (None: ./data); returns the folder of files."""
    if name == "synthetic":
        raise UserError("synthetic is generated in memory and needs no download: use --dataset synthetic directly")
    if name not in ("cifar10", "fashion-mnist"):
        raise UserError(f"cannot download {name!r}: choose cifar10 or fashion-mnist")
    import torchvision.datasets  # here, not at the top: nothing else in this module needs torchvision

    root = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR)
    try:
        if name == "cifar10":
            torchvision.datasets.CIFAR10(root, train=True, download=True)
            return root / CIFAR10_FOLDER
        torchvision.datasets.FashionMNIST(root, train=True, download=True)  # fetches all four files
        return root / "FashionMNIST" / "raw"
    except (OSError, RuntimeError) as e:  # URLError is an OSError; torchvision raises RuntimeError on a bad checksum
        raise UserError(f"downloading {name} into {root} failed ({one_line(e, 120)}): check the network and try again") from e


def _synthetic(seed: int, reason: str) -> Dataset:
    train_x, train_y, test_x, test_y = synthetic.cached(seed, os.environ.get(CACHE_ENV))
    source = f"generated in memory (seed={seed})"
    return Dataset("synthetic", train_x, train_y, test_x, test_y, synthetic.CLASSES, source, reason)


# --- CIFAR-10: torchvision's python pickles --------------------------------------------------------


def _cifar10_fix(root: Path) -> str:
    return f"delete {root / CIFAR10_FOLDER} and run `bench data download cifar10 --data-dir {root}`"


def _load_cifar10(root: Path, reason: str) -> Dataset:
    """Each file is checked against CIFAR10_MD5 before it is unpickled; the first that fails raises UntrustedFile."""
    folder = root / CIFAR10_FOLDER
    fix = _cifar10_fix(root)
    meta = _unpickle(folder / "batches.meta", fix)
    names = meta.get("label_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, (str, bytes)) for n in names):
        raise UserError(f"{folder / 'batches.meta'} has no list of 'label_names': {fix}")
    classes = tuple(n.decode("latin1") if isinstance(n, bytes) else n for n in names)
    train = [_cifar10_batch(folder / f, len(classes), fix) for f in CIFAR10_TRAIN_FILES]
    test_x, test_y = _cifar10_batch(folder / "test_batch", len(classes), fix)
    train_x = np.concatenate([x for x, _ in train])
    train_y = np.concatenate([y for _, y in train])
    return Dataset("cifar10", _to_nhwc(train_x), train_y, _to_nhwc(test_x), test_y, classes, str(folder), reason)


def _unpickle(path: Path, fix: str) -> dict:
    # CIFAR-10 ships as pickles, and unpickling can run code: only files with the official MD5 are unpickled,
    # and even those may build nothing but containers and numeric arrays.
    raw = datafiles.read_verified(path, CIFAR10_MD5[path.name], CIFAR10_MAX_FILE_BYTES, fix)
    try:
        entry = datafiles.unpickle_arrays(raw, path, fix)
    except UserError:
        raise
    except Exception as e:  # a damaged pickle can raise nearly anything: EOFError, UnpicklingError, ValueError, ...
        raise UserError(f"{path} is not a readable CIFAR-10 pickle ({one_line(e, 120)}): {fix}") from e
    if not isinstance(entry, dict):
        raise UserError(f"{path} holds a {type(entry).__name__}, not the dict a CIFAR-10 batch is: {fix}")
    # Pickles written by Python 3 code (like test fixtures) may use bytes keys where the originals use str.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _cifar10_batch(path: Path, num_classes: int, fix: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as (rows of 3072 CHW pixels, int64 labels)."""
    entry = _unpickle(path, fix)
    try:
        data, labels = np.asarray(entry.get("data")), np.asarray(entry.get("labels"))
    except (ValueError, TypeError) as e:  # ragged lists and other objects numpy cannot turn into an array
        raise UserError(f"{path} has malformed 'data' or 'labels' ({one_line(e, 120)}): {fix}") from e
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UserError(f"{path}: 'data' should be uint8 rows of 3072 pixels, found {data.dtype} {data.shape}: {fix}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) != len(data):
        raise UserError(f"{path}: 'labels' should be {len(data)} integers, found {labels.dtype} {labels.shape}: {fix}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"{path}: labels outside 0..{num_classes - 1}: {fix}")
    return data, labels.astype(np.int64)


def _to_nhwc(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


# --- Fashion-MNIST: idx files, plain or gzipped ----------------------------------------------------


def _load_fashion_mnist(data_dir: str | Path | None) -> Dataset:
    folder = find_fashion_mnist(data_dir)
    if folder is None:
        searched = [data_dir] if data_dir is not None else [DEFAULT_DATA_DIR, DEFAULT_FASHION_MNIST_DIR]
        target = data_dir if data_dir is not None else DEFAULT_DATA_DIR
        raise UserError(
            f"Fashion-MNIST not found in {' or '.join(str(s) for s in searched)}: "
            f"run `apt-get install dataset-fashion-mnist` (it installs to {DEFAULT_FASHION_MNIST_DIR}) "
            f"or `bench data download fashion-mnist --data-dir {target}`"
        )
    root = folder.parent.parent if folder.parts[-2:] == ("FashionMNIST", "raw") else folder
    fix = (
        f"replace it with `bench data download fashion-mnist --data-dir {root}` "
        "or `apt-get install --reinstall dataset-fashion-mnist`"
    )
    paths = []
    for stem in FASHION_MNIST_FILES:
        path = _idx_path(folder, stem)
        if path is None:
            raise UserError(f"{folder / stem}[.gz] is missing, so the Fashion-MNIST copy there is incomplete: {fix}")
        paths.append(path)
    splits = []
    for images_path, labels_path in (paths[0:2], paths[2:4]):
        images = datafiles.read_idx(images_path, (28, 28), FASHION_MNIST_MAX_ITEMS, fix)
        labels = datafiles.read_idx(labels_path, (), FASHION_MNIST_MAX_ITEMS, fix)
        if len(labels) != len(images):
            raise UserError(f"{labels_path} has {len(labels)} labels, {images_path.name} {len(images)} images: {fix}")
        if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
            raise UserError(f"{labels_path}: labels outside 0..{len(FASHION_MNIST_CLASSES) - 1}: {fix}")
        splits += [images[..., None], labels.astype(np.int64)]
    return Dataset("fashion-mnist", *splits, FASHION_MNIST_CLASSES, str(folder), "fashion-mnist requested")


def _idx_path(folder: Path, stem: str) -> Path | None:
    """The file named for `stem`, whatever it is: a FIFO or a symlink loop is found here and refused when read."""
    for path in (folder / stem, folder / f"{stem}.gz"):
        if os.path.lexists(path):
            return path
    return None
