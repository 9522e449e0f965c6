"""The one record type: raw facts about one cell (config, environment, timings, accuracy), as one JSON line.

Every nested part is a frozen dataclass with its unit in its field's name or comment, made by one producer
(bench.train, bench.breakdown, bench.env, bench.pbjson) and read back by its types (bench.schema).
Statistics (medians, rates, intervals) are derived when results are read, never stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from bench.config import CellConfig
from bench.schema import decode, encode

SCHEMA_VERSION = 2  # 2 added env.bench and machine_id, timing.started_unix/finished_unix, load, energy; 1 reads as 2
READABLE_VERSIONS = (1, 2)
STATUSES = ("ok", "oom", "diverged", "unavailable", "unsupported")
MIN_SECONDS, MAX_SECONDS = 1e-12, 1e9  # the range of a step's or a block's seconds that a record may hold
MAX_STEP_TIMES, MAX_BLOCKS = 1 << 20, 1 << 21  # a cell keeps 4096 step times; a week-long one has 1.2M blocks


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class DatasetFacts:
    """What a cell trained on (bench.train.dataset_facts)."""

    name: str = ""  # cifar10 | fashion-mnist | synthetic
    source: str = ""  # the path read, or how it was generated
    reason: str = ""  # why this dataset was chosen
    train_size: int | None = None  # images
    test_size: int | None = None  # images
    input_shape: tuple[int, ...] = ()  # (C, H, W)
    classes: int | None = None  # number of classes

    def __post_init__(self):
        _check(all(v is None or v >= 0 for v in (self.train_size, self.test_size)), "sizes must be >= 0")
        _check(self.classes is None or self.classes >= 1, f"classes must be >= 1, got {self.classes}")


@dataclass(frozen=True)
class ModelFacts:
    """The network a cell trained (bench.train.model_facts)."""

    name: str = ""
    width: float | None = None  # width multiplier
    parameters: int | None = None
    train_flops_per_image: int | None = None  # forward + backward FLOPs per image
    forward_flops_per_image: int | None = None
    flop_counter: str = ""  # how the FLOPs were counted

    def __post_init__(self):
        _check(self.width is None or self.width > 0, f"width must be > 0, got {self.width}")
        _check(all(v is None or v >= 0 for v in (self.parameters, self.train_flops_per_image,
                                                 self.forward_flops_per_image)), "counts must be >= 0")


@dataclass(frozen=True)
class Timing:
    """The timed region of a cell (bench.train) or a pytest-benchmark's rounds (bench.pbjson)."""

    clock: str = ""  # where step times come from: host | events | pytest-benchmark rounds
    warmup_steps: int = 0  # steps run before the clock started, then undone
    warmup_seconds: float | None = None
    steps: int = 0  # timed steps
    samples: int = 0  # timed images (steps x batch size)
    epochs: float | None = None  # steps / full batches per epoch
    train_seconds: float | None = None  # sum of the blocks' synchronized wall seconds (evaluation excluded)
    eval_seconds: float | None = None  # evaluation between blocks, off the clock
    blocks: tuple[tuple[int, float], ...] = ()  # (steps, wall seconds) per block between host clock reads
    step_seconds: tuple[float, ...] = ()  # per step; a seeded uniform sample when step_seconds_sampled
    step_seconds_sampled: bool = False
    diverged_at_step: int | None = None  # the first step whose loss was not finite
    steps_per_round: int | None = None  # pytest-benchmark: steps between synchronizes
    threads: int | None = None  # CPU threads the timed steps ran with
    thread_probe: dict[str, float] = field(default_factory=dict)  # --threads auto: images/s per thread count tried
    started_unix: float | None = None  # wall clock (seconds since the epoch) before warm-up
    finished_unix: float | None = None  # wall clock after the last timed block

    def __post_init__(self):
        _check(len(self.step_seconds) <= MAX_STEP_TIMES and len(self.blocks) <= MAX_BLOCKS,
               f"step_seconds and blocks hold {len(self.step_seconds)} and {len(self.blocks)} values, more than "
               f"a record holds ({MAX_STEP_TIMES} and {MAX_BLOCKS})")
        # a step between a picosecond and 30 years: rates and their sums stay finite, never a warning or inf
        _check(all(MIN_SECONDS <= s <= MAX_SECONDS for s in self.step_seconds),
               f"step_seconds must hold positive numbers from {MIN_SECONDS:g} to {MAX_SECONDS:g} seconds")
        _check(self.steps >= 0 and self.samples >= 0 and self.warmup_steps >= 0,
               "steps, samples and warmup_steps must be >= 0")
        for name in ("train_seconds", "eval_seconds", "warmup_seconds"):
            value = getattr(self, name)
            _check(value is None or 0 <= value <= MAX_SECONDS, f"{name} must be from 0 to {MAX_SECONDS:g}, got {value}")
        _check(all(n >= 1 and MIN_SECONDS <= s <= MAX_SECONDS for n, s in self.blocks),
               f"blocks must hold [steps >= 1, seconds from {MIN_SECONDS:g} to {MAX_SECONDS:g}]")
        _check(self.steps_per_round is None or self.steps_per_round >= 1, "steps_per_round must be >= 1")
        _check(self.threads is None or self.threads >= 1, "threads must be >= 1")
        _check(all(k.isascii() and k.isdigit() and int(k) >= 1 and v > 0 for k, v in self.thread_probe.items()),
               "thread_probe must map thread counts (1, 2, ...) to images/s > 0")


