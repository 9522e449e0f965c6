"""The verdict in words: one sentence per regime and comparison, the first screen's headline, the crossovers as
brackets, and the caveats. Every number comes from the judged pairs (bench.verdict); nothing is computed here."""

from __future__ import annotations

import pandas as pd

from dataclasses import dataclass, field

from bench.verdict import (AS_WRITTEN, AT_BEST, BASE_M, DOUBTS, M, REGIMES, STATUS_TEXT, Verdict, evidence,
                           fmt_speedup, regime, status_of)


@dataclass(frozen=True)
class Answer:
    """The claim in one regime under one comparison, in a sentence."""

    regime: str
    comparison: str  # as written | at their best
    status: str  # holds | fails | inconclusive | mixed | not measured
    text: str  # the sentence, with its numbers
    command: str = ""  # for not measured: the `bench run` that would measure it


@dataclass(frozen=True)
class Words:
    """What the report and the terminal say of a verdict."""

    answers: list[Answer]  # per regime, as written and at their best
    headline: tuple[str, str]  # (status, a plain-words sentence) for the tutorial configuration
    crossovers: list[str]  # at their best, then as written: where the GPU becomes threshold-x faster
    caveats: list[str]
    notes: list[str]  # what to run when a device kind is missing
    energy: list[str] = field(default_factory=list)  # per joule, where both devices' energy was measured
    beside: list[str] = field(default_factory=list)  # a machine without a GPU beside each GPU (e.g. --reference)


def describe(v: Verdict, df: pd.DataFrame) -> Words:
    failed = df[df["status"] != "ok"]
    regimes = [regime(*k) for k in zip(failed["pipeline"], failed["batch_size"], failed["width"])]
    answers = [answer(name, comparison, v.of(comparison, name), v.threshold,
                      failed[[r == name for r in regimes]] if len(failed) else failed)
               for name in REGIMES for comparison in (AS_WRITTEN, AT_BEST)]
    return Words(answers, headline(answers, v), crossovers(v.pairs, v.threshold), caveats(df, v.pairs),
                 missing_kinds(v.kinds, v.baseline), per_joule(v), beside(v))


def beside(v: Verdict) -> list[str]:
    """For each machine without a GPU (yours, beside the committed reference), the tutorial configuration as
    written: each GPU's images/s over that machine's CPU's. Across machines, and said so: how two machines
    compare, which the same-machine headline above does not answer."""
    p = v.pairs
    if p.empty:
        return []
    p = p[(p["comparison"] == AS_WRITTEN) & (p["regime"] == "tutorial configuration")]  # cross pairs included
    cpu_only = p[p["cross_machine"].astype(bool) & ~p[BASE_M].isin(set(p[M]))]
    out = []
    for _, r in cpu_only.sort_values([BASE_M, M]).iterrows():
        out.append(f"Beside {r[BASE_M]}, which has no GPU (two machines, not two devices): the {_gpu(r)} on {r[M]} "
                   f"trained the tutorial configuration at {fmt_speedup(r)} the images/s of {r[BASE_M]}'s CPU "
                   f"({r['images_per_s']:,.0f} against {r['base_images_per_s']:,.0f}): "
                   f"{_judgement(r, v.threshold)}.")
    return out


def _gpu(r: pd.Series) -> str:
    return r["device_name"] or r["device"]


def _where(r: pd.Series) -> str:
    return f" (across machines: GPU on {r[M]}, CPU on {r[BASE_M]})" if r["cross_machine"] else ""


def _judgement(r: pd.Series, threshold: float) -> str:
    if r["outcome"] == "inconclusive":
        return "inconclusive: " + (r["reason"] or f"the interval contains {threshold:g}x")
    return {"holds": f"the claim holds (below {threshold:g}x)",
            "fails": f"the claim does not hold (the GPU is over {threshold:g}x faster)"}[r["outcome"]]


def _values(rows: pd.DataFrame, axis: str) -> str:
    return ", ".join(f"{v:g}" for v in sorted(rows[axis].unique()))


def _why(rows: pd.DataFrame) -> str:
    """'; too few blocks (3), noisy (1)': the kinds of doubt behind inconclusive comparisons, counted."""
    kinds = pd.Series([k for d in rows["doubt"] for k in d.split(", ") if k]).value_counts()
    return ("; " + ", ".join(f"{k} ({n})" for k, n in kinds.items())) if len(kinds) else ""


def answer(name: str, comparison: str, ev: pd.DataFrame, threshold: float,
           failed: pd.DataFrame | None = None) -> Answer:
    """One regime under one comparison, naming the cells of the regime that ended without a result."""
    a = _answer(name, comparison, ev, threshold)
    if failed is None or failed.empty:
        return a
    lost = "; ".join(f"{r['device']} at {r['pipeline']} pipeline, batch {r['batch_size']}, width {r['width']:g} "
                     f"ended {r['status']}" for _, r in failed.iterrows())
    return Answer(a.regime, a.comparison, a.status, f"{a.text}. Not compared: {lost}", a.command)


