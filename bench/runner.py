"""Running a grid: every cell in turn on its device, each record written the moment its cell ends."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace
from typing import Protocol

from bench import devices
from bench.breakdown import profile_step
from bench.config import CellConfig, RunConfig
from bench.data import Dataset
from bench.devices import Clock
from bench.env import environment
from bench.records import Record
from bench.results import RecordWriter
from bench.train import dataset_facts, train


class Hooks(Protocol):
    """What the caller sees of a run in progress (the CLI draws progress bars with it)."""

    def cell_started(self, cell: CellConfig, index: int, count: int) -> None: ...
    def progress(self, done: float, total: float, note: str) -> None: ...
    def cell_finished(self, record: Record) -> None: ...


def unavailable(cell: CellConfig, data: Dataset, env: dict, run_id: str) -> Record:
    return Record(cell=cell.to_dict(), status="unavailable", run_id=run_id,
                  created_utc=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), env=env,
                  message=f"{cell.device} is not present on this machine (present: {', '.join(devices.available())})",
                  dataset=dataset_facts(data))


def run(config: RunConfig, data: Dataset, writer: RecordWriter, hooks: Hooks | None = None,
        clock: Clock = time.perf_counter, breakdown: bool = True) -> list[Record]:
    """Train every cell of the grid and append its record to the writer; returns the records in order.

    With breakdown, every ok cell also gets a step-time breakdown (bench.breakdown) from a separate
    profiling pass after its timed training, stored in the record's profile."""
    env = environment()
    run_id = writer.dir.name
    present = set(devices.available())
    cells = config.cells()
    records = []
    for i, cell in enumerate(cells):
        if hooks:
            hooks.cell_started(cell, i, len(cells))
        if cell.device in present:
            record = train(cell, data, env, run_id, clock=clock, progress=hooks.progress if hooks else None)
        else:
            record = unavailable(cell, data, env, run_id)
        if breakdown and record.status == "ok":
            record = replace(record, profile=profile_step(cell, data))  # after the timed run: timings untouched
        writer.append(record)
        records.append(record)
        if hooks:
            hooks.cell_finished(record)
    return records
