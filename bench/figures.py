"""Report figures drawn with matplotlib's Agg canvas (no pyplot, no display): each returns a Figure or None.

    from bench import figures; png = figures.to_png(figures.throughput(bench.results.load("results/")))
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory

from bench import pairing, verdict
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


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def colors(labels) -> dict[str, str]:
    """A stable colour per device label: CPUs first, in sorted order, so every figure agrees."""
    ordered = sorted(set(labels), key=lambda s: (not s.startswith("cpu"), s))
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(ordered)}


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(label=labels(df)) if not df.empty else df.assign(label=[])


def _times_formatter(ax, axis="y"):
    fmt = FuncFormatter(lambda v, _: f"{v:g}x")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(fmt)
    target.set_minor_formatter(NullFormatter())


def _plain_log(ax, axis: str, base: int = 10):
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=base)
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    if base != 10:
        target.set_minor_formatter(NullFormatter())


def throughput(df: pd.DataFrame) -> Figure | None:
    """images/s against batch size (log-log), one line per device and pipeline, a panel per width; cells that
    ended without a result (oom, diverged, error) are marked on the batch axis."""
    d = _frame(df)
    ok = pairing.usable(d)
    if ok.empty:
        return None
    palette = colors(d["label"])
    spread = ok.groupby("width")["batch_size"].nunique()
    widths = sorted(spread[spread > 1].index)[:3] or [min(ok["width"])]  # a lone point per width says little
    fig = Figure(figsize=(WIDE[0], WIDE[1] if len(widths) == 1 else 4.0), layout="constrained")
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
    axes[0].set_ylabel("training images/s (median, 95% CI)")
    handles, names = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        for h, n in zip(*ax.get_legend_handles_labels()):
            if n not in names:
                handles.append(h)
                names.append(n)
    fig.legend(handles, names, loc="outside lower center", ncols=min(4, len(names)), fontsize=8, frameon=False)
    fig.suptitle("Training throughput against batch size", fontsize=11)
    return fig


def _reference_lines(ax, threshold: float):
    ax.axhline(1, color="#444", linewidth=1)
    ax.axhline(threshold, color="#b2182b", linewidth=1, linestyle="--")
    mark = blended_transform_factory(ax.transAxes, ax.transData)
    ax.text(0.01, 1, "1x: as fast as the CPU", transform=mark, fontsize=8, va="bottom", color="#444")
    ax.text(0.01, threshold, f"{threshold:g}x: the claim's threshold", transform=mark, fontsize=8, va="bottom",
            color="#b2182b")


def speedup(pairs: pd.DataFrame, crossovers: pd.DataFrame, axis: str, threshold: float = verdict.THRESHOLD,
            show_host: bool = False) -> Figure | None:
    """GPU/CPU speedup against batch size (at width 1) or width (one line per batch size), with 95% bands,
    the 1x and threshold lines, and each crossover marked."""
    if axis == "batch":
        p, x, other = pairs[pairs["width"] == 1], "batch_size", "width"
    else:
        p, x, other = pairs, "width", "batch_size"
        varied = p.groupby(["dataset", "pipeline", "device", verdict.M, "base_device", verdict.BASE_M, "batch_size"]
                           + (["variant"] if "variant" in p else []))
        p = varied.filter(lambda g: g["width"].nunique() > 1)
    if p.empty or p[x].nunique() < 2:
        return None
    fig = Figure(figsize=WIDE, layout="constrained")
    ax = fig.subplots()
    keys = ["pipeline", "device", verdict.M, "base_device", verdict.BASE_M] + (["variant"] if "variant" in p else [])
    groups = list(p.groupby(keys + [other], sort=True))
    for i, (key, g) in enumerate(groups):
        k = dict(zip(keys + [other], key))
        g = g.sort_values(x)
        color = PALETTE[i % len(PALETTE)]
        name = f"{verdict.pair_label(g.iloc[0], show_host)}, {k['pipeline']}"
        name += f" ({k['variant'] or 'eager'})" if "variant" in k else ""
        name += f", batch {k[other]}" if axis == "width" else ""
        ax.plot(g[x], g["speedup"], marker="o", markersize=5, color=color, label=name)
        ax.fill_between(g[x], g["low"], g["high"], color=color, alpha=0.18, linewidth=0)
        c = crossovers[crossovers["axis"] == axis]
        for col in keys:
            if col in c:
                c = c[c[col] == k[col]]
        c = c[c["fixed"] == k[other]]
        if not c.empty and c["crossover"].notna().iloc[0]:
            at = c["crossover"].iloc[0]
            y = g[g[x] == at]["speedup"].iloc[0]
            ax.plot([at], [y], marker="*", markersize=16, color=color, markeredgecolor="black", zorder=5)
            first = at == p[x].min()  # a label left of the first point would leave the axes
            ax.annotate(f"{threshold:g}x from {'batch' if axis == 'batch' else 'width'} {at:g}", (at, y),
                        xytext=(10, -12) if first else (-10, 8), ha="left" if first else "right",
                        textcoords="offset points", fontsize=8, color=color, fontweight="bold")
    _reference_lines(ax, threshold)
    ax.set_yscale("log")
    low, high = min(p["low"].min(), 0.5), max(p["high"].max(), threshold * 1.5)
    ax.set_ylim(low / 1.3, high * 1.3)
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 3, 5)))
    ax.margins(x=0.06)
    _times_formatter(ax)
    _plain_log(ax, "x", 2)
    ax.set_xlabel("batch size (images per step)" if axis == "batch" else "width multiplier (1 = the tutorial net)")
    ax.set_ylabel("speedup: GPU images/s / CPU images/s")
    ax.grid(True, which="major", alpha=0.3)
    title = "GPU/CPU speedup against batch size (width 1)" if axis == "batch" else "GPU/CPU speedup against width"
    ax.set_title(title + "; bands: 95% bootstrap intervals; star: crossover", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return fig


def _curves(df: pd.DataFrame) -> pd.DataFrame:
    ok = pairing.usable(_frame(df))  # labels from all rows, so every figure names a device alike
    return ok[ok["accuracy_curve"].map(lambda c: isinstance(c, list) and len(c) > 1)]


def _config_name(r) -> str:
    return f"{r['pipeline']}, batch {r['batch_size']}, width {r['width']:g}"


def time_to_accuracy(df: pd.DataFrame, targets: dict | None = None, max_panels: int = 8) -> Figure | None:
    """Test accuracy against training seconds: a panel per configuration, a line per device, and the target
    accuracy (the highest every device reached) as a dotted line."""
    ok = _curves(df)
    if ok.empty:
        return None
    palette = colors(_frame(df)["label"])
    configs = sorted({(r.dataset, r.pipeline, r.batch_size, r.width) for r in ok.itertuples()},
                     key=lambda c: (c[1] != "tutorial", c[3], c[2]))[:max_panels]
    ncols = min(4, len(configs))
    nrows = -(-len(configs) // ncols)
    fig = Figure(figsize=(WIDE[0], 0.6 + 2.5 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    for ax, cfg in zip(axes, configs):
        here = ok[(ok["dataset"] == cfg[0]) & (ok["pipeline"] == cfg[1]) & (ok["batch_size"] == cfg[2])
                  & (ok["width"] == cfg[3])]
        for _, r in here.iterrows():
            curve = pd.DataFrame(r["accuracy_curve"])
            ax.plot(curve["seconds"], curve["accuracy"] * 100, marker="o", markersize=3, color=palette[r["label"]],
                    label=r["label"])
        goal = (targets or {}).get(cfg)
        if goal is not None:
            ax.axhline(goal * 100, color="#888", linestyle=":", linewidth=1)
        ax.set_title(f"{cfg[1]}, batch {cfg[2]}, width {cfg[3]:g}", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(left=0)
    for ax in axes[len(configs):]:
        ax.set_visible(False)
    for ax in axes[::ncols]:
        ax.set_ylabel("test accuracy (%)", fontsize=9)
    for ax in axes[max(0, len(configs) - ncols):len(configs)]:
        ax.set_xlabel("training seconds", fontsize=8)
    handles = {h.get_label(): h for ax in axes for h in ax.get_lines() if not h.get_label().startswith("_")}
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(6, len(handles)),
               fontsize=8, frameon=False)
    fig.suptitle("Time to accuracy (dotted: the target accuracy)", fontsize=11)
    return fig


def samples_to_accuracy(df: pd.DataFrame) -> Figure | None:
    """Test accuracy against training images seen: a colour per configuration, a line style per device.
    Devices of one configuration overlap when they learn alike."""
    ok = _curves(df)
    if ok.empty:
        return None
    configs = sorted({_config_name(r) for _, r in ok.iterrows()})
    devices = sorted(ok["label"].unique(), key=lambda s: (not s.startswith("cpu"), s))
    fig = Figure(figsize=(WIDE[0], 4.0), layout="constrained")
    ax = fig.subplots()
    for _, r in ok.iterrows():
        curve = pd.DataFrame(r["accuracy_curve"])
        ax.plot(curve["samples"], curve["accuracy"] * 100, color=PALETTE[configs.index(_config_name(r)) % len(PALETTE)],
                linestyle=LINESTYLES[devices.index(r["label"]) % 4], marker=MARKERS[devices.index(r["label"]) % 6],
                markersize=3)
    handles = [Line2D([], [], color=PALETTE[i % len(PALETTE)], label=c) for i, c in enumerate(configs)]
    handles += [Line2D([], [], color="#444", linestyle=LINESTYLES[i % 4], marker=MARKERS[i % 6], markersize=3,
                       label=dev) for i, dev in enumerate(devices)]
    ax.legend(handles=handles, fontsize=8, loc="lower right", frameon=False)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e3:,.0f}k" if v else "0"))
    ax.set_xlabel("training images seen")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, alpha=0.3)
    ax.set_title("Samples to accuracy: colour = configuration, line style = device", fontsize=10)
    return fig


def _profiled(df: pd.DataFrame) -> pd.DataFrame:
    ok = pairing.usable(_frame(df))  # labels from all rows, so every figure names a device alike
    return ok[ok["profile"].map(lambda p: isinstance(p, dict) and isinstance(p.get("sections_ms"), dict))]


def breakdown(df: pd.DataFrame) -> Figure | None:
    """Where a step's time goes, per device and configuration: milliseconds per section, and each section's
    share of the step; the timed (unsynchronized) median step is marked for comparison."""
    ok = _profiled(df)
    if ok.empty:
        return None
    ok = ok.assign(_t=ok["pipeline"] != "tutorial").sort_values(["_t", "width", "batch_size", "label"])
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
    fig.suptitle("Step-time breakdown (separate profiling pass, device synchronized after each section)",
                 fontsize=11)
    return fig
