"""Print the figures a GPU check exists to produce, from the folder scripts/gpu-check.sh filled.

    python3 scripts/gpu_summary.py OUTDIR                                   # after scripts/gpu-check.sh OUTDIR
    python3 scripts/gpu_summary.py reports/reference/h200-2026-11-27/results  # a committed reference

The tutorial configuration's GPU/CPU speedup on one machine with its 95% interval, the CPU's thread probe, eager
against a CUDA graph at batch 4, the highest tuned images/s and its batch, and the timing cross-checks' ratios;
then every cell. A part whose cells are missing says so; nothing here needs a GPU.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from bench import sidebyside, table
from bench.errors import UserError
from bench.results import load


RATE, PERCENT = "{:,.0f}".format, "{:.1%}".format
FORMATS = {"images_per_s": RATE, "eager_images_per_s": RATE, "tuned_images_per_s": RATE, "step_ms": "{:.3f}".format,
           "width": "{:g}".format, "peak_fraction": PERCENT, "eager_peak": PERCENT, "tuned_peak": PERCENT}


def results_folder(out: Path) -> Path:
    """The check's OUTDIR keeps its records under results/; a committed reference's results/ is given itself."""
    return out / "results" if (out / "results").is_dir() else out


def headline(ok: pd.DataFrame) -> list[str]:
    """The tutorial configuration (its DataLoader loop, batch 4, width 1, eager): each GPU against its own
    machine's fastest CPU cell of the same budget."""
    lines = ["== the tutorial configuration (tutorial pipeline, batch 4, width 1, eager): GPU against the same "
             "machine's CPU [95% intervals]"]
    tut = ok[(ok.pipeline == "tutorial") & (ok.batch_size == 4) & (ok.width == 1) & (ok.variant.fillna("") == "")]
    gpus = tut[tut.device_kind == "cuda"]
    if gpus.empty:
        return lines + ["no cuda cell of it"]
    for _, gpu in gpus.iterrows():
        cpus = tut[(tut.device_kind == "cpu") & (tut.host == gpu.host) & (tut.budget == gpu.budget)]
        gpu_text = f"{gpu.device} {table.rate_with_ci(gpu.step_seconds, 4)} images/s"
        if cpus.empty:
            lines.append(f"{gpu_text} (budget {gpu.budget}); no CPU cell of the same budget on {gpu.host}")
            continue
        cpu = cpus.loc[cpus.images_per_s.idxmax()]
        _, speed = table.speedup_with_ci(cpu.step_seconds, gpu.step_seconds)
        lines.append(f"{gpu_text}, cpu at {cpu.threads} threads {table.rate_with_ci(cpu.step_seconds, 4)} images/s "
                     f"(budget {gpu.budget}): GPU/CPU {speed}")
        accuracy = [f"{d} {a:.1%}" for d, a in ((gpu.device, gpu.accuracy), ("cpu", cpu.accuracy)) if pd.notna(a)]
        if accuracy:
            lines.append(f"accuracy after {gpu.budget}: {', '.join(accuracy)}")
    return lines


def thread_probe(ok: pd.DataFrame) -> list[str]:
    """CPU images/s per thread count, for every configuration measured at more than one."""
    cpu = ok[ok.device_kind == "cpu"]
    keys = ["host", "pipeline", "batch_size", "width", "variant", "budget"]
    lines = []
    for key, group in cpu.groupby(keys, dropna=False):
        if group.threads.nunique() < 2:
            continue
        host, pipeline, batch, width, variant, budget = key
        rates = group.sort_values("threads")
        best = rates.loc[rates.images_per_s.idxmax()]
        lines.append(f"{pipeline} batch {batch} width {width:g} {variant or 'eager'} ({budget}): " + ", ".join(
            f"{r.threads} threads {r.images_per_s:,.0f}" for _, r in rates.iterrows()) + f"; best {best.threads}")
    return ["== the CPU's thread probe (images/s per thread count)"] + (lines or ["no configuration at several "
                                                                                   "thread counts"])


def graphs(ok: pd.DataFrame) -> list[str]:
    """Eager against the whole step captured as a CUDA graph, resident pipeline, width 1."""
    lines = ["== eager against a CUDA graph (resident pipeline, width 1): cudagraph/eager [95% interval]"]
    cuda = ok[(ok.device_kind == "cuda") & (ok.pipeline == "resident") & (ok.width == 1)]
    for (host, batch, budget), group in cuda.groupby(["host", "batch_size", "budget"]):
        eager, graph = group[group.variant.fillna("") == ""], group[group.variant == "cudagraph"]
        if len(eager) and len(graph):
            e, g = eager.iloc[0], graph.iloc[0]
            _, text = table.speedup_with_ci(e.step_seconds, g.step_seconds)
            lines.append(f"batch {batch}: eager {e.images_per_s:,.0f} images/s, cudagraph {g.images_per_s:,.0f} "
                         f"images/s: {text} ({budget})")
    return lines if len(lines) > 1 else lines + ["no eager and cudagraph cells of one batch"]


def peak(ok: pd.DataFrame) -> list[str]:
    lines = ["== the highest images/s on cuda"]
    cuda = ok[ok.device_kind == "cuda"]
    for name, cells in (("tuned", cuda[cuda.variant.fillna("") != ""]), ("eager", cuda[cuda.variant.fillna("") == ""])):
        if len(cells):
            best = cells.loc[cells.images_per_s.idxmax()]
            frac = f", {best.peak_fraction:.1%} of peak" if pd.notna(best.peak_fraction) else ""
            lines.append(f"{name}: {best.images_per_s:,.0f} images/s at batch {best.batch_size}, width "
                         f"{best.width:g}, {best.pipeline}, {best.tune or 'eager'} ({best.step_ms:.3f} ms/step{frac})")
    return lines if len(lines) > 1 else lines + ["no cuda cell"]


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
    ok = table.usable(df)
    cols = ["device", "pipeline", "batch_size", "width", "threads", "tune", "budget", "images_per_s", "step_ms",
            "peak_fraction"]
    lines = [f"== every cell: {len(df)} ({df.status.value_counts().to_dict()})",
             ok[cols].sort_values(["device", "pipeline", "tune", "width", "batch_size", "threads"]).to_string(
                 index=False, formatters=FORMATS, na_rep="-")]
    # pairs within one run's budget and thread count: the check measures some configurations in several stages
    side = [sidebyside.pairs(g).assign(budget=budget) for (budget, _), g in df.groupby(["budget", "threads"])]
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
        ok = table.usable(df)
        parts += [headline(ok), thread_probe(ok), graphs(ok), peak(ok)]
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