def _answer(name: str, comparison: str, ev: pd.DataFrame, threshold: float) -> Answer:
    definition, command = REGIMES[name]
    status = status_of(ev)
    if ev.empty:
        return Answer(name, comparison, status, f"not measured on a CPU and a GPU: run `{command}` on a machine "
                      f"with a GPU (it measures that machine's CPU too)", command)
    if name == "tutorial configuration":
        parts = [f"{_gpu(r)}: {fmt_speedup(r)}{_where(r)}, {_judgement(r, threshold)}" for _, r in ev.iterrows()]
        return Answer(name, comparison, status, "; ".join(parts))
    axis, unit = ("width", "width") if name == "wider models" else ("batch_size", "batch")
    parts = []
    for (pipeline, device), g in ev.groupby(["pipeline", "device"], sort=True):
        bits = []
        for o in ("holds", "fails", "inconclusive"):
            rows = g[g["outcome"] == o]
            if rows.empty:
                continue
            span = f"{rows['speedup'].min():.2f}x" if len(rows) == 1 else \
                f"{rows['speedup'].min():.2f}x to {rows['speedup'].max():.2f}x"
            if o == "inconclusive":
                span += _why(rows)
            bits.append(f"{STATUS_TEXT[o]} at {unit} {_values(rows, axis)} ({span})")
        cross = " (across machines)" if g["cross_machine"].all() else ""
        parts.append(f"{pipeline} pipeline, {_gpu(g.iloc[0])}{cross}: " + "; ".join(bits))
    return Answer(name, comparison, status, ". ".join(parts))


def headline(answers: list[Answer], v: Verdict) -> tuple[str, str]:
    """The first screen's answer, in plain words: the tutorial configuration as written."""
    tutorial = next(a for a in answers if a.regime == "tutorial configuration" and a.comparison == AS_WRITTEN)
    baseline = v.baseline
    if tutorial.status == "not measured":
        if v.kinds == [baseline]:
            return "none", (f"These results hold only {baseline.upper()} measurements, so they cannot answer the "
                            f"question. Run `bench run` on a machine with a GPU (it measures that machine's CPU "
                            f"too), or render these results with `--reference` to see a real GPU beside them.")
        return "none", (f"The tutorial configuration (its DataLoader loop, batch 4, the tutorial net) was not "
                        f"measured on both a CPU and a GPU, so these results cannot answer the question on the "
                        f"tutorial's own terms. Run `{tutorial.command}` on a machine with a GPU.")
    ev = v.of(AS_WRITTEN, "tutorial configuration")
    sentences = []
    for i, (_, r) in enumerate(ev.sort_values("cross_machine", kind="stable").iterrows()):  # own CPU first
        pace = ("slower than" if r["high"] < 1 else "faster than" if r["low"] > 1 else "about as fast as")
        verdict = {"holds": "small models gain little from this GPU: the claim holds",
                   "fails": "the claim does not hold", "inconclusive": "the evidence is inconclusive"}[r["outcome"]]
        why = f" ({r['reason']})" if r["outcome"] == "inconclusive" and r["reason"] else ""
        terms = ("On the tutorial's own terms (its DataLoader loop, batch 4, the tutorial net, eager), the"
                 if i == 0 else "The")  # said once
        sentences.append(f"{terms} **{_gpu(r)} is {pace} the CPU**{_where(r)}: {r['speedup']:.2f}x its images/s "
                         f"(95% CI {r['low']:.2f}-{r['high']:.2f}), so {verdict}{why}.")
    return tutorial.status, " ".join(sentences)


def _bracket(g: pd.DataFrame, threshold: float) -> str | None:
    """Where, along batch size at width 1, the GPU becomes threshold-x faster: a bracket when the grid has a
    gap, the measured values otherwise."""
    g = g.sort_values("batch_size")
    fails = g[g["outcome"] == "fails"]
    undecided_all = g[g["outcome"] == "inconclusive"]
    if fails.empty:
        if len(g) < 2:
            return None
        if undecided_all.empty:
            return f"the GPU is not {threshold:g}x faster at any batch measured ({_values(g, 'batch_size')})"
        holds = g[g["outcome"] == "holds"]
        return ((f"no crossover found: the GPU is not {threshold:g}x faster at batch {_values(holds, 'batch_size')}, "
                 if not holds.empty else "undecided: ")
                + f"inconclusive at batch {_values(undecided_all, 'batch_size')} ({_why(undecided_all)[2:]})")
    first = fails["batch_size"].iloc[0]
    below = g[(g["batch_size"] < first) & (g["outcome"] == "holds")]
    undecided = g[(g["batch_size"] < first) & (g["outcome"] == "inconclusive")]
    if below.empty:
        text = f"the GPU is {threshold:g}x faster already at batch {first:g}, the smallest measured" \
            if undecided.empty else f"the GPU is {threshold:g}x faster from batch {first:g} at the latest"
    else:
        last = below["batch_size"].iloc[-1]
        text = (f"the GPU is {threshold:g}x faster from batch {first:g} (not at {last:g})" if first <= 2 * last else
                f"the GPU becomes {threshold:g}x faster somewhere between batch {last:g} and {first:g}")
    if not undecided.empty:
        text += f"; inconclusive at batch {_values(undecided, 'batch_size')}"
    return text


