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


def cmd_run(args) -> int:
    from bench import api, runner, sentences, terminal, verdict

    def say(line: str) -> None:
        print(line, file=sys.stderr)

    try:
        outcome = api.execute(args, say)
    except runner.RunStopped as stop:
        interrupted = isinstance(stop, runner.Interrupted)
        then = "resume with" if interrupted else "once the cause is fixed, resume with"
        print(f"bench: {'' if interrupted else 'error: '}{_one_line(str(stop))}; {then}: "
              f"{resume_command(args, stop.path.parent)}", file=sys.stderr)
        return EXIT_INTERRUPTED if interrupted else EXIT_FAULT
    df = outcome.frame
    print()
    print(terminal.summary(df))
    for line in terminal.noisy_cells(df):
        print(line, file=sys.stderr)
    v = verdict.judge(df)
    _, headline = sentences.describe(v, df).headline
    print(f"\nverdict: {headline.replace('**', '')}")
    if v.kinds == [v.baseline]:  # a CPU-only machine: the committed GPU reference is one command away
        print(f"beside a real GPU: bench report {shlex.quote(str(outcome.out))} --reference")
    print(f"\nresults: {outcome.records}  (load with bench.results.load({str(outcome.out)!r}))")
    if outcome.report:
        print(f"report: {outcome.report}")
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
