"""Progress bars for `bench run` (tqdm on stderr): one bar per cell."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

from bench import signals
from bench.config import CellConfig
from bench.records import Record


class Bars:
    """Runner hooks that draw a bar per cell and a one-line outcome when the cell ends."""

    def __init__(self, enabled: bool = True, stream=sys.stderr):
        self.enabled = enabled
        self.stream = stream
        self.bar = None
        self.unit = ""

    def cell_started(self, cell: CellConfig, index: int, count: int) -> None:
        if not self.enabled:
            return
        self.unit = "s" if cell.budget.is_time else "step"
        interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        with signals.deferred():  # a Ctrl-C now waits until the bar exists, so cell_stopped can end its line
            self.bar = tqdm(total=None, desc=f"[{index + 1}/{count}] {cell.label}", unit=self.unit,
                            file=self.stream, leave=True, dynamic_ncols=True,
                            mininterval=0.1 if interactive else 10)

    def progress(self, done: float, total: float, note: str) -> None:
        if self.bar is None:
            return
        if self.bar.total != total:
            self.bar.total = total
        self.bar.set_postfix_str(note, refresh=False)
        self.bar.update((round(done, 1) if self.unit == "s" else int(done)) - self.bar.n)

    def cell_stopped(self, cell: CellConfig, reason: str) -> None:
        """The cell ended without a record (Ctrl-C, a fault): close its bar so the next line starts clean."""
        if self.bar is not None:
            self.bar.set_postfix_str(reason, refresh=False)
            self.bar.close()
            self.bar = None

    def cell_finished(self, record: Record) -> None:
        if self.bar is not None:
            if record.status != "ok":
                self.bar.set_postfix_str(f"{record.status}: {record.message}")
            self.bar.close()
            self.bar = None
        elif self.enabled:
            print(f"{record.cell.device}: {record.status} {record.message}", file=self.stream)
