"""Everything that differs between devices: which exist, their names, synchronization, memory and step clocks.

No other module calls torch.cuda or torch.mps directly; the CPU path never synchronizes anything.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import resource
import time
from typing import Callable, Iterator

import torch

from bench.errors import UserError
from bench.records import Memory
from bench.variants import kind

Clock = Callable[[], float]  # seconds, monotonic


def available() -> list[str]:
    """cpu, then every CUDA device, then MPS when this machine has them."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def canonical(text: str) -> str:
    """'cuda' -> 'cuda:0', 'CPU ' -> 'cpu'; a string torch does not know is bad input."""
    spec = text.strip().lower()
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise UserError(
            f"unknown device {text.strip()!r}: use auto or a comma list of cpu, cuda, cuda:N, mps "
            f"(this machine has {', '.join(available())})"
        ) from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"device {text.strip()!r} is not supported: use cpu, cuda, cuda:N or mps")
    if dev.type == "cuda":
        return f"cuda:{dev.index or 0}"
    return dev.type


def parse(spec: str) -> list[str]:
    """Parse --devices: 'auto' or a comma list; duplicates are dropped, order kept."""
    if spec.strip().lower() == "auto":
        return available()
    parts = [p for p in spec.split(",") if p.strip()]
    if not parts:
        raise UserError("--devices is empty: use auto or a comma list such as cpu,cuda:0")
    out: list[str] = []
    for part in parts:
        dev = canonical(part)
        if dev not in out:
            out.append(dev)
    return out


def is_present(device: str) -> bool:
    return device in available()


def synchronize(device: str) -> None:
    """Wait for the device's queued work; a no-op on the CPU, where work is synchronous."""
    k = kind(device)
    if k == "cuda":
        torch.cuda.synchronize(device)
    elif k == "mps":
        torch.mps.synchronize()


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def name(device: str) -> str:
    """A human name: the CPU model, or the GPU's name."""
    k = kind(device)
    if k == "cuda":
        return torch.cuda.get_device_name(device)
    if k == "mps":
        return f"Apple {platform.machine()} GPU (MPS)"
    return cpu_model()


def uuid(device: str) -> str | None:
    """A CUDA device's UUID (names the same GPU for NVML, which orders GPUs differently); None elsewhere."""
    if kind(device) != "cuda":
        return None
    with contextlib.suppress(AttributeError, RuntimeError):  # torch builds before 2.1 have no uuid
        return str(torch.cuda.get_device_properties(device).uuid)
    return None


def reset_peak_memory(device: str) -> None:
    if kind(device) == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: str) -> Memory:
    """The high-water mark of memory, and what it measures (not the same thing on every device)."""
    k = kind(device)
    if k == "cuda":
        return Memory(int(torch.cuda.max_memory_allocated(device)), "cuda max_memory_allocated")
    if k == "mps":
        return Memory(int(torch.mps.driver_allocated_memory()), "mps driver_allocated_memory")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if platform.system() == "Darwin" else 1024  # Linux reports KiB, macOS bytes
    return Memory(int(rss * scale), "process max RSS (whole process, not per cell)")


def release_memory(device: str) -> None:
    """Free what nothing references any more and empty the allocator cache, e.g. after an out-of-memory
    error, so the next cell starts clean."""
    gc.collect()  # tensors caught in reference cycles (a failed step's autograd graph) go first
    k = kind(device)
    if k == "cuda":
        torch.cuda.empty_cache()
    elif k == "mps":
        torch.mps.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """A device's or the host's allocator refused memory (torch reports the CPU's as a RuntimeError)."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count for the block (None: all cores), then restore it."""
    before = torch.get_num_threads()
    torch.set_num_threads(n if n is not None else default_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_threads() -> int:
    """All cores this process may use (not torch.utils.benchmark's silent default of 1)."""
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class StepClock:
    """Per-step times within a block of steps; the host clock is read only at block boundaries.

    Call start_block(), then mark() after every step, then finish_block(), which returns the
    per-step seconds and the block's wall seconds. The device is synchronized before each host
    clock read, so the block's seconds include all queued work.
    """

    source = "host"

    def __init__(self, device: str, clock: Clock = time.perf_counter):
        self.device = device
        self.clock = clock
        self._t0 = 0.0
        self._marks: list[float] = []

    def start_block(self) -> None:
        synchronize(self.device)
        self._t0 = self.clock()
        self._marks = [self._t0]

    def mark(self) -> None:
        self._marks.append(self.clock())

    def finish_block(self) -> tuple[list[float], float]:
        synchronize(self.device)
        t1 = self.clock()
        marks = self._marks
        steps = [b - a for a, b in zip(marks, marks[1:])]
        return steps, t1 - self._t0


class EventStepClock(StepClock):
    """Per-step times from events recorded in the device's stream: no synchronize inside the block.

    A synchronize every step would serialize host and device and distort exactly what we measure;
    events record when the stream reaches each step boundary instead.
    """

    source = "events"

    def __init__(self, device: str, clock: Clock = time.perf_counter, event_factory=None):
        super().__init__(device, clock)
        self._event_factory = event_factory or _event_factory(device)
        self._pool: list = []
        self._used = 0

    def _next_event(self):
        if self._used == len(self._pool):
            self._pool.append(self._event_factory())
        event = self._pool[self._used]
        self._used += 1
        return event

    def start_block(self) -> None:
        super().start_block()
        self._used = 0
        self._next_event().record()

    def mark(self) -> None:
        self._next_event().record()

    def finish_block(self) -> tuple[list[float], float]:
        synchronize(self.device)
        t1 = self.clock()
        events = self._pool[: self._used]
        steps = [a.elapsed_time(b) / 1000.0 for a, b in zip(events, events[1:])]  # elapsed_time is in ms
        return steps, t1 - self._t0


def _event_factory(device: str):
    k = kind(device)
    if k == "cuda":
        index = torch.device(device).index or 0

        def make():
            with torch.cuda.device(index):
                return torch.cuda.Event(enable_timing=True)

        return make
    if k == "mps":
        return lambda: torch.mps.event.Event(enable_timing=True)
    raise ValueError(f"no device events on {device}")


def step_clock(device: str, clock: Clock = time.perf_counter) -> StepClock:
    """The right step clock for the device: events on CUDA (and MPS where torch has them), host clock on the CPU."""
    k = kind(device)
    if k == "cuda" or (k == "mps" and hasattr(torch.mps, "event")):
        return EventStepClock(device, clock)
    return StepClock(device, clock)
