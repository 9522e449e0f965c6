"""Running a grid: every cell in turn on its device, each record on disk the moment its cell ends; resumable."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from bench import devices, signals
from bench.breakdown import profile_step
from bench.config import CellConfig, RunConfig
from bench.data import Dataset
from bench.devices import Clock
from bench.env import environment
from bench.errors import Terminated, UserError, one_line
from bench.records import Environment, Record
from bench.reading import read_records
from bench.writer import RecordWriter
from bench.train import dataset_facts, train


class Hooks(Protocol):
    """What the caller sees of a run in progress (the CLI draws progress bars with it)."""

    def cell_started(self, cell: CellConfig, index: int, count: int) -> None: ...
    def progress(self, done: float, total: float, note: str) -> None: ...
    def cell_finished(self, record: Record) -> None: ...
    # optional: cell_stopped(cell, reason), when a cell ends without a record (Ctrl-C, a fault)


class RunStopped(Exception):
    """The run ended before its last cell. Every finished cell's record is on disk; the cell in progress has
    none, so resuming (same arguments, same results folder) measures it and the cells after it."""

    def __init__(self, reason: str, cell: CellConfig | None, index: int, count: int, finished: int, path: Path,
                 recorded: bool = False):
        self.reason, self.cell, self.index, self.count = reason, cell, index, count
        self.finished, self.path, self.recorded = finished, path, recorded
        super().__init__(str(self))

    def where(self) -> str:
        if self.cell is None:
            return "its first cell"
        return f"cell {self.index + 1} of {self.count} ({self.cell.label})"

    def kept(self) -> str:
        return f"{self.finished} of {self.count} cells are recorded in {self.path}"


class Interrupted(RunStopped):
    """Ctrl-C (KeyboardInterrupt) or SIGTERM (Terminated) during a run."""

    def __str__(self) -> str:
        verb = "terminated (SIGTERM)" if self.reason == "SIGTERM" else "interrupted"
        if self.cell is None:
            return f"{verb} before {self.where()}; {self.kept()}"
        if self.recorded:  # the signal came as the cell's record landed: the record stands
            return f"{verb} after {self.where()}, which is recorded; {self.kept()}"
        return f"{verb} during {self.where()}, which is dropped; {self.kept()}"


class CellFailed(RunStopped):
    """A fault that says nothing about the cell itself, so no record describes it: a DataLoader worker died,
    the device went away. Out of memory and divergence are not faults: they are the cell's record."""

    def __str__(self) -> str:
        return f"{self.where()} failed and has no record ({self.reason}); {self.kept()}"


@dataclass(frozen=True)
class Plan:
    """What a run measures: the grid, minus (on resume) the cells that already have a record in the folder."""

    cells: tuple[CellConfig, ...]  # the whole grid, in order
    done: tuple[Record, ...] = ()  # records already in the results file for cells of this grid, one per cell
    other: int = 0  # records in the results file for cells outside this grid (left alone)
    warnings: tuple[str, ...] = ()  # from reading the results file (e.g. a torn last line)

    @property
    def todo(self) -> list[CellConfig]:
        done = {r.key for r in self.done}
        return [c for c in self.cells if c.key not in done]

    def describe(self, path: Path) -> str:
        """One line for a resumed run."""
        others = f"; {self.other} records there are from other arguments and are left alone" if self.other else ""
        return (f"resuming {path}: skipping {len(self.done)} of {len(self.cells)} cells that already have a record, "
                f"measuring the other {len(self.todo)}{others}")


def plan(config: RunConfig, data: Dataset, path: Path, resume: bool = False) -> Plan:
    """Check the grid against the data and, when resuming, against the records already in `path`.

    Resume skips every cell whose key (CellConfig.key: everything the cell measures) already has a record,
    whatever its status: an oom or diverged cell is a result, not a gap. A folder whose records are all from
    other arguments is refused: resuming it would start a second, unrelated grid there.
    """
    cells = tuple(config.cells())
    train_size = len(data.train_labels)
    for cell in cells:
        if cell.batch_size > train_size:
            raise UserError(f"--batch-size {cell.batch_size} is larger than the {train_size} training images of "
                            f"{data.name}: choose at most {train_size}")
    if not resume:
        return Plan(cells)
    if not path.is_file():
        raise UserError(f"--resume: {path} does not exist, so there is nothing to resume; give the --out of the "
                        f"run to resume, or drop --resume to start a new run")
    warnings: list[str] = []
    existing = read_records(path, warnings)
    by_key = {c.key: c for c in cells}
    done: dict[str, Record] = {}
    other = 0
    for r in existing:
        key = r.key
        if key in by_key:
            done.setdefault(key, r)
        else:
            other += 1
    if existing and not done:
        raise UserError(f"--resume: none of the {len(existing)} records in {path} is a cell of this grid, so they "
                        f"come from other arguments; give the same arguments as the run you are resuming, "
                        f"or drop --resume")
    return Plan(cells, tuple(done.values()), other, tuple(warnings))