def crossovers(p: pd.DataFrame, threshold: float) -> list[str]:
    """At their best, then as written: per pipeline and device pair, where along batch size (width 1) the
    GPU becomes threshold-x faster."""
    out = []
    for comparison in (AT_BEST, AS_WRITTEN):
        here = p[(p["comparison"] == comparison) & (p["width"] == 1)] if not p.empty else p
        if here.empty:
            continue
        ev = evidence(here)
        for (pipeline, device, machine, base), g in ev.groupby(["pipeline", "device", M, BASE_M], sort=True):
            text = _bracket(g, threshold)
            if text:
                where = f" ({device} @ {machine} vs cpu @ {base})" if machine != base else ""
                out.append(f"{comparison.capitalize()}, {pipeline} pipeline{where}: {text}.")
    return out


def caveats(df: pd.DataFrame, p: pd.DataFrame) -> list[str]:
    """What a skeptic should know before quoting a number: pairs across machines, undecided comparisons,
    regimes not measured, a busy machine."""
    out = []
    if not p.empty:
        used = pd.concat([evidence(g) for _, g in p.groupby(["comparison", "regime"], dropna=False)])
        cross = used[used["cross_machine"].astype(bool)]
        if not cross.empty:
            out.append(f"{len(cross)} comparison(s) set a GPU beside another machine's CPU, for lack of a CPU "
                       f"result on the GPU's own machine: they say how two machines compare, not two devices.")
        undecided = used[used["outcome"] == "inconclusive"]
        if not undecided.empty:
            kinds = pd.Series([k for d in undecided["doubt"] for k in d.split(", ") if k]).value_counts()
            why = ", ".join(f"{n} by {DOUBTS[k]}" for k, n in kinds.items())
            out.append(f"{len(undecided)} comparison(s) are inconclusive" + (f": {why}" if why else "")
                       + ". The tables below give each one's reason; longer or quieter runs decide them.")
    busy = df[df["busy"].astype(bool)]
    if not busy.empty:
        out.append(f"The machine was busy during {len(busy)} cell(s): other programs used up to "
                   f"{busy['others_cpu'].max():.0%} of its CPUs. Rerun them on a quiet machine.")
    return out


def missing_kinds(kinds: list[str], baseline: str) -> list[str]:
    if not kinds:
        return ["No cell finished with step times, so there is nothing to compare. Run `bench run` and render "
                "its results."]
    if baseline not in kinds:
        return [f"These results hold only {', '.join(kinds)} measurements and no {baseline.upper()} baseline: run "
                f"the same grid with `bench run --devices cpu` and render both result folders together."]
    return []


def per_joule(v: Verdict) -> list[str]:
    """Per GPU, its joules per image as a multiple of the CPU's, as written and at their best (one line when
    the two agree), with the counters that measured both; only pairs where both were measured
    (verdict.per_joule), so estimates and missing figures never appear here."""
    e = v.energy
    if e is None or e.empty:
        return []
    bodies: dict[tuple, dict[str, str]] = {}
    for (comparison, *key), g in e.groupby(["comparison", "device", M, BASE_M], sort=True):
        first = g.iloc[0]
        items = []
        for _, r in g.sort_values(["pipeline", "width", "batch_size"]).iterrows():
            host = ("" if pd.isna(r["energy_ratio_with_host"]) else
                    f"; {r['energy_ratio_with_host']:.2g}x with its host's CPU packages, "
                    f"{r['host_energy_method']} {r['host_joules_per_image']:.3g} J per image")
            whose = "" if items else " the CPU's joules per image"
            items.append(f"{r['energy_ratio']:.2g}x{whose} at the "
                         f"{r['pipeline']} pipeline, batch {r['batch_size']}, width {r['width']:g} "
                         f"({r['joules_per_image']:.3g} J against {r['base_joules_per_image']:.3g} J{host})")
        counters = (f"{'/'.join(sorted(set(g['energy_method'])))} on the GPU, "
                    f"{'/'.join(sorted(set(g['base_energy_method'])))} on the CPU")
        bodies.setdefault(tuple(key), {})[comparison] = (
            f" (both measured: {counters}){_where(first)}: the {_gpu(first)} used " + "; ".join(items) + ".")
    out = []
    for by in bodies.values():
        if by.get(AS_WRITTEN) is not None and by.get(AS_WRITTEN) == by.get(AT_BEST):
            out.append(f"Per joule, {AS_WRITTEN} and {AT_BEST}{by[AS_WRITTEN]}")
            continue
        out += [f"Per joule, {c}{by[c]}" for c in (AS_WRITTEN, AT_BEST) if c in by]
    return out
