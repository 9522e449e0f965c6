"""bench.schema's fast paths read exactly what its checked path reads, and leave bad values to it."""

from __future__ import annotations

import pytest

from bench.schema import decode

BLOCKS = tuple[tuple[int, float], ...]


def test_blocks_read_fast_as_the_checked_path_reads_them():
    assert decode(BLOCKS, [[5, 0.1], [8, 2]], "blocks") == ((5, 0.1), (8, 2.0))
    assert decode(BLOCKS, [[5.0, 0.1]], "blocks") == ((5, 0.1),)  # a whole float: the checked path takes it
    assert all(type(n) is int and type(t) is float for n, t in decode(BLOCKS, [[5, 1], [3, 0.5]], "b"))


@pytest.mark.parametrize("value,message", [
    ([[5, 0.1], [5, "x"]], r"blocks\[1\]\[1\] must be a finite number, got a string"),
    ([[5, 0.1], [True, 0.1]], r"blocks\[1\]\[0\] must be a whole number, got a boolean"),
    ([[5, 0.1, 2]], r"blocks\[0\] must be a list of 2, got 3 items"),
    ([[10**30, 0.1]], r"blocks\[0\]\[0\] must be a whole number below 2\^63"),
    ([[5, float("inf")]], r"blocks\[0\]\[1\] must be a finite number, got a non-finite number"),
])
def test_a_bad_block_is_named_by_the_checked_path(value, message):
    with pytest.raises(ValueError, match=message):
        decode(BLOCKS, value, "blocks")
