"""Reading dataset files that may be hostile: regular files only, bounded reads, MD5 checks, array-only unpickling."""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from bench.errors import UserError, one_line
from bench.writer import file_kind

class UntrustedFile(UserError):
    """A file that is absent, not a regular file, or not the one its checksum names; it was not parsed."""

    def __init__(self, path: Path, problem: str, fix: str, detail: str = ""):
        self.path, self.problem = path, problem  # problem reads after the path: "is missing", "is a FIFO, ..."
        super().__init__(f"{path} {problem}{detail}: {fix}")


def open_regular(path: Path, fix: str) -> BinaryIO:
    """The file at `path` opened for reading, refused unless it is a regular file (after following symlinks).

    Opening a FIFO blocks until someone writes to it, and a device can be endless: both are refused before they
    are opened, and the open itself does not block, so a file swapped in between is caught by the second check.
    """
    try:
        _require_regular(path, os.stat(path).st_mode, fix)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise UntrustedFile(path, "is missing", fix) from None
    except OSError as e:  # ELOOP for a symlink loop, EACCES, ENAMETOOLONG, ...
        raise UntrustedFile(path, f"could not be opened ({e.strerror or e})", fix) from None
    try:
        _require_regular(path, os.fstat(fd).st_mode, fix)
        if getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _require_regular(path: Path, mode: int, fix: str) -> None:
    kind = file_kind(mode)
    if kind:
        raise UntrustedFile(path, f"is {kind}, not a regular file", fix)


def read_verified(path: Path, md5: str, max_bytes: int, fix: str) -> bytes:
    """The bytes of a regular file whose MD5 is `md5`; anything else raises UntrustedFile before it is parsed.

    The bytes that were hashed are the bytes returned, so the file cannot change between check and use.
    """
    with open_regular(path, fix) as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise UntrustedFile(path, f"is {size:,} bytes, more than any file of the official release", fix)
        try:
            raw = f.read(max_bytes + 1)
        except OSError as e:
            raise UntrustedFile(path, f"could not be read ({e.strerror or e})", fix) from None
    if len(raw) > max_bytes:  # it grew while we read
        raise UntrustedFile(path, f"is more than {max_bytes:,} bytes, more than any file of the official release", fix)
    digest = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    if digest != md5:
        raise UntrustedFile(path, "does not match the official MD5", fix, f" (it has {digest}, the release {md5})")
    return raw


def read_idx(path: Path, item_shape: tuple[int, ...], max_items: int, fix: str) -> np.ndarray:
    """An idx file of unsigned bytes (the MNIST format), plain or gzipped: up to max_items items of item_shape.

    The header is checked before the data is read, and no more is read (or decompressed) than it promises, so
    neither a gzip bomb nor a header claiming absurd sizes costs more than max_items real items.
    """
    ndim = 1 + len(item_shape)
    header = 4 + 4 * ndim
    with open_regular(path, fix) as f:
        try:
            stream = gzip.GzipFile(fileobj=f, mode="rb") if path.suffix == ".gz" else f
            head = stream.read(header)
            if len(head) < header:
                raise UserError(f"{path} is truncated: {len(head)} bytes is less than an idx header: {fix}")
            dims = _idx_dims(path, head, item_shape, max_items, fix)
            expected = math.prod(dims)
            body = stream.read(expected)
            extra = stream.read(1)  # reaching the end also makes gzip check its CRC
        except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a cut-off gzip stream an EOFError
            raise UserError(f"{path} could not be read ({one_line(e, 120)}): {fix}") from e
    if len(body) != expected or extra:
        held = f"{len(body)} bytes" if not extra else f"more than {expected} bytes"
        raise UserError(f"{path} holds {held} of data but its header {dims} needs {expected}: {fix}")
    # Copied so the arrays are writable and do not pin the buffer read.
    return np.frombuffer(body, dtype=np.uint8).reshape(dims).copy()


def _idx_dims(path: Path, head: bytes, item_shape: tuple[int, ...], max_items: int, fix: str) -> tuple[int, ...]:
    ndim = 1 + len(item_shape)
    # Magic: two zero bytes, a type code (0x08 = unsigned byte) and the number of dimensions.
    magic = int.from_bytes(head[:4], "big")
    if magic != 0x0800 + ndim:
        raise UserError(f"{path} has magic number {magic:#010x}, not {0x0800 + ndim:#010x} as it should: {fix}")
    dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if dims[1:] != item_shape:
        raise UserError(f"{path} holds {'x'.join(map(str, dims[1:]))} images, not "
                        f"{'x'.join(map(str, item_shape))}: {fix}")
    if dims[0] > max_items:
        raise UserError(f"{path} has a header claiming {dims[0]:,} entries, more than the {max_items:,} "
                        f"such a file holds: {fix}")
    return dims


