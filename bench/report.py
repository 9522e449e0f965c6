"""The CPU-vs-GPU report: results in, reports/<name>/report.md, a self-contained report.html, figures and CSVs out.

    from bench import report; report.render(["results/"], report.ReportConfig(name="mine"))
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import document as doc
from bench import figures, pairing, prices, provenance, sidebyside, verdict
from bench.labels import labels, multi_machine
from bench.targets import targets
from bench.terminal import noisy_cells, rate_with_ci
from bench.method import SECTIONS
from bench.errors import UserError
from bench.results import DERIVED_ONLY, load
from bench.writer import unwritable_reason

REPORTS_DIR = "reports"
REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reports" / "reference"  # committed GPU-check results
OUTCOME_TEXT = {"holds": "holds", "fails": "does not hold", "inconclusive": "inconclusive"}
FINDING_TEXT = {"holds": "the claim holds", "fails": "the claim does not hold", "mixed": "it depends on the size",
                "inconclusive": "inconclusive", "not measured": "not measured on both devices"}


@dataclass(frozen=True)
class ReportConfig:
    name: str  # the report's folder under the reports directory
    prices: dict = field(default_factory=dict)  # price per hour by device kind (cpu, cuda) or device (cuda:1)
    baseline: str = "cpu"  # the device kind speedups are measured against
    target: float | None = None  # accuracy (fraction) for time and cost to accuracy; None: the common best
    threshold: float = verdict.THRESHOLD  # speedup below which a GPU "gains little"

    def __post_init__(self):
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ValueError(f"report name must be a plain folder name, got {self.name!r}")
        if self.target is not None and not 0 < self.target <= 1:
            raise ValueError(f"target accuracy must be in (0, 1], got {self.target!r}")


def check_writable(folder: str | Path) -> None:
    """Fail before a run trains anything when its report could not be written."""
    reason = unwritable_reason(folder)
    if reason:
        raise UserError(f"cannot write reports to {folder}: {reason}; choose another with --reports, "
                        f"or skip the report with --no-report")


def parse_target(text: str | None) -> float | None:
    """--target: a fraction (0.6) or a percentage (60%)."""
    if text is None:
        return None
    t = text.strip()
    try:
        value = float(t.rstrip("%")) / (100 if t.endswith("%") else 1)
    except ValueError:
        raise UserError(f"cannot read --target {text!r}: give a fraction such as 0.6 or a percentage such as 60%") \
            from None
    if not 0 < value <= 1:
        raise UserError(f"--target must be between 0 and 100%, got {text!r}")
    return value


def reference_results(root: Path = REFERENCE_DIR) -> list[Path]:
    """The results folders of the committed reference runs (reports/reference/<gpu>-<date>/results)."""
    found = sorted(p for p in root.glob("*/results") if p.is_dir())
    if not found:
        raise UserError(f"no reference results under {root}: this checkout has none committed; "
                        f"run scripts/gpu-check.sh on a GPU machine to make some")
    return found


def default_name(paths: list[str | Path]) -> str:
    """A results folder's name (a file's folder); several results: the first name and how many more."""
    names = [(p if p.is_dir() else p.parent).resolve().name or "results" for p in map(Path, paths)]
    unique = list(dict.fromkeys(names))
    return unique[0] if len(unique) == 1 else f"{unique[0]}+{len(unique) - 1}-more"


def render(paths: list[str | Path], config: ReportConfig, reports_dir: str | Path = REPORTS_DIR,
           warnings: list[str] | None = None) -> Path:
    """Load results, build the report and write it; returns the path of report.html."""
    notes: list[str] = [] if warnings is None else warnings
    df = load(paths, notes)
    if df.empty:
        raise UserError(f"no records in {', '.join(map(str, paths))}: give results written by `bench run`")
    document, extras = build(df, config, notes, sources=[str(p) for p in paths])
    return write(document, extras, Path(reports_dir) / config.name)


def _fmt(v, spec: str = ".3g", dash: str = "-") -> str:
    return dash if v is None or pd.isna(v) else format(v, spec)


def build(df: pd.DataFrame, config: ReportConfig, warnings: list[str] = (), sources: list[str] = ()):
    """The document, and the CSV tables written beside it."""
    v = verdict.judge(df, config.baseline, config.threshold)
    hosts = multi_machine(df)
    d = df.assign(label=labels(df))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    blocks: list = []
    machines = df[pairing.MACHINE].nunique()
    subtitle = (f"{len(df)} cells ({(df['status'] == 'ok').sum()} ok) on {machines} "
                f"machine{'s' if machines != 1 else ''}: "
                f"{', '.join(sorted(df['device'].unique()))}; dataset {', '.join(map(str, df['dataset'].unique()))}. "
                f"Rendered {stamp} from {', '.join(f'`{s}`' for s in sources)}.")
    blocks += _verdict_section(v, hosts)
    blocks += _throughput_section(d, v, hosts)
    blocks += sidebyside.section(d)
    blocks += _accuracy_section(d, df, config)
    blocks += _breakdown_section(d)
    blocks += _cost_section(df, config)
    blocks += _gaps_section(d, warnings)
    headers, rows = provenance.environment_table(df)
    blocks += [doc.Heading("Provenance"), doc.Table(headers, rows, "Environment per machine, from the records.")]
    blocks += [doc.Heading("Method"), doc.Bullets(provenance.method_notes(df, config.threshold))]
    title = "Does a GPU pay off for the tutorial CNN?"
    return doc.Document(title, blocks), {"subtitle": subtitle, "cells.csv": _cells_csv(df),
                                         "speedups.csv": v.pairs.to_csv(index=False)}


def _verdict_section(v: verdict.Verdict, hosts: bool) -> list:
    out: list = [doc.Heading("Verdict")]
    out += [doc.Para(sentence, f"verdict-{outcome}") for outcome, sentence in v.headlines]
    if not v.headlines and v.summary:  # no tutorial comparison: the first sentence leads, in a neutral box
        out.append(doc.Para(v.summary[0], "verdict-none"))
    out += [doc.Para(s, "lead") for s in v.summary[0 if v.headlines else 1:]]
    for f in v.findings:
        out += [doc.Heading(f"{f.regime.capitalize()}: {FINDING_TEXT[f.status]}", 3),
                doc.Para(f"({f.definition})", "note"), doc.Bullets(f.sentences)]
    cross = verdict.crossover_sentences(v, hosts)
    if cross:
        out += [doc.Heading("Where the GPU becomes 2x faster" if v.threshold == 2 else "Crossovers", 3),
                doc.Bullets(cross)]
    if not v.pairs.empty:
        rows = []
        for _, p in v.pairs.sort_values(["pipeline", "width", "batch_size"]).iterrows():
            pipeline = p["pipeline"] + (f" ({p['variant'] or 'eager'})" if "variant" in p else "")
            rows.append([verdict.pair_label(p, hosts), pipeline, str(p["batch_size"]), f"{p['width']:g}",
                         f"{p['images_per_s']:,.0f}", f"{p['base_images_per_s']:,.0f}",
                         f"{p['speedup']:.2f}x", f"{p['low']:.2f}-{p['high']:.2f}",
                         doc.Cell(OUTCOME_TEXT[p["outcome"]], p["outcome"])])
        out.append(doc.Table(["devices", "pipeline", "batch", "width", "GPU images/s", "CPU images/s", "speedup",
                              "95% CI", "claim"], rows,
                             f"Every configuration measured on both devices (threshold {v.threshold:g}x).",
                             numeric=(2, 3, 4, 5, 6, 7)))
    return out


def _image(name: str, fig, caption: str) -> list:
    return [doc.Image(name, figures.to_png(fig), caption)] if fig is not None else []


def _throughput_section(d: pd.DataFrame, v: verdict.Verdict, hosts: bool) -> list:
    out: list = [doc.Heading("Throughput and speedup")]
    out += _image("throughput.png", figures.throughput(d),
                  "Training images/s against batch size, log-log; error bars: 95% bootstrap intervals of the median. "
                  "Cells that ended without a result are marked on the batch axis.")
    out += _image("speedup_batch.png", figures.speedup(v.pairs, v.crossovers, "batch", v.threshold, hosts),
                  f"GPU/CPU speedup against batch size at width 1, with 1x and {v.threshold:g}x lines; "
                  f"bands: 95% intervals; star: the smallest batch whose lower bound exceeds {v.threshold:g}x.")
    out += _image("speedup_width.png", figures.speedup(v.pairs, v.crossovers, "width", v.threshold, hosts),
                  f"GPU/CPU speedup against model width, one line per batch size; star: the smallest width whose "
                  f"lower bound exceeds {v.threshold:g}x.")
    if len(out) == 1:
        out.append(doc.Para("No cell finished with step times: there is nothing to plot.", "note"))
    ok = pairing.usable(d).sort_values(["pipeline", "width", "batch_size", "label"])
    rows = [[r["label"], r["pipeline"], str(r["batch_size"]), f"{r['width']:g}",
             rate_with_ci(r), f"{r['step_ms']:.3f}",
             _fmt(r["accuracy"], ".1%"), _fmt(r["train_seconds"], ".1f"), r["device_name"] or "-"]
            for _, r in ok.iterrows()]
    if rows:
        out.append(doc.Table(["device", "pipeline", "batch", "width", "images/s [95% CI]", "step ms (median)",
                              "final accuracy", "training s", "device name"], rows, "Every ok cell.",
                             numeric=(2, 3, 4, 5, 6, 7)))
    return out


def _accuracy_section(d: pd.DataFrame, df: pd.DataFrame, config: ReportConfig) -> list:
    goals = targets(df, config.target)
    fig = figures.time_to_accuracy(d, goals)
    if fig is None:
        return [doc.Heading("Accuracy"), doc.Para("These results have no accuracy curves (evaluation was off, or "
                                                  "they come from pytest-benchmark), so there is no time to accuracy.",
                                                  "note")]
    return [doc.Heading("Accuracy"),
            *_image("time_to_accuracy.png", fig, "Test accuracy against training seconds (evaluation excluded), per "
                    "configuration; dotted: the target accuracy used for time and cost to accuracy."),
            *_image("samples_to_accuracy.png", figures.samples_to_accuracy(d),
                    "Test accuracy against training images seen: devices of one configuration overlap when they "
                    "learn alike; batch size and width change how much each image teaches.")]


def _breakdown_section(d: pd.DataFrame) -> list:
    out: list = [doc.Heading("Where a step's time goes")]
    fig = figures.breakdown(d)
    if fig is None:
        return out + [doc.Para("No step-time breakdown in these results: `bench run` records one for every ok cell "
                               "unless run with `--no-breakdown`.", "note")]
    out += _image("breakdown.png", fig, "Milliseconds per step (profiled sum and timed median) and each section's "
                  "share, from a separate profiling pass with the device synchronized after each section.")
    ok = pairing.usable(d)
    rows = []
    for _, r in ok.sort_values(["pipeline", "width", "batch_size", "label"]).iterrows():
        p = r["profile"] if isinstance(r["profile"], dict) else {}
        ms = p.get("sections_ms")
        if isinstance(ms, dict):
            rows.append([r["label"], r["pipeline"], str(r["batch_size"]), f"{r['width']:g}",
                         *(f"{ms.get(s, 0.0):.3f}" for s in SECTIONS), f"{sum(ms.values()):.3f}",
                         f"{r['step_ms']:.3f}"])
    out.append(doc.Table(["device", "pipeline", "batch", "width", *(f"{s} ms" for s in SECTIONS), "profiled total",
                          "timed step"], rows, "Mean milliseconds per step and section.",
                         numeric=tuple(range(2, 6 + len(SECTIONS)))))
    return out


def _cost_section(df: pd.DataFrame, config: ReportConfig) -> list:
    out: list = [doc.Heading("Cost")]
    c = prices.costs(df, config.prices, config.target)
    if c.empty:
        return out + [doc.Para("No cell finished with step times, so there is nothing to price.", "note")]
    if not config.prices:
        out.append(doc.Para("No prices given: render with `--price cpu=0.19 --price cuda=3.06` (per hour, any "
                            "currency) to see cost per epoch and cost to the target accuracy. Times are below.",
                            "note"))
    else:
        given = ", ".join(f"{k} {v:g}/h" for k, v in sorted(config.prices.items()))
        out.append(doc.Para(f"Prices per hour: {given}. Devices without a price show '-'."))
        items = []
        for column, what in (("cost_per_epoch", "an epoch"), ("cost_to_target", "reaching the target accuracy")):
            best = prices.cheapest(c, column)
            if not best.empty:
                items.append(f"Cheapest {what}: " + "; ".join(
                    f"{r['label']} {prices.money(r[column])} ({r['pipeline']}, batch {r['batch_size']}, "
                    f"width {r['width']:g})" for _, r in best.sort_values(column).iterrows()) + ".")
        out += [doc.Bullets(items)] if items else []
    rows = [[r["label"], r["pipeline"], str(r["batch_size"]), f"{r['width']:g}", _fmt(r["price_per_hour"], "g"),
             _fmt(r["epoch_seconds"], ".1f"), prices.money(r["cost_per_epoch"]), _fmt(r["target_accuracy"], ".1%"),
             _fmt(r["seconds_to_target"], ".1f"), prices.money(r["cost_to_target"])]
            for _, r in c.sort_values(["pipeline", "width", "batch_size", "label"]).iterrows()]
    out.append(doc.Table(["device", "pipeline", "batch", "width", "price/h", "s per epoch", "cost per epoch",
                          "target accuracy", "s to target", "cost to target"], rows,
                         "Per cell; the target is the highest accuracy every device reached in that configuration"
                         if config.target is None else f"Per cell; target accuracy {config.target:.1%}.",
                         numeric=tuple(range(2, 10))))
    return out


def missing_cells(df: pd.DataFrame) -> list[str]:
    """Per machine, the device x configuration (pairing.CONFIG) combinations its other cells imply but that
    are absent."""
    out = []
    several = df[pairing.MACHINE].nunique() > 1
    for machine, g in df.groupby(df[pairing.MACHINE].fillna("unknown host")):
        configs = set(g[pairing.CONFIG].itertuples(index=False, name=None))
        for device in sorted(g["device"].unique()):
            have = set(g[g["device"] == device][pairing.CONFIG].itertuples(index=False, name=None))
            for config in sorted(configs - have):
                c = dict(zip(pairing.CONFIG, config))
                out.append(f"{device}" + (f" @ {machine}" if several else "")
                           + f": no record for {c['pipeline']} pipeline{' [' + c['variant'] + ']' if c['variant'] else ''}"
                           f", batch {c['batch_size']}, width {c['width']:g} ({c['dataset']})")
    return out


def _gaps_section(d: pd.DataFrame, warnings: list[str]) -> list:
    failed = [f"{r['label']}, {r['pipeline']} pipeline, batch {r['batch_size']}, width {r['width']:g}: "
              f"**{r['status']}**" + (f" ({r['message']})" if r["message"] else "")
              for _, r in d[d["status"] != "ok"].iterrows()]
    items = failed + missing_cells(d) + noisy_cells(d) + list(warnings)
    if not items:
        return []
    return [doc.Heading("Gaps and warnings"),
            doc.Para("Cells that ended without a result, configurations missing on a device, noisy cells and "
                     "reading problems. Speedups are computed only where both devices have ok cells.", "note"),
            doc.Bullets(items)]


def _cells_csv(df: pd.DataFrame) -> str:
    flat = df.drop(columns=[c for c in ("accuracy_curve", "step_seconds", "env", "profile", *DERIVED_ONLY)
                            if c in df])
    for s in SECTIONS:
        flat[f"breakdown_{s}_ms"] = df["profile"].map(
            lambda p, s=s: p["sections_ms"].get(s) if isinstance(p, dict) and "sections_ms" in p else None)
    return flat.to_csv(index=False)


def write(document: doc.Document, extras: dict, folder: Path) -> Path:
    """Write figures, CSVs, report.md and report.html, each atomically; returns report.html's path."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for image in document.images:
            doc.write_atomic(folder / image.filename, image.png)
        for name in ("cells.csv", "speedups.csv"):
            doc.write_atomic(folder / name, extras[name].encode())
        md = f"{extras['subtitle']}\n\n" + doc.to_markdown(document).split("\n", 2)[2]
        doc.write_atomic(folder / "report.md", (f"# {document.title}\n\n" + md).encode())
        doc.write_atomic(folder / "report.html", doc.to_html(document, extras["subtitle"]).encode())
    except OSError as exc:
        raise UserError(f"cannot write the report to {folder}: {exc.strerror or exc}; "
                        f"choose a writable folder with --reports") from None
    return folder / "report.html"
