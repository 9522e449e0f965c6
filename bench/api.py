"""The Python API, for notebooks and scripts: `bench.run` and `bench.render` do what `bench run` and `bench report`
do, with the same checks and one-line errors, and return values instead of printing.

    import bench
    df = bench.run(devices="cpu", pipeline="tutorial", batch_size=4, budget="500steps")   # a DataFrame
    rep = bench.render(df.attrs["out"]); rep.path, rep.headline

Arguments take Python values or the command line's text (batch_size=[4, 32] or "4,32"); each is read by the
command line's own reader, so a bad one raises the UserError the command line would print.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import pandas as pd

from bench import options
from bench.errors import UserError

Say = Callable[[str], None]  # where messages for the user go: the CLI prints them, the API keeps them


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    if value is None:
        return "none"
    return str(value)


def run_args(flags: dict, switches: dict[str, bool]) -> list[str]:
    """`bench run`'s command line for keyword arguments: flags with values (batch_size=[4, 32] ->
    --batch-size=4,32; None leaves the default), price items repeated, switches on or off."""
    argv = ["run"]
    for name, value in flags.items():
        flag = "--" + name.replace("_", "-")
        if name == "price":
            argv += [f"{flag}={item}" for item in ([value] if isinstance(value, str) else value)]
        elif value is not None:
            argv.append(f"{flag}={_text(value)}")
    for name, on in switches.items():
        argv.append({"resume": "--resume" if on else None, "progress": None if on else "--quiet",
                     "breakdown": "--breakdown" if on else "--no-breakdown",
                     "report": "--report" if on else "--no-report"}[name])
    return [a for a in argv if a]


def run(*, devices="auto", pipeline=None, batch_size=None, width=None, threads=None, budget=None, dataset=None,
        data_dir=None, lr=None, momentum=None, seed=None, eval=None, warmup=None, workers=None, tune=None,
        out=None, resume=False, breakdown=True, report=False, reports=None, price=(), progress=True,
        executor=None, ray_address=None, cpu_watts=None, gpu_watts=None) -> pd.DataFrame:
    """Train the grid as `bench run` does and return its results as bench.results.load gives them (the records
    are on disk in out). df.attrs holds out, records (the file), report (its path, with report=True),
    dataset and messages (what `bench run` would have printed). Ctrl-C or a fault raises RunStopped, whose
    message says how to resume; the finished cells stay on disk."""
    argv = run_args(dict(devices=devices, pipeline=pipeline, batch_size=batch_size, width=width, threads=threads,
                         budget=budget, dataset=dataset, data_dir=data_dir, lr=lr, momentum=momentum, seed=seed,
                         eval=eval, warmup=warmup, workers=workers, tune=tune, out=out, reports=reports,
                         price=price, executor=executor, ray_address=ray_address, cpu_watts=cpu_watts,
                         gpu_watts=gpu_watts),
                    dict(resume=resume, breakdown=breakdown, report=report, progress=progress))
    args = options.build_parser().parse_args(argv)
    args.argv = argv[1:]
    messages: list[str] = []
    outcome = execute(args, messages.append)
    df = outcome.frame.copy()
    df.attrs.update(out=str(outcome.out), records=str(outcome.records), report=outcome.report and str(outcome.report),
                    dataset=outcome.dataset, messages=messages)
    return df


@dataclass(frozen=True)
class Outcome:
    """What a run left: its results, where they are, and the report's path when one was rendered."""

    frame: pd.DataFrame  # every record of the grid in the folder, finished now or before (--resume)
    out: Path
    records: Path
    dataset: str  # the dataset and why it was chosen
    report: Path | None = None


