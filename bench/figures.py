"""Report figures drawn with matplotlib's Agg canvas (no pyplot, no display): each returns a Figure or None.

    from bench import figures; png = figures.to_png(figures.throughput(bench.results.load("results/")))
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, LogLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory

from bench import pairing, verdict
from bench.errors import printable
from bench.labels import labels
from bench.method import SECTIONS

DPI = 110
WIDE = (8.6, 4.4)  # inches
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]  # matplotlib's tab10
SECTION_COLORS = {"data": "#8da0cb", "h2d": "#e78ac3", "forward": "#66c2a5", "backward": "#fc8d62",
                  "optimizer": "#a6d854"}
LINESTYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P"]


# Labels hold text from records (host names, variants): a "$" there must print as a dollar, not start math
# text that fails to parse. Every figure is made, and drawn, with math text off.
literal_text = matplotlib.rc_context({"text.parse_math": False})


@literal_text
def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def colors(labels) -> dict[str, str]:
    """A stable colour per device label: CPUs first, in sorted order, so every figure agrees."""
    ordered = sorted(set(labels), key=lambda s: (not s.startswith("cpu"), s))
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(ordered)}


def legend_layout(names, max_cols: int = 4, line_chars: int = 110) -> tuple[int, float]:
    """Columns for a legend below the panels, as many as its longest name allows, and the inches the figure
    grows by to hold its rows (without that, many series squeeze the panels to nothing)."""
    names = list(names)
    ncols = max(1, min(max_cols, len(names), line_chars // max((len(n) for n in names), default=1)))
    return ncols, 0.2 * -(-len(names) // ncols)


def labelled(df: pd.DataFrame, threads: bool | None = None) -> pd.DataFrame:
    return df.assign(label=labels(df, threads)) if not df.empty else df.assign(label=[])


def _times_formatter(ax, axis="y"):
    fmt = FuncFormatter(lambda v, _: f"{v:g}x")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(fmt)
    target.set_minor_formatter(NullFormatter())


def _plain(v: float) -> str:
    return f"{v:,.0f}" if v >= 1 else f"{v:g}"


class PlainMinorLog(LogFormatterSciNotation):
    """A log axis's minor labels, on the ticks matplotlib would label (an axis spanning under a decade or two),
    as plain numbers: its own are math text ("$\\mathdefault{6\\times10^{3}}$"), which prints as written here,
    every figure being drawn with math text off (literal_text)."""

    def __call__(self, x, pos=None):
        return _plain(x) if super().__call__(x, pos) else ""


def _plain_log(ax, axis: str, base: int = 10):
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=base)
    target.set_major_formatter(FuncFormatter(lambda v, _: _plain(v)))
    target.set_minor_formatter(PlainMinorLog(base, labelOnlyBase=False) if base == 10 else NullFormatter())


@literal_text
def throughput(df: pd.DataFrame) -> Figure | None:
    """images/s against batch size (log-log), one line per device, variant and pipeline, a panel per width; a CPU
    at its fastest thread count for each cell (a thread probe would otherwise add a line per count); cells that
    ended without a result (oom, diverged, error) are marked on the batch axis."""
    d = labelled(df, threads=False)  # one line per device, through its fastest count
    ok = pairing.fastest(pairing.usable(d), [pairing.MACHINE, "device", *pairing.CONFIG])
    if ok.empty:
        return None
    palette = colors(d["label"])
    spread = ok.groupby("width")["batch_size"].nunique()
    widths = sorted(spread[spread > 1].index)[:3] or [min(ok["width"])]  # a lone point per width says little
    shown = ok[ok["width"].isin(widths)]
    series = {f"{lab}, {pipe}" for lab, pipe in zip(shown["label"], shown["pipeline"])}
    ncols, extra = legend_layout(series)
    fig = Figure(figsize=(WIDE[0], (WIDE[1] if len(widths) == 1 else 4.0) + extra), layout="constrained")
    axes = fig.subplots(1, len(widths), sharey=True, squeeze=False)[0]
    pipelines = sorted(ok["pipeline"].unique())
    for ax, width in zip(axes, widths):
        here = ok[ok["width"] == width]
        for (lab, pipe), g in here.groupby(["label", "pipeline"]):
            g = g.sort_values("batch_size")
            yerr = np.vstack([g["images_per_s"] - g["images_per_s_low"],
                              g["images_per_s_high"] - g["images_per_s"]]).clip(min=0)
            ax.errorbar(g["batch_size"], g["images_per_s"], yerr=yerr, color=palette[lab],
                        linestyle=LINESTYLES[pipelines.index(pipe) % 4], marker=MARKERS[pipelines.index(pipe) % 6],
                        markersize=5, capsize=2, label=f"{lab}, {pipe}")
        bad = d[(d["status"] != "ok") & (d["width"] == width)]
        mark = blended_transform_factory(ax.transData, ax.transAxes)
        for _, r in bad.iterrows():
            ax.plot([r["batch_size"]], [0.04], marker="x", color=palette.get(r["label"], "k"), transform=mark,
                    markersize=8, clip_on=False)
            ax.annotate(r["status"], (r["batch_size"], 0.04), xycoords=mark, xytext=(0, 7), ha="center",
                        textcoords="offset points", fontsize=8, color=palette.get(r["label"], "k"))
        _plain_log(ax, "x", 2)
        _plain_log(ax, "y")
        ax.set_xlabel("batch size (images per step)")
        ax.set_title(f"width {width:g}" + (" (the tutorial net)" if width == 1 else ""), fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("training images/s (95% CI)")
    handles, names = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in names:
                handles.append(h)
                names.append(n)
    fig.legend(handles, names, loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)
    fig.suptitle("Training throughput against batch size", fontsize=11)
    return fig


def _reference_lines(ax, threshold: float):
    ax.axhline(1, color="#444", linewidth=1)
    ax.axhline(threshold, color="#b2182b", linewidth=1, linestyle="--")
    mark = blended_transform_factory(ax.transAxes, ax.transData)
    # at the right: the tutorial configuration's note sits at the left, beside batch 4
    ax.text(0.99, 1, "1x: as fast as the CPU", transform=mark, fontsize=8, va="bottom", ha="right", color="#444")
    ax.text(0.99, threshold, f"{threshold:g}x: the claim's threshold", transform=mark, fontsize=8, va="bottom",
            ha="right", color="#b2182b")


STYLE = {verdict.AS_WRITTEN: ("-", "o", "as written"), verdict.AT_BEST: ("--", "s", "at their best")}


def _speedup_axes(ax, p: pd.DataFrame, threshold: float, xlabel: str) -> None:
    _reference_lines(ax, threshold)
    ax.set_yscale("log")
    low, high = min(p["low"].min(), 0.5), max(p["high"].max(), threshold * 1.5)
    ax.set_ylim(low / 1.3, high * 1.3)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 3, 5)))
    ax.margins(x=0.06)
    _times_formatter(ax)
    _plain_log(ax, "x", 2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("speedup: GPU images/s / CPU images/s")
    ax.grid(True, which="major", alpha=0.3)


def _series(ax, g: pd.DataFrame, x: str, color: str, linestyle: str, marker: str, label: str) -> None:
    """One line with 95% error bars; inconclusive points hollow."""
    g = g.sort_values(x)
    yerr = np.vstack([g["speedup"] - g["low"], g["high"] - g["speedup"]]).clip(min=0)
    ax.errorbar(g[x], g["speedup"], yerr=yerr, color=color, linestyle=linestyle, marker=marker, markersize=6,
                capsize=3, label=label, markerfacecolor=color)
    undecided = g[g["outcome"] == "inconclusive"]
    ax.plot(undecided[x], undecided["speedup"], linestyle="none", marker=marker, markersize=6, color=color,
            markerfacecolor="white", zorder=4)


@literal_text
def headline(v: verdict.Verdict) -> Figure | None:
    """The answer in one picture: GPU/CPU speedup against batch size at width 1, as written and at their best,
    with 95% intervals, the 1x and threshold lines, and the tutorial configuration marked."""
    parts = [v.of(c) for c in (verdict.AS_WRITTEN, verdict.AT_BEST)]
    p = pd.concat([verdict.evidence(q[q["width"] == 1]) for q in parts if not q.empty]) if any(
        not q.empty for q in parts) else pd.DataFrame()
    if p.empty:
        return None
    fig = Figure(figsize=(WIDE[0], 5.2), layout="constrained")
    ax = fig.subplots()
    gpus = sorted(set(zip(p["device"], p[verdict.M])))
    series = sorted(set(zip(p["device"], p[verdict.M], p[verdict.BASE_M], p["pipeline"])))
    for (comparison, device, machine, base, pipeline), g in p.groupby(
            ["comparison", "device", verdict.M, verdict.BASE_M, "pipeline"], sort=True):
        linestyle, marker, name = STYLE[comparison]
        color = PALETTE[series.index((device, machine, base, pipeline)) % len(PALETTE)]
        if pipeline == "tutorial":
            marker, linestyle = "*", ":"
        label = f"{pipeline} pipeline, {name}"
        label += f", {device} @ {machine}" if len(gpus) > 1 else ""
        label += f" (CPU of {base})" if base != machine else ""
        _series(ax, g, "batch_size", color, linestyle, marker, printable(label))
    tutorial = p[(p["pipeline"] == "tutorial") & (p["batch_size"] == 4)]
    if not tutorial.empty:
        ax.annotate("the tutorial's own\nconfiguration", (4, tutorial["speedup"].max()), xytext=(8, 10),
                    textcoords="offset points", fontsize=8, arrowprops={"arrowstyle": "-", "color": "#888"})
    _speedup_axes(ax, p, v.threshold, "batch size (images per step), width 1: the tutorial net")
    ax.set_title("GPU/CPU speedup against batch size (error bars: 95% intervals; hollow: inconclusive)",
                 fontsize=10)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig


@literal_text
def speedup_width(v: verdict.Verdict, max_lines: int = 4) -> Figure | None:
    """GPU/CPU speedup against model width, as written and at their best, for up to max_lines batch sizes
    (those measured at the most widths)."""
    parts = [verdict.evidence(q) for q in (v.of(verdict.AS_WRITTEN), v.of(verdict.AT_BEST)) if not q.empty]
    p = pd.concat(parts) if parts else pd.DataFrame()
    if p.empty:
        return None
    p = p[p["pipeline"] == "resident"] if (p["pipeline"] == "resident").any() else p
    widths = p.groupby("batch_size")["width"].nunique()
    batches = sorted(widths[widths > 1].sort_values(ascending=False).index[:max_lines])
    p = p[p["batch_size"].isin(batches)]
    if p.empty:
        return None
    fig = Figure(figsize=(WIDE[0], 5.2), layout="constrained")
    ax = fig.subplots()
    for (comparison, batch), g in p.groupby(["comparison", "batch_size"], sort=True):
        linestyle, marker, name = STYLE[comparison]
        _series(ax, g, "width", PALETTE[batches.index(batch) % len(PALETTE)], linestyle, marker,
                f"batch {batch}, {name}")
    _speedup_axes(ax, p, v.threshold, "width multiplier (1 = the tutorial net)")
    ax.set_title("GPU/CPU speedup against width (error bars: 95% intervals; hollow: inconclusive)", fontsize=10)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig


def _profiled(df: pd.DataFrame) -> pd.DataFrame:
    ok = pairing.usable(labelled(df))  # labels from all rows, so every figure names a device alike
    return ok[ok["profile"].map(lambda p: isinstance(p, dict) and isinstance(p.get("sections_ms"), dict)
                                and sum(p["sections_ms"].get(s, 0.0) for s in SECTIONS) > 0)]  # a bar to draw


BREAKDOWN_ROWS = 24  # more cells than this and the bars stop being readable: the table below has them all


@literal_text
def breakdown(df: pd.DataFrame, max_rows: int = BREAKDOWN_ROWS) -> Figure | None:
    """Where a step's time goes, per device and configuration: milliseconds per section, and each section's
    share of the step; the timed (unsynchronized) median step is marked for comparison. At most max_rows cells:
    the tutorial pipeline's first, then the tutorial net's (width 1), then the rest by batch."""
    ok = _profiled(df)
    if ok.empty:
        return None
    ok = ok.assign(_t=ok["pipeline"] != "tutorial").sort_values(["_t", "width", "batch_size", "label"])
    left_out = max(0, len(ok) - max_rows)
    ok = ok.head(max_rows)
    names = [f"{r['label']}  {r['pipeline']} bs{r['batch_size']} w{r['width']:g}" for _, r in ok.iterrows()]
    ms = np.array([[r["profile"]["sections_ms"].get(s, 0.0) for s in SECTIONS] for _, r in ok.iterrows()])
    fig = Figure(figsize=(WIDE[0], 1.5 + 0.34 * len(ok)), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=[1, 1.4])
    y = np.arange(len(ok))
    total = ms.sum(axis=1)
    left.barh(y, total, color="#bbbbbb", height=0.7, label="profiled step (sum of sections)")
    left.scatter(ok["step_ms"], y, marker="|", s=260, linewidths=2, color="black", zorder=3,
                 label="timed step (median, unsynchronized)")
    left.set_xscale("log")
    left.set_xlim(min(total.min(), ok["step_ms"].min()) / 2, max(total.max(), ok["step_ms"].max()) * 1.5)
    left.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    left.xaxis.set_minor_formatter(PlainMinorLog(10, labelOnlyBase=False))
    left.set_yticks(y, names, fontsize=8)
    left.set_xlabel("milliseconds per step (log scale)")
    left.invert_yaxis()  # the first cell on top
    share = ms / total[:, None].clip(min=1e-12) * 100
    for i, s in enumerate(SECTIONS):
        right.barh(y, share[:, i], left=share[:, :i].sum(axis=1), color=SECTION_COLORS[s], label=s, height=0.7)
    right.set_xlabel("share of the profiled step (%)")
    right.set_xlim(0, 100)
    for ax in (left, right):
        ax.grid(True, axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    fig.suptitle("Step-time breakdown (separate profiling pass, device synchronized after each section)"
                 + (f"; {left_out} more cells in the table below" if left_out else ""), fontsize=11)
    return fig
