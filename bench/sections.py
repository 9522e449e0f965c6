"""The report's sections, each a list of document blocks: the verdict first, then the figures, the costs, and an
appendix of every comparison and every cell. They read the results frame and the verdict; nothing is measured."""

from __future__ import annotations

import math

import pandas as pd

from bench import curves, figures, pairing, prices, variants
from bench import document as doc
from bench.method import SECTIONS
from bench.sentences import Words
from bench.targets import targets
from bench.terminal import noisy_cells, rate_with_ci
from bench.verdict import AS_WRITTEN, AT_BEST, REGIMES, STATUS_TEXT, Verdict, pair_label

def _fmt(v, spec: str = ".3g", dash: str = "-") -> str:
    return dash if v is None or pd.isna(v) else format(v, spec)


def _image(name: str, fig, caption: str) -> list:
    return [doc.Image(name, figures.to_png(fig), caption)] if fig is not None else []


def verdict_section(v: Verdict, w: Words) -> list:
    """The first screen: the tutorial configuration's answer in plain words, where the GPU becomes faster at
    their best, the caveats; then one line per regime, as written and at their best."""
    status, text = w.headline
    out: list = [doc.Heading("Verdict"), doc.Para(text, f"verdict-{status}")]
    out += [doc.Para(line, "lead") for line in w.crossovers[:2]]
    out += [doc.Para(line, "lead") for line in w.energy]
    out += [doc.Para(line, "lead") for line in w.beside]
    if w.caveats or w.notes:
        out.append(doc.Bullets([f"**Caveat**: {c}" for c in w.notes + w.caveats]))
    rows = []
    for name, (definition, _) in REGIMES.items():
        cells = []
        for comparison in (AS_WRITTEN, AT_BEST):
            a = next(a for a in w.answers if a.regime == name and a.comparison == comparison)
            cells.append(doc.Cell(f"**{STATUS_TEXT[a.status]}**: {a.text}", f"wrap {a.status}"))
        rows.append([doc.Cell(f"**{name.capitalize()}** ({definition})", "wrap"), *cells])
    out.append(doc.Table(["regime", "as written (eager on both, as the tutorial)",
                          "each at its best (fastest threads and --tune variant)"], rows,
                         f"The claim \"small models gain little from GPUs\" holds where the GPU's speedup is surely "
                         f"below {v.threshold:g}x (its 95% interval below), fails where surely above. Same-machine "
                         f"comparisons where there are any. Every comparison is listed in the appendix."))
    return out


def figures_section(d: pd.DataFrame, v: Verdict) -> list:
    out: list = [doc.Heading("Speedup and throughput")]
    out += _image("headline.png", figures.headline(v),
                  f"GPU/CPU speedup against batch size at width 1, as written (solid) and each device at its best "
                  f"(dashed), with 95% intervals; hollow points are inconclusive; lines at 1x and {v.threshold:g}x.")
    out += _image("speedup_width.png", figures.speedup_width(v),
                  "GPU/CPU speedup against model width for the batch sizes measured at the most widths.")
    out += _image("throughput.png", figures.throughput(d),
                  "Training images/s (timed images over timed seconds) against batch size, log-log; error bars: "
                  "95% intervals (blocks resampled, with run-to-run variation); a CPU at its fastest thread count "
                  "for each cell. Cells that ended without a result are marked on the batch axis.")
    if len(out) == 1:
        out.append(doc.Para("No cell finished with step times: there is nothing to plot.", "note"))
    return out


def comparisons_appendix(v: Verdict, machines: bool) -> list:
    """Every comparison the verdict judged, with the reason an inconclusive one could not decide."""
    if v.pairs.empty:
        return []
    rows = []
    order = v.pairs.sort_values(["comparison", "pipeline", "width", "batch_size", "device"], kind="stable")
    for _, p in order.iterrows():
        variants = p["variant"] or "eager"
        if p["comparison"] == AT_BEST:
            variants = f"{p['variant'] or 'eager'} vs {p['base_variant'] or 'eager'}"
        rows.append([p["comparison"], pair_label(p, machines or p["cross_machine"]), p["pipeline"],
                     str(p["batch_size"]), f"{p['width']:g}", variants, f"{p['images_per_s']:,.0f}",
                     f"{p['base_images_per_s']:,.0f}", f"{p['speedup']:.2f}x", f"{p['low']:.2f}-{p['high']:.2f}",
                     doc.Cell(STATUS_TEXT[p["outcome"]], p["outcome"]), doc.Cell(p["reason"] or "", "wrap")])
    return [doc.Heading("Appendix: every comparison"),
            doc.Table(["comparison", "devices", "pipeline", "batch", "width", "variants", "GPU images/s",
                       "CPU images/s", "speedup", "95% CI", "claim", "why inconclusive"], rows,
                      f"As written: eager cells on both devices. At their best: each device's fastest cell of that "
                      f"pipeline, batch and width. Threshold {v.threshold:g}x.", numeric=(3, 4, 6, 7, 8, 9))]