@dataclass(frozen=True)
class AccuracyPoint:
    """Test accuracy at one checkpoint, off the clock."""

    step: int  # timed steps before this checkpoint
    samples: int  # timed images before it
    seconds: float  # training seconds before it (evaluation excluded)
    accuracy: float  # fraction of the test set, 0 to 1

    def __post_init__(self):
        _check(0 <= self.accuracy <= 1, f"accuracy must be a fraction in [0, 1], got {self.accuracy}")
        _check(0 <= self.seconds <= MAX_SECONDS, f"seconds must be from 0 to {MAX_SECONDS:g}, got {self.seconds}")
        _check(self.step >= 0 and self.samples >= 0, "step and samples must be >= 0")


@dataclass(frozen=True)
class Memory:
    """The high-water mark of memory, and what that measure is on this device (bench.devices.peak_memory)."""

    peak_bytes: int | None = None
    measure: str = ""


@dataclass(frozen=True)
class Profile:
    """The step-time breakdown from a separate profiling pass (bench.breakdown); never part of the timing."""

    method: str = ""
    steps: int = 0  # profiled steps
    warmup_steps: int = 0
    sections_ms: dict[str, float] = field(default_factory=dict)  # mean milliseconds per step and section
    total_ms: float | None = None
    section_seconds: dict[str, tuple[float, ...]] = field(default_factory=dict)  # raw, per profiled step
    note: str = ""
    error: str = ""  # why the pass measured nothing (out of memory)

    def __post_init__(self):
        _check(self.steps >= 0 and self.warmup_steps >= 0, "steps and warmup_steps must be >= 0")
        _check(all(0 <= v <= MAX_SECONDS * 1e3 for v in self.sections_ms.values())
               and (self.total_ms is None or 0 <= self.total_ms <= MAX_SECONDS * 1e3),
               "sections_ms and total_ms must hold milliseconds >= 0")
        _check(all(0 <= s <= MAX_SECONDS for v in self.section_seconds.values() for s in v),
               "section_seconds must hold seconds >= 0")


@dataclass(frozen=True)
class Load:
    """How busy the machine was while the cell ran, from warm-up to its last block (bench.load)."""

    cores: int = 0  # logical CPUs
    others_cpu: float = 0.0  # CPU time other processes used, as a fraction of all cores over the cell
    steal: float = 0.0  # fraction of CPU time a hypervisor gave to other guests
    loadavg_before: float | None = None  # 1-minute load average when the cell started
    loadavg_after: float | None = None
    seconds: float = 0.0  # the wall seconds these figures cover

    def __post_init__(self):
        _check(0 <= self.others_cpu <= 1 and 0 <= self.steal <= 1, "others_cpu and steal must be fractions")


@dataclass(frozen=True)
class Gpu:
    device: str = ""
    name: str = ""
    memory_bytes: int | None = None
    capability: str = ""
    multiprocessors: int | None = None
    driver: str | None = None


@dataclass(frozen=True)
class Git:
    commit: str | None = None
    dirty: bool | None = None  # uncommitted changes to tracked files


@dataclass(frozen=True)
class RayWorker:
    """Where a cell ran when a Ray cluster ran the grid (bench.cluster)."""

    version: str = ""  # Ray's
    node_id: str = ""
    node_ip: str = ""
    niceness: int = 0  # the worker's scheduling niceness while the cell ran (0: as a local run)


