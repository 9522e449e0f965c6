"""Accuracy figures: test accuracy against training seconds (time to accuracy) and against images seen."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from bench import pairing
from bench.figures import LINESTYLES, MARKERS, PALETTE, WIDE, colors, labelled, legend_layout, literal_text


def _curves(df: pd.DataFrame) -> pd.DataFrame:
    ok = pairing.usable(labelled(df))  # labels from all rows, so every figure names a device alike
    return ok[ok["accuracy_curve"].map(lambda c: isinstance(c, list) and len(c) > 1)]


def _config_name(r) -> str:
    return f"{r['pipeline']}, batch {r['batch_size']}, width {r['width']:g}"


@literal_text
def time_to_accuracy(df: pd.DataFrame, targets: dict | None = None, max_panels: int = 8) -> Figure | None:
    """Test accuracy against training seconds: a panel per configuration, a line per device, and the target
    accuracy (the highest every device reached) as a dotted line."""
    ok = _curves(df)
    if ok.empty:
        return None
    palette = colors(labelled(df)["label"])
    configs = sorted({(r.dataset, r.pipeline, r.batch_size, r.width) for r in ok.itertuples()},
                     key=lambda c: (c[1] != "tutorial", c[3], c[2]))[:max_panels]
    ncols = min(4, len(configs))
    nrows = -(-len(configs) // ncols)
    shown = ok[[(r.dataset, r.pipeline, r.batch_size, r.width) in configs for r in ok.itertuples()]]
    legend_cols, extra = legend_layout(shown["label"].unique(), max_cols=6)
    fig = Figure(figsize=(WIDE[0], 0.6 + 2.5 * nrows + extra), layout="constrained")
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
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=legend_cols, fontsize=8,
               frameon=False)
    fig.suptitle("Time to accuracy (dotted: the target accuracy)", fontsize=11)
    return fig


@literal_text
def samples_to_accuracy(df: pd.DataFrame) -> Figure | None:
    """Test accuracy against training images seen: a colour per configuration, a line style per device.
    Devices of one configuration overlap when they learn alike."""
    ok = _curves(df)
    if ok.empty:
        return None
    configs = sorted({_config_name(r) for _, r in ok.iterrows()})
    devices = sorted(ok["label"].unique(), key=lambda s: (not s.startswith("cpu"), s))
    legend_cols, extra = legend_layout(configs + devices)
    fig = Figure(figsize=(WIDE[0], 4.0 + extra), layout="constrained")
    ax = fig.subplots()
    for _, r in ok.iterrows():
        curve = pd.DataFrame(r["accuracy_curve"])
        ax.plot(curve["samples"], curve["accuracy"] * 100, color=PALETTE[configs.index(_config_name(r)) % len(PALETTE)],
                linestyle=LINESTYLES[devices.index(r["label"]) % 4], marker=MARKERS[devices.index(r["label"]) % 6],
                markersize=3)
    handles = [Line2D([], [], color=PALETTE[i % len(PALETTE)], label=c) for i, c in enumerate(configs)]
    handles += [Line2D([], [], color="#444", linestyle=LINESTYLES[i % 4], marker=MARKERS[i % 6], markersize=3,
                       label=dev) for i, dev in enumerate(devices)]
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=legend_cols, frameon=False)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e3:,.0f}k" if v else "0"))
    ax.set_xlabel("training images seen")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, alpha=0.3)
    ax.set_title("Samples to accuracy: colour = configuration, line style = device", fontsize=10)
    return fig
