"""The command line's options: the argparse parser of `bench`, and the readers that turn each flag's text into a
value or one UserError naming the flag. Defaults come from bench.config; nothing here imports torch."""

from __future__ import annotations

import argparse

from bench import config
from bench.errors import UserError

# Upper bounds that catch typos before they become a hung or crashed run (a fork bomb of DataLoader workers,
# a billion accuracy checkpoints, a seed torch cannot take); each is far beyond any sensible setting.
MAX_THREADS = 1024
MAX_WORKERS = 256
MAX_EVAL = 1000
MAX_WIDTH = 1000  # the width-1000 net has 5e10 parameters
MAX_BATCH = 2**24
MAX_WARMUP = 100_000  # steps
MAX_LR = 100.0
MAX_SEED = 2**63 - 2  # torch seeds are 64-bit; the warm-up stream uses seed + 1


class Parser(argparse.ArgumentParser):
    """argparse that reports bad input as one line (not usage plus error) and exits with status 2."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")


def comma_list(convert, flag: str, maximum: float | None = None):
    """A reader of '4,32,256' (or one value) as a list of positive numbers, each at most maximum."""

    def read(text: str) -> list:
        items = [t.strip() for t in str(text).split(",") if t.strip()]
        if not items:
            raise UserError(f"{flag} is empty: give one value or a comma list")
        out = []
        for item in items:
            try:
                value = convert(item)
            except ValueError:
                raise UserError(f"cannot read {flag} value {item!r}: give a comma list of numbers such as 1,4") \
                    from None
            if not value > 0 or value == float("inf"):
                raise UserError(f"{flag} must be positive, got {item!r}")
            if maximum is not None and value > maximum:
                raise UserError(f"{flag} must be at most {maximum:g}, got {item!r}")
            out.append(value)
        return out

    return read


def threads_list(text: str) -> list[int | None]:
    """--threads: auto (None: probe per cell) or a comma list of counts."""
    if str(text).strip().lower() == "auto":
        return [None]
    return comma_list(int, "--threads", MAX_THREADS)(text)


def number(flag: str, positive: bool = False, high: float | None = None):
    """A reader of one number; positive and at most high when asked."""

    def read(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise UserError(f"cannot read {flag} {text!r}: give a number") from None
        if positive and not (value > 0 and value != float("inf")):
            raise UserError(f"{flag} must be a positive number, got {text!r}")
        if high is not None and value > high:
            raise UserError(f"{flag} must be at most {high:g}, got {text!r}")
        return value

    return read


def count(flag: str, minimum: int = 0, maximum: int | None = None, none_means: int | None = None):
    """A reader of a whole number in [minimum, maximum]; with none_means, the word none gives that value."""

    def read(text: str) -> int:
        if none_means is not None and str(text).strip().lower() == "none":
            return none_means
        try:
            value = int(text)
        except ValueError:
            raise UserError(f"cannot read {flag} {text!r}: give a whole number") from None
        if value < minimum:
            raise UserError(f"{flag} must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise UserError(f"{flag} must be at most {maximum}, got {str(text).strip()!r}")
        return value

    return read


def folder(flag: str):
    """A reader of a folder's path: anything but empty (which would put files in the current folder)."""

    def read(text: str) -> str:
        if not str(text).strip():
            raise UserError(f"{flag} is empty: give a folder, or leave the flag out for the default")
        return text

    return read


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="bench", description="Does a GPU pay off for training a small CNN? Measure it on this machine.")
    sub = p.add_subparsers(dest="command", parser_class=Parser, metavar="{run,report,compare,data}")
    sub.required = True
    _run_options(sub.add_parser("run", help="train the tutorial CNN on every device and record throughput and "
                                            "accuracy"))

    rp = sub.add_parser("report", help="render a CPU-vs-GPU report (Markdown, self-contained HTML, figures)")
    rp.add_argument("results", nargs="+", help="results folders or files from `bench run` (any number of machines)")
    rp.add_argument("--name", default=None, help="the report's folder name (default: the results folder's name)")
    rp.add_argument("--baseline", default="cpu", help="device kind speedups are measured against (default cpu)")
    rp.add_argument("--target", default=None, help="accuracy for time and cost to accuracy, e.g. 60%% "
                    "(default: per configuration, the highest accuracy every device reached)")
    rp.add_argument("--reference", action="store_true", help="add the committed reference results from real GPUs "
                    "(reports/reference/), so CPU-only results are seen beside a GPU")
    _report_options(rp)

    c = sub.add_parser("compare", help="device timings per configuration, or two runs of a grid cell by cell")
    c.add_argument("results", nargs="+", help="results folders or files; exactly two (OLD NEW) compares runs")
    c.add_argument("--baseline", default="cpu", help="device kind speedups are measured against (default cpu)")
    c.add_argument("--fail-above", default=None, help="with OLD NEW: exit 1 when any cell's images/s dropped by "
                   "more than this, e.g. 10%%, or a cell that was ok is not")
    c.add_argument("--no-pair", action="store_true", help="treat two results as one set (a device table), "
                   "not as OLD and NEW")

    d = sub.add_parser("data", help="fetch or inspect datasets")
    dsub = d.add_subparsers(dest="data_command", parser_class=Parser, metavar="{download,show}")
    dsub.required = True
    dl = dsub.add_parser("download", help="download a dataset (the only command that uses the network)")
    dl.add_argument("name", help="cifar10 | fashion-mnist")
    dl.add_argument("--data-dir", default="data", help="where to put it (default ./data)")
    sh = dsub.add_parser("show", help="say which dataset a run would use and where it is")
    sh.add_argument("--dataset", default="auto")
    sh.add_argument("--data-dir", default=None)
    sh.add_argument("--seed", default=config.SEED, type=count("--seed", 0, MAX_SEED))
    return p