def unpickle_arrays(raw: bytes, path: Path, fix: str) -> object:
    """Unpickle data that may only build plain containers and numeric numpy arrays (what CIFAR-10 holds).

    numpy's own __setstate__ never runs: it would accept a dtype state that flags plain bytes as object
    pointers. The arrays are rebuilt here from their pickled shape, dtype and bytes instead.
    Encoded as latin1, as torchvision reads the Python 2 originals: str keys stay str and numpy's bytes survive.
    """
    return _resolve(_ArrayUnpickler(io.BytesIO(raw), path, fix).load())


class _NdarrayType:
    """Stands for numpy.ndarray, which a pickle may name only as the type _reconstruct builds."""

    def __init__(self, *args):
        raise pickle.UnpicklingError("numpy.ndarray called directly, where only _reconstruct may name it")


class _Dtype:
    """A numeric dtype named by a pickle; its state may only say the byte order."""

    def __init__(self, spec, align=False, copy=False):
        if not isinstance(spec, str):
            raise pickle.UnpicklingError(f"a numpy dtype named by a {type(spec).__name__}, not a type code")
        self.dtype = np.dtype(spec)
        if self.dtype.kind not in "biuf":  # no object, void (structured) or string arrays
            raise pickle.UnpicklingError(f"a numpy array of dtype {self.dtype}, where CIFAR-10 holds only numbers")

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in ("<", ">", "|", "=")
                and state[2:5] == (None, None, None) and state[7] == 0):
            raise pickle.UnpicklingError(f"a dtype state {str(state)[:60]} beyond byte order")
        if state[1] in "<>":
            self.dtype = self.dtype.newbyteorder(state[1])


class _Array:
    """numpy's _reconstruct(ndarray, (0,), typecode) followed by __setstate__, done without numpy's pickle code."""

    def __init__(self, subtype, shape, typecode):
        if subtype is not _NdarrayType or tuple(shape) != (0,):
            raise pickle.UnpicklingError("_reconstruct of something other than an empty numpy.ndarray")
        self.array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], _Dtype)):
            raise pickle.UnpicklingError("an array state that is not (version, shape, dtype, fortran, bytes)")
        _, shape, dtype, fortran, data = state
        data = data.encode("latin1") if isinstance(data, str) else data  # Python 2's str, decoded as latin1
        if not (isinstance(data, bytes) and isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)
                and len(data) == math.prod(shape) * dtype.dtype.itemsize):
            raise pickle.UnpicklingError(f"an array of shape {str(shape)[:40]} whose bytes do not fill it")
        self.array = np.frombuffer(data, dtype.dtype).reshape(shape, order="F" if fortran else "C")


def _resolve(obj):
    """The unpickled object with each _Array replaced by the array it built."""
    if isinstance(obj, _Array):
        if obj.array is None:
            raise pickle.UnpicklingError("an array without its state")
        return obj.array
    if isinstance(obj, dict):
        return {k: _resolve(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v) for v in obj)
    return obj


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """What `_codecs.encode` does for the bytes objects that Python 3 writes at pickle protocol 2 and below."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with {str(encoding)[:20]!r}, where only latin1 makes bytes")
    return text.encode("latin1")


# Every global the CIFAR-10 pickles name: the originals (Python 2, numpy 1) use numpy.core.multiarray and the
# two numpy names; pickles written by numpy 2 at protocol 2 (the test fixtures) use numpy._core and _codecs.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _Array,
    ("numpy._core.multiarray", "_reconstruct"): _Array,
    ("numpy", "ndarray"): _NdarrayType,
    ("numpy", "dtype"): _Dtype,
    ("_codecs", "encode"): _latin1_bytes,
}


class _ArrayUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only ALLOWED_GLOBALS: a pickle that asks for os.system gets a UserError."""

    def __init__(self, file: BinaryIO, path: Path, fix: str):
        super().__init__(file, encoding="latin1")
        self.path, self.fix = path, fix

    def find_class(self, module: str, name: str):
        found = ALLOWED_GLOBALS.get((module, name))
        if found is None:
            what = f"{module}.{name}"[:80]
            raise UserError(f"{self.path} asks to run {what!r}, which no CIFAR-10 file needs; refused to read it: "
                            f"{self.fix}")
        return found
