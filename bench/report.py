"""The CPU-vs-GPU report: results in, reports/<name>/report.md, a self-contained report.html, figures and CSVs out.

    from bench import report; report.render(["results/"], report.ReportConfig(name="mine"))
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import document as doc
from bench import pairing, provenance, sections, sidebyside, swap, verdict
from bench.labels import labels, multi_machine
from bench.sentences import Words, describe
from bench.method import SECTIONS
from bench.errors import UserError
from bench.results import DERIVED_ONLY, load
from bench.writer import unwritable_reason

REPORTS_DIR = "reports"
REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reports" / "reference"  # committed GPU-check results


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


def check_writable(folder: str | Path, name: str | None = None) -> None:
    """Fail before a run trains anything when its report could not be written: the reports folder cannot
    be written, or its report folder `name` holds something that is not a report (which bench never replaces)."""
    reason = unwritable_reason(folder)
    if reason:
        raise UserError(f"cannot write reports to {folder}: {reason}; choose another with --reports, "
                        f"or skip the report with --no-report")
    if name is not None:
        _check_replaceable(Path(folder) / name)


REPORT_FILE = re.compile(r"[^/]+\.(png|csv|md|html)|\..+\.tmp")  # what write() puts there (.tmp: older versions')


def _check_replaceable(folder: Path) -> None:
    """A report is rendered into a new folder that then replaces the old one whole: refuse a folder whose
    contents are not a report's (results, notes, other folders), so no render can ever remove them."""
    if not os.path.lexists(folder):
        return
    if not folder.is_dir() or folder.is_symlink():
        raise UserError(f"cannot write the report to {folder}: it is not a folder bench made; choose another "
                        f"--name or --reports")
    foreign = sorted(e.name for e in os.scandir(folder) if not (e.is_file(follow_symlinks=False)
                                                                and REPORT_FILE.fullmatch(e.name)))
    if foreign:
        listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError(f"cannot write the report to {folder}: it holds {listed}, which no report holds, and a "
                        f"report replaces its folder whole; choose another --name or --reports")


def run_name(out: str | Path) -> str:
    """The report name of a run: its results folder's name, `.` and `sub/..` resolved first."""
    return Path(out).resolve().name or "results"


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
    """The results folders of the committed reference runs (reports/reference/<gpu>-<YYYY-MM-DD>/results): the
    newest of each GPU, since an older run of the same GPU stays committed as history, not as more evidence (two
    check runs of one machine would otherwise be pooled as one)."""
    found = sorted(p for p in root.glob("*/results") if p.is_dir())
    if not found:
        raise UserError(f"no reference results under {root}: this checkout has none committed; "
                        f"run scripts/gpu-check.sh on a GPU machine to make some")
    newest: dict[str, Path] = {}
    for path in found:  # sorted, so a later date replaces an earlier one of the same GPU
        name = path.parent.name
        gpu = name[:-11] if re.fullmatch(r".+-\d{4}-\d{2}-\d{2}", name) else name
        newest[gpu] = path
    return sorted(newest.values())


def default_name(paths: list[str | Path]) -> str:
    """A results folder's name (a file's folder); several results: the first name and how many more."""
    names = [(p if p.is_dir() else p.parent).resolve().name or "results" for p in map(Path, paths)]
    unique = list(dict.fromkeys(names))
    return unique[0] if len(unique) == 1 else f"{unique[0]}+{len(unique) - 1}-more"


def render(paths: list[str | Path], config: ReportConfig, reports_dir: str | Path = REPORTS_DIR,
           warnings: list[str] | None = None) -> Path:
    """Load results, build the report and write it; returns the path of report.html."""
    return rendered(paths, config, reports_dir, warnings)[0]


def rendered(paths: list[str | Path], config: ReportConfig, reports_dir: str | Path = REPORTS_DIR,
             warnings: list[str] | None = None) -> tuple[Path, verdict.Verdict, Words]:
    """render(), also returning the verdict and its words (for the Python API)."""
    notes: list[str] = [] if warnings is None else warnings
    df = load(paths, notes)
    if df.empty:
        raise UserError(f"no records in {', '.join(map(str, paths))}: give results written by `bench run`")
    document, extras = build(df, config, notes, sources=[str(p) for p in paths])
    return write(document, extras, Path(reports_dir) / config.name), extras["verdict"], extras["words"]


