"""Print the figures a GPU check exists to produce, from the folder scripts/gpu-check.sh filled.

    python3 scripts/gpu_summary.py OUTDIR                                   # after scripts/gpu-check.sh OUTDIR
    python3 scripts/gpu_summary.py OUTDIR energy                            # only the energy figures
    python3 scripts/gpu_summary.py reports/reference/h200-2026-11-27/results  # a committed reference
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench import pairing, sidebyside, terminal
from bench.results import load


ENERGY = ["device", "pipeline", "batch_size", "width", "tune", "energy_method", "joules_per_image", "watts",
          "host_energy_method", "host_joules_per_image"]


def energy(out: Path) -> None:
    """Joules per image for the tutorial configuration (the default run, on both devices) and for the GPU's
    fastest tuned cell (the short grid), each with its method; the reason where a figure is unavailable."""
    print("== energy: joules per image over the timed blocks (method; a GPU's host CPU packages apart)")
    for folder, pick in (("run-default", _tutorial), ("grid", _fastest_tuned_gpu)):
        if not (out / folder).is_dir():
            print(f"{folder}: not run")
            continue
        rows = pick(load([out / folder]))
        if rows.empty:
            print(f"{folder}: no such ok cell")
            continue
        print(f"-- {folder}\n" + rows[ENERGY].to_string(index=False))
        for _, r in rows.iterrows():
            for device, fig in (r["energy"] or {}).items():
                if fig.get("method") == "unavailable" or fig.get("note"):
                    print(f"   {r['device']} cell, {device}: {fig.get('reason') or fig.get('note')}")


def _tutorial(df):
    ok = df[df.status == "ok"]
    return ok[(ok.pipeline == "tutorial") & (ok.batch_size == 4) & (ok.width == 1) & (ok.tune == "")]


def _fastest_tuned_gpu(df):
    tuned = df[(df.status == "ok") & (df.device_kind == "cuda") & (df.tune != "")]
    return tuned.loc[[tuned.images_per_s.idxmax()]] if len(tuned) else tuned


def main(out: Path) -> None:
    if (out / "run-default").is_dir():
        print("== bench run (defaults)")
        print(terminal.summary(load([out / "run-default"])))
    if (out / "grid").is_dir():
        df = load([out / "grid"])
        ok = df[df.status == "ok"]
        cuda = ok[ok.device_kind == "cuda"]
        print("\n== short grid: images/s (median) per device, batch, width, tune")
        cols = ["device", "pipeline", "batch_size", "width", "tune", "images_per_s", "step_ms", "peak_fraction"]
        print(ok[cols].sort_values(["device", "pipeline", "tune", "width", "batch_size"]).to_string(index=False))
        for batch in (4, 32):
            base = cuda[(cuda.pipeline == "resident") & (cuda.batch_size == batch) & (cuda.width == 1)]
            eager, graph = base[base.tune == ""], base[base.tune == "cudagraph"]
            if len(eager) and len(graph):
                text = terminal.speedup_text(*pairing.ratio(df, graph.index[0], eager.index[0]))
                print(f"\ncuda resident bs{batch} w1: eager {eager.iloc[0].images_per_s:,.0f} images/s, "
                      f"cudagraph {graph.iloc[0].images_per_s:,.0f} images/s: {text}")
        tuned = cuda[cuda.tune != ""]
        if len(tuned):
            best = tuned.loc[tuned.images_per_s.idxmax()]
            print(f"largest tuned images/s on cuda: {best.images_per_s:,.0f} at batch {best.batch_size}, "
                  f"width {best.width:g}, tune {best.tune} ({best.step_ms:.3f} ms/step)")
        print(f"cells: {len(df)} ({df.status.value_counts().to_dict()})")
        side = sidebyside.pairs(df)
        if len(side):
            print("\n== eager vs tuned (images/s, tuned/eager [95% CI], % of peak)")
            print(side[["device", "pipeline", "batch_size", "width", "tune", "eager_images_per_s",
                        "tuned_images_per_s", "gain_text", "eager_peak", "tuned_peak"]].to_string(index=False))
    # the check's folder holds fidelity.json; a committed reference keeps it beside results/
    fidelity = next((p for p in (out / "fidelity.json", out.parent / "fidelity.json") if p.is_file()), None)
    if fidelity is not None:
        print("\n== harness vs bare loop / torch.utils.benchmark on cuda (median step seconds)")
        for b in json.loads(fidelity.read_text())["benchmarks"]:
            info = b["extra_info"]
            print(f"{b['name']}: " + ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                                              for k, v in info.items()))
    bench_json = out / "benchmarks.json"
    if bench_json.is_file():
        df = load([bench_json])
        print(f"\n== pytest-benchmark suite: {len(df)} train-step cells")
        cols = ["device", "pipeline", "batch_size", "width", "tune", "images_per_s", "peak_fraction"]
        print(df[cols].sort_values(["device", "pipeline", "tune", "width", "batch_size"]).to_string(index=False))


if __name__ == "__main__":
    if sys.argv[2:] == ["energy"]:
        energy(Path(sys.argv[1]))
    else:
        main(Path(sys.argv[1]))
        print()
        energy(Path(sys.argv[1]))
