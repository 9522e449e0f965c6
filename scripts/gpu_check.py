"""The GPU check: what this project measures, on a lent GPU machine, in priority order, in 9 minutes or less.

    scripts/gpu-check.sh OUTDIR               # on the GPU machine; GPU_CHECK_SECONDS (default 540) caps the whole
    scripts/gpu-check.sh --rehearse OUTDIR    # every stage on this machine's CPU, tiny budgets, 2 minutes or less
    scripts/gpu-check.sh --archive OUTDIR     # the same, packed at the end into OUTDIR/check.tar.gz (lent machines)
    scripts/gpu-check.sh --device-command     # the exact command for a lent machine, this commit written into it
    scripts/gpu-check.sh --plan               # the stages: budgets, estimates from measured costs, what each is for

Stdlib only (the stages import torch, this file does not), so bad arguments are refused in a blink: a missing,
unknown or unusable OUTDIR is one line on stderr and exit status 2, and nothing is written anywhere.

Stages run one after another as subprocesses, in the order of STAGES (the order of what matters), each with its
output in OUTDIR/logs/<stage>.log and a wall-clock limit: its own budget plus whatever earlier stages left unused,
never eating into the budgets of the stages after it, and the report and figures always keep theirs. GRACE_SECONDS
before its limit a stage gets SIGINT (`bench run` then keeps every finished cell and exits 130), at the limit
SIGKILL; the next stage runs either way. OUTDIR/summary.txt, rewritten after every stage, holds the machine, the commit and one line
per stage (exit status, seconds, limit, command). The check exits 0 when every stage did, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence, Union

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import commit as bench_commit  # noqa: E402  (stdlib only, like this file: no torch before the stages)

PROG = "gpu-check"
USAGE = "usage: scripts/gpu-check.sh [--rehearse] [--archive] OUTDIR | --device-command | --plan"
ARCHIVE = "check.tar.gz"  # --archive: everything the check wrote, in one file
UNPACKED = ("summary.txt", "figures.txt")  # ... with these beside it, readable at once

TOTAL_SECONDS = 540  # the whole check on a GPU machine: 15 minutes of device time hold a 1+ minute start and a retry
REHEARSAL_SECONDS = 120  # the whole rehearsal on a CPU
GRACE_SECONDS = 5.0  # from SIGINT to SIGKILL, inside a stage's limit (at most an eighth of it)
MIN_STAGE_SECONDS = 1.0  # a stage that would get less is skipped, not started to be killed at once
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

# ---- The CPU thread setting, in ONE place ---------------------------------------------------------------------
# Every CPU cell runs at cpu_threads(); the thread-probe stage measures thread_probe() at fixed counts besides.
# "auto": bench's --threads auto, a short probe per cell (most threads first, stopping once fewer are much slower)
# that trains at the fastest count, so the CPU is compared at its best; its cost is in probe_seconds().
CPU_THREADS = "auto"  # or "all": every core this process may use


def cpu_threads(cores: int) -> str:
    return str(cores) if CPU_THREADS == "all" else CPU_THREADS


def thread_probe(cores: int) -> str:
    """1, 2, 4, ... below the core count, and the core count: 1,2,4,8,16 on the H200 machine's 16 cores."""
    counts = [1 << k for k in range(cores.bit_length()) if 1 << k < cores] + [cores]
    return ",".join(map(str, counts))


# ---- Costs measured on the H200 machine, 2026-11-27 (reports/reference/h200-2026-11-27) ----------------------
# Seconds. Where each comes from: summary.txt (stage seconds), logs/*.log, and the records' created_utc stamps and
# timing (results/grid/records.jsonl). estimate() predicts each stage from these; every budget in STAGES covers
# its estimate with a margin (tests/test_gpu_check.py checks that, and that the budgets add up to the total).
REFERENCE = ROOT / "reports/reference/h200-2026-11-27"
REFERENCE_RECORDS = REFERENCE / "results/grid/records.jsonl"  # median step seconds of 61 cells at 16 threads
CORES = 16  # the H200 machine's CPU cores (machine.txt)
MACHINE_SECONDS = 14.0  # the old check's header (nvidia-smi, import torch): 486 s in all, 472 s in its stages
BENCH_START = 12.0  # `bench run` to its first cell (import torch, 50,000 synthetic images, nvidia-smi, CUDA init):
#                     grid-cuda-cg ended its first 1.4 s cell 12 s after it started, grid-cpu its first 2.1 s one 15 s
CELL_FIXED = {"cuda": 0.8, "cpu": 1.0}  # per cell besides warm-up, timed steps and the breakdown's steps (model,
#                     FLOP count, data to the device, twice): grid-cuda ran 36 cells in 74 s, 44.8 s of it timed or
#                     warm-up; grid-cpu 15 cells in 34 s, 17.2 s of it
TUTORIAL_FIXED = 0.8  # the same for a tutorial-pipeline cell (DataLoader workers start): 0.61 s in grid-cuda-tut
TUNED_WARMUP = 0.5  # extra warm-up of a tuned CUDA cell (graph capture, cuDNN autotuning): 8.6 s over 18 fast cells
COMPILE_SECONDS = 15.0  # torch.compile of this net on CUDA: the nine CUDA tests, one of them compiling, took 22.2 s
EVAL_SECONDS = {"cuda": 0.2, "cpu": 1.0}  # one accuracy checkpoint on 10,000 test images: not measured there (the
#                     grid ran --eval none); 0.6 to 2.8 s on the 2-core development VM, so 1 s on 16 cores is ample
CPU_TUTORIAL_STEP = 0.0030  # the tutorial configuration's step on that CPU at its probed thread count: 2.57 ms
#                     at 4 threads and 2.74 ms at 2, in the two checks of 2026-11-28 (h200-2026-11-28: headline);
#                     at 16 threads it was 14.8 ms, which --threads auto avoids. The headline's budget holds a step
#                     four times the measured one (tests/test_gpu_check.py)
RUN_TAIL = 1.0  # after a run's last cell: its tables and intervals (grid-cuda: 3 s after its 36th cell) ...
RUN_TAIL_PER_CELL = 0.06  # ... plus this per cell
TESTS_SECONDS = 40.0  # `pytest -m gpu tests`: 30 s on 2026-11-27; 39.8 and 30.0 s in the two checks of 2026-11-28
FIDELITY_SECONDS = 56.0  # the two CUDA cross-checks at batch 4: 47 s on 2026-11-27; 56.0 and 53.9 s on 11-28
PYTEST_BENCH_START = 16.5  # pytest-benchmark to its first benchmark (the fidelity stage: 47 s, 30.5 s timed)
BENCH_CELL_FIXED = 0.5  # per train-step benchmark besides its steps: model, FLOP count, data to the device
REPORT_START = 2.0  # `bench report`: imports and figures; on the 2-core VM, 2.5 s for the 61-cell reference
REPORT_PER_CELL = 0.03  # ... and 1,000 cells in the benchmark suite's test_report_on_a_thousand_records
FIGURES_SECONDS = 6.0  # scripts/gpu_summary.py over the reference: 5.9 s on the 2-core VM
MARGIN = 1.1  # every budget is at least its estimate times this