def cells_appendix(d: pd.DataFrame) -> list:
    ok = pairing.usable(d).sort_values(["pipeline", "width", "batch_size", "label"])
    rows = [[r["label"], r["pipeline"], str(r["batch_size"]), f"{r['width']:g}", rate_with_ci(r),
             f"{r['images_per_s_median']:,.0f}", f"{r['step_ms']:.3f}", str(r["blocks"]),
             _fmt(r["accuracy"], ".1%"), _fmt(r["train_seconds"], ".1f"), r["device_name"] or "-"]
            for _, r in ok.iterrows()]
    if not rows:
        return []
    return [doc.Heading("Appendix: every cell"),
            doc.Table(["device", "pipeline", "batch", "width", "images/s [95% CI]", "at the median step",
                       "step ms (median)", "blocks", "final accuracy", "training s", "device name"], rows,
                      "Every ok cell: images/s as the wall clock saw it, with its 95% interval over blocks, and the "
                      "pace of the median step beside it.", numeric=(2, 3, 5, 6, 7, 8, 9))]


def accuracy_section(d: pd.DataFrame, df: pd.DataFrame, config) -> list:
    goals = targets(df, config.target)
    fig = curves.time_to_accuracy(d, goals)
    if fig is None:
        return [doc.Heading("Accuracy"), doc.Para("These results have no accuracy curves (evaluation was off, or "
                                                  "they come from pytest-benchmark), so there is no time to accuracy.",
                                                  "note")]
    return [doc.Heading("Accuracy"),
            *_image("time_to_accuracy.png", fig, "Test accuracy against training seconds (evaluation excluded), per "
                    "configuration; dotted: the target accuracy used for time and cost to accuracy."),
            *_image("samples_to_accuracy.png", curves.samples_to_accuracy(d),
                    "Test accuracy against training images seen: devices of one configuration overlap when they "
                    "learn alike; batch size and width change how much each image teaches.")]


def breakdown_section(d: pd.DataFrame) -> list:
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
        if ms:
            rows.append([r["label"], r["pipeline"], str(r["batch_size"]), f"{r['width']:g}",
                         *(f"{ms.get(s, 0.0):.3f}" for s in SECTIONS), f"{sum(ms.values()):.3f}",
                         f"{r['step_ms']:.3f}"])
        elif p.get("error"):
            rows.append([r["label"], r["pipeline"], str(r["batch_size"]), f"{r['width']:g}",
                         doc.Cell(p["error"], "wrap"), *([""] * len(SECTIONS)), f"{r['step_ms']:.3f}"])
    out.append(doc.Table(["device", "pipeline", "batch", "width", *(f"{s} ms" for s in SECTIONS), "profiled total",
                          "timed step"], rows, "Mean milliseconds per step and section.",
                         numeric=tuple(range(2, 6 + len(SECTIONS)))))
    return out


def cost_section(df: pd.DataFrame, config) -> list:
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


def _sig(v) -> str:
    """Three significant digits in plain decimals (0.0000782, 1.79, 65.0), whole numbers from 100 (12,345)."""
    if v is None or pd.isna(v):
        return "-"
    return "0" if v == 0 else f"{v:,.{max(0, 2 - math.floor(math.log10(abs(v))))}f}"


