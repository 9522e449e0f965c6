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
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def key(self) -> str:
        from bench.config import CellConfig

        return CellConfig.from_dict(self.cell).key


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