# A rehearsal's costs on the 2-core development VM (AMD EPYC, torch 2.14), in CPU seconds, which a quiet machine
# spreads over its 2 cores in part: import torch and torchvision 3.3; the 50,000 synthetic images 6.0 (every bench
# run and the timed benchmark suite make them again: 2 cores' worth of about 3 s); a rehearsal cell 1 to 2 s;
# `pytest -m gpu tests`, collection of the whole suite, 4 s; bench report over the rehearsal's cells about 12 s.
# Measured from a fresh clone with the machine at load 2.3 (others at work): 102 s in all; machine 3.6, headline
# 14.5, threads 13.5, the other bench runs 8.3 to 11.6, tests 6.9, fidelity 5.2, benchmarks 14.9, report 4.6,
# figures 1.8 (at load 0.6 the bench runs took 8 to 11 s). A machine busier than that needs more time than 2
# minutes: give it GPU_CHECK_SECONDS=600 (the CI test does).


# ---- What a stage runs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Context:
    """Where the stages write and what they run with."""

    out: Path  # OUTDIR, absolute
    python: str  # the interpreter that runs every stage (this one)
    cores: int  # CPU cores this process may use
    rehearse: bool

    def path(self, *parts: str) -> str:
        return str(self.out.joinpath(*parts))


@dataclass(frozen=True)
class Grid:
    """One `bench run`: a grid of cells, in bench's own flags. Its records go to OUTDIR/results/<stage>/."""

    devices: str  # cuda | cpu | cuda,cpu (cuda first: a CPU cell that overruns cannot cost the GPU's)
    pipeline: str  # tutorial | resident | tutorial,resident
    batch: tuple[int, ...]
    width: tuple[int, ...] = (1,)
    tune: tuple[str, ...] = ("none",)
    budget: str = "100steps"  # per cell: a step count (the same work everywhere) or, for the probe, seconds
    warmup: int = 10  # steps
    eval: str = "none"  # accuracy checkpoints, or none
    threads: str = "cpu"  # "cpu": cpu_threads(), every CPU cell's setting; "probe": thread_probe()
    breakdown: bool = True

    def thread_list(self, cores: int) -> str:
        return thread_probe(cores) if self.threads == "probe" else cpu_threads(cores)

    def command(self, ctx: Context, folder: str) -> list[str]:
        return [ctx.python, "-m", "bench", "run", "--dataset", "synthetic", "--devices", self.devices,
                "--pipeline", self.pipeline, "--batch-size", _csv(self.batch), "--width", _csv(self.width),
                "--tune", ",".join(self.tune), "--threads", self.thread_list(ctx.cores), "--budget", self.budget,
                "--warmup", str(self.warmup), "--eval", self.eval, "--out", ctx.path("results", folder),
                "--quiet", "--no-report"] + ([] if self.breakdown else ["--no-breakdown"])

    def cells(self, cores: int = CORES) -> list[tuple]:
        """(device kind, pipeline, batch, width, variant, threads), in bench's order (GPU cells: one thread count)."""
        listed = self.thread_list(cores)
        threads = [cores] if listed == "auto" else [int(t) for t in listed.split(",")]
        out = []
        for device in self.devices.split(","):
            for pipeline in self.pipeline.split(","):
                for batch in self.batch:
                    for width in self.width:
                        for tune in self.tune:
                            for t in (threads if device == "cpu" else [max(threads)]):
                                out.append((device, pipeline, batch, width, tune, t))
        return out


@dataclass(frozen=True)
class Pytest:
    """One pytest run of this checkout's tests."""

    args: tuple[str, ...]  # after `python -m pytest -q -p no:cacheprovider`; {out} is OUTDIR, {root} the checkout
    env: tuple[tuple[str, str], ...] = ()

    def command(self, ctx: Context, folder: str) -> list[str]:
        return [ctx.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                *(a.format(out=ctx.out, root=ROOT) for a in self.args)]