def execute(args, say: Say) -> Outcome:
    """`bench run` from parsed arguments: check everything, train the grid, write each record, render the
    report. Messages go to say(); a stopped run raises runner.RunStopped with the records on disk."""
    from bench import data as datasets
    from bench import devices, prices, report, runner
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
    args.out_dir = out  # for the command line's resume line, should a signal come before or after the cells
    check_writable(out)
    if args.report:
        report.check_writable(args.reports, report.run_name(out))
    if args.ray_address is not None and args.executor != "ray":
        raise UserError("--ray-address is for --executor ray: add --executor ray, or drop --ray-address")
    with _session(args) as session:  # before the data: an unreachable cluster fails at once
        data = datasets.load(config.dataset, args.data_dir, config.seed)
        config = replace(config, dataset=data.name)
        if session is None:
            plan = runner.plan(config, data, out / RECORDS_FILE, resume=args.resume)  # the last check of the input
            missing = [d for d in config.devices if not devices.is_present(d)]
            if missing:
                say(f"bench: {', '.join(missing)} not present on this machine (present: "
                    f"{', '.join(devices.available())}); recording them as unavailable, running the rest")
        else:
            plan = _cluster_plan(args, config, data, out / RECORDS_FILE, session, say)
        say(f"dataset: {data.name} ({data.reason})")
        for line in plan.warnings:
            say(f"bench: warning: {line}")
        writer = RecordWriter(out)
        if args.resume:
            say(plan.describe(writer.path))
        say(f"{len(plan.todo)} cells, budget {config.budget} each; results in {writer.path}")
        if session is None:
            records = runner.run(config, data, writer, Bars(enabled=not args.quiet), plan=plan,
                                 breakdown=args.breakdown)
        else:
            records = _cluster_run(args, session, plan, data, writer, say)
    frame = to_frame(list(plan.done) + records)
    rendered = None
    if args.report:
        try:
            rendered = report.render([writer.dir], report.ReportConfig(name=report.run_name(out), prices=price_list),
                                     args.reports)
        except UserError as exc:  # the results are safe; say how to render them later
            say(f"bench: the run is recorded but its report was not written: {exc}; render it with "
                f"`bench report {writer.dir}`")
    return Outcome(frame, out, writer.path, f"{data.name} ({data.reason})", rendered)


def _session(args):
    """A Ray session for --executor ray (bench.cluster, the only module that imports ray), else nothing."""
    import contextlib

    if args.executor != "ray":
        return contextlib.nullcontext()
    from bench import cluster

    return cluster.connect(args.ray_address)


def _cluster_plan(args, config, data, path: Path, session, say: Say):
    from bench import clusterplan

    nodes = session.nodes()
    plan = clusterplan.plan(config, data, path, nodes, resume=args.resume,
                            devices_auto=args.devices.strip().lower() == "auto")
    say(f"Ray cluster: {', '.join(n.describe() for n in nodes)}")
    for line in plan.notes:
        say(f"bench: {line}")
    return plan


def _cluster_run(args, session, plan, data, writer, say: Say) -> list:
    from bench import cluster
    from bench.errors import one_line

    records = cluster.run(session, plan, data, writer, breakdown=args.breakdown, cpu_watts=args.cpu_watts,
                          gpu_watts=args.gpu_watts,
                          say=(lambda line: None) if args.quiet else say,
                          warn=lambda line: say(f"bench: error: {one_line(line, 10_000)}"))
    for line in cluster.summary(session):
        say(line)
    return records


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
            tunes=variants.parse(args.tune), cpu_watts=args.cpu_watts, gpu_watts=args.gpu_watts,
        )
        config.cells()  # every cell validates itself before anything is trained or written
        return config
    except ValueError as exc:
        raise UserError(str(exc)) from None


@dataclass(frozen=True)
class Report:
    """A rendered report: where it is, and its verdict as data."""

    path: Path  # report.html; report.md, the figures and the CSVs are beside it
    headline: str  # the tutorial configuration's answer, in plain words
    status: str  # holds | fails | inconclusive | mixed | none
    answers: pd.DataFrame  # one row per regime and comparison: status and sentence
    pairs: pd.DataFrame  # every comparison the verdict judged
    warnings: list  # files skipped, torn lines


def render(results, *, name=None, reports="reports", price=(), baseline="cpu", target=None,
           reference=False) -> Report:
    """Render the report of results (folders, files, or a DataFrame from bench.run) as `bench report` does."""
    from bench import prices, report

    if isinstance(results, pd.DataFrame):
        results = [results.attrs["out"]] if "out" in results.attrs else None
        if results is None:
            raise UserError("this DataFrame does not say where its records are: give the results folder instead")
    paths = [results] if isinstance(results, (str, Path)) else list(results)
    try:
        config = report.ReportConfig(name=name or report.default_name(paths), prices=prices.parse(list(price)),
                                     baseline=baseline.strip().lower(),
                                     target=report.parse_target(None if target is None else str(target)))
    except ValueError as exc:
        raise UserError(f"{exc}; choose another --name") from None
    warnings: list[str] = []
    paths += report.reference_results() if reference else []
    path, v, words = report.rendered(paths, config, reports, warnings)
    answers = pd.DataFrame([vars(a) for a in words.answers])
    return Report(path, words.headline[1], words.headline[0], answers, v.pairs, warnings)
