"""Frozen, validated configuration: budgets, one cell of the grid, and a whole run (the grid of cells)."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import asdict, dataclass

from bench.variants import OPTIONS, resolve

PIPELINES = ("tutorial", "resident")
BUDGET_UNITS = {"ep": "epochs", "epoch": "epochs", "epochs": "epochs", "step": "steps", "steps": "steps",
                "sample": "samples", "samples": "samples", "s": "seconds", "sec": "seconds", "seconds": "seconds"}
_SUFFIX = {"epochs": "ep", "steps": "steps", "samples": "samples", "seconds": "s"}
# Far beyond any sensible cell (a week of training), so a typo is refused rather than run for ever.
MAX_BUDGET = {"epochs": 10_000, "steps": 10**9, "samples": 10**12, "seconds": 7 * 86_400}
TUTORIAL_LR = 0.001  # the tutorial's SGD learning rate at its batch size of 4
TUTORIAL_BATCH = 4
MAX_LR = 0.05  # the scaled default learning rate stops here

# Defaults, in one place: the cells, the grid and the command line's help all read these.
MOMENTUM = 0.9  # the tutorial's SGD momentum
SEED = 0  # weights, shuffling and synthetic data
EVAL_POINTS = 8  # accuracy checkpoints across the budget
WARMUP_STEPS = 20  # steps before the clock, undone afterwards
WORKERS = 2  # the tutorial's DataLoader workers
BUDGET = "2ep"  # the tutorial trains for 2 epochs
WIDTHS = (1.0,)  # the tutorial net
DEFAULT_CONFIGS = (("tutorial", 4), ("resident", 256))  # with no --pipeline and no --batch-size
MAX_WATTS = 10_000.0  # W; --cpu-watts/--gpu-watts above this are a typo (a large server draws a few kW)


@dataclass(frozen=True)
class Budget:
    """Fixed work (epochs, steps, samples) or fixed training wall-clock (seconds); every device gets the same."""

    amount: float  # in `unit`
    unit: str  # epochs | steps | samples | seconds

    def __post_init__(self):
        if self.unit not in _SUFFIX:
            raise ValueError(f"budget unit must be one of {', '.join(_SUFFIX)}, got {self.unit!r}")
        if not (math.isfinite(self.amount) and self.amount > 0):
            raise ValueError(f"budget must be a positive amount, got {self.amount!r}")
        if self.unit in ("steps", "samples") and self.amount != int(self.amount):
            raise ValueError(f"a budget in {self.unit} must be a whole number, got {self.amount!r}")
        if self.amount > MAX_BUDGET[self.unit]:
            raise ValueError(f"budget must be at most {MAX_BUDGET[self.unit]:,} {self.unit} per cell, "
                             f"got {self.amount:g}")

    @classmethod
    def parse(cls, text: str) -> "Budget":
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]+)\s*", text.lower())
        if not m or m.group(2) not in BUDGET_UNITS:
            raise ValueError(
                f"cannot read budget {text!r}: write fixed work as 2ep, 5000steps or 200000samples, "
                f"or fixed time as 60s"
            )
        return cls(float(m.group(1)), BUDGET_UNITS[m.group(2)])

    @property
    def is_time(self) -> bool:
        return self.unit == "seconds"

    def total_steps(self, train_size: int, batch_size: int) -> int | None:
        """Steps this budget allows (None for a time budget). An epoch is train_size // batch_size steps."""
        if self.is_time:
            return None
        if self.unit == "steps":
            return int(self.amount)
        if self.unit == "samples":
            return max(1, math.ceil(self.amount / batch_size))
        return max(1, round(self.amount * steps_per_epoch(train_size, batch_size)))

    def __str__(self) -> str:
        amount = int(self.amount) if self.amount == int(self.amount) else self.amount
        return f"{amount}{_SUFFIX[self.unit]}"


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    """Full batches only (drop_last), so every step has the same shape on every device."""
    return max(1, train_size // batch_size)


def default_lr(batch_size: int) -> float:
    """The tutorial's 0.001 at batch 4, scaled linearly with batch size (Goyal et al. 2017), capped at MAX_LR."""
    return min(MAX_LR, TUTORIAL_LR * batch_size / TUTORIAL_BATCH)


@dataclass(frozen=True)
class CellConfig:
    """One cell of the grid: a device trains one model configuration under one budget."""

    dataset: str  # dataset name as resolved (cifar10 | fashion-mnist | synthetic)
    device: str  # canonical torch device string, e.g. cpu, cuda:0
    pipeline: str  # tutorial | resident
    batch_size: int  # images per step
    width: float  # width multiplier; 1 = the tutorial net
    threads: int | None  # torch intra-op CPU threads; None: auto, the fastest of a short probe (CPU cells)
    budget: Budget
    lr: float  # SGD learning rate
    momentum: float = MOMENTUM  # SGD momentum
    seed: int = SEED  # seeds weights, shuffling and synthetic data
    eval_points: int = EVAL_POINTS  # accuracy checkpoints across the budget; 0 = no evaluation
    warmup_steps: int = WARMUP_STEPS  # steps before the clock, undone afterwards
    workers: int = WORKERS  # DataLoader worker processes (tutorial pipeline)
    tune: tuple[str, ...] = ()  # tuned-path options (bench.variants.OPTIONS); () = eager, as in the tutorial
    variant: str = ""  # the --tune variant asked for ("" eager, "fast", "amp+channels_last"): groups devices

    def __post_init__(self):
        for name in ("dataset", "device"):
            if not (isinstance(getattr(self, name), str) and getattr(self, name)):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        if not isinstance(self.variant, str):
            raise ValueError(f"variant must be a string (the --tune variant), got {self.variant!r}")
        if not isinstance(self.tune, (tuple, list)) or not all(isinstance(t, str) for t in self.tune):
            raise ValueError(f"tune must be a list of option names, got {self.tune!r}")
        object.__setattr__(self, "tune", tuple(sorted(set(self.tune))))
        for option in self.tune:
            if option not in OPTIONS:
                raise ValueError(f"tune option {option!r} is unknown: use {', '.join(OPTIONS)}")
        if self.pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be one of {', '.join(PIPELINES)}, got {self.pipeline!r}")
        _positive_int("batch_size", self.batch_size)
        if self.threads is not None:
            _positive_int("threads", self.threads)
        if not (is_number(self.width) and is_finite(self.width) and self.width > 0):
            raise ValueError(f"width must be a positive number, got {_short(self.width)}")
        object.__setattr__(self, "width", float(self.width))  # width 1 and 1.0 are one cell, with one key
        if not (is_number(self.lr) and is_finite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {_short(self.lr)}")
        if not (is_number(self.momentum) and is_finite(self.momentum) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {_short(self.momentum)}")
        for name in ("eval_points", "warmup_steps", "workers", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
                raise ValueError(f"{name} must be a whole number from 0 to 2^63 - 1, got {_short(value)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["budget"] = str(self.budget)
        d["tune"] = list(self.tune)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CellConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["budget"] = Budget.parse(known["budget"])
        known["tune"] = tuple(known.get("tune") or ())
        return cls(**known)

    def to_json_value(self) -> dict:
        return self.to_dict()

    @classmethod
    def from_json_value(cls, value, path: str) -> "CellConfig":
        """A record's cell, read back; anything that is not a valid cell is a ValueError naming the field."""
        if not isinstance(value, dict):
            raise ValueError(f"{path} must be an object")
        try:
            return cls.from_dict(value)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ValueError(f"{path} is not a valid cell configuration ({type(exc).__name__}: {exc})") from None

    @property
    def key(self) -> str:
        """A stable id of what this cell measures; equal configs give equal keys (used to resume)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        w = int(self.width) if self.width == int(self.width) else self.width
        tuned = f" {'+'.join(self.tune)}" if self.tune else ""
        threads = "t-auto" if self.threads is None else f"t{self.threads}"
        return f"{self.device} {self.pipeline} bs{self.batch_size} w{w} {threads}{tuned}"


def is_number(value) -> bool:
    """An int or float that is not a bool (JSON true is not a count)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite(value) -> bool:
    """A finite number, as a float too (a 400-digit integer is not: it has no float)."""
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_COUNT:
        raise ValueError(f"{name} must be a whole number from 1 to 2^63 - 1, got {_short(value)}")


MAX_COUNT = 2**63 - 1  # a count numpy and torch can hold


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


@dataclass(frozen=True)
class RunConfig:
    """A grid: every combination of the listed devices, pipelines, batch sizes, widths and thread counts."""

    dataset: str
    devices: tuple[str, ...]
    configs: tuple[tuple[str, int], ...]  # (pipeline, batch size) pairs
    widths: tuple[float, ...]
    threads: tuple[int | None, ...]  # torch CPU threads (None: auto); varied on CPU cells only, see cells()
    budget: Budget
    lr: float | None = None  # None: default_lr(batch_size)
    momentum: float = MOMENTUM
    seed: int = SEED
    eval_points: int = EVAL_POINTS
    warmup_steps: int = WARMUP_STEPS
    workers: int = WORKERS
    tunes: tuple[tuple[str, ...], ...] = ((),)  # tuned-path variants; () = eager; ("fast",) resolves per cell
    # Facts about the machine, not the cells: they never enter a cell's key, so --resume finds cells either way.
    cpu_watts: float | None = None  # W, the CPU's average draw while training, where RAPL cannot be read
    gpu_watts: float | None = None  # W, the GPU's, where NVML cannot be read

    def __post_init__(self):
        for name in ("devices", "configs", "widths", "threads", "tunes"):
            if not getattr(self, name):
                raise ValueError(f"{name} is empty: give at least one value")
        for name in ("cpu_watts", "gpu_watts"):
            value = getattr(self, name)
            if value is not None and not (is_number(value) and 0 < value <= MAX_WATTS):
                raise ValueError(f"--{name.replace('_', '-')} must be a number of watts above 0 and at most "
                                 f"{MAX_WATTS:g}, got {value!r}")

    def cells(self) -> list[CellConfig]:
        """The grid, devices outermost. Thread counts vary only on the CPU: a GPU cell runs once, with the
        largest thread count listed (auto: all cores, unprobed), rather than repeating identical GPU work per CPU
        setting. A value listed twice (--batch-size 4,4) gives one cell: a cell is identified by its key."""
        out: dict[str, CellConfig] = {}
        grid = itertools.product(self.devices, self.configs, self.widths, self.tunes)
        for device, (pipeline, batch), width, tune in grid:
            counts = [t for t in self.threads if t is not None]
            thread_list = self.threads if device == "cpu" else (max(counts) if counts else None,)
            for threads in thread_list:
                cell = CellConfig(
                    dataset=self.dataset, device=device, pipeline=pipeline, batch_size=batch, width=width,
                    threads=threads, budget=self.budget, lr=self.lr if self.lr is not None else default_lr(batch),
                    momentum=self.momentum, seed=self.seed, eval_points=self.eval_points,
                    warmup_steps=self.warmup_steps, workers=self.workers, tune=resolve(tune, device, pipeline),
                    variant="+".join(tune),
                )
                out.setdefault(cell.key, cell)  # the first of equal cells wins, in grid order
        return list(out.values())
