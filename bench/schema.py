"""Typed JSON: frozen dataclasses read from JSON values by their type hints, and written back as plain JSON.

    decode(Timing, {"steps": 3, ...}, "timing")  ->  Timing(steps=3, ...), or ValueError naming the field

Each field's type says what the JSON may hold (str, int, float, bool, None | X, tuple[X, ...], fixed tuples,
dict[str, X], or another dataclass); a class's own __post_init__ adds ranges. Keys a class does not know are
ignored, so a record from a newer bench still reads; missing keys take the field's default.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from functools import lru_cache

from bench.config import is_finite, is_number


@lru_cache(maxsize=None)
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _kind(value) -> str:
    if is_number(value) and not is_finite(value):
        return "a number too large for a float" if isinstance(value, int) else "a non-finite number"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if is_number(value) else type(value).__name__)


def decode(tp, value, path: str):
    """value (parsed JSON) as type tp; ValueError("path: must be ...") when it does not fit."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return decode(inner, value, path)
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, value, path)
    if tp is typing.Any:
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{path} must be a string, got {_kind(value)}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{path} must be true or false, got {_kind(value)}")
        return value
    if tp is int:
        if type(value) is float and value.is_integer():
            value = int(value)
        if not (type(value) is int):
            raise ValueError(f"{path} must be a whole number, got {_kind(value)}")
        if abs(value) > MAX_INT:
            raise ValueError(f"{path} must be a whole number below 2^63, got one of {len(str(abs(value)))} digits")
        return value
    if tp is float:
        if not (is_number(value) and is_finite(value)):
            raise ValueError(f"{path} must be a finite number, got {_kind(value)}")
        return float(value)
    if origin is tuple:
        if not isinstance(value, list):
            raise ValueError(f"{path} must be a list, got {_kind(value)}")
        if args == (float, Ellipsis) and _all_finite_numbers(value):  # step times: thousands, read fast
            return tuple(map(float, value))
        if args == (tuple[int, float], Ellipsis) and _all_count_seconds(value):  # blocks: hundreds, read fast
            return tuple((n, float(t)) for n, t in value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{path} must be a list of {len(args)}, got {len(value)} items")
        return tuple(decode(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{path} must be an object, got {_kind(value)}")
        return {k: decode(args[1], v, f"{path}.{k}") for k, v in value.items()}
    raise TypeError(f"schema.decode cannot read type {tp!r} ({path})")  # a bug in a record class, not bad input


MAX_INT = 2**63 - 1  # what numpy and torch hold; a whole number past it is not a count this bench wrote


def _all_finite_numbers(values: list) -> bool:
    return all(type(v) is float or type(v) is int for v in values) and all(map(is_finite, values))


def _all_count_seconds(values: list) -> bool:
    """Every item a [whole number, finite number] pair that decode would accept as it is; else the slow path
    reads them one by one and names the first that does not fit."""
    return all(type(v) is list and len(v) == 2 and type(v[0]) is int and abs(v[0]) <= MAX_INT
               and (type(v[1]) is float or type(v[1]) is int) and is_finite(v[1]) for v in values)


def _decode_dataclass(cls, value, path: str):
    reader = getattr(cls, "from_json_value", None)
    if reader is not None:
        return reader(value, path)
    if not isinstance(value, dict):
        raise ValueError(f"{path} must be an object, got {_kind(value)}")
    hints = _hints(cls)
    fields = dataclasses.fields(cls)
    missing = [f.name for f in fields if f.name not in value
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{path or 'record'} lacks {', '.join(missing)}")
    kwargs = {f.name: decode(hints[f.name], value[f.name], f"{path}.{f.name}" if path else f.name)
              for f in fields if f.name in value}
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ValueError(f"{path}.{exc}" if path else str(exc)) from None


def encode(value):
    """A dataclass (or what it holds) as plain JSON values; non-finite floats become null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        writer = getattr(value, "to_json_value", None)
        if writer is not None:
            return writer()
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value