def energy_section(df: pd.DataFrame, config) -> list:
    """Joules per image, watts and joules to the target accuracy per cell, each with how it was obtained: a
    counter (measured), the user's watts (estimate) or, numbered below the table, why there is no figure."""
    out: list = [doc.Heading("Energy")]
    e = prices.energies(df, config.target)
    if e.empty:
        return out + [doc.Para("No cell finished with step times, so there is no energy per image.", "note")]
    measured = set(e["energy_method"].dropna()) | set(e["host_energy_method"].dropna())
    if not measured & set(prices.MEASURED):
        out.append(doc.Para(
            "No energy was measured in these results: the reasons are listed below the table. RAPL (the CPU's "
            "counter) is readable on bare metal, as root; NVML (a GPU's) needs nvidia-ml-py and a driver. "
            "`bench run --cpu-watts W --gpu-watts W` records estimates from the average watts you give, labelled "
            "as estimates.", "note"))
    reasons: dict[str, int] = {}

    def how(text: str) -> doc.Cell:
        cell, why = prices.footnoted(text)
        return doc.Cell(f"{cell} [{reasons.setdefault(why, len(reasons) + 1)}]" if why else cell, "wrap")

    hosts = (e["device"] != "cpu").any()

    # cells with no figure at all (own and host) are counted below the table, not given a row of dashes each
    blank = e.apply(lambda r: prices.no_figure(r["energy_how"]) and (r["device"] == "cpu"
                                                                     or prices.no_figure(r["host_how"])), axis=1)
    rows = []
    for _, r in e[~blank].sort_values(["pipeline", "width", "batch_size", "label"]).iterrows():
        row = [r["label"], r["pipeline"], str(r["batch_size"]), f"{r['width']:g}", _sig(r["joules_per_image"]),
               _sig(r["watts"]), _fmt(r["target_accuracy"], ".1%"), _sig(r["energy_to_target"]), how(r["energy_how"])]
        if hosts:
            row += ([_sig(r["host_joules_per_image"]), _sig(r["host_watts"]), how(r["host_how"])]
                    if r["device"] != "cpu" else ["", "", ""])
        rows.append(row)
    headers = ["device", "pipeline", "batch", "width", "J per image", "W", "target accuracy", "J to target", "how"]
    without = []
    for text, cells in e[blank].groupby("energy_how", sort=False):
        cell = how(text)  # numbers the reason
        names = ", ".join(sorted(cells["label"].unique()))
        without.append(f"{len(cells)} cell(s) with no energy figure, {cell.text}: {names}")
    if not rows:
        return out + [doc.Bullets(without), doc.Bullets([f"[{n}] {why}" for why, n in reasons.items()])]
    out.append(doc.Table(headers + (["host CPU J per image", "host W", "host how"] if hosts else []), rows,
                         "Per cell, over its timed blocks only (evaluation and warm-up excluded): J per image = "
                         "joules / timed images; W = joules / seconds of the windows; J to target = the joules of the "
                         "blocks before the first checkpoint that reached the target accuracy. A GPU's figure is the "
                         "GPU alone (NVML); the CPU packages of its host (RAPL: the whole socket, every process on "
                         "it) are listed apart, never added in.", numeric=(2, 3, 4, 5, 6, 7, 9, 10) if hosts
                         else (2, 3, 4, 5, 6, 7)))
    if without:
        out.append(doc.Bullets(without))
    if reasons:
        out.append(doc.Bullets([f"[{n}] {why}" for why, n in reasons.items()]))
    return out


def missing_cells(df: pd.DataFrame) -> list[str]:
    """Per machine and device, the configurations (pairing.CONFIG) its other cells imply but that are absent,
    one line per pipeline and variant, batches grouped by width; a variant the device cannot run (cudagraph on a
    CPU) is not a gap."""
    out = []
    several = df[pairing.MACHINE].nunique() > 1
    for machine, g in df.groupby(df[pairing.MACHINE].fillna("unknown host")):
        configs = set(g[pairing.CONFIG].itertuples(index=False, name=None))
        for device in sorted(g["device"].unique()):
            have = set(g[g["device"] == device][pairing.CONFIG].itertuples(index=False, name=None))
            lacking: dict[tuple, dict[float, list[int]]] = {}
            for config in sorted(configs - have):
                c = dict(zip(pairing.CONFIG, config))
                options = tuple(c["variant"].split("+")) if c["variant"] else ()
                if variants.unsupported(options, device, c["pipeline"]):
                    continue
                key = (c["dataset"], c["pipeline"], c["variant"])
                lacking.setdefault(key, {}).setdefault(c["width"], []).append(c["batch_size"])
            for (dataset, pipeline, variant), by_width in lacking.items():
                where = "; ".join(f"batch {', '.join(map(str, sorted(batches)))}, width {width:g}"
                                  for width, batches in sorted(by_width.items()))
                out.append(f"{device}" + (f" @ {machine}" if several else "")
                           + f": no record for {pipeline} pipeline{' [' + variant + ']' if variant else ''}"
                           f" at {where} ({dataset})")
    return out


def gaps_section(d: pd.DataFrame, warnings: list[str]) -> list:
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
