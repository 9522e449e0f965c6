"""The command line: `bench run | report | compare | data`. Parse, build a config, call the library, print."""

from __future__ import annotations

import os
import shlex
import signal
import sys
from pathlib import Path

from bench import options, signals
from bench.errors import Terminated, UserError, printable

EXIT_FAULT = 1  # a run stopped by a fault (a dead DataLoader worker, a lost device); finished records are kept
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: the reader of stdout went away (`bench compare ... | head -1`)


def run_config(args):
    """Turn `bench run` arguments into a RunConfig (bad values become UserError)."""
    from bench import devices, variants
    from bench.config import DEFAULT_CONFIGS, PIPELINES, TUTORIAL_BATCH, Budget, RunConfig

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
        configs = tuple((p, b) for p in pipelines for b in args.batch_size or [TUTORIAL_BATCH])
    try:
        config = RunConfig(
            dataset=args.dataset, devices=tuple(dev), configs=configs, widths=tuple(args.width),
            threads=tuple(args.threads), budget=Budget.parse(args.budget), lr=args.lr, momentum=args.momentum,
            seed=args.seed, eval_points=args.eval, warmup_steps=args.warmup, workers=args.workers,
            tunes=variants.parse(args.tune),
        )
        config.cells()  # every cell validates itself before anything is trained or written
        return config
    except ValueError as exc:
        raise UserError(str(exc)) from None


def cmd_run(args) -> int:
    from bench import data as datasets
    from dataclasses import replace

    from bench import devices, prices, report, runner, terminal
    from bench.progress import Bars
    from bench.results import to_frame
    from bench.writer import RECORDS_FILE, RecordWriter, check_writable, default_out_dir

    config = run_config(args)
    price_list = prices.parse(args.price)
    if args.out is not None and not args.out.strip():
        raise UserError("--out is empty: give a results folder")
    if args.resume and args.out is None:
        raise UserError("--resume needs --out: give the results folder of the run to resume")
    out = Path(args.out) if args.out else default_out_dir()
    args.out_dir = out  # for main's resume line, should a signal come before or after the cells
    check_writable(out)
    if args.report:
        report.check_writable(args.reports, report.run_name(out))
    data = datasets.load(config.dataset, args.data_dir, config.seed)
    config = replace(config, dataset=data.name)
    plan = runner.plan(config, data, out / RECORDS_FILE, resume=args.resume)  # the last check of the input
    missing = [d for d in config.devices if not devices.is_present(d)]
    if missing:
        print(f"bench: {', '.join(missing)} not present on this machine (present: "
              f"{', '.join(devices.available())}); recording them as unavailable, running the rest", file=sys.stderr)
    print(f"dataset: {data.name} ({data.reason})", file=sys.stderr)
    for line in plan.warnings:
        print(f"bench: warning: {line}", file=sys.stderr)
    writer = RecordWriter(out)
    if args.resume:
        print(plan.describe(writer.path), file=sys.stderr)
    hooks = Bars(enabled=not args.quiet)
    print(f"{len(plan.todo)} cells, budget {config.budget} each; results in {writer.path}", file=sys.stderr)
    try:
        records = runner.run(config, data, writer, hooks, plan=plan, breakdown=args.breakdown)
    except runner.RunStopped as stop:
        interrupted = isinstance(stop, runner.Interrupted)
        then = "resume with" if interrupted else "once the cause is fixed, resume with"
        print(f"bench: {'' if interrupted else 'error: '}{_one_line(str(stop))}; {then}: "
              f"{resume_command(args, writer.dir)}", file=sys.stderr)
        return EXIT_INTERRUPTED if interrupted else EXIT_FAULT
    df = to_frame(list(plan.done) + records)
    print()
    print(terminal.summary(df))
    for line in terminal.noisy_cells(df):
        print(line, file=sys.stderr)
    print(f"\nresults: {writer.path}  (load with bench.results.load({str(writer.dir)!r}))")
    if args.report:
        try:
            named = report.ReportConfig(name=report.run_name(out), prices=price_list)
            path = report.render([writer.dir], named, args.reports)
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
    from bench import compare, terminal
    from bench.results import load

    threshold = compare.parse_threshold(args.fail_above) if args.fail_above is not None else None
    warnings: list[str] = []
    if len(args.results) == 2 and not args.no_pair:
        old, new = (load([p], warnings) for p in args.results)
        changes = compare.changes(old, new)
        for line in warnings:
            print(f"bench: {line}", file=sys.stderr)
        if not compare.shared(changes):
            raise UserError(f"{args.results[0]} and {args.results[1]} share no cell ({len(old)} and {len(new)} "
                            f"records of different configurations), so there is nothing to compare cell by cell; "
                            f"give two runs of the same grid, or list them side by side with --no-pair")
        print(f"old: {args.results[0]}\nnew: {args.results[1]}\n")
        print(compare.change_table(changes, threshold))
        for line in compare.notes(old, new, changes):
            print(f"bench: {line}", file=sys.stderr)
        print(f"bench: {compare.summary(changes, threshold)}", file=sys.stderr)
        if threshold is not None and not compare.regressions(changes, threshold).empty:
            return 1
        return 0
    if threshold is not None:
        raise UserError("--fail-above compares two runs: give exactly two results, OLD NEW")
    df = load(args.results, warnings)
    for line in warnings:
        print(f"bench: {line}", file=sys.stderr)
    print(terminal.summary(df, args.baseline.strip().lower()))
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


