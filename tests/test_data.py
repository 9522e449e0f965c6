"""Dataset loading: tiny files in the real on-disk formats, damaged copies of them, and the synthetic task."""

from __future__ import annotations

import gzip
import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
pytest.importorskip("hypothesis", reason="hypothesis comes with the dev extra: pip install -e \".[dev]\"")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import data, synthetic
from bench.data import Dataset
from bench.errors import UserError
from tests.formats import (CIFAR_CLASSES, CIFAR_TEST_ROWS, CIFAR_TRAIN_ROWS, idx_bytes, trust_cifar10, write_cifar10,
                           write_fashion)


def load_error(*args, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        data.load(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- CIFAR-10 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bytes_keys", [False, True], ids=["str-keys", "bytes-keys"])
def test_cifar10_loads_nhwc_with_pixels_in_place(tmp_path, monkeypatch, bytes_keys):
    written = write_cifar10(tmp_path, bytes_keys=bytes_keys)
    # One known pixel: row 2 of data_batch_2, blue channel, y=5, x=7. Rows are CHW-flattened.
    batch_2 = tmp_path / data.CIFAR10_FOLDER / "data_batch_2"
    entry = pickle.loads(batch_2.read_bytes())
    entry[b"data" if bytes_keys else "data"][2, 2 * 1024 + 5 * 32 + 7] = 201
    batch_2.write_bytes(pickle.dumps(entry, protocol=2))

    trust_cifar10(monkeypatch, tmp_path)
    d = data.load("cifar10", tmp_path)
    n = 5 * CIFAR_TRAIN_ROWS
    assert (d.name, d.classes, d.source) == ("cifar10", tuple(CIFAR_CLASSES), str(tmp_path / data.CIFAR10_FOLDER))
    assert d.train_images.shape == (n, 32, 32, 3) and d.train_images.dtype == np.uint8
    assert d.test_images.shape == (CIFAR_TEST_ROWS, 32, 32, 3) and d.test_images.dtype == np.uint8
    assert d.train_labels.shape == (n,) and d.train_labels.dtype == np.int64
    assert d.test_labels.dtype == np.int64
    assert d.train_images[CIFAR_TRAIN_ROWS + 2, 5, 7, 2] == 201
    assert (d.channels, d.image_size, d.num_classes, d.input_shape) == (3, 32, 10, (3, 32, 32))
    # Batches are concatenated in order 1..5; labels follow their rows.
    expected_labels = np.concatenate([written[f"{f}/labels"] for f in data.CIFAR10_TRAIN_FILES])
    np.testing.assert_array_equal(d.train_labels, expected_labels)
    np.testing.assert_array_equal(d.test_labels, written["test_batch/labels"])
    # Every pixel: NHWC[i, y, x, c] is row i at c*1024 + y*32 + x.
    rows = written["test_batch"]
    i, y, x, c = np.meshgrid(*(np.arange(s) for s in d.test_images.shape), indexing="ij")
    np.testing.assert_array_equal(d.test_images, rows[i, c * 1024 + y * 32 + x])
    assert d.test_images.flags.c_contiguous


@pytest.mark.parametrize("python2", [False, True], ids=["python3-pickles", "python2-pickles"])
def test_cifar10_matches_torchvision(tmp_path, monkeypatch, python2):
    """torchvision unpickles with numpy's own code; bench rebuilds the arrays itself, and must agree, also on
    pickles in the originals' form (Python 2, numpy.core.multiarray, pixels as a str)."""
    tv_cifar = pytest.importorskip("torchvision.datasets.cifar")
    write_cifar10(tmp_path, python2=python2)
    # torchvision checks md5s of the real files, as bench does; these tiny ones cannot match.
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)
    trust_cifar10(monkeypatch, tmp_path)
    d = data.load("cifar10", tmp_path)
    for train, images, labels in ((True, d.train_images, d.train_labels), (False, d.test_images, d.test_labels)):
        ref = tv_cifar.CIFAR10(str(tmp_path), train=train, download=False)
        np.testing.assert_array_equal(images, ref.data)
        np.testing.assert_array_equal(labels, ref.targets)
        assert d.classes == tuple(ref.classes)


def test_find_cifar10(tmp_path, monkeypatch):
    assert data.find_cifar10(tmp_path) is None
    write_cifar10(tmp_path)
    trust_cifar10(monkeypatch, tmp_path)
    assert data.find_cifar10(tmp_path) == tmp_path
    assert data.find_cifar10(tmp_path / data.CIFAR10_FOLDER) == tmp_path  # naming the folder itself works too
    assert data.load("cifar10", tmp_path / data.CIFAR10_FOLDER).train_images.shape[0] == 5 * CIFAR_TRAIN_ROWS


def test_cifar10_default_dir_is_dot_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_cifar10(tmp_path / "data")
    trust_cifar10(monkeypatch, tmp_path / "data")
    assert data.load("cifar10").train_images.shape == (5 * CIFAR_TRAIN_ROWS, 32, 32, 3)


def test_cifar10_missing_says_how_to_get_it(tmp_path):
    message = load_error("cifar10", tmp_path)
    assert "not found under" in message and str(tmp_path) in message
    assert f"bench data download cifar10 --data-dir {tmp_path}" in message
    assert "--dataset synthetic" in message


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _wrong_shape(path: Path) -> None:
    entry = pickle.loads(path.read_bytes())
    entry["data"] = entry["data"][:, :3000]
    path.write_bytes(pickle.dumps(entry, protocol=2))


def _short_labels(path: Path) -> None:
    entry = pickle.loads(path.read_bytes())
    entry["labels"] = entry["labels"][:-1]
    path.write_bytes(pickle.dumps(entry, protocol=2))


def _label_out_of_range(path: Path) -> None:
    entry = pickle.loads(path.read_bytes())
    entry["labels"][0] = 10
    path.write_bytes(pickle.dumps(entry, protocol=2))


def _float_data(path: Path) -> None:
    entry = pickle.loads(path.read_bytes())
    entry["data"] = entry["data"].astype(np.float32)
    path.write_bytes(pickle.dumps(entry, protocol=2))


@pytest.mark.parametrize(
    "victim, damage, says",
    [
        ("data_batch_3", lambda p: p.unlink(), "missing"),
        ("batches.meta", lambda p: p.unlink(), "missing"),
        ("data_batch_1", _truncate, "not a readable CIFAR-10 pickle"),
        ("test_batch", lambda p: p.write_bytes(b"this is not a pickle at all"), "not a readable CIFAR-10 pickle"),
        ("data_batch_5", lambda p: p.write_bytes(b""), "not a readable CIFAR-10 pickle"),
        ("data_batch_2", lambda p: p.write_bytes(pickle.dumps([1, 2, 3])), "not the dict"),
        ("data_batch_4", _wrong_shape, "3072"),
        ("test_batch", _float_data, "uint8"),
        ("data_batch_2", _short_labels, "'labels'"),
        ("test_batch", _label_out_of_range, "labels outside 0..9"),
        ("batches.meta", lambda p: p.write_bytes(pickle.dumps({"num_vis": 3072})), "label_names"),
    ],
)
def test_cifar10_damage_is_a_user_error_naming_the_file(tmp_path, monkeypatch, victim, damage, says):
    write_cifar10(tmp_path)
    trust_cifar10(monkeypatch, tmp_path)
    path = tmp_path / data.CIFAR10_FOLDER / victim
    damage(path)
    # Unlike its trusted digest now, the damaged file is refused unread (the pickle is never opened) ...
    if path.exists():
        message = load_error("cifar10", tmp_path)
        assert str(path) in message and "does not match the official MD5" in message
        assert f"bench data download cifar10 --data-dir {tmp_path}" in message
    # ... and were its digest trusted, the parser would still turn the damage into one line naming the file.
    trust_cifar10(monkeypatch, tmp_path)
    message = load_error("cifar10", tmp_path)
    assert str(path) in message and says in message
    assert "bench data download cifar10" in message


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=10_000), flip=st.integers(min_value=0, max_value=10_000))
def test_cifar10_any_truncation_or_flipped_byte_is_handled(tmp_path_factory, cut, flip):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root)
    path = root / data.CIFAR10_FOLDER / "data_batch_1"
    raw = bytearray(path.read_bytes())
    raw[flip % len(raw)] ^= 0xFF
    path.write_bytes(bytes(raw[: len(raw) - cut % len(raw)]))
    with pytest.MonkeyPatch.context() as monkeypatch:  # trusted, so the pickle reader itself is fuzzed
        trust_cifar10(monkeypatch, root)
        try:
            data.load("cifar10", root)
        except UserError as e:
            assert str(path) in str(e)