@dataclass(frozen=True)
class Script:
    """A command built from the context when the stage starts."""

    build: Callable[[Context], list[str]]
    env: tuple[tuple[str, str], ...] = ()

    def command(self, ctx: Context, folder: str) -> list[str]:
        return self.build(ctx)


@dataclass(frozen=True)
class Skip:
    """A stage that does not run in a rehearsal, and why; it counts as a success there."""

    reason: str


Spec = Union[Grid, Pytest, Script]


@dataclass(frozen=True)
class Stage:
    name: str
    measures: str  # what it is for, in a few words
    budget: int  # seconds on the GPU machine
    gpu: Spec
    rehearsal: Spec | Skip  # the same stage on a CPU, with tiny budgets
    rehearsal_budget: int  # seconds in a rehearsal on a quiet 2-core VM (its costs: above Context)
    final: bool = False  # the report and figures: their time is reserved, so they always run
    after: Callable[[Context], None] | None = None  # run once the stage ended, whatever its status
    cost: Callable[[dict], float] | None = None  # predicted seconds on the H200 machine given its measured step
    #                                             seconds; None: estimate_grid() of a Grid stage


def _csv(values) -> str:
    return ",".join(str(v) for v in values)


def _machine_command(ctx: Context) -> list[str]:
    return [ctx.python, str(Path(__file__).resolve()), "--machine"]


def _report_command(ctx: Context) -> list[str]:
    return [ctx.python, "-m", "bench", "report", ctx.path("results"), "--reports", str(ctx.out), "--name", "report"]


def _figures_command(ctx: Context) -> list[str]:
    return [ctx.python, str(ROOT / "scripts" / "gpu_summary.py"), str(ctx.out)]


def _copy_log(name: str, to: str) -> Callable[[Context], None]:
    def copy(ctx: Context) -> None:
        log = ctx.out / "logs" / f"{name}.log"
        if log.is_file():
            shutil.copyfile(log, ctx.out / to)
    return copy


HEADLINE_STEPS = 1500  # 6,000 images: 4 s on the H200 and 4 s on its CPU (2026-11-28), 35 blocks each
FIDELITY_TESTS = ("{root}/tests/benchmarks/test_fidelity.py::test_harness_agrees_with_a_bare_loop[4-cuda:0]",
                  "{root}/tests/benchmarks/test_fidelity.py::test_harness_agrees_with_torch_utils_benchmark[4-cuda:0]")
CPU_GRID = Grid("cpu", "resident", (4, 64), (1, 4, 16), ("none", "fast"), "30steps", warmup=2)
# The peak stages' cells train 1 s or more, so that NVML's energy counter gives a figure (bench/method.py:
# NVML_MIN_SECONDS) for the fastest tuned cell. GPU cells get seconds, not steps: a block lasts 10 ms or more
# (bench/method.py), and on 2026-11-28 60 steps of a 0.24 ms CUDA-graph step made 4 blocks, too few for an
# interval; 0.5 s gives a step under 15 ms its 32 blocks and the slowest grid cell (33 ms) 15
CUDA_GRID = Grid("cuda", "resident", (4, 64, 256, 1024, 4096), (1, 4, 16), ("none", "fast"), "0.5s")
BENCHMARKS = Pytest(("--benchmark-only", "--benchmark-json", "{out}/benchmarks.json", "-k", "cuda",
                     "{root}/tests/benchmarks/test_train_step.py"), env=(("BENCH_SECONDS", "0.2"), ("BENCH_WIDTHS", "1,16")))
# A rehearsal's bench runs: one or two cells each (a cudagraph cell on a CPU is recorded as unsupported, at no
# cost), without the breakdown pass but in the headline, because each cell prepares the 50,000 synthetic images
# twice and a 2-core VM shared by several people has little to spare.
REHEARSAL_GRID = Grid("cpu", "resident", (4,), (1,), ("none",), "5steps", warmup=1, breakdown=False)