def _run_options(r: argparse.ArgumentParser) -> None:
    default_batches = " plus ".join(f"the {p} pipeline at batch {b}" for p, b in config.DEFAULT_CONFIGS)
    r.add_argument("--dataset", default="auto", help="auto | cifar10 | fashion-mnist | synthetic (default auto: "
                   "cifar10 when found under --data-dir, else synthetic)")
    r.add_argument("--data-dir", default=None, help="where datasets live (default ./data; Fashion-MNIST is also "
                   "found at /usr/share/datasets/fashion-mnist)")
    r.add_argument("--devices", default="auto", help="auto (cpu, every cuda device, mps) or a list: cpu,cuda:0")
    r.add_argument("--pipeline", default=None, help="tutorial | resident, or a comma list")
    r.add_argument("--batch-size", default=None, type=comma_list(int, "--batch-size", MAX_BATCH),
                   help=f"images per step, or a comma list (default: {default_batches})")
    r.add_argument("--width", default=list(config.WIDTHS), type=comma_list(float, "--width", MAX_WIDTH),
                   help="width multiplier(s) of the tutorial net (default 1)")
    r.add_argument("--threads", default=[None], type=threads_list,
                   help="CPU threads: auto (the fastest of a short probe of 1, 2, 4, ... up to the cores, per cell), "
                   "or a number or comma list (default auto)")
    r.add_argument("--budget", default=config.BUDGET,
                   help=f"per cell: 2ep, 5000steps, 200000samples or 60s (default {config.BUDGET}, as the tutorial)")
    r.add_argument("--lr", default=None, type=number("--lr", positive=True, high=MAX_LR),
                   help=f"SGD learning rate (default {config.TUTORIAL_LR:g} x batch/{config.TUTORIAL_BATCH}, "
                   f"at most {config.MAX_LR:g})")
    r.add_argument("--momentum", default=config.MOMENTUM, type=number("--momentum"),
                   help=f"SGD momentum (default {config.MOMENTUM:g})")
    r.add_argument("--seed", default=config.SEED, type=count("--seed", 0, MAX_SEED),
                   help=f"seeds weights, shuffling and synthetic data (default {config.SEED})")
    r.add_argument("--eval", default=config.EVAL_POINTS, type=count("--eval", 1, MAX_EVAL, none_means=0),
                   help=f"accuracy checkpoints across the budget, or none (default {config.EVAL_POINTS})")
    r.add_argument("--warmup", default=config.WARMUP_STEPS, type=count("--warmup", 0, MAX_WARMUP),
                   help=f"warm-up steps before the clock, undone after (default {config.WARMUP_STEPS})")
    r.add_argument("--workers", default=config.WORKERS, type=count("--workers", 0, MAX_WORKERS),
                   help=f"DataLoader workers for the tutorial pipeline (default {config.WORKERS})")
    r.add_argument("--tune", default="none", help="tuned-path variants, a comma list: none (eager, as the "
                   "tutorial), fast, or options joined by + from amp, channels_last, cudnn, compile, cudagraph, "
                   "pinned (e.g. none,amp+channels_last)")
    r.add_argument("--executor", default="local", choices=("local", "ray"), help="local: every cell on this "
                   "machine, in turn (default); ray: every device of every node of a Ray cluster, one task per cell")
    r.add_argument("--ray-address", default=None, help="with --executor ray: the cluster's head, HOST:PORT (default: "
                   "RAY_ADDRESS, the cluster `ray start` began on this machine, or a new local Ray instance)")
    r.add_argument("--cpu-watts", default=None, metavar="W", type=number("--cpu-watts", True, config.MAX_WATTS),
                   help="the CPU's average power while training, in watts, for machines whose RAPL counters "
                   "cannot be read: CPU cells then record energy as an estimate (watts x timed seconds), labelled "
                   "so; a readable counter is used instead; with --executor ray, on every node (default: none, energy is "
                   "measured or unavailable)")
    r.add_argument("--gpu-watts", default=None, metavar="W", type=number("--gpu-watts", True, config.MAX_WATTS),
                   help="the same for a GPU without an NVML energy counter (or without nvidia-ml-py)")
    r.add_argument("--out", default=None, help="results folder (default results/<UTC time>-<host>)")
    r.add_argument("--resume", action="store_true", help="measure only the cells that have no record in --out "
                   "yet (give the same arguments as the run you resume)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.add_argument("--breakdown", action=argparse.BooleanOptionalAction, default=True,
                   help="after each ok cell, a separate profiling pass times data, copy, forward, backward and "
                   "optimizer (default on; it never touches the timed numbers)")
    r.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                   help="render the report of this run into REPORTS/<run name>/ at the end (default on)")
    _report_options(r)


def _report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reports", default="reports", type=folder("--reports"),
                   help="folder that holds reports (default ./reports)")
    p.add_argument("--price", action="append", default=[], metavar="DEVICE=PRICE",
                   help="hourly price of a device kind, repeatable: --price cpu=0.19 --price cuda=3.06")