# --- Fashion-MNIST ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_fashion_mnist_loads_both_layouts_and_encodings(tmp_path, gz, layout):
    folder = tmp_path if layout == "flat" else tmp_path / "FashionMNIST" / "raw"
    arrays = write_fashion(folder, gz=gz)
    d = data.load("fashion-mnist", tmp_path)
    assert (d.name, d.source, d.classes) == ("fashion-mnist", str(folder), data.FASHION_MNIST_CLASSES)
    assert d.train_images.shape == (7, 28, 28, 1) and d.train_images.dtype == np.uint8
    assert d.test_images.shape == (3, 28, 28, 1) and d.test_labels.dtype == np.int64
    assert (d.channels, d.image_size, d.num_classes, d.input_shape) == (1, 28, 10, (1, 28, 28))
    # idx rows are row-major: image i, row y, column x lands at [i, y, x, 0].
    images = arrays["train-images-idx3-ubyte"]
    assert d.train_images[4, 3, 20, 0] == images[4, 3, 20]
    np.testing.assert_array_equal(d.train_images[..., 0], images)
    np.testing.assert_array_equal(d.test_images[..., 0], arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(d.train_labels, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(d.test_labels, arrays["t10k-labels-idx1-ubyte"])
    assert d.train_images.flags.writeable


def test_fashion_mnist_default_search_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    debian = tmp_path / "debian"
    write_fashion(debian, gz=True, n_train=5)
    monkeypatch.setattr(data, "DEFAULT_FASHION_MNIST_DIR", str(debian))
    assert data.load("fashion-mnist").source == str(debian)  # nothing under ./data: Debian's folder
    write_fashion(tmp_path / "data" / "FashionMNIST" / "raw", gz=False, n_train=9)
    d = data.load("fashion-mnist")  # torchvision's layout under ./data wins
    assert d.source == str(Path("data/FashionMNIST/raw")) and len(d.train_labels) == 9


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, "DEFAULT_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    for message in (load_error("fashion-mnist", tmp_path / "empty"), load_error("fashion-mnist")):
        assert "Fashion-MNIST not found" in message
        assert "apt-get install dataset-fashion-mnist" in message
        assert "bench data download fashion-mnist" in message
    assert str(tmp_path / "nowhere") in load_error("fashion-mnist")


def _replace(stem: str, content: bytes, gz: bool = True):
    def damage(folder: Path) -> Path:
        (folder / f"{stem}.gz").unlink()
        path = folder / (f"{stem}.gz" if gz else stem)
        path.write_bytes(content)
        return path

    return damage


def _cut_gzip(folder: Path) -> Path:
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    return path


def _missing(folder: Path) -> Path:
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    return folder / "t10k-labels-idx1-ubyte"


FIVE_IMAGES = np.zeros((5, 28, 28), np.uint8)


@pytest.mark.parametrize(
    "damage, says",
    [
        (_missing, "missing"),
        (_replace("train-images-idx3-ubyte", b"\x1f\x8b\x08 definitely not deflate"), "could not be read"),
        (_replace("train-images-idx3-ubyte", b"plain text, no gzip header"), "could not be read"),
        (_cut_gzip, "could not be read"),
        (_replace("train-images-idx3-ubyte", idx_bytes(FIVE_IMAGES)[:10], gz=False), "truncated"),
        (_replace("train-labels-idx1-ubyte", idx_bytes(FIVE_IMAGES), gz=False), "magic number 0x00000803"),
        (_replace("train-images-idx3-ubyte", idx_bytes(FIVE_IMAGES)[:-1], gz=False), "header (5, 28, 28)"),
        (_replace("train-images-idx3-ubyte", idx_bytes(np.zeros((7, 32, 32))), gz=False), "not 28x28"),
        (_replace("t10k-labels-idx1-ubyte", gzip.compress(idx_bytes(np.zeros(4)))), "4 labels"),
        (_replace("t10k-labels-idx1-ubyte", gzip.compress(idx_bytes(np.full(3, 10)))), "labels outside 0..9"),
    ],
)
def test_fashion_mnist_damage_is_a_user_error_naming_the_file(tmp_path, damage, says):
    write_fashion(tmp_path, gz=True)
    path = damage(tmp_path)
    message = load_error("fashion-mnist", tmp_path)
    assert str(path) in message and says in message


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gz=st.booleans(), cut=st.integers(min_value=0, max_value=2_000), flip=st.integers(min_value=0, max_value=2_000))
def test_fashion_mnist_any_truncation_or_flipped_byte_is_handled(tmp_path_factory, gz, cut, flip):
    folder = tmp_path_factory.mktemp("fashion")
    write_fashion(folder, gz=gz)
    path = folder / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    raw = bytearray(path.read_bytes())
    raw[flip % len(raw)] ^= 0x5A
    path.write_bytes(bytes(raw[: len(raw) - cut % len(raw)]))
    try:
        data.load("fashion-mnist", folder)
    except UserError as e:
        assert str(path) in str(e)


@pytest.mark.skipif(not Path(data.DEFAULT_FASHION_MNIST_DIR).is_dir(),
                    reason=f"{data.DEFAULT_FASHION_MNIST_DIR} absent: `apt-get install dataset-fashion-mnist`")
def test_debian_fashion_mnist_is_the_real_thing(tmp_path):
    d = data.load("fashion-mnist", data.DEFAULT_FASHION_MNIST_DIR)
    assert d.train_images.shape == (60000, 28, 28, 1) and d.test_images.shape == (10000, 28, 28, 1)
    assert np.bincount(d.train_labels).tolist() == [6000] * 10
    assert np.bincount(d.test_labels).tolist() == [1000] * 10
    # Cross-check the idx parser against torchvision's on one decompressed file.
    mnist = pytest.importorskip("torchvision.datasets.mnist")
    plain = tmp_path / "t10k-images-idx3-ubyte"
    plain.write_bytes(gzip.decompress((Path(data.DEFAULT_FASHION_MNIST_DIR) / f"{plain.name}.gz").read_bytes()))
    np.testing.assert_array_equal(d.test_images[..., 0], mnist.read_image_file(str(plain)).numpy())


# --- synthetic -------------------------------------------------------------------------------------

SMALL = synthetic.SyntheticSpec(num_train=500, num_test=100)


@pytest.fixture(scope="module")
def synth() -> Dataset:
    return data.load("synthetic", seed=0)


def test_synthetic_shapes_and_balance(synth):
    assert (synth.name, synth.source) == ("synthetic", "generated in memory (seed=0)")
    assert synth.train_images.shape == (50_000, 32, 32, 3) and synth.train_images.dtype == np.uint8
    assert synth.test_images.shape == (10_000, 32, 32, 3) and synth.test_images.dtype == np.uint8
    assert synth.train_labels.dtype == np.int64 and synth.test_labels.dtype == np.int64
    assert synth.input_shape == (3, 32, 32) and synth.num_classes == 10
    assert np.bincount(synth.train_labels).tolist() == [5000] * 10
    assert np.bincount(synth.test_labels).tolist() == [1000] * 10
    # Not washed out: centred on mid-grey, spread over the range, little clipping.
    assert 110 < synth.train_images.mean() < 145 and synth.train_images.std() > 30
    assert np.mean(synth.train_images == 255) < 0.1


def test_synthetic_is_deterministic_per_seed_and_seeds_differ():
    a, b, c = synthetic.generate(7, SMALL), synthetic.generate(7, SMALL), synthetic.generate(8, SMALL)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[2], c[2])