# The stages, in priority order. Budgets add up to at most TOTAL_SECONDS (rehearsal: REHEARSAL_SECONDS).
STAGES: tuple[Stage, ...] = (
    Stage("machine", "GPU, driver, torch, CUDA, cuDNN, CPU and cores, for the top of summary.txt", 16,
          Script(_machine_command), Script(_machine_command), 5, after=_copy_log("machine", "machine.txt"),
          cost=lambda m: MACHINE_SECONDS),
    # 1. the headline: the tutorial's own loop (DataLoader, batch 4, loss.item() every step) on the GPU and on the
    #    same machine's CPU, with accuracy checkpoints, on a step count both finish
    Stage("headline", "the tutorial configuration on cuda and on this machine's CPU, with evaluation", 52,
          Grid("cuda,cpu", "tutorial", (4,), budget=f"{HEADLINE_STEPS}steps", warmup=20, eval="2"),
          Grid("cpu", "tutorial", (4,), budget="20steps", warmup=2, eval="1"), 15),
    # 2. the CPU's thread probe, then the resident grid on both devices, eager and tuned
    Stage("threads", "CPU thread probe: tutorial and resident, batch 4, 0.5 s per thread count", 35,
          Grid("cpu", "tutorial,resident", (4,), budget="0.5s", warmup=5, threads="probe", breakdown=False),
          replace(REHEARSAL_GRID, budget="0.1s", threads="probe"), 13),
    Stage("grid-cuda", "resident grid on cuda: batch 4, 64, 256, 1024, 4096 x width 1, 4, 16, eager and fast", 73,
          CUDA_GRID, replace(REHEARSAL_GRID, width=(4,)), 9),
    Stage("grid-cpu", "resident grid on the CPU: batch 4 and 64 x width 1, 4, 16, eager and fast", 52,
          CPU_GRID, REHEARSAL_GRID, 9),
    Stage("grid-cpu-large", "resident grid on the CPU: batch 256-4096 at width 1, eager and fast", 45,
          Grid("cpu", "resident", (256, 1024, 4096), (1,), ("none", "fast"), "15steps", warmup=2),
          replace(REHEARSAL_GRID, batch=(256,), budget="3steps"), 9),
    # 3. the tuned peak: batches past the grid (65,536 exceeds the 50,000 training images bench allows), CUDA
    #    graphs against eager at batch 4, and torch.compile last, in a stage of its own (its compile time is the
    #    least known cost here)
    Stage("peak", "cuda at batch 4 and 8,192-32,768: eager, cudagraph, fast (the highest images/s)", 55,
          Grid("cuda", "resident", (4, 8192, 16384, 32768), (1,), ("none", "cudagraph", "fast"), "1s"),
          replace(REHEARSAL_GRID, tune=("cudagraph", "fast")), 12),
    Stage("peak-compile", "cuda at batch 16,384: torch.compile with bf16, channels_last, cuDNN autotuning", 37,
          Grid("cuda", "resident", (16384,), (1,), ("amp+channels_last+cudnn+compile",), "1.5s"),
          Skip("torch.compile on a CPU takes minutes here; the GPU check compiles on cuda"), 0),
    # 4. the CUDA tests (every tuned path against eager, the CUDA faults) and the harness's timing cross-checks
    Stage("tests", "the test suite's CUDA tests (-m gpu)", 44,
          Pytest(("-m", "gpu", "{root}/tests", "--junitxml", "{out}/tests.xml")),
          Pytest(("-m", "gpu", "{root}/tests", "--junitxml", "{out}/tests.xml")), 8, cost=lambda m: TESTS_SECONDS),
    # (rehearsed untimed: the tests are found and skip at once, without generating the data they would time)
    Stage("fidelity", "harness vs a bare loop and vs torch.utils.benchmark, cuda, batch 4", 62,
          Pytest(("--benchmark-only", "--benchmark-json", "{out}/fidelity.json", *FIDELITY_TESTS)),
          Pytest(FIDELITY_TESTS), 6,
          cost=lambda m: FIDELITY_SECONDS),
    # 5. the pytest-benchmark suite's CUDA cells (the grids cover the CPU), with JSON output
    Stage("benchmarks", "pytest-benchmark train-step suite on cuda, width 1 and 16, 0.2 s per cell, JSON", 40,
          BENCHMARKS,
          Pytest(("--benchmark-only", "--benchmark-json", "{out}/benchmarks.json", "-k", "cpu",
                  "{root}/tests/benchmarks/test_train_step.py"),
                 env=(("BENCH_SECONDS", "0.05"), ("BENCH_BATCHES", "4"), ("BENCH_WIDTHS", "1"))), 15,
          cost=lambda m: estimate_benchmarks(BENCHMARKS, m)),
    # 6. energy: every cell above records its own (NVML on the GPU, RAPL where readable); the figures stage prints
    #    joules per image for the tutorial configuration and the fastest tuned GPU cell
    # 7. the report and the figures, over whatever was measured; their budgets are reserved
    Stage("report", "bench report over results/ into report/", 8, Script(_report_command),
          Script(_report_command), 10, final=True, cost=lambda m: estimate_report()),
    Stage("figures", "scripts/gpu_summary.py: the figures the check exists for, into figures.txt", 10,
          Script(_figures_command), Script(_figures_command), 4, final=True, after=_copy_log("figures", "figures.txt"),
          cost=lambda m: FIGURES_SECONDS),
)


# ---- Estimates from the measured costs --------------------------------------------------------------------------
def reference_step_seconds(path: Path = REFERENCE_RECORDS) -> dict[tuple, float]:
    """Median step seconds per (device kind, pipeline, batch, width, variant) in the H200 machine's records."""
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            c, steps = r["cell"], r["timing"]["step_seconds"]
            key = (c["device"].split(":")[0], c["pipeline"], c["batch_size"], int(c["width"]), c["variant"] or "none")
            out[key] = statistics.median(steps)
    return out


def step_seconds(measured: dict, kind: str, pipeline: str, batch: int, width: int, variant: str) -> float:
    """A step's seconds on the H200 machine: measured; else log-log in batch between the two nearest measured
    batches; beyond the largest (when that is 1024 or more), in proportion to the batch, an upper bound once
    launches no longer dominate; a variant never measured there as eager (no slower on these cells); a CPU
    width-16 cell as width 4 times the measured 16/4 ratio at batch 64; the CPU's tutorial step as
    CPU_TUTORIAL_STEP."""
    if kind == "cpu" and pipeline == "tutorial":
        return CPU_TUTORIAL_STEP
    for v in (variant, "none"):
        found = {b: s for (k, p, b, w, var), s in measured.items() if (k, p, w, var) == (kind, pipeline, width, v)}
        if batch in found:
            return found[batch]
        below = max((b for b in found if b < batch), default=None)
        above = min((b for b in found if b > batch), default=None)
        if below and above:
            f = math.log(batch / below) / math.log(above / below)
            return math.exp((1 - f) * math.log(found[below]) + f * math.log(found[above]))
        if above and not below:
            return found[above]
        if below and below >= 1024:
            return found[below] * batch / below
    if kind == "cpu" and width == 16:
        ratio = step_seconds(measured, kind, pipeline, 64, 16, variant) / step_seconds(measured, kind, pipeline, 64, 4,
                                                                                         variant)
        return ratio * step_seconds(measured, kind, pipeline, batch, 4, variant)
    raise KeyError(f"no measured step near {kind} {pipeline} batch {batch} width {width} {variant}")


