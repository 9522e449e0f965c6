"""The command line: `bench run | report | compare | data`. Parse, build a config, call the library, print."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from bench.errors import UserError

EXIT_FAULT = 1  # a run stopped by a fault (a dead DataLoader worker, a lost device); finished records are kept
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class Parser(argparse.ArgumentParser):
    """argparse that reports bad input as one line (not usage plus error) and exits with status 2."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")


# Upper bounds that catch typos before they become a hung or crashed run (a fork bomb of DataLoader workers,
# a billion accuracy checkpoints, a seed torch cannot take); each is far beyond any sensible setting.
MAX_THREADS = 1024
MAX_WORKERS = 256
MAX_EVAL = 1000
MAX_WIDTH = 1000  # the width-1000 net has 5e10 parameters
MAX_SEED = 2**63 - 2  # torch seeds are 64-bit; the warm-up stream uses seed + 1


def _comma_list(text: str, convert, what: str, maximum: float | None = None) -> list:
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
        if maximum is not None and value > maximum:
            raise UserError(f"{what} must be at most {maximum:g}, got {item!r}")
        out.append(value)
    return out


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError(f"cannot read {what} {text!r}: give a number") from None


def _positive_float(text: str, what: str) -> float:
    value = _number(text, what)
    if not (value > 0 and value != float("inf")):
        raise UserError(f"{what} must be a positive number, got {text!r}")
    return value


