"""Energy per device over the timed region: NVML and RAPL counters read off the clock, a user's watts, or why not.

    meter = energy.meter_for("cuda:0", synchronize=lambda: devices.synchronize("cuda:0"))
    meter.start(); <one timed block>; meter.stop()   # around every block, outside its host clock reads
    meter.result()  # {"cuda:0": {"method": "nvml", "joules": ...}, "cpu": {"method": "unavailable", "reason": ...}}

Every figure says how it was obtained (method, source, reason), as Zeus and Eco2AI label theirs; nothing is guessed
silently. No counter: `unavailable` with the reason, or an `estimate` from the user's watts; a readable counter wins
over the watts. No torch: the caller passes its synchronize; pynvml (nvidia-ml-py) is imported only for a GPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Mapping

from bench.method import NVML_MIN_SECONDS  # a shorter total of windows is mostly NVML's refresh step
from bench.records import ENERGY_METHODS as METHODS  # the record checks these names; one list, there
POWERCAP = "/sys/class/powercap"
Clock = Callable[[], float]  # seconds, monotonic
RAPL_MAX_WATTS = 1000.0  # W; a bound on a package's draw (Zeus uses the same) to tell when a wrap could hide
_PACKAGE_ZONE = re.compile(r"intel-rapl:(\d+)")  # top level only: intel-rapl:N:M are its core/uncore/dram parts


class Unavailable(Exception):
    """A counter cannot be read here; the message is the one-line reason the record keeps."""


class RaplCounter:
    """The CPU packages' energy from Linux powercap (RAPL): the sum of the top-level zones named package-N[-die-M].

    Subdomains intel-rapl:N:M (core, uncore, dram) would count twice or count memory, psys is the platform and
    intel-rapl-mmio:N repeats a package. AMD CPUs appear under these intel-rapl names too (there is no amd-rapl
    zone). A package is the whole socket: every process on it, not only this one."""

    method = "rapl"

    def __init__(self, root: str | Path = POWERCAP, read_text: Callable[[Path], str] | None = None):
        self._read_text = read_text or Path.read_text  # tests pass one that raises PermissionError (root reads all)
        self.root = Path(root)
        try:
            entries = list(self.root.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            raise Unavailable(f"no RAPL counters at {self.root} (a virtual machine usually has none)") from None
        except OSError as exc:
            raise Unavailable(f"cannot list {self.root}: {exc.strerror or exc}") from None
        zones = sorted((int(m.group(1)), p) for p in entries if (m := _PACKAGE_ZONE.fullmatch(p.name)))
        self._files, self._ranges, names = [], [], []  # energy_uj, the µJ at which it wraps to zero, package name
        for _, zone in zones:
            name = self._text(zone / "name")
            if name.startswith("package-"):  # not psys, which includes the packages
                names.append(name)
                self._files.append(zone / "energy_uj")
                self._ranges.append(self._int(zone / "max_energy_range_uj"))
        if not names:
            raise Unavailable(f"no RAPL package zones at {self.root} (found {len(zones)} other intel-rapl zones)")
        self.source = f"RAPL {', '.join(names)} (whole socket, every process; not DRAM)"
        self.read()  # energy_uj is root-only since CVE-2020-8694: find out now, not in the middle of a run
        # one wrap per window is corrected; in a window longer than this a second one could hide
        self.max_window_s = min(self._ranges) / 1e6 / RAPL_MAX_WATTS

    def _text(self, path: Path) -> str:
        try:
            return self._read_text(path).strip()
        except PermissionError:
            raise Unavailable(
                f"cannot read {path}: RAPL energy is root-only since Linux 5.10 (CVE-2020-8694); run as root, or "
                f"`sudo chmod a+r {self.root}/intel-rapl:*/energy_uj` (lasts until reboot)") from None
        except OSError as exc:
            raise Unavailable(f"cannot read {path}: {exc.strerror or exc}") from None

    def _int(self, path: Path) -> int:
        text = self._text(path)
        if not text.isdigit():
            raise Unavailable(f"{path} holds {text[:40]!r}, not a count of microjoules")
        return int(text)

    def read(self) -> tuple[int, ...]:
        return tuple(self._int(f) for f in self._files)

    def joules(self, start: tuple[int, ...], end: tuple[int, ...], seconds: float) -> float:
        # a counter that wrapped at max_energy_range_uj reads lower than before: % adds the range back, once
        return sum((after - before) % span for before, after, span in zip(start, end, self._ranges)) / 1e6


class NvmlCounter:
    """One NVIDIA GPU's total energy counter (NVML, Volta and later): millijoules since the driver loaded.

    NVML refreshes it every 20-100 ms, so each read is up to one refresh late. Back-to-back windows share that
    lateness and it cancels in their sum; what is left is up to one refresh of power at each gap between windows
    (the evaluations) and at the two ends, hence a total that should be seconds long. CUDA orders GPUs fastest
    first, NVML by PCI bus: a uuid (torch's device properties have it) names the same GPU for both."""

    method = "nvml"  # its 64-bit count of millijoules never wraps

    def __init__(self, index: int = 0, uuid: str | None = None, environ: Mapping[str, str] = os.environ):
        try:
            import pynvml  # nvidia-ml-py; optional, so only a GPU cell needs it
        except ImportError:
            raise Unavailable("nvidia-ml-py is not installed (pip install nvidia-ml-py)") from None
        self._nvml = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise Unavailable(f"NVML could not start ({exc}): no NVIDIA driver loaded?") from None
        try:
            target = _nvml_uuid(uuid) if uuid else _visible(index, environ)
            self._handle = (pynvml.nvmlDeviceGetHandleByUUID(target) if isinstance(target, str)
                            else pynvml.nvmlDeviceGetHandleByIndex(target))
            name = pynvml.nvmlDeviceGetName(self._handle)
            self.source = f"NVML total energy, GPU {target} ({name.decode() if isinstance(name, bytes) else name})"
            self.read()  # a GPU older than Volta has no counter: find out now
        except (pynvml.NVMLError, Unavailable) as exc:
            self.close()
            if isinstance(exc, Unavailable):
                raise
            raise Unavailable(f"NVML cannot open GPU {uuid or index}: {exc}") from None

    def read(self) -> int:
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except self._nvml.NVMLError as exc:
            if getattr(exc, "value", None) == getattr(self._nvml, "NVML_ERROR_NOT_SUPPORTED", 3):
                raise Unavailable(f"{self.source}: not supported on this GPU (Volta or newer has it); "
                                  f"--gpu-watts W gives an estimate") from None
            raise Unavailable(f"{self.source}: {exc}") from None

    def joules(self, start: int, end: int, seconds: float) -> float:
        return (end - start) / 1000.0

    def close(self) -> None:
        with contextlib.suppress(self._nvml.NVMLError):  # NVML counts its inits: one shutdown for each
            self._nvml.nvmlShutdown()


def _visible(index: int, environ: Mapping[str, str]) -> int | str:
    """NVML's index (or UUID) for CUDA's device `index`, through CUDA_VISIBLE_DEVICES as Zeus reads it."""
    spec = environ.get("CUDA_VISIBLE_DEVICES")
    if spec is None:
        return index
    entries = [e.strip() for e in spec.split(",") if e.strip()]
    if index >= len(entries):
        raise Unavailable(f"cuda:{index} is not among CUDA_VISIBLE_DEVICES={spec}")
    return int(entries[index]) if entries[index].isdigit() else _nvml_uuid(entries[index])


def _nvml_uuid(text: str) -> str:
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"  # torch prints the UUID bare


@dataclass(frozen=True)
class Estimate:
    """A user-supplied average power: joules = watts x window seconds, labelled an estimate, never measured."""

    watts: float  # W, the device's average draw while training, as the user measured or looked it up
    flag: str = "--cpu-watts"  # the option it came from, named in the reason
    unmeasured: str = ""  # why no counter was read instead
    method: ClassVar[str] = "estimate"

    def __post_init__(self):
        if isinstance(self.watts, bool) or not isinstance(self.watts, (int, float)) or not 0 < self.watts < math.inf:
            raise ValueError(f"{self.flag} must be a positive number of watts, got {self.watts!r}")

    @property
    def source(self) -> str:
        return f"{self.flag} {self.watts:g}"

    @property
    def reason(self) -> str:
        return f"user-supplied {self.watts:g} W ({self.flag}) x seconds, not measured" + (
            f": {self.unmeasured}" if self.unmeasured else "")

    def joules(self, start, end, seconds: float) -> float:
        return self.watts * seconds


@dataclass(frozen=True)
class Missing:
    """No figure for a device, and why."""

    reason: str
    source: str = ""
    method: ClassVar[str] = "unavailable"

    def joules(self, start, end, seconds: float) -> None:
        return None


class Meter:
    """Energy per device summed over windows. Call start() before a timed block's first host clock read and stop()
    after its last, so the counter reads stay off the clock; both synchronize first, so queued work lands in its
    window. A counter that fails mid-run loses its figure, not the run."""

    def __init__(self, sources: dict, synchronize: Callable[[], None] | None = None,
                 clock: Clock = time.perf_counter, unused: dict[str, Estimate] | None = None):
        self.sources = dict(sources)
        self._sync = synchronize or (lambda: None)
        self._clock = clock
        self._unused = dict(unused or {})  # the user's watts for a device whose counter was read instead
        self._open: tuple[float, dict] | None = None
        self._seconds: list[float] = []
        self._joules: dict[str, list] = {d: [] for d in self.sources}

    def _read_all(self) -> dict:
        readings = {}
        for device, source in self.sources.items():
            try:
                readings[device] = getattr(source, "read", lambda: None)()  # Estimate and Missing have no counter
            except Unavailable as exc:
                self.sources[device] = Missing(f"stopped after {len(self._seconds)} windows: {exc}", source.source)
                readings[device] = None
        return readings

    def start(self) -> None:
        if self._open is not None:
            raise RuntimeError("Meter.start() called twice without stop()")
        self._sync()
        self._open = (self._clock(), self._read_all())

    def stop(self) -> None:
        if self._open is None:
            raise RuntimeError("Meter.stop() called without start()")
        self._sync()
        t1, end = self._clock(), self._read_all()
        (t0, begin), self._open = self._open, None
        self._seconds.append(t1 - t0)
        for device, source in self.sources.items():
            self._joules[device].append(source.joules(begin[device], end[device], t1 - t0))

    def result(self) -> dict[str, dict]:
        """Per device: method, joules, seconds, watts, windows, window_joules, source, reason, note."""
        seconds = sum(self._seconds)
        out = {}
        for device, source in self.sources.items():
            known = source.method != "unavailable"
            joules = sum(self._joules[device]) if known else None
            out[device] = {
                "method": source.method, "joules": joules, "seconds": seconds,
                "watts": joules / seconds if joules is not None and seconds > 0 else None,
                "windows": len(self._seconds), "window_joules": list(self._joules[device]) if known else [],
                "source": source.source, "reason": getattr(source, "reason", ""),
                "note": "; ".join(self._notes(device, source, seconds)),
            }
        return out

    def _notes(self, device: str, source, seconds: float) -> list[str]:
        notes = []
        if source.method == "nvml" and seconds < NVML_MIN_SECONDS:
            notes.append(f"{seconds:.2f} s in all, under {NVML_MIN_SECONDS:g} s: NVML refreshes every 20-100 ms")
        longest, limit = max(self._seconds, default=0.0), getattr(source, "max_window_s", math.inf)
        if longest > limit:
            notes.append(f"a window of {longest:.3g} s is longer than {limit:.3g} s, in which the "
                         f"counter could wrap twice at {RAPL_MAX_WATTS:g} W and one wrap would go uncounted")
        if (est := self._unused.get(device)) and source.method != "unavailable":
            notes.append(f"{est.source} not used: measured by {source.method} ({est.watts * seconds:.4g} J if used)")
        return notes

    def close(self) -> None:
        for source in self.sources.values():
            getattr(source, "close", lambda: None)()


def meter_for(device: str, *, synchronize: Callable[[], None] | None = None, cpu_watts: float | None = None,
              gpu_watts: float | None = None, gpu_uuid: str | None = None, powercap: str | Path = POWERCAP,
              clock: Clock = time.perf_counter, environ: Mapping[str, str] = os.environ) -> Meter:
    """The meter for a cell on `device`: cpu gets RAPL, else --cpu-watts, else unavailable. cuda:N gets NVML, else
    --gpu-watts, else unavailable, plus "cpu" (the host packages: a launch-bound GPU keeps a core busy), RAPL or
    unavailable; --cpu-watts describes a CPU cell's training, not a GPU cell's host. mps reads no counter."""
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda", "mps"):
        raise ValueError(f"no energy meter for device {device!r}: use cpu, cuda:N or mps")
    if kind != "cpu" and synchronize is None:
        raise ValueError(f"meter_for({device!r}) needs synchronize=, or queued GPU work spills out of its window")
    cpu_est, gpu_est = (Estimate(w, flag) if w is not None else None
                        for w, flag in ((cpu_watts, "--cpu-watts"), (gpu_watts, "--gpu-watts")))

    def counter(name: str):
        if name == "cpu":
            return RaplCounter(powercap)
        if kind == "cuda":
            return NvmlCounter(int(index or 0), gpu_uuid, environ)
        raise Unavailable("no energy counter is read on Apple GPUs")  # powermetrics needs root, and only samples

    sources, unused = {}, {}
    for name, watts in [(device, cpu_est if kind == "cpu" else gpu_est)] + ([("cpu", None)] if kind != "cpu" else []):
        try:
            sources[name] = counter(name)
        except Unavailable as exc:
            sources[name] = dataclasses.replace(watts, unmeasured=str(exc)) if watts else Missing(str(exc))
        else:
            if watts:
                unused[name] = watts
    return Meter(sources, synchronize, clock, unused)