def probe_seconds(step: float) -> float:
    """bench/threads.py's probe before a CPU cell: per count tried, a step then about 0.15 s of at least 3 steps,
    at most 3 counts on a large batch (it stops once fewer threads are 1.5x slower); fewer threads run slower,
    twice as slow assumed."""
    return 3 * max(0.15, 2 * 4 * step) if step > 0.01 else len(thread_probe(CORES).split(",")) * max(0.15, 8 * step)


def breakdown_seconds(step: float) -> float:
    """bench/breakdown.py: 5 warm-up steps, then 30, stopping once 2 s have passed and 5 are done."""
    return step * max(10, min(35, math.ceil(2.0 / step) + 1))


def estimate_grid(grid: Grid, measured: dict) -> float:
    total = BENCH_START
    cells = grid.cells()
    for kind, pipeline, batch, width, tune, threads in cells:
        step = step_seconds(measured, kind, pipeline, batch, width, tune)
        warm = grid.warmup * step * (CORES / threads if kind == "cpu" else 1)  # fewer threads: slower, at worst
        fixed = TUTORIAL_FIXED if pipeline == "tutorial" else CELL_FIXED[kind]
        if grid.budget.endswith("steps"):
            timed = int(grid.budget[:-5]) * step
        else:
            timed = float(grid.budget[:-1]) + step
        extra = 0.0
        if kind == "cuda" and tune != "none":
            extra += TUNED_WARMUP + (COMPILE_SECONDS if "compile" in tune else 0.0)
        if grid.eval != "none":
            extra += (int(grid.eval) + 1) * EVAL_SECONDS[kind]
        if grid.breakdown:
            extra += breakdown_seconds(step)
        if kind == "cpu" and grid.thread_list(CORES) == "auto":
            extra += probe_seconds(step)
        total += fixed + warm + timed + extra
    return total + RUN_TAIL + RUN_TAIL_PER_CELL * len(cells)


def estimate_benchmarks(spec: Pytest, measured: dict) -> float:
    """The train-step suite on cuda: resident eager and tuned per batch and width, the tutorial at batch 4 and 32;
    each cell sizes its rounds from 5 steps, runs a warm-up round, then about BENCH_SECONDS (3 rounds at least)."""
    env = dict(spec.env)
    seconds, widths = float(env["BENCH_SECONDS"]), [int(w) for w in env["BENCH_WIDTHS"].split(",")]
    total = PYTEST_BENCH_START + 2 * (BENCH_CELL_FIXED + TUTORIAL_FIXED + seconds)
    for variant in ("none", "fast"):
        for batch in (4, 32, 256, 1024):
            for width in widths:
                step = step_seconds(measured, "cuda", "resident", batch, width, variant)
                total += BENCH_CELL_FIXED + 6 * step + max(seconds, 3 * step) + (TUNED_WARMUP if variant != "none" else 0)
    return total


def estimate_report() -> float:
    return REPORT_START + REPORT_PER_CELL * sum(len(s.gpu.cells()) for s in STAGES if isinstance(s.gpu, Grid))


def estimate(stage: Stage, measured: dict | None = None) -> float:
    """Predicted seconds of a stage on the H200 machine, from the costs measured there."""
    measured = measured if measured is not None else reference_step_seconds()
    return stage.cost(measured) if stage.cost else estimate_grid(stage.gpu, measured)


# ---- Running the stages --------------------------------------------------------------------------------------
def stage_limit(budgets: Sequence[float], finals: Sequence[bool], index: int, left: float) -> float:
    """Seconds stage `index` may run, with `left` seconds left of the whole.

    With time to spare it gets what is left minus the budgets of every stage after it, so time an earlier
    stage did not use goes to the next one that needs it, in priority order. When the total is smaller than
    the budgets (GPU_CHECK_SECONDS set low), it gets at most its own budget, and never the time reserved for
    the final stages (report, figures) after it."""
    later = sum(budgets[index + 1:])
    later_final = sum(b for b, f in zip(budgets[index + 1:], finals[index + 1:]) if f)
    return max(left - later, min(budgets[index], left - later_final))


@dataclass
class Outcome:
    """How a stage ended."""

    name: str
    status: str  # an exit status ("0", "1", "130": signals as 128+N), "killed" or "skipped"
    seconds: float = 0.0
    limit: float = 0.0
    command: str = ""
    note: str = ""  # why it was skipped, or that it was stopped at its limit

    @property
    def ok(self) -> bool:
        return self.status == "0" or (self.status == "skipped" and self.note.startswith(REHEARSAL_SKIP))


REHEARSAL_SKIP = "not in a rehearsal: "


class Interrupted(Exception):
    """The check itself got Ctrl-C or SIGTERM; the stage in progress was stopped."""

    def __init__(self, outcome: Outcome):
        self.outcome = outcome
        super().__init__(outcome.name)


