"""How busy the machine was while a cell ran: the CPU time other processes used, the time a hypervisor stole,
and the load average before and after, so a report can say when its numbers come from a busy machine.

    meter = LoadMeter(); meter.start(); ...the cell...; facts = meter.stop()
"""

from __future__ import annotations

import os
import time

import psutil

from bench.records import Load


def _busy_and_steal(times) -> tuple[float, float, float]:
    """(seconds any CPU was busy, seconds stolen, total seconds) summed over every CPU."""
    total = sum(times)
    idle = times.idle + getattr(times, "iowait", 0.0)
    steal = getattr(times, "steal", 0.0)
    return total - idle - steal, steal, total


def _own_seconds(process: psutil.Process) -> float:
    """CPU seconds used by this process and its children, living (DataLoader workers) or finished."""
    t = process.cpu_times()
    seconds = t.user + t.system + t.children_user + t.children_system
    for child in process.children(recursive=True):
        try:
            c = child.cpu_times()
            seconds += c.user + c.system
        except psutil.Error:  # a worker that ended between the listing and the reading
            pass
    return seconds


class LoadMeter:
    """Reads the system's and this process's CPU counters at the start and the end of a cell."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.process = psutil.Process()
        self.cores = psutil.cpu_count() or 1
        self._start = None

    def _read(self):
        return self.clock(), _busy_and_steal(psutil.cpu_times()), _own_seconds(self.process), os.getloadavg()[0]

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> Load:
        if self._start is None:
            raise RuntimeError("LoadMeter.stop() before start()")
        (t0, (busy0, steal0, total0), own0, avg0), (t1, (busy1, steal1, total1), own1, avg1) = self._start, self._read()
        wall = max(t1 - t0, 1e-9)
        others = max(0.0, (busy1 - busy0) - (own1 - own0)) / (wall * self.cores)
        stolen = (steal1 - steal0) / max(total1 - total0, 1e-9)
        return Load(cores=self.cores, others_cpu=min(1.0, others), steal=min(1.0, max(0.0, stolen)),
                    loadavg_before=avg0, loadavg_after=avg1, seconds=wall)