def _digests(images: np.ndarray) -> set[bytes]:
    return {hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in images}


def test_synthetic_test_set_shares_no_image_with_train(synth):
    assert not _digests(synth.train_images) & _digests(synth.test_images)


def test_synthetic_is_learnable_but_not_trivial(synth):
    # Nearest class mean on raw pixels: measured 0.66-0.67 over seeds 0-4 (the tutorial CNN gets
    # about 0.70 after one epoch, 0.74 after two). Chance is 0.10.
    means = np.stack([synth.train_images[synth.train_labels == k].mean(axis=0) for k in range(10)])
    means = means.reshape(10, -1).astype(np.float32)
    x = synth.test_images.reshape(len(synth.test_images), -1).astype(np.float32)
    dist = (means**2).sum(1)[None, :] - 2 * x @ means.T
    accuracy = float((dist.argmin(1) == synth.test_labels).mean())
    assert 0.45 < accuracy < 0.85


# --- auto, names, download -------------------------------------------------------------------------


def test_auto_picks_cifar10_when_present(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    trust_cifar10(monkeypatch, tmp_path)
    d = data.load("auto", tmp_path)
    assert d.name == "cifar10"
    assert d.reason == f"found CIFAR-10 at {tmp_path / data.CIFAR10_FOLDER}"


def test_auto_falls_back_to_synthetic_and_says_why(tmp_path, synth):
    d = data.load("auto", tmp_path, seed=0)
    assert d.name == "synthetic" and d.source == "generated in memory (seed=0)"
    assert d.reason == (f"no CIFAR-10 under {tmp_path} (run `bench data download cifar10 --data-dir {tmp_path}` "
                        "to get it); using synthetic")
    np.testing.assert_array_equal(d.test_images, synth.test_images)  # same seed, same data


def test_auto_passes_over_an_unverified_cifar10_and_says_why(tmp_path, monkeypatch, synth):
    write_cifar10(tmp_path)
    trust_cifar10(monkeypatch, tmp_path)
    _truncate(tmp_path / data.CIFAR10_FOLDER / "test_batch")  # now unlike the digest trusted for it
    d = data.load("auto", tmp_path, seed=0)
    folder = tmp_path / data.CIFAR10_FOLDER
    assert d.name == "synthetic"
    assert d.reason == (f"found CIFAR-10 at {folder} but test_batch does not match the official MD5; using synthetic "
                        f"(for a verified copy, delete {folder} and run `bench data download cifar10 --data-dir "
                        f"{tmp_path}`)")
    np.testing.assert_array_equal(d.test_images, synth.test_images)


def test_auto_passes_over_an_incomplete_cifar10(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    trust_cifar10(monkeypatch, tmp_path)
    (tmp_path / data.CIFAR10_FOLDER / "data_batch_4").unlink()
    d = data.load("auto", tmp_path)
    assert d.name == "synthetic" and "but data_batch_4 is missing; using synthetic" in d.reason


def test_auto_does_not_hide_a_verified_but_unreadable_cifar10(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    _label_out_of_range(tmp_path / data.CIFAR10_FOLDER / "test_batch")
    trust_cifar10(monkeypatch, tmp_path)  # its digest is trusted, so this is no unverified copy: say so
    assert "test_batch: labels outside 0..9" in load_error("auto", tmp_path)


def test_official_digests_are_torchvisions():
    tv_cifar = pytest.importorskip("torchvision.datasets.cifar").CIFAR10
    expected = dict(tv_cifar.train_list + tv_cifar.test_list) | {tv_cifar.meta["filename"]: tv_cifar.meta["md5"]}
    assert dict(data.CIFAR10_MD5) == expected


def test_tiny_files_do_not_pass_for_the_official_release(tmp_path):
    write_cifar10(tmp_path)
    message = load_error("cifar10", tmp_path)
    meta = tmp_path / data.CIFAR10_FOLDER / "batches.meta"
    assert message.startswith(f"{meta} does not match the official MD5 (it has ")
    assert f"the release {data.CIFAR10_MD5['batches.meta']})" in message
    assert message.endswith(f"delete {meta.parent} and run `bench data download cifar10 --data-dir {tmp_path}`")


def test_unknown_name_lists_the_valid_ones():
    message = load_error("cifar100")
    assert "'cifar100'" in message and all(name in message for name in data.DATASETS)


def test_download_refuses_what_it_cannot_fetch(tmp_path):
    with pytest.raises(UserError, match="needs no download"):
        data.download("synthetic", tmp_path)
    for name in ("auto", "imagenet"):
        with pytest.raises(UserError, match="choose cifar10 or fashion-mnist"):
            data.download(name, tmp_path)


def test_download_failure_is_a_user_error(tmp_path, monkeypatch):
    tv = pytest.importorskip("torchvision.datasets")

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(tv, "CIFAR10", offline)
    with pytest.raises(UserError, match=r"downloading cifar10 into .* failed \(OSError: <urlopen"):
        data.download("cifar10", tmp_path)


def test_dataset_rejects_inconsistent_arrays():
    images, labels = np.zeros((4, 8, 8, 1), np.uint8), np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="train_labels"):
        Dataset("x", images, labels[:3], images, labels, ("a",), "here", "test")
    with pytest.raises(ValueError, match="test_images"):
        Dataset("x", images, labels, images.astype(np.float32), labels, ("a",), "here", "test")


def test_the_synthetic_cache_gives_the_generated_arrays_and_ignores_a_damaged_file(tmp_path, monkeypatch):
    made = []
    real = synthetic.generate
    monkeypatch.setattr(synthetic, "generate", lambda seed: made.append(seed) or real(seed, SMALL))
    first = synthetic.cached(3, str(tmp_path))
    again = synthetic.cached(3, str(tmp_path))
    assert made == [3] and all((a == b).all() for a, b in zip(first, again))  # generated once, then read
    (cache,) = tmp_path.glob("synthetic-3-*.npz")
    cache.write_bytes(b"not an npz")
    assert all((a == b).all() for a, b in zip(synthetic.cached(3, str(tmp_path)), first)) and made == [3, 3]
    assert not list(tmp_path.glob("*.tmp"))  # written whole, by a rename