def unavailable(cell: CellConfig, data: Dataset, env: Environment, run_id: str) -> Record:
    return Record(cell=cell, status="unavailable", run_id=run_id,
                  created_utc=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), env=env,
                  message=f"{cell.device} is not present on this machine (present: {', '.join(devices.available())})",
                  dataset=dataset_facts(data))


def measure(cell: CellConfig, data: Dataset, env: Environment, run_id: str, *, clock: Clock = time.perf_counter,
            progress=None, breakdown: bool = True, train_cell=None, cpu_watts: float | None = None,
            gpu_watts: float | None = None) -> Record:
    """One cell, as every executor measures it: trained (or recorded unavailable when its device is not present
    in this process), then, when ok and asked for, its step-time breakdown from a separate profiling pass.
    Faults propagate as train() raises them; `train_cell` replaces train() (tests inject faults with it)."""
    if cell.device in devices.available():
        record = (train_cell or train)(cell, data, env, run_id, clock=clock, progress=progress, cpu_watts=cpu_watts,
                                       gpu_watts=gpu_watts)
    else:
        record = unavailable(cell, data, env, run_id)
    if breakdown and record.status == "ok":
        # after the timed run, so it leaves the timed numbers untouched; at the threads they ran with
        record = replace(record, profile=profile_step(replace(cell, threads=record.timing.threads), data))
    return record


def run(config: RunConfig, data: Dataset, writer: RecordWriter, hooks: Hooks | None = None,
        clock: Clock = time.perf_counter, *, plan: Plan | None = None, train_cell=None,
        breakdown: bool = True) -> list[Record]:
    """Train every cell of the plan (default: the whole grid) and append each record to the writer the moment
    its cell ends; returns the new records in order.

    With breakdown, every ok cell also gets a step-time breakdown (bench.breakdown) from a separate profiling
    pass after its timed training, stored in the record's profile.
    Ctrl-C or SIGTERM, at any moment, raises Interrupted, and a fault (RuntimeError or OSError: a dead
    DataLoader worker, a lost device, a disk too full for the record) raises CellFailed; either way the cell in
    progress is dropped and the finished records stay on disk. A cell's record is written with both signals
    held (bench.signals.deferred), so it lands whole and counted, or not at all.
    `train_cell` replaces train() (tests inject faults with it).
    """
    p = plan if plan is not None else Plan(tuple(config.cells()))
    todo = {c.key for c in p.todo}
    state = {"cell": None, "index": -1, "recorded": False, "finished": len(p.done)}
    records: list[Record] = []

    def progress(done: float, total: float, note: str) -> None:
        signals.check()  # a Ctrl-C whose exception something swallowed stops the cell at its next block
        if hooks:
            hooks.progress(done, total, note)

    try:
        env = environment()
        run_id = writer.dir.name
        for i, cell in enumerate(p.cells):
            if cell.key not in todo:
                continue
            state.update(cell=cell, index=i, recorded=False)
            try:
                signals.check()
                if hooks:
                    hooks.cell_started(cell, i, len(p.cells))
                record = measure(cell, data, env, run_id, clock=clock, progress=progress, breakdown=breakdown,
                                 train_cell=train_cell, cpu_watts=config.cpu_watts, gpu_watts=config.gpu_watts)
                signals.check()
                with signals.deferred():  # the record and its count land together: a signal waits for both
                    writer.append(record)
                    records.append(record)
                    state.update(recorded=True, finished=state["finished"] + 1)
            except (RuntimeError, OSError) as exc:
                _stopped(hooks, cell, "failed")
                raise CellFailed(one_line(exc), cell, i, len(p.cells), state["finished"], writer.path) from exc
            if hooks:
                hooks.cell_finished(record)
    except KeyboardInterrupt as exc:
        if state["cell"] is not None and not state["recorded"]:
            _stopped(hooks, state["cell"], "interrupted")
        raise Interrupted("SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C", state["cell"], state["index"],
                          len(p.cells), state["finished"], writer.path, state["recorded"]) from None
    return records


def _stopped(hooks, cell: CellConfig, reason: str) -> None:
    stop = getattr(hooks, "cell_stopped", None)
    if stop is not None:
        stop(cell, reason)