def cmd_data(args) -> int:
    from bench import data as datasets

    if args.data_command == "download":
        path = datasets.download(args.name, args.data_dir)
        print(f"{args.name} is in {path}")
        return 0
    d = datasets.load(args.dataset, args.data_dir, args.seed)
    print(f"{d.name}: {len(d.train_labels)} train / {len(d.test_labels)} test images of "
          f"{'x'.join(map(str, d.input_shape))}, {d.num_classes} classes\nsource: {d.source}\nwhy: {d.reason}")
    return 0


COMMANDS = {"run": cmd_run, "report": cmd_report, "compare": cmd_compare, "data": cmd_data}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = None
    with signals.handled():
        try:
            args = options.build_parser().parse_args(argv)
            args.argv = argv
            code = COMMANDS[args.command](args)
            sys.stdout.flush()  # a closed pipe is found here, not at exit
            if code == EXIT_INTERRUPTED:  # the run said where it stopped and how to resume
                return EXIT_TERMINATED if signals.received() == signal.SIGTERM else code
            signals.check()  # a signal whose exception something printed and dropped still stops us
            return code
        except UserError as exc:
            print(f"bench: error: {_one_line(str(exc))}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except BrokenPipeError:
            return _closed_pipe()
        except OSError as exc:  # a path given on the command line that the file system refuses, caught nowhere else
            print(f"bench: error: {_one_line(str(exc))}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt as exc:
            print(f"bench: {_stopped(args, exc)}", file=sys.stderr)
            return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def _stopped(args, exc: KeyboardInterrupt) -> str:
    """One line for Ctrl-C or SIGTERM outside a run's cells: what was kept, and for a run how to resume it."""
    verb = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    out = getattr(args, "out_dir", None)
    if out is None:
        return verb
    from bench.writer import RECORDS_FILE

    if not (out / RECORDS_FILE).is_file():
        return f"{verb} before its first cell was recorded; run the same command again"
    return _one_line(f"{verb}; the finished cells are recorded in {out}; resume with: {resume_command(args, out)}")


def _closed_pipe() -> int:
    """The reader of stdout went away: stop quietly, as other Unix tools do, with 128 + SIGPIPE; stdout is
    pointed at /dev/null so that Python's last flush at exit does not fail too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout with no descriptor (a test's capture): nothing to flush at exit
        pass
    return EXIT_CLOSED_PIPE


def _one_line(text: str) -> str:
    """An error is reported on one line even when it quotes a value (a path, say) that holds a line break, and
    shows any control character in it (a terminal escape from a file name) rather than obey it."""
    return printable(text.replace("\r", "\\r").replace("\n", "\\n"))


if __name__ == "__main__":
    sys.exit(main())