def _count(text: str, what: str, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"cannot read {what} {text!r}: give a whole number") from None
    if value < minimum:
        raise UserError(f"{what} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise UserError(f"{what} must be at most {maximum}, got {text.strip()!r}")
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
    r.add_argument("--tune", default="none", help="tuned-path variants, a comma list: none (eager, as the "
                   "tutorial), fast, or options joined by + from amp, channels_last, cudnn, compile, cudagraph, "
                   "pinned (e.g. none,amp+channels_last)")
    r.add_argument("--executor", default="local", choices=("local", "ray"), help="local: every cell on this "
                   "machine, in turn (default); ray: every device of every node of a Ray cluster, one task per cell")
    r.add_argument("--ray-address", default=None, help="with --executor ray: the cluster's head, HOST:PORT (default: "
                   "RAY_ADDRESS, the cluster `ray start` began on this machine, or a new local Ray instance)")
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
    widths = _comma_list(args.width, float, "--width", MAX_WIDTH)
    threads = _comma_list(args.threads, int, "--threads", MAX_THREADS) if args.threads else [devices.default_threads()]
    from bench import tuning

    try:
        tunes = tuning.parse(args.tune)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    eval_points = 0 if args.eval.strip().lower() == "none" else _count(args.eval, "--eval", 1, MAX_EVAL)
    try:
        budget = Budget.parse(args.budget or DEFAULT_BUDGET)
        config = RunConfig(
            dataset=args.dataset, devices=tuple(dev), configs=configs, widths=tuple(widths), threads=tuple(threads),
            budget=budget, lr=_positive_float(args.lr, "--lr") if args.lr is not None else None,
            momentum=_number(args.momentum, "--momentum"), seed=_count(args.seed, "--seed", 0, MAX_SEED),
            eval_points=eval_points, warmup_steps=_count(args.warmup, "--warmup"),
            workers=_count(args.workers, "--workers", 0, MAX_WORKERS),
            tunes=tunes,
        )
        config.cells()  # every cell validates itself before anything is trained or written
        return config
    except ValueError as exc:
        raise UserError(str(exc)) from None


def cmd_run(args) -> int:
    from bench import prices, report
    from bench.results import check_writable, default_out_dir

    config = run_config(args)
    price_list = prices.parse(args.price)
    if args.out is not None and not args.out.strip():
        raise UserError("--out is empty: give a results folder")
    if args.resume and args.out is None:
        raise UserError("--resume needs --out: give the results folder of the run to resume")
    out = Path(args.out) if args.out else default_out_dir()
    check_writable(out)
    if args.report:
        report.check_writable(args.reports)
    if args.ray_address is not None and args.executor != "ray":
        raise UserError("--ray-address is for --executor ray: add --executor ray, or drop --ray-address")
    if args.executor == "ray":
        from bench import cluster

        with cluster.connect(args.ray_address) as session:  # before the data: an unreachable cluster fails at once
            return _measure(args, config, out, price_list, session)
    return _measure(args, config, out, price_list, None)


def _measure(args, config, out: Path, price_list, session) -> int:
    """Plan, measure and report a run, on this machine (session None) or on a Ray cluster."""
    from bench import data as datasets
    from bench import devices, report, runner, table
    from bench.progress import Bars
    from bench.results import RECORDS_FILE, RecordWriter, to_frame

    data = datasets.load(config.dataset, args.data_dir, config.seed)
    config = _with_dataset(config, data.name)
    if session is None:
        plan = runner.plan(config, data, out / RECORDS_FILE, resume=args.resume)  # the last check of the input
        missing = [d for d in config.devices if not devices.is_present(d)]
        if missing:
            print(f"bench: {', '.join(missing)} not present on this machine (present: "
                  f"{', '.join(devices.available())}); recording them as unavailable, running the rest",
                  file=sys.stderr)
    else:
        from bench import clusterplan

        nodes = session.nodes()
        plan = clusterplan.plan(config, data, out / RECORDS_FILE, nodes, resume=args.resume,
                                devices_auto=args.devices.strip().lower() == "auto", threads_auto=args.threads is None)
        print(f"Ray cluster: {', '.join(n.describe() for n in nodes)}", file=sys.stderr)
        for line in plan.notes:
            print(f"bench: {line}", file=sys.stderr)
    print(f"dataset: {data.name} ({data.reason})", file=sys.stderr)
    for line in plan.warnings:
        print(f"bench: warning: {line}", file=sys.stderr)
    writer = RecordWriter(out)
    if args.resume:
        print(plan.describe(writer.path), file=sys.stderr)
    hooks = Bars(enabled=not args.quiet)
    print(f"{len(plan.todo)} cells, budget {config.budget} each; results in {writer.path}", file=sys.stderr)
    try:
        if session is None:
            records = runner.run(config, data, writer, hooks, plan=plan, breakdown=args.breakdown)
        else:
            from bench import cluster

            def say(line: str) -> None:
                if not args.quiet:
                    print(line, file=sys.stderr)

            records = cluster.run(session, plan, data, writer, breakdown=args.breakdown, say=say,
                                  warn=lambda line: print(f"bench: error: {_one_line(line)}", file=sys.stderr))
            for line in cluster.summary(session):
                print(line, file=sys.stderr)
    except runner.RunStopped as stop:
        interrupted = isinstance(stop, runner.Interrupted)
        then = "resume with" if interrupted else "once the cause is fixed, resume with"
        print(f"bench: {'' if interrupted else 'error: '}{_one_line(str(stop))}; {then}: "
              f"{resume_command(args, writer.dir)}", file=sys.stderr)
        return EXIT_INTERRUPTED if interrupted else EXIT_FAULT
    df = to_frame(list(plan.done) + records)
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
    results = list(args.results) + (report.reference_results() if args.reference else [])
    path = report.render(results, config, args.reports, warnings)
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


def resume_command(args, out: Path) -> str:
    """The command line that resumes this run: as typed, plus --out (when it was the default) and --resume."""
    words = list(args.argv)
    if args.out is None:
        words += ["--out", str(out)]
    if not args.resume:
        words.append("--resume")
    prog = ["bench"]
    if sys.argv and sys.argv[0].endswith("__main__.py") and getattr(sys, "orig_argv", [])[1:3] == ["-m", "bench"]:
        prog = sys.orig_argv[:3]  # run as `python -m bench`: repeat the same interpreter
    return shlex.join(prog + words)


def _with_dataset(config, name: str):
    from dataclasses import replace

    return replace(config, dataset=name)


def cmd_data(args) -> int:
    from bench import data as datasets

    if args.data_command == "download":
        path = datasets.download(args.name, args.data_dir)
        print(f"{args.name} is in {path}")
        return 0
    d = datasets.load(args.dataset, args.data_dir, _count(args.seed, "--seed", 0, MAX_SEED))
    print(f"{d.name}: {len(d.train_labels)} train / {len(d.test_labels)} test images of "
          f"{'x'.join(map(str, d.input_shape))}, {d.num_classes} classes\nsource: {d.source}\nwhy: {d.reason}")
    return 0


COMMANDS = {"run": cmd_run, "report": cmd_report, "compare": cmd_compare, "data": cmd_data}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"bench: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # a path given on the command line that the file system refuses, caught nowhere else
        print(f"bench: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _one_line(text: str) -> str:
    """An error is reported on one line even when it quotes a value (a path, say) that holds a line break."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


if __name__ == "__main__":
    sys.exit(main())