def build(df: pd.DataFrame, config: ReportConfig, warnings: list[str] = (), sources: list[str] = ()):
    """The document, and the CSV tables written beside it."""
    v = verdict.judge(df, config.baseline, config.threshold)
    words = describe(v, df)
    d = df.assign(label=labels(df))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machines = df[pairing.MACHINE].nunique()
    subtitle = (f"{len(df)} cells ({(df['status'] == 'ok').sum()} ok) on {machines} "
                f"machine{'s' if machines != 1 else ''} ({', '.join(sorted(df[pairing.MACHINE].unique()))}): "
                f"{', '.join(sorted(df['device'].unique()))}; dataset {', '.join(map(str, df['dataset'].unique()))}. "
                f"Rendered {stamp} from {', '.join(f'`{s}`' for s in sources)}.")
    blocks: list = [*sections.verdict_section(v, words), *sections.figures_section(d, v), *sidebyside.section(d),
                    *sections.accuracy_section(d, df, config), *sections.breakdown_section(d),
                    *sections.cost_section(df, config), *sections.energy_section(df, config),
                    *sections.gaps_section(d, warnings),
                    *sections.comparisons_appendix(v, multi_machine(df)), *sections.cells_appendix(d)]
    headers, rows = provenance.environment_table(df)
    blocks += [doc.Heading("Provenance"), doc.Table(headers, rows, "Environment per machine, from the records.")]
    blocks += [doc.Heading("Method"), doc.Bullets(provenance.method_notes(df, config.threshold))]
    title = "Does a GPU pay off for the tutorial CNN?"
    pairs_csv = _csv_safe(v.pairs.drop(columns=["row", "base_row"], errors="ignore")).to_csv(index=False)
    return doc.Document(title, blocks), {"subtitle": subtitle, "cells.csv": _cells_csv(df), "speedups.csv": pairs_csv,
                                         "verdict": v, "words": words}


def _cells_csv(df: pd.DataFrame) -> str:
    flat = df.drop(columns=[c for c in ("accuracy_curve", "step_seconds", "env", "profile", "energy", *DERIVED_ONLY)
                            if c in df])
    for s in SECTIONS:
        flat[f"breakdown_{s}_ms"] = df["profile"].map(
            lambda p, s=s: p["sections_ms"].get(s) if isinstance(p, dict) and "sections_ms" in p else None)
    return _csv_safe(flat).to_csv(index=False)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet reads a cell starting so as a formula


def _csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula (=HYPERLINK(...), +cmd|..., @SUM(...)) prefixed
    with a single quote, as OWASP advises for CSV; numbers are left as they are."""
    def safe(v):
        return "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v

    text = [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c].dtype)]
    return df.assign(**{c: df[c].map(safe) for c in text}) if text else df


def write(document: doc.Document, extras: dict, folder: Path) -> Path:
    """Write figures, CSVs, report.md and report.html into a new folder that then replaces `folder` whole
    (bench.swap): a reader, or a render killed at any moment, finds the old report or the new one, never a
    mix, and no temporary file is left behind. Returns report.html's path."""
    folder = Path(folder)
    _check_replaceable(folder)
    try:
        with swap.replacing(folder) as new:
            for image in document.images:
                (new / image.filename).write_bytes(image.png)
            for name in ("cells.csv", "speedups.csv"):
                (new / name).write_bytes(extras[name].encode())
            md = f"{doc.markdown_text(extras['subtitle'])}\n\n" + doc.to_markdown(document).split("\n", 2)[2]
            (new / "report.md").write_bytes((f"# {document.title}\n\n" + md).encode())
            (new / "report.html").write_bytes(doc.to_html(document, extras["subtitle"]).encode())
    except OSError as exc:
        raise UserError(f"cannot write the report to {folder}: {exc.strerror or exc}; "
                        f"choose a writable folder with --reports") from None
    return folder / "report.html"