@dataclass(frozen=True)
class Environment:
    """The machine and software a cell ran on (bench.env.environment)."""

    host: str | None = None
    machine_id: str | None = None  # a hash of the OS install's id (/etc/machine-id): one per machine
    os: str = ""
    python: str = ""
    cpu_model: str | None = None
    cpu_logical_cores: int | None = None
    cpu_physical_cores: int | None = None
    cpu_threads_available: int | None = None  # cores this process may use
    memory_bytes: int | None = None  # the host's RAM
    torch: str | None = None
    torchvision: str | None = None
    cuda: str | None = None
    cudnn: int | None = None
    gpus: tuple[Gpu, ...] = ()
    git: Git = field(default_factory=Git)
    bench: str | None = None  # this project's version
    ray: RayWorker | None = None  # set when a Ray cluster ran the cell
    source: str = ""  # where the facts came from when not bench run (a pytest-benchmark document)


ENERGY_METHODS = ("nvml", "rapl", "estimate", "unavailable")  # how a device's joules were obtained (bench.energy)


@dataclass(frozen=True)
class DeviceEnergy:
    """One device's energy over a cell's timed windows (bench.energy.Meter): each window encloses one timed
    block, so evaluation and warm-up are outside every window."""

    method: str  # nvml | rapl (measured), estimate (user's watts x seconds) | unavailable
    joules: float | None = None  # J over all windows; None when unavailable
    seconds: float = 0.0  # s, the windows' total (each a timed block plus its synchronize and counter reads)
    windows: int = 0  # one per timed block
    window_joules: tuple[float, ...] = ()  # J per window, aligned with timing.blocks; () when unavailable
    source: str = ""  # the counter read (zones, GPU) or the flag and watts of an estimate
    reason: str = ""  # why unavailable, or why an estimate and not a measurement
    note: str = ""  # caveats: a total too short for NVML's refresh, a window long enough to hide a wrap

    def __post_init__(self):
        _check(self.method in ENERGY_METHODS, f"method must be one of {', '.join(ENERGY_METHODS)}, "
                                              f"got {self.method!r}")
        _check((self.joules is None) == (self.method == "unavailable"),
               f"joules must be given exactly when the method is not unavailable (method {self.method})")
        _check(self.joules is None or self.joules >= 0, f"joules must be >= 0, got {self.joules}")
        _check(all(j >= 0 for j in self.window_joules), "window_joules must hold numbers >= 0")
        _check(self.seconds >= 0 and self.windows >= 0, "seconds and windows must be >= 0")

    @property
    def measured(self) -> bool:
        """Read from a counter (nvml, rapl), not an estimate and not missing."""
        return self.method in ("nvml", "rapl")


@dataclass(frozen=True)
class Record:
    """Everything measured for one cell. Statistics (medians, rates, speedups) are derived, never stored."""

    cell: CellConfig
    status: str  # one of STATUSES
    run_id: str  # the run (output folder) this record belongs to
    created_utc: str  # ISO 8601, when the cell finished
    env: Environment
    device_name: str = ""
    message: str = ""  # why, for any status but ok
    dataset: DatasetFacts = field(default_factory=DatasetFacts)
    model: ModelFacts = field(default_factory=ModelFacts)
    timing: Timing = field(default_factory=Timing)
    accuracy_curve: tuple[AccuracyPoint, ...] = ()
    loss_curve: tuple[tuple[int, float | None], ...] = ()  # (step, mean training loss over the block)
    memory: Memory = field(default_factory=Memory)
    profile: Profile | None = None
    load: Load | None = None  # how busy the machine was; None in records from before it was measured
    energy: dict[str, DeviceEnergy] | None = None  # per device used (a GPU cell: the GPU and "cpu", its host
    # packages) over the timed windows; None in records from before energy was recorded
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        _check(self.status in STATUSES, f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    def to_json(self) -> str:
        """One line of strict JSON (non-finite floats become null)."""
        return json.dumps(encode(self), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, line: str) -> "Record":
        d = json.loads(line)
        if not isinstance(d, dict):
            raise ValueError("a record must be a JSON object")
        version = d.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise ValueError(f"schema_version {version!r} is not one this bench reads "
                             f"({', '.join(map(str, READABLE_VERSIONS))})")
        if d.get("profile") == {}:  # schema 1 wrote an empty object for "not profiled"
            d = {**d, "profile": None}
        return decode(cls, {**d, "schema_version": SCHEMA_VERSION}, "")

    @property
    def key(self) -> str:
        return self.cell.key

    @property
    def final_accuracy(self) -> float | None:
        return self.accuracy_curve[-1].accuracy if self.accuracy_curve else None