def run_command(command: list[str], limit: float, log: Path, env: dict, cwd: Path,
                grace: float = GRACE_SECONDS) -> tuple[str, str]:
    """Run one command in its own process group with stdout and stderr to `log`; (status, note).

    At limit - grace it gets SIGINT; at the limit its whole group gets SIGKILL. Whatever it started is killed
    when it ends, so no DataLoader or compile worker outlives its stage."""
    grace = min(grace, limit / 8)  # bench run and pytest stop within a second; a short limit keeps most of itself
    with open(log, "wb") as out:
        try:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=cwd, env=env, start_new_session=True)
        except OSError as exc:
            out.write(f"{PROG}: cannot start {command[0]}: {exc.strerror or exc}\n".encode())
            return "127", f"cannot start: {exc.strerror or exc}"
        note = ""
        try:
            try:
                rc = proc.wait(timeout=max(limit - grace, 0.0))
            except subprocess.TimeoutExpired:
                note = "stopped at its limit"
                rc = _stop(proc, grace)
        except KeyboardInterrupt:
            _stop(proc, grace)
            raise
        finally:
            _kill_group(proc.pid)
    if rc is None:
        return "killed", "killed at its limit (it ignored SIGINT)"
    return str(rc if rc >= 0 else 128 - rc), note


def _stop(proc: subprocess.Popen, grace: float) -> int | None:
    """SIGINT (as a Ctrl-C: bench run keeps its finished cells), then SIGKILL; the exit status, or None if killed."""
    try:
        proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        proc.wait()
        return None


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stage_env(ctx: Context, spec: Spec, commit: dict) -> dict:
    env = dict(os.environ)
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
               PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg",
               # every temporary file (pytest's folders, compile caches) stays inside OUTDIR, removed at the end
               TMPDIR=ctx.path("tmp"), MPLCONFIGDIR=ctx.path("tmp", "matplotlib"),
               TRITON_CACHE_DIR=ctx.path("tmp", "triton"), XDG_CACHE_HOME=ctx.path("tmp", "cache"),
               # the 50,000 synthetic images, generated by the first stage and read by the others (bench/data.py)
               BENCH_SYNTHETIC_CACHE=ctx.path("tmp", "synthetic"))
    if commit.get("commit"):  # the records name the commit even where the tree has no .git (bench/env.py)
        env["BENCH_COMMIT"] = commit["commit"]
        if commit.get("dirty") is not None:
            env["BENCH_DIRTY"] = "1" if commit["dirty"] else "0"
    env.update(dict(getattr(spec, "env", ())))
    return env


def run_stages(ctx: Context, stages: Sequence[Stage], total: float, summary: "Summary", commit: dict,
               clock: Callable[[], float] = time.monotonic, grace: float = GRACE_SECONDS) -> list[Outcome]:
    """Every stage in order, each within its limit; an overrun or failure never stops the next."""
    start = clock()
    budgets = [s.rehearsal_budget if ctx.rehearse else s.budget for s in stages]
    finals = [s.final for s in stages]
    for i, stage in enumerate(stages):
        spec = stage.rehearsal if ctx.rehearse else stage.gpu
        if isinstance(spec, Skip):
            summary.add(Outcome(stage.name, "skipped", note=REHEARSAL_SKIP + spec.reason))
            continue
        limit = stage_limit(budgets, finals, i, total - (clock() - start))
        command = spec.command(ctx, stage.name)
        if limit < MIN_STAGE_SECONDS:
            summary.add(Outcome(stage.name, "skipped", limit=max(limit, 0), command=shlex.join(command),
                                note="the check was out of time"))
            continue
        t0 = clock()
        try:
            # cwd OUTDIR/tmp: whatever a tool writes beside itself (.hypothesis, .benchmarks) stays in OUTDIR
            status, note = run_command(command, limit, ctx.out / "logs" / f"{stage.name}.log",
                                       stage_env(ctx, spec, commit), ctx.out / "tmp", grace=grace)
        except KeyboardInterrupt:
            outcome = Outcome(stage.name, "130", clock() - t0, limit, shlex.join(command), "the check was interrupted")
            summary.add(outcome)
            raise Interrupted(outcome) from None
        summary.add(Outcome(stage.name, status, clock() - t0, limit, shlex.join(command), note))
        if stage.after is not None:
            try:
                stage.after(ctx)
            except OSError as exc:
                summary.note(f"{stage.name}: {exc}")
    summary.finish(clock() - start)
    return summary.outcomes


class Summary:
    """OUTDIR/summary.txt: the machine and commit on top, a line per stage; rewritten (atomically) after each."""

    def __init__(self, path: Path, header: list[str], echo=None):
        self.path, self.header, self.echo = path, header, echo
        self.outcomes: list[Outcome] = []
        self.notes: list[str] = []
        self.total: float | None = None
        self.write()

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.write()
        if self.echo:
            self.echo(self.line(outcome))

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.write()

    def finish(self, seconds: float) -> None:
        self.total = seconds
        self.write()
        if self.echo:
            self.echo(self.lines()[-1])

    @staticmethod
    def line(o: Outcome) -> str:
        what = o.command if o.status != "skipped" or o.command else "-"
        note = f"  [{o.note}]" if o.note else ""
        seconds = f"{o.seconds:.1f}" if o.status != "skipped" else "-"
        return f"{o.name:<15} {o.status:>7} {seconds:>7} {o.limit:>6.0f}  {what}{note}"

    def lines(self) -> list[str]:
        machine = self.path.parent / "machine.txt"
        facts = machine.read_text(errors="replace").splitlines() if machine.is_file() else []
        out = list(self.header) + [f"  {line}" for line in facts]
        out.append(f"{'stage':<15} {'status':>7} {'seconds':>7} {'limit':>6}  command")
        out += [self.line(o) for o in self.outcomes]
        out += [f"note: {n}" for n in self.notes]
        if self.total is not None:
            failed = [o.name for o in self.outcomes if not o.ok]
            out.append(f"total {self.total:.0f}s; " + (f"not ok: {', '.join(failed)}" if failed else "every stage ok"))
        return out

    def write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("\n".join(self.lines()) + "\n")
        os.replace(tmp, self.path)


