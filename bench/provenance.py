"""Where and how results were measured: an environment table per machine and method notes read from the data."""

from __future__ import annotations

import pandas as pd

from bench import verdict
from bench.pairing import MACHINE
from bench import method, stats

FIELDS = ["CPU", "cores (physical / logical)", "CPU threads used", "GPU", "GPU driver", "torch", "torchvision",
          "CUDA", "cuDNN", "Python", "OS", "project commit", "measured (UTC)", "devices measured"]


def _env(value) -> dict:
    return value if isinstance(value, dict) else {}


def _dash(v) -> str:
    return "-" if v is None or (isinstance(v, float) and pd.isna(v)) or v == "" else str(v)


def machine(rows: pd.DataFrame) -> dict[str, str]:
    """The environment of one machine's rows (the first record that has one speaks for all)."""
    envs = [e for e in rows["env"].map(_env) if e] if "env" in rows else []
    env = envs[0] if envs else {}
    gpus = env.get("gpus") or []
    gpu = "; ".join(f"{g.get('device', '')} {g.get('name', '')}" + (f" ({g['memory_bytes'] / 2**30:.0f} GiB)"
                    if g.get("memory_bytes") else "") for g in gpus) or "none"
    git = env.get("git") or {}
    commit = git.get("commit")
    commit = (commit[:12] + (" (uncommitted changes)" if git.get("dirty") else "")) if commit else None
    created = rows["created_utc"].dropna().astype(str).str.replace("T", " ").sort_values()
    when = f"{created.iloc[0][:16]} to {created.iloc[-1][:16]}" if len(created) else None
    if when and created.iloc[0][:16] == created.iloc[-1][:16]:
        when = created.iloc[0][:16]
    cpu_threads = sorted(rows[rows["device_kind"] == "cpu"]["threads"].dropna().unique().tolist())
    values = [
        env.get("cpu_model"), f"{_dash(env.get('cpu_physical_cores'))} / {_dash(env.get('cpu_logical_cores'))}",
        ", ".join(str(int(t)) for t in cpu_threads) or None, gpu,
        next((g.get("driver") for g in gpus if g.get("driver")), None), env.get("torch") or _first(rows, "torch"),
        env.get("torchvision"), env.get("cuda") or _first(rows, "cuda"), env.get("cudnn"), env.get("python"),
        env.get("os"), commit or _first(rows, "git_commit"), when,
        ", ".join(sorted(rows["device"].unique())),
    ]
    return {f: _dash(v) for f, v in zip(FIELDS, values)}


def _first(rows: pd.DataFrame, column: str):
    values = rows[column].dropna() if column in rows else []
    return values.iloc[0] if len(values) else None


