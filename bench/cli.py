"""The command line: `bench run | report | compare | data`. Parse, build a config, call the library, print."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import UserError

EXIT_BAD_INPUT = 2


class Parser(argparse.ArgumentParser):
    """argparse that reports bad input as one line (not usage plus error) and exits with status 2."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _comma_list(text: str, convert, what: str) -> list:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UserError(f"{what} is empty: give one value or a comma list")
    out = []
    for item in items:
        try:
            value = convert(item)
        except ValueError:
            raise UserError(f"cannot read {what} value {item!r}: give a comma list of numbers such as 1,4") from None
        if value <= 0 or value != value or value == float("inf"):
            raise UserError(f"{what} must be positive, got {item!r}")
        out.append(value)
    return out


def _positive_float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"cannot read {what} {text!r}: give a positive number") from None
    if not (value > 0 and value != float("inf")):
        raise UserError(f"{what} must be a positive number, got {text!r}")
    return value


def _count(text: str, what: str, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"cannot read {what} {text!r}: give a whole number") from None
    if value < minimum:
        raise UserError(f"{what} must be at least {minimum}, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="bench", description="Does a GPU pay off for training a small CNN? Measure it on this machine.")
    sub = p.add_subparsers(dest="command", parser_class=Parser, metavar="{run,report,compare,data}")
    sub.required = True

    r = sub.add_parser("run", help="train the tutorial CNN on every device and record throughput and accuracy")
    r.add_argument("--dataset", default="auto", help="auto | cifar10 | fashion-mnist | synthetic (default auto: "
                   "cifar10 when found under --data-dir, else synthetic)")
    r.add_argument("--data-dir", default=None, help="where datasets live (default ./data; Fashion-MNIST is also "
                   "found at /usr/share/datasets/fashion-mnist)")
    r.add_argument("--devices", default="auto", help="auto (cpu, every cuda device, mps) or a list: cpu,cuda:0")
    r.add_argument("--pipeline", default=None, help="tutorial | resident, or a comma list")
    r.add_argument("--batch-size", default=None, help="images per step, or a comma list (default: the tutorial "
                   "configuration, batch 4, plus a resident configuration at batch 256)")
    r.add_argument("--width", default="1", help="width multiplier(s) of the tutorial net (default 1)")
    r.add_argument("--threads", default=None, help="CPU threads, or a comma list (default: all cores)")
    r.add_argument("--budget", default=None, help="per cell: 2ep, 5000steps, 200000samples or 60s (default 2ep, as the tutorial)")
    r.add_argument("--lr", default=None, help="SGD learning rate (default 0.001 x batch/4, at most 0.05)")
    r.add_argument("--momentum", default="0.9", help="SGD momentum (default 0.9)")
    r.add_argument("--seed", default="0", help="seeds weights, shuffling and synthetic data (default 0)")
    r.add_argument("--eval", default="8", help="accuracy checkpoints across the budget, or none (default 8)")
    r.add_argument("--warmup", default="20", help="warm-up steps before the clock, undone after (default 20)")
    r.add_argument("--workers", default="2", help="DataLoader workers for the tutorial pipeline (default 2)")
    r.add_argument("--out", default=None, help="results folder (default results/<UTC time>-<host>)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.add_argument("--breakdown", action=argparse.BooleanOptionalAction, default=True,
                   help="after each ok cell, a separate profiling pass times data, copy, forward, backward and "
                   "optimizer (default on; it never touches the timed numbers)")
    r.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                   help="render the report of this run into REPORTS/<run name>/ at the end (default on)")
    _report_options(r)

    rp = sub.add_parser("report", help="render a CPU-vs-GPU report (Markdown, self-contained HTML, figures)")
    rp.add_argument("results", nargs="+", help="results folders or files from `bench run` (any number of machines)")
    rp.add_argument("--name", default=None, help="the report's folder name (default: the results folder's name)")
    rp.add_argument("--baseline", default="cpu", help="device kind speedups are measured against (default cpu)")
    rp.add_argument("--target", default=None, help="accuracy for time and cost to accuracy, e.g. 60%% "
                    "(default: per configuration, the highest accuracy every device reached)")
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
    sh.add_argument("--seed", default="0")
    return p


def _report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reports", default="reports", help="folder that holds reports (default ./reports)")
    p.add_argument("--price", action="append", default=[], metavar="DEVICE=PRICE",
                   help="hourly price of a device kind, repeatable: --price cpu=0.19 --price cuda=3.06")


DEFAULT_BUDGET = "2ep"  # the tutorial trains for 2 epochs


def run_config(args):
    """Turn `bench run` arguments into a RunConfig (bad values become UserError)."""
    from bench import devices
    from bench.config import DEFAULT_CONFIGS, PIPELINES, Budget, RunConfig

    dev = devices.parse(args.devices)
    if args.pipeline is None and args.batch_size is None:
        configs = DEFAULT_CONFIGS
    else:
        pipelines = [t.strip() for t in (args.pipeline or "tutorial").split(",") if t.strip()]
        for name in pipelines:
            if name not in PIPELINES:
                raise UserError(f"unknown pipeline {name!r}: use {' or '.join(PIPELINES)}, or a comma list")
        if not pipelines:
            raise UserError("--pipeline is empty: use tutorial, resident or tutorial,resident")
        batches = _comma_list(args.batch_size or "4", int, "--batch-size")
        configs = tuple((p, b) for p in pipelines for b in batches)
    widths = _comma_list(args.width, float, "--width")
    threads = _comma_list(args.threads, int, "--threads") if args.threads else [devices.default_threads()]
    eval_points = 0 if args.eval.strip().lower() == "none" else _count(args.eval, "--eval", 1)
    try:
        budget = Budget.parse(args.budget or DEFAULT_BUDGET)
        config = RunConfig(
            dataset=args.dataset, devices=tuple(dev), configs=configs, widths=tuple(widths), threads=tuple(threads),
            budget=budget, lr=_positive_float(args.lr, "--lr") if args.lr is not None else None,
            momentum=float(args.momentum), seed=_count(args.seed, "--seed"), eval_points=eval_points,
            warmup_steps=_count(args.warmup, "--warmup"), workers=_count(args.workers, "--workers"),
        )
        config.cells()  # every cell validates itself before anything is trained or written
        return config
    except ValueError as exc:
        raise UserError(str(exc)) from None


