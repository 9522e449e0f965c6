"""Print the figures a GPU check exists to produce, from the folder scripts/gpu-check.sh filled.

    python3 scripts/gpu_summary.py OUTDIR                                   # after scripts/gpu-check.sh OUTDIR
    python3 scripts/gpu_summary.py reports/reference/h200-2026-11-27/results  # a committed reference

The tutorial configuration's GPU/CPU speedup on one machine with its 95% interval (as the report judges it), the
CPU's thread probe, eager against a CUDA graph at batch 4, the highest tuned images/s and its batch, energy per
image, and the timing cross-checks' ratios; then every cell. A part whose cells are missing says so; nothing here
needs a GPU.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from bench import pairing, prices, sentences, sidebyside, verdict
from bench.errors import UserError
from bench.results import load
from bench.terminal import rate_with_ci, speedup_text

RATE, PERCENT = "{:,.0f}".format, "{:.1%}".format
FORMATS = {"images_per_s": RATE, "eager_images_per_s": RATE, "tuned_images_per_s": RATE, "step_ms": "{:.3f}".format,
           "width": "{:g}".format, "peak_fraction": PERCENT, "eager_peak": PERCENT, "tuned_peak": PERCENT,
           "joules_per_image": "{:.3g}".format, "host_joules_per_image": "{:.3g}".format}


def results_folder(out: Path) -> Path:
    """The check's OUTDIR keeps its records under results/; a committed reference's results/ is given itself."""
    return out / "results" if (out / "results").is_dir() else out


def headline(df: pd.DataFrame) -> list[str]:
    """The tutorial configuration as the report judges it: each GPU against its own machine's fastest CPU cell,
    as written and at their best, with the reason where the comparison is inconclusive."""
    v = verdict.judge(df)
    lines = ["== the tutorial configuration (tutorial pipeline, batch 4, width 1): GPU/CPU on one machine [95%]"]
    for comparison in (verdict.AS_WRITTEN, verdict.AT_BEST):
        for _, p in v.of(comparison, "tutorial configuration").iterrows():
            where = " (ACROSS MACHINES)" if p["cross_machine"] else ""
            lines.append(f"{comparison}: {p['device']} {p['images_per_s']:,.0f} images/s, cpu at {p['base_threads']} "
                         f"threads {p['base_images_per_s']:,.0f}: {speedup_text(p['speedup'], p['low'], p['high'])}"
                         f"{where}, {p['outcome']}" + (f" ({p['reason']})" if p["reason"] else ""))
    status, text = sentences.describe(v, df).headline
    return lines + [f"verdict ({status}): {text.replace('**', '')}"]


def thread_probe(ok: pd.DataFrame) -> list[str]:
    """CPU images/s per thread count: the --threads auto probes, and configurations run at several counts."""
    lines = []
    for _, r in ok[ok["thread_probe"].map(lambda p: isinstance(p, dict) and bool(p))].iterrows():
        probe = ", ".join(f"{n} threads {v:,.0f}" for n, v in sorted(r["thread_probe"].items()))
        lines.append(f"{r['pipeline']} batch {r['batch_size']} width {r['width']:g} {r['variant'] or 'eager'}: "
                     f"{probe}; trained at {r['threads']}")
    cpu = ok[ok["device_kind"] == "cpu"]
    for key, group in cpu.groupby([pairing.MACHINE, *pairing.CONFIG, "budget"], dropna=False):
        if group["threads"].nunique() > 1:
            rates = group.sort_values("threads")
            lines.append(f"{key[2]} batch {key[3]} width {key[4]:g} ({key[6]}): " + ", ".join(
                f"{r.threads} threads {r.images_per_s:,.0f}" for r in rates.itertuples()))
    return ["== the CPU's thread probe (images/s per thread count)"] + (lines or ["no probe and no configuration at "
                                                                                   "several thread counts"])


def graphs(ok: pd.DataFrame) -> list[str]:
    """Eager against the whole step captured as a CUDA graph, resident pipeline, width 1, one budget."""
    lines = ["== eager against a CUDA graph (resident pipeline, width 1): cudagraph/eager [95% interval]"]
    cuda = ok[(ok["device_kind"] == "cuda") & (ok["pipeline"] == "resident") & (ok["width"] == 1)]
    for (machine, batch, budget), group in cuda.groupby([pairing.MACHINE, "batch_size", "budget"]):
        eager, graph = group[group["variant"] == ""], group[group["variant"] == "cudagraph"]
        if len(eager) and len(graph):
            text = speedup_text(*pairing.ratio(ok, graph.index[0], eager.index[0]))
            lines.append(f"batch {batch}: eager {eager.iloc[0]['images_per_s']:,.0f} images/s, cudagraph "
                         f"{graph.iloc[0]['images_per_s']:,.0f} images/s: {text} ({budget})")
    return lines if len(lines) > 1 else lines + ["no eager and cudagraph cells of one batch"]


def peak(ok: pd.DataFrame) -> list[str]:
    lines = ["== the highest images/s on cuda"]
    cuda = ok[ok["device_kind"] == "cuda"]
    for name, cells in (("tuned", cuda[cuda["variant"] != ""]), ("eager", cuda[cuda["variant"] == ""])):
        if len(cells):
            best = cells.loc[cells["images_per_s"].idxmax()]
            frac = f", {best['peak_fraction']:.1%} of peak" if pd.notna(best["peak_fraction"]) else ""
            lines.append(f"{name}: {rate_with_ci(best)} images/s at batch {best['batch_size']}, width "
                         f"{best['width']:g}, {best['pipeline']}, {best['tune'] or 'eager'} "
                         f"({best['step_ms']:.3f} ms/step{frac})")
    return lines if len(lines) > 1 else lines + ["no cuda cell"]


def energy(ok: pd.DataFrame) -> list[str]:
    """Joules per image for the tutorial configuration on each device and for the GPU's fastest tuned cell,
    each with its method, and the reason where a figure is unavailable."""
    lines = ["== energy: joules per image over the timed blocks (method; a GPU's host CPU packages apart)"]
    if "joules_per_image" not in ok:
        return lines + ["no energy in these records"]
    tutorial = ok[(ok["pipeline"] == "tutorial") & (ok["batch_size"] == 4) & (ok["width"] == 1)
                  & (ok["variant"] == "")]
    # one cell per machine and device: the longest (the headline's), not the thread probe's short ones
    tutorial = tutorial.loc[tutorial.groupby([pairing.MACHINE, "device"])["samples"].idxmax()] if len(tutorial) else tutorial
    tuned = ok[(ok["device_kind"] == "cuda") & (ok["variant"] != "")]
    picks = [("tutorial configuration", tutorial)]
    if len(tuned):
        picks.append(("fastest tuned GPU cell", tuned.loc[[tuned["images_per_s"].idxmax()]]))
    for name, rows in picks:
        for _, r in rows.iterrows():
            host = (f"; host CPU {r['host_joules_per_image']:.3g} J ({r['host_energy_method']})"
                    if pd.notna(r.get("host_joules_per_image")) else "")
            value = f"{r['joules_per_image']:.3g} J per image" if pd.notna(r["joules_per_image"]) else "no figure"
            own = (r["energy"] or {}).get(r["device"]) if isinstance(r["energy"], dict) else None
            method = ("not recorded (an older record)" if pd.isna(r["energy_method"]) else
                      prices.how(own) if r["energy_method"] in ("nvml", "rapl") else r["energy_method"])
            threads = f" at {r['threads']} threads" if r["device_kind"] == "cpu" else ""
            lines.append(f"{name}, {r['device']}{threads} batch {r['batch_size']} {r['tune'] or 'eager'}: {value} "
                         f"({method}){host}")
            for device, fig in (r["energy"] or {}).items():
                if isinstance(fig, dict) and (fig.get("method") == "unavailable" or fig.get("note")):
                    lines.append(f"   {device}: {fig.get('reason') or fig.get('note')}")
    return lines if len(lines) > 1 else lines + ["no such cell"]


def fidelity(out: Path) -> list[str]:
    # the check's folder holds fidelity.json; a committed reference keeps it beside results/
    path = next((p for p in (out / "fidelity.json", out.parent / "fidelity.json") if p.is_file()), None)
    lines = ["== timing cross-checks: the harness's median step against a bare loop and torch.utils.benchmark"]
    if path is None:
        return lines + ["no fidelity.json"]
    for b in json.loads(path.read_text()).get("benchmarks", []):
        info = b.get("extra_info", {})
        if "ratio" not in info:
            continue
        # the keys have been harness/bare_loop and harness_step_s/bare_loop_step_s
        harness = info.get("harness", info.get("harness_step_s"))
        name, ref = next(((k.removesuffix("_step_s"), info[k]) for k in ("bare_loop", "bare_loop_step_s",
                          "torch_utils_benchmark") if k in info), ("reference", None))
        detail = f" (harness {harness * 1e3:.3f} ms, {name} {ref * 1e3:.3f} ms)" if harness and ref else ""
        lines.append(f"{b['name']}: harness/{name} = {info['ratio']:.3f}{detail}")
    return lines if len(lines) > 1 else lines + [f"no ratio in {path.name} (its tests were skipped?)"]


def cells(df: pd.DataFrame) -> list[str]:
    ok = pairing.usable(df)
    cols = ["device", "pipeline", "batch_size", "width", "threads", "tune", "budget", "images_per_s", "step_ms",
            "blocks", "peak_fraction"]
    lines = [f"== every cell: {len(df)} ({df['status'].value_counts().to_dict()})",
             ok[cols].sort_values(["device", "pipeline", "tune", "width", "batch_size", "threads"]).to_string(
                 index=False, formatters=FORMATS, na_rep="-")]
    # pairs within one budget: the check measures some configurations in several stages
    side = [sidebyside.pairs(g).assign(budget=budget) for budget, g in df.groupby("budget")]
    side = pd.concat([p for p in side if len(p)]) if any(len(p) for p in side) else pd.DataFrame()
    if len(side):
        lines += ["", "== eager vs tuned (images/s, tuned/eager [95% CI], % of peak)",
                  side[["device", "pipeline", "batch_size", "width", "budget", "tune", "eager_images_per_s",
                        "tuned_images_per_s", "gain_text", "eager_peak", "tuned_peak"]].to_string(
                      index=False, formatters=FORMATS, na_rep="-")]
    return lines


def benchmarks(out: Path) -> list[str]:
    path = out / "benchmarks.json"
    if not path.is_file():
        return []
    try:
        df = load([path])
    except UserError as exc:
        return ["== pytest-benchmark suite", str(exc)]
    cols = ["device", "pipeline", "batch_size", "width", "tune", "images_per_s", "peak_fraction"]
    return [f"== pytest-benchmark suite: {len(df)} train-step cells",
            df[cols].sort_values(["device", "pipeline", "tune", "width", "batch_size"]).to_string(
                index=False, formatters=FORMATS, na_rep="-")]


def main(out: Path) -> int:
    try:
        df = load([results_folder(out)])
    except UserError as exc:
        print(f"gpu_summary: no records to summarize: {exc}")
        df = None
    parts: list[list[str]] = []
    if df is not None:
        ok = pairing.usable(df)
        parts += [headline(df), thread_probe(ok), graphs(ok), peak(ok), energy(ok)]
    parts.append(fidelity(out))
    if df is not None:
        parts.append(cells(df))
    parts.append(benchmarks(out))
    print("\n\n".join("\n".join(p) for p in parts if p))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        print("usage: python3 scripts/gpu_summary.py OUTDIR (a folder scripts/gpu-check.sh filled, or a results "
              "folder)", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1])))
