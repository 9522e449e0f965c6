"""The one record type: raw facts about one cell (config, environment, timings, accuracy), as one JSON line."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

SCHEMA_VERSION = 1
STATUSES = ("ok", "oom", "diverged", "unavailable", "unsupported", "error")


@dataclass(frozen=True)
class Record:
    """Everything measured for one cell. Statistics (medians, rates, speedups) are derived, never stored."""

    cell: dict  # CellConfig.to_dict()
    status: str  # one of STATUSES
    run_id: str  # the run (output folder) this record belongs to
    created_utc: str  # ISO 8601, when the cell finished
    env: dict  # bench.env.environment(): host, CPU, torch, GPU, driver, git commit...
    device_name: str = ""
    message: str = ""  # why, for any status but ok
    dataset: dict = field(default_factory=dict)  # name, source, reason, train/test sizes, input shape
    model: dict = field(default_factory=dict)  # parameters, FLOPs per image (training, forward)
    timing: dict = field(default_factory=dict)  # see bench.train: clock, warm-up, steps, blocks, sampled step seconds
    accuracy_curve: list = field(default_factory=list)  # [{step, samples, seconds, accuracy}], seconds = training time
    loss_curve: list = field(default_factory=list)  # [[step, mean training loss over the block]]
    memory: dict = field(default_factory=dict)  # peak bytes and what that measure means on this device
    profile: dict = field(default_factory=dict)  # optional step-time breakdown from a separate profiling pass
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    def to_json(self) -> str:
        """One line of JSON; non-finite floats become null so every line is strict JSON."""
        return json.dumps(_finite(asdict(self)), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, line: str) -> "Record":
        d = json.loads(line)
        if not isinstance(d, dict):
            raise ValueError("a record must be a JSON object")
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {version!r} is not {SCHEMA_VERSION}, which this bench reads")
        names = {f.name for f in fields(cls)}
        missing = {"cell", "status", "run_id", "created_utc", "env"} - d.keys()
        if missing:
            raise ValueError(f"record lacks {', '.join(sorted(missing))}")
        _check_types(d)
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def key(self) -> str:
        from bench.config import CellConfig

        return CellConfig.from_dict(self.cell).key


_OBJECTS = ("cell", "env", "dataset", "model", "timing", "memory", "profile")
_LISTS = ("accuracy_curve", "loss_curve")
_TEXTS = ("status", "run_id", "created_utc", "device_name", "message")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_types(d: dict) -> None:
    """Refuse a line whose fields have the wrong shape, so every record read back can be tabulated
    (a hand-edited or foreign line fails here, naming the field, rather than deep inside a report)."""
    from bench.config import CellConfig

    for name in _OBJECTS:
        if name in d and not isinstance(d[name], dict):
            raise ValueError(f"{name} must be a JSON object, got {type(d[name]).__name__}")
    for name in _LISTS:
        if name in d and not isinstance(d[name], list):
            raise ValueError(f"{name} must be a JSON list, got {type(d[name]).__name__}")
    for name in _TEXTS:
        if name in d and not isinstance(d[name], str):
            raise ValueError(f"{name} must be a string, got {type(d[name]).__name__}")
    cell = d["cell"]
    for name in ("device", "dataset"):
        if not isinstance(cell.get(name), str):
            raise ValueError(f"cell.{name} must be a string")
    try:
        CellConfig.from_dict(cell)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"cell is not a valid cell configuration ({type(exc).__name__}: {exc})") from None
    timing = d.get("timing", {})
    steps = timing.get("step_seconds", [])
    if not (isinstance(steps, list) and all(_is_number(v) and v > 0 for v in steps)):
        raise ValueError("timing.step_seconds must be a list of positive numbers")
    for name in ("train_seconds", "eval_seconds", "steps", "samples"):
        if timing.get(name) is not None and not _is_number(timing[name]):
            raise ValueError(f"timing.{name} must be a number")
    for name in ("parameters", "train_flops_per_image"):
        if d.get("model", {}).get(name) is not None and not _is_number(d["model"][name]):
            raise ValueError(f"model.{name} must be a number")
    for point in d.get("accuracy_curve", []):
        if not (isinstance(point, dict) and _is_number(point.get("accuracy")) and _is_number(point.get("seconds"))):
            raise ValueError("accuracy_curve must hold objects with numeric accuracy and seconds")
    if not isinstance(d["env"].get("git") or {}, dict):
        raise ValueError("env.git must be a JSON object")
    for name in ("host", "cpu_model", "torch", "cuda"):  # tables group and label by these
        if d["env"].get(name) is not None and not isinstance(d["env"][name], str):
            raise ValueError(f"env.{name} must be a string")


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