# ---- Provenance ------------------------------------------------------------------------------------------------
def git_facts() -> dict:
    """This checkout's commit and whether tracked files changed, from git (bench.commit): commit None outside a
    git checkout of this very folder."""
    commit, dirty = bench_commit.from_git(ROOT)
    return {"commit": commit, "dirty": dirty, "source": "git" if commit else None}


def commit_facts() -> dict:
    """What ran, as bench.env records it (bench.commit): BENCH_COMMIT and BENCH_DIRTY where the caller gave them
    (the device command does), else git. What a stale .git in the copy says is kept beside, as git_says, for the
    summary (on 2026-11-28 one named the session's first commit, and every later change as uncommitted)."""
    given = bench_commit.given()
    if given is None:
        return git_facts()
    facts = {"commit": given[0], "dirty": given[1], "source": bench_commit.COMMIT_ENV}
    git = git_facts()
    if git["commit"] and not git["commit"].startswith(given[0]):
        facts["git_says"] = git["commit"]
    return facts


def describe_commit(c: dict) -> str:
    if not c.get("commit"):
        return "commit unknown (no .git here and no BENCH_COMMIT)"
    state = {True: "with uncommitted changes", False: "clean", None: "unknown whether clean"}[c.get("dirty")]
    stale = f"; this folder's .git names {c['git_says'][:12]}, not taken" if c.get("git_says") else ""
    return f"commit {c['commit']} ({state}, from {c['source']}{stale})"


def device_command() -> str:
    """The command for a lent GPU machine (it copies the tree without .git): this commit written into it."""
    c = git_facts()
    if not c.get("commit"):
        raise UsageError("--device-command needs a git checkout of this project, to name its commit")
    if c["dirty"]:
        print(f"{PROG}: warning: tracked files have uncommitted changes; the records will say dirty "
              f"(commit first for results that name exactly what ran)", file=sys.stderr)
    return (f'BENCH_COMMIT={c["commit"]} BENCH_DIRTY={int(bool(c["dirty"]))} '
            f'scripts/gpu-check.sh --archive "$OUT/check"')


