""""As in the tutorial" beside "tuned": each device's eager and tuned cells of one configuration, with achieved
FLOP/s and its fraction of the device's peak where the peak is known (bench.peaks)."""

from __future__ import annotations

import pandas as pd

from bench import document as doc
from bench import pairing
from bench.terminal import speedup_text

# An eager cell's tuned twin: the same machine, device, threads and configuration, but for the variant.
KEY = [pairing.MACHINE, "device", "threads", *(c for c in pairing.CONFIG if c != "variant")]


def pairs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per tuned cell that has an eager twin."""
    ok = pairing.latest(pairing.usable(df), [pairing.MACHINE, *pairing.CELL]).reset_index(names="_row")
    eager = ok[ok["variant"] == ""]
    tuned = pairing.longest(ok[ok["variant"] != ""])  # a tuned cell measured at two budgets: its longer run, once
    if eager.empty or tuned.empty:
        return pd.DataFrame()
    # the twin of the same budget where there is one (a GPU check measures batch 4 eager in two stages); else the
    # eager cell of that configuration with the most timed samples
    same = tuned.merge(eager, on=[*KEY, "budget"], suffixes=("", "_eager"))
    rest = tuned[~tuned["_row"].isin(same["_row"])]
    other = rest.merge(eager.sort_values("samples", ascending=False).drop_duplicates(KEY), on=KEY,
                       suffixes=("", "_eager"))
    both = pd.concat([same, other], ignore_index=True) if len(other) else same
    rows = []
    for _, r in both.iterrows():
        speed, low, high = pairing.ratio(df, r["_row"], r["_row_eager"])
        text = speedup_text(speed, low, high)
        rows.append({**{k: r[k] for k in KEY}, "label": r.get("label", r["device"]), "variant": r["variant"],
                     "tune": r["tune"], "eager_images_per_s": r["images_per_s_eager"],
                     "tuned_images_per_s": r["images_per_s"], "gain": speed, "gain_text": text,
                     "eager_tflops": (r["achieved_flops_eager"] or 0) / 1e12,
                     "tuned_tflops": (r["achieved_flops"] or 0) / 1e12,
                     "eager_peak": r["peak_fraction_eager"], "tuned_peak": r["peak_fraction"]})
    if not rows:  # tuned and eager cells, but no configuration measured both ways
        return pd.DataFrame()
    return pd.DataFrame(rows).sort_values([pairing.MACHINE, "device", "pipeline", "width", "batch_size", "variant"])


def _pct(v) -> str:
    return "-" if v is None or pd.isna(v) else f"{v:.1%}"


def section(d: pd.DataFrame) -> list:
    """The report section; d carries a label column (bench.labels.labels)."""
    out: list = [doc.Heading("As in the tutorial, and tuned")]
    p = pairs(d)
    if p.empty:
        return out + [doc.Para("These results have no tuned cell beside an eager one. Run with `--tune none,fast` "
                               "to measure both (bf16 autocast, channels_last, cuDNN autotuning and a CUDA graph "
                               "of the whole step on CUDA; channels_last on a CPU).", "note")]
    rows = [[r["label"], r["pipeline"], str(r["batch_size"]), f"{r['width']:g}", r["tune"],
             f"{r['eager_images_per_s']:,.0f}", f"{r['tuned_images_per_s']:,.0f}", r["gain_text"],
             f"{r['eager_tflops']:.3g}", f"{r['tuned_tflops']:.3g}", _pct(r["eager_peak"]), _pct(r["tuned_peak"])]
            for _, r in p.iterrows()]
    best = p.loc[p["gain"].idxmax()]
    out.append(doc.Para(f"The largest gain from tuning: {best['gain_text']} on {best['label']} "
                        f"({best['pipeline']}, batch {best['batch_size']}, width {best['width']:g}, "
                        f"{best['tune']})."))
    out.append(doc.Table(["device", "pipeline", "batch", "width", "tuned with", "eager images/s", "tuned images/s",
                          "tuned/eager [95% CI]", "eager TFLOP/s", "tuned TFLOP/s", "eager % of peak",
                          "tuned % of peak"], rows,
                         "Median images/s of the eager step (as in the tutorial) and the tuned one, per device and "
                         "configuration. Peak: the device's datasheet dense peak for the arithmetic most FLOPs run in: "
                         "TF32 tensor cores for eager CUDA (cuDNN's default for float32 convolutions), BF16 under "
                         "amp; blank where the device is not in bench/peaks.py (CPUs).", numeric=tuple(range(2, 12))))
    return out