def environment_table(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: one column per machine (host), one row per field."""
    names = df[MACHINE].fillna("unknown host")
    hosts = sorted(names.unique())
    machines = {h: machine(df[names == h]) for h in hosts}
    return ["", *hosts], [[f, *(machines[h][f] for h in hosts)] for f in FIELDS]


def _span(values) -> str:
    vals = sorted({int(v) for v in values if v is not None and not pd.isna(v)})
    if not vals:
        return "unknown"
    return f"{vals[0]:,}" if len(vals) == 1 else f"{vals[0]:,} to {vals[-1]:,}"


def method_notes(df: pd.DataFrame, threshold: float = verdict.THRESHOLD) -> list[str]:
    """What was timed and how, with the numbers read from these results and the constants the harness used."""
    ok = df[df["status"] == "ok"]
    clocks = sorted({f"{k}: {c}" for k, c in zip(ok["device_kind"], ok.get("clock", [])) if isinstance(c, str)})
    samples = ok["step_seconds"].map(lambda s: len(s) if isinstance(s, list) else None)
    blocks = ok["blocks"] if "blocks" in ok else pd.Series(dtype=float)
    profiled = ok["profile"].map(lambda p: p.get("steps") if isinstance(p, dict) else None) \
        if "profile" in ok else pd.Series(dtype=float)
    curves = ok["accuracy_curve"].map(lambda c: len(c) if isinstance(c, list) and c else None)
    probed = ok["thread_probe"].map(lambda p: isinstance(p, dict) and bool(p)) if "thread_probe" in ok else []
    return [
        f"**Warm-up**: {_span(ok.get('warmup_steps', []))} real training steps per cell before the clock starts"
        + (f"; with `--threads auto` ({int(sum(probed))} cells here) a short probe then times a few steps at 1, 2, "
           f"4, ... threads up to the cores and the cell trains at the fastest" if any(probed) else "")
        + "; the weights and optimizer state are then restored, so the accuracy curve counts only timed samples.",
        "**What is timed**: training steps only (fetching the batch, copying it to the device, forward, loss, "
        f"backward, optimizer step), in blocks of up to {method.MAX_BLOCK_STEPS} steps, about "
        f"{method.TARGET_BLOCK_SECONDS:g} s each or shorter, so that a cell has about {method.TARGET_BLOCKS} "
        f"(never under {method.MIN_BLOCK_SECONDS * 1e3:g} ms; here {_span(blocks)} blocks per cell). The device is "
        "synchronized before every host clock read. Per-step times come from CUDA events on a GPU and from the host "
        "clock on the CPU" + (f" (here: {', '.join(clocks)})" if clocks else "") + ".",
        "**What is excluded**: data preparation (loading, normalizing, moving a resident dataset to the device), "
        "model construction, warm-up, and evaluation, which runs between blocks off the clock"
        + (f" ({_span(curves)} accuracy checkpoints per cell)" if curves.notna().any() else "") + ".",
        f"**images/s** is what the wall clock saw: timed images over timed seconds. Its {stats.LEVEL:.0%} interval "
        f"resamples the cell's blocks ({stats.RESAMPLES:,} resamples, seeded per cell), so slow stretches widen it, "
        f"and carries a {stats.RUN_TO_RUN_CV:.0%} run-to-run variation that no single run shows in its blocks "
        f"(measured by benchmarks/calibration.py: without it, a fresh run of the same cell fell inside another's "
        f"interval 33% of the time; with it, 81-100%). The median step's pace is shown beside it "
        f"({_span(samples)} step times per cell, a seeded sample of {method.STEP_SAMPLE:,} beyond that).",
        "**Speedup** = GPU images/s / CPU images/s for the same dataset, pipeline, batch size and width; its "
        "interval divides the two cells' independent bootstraps. *As written* compares the eager cells; *at their "
        "best* each device's fastest cell across thread counts and --tune variants. The CPU baseline is the "
        "fastest CPU cell of the same machine; only where a GPU's machine has none is it set beside other "
        "machines' CPUs, and then every sentence says so.",
        f"**Regimes**: tutorial configuration = tutorial pipeline, batch 4, width 1; larger batches = batch > 4 at "
        f"width 1; wider models = width > 1. \"Small models gain little from GPUs\" **holds** in a comparison when "
        f"the speedup's 95% upper bound is below {threshold:g}x, **does not hold** when its lower bound exceeds "
        f"{threshold:g}x, and is inconclusive otherwise, or when a cell has fewer than {method.MIN_BLOCKS} blocks, "
        f"a block pace that varied over {stats.NOISY_RELATIVE_IQR:.0%} (IQR/median), or ran while other programs "
        f"used over {stats.BUSY_OTHERS_CPU:.0%} of the CPUs.",
        f"**Step-time breakdown**: a separate profiling pass after each cell's timed run ({method.BREAKDOWN_METHOD}, "
        f"{_span(profiled)} steps after {method.BREAKDOWN_WARMUP_STEPS} warm-up steps, on a fresh copy of the model "
        f"with the cell's own --tune options): the device is synchronized between sections, so sections never "
        f"overlap and their sum can exceed the timed step. A CUDA graph or compiled step is not profiled.",
        "**Time to accuracy** is training seconds (evaluation excluded) at the first checkpoint that reached the "
        "target: by default the highest test accuracy every device reached in that configuration, if at least "
        "twice chance. **Cost per epoch** = full batches per epoch x batch / images/s x price per hour / 3600; "
        "**cost to target** = time to accuracy x price per hour / 3600.",
        energy_note(ok),
    ]


def energy_note(ok: pd.DataFrame) -> str:
    """How the energy figures were obtained, with how many cells each counter (or estimate) gave here."""
    seen: dict[str, dict[str, int]] = {}
    for device, figures in zip(ok["device"], ok["energy"] if "energy" in ok else []):
        for which, fig in (figures.items() if isinstance(figures, dict) else []):
            role = "CPU cells" if device == "cpu" else "GPUs" if which == device else "GPU hosts' CPU packages"
            seen.setdefault(role, {}).setdefault(fig.get("method", "?"), 0)
            seen[role][fig.get("method", "?")] += 1
    here = "; ".join(f"{role}: " + ", ".join(f"{m} {n}" for m, n in sorted(counts.items()))
                     for role, counts in sorted(seen.items()))
    return ("**Energy**: each timed block is one window; the counters are read just before its first clock read "
            "and just after its last (after a synchronize), so warm-up and evaluation fall outside every window "
            "and the reads never touch the clock. CPU: RAPL package counters from Linux powercap (the whole socket, "
            "every process on it, DRAM excluded; a counter's wrap is corrected). GPU: NVML's total-energy counter "
            "(the GPU alone; it refreshes every 20-100 ms, so totals under a second are coarse), and a GPU cell's "
            "host packages by RAPL over the same windows, shown apart. `--cpu-watts`/`--gpu-watts` give estimates "
            "(watts x window seconds), labelled so; with neither, energy is unavailable, with the reason. J per "
            "image = joules / timed images; W = joules / window seconds; J to target = the joules of the blocks "
            "before the checkpoint that reached the target. The verdict's per-joule line uses measured figures "
            "only" + (f". Here: {here}." if here else "; these results recorded no energy."))