def cmd_run(args) -> int:
    from bench import data as datasets
    from bench import devices, runner, table
    from bench import prices, report
    from bench.progress import Bars
    from bench.results import RecordWriter, check_writable, default_out_dir, to_frame

    config = run_config(args)
    price_list = prices.parse(args.price)
    out = Path(args.out) if args.out else default_out_dir()
    check_writable(out)
    if args.report:
        report.check_writable(args.reports)
    missing = [d for d in config.devices if not devices.is_present(d)]
    if missing:
        print(f"bench: {', '.join(missing)} not present on this machine (present: "
              f"{', '.join(devices.available())}); recording them as unavailable, running the rest", file=sys.stderr)
    data = datasets.load(config.dataset, args.data_dir, config.seed)
    print(f"dataset: {data.name} ({data.reason})", file=sys.stderr)
    config = _with_dataset(config, data.name)
    writer = RecordWriter(out)
    hooks = Bars(enabled=not args.quiet)
    cells = config.cells()
    print(f"{len(cells)} cells, budget {config.budget} each; results in {writer.path}", file=sys.stderr)
    records = runner.run(config, data, writer, hooks, breakdown=args.breakdown)
    df = to_frame(records)
    print()
    print(table.summary(df))
    for line in table.noisy_cells(df):
        print(line, file=sys.stderr)
    print(f"\nresults: {writer.path}  (load with bench.results.load({str(writer.dir)!r}))")
    if args.report:
        try:
            path = report.render([writer.dir], report.ReportConfig(name=out.name, prices=price_list), args.reports)
            print(f"report: {path}")
        except UserError as exc:  # the results are safe; say how to render them later
            print(f"bench: the run is recorded but its report was not written: {exc}; render it with "
                  f"`bench report {writer.dir}`", file=sys.stderr)
    return 0


def cmd_report(args) -> int:
    from bench import prices, report

    try:
        config = report.ReportConfig(name=args.name or report.default_name(args.results),
                                     prices=prices.parse(args.price), baseline=args.baseline.strip().lower(),
                                     target=report.parse_target(args.target))
    except ValueError as exc:
        raise UserError(f"{exc}; choose another --name") from None
    warnings: list[str] = []
    path = report.render(args.results, config, args.reports, warnings)
    for line in warnings:
        print(f"bench: {line}", file=sys.stderr)
    print(f"report: {path}\n        {path.with_name('report.md')}")
    return 0


def cmd_compare(args) -> int:
    from bench import compare
    from bench.results import load

    threshold = compare.parse_threshold(args.fail_above) if args.fail_above is not None else None
    warnings: list[str] = []
    if len(args.results) == 2 and not args.no_pair:
        old, new = (load([p], warnings) for p in args.results)
        for frame, path in ((old, args.results[0]), (new, args.results[1])):
            if frame.empty:
                raise UserError(f"no records in {path}: give results written by `bench run`")
        changes = compare.changes(old, new)
        for line in warnings:
            print(f"bench: {line}", file=sys.stderr)
        print(f"old: {args.results[0]}\nnew: {args.results[1]}\n")
        print(compare.change_table(changes, threshold))
        for line in compare.notes(old, new, changes):
            print(f"bench: {line}", file=sys.stderr)
        if threshold is not None:
            bad = compare.regressions(changes, threshold)
            if not bad.empty:
                print(f"bench: {len(bad)} cell(s) regressed by more than {threshold:.0%} (or stopped working)",
                      file=sys.stderr)
                return 1
        return 0
    if threshold is not None:
        raise UserError("--fail-above compares two runs: give exactly two results, OLD NEW")
    df = load(args.results, warnings)
    if df.empty:
        raise UserError(f"no records in {', '.join(args.results)}: give results written by `bench run`")
    for line in warnings:
        print(f"bench: {line}", file=sys.stderr)
    print(compare.device_table(df, args.baseline.strip().lower()))
    return 0


def _with_dataset(config, name: str):
    from dataclasses import replace

    return replace(config, dataset=name)


def cmd_data(args) -> int:
    from bench import data as datasets

    if args.data_command == "download":
        path = datasets.download(args.name, args.data_dir)
        print(f"{args.name} is in {path}")
        return 0
    d = datasets.load(args.dataset, args.data_dir, _count(args.seed, "--seed"))
    print(f"{d.name}: {len(d.train_labels)} train / {len(d.test_labels)} test images of "
          f"{'x'.join(map(str, d.input_shape))}, {d.num_classes} classes\nsource: {d.source}\nwhy: {d.reason}")
    return 0


COMMANDS = {"run": cmd_run, "report": cmd_report, "compare": cmd_compare, "data": cmd_data}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