# ---- The machine's facts (the `machine` stage runs this file with --machine) ------------------------------------
def machine_facts() -> list[str]:
    lines = [f"python {platform.python_version()}, {platform.platform()}"]
    try:
        import torch
        import torchvision

        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        lines.append(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}, "
                     f"torchvision {torchvision.__version__}")
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            lines.append(f"cuda:{i} {p.name}, {p.total_memory / 2**20:,.0f} MiB, capability {p.major}.{p.minor}, "
                         f"{p.multi_processor_count} SMs")
        if not torch.cuda.is_available():
            lines.append("cuda: none (torch sees no CUDA device)")
    except ImportError as exc:
        lines.append(f"torch: cannot import ({exc})")
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
            lines += [f"nvidia-smi: {line}" for line in out.stdout.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError) as exc:
            lines.append(f"nvidia-smi: {exc}")
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    lines.append(f"cpu: {model}, {os.cpu_count()} logical cores, {usable_cores()} usable")
    return lines


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# ---- The command line -----------------------------------------------------------------------------------------
class UsageError(Exception):
    """Bad input: one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{message}; {USAGE}")


def parse(argv: list[str]) -> argparse.Namespace:
    p = Parser(prog="scripts/gpu-check.sh", description=__doc__.split("\n\n")[0], add_help=True)
    p.add_argument("outdir", nargs="?", help="a new or empty folder for everything the check writes")
    p.add_argument("--rehearse", action="store_true", help="every stage on this CPU with tiny budgets")
    p.add_argument("--archive", action="store_true",
                   help=f"at the end, pack OUTDIR into OUTDIR/{ARCHIVE}, leaving only it, summary.txt and figures.txt "
                        f"(a lent machine brings back a handful of files)")
    p.add_argument("--device-command", action="store_true", help="print the command for a lent GPU machine")
    p.add_argument("--plan", action="store_true", help="print the stages, their budgets and estimates")
    p.add_argument("--machine", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    modes = args.device_command + args.plan + args.machine
    if modes and (args.outdir is not None or args.rehearse or args.archive or modes > 1):
        raise UsageError(f"--device-command and --plan take nothing else; {USAGE}")
    if not modes and args.outdir is None:
        raise UsageError(f"no OUTDIR given; {USAGE}")
    return args


def total_seconds(rehearse: bool) -> float:
    text = os.environ.get("GPU_CHECK_SECONDS", "").strip()
    default = REHEARSAL_SECONDS if rehearse else TOTAL_SECONDS
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"GPU_CHECK_SECONDS={text!r} is not a whole number of seconds: unset it for "
                         f"{default}, or give one such as 540") from None
    reserved = sum(s.rehearsal_budget if rehearse else s.budget for s in STAGES if s.final)
    if value < reserved + MIN_STAGE_SECONDS:
        raise UsageError(f"GPU_CHECK_SECONDS={value} leaves no time to measure: the report and figures alone "
                         f"take {reserved} s; give at least {reserved + 60}")
    return value


def outdir(text: str) -> Path:
    """OUTDIR, absolute, if it can be a new or empty folder; checks only, creating nothing."""
    if not text.strip():
        raise UsageError(f"OUTDIR is empty: give a folder for the check's outputs; {USAGE}")
    if text.startswith("-"):  # argparse lets `-- -x` through: a name like an option is almost always a slip
        raise UsageError(f"OUTDIR {text!r} looks like an option; write ./{text} for a folder of that name")
    path = Path(text).absolute()
    try:
        if path.exists() and not path.is_dir():
            raise UsageError(f"OUTDIR {text!r} is a file, not a folder: give a new or empty folder")
        if path.is_dir() and any(path.iterdir()):
            raise UsageError(f"OUTDIR {text!r} already holds files: give a new or empty folder, so two checks' "
                             f"results never mix")
    except OSError as exc:
        raise UsageError(f"cannot use OUTDIR {text!r}: {exc.strerror or exc}; give a writable folder") from None
    return path


def prepare_outdir(text: str) -> Path:
    """OUTDIR, created with its logs/ and tmp/ and an empty summary.txt; refused as outdir() refuses it, or when
    the file system will not create it."""
    path = outdir(text)
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / "logs").mkdir()
        (path / "tmp").mkdir()
        (path / "summary.txt").write_text("")
    except OSError as exc:
        raise UsageError(f"cannot write to OUTDIR {text!r}: {exc.strerror or exc}; give a writable folder") from None
    return path


def check_interpreter() -> None:
    missing = [m for m in ("torch", "torchvision", "numpy", "pandas", "matplotlib", "pytest", "pytest_benchmark")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"{sys.executable} lacks {', '.join(missing)}: set PYTHON to an interpreter that has "
                         f"them (the project's virtualenv)")


def gpu_visible() -> bool:
    return bool(shutil.which("nvidia-smi")) or Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").is_dir()


def check_gpu() -> None:
    """Without a GPU the check would spend its 9 minutes measuring the CPU alone (cuda cells: unavailable)."""
    if not gpu_visible():
        raise UsageError("no NVIDIA GPU on this machine (no nvidia-smi, no /dev/nvidia0): run the check on a GPU "
                         "machine, or rehearse it on this CPU with --rehearse OUTDIR")


def plan_lines() -> list[str]:
    measured = reference_step_seconds()
    rows = [f"{'stage':<15} {'budget':>6} {'estimate':>8} {'rehearsal':>9}  measures"]
    for s in STAGES:
        rows.append(f"{s.name:<15} {s.budget:>5}s {estimate(s, measured):>7.0f}s {s.rehearsal_budget:>8}s  {s.measures}")
    rows.append(f"{'total':<15} {sum(s.budget for s in STAGES):>5}s {'':>8} "
                f"{sum(s.rehearsal_budget for s in STAGES):>8}s  (limits: {TOTAL_SECONDS} s, rehearsal "
                f"{REHEARSAL_SECONDS} s)")
    return rows


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(list(sys.argv[1:] if argv is None else argv))
        if args.machine:
            print("\n".join(machine_facts()))
            return 0
        if args.device_command:
            print(device_command())
            return 0
        if args.plan:
            print("\n".join(plan_lines()))
            return 0
        total = total_seconds(args.rehearse)
        check_interpreter()
        outdir(args.outdir)
        if not args.rehearse:
            check_gpu()
        out = prepare_outdir(args.outdir)
    except UsageError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a SIGTERM stops the check as Ctrl-C does
    ctx = Context(out=out, python=sys.executable, cores=usable_cores(), rehearse=args.rehearse)
    commit = commit_facts()
    mode = "rehearsal on this machine's CPU (tiny budgets)" if args.rehearse else "GPU check"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    summary = Summary(out / "summary.txt", [f"gpu-check {stamp}: {mode}, limit {total:.0f} s, "
                                            f"{describe_commit(commit)}", "machine:"], echo=print)
    try:
        outcomes = run_stages(ctx, STAGES, total, summary, commit)
    except (Interrupted, KeyboardInterrupt):
        summary.finish(sum(o.seconds for o in summary.outcomes))
        print(f"{PROG}: interrupted; what finished is in {out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        shutil.rmtree(out / "tmp", ignore_errors=True)
        if args.archive:
            archive(out)
    return 0 if all(o.ok for o in outcomes) else 1


def archive(out: Path) -> Path:
    """OUTDIR packed into OUTDIR/ARCHIVE (paths relative to OUTDIR, so it unpacks into any folder), then every
    other file removed but UNPACKED: a lent GPU machine brings back only a handful of the files under $OUT (on
    2026-11-28, 8 of the check's 36, none of its records). Written whole or not at all: a failure leaves OUTDIR as
    it was."""
    target = out / ARCHIVE
    tmp = out / (ARCHIVE + ".tmp")
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            for path in sorted(out.iterdir()):
                if path not in (tmp, target):
                    tar.add(path, arcname=path.name)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        print(f"{PROG}: warning: could not pack {out} into {ARCHIVE} ({exc.strerror or exc}); "
              f"the files stay as they are", file=sys.stderr)
        return out
    for path in out.iterdir():
        if path != target and path.name not in UNPACKED:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    print(f"{PROG}: packed into {target} (tar xzf it into the reference folder)")
    return target


if __name__ == "__main__":
    sys.exit(main())
