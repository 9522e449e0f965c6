"""The verdict on "small models gain little from GPUs", computed from the results: numbers first, then sentences.

    from bench.verdict import judge; v = judge(bench.results.load("results/")); v.pairs, v.findings

Regimes: the tutorial configuration (tutorial pipeline, batch 4, width 1); larger batches (batch > 4 at
width 1); wider models (width > 1). Speedup = median CPU step time / median GPU step time at equal
configuration, i.e. the ratio of images/s, with a 95% percentile-bootstrap interval. The claim holds in a cell
when the interval's upper bound is below THRESHOLD, fails when its lower bound exceeds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bench import pairing
from bench.labels import multi_machine

THRESHOLD = 2.0  # "gains little": the GPU is less than this many times faster
BASELINE = pairing.BASELINE
REGIMES = {
    "tutorial configuration": "the tutorial's pipeline at batch 4, width 1",
    "larger batches": "batch > 4 at width 1",
    "wider models": "width > 1",
}
M, BASE_M = pairing.MACHINE, f"base_{pairing.MACHINE}"  # the columns naming each side's machine


def regime(pipeline: str, batch: int, width: float) -> str | None:
    if width > 1:
        return "wider models"
    if width == 1 and batch > 4:
        return "larger batches"
    if width == 1 and batch == 4 and pipeline == "tutorial":
        return "tutorial configuration"
    return None


def outcome(low: float, high: float, threshold: float = THRESHOLD) -> str:
    """holds (GPU surely less than threshold x faster), fails (surely more), or inconclusive."""
    if high < threshold:
        return "holds"
    if low > threshold:
        return "fails"
    return "inconclusive"


def pairs(df: pd.DataFrame, baseline: str = BASELINE, threshold: float = THRESHOLD) -> pd.DataFrame:
    """Every accelerator/baseline pair of equal configuration (bench.pairing's one rule), with its regime and
    whether the claim holds there."""
    p = pairing.accelerator_pairs(pairing.pairs(df, baseline), baseline)
    regimes = [regime(*k) for k in zip(p["pipeline"], p["batch_size"], p["width"])]
    outcomes = [outcome(lo, hi, threshold) for lo, hi in zip(p["low"], p["high"])]
    p = p.assign(regime=regimes, outcome=outcomes).reset_index(drop=True)
    # Sentences name eager or tuned only where the results hold tuned cells: without a variant column, the
    # wording of an eager-only run stays the tutorial's own.
    return p if (p["variant"] != "").any() else p.drop(columns="variant")


def several_pairs(p: pd.DataFrame) -> bool:
    """Whether sentences must name the devices: more than one accelerator/baseline pair is present."""
    return len(p[["device", M, "base_device", BASE_M]].drop_duplicates()) > 1


def pair_label(p: pd.Series, show_host: bool) -> str:
    """'cuda:0 vs cpu', with machines named when the results come from several."""
    if not show_host:
        return f"{p['device']} vs {p['base_device']}"
    return f"{p['device']} @ {p[M]} vs {p['base_device']} @ {p[BASE_M]}"


def crossovers(p: pd.DataFrame, threshold: float = THRESHOLD) -> pd.DataFrame:
    """Per device pair and pipeline: the smallest batch (at width 1) and, per batch, the smallest width whose
    speedup's lower bound exceeds the threshold; None where no measured value reaches it."""
    rows = []
    if p.empty:
        return pd.DataFrame(columns=["axis", "dataset", "pipeline", "device", M, "base_device", BASE_M,
                                     "fixed", "tested", "crossover"])
    pair_keys = ["dataset", "pipeline", "device", M, "base_device", BASE_M]
    pair_keys += [c for c in ("variant",) if c in p]  # eager and tuned cross over apart
    for axis, fixed_col, vary_col in (("batch", "width", "batch_size"), ("width", "batch_size", "width")):
        subset = p[p["width"] == 1] if axis == "batch" else p
        for key, g in subset.groupby(pair_keys + [fixed_col], sort=True):
            if axis == "width" and g["width"].nunique() < 2:
                continue
            g = g.sort_values(vary_col)
            above = g[g["low"] > threshold]
            rows.append({"axis": axis, **dict(zip(pair_keys, key[:-1])), "fixed": key[-1],
                         "tested": sorted(g[vary_col].tolist()),
                         "crossover": above[vary_col].iloc[0] if not above.empty else None})
    return pd.DataFrame(rows, columns=["axis", *pair_keys, "fixed", "tested", "crossover"])


@dataclass(frozen=True)
class Finding:
    """What the data say about the claim in one regime."""

    regime: str
    definition: str
    status: str  # holds | fails | mixed | inconclusive | not measured
    sentences: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    kinds: list[str]  # device kinds with usable results
    pairs: pd.DataFrame
    crossovers: pd.DataFrame
    findings: list[Finding]
    summary: list[str]  # the opening sentences after the headlines: what is missing, the crossovers
    threshold: float = THRESHOLD
    headlines: list = field(default_factory=list)  # (outcome, sentence) per tutorial-configuration pair


def fmt_speedup(s: pd.Series) -> str:
    return f"{s['speedup']:.2f}x [95% CI {s['low']:.2f}-{s['high']:.2f}]"


def _variant(p: pd.Series) -> str:
    """', eager' or ', tuned (fast)': named whenever the results hold tuned cells (--tune)."""
    v = p.get("variant")
    return "" if not isinstance(v, str) else (f", tuned ({v})" if v else ", eager")


def _cell_name(p: pd.Series) -> str:
    return f"{p['pipeline']} pipeline{_variant(p)}, batch {p['batch_size']}, width {p['width']:g}"


def _phrase(o: str, threshold: float) -> str:
    return {"holds": f"the claim holds (upper bound below {threshold:g}x)",
            "fails": f"the claim does not hold (the GPU is at least {threshold:g}x faster)",
            "inconclusive": f"inconclusive (the interval contains {threshold:g}x)"}[o]


def _finding(name: str, p: pd.DataFrame, failed: pd.DataFrame, hosts: bool, named: bool,
             threshold: float) -> Finding:
    sentences = []
    if p.empty:
        status = "not measured"
        sentences.append("No configuration in this regime was measured on both a CPU and a GPU.")
    else:
        found = set(p["outcome"])
        status = found.pop() if len(found) == 1 else "mixed"
        for _, r in p.sort_values(["pipeline", "width", "batch_size"]).iterrows():
            slower = " (the GPU is slower than the CPU)" if r["high"] < 1 else ""
            who = f"{pair_label(r, hosts)}, " if named else ""
            sentences.append(f"{who}{_cell_name(r)}: {fmt_speedup(r)}{slower}: {_phrase(r['outcome'], threshold)}.")
    for _, r in failed.iterrows():
        sentences.append(f"Not compared: {r['device']} at {r['pipeline']} pipeline, batch {r['batch_size']}, "
                         f"width {r['width']:g} ended {r['status']}" + (f" ({r['message']})" if r["message"] else "")
                         + ".")
    return Finding(name, REGIMES[name], status, sentences)


def _crossover_sentences(c: pd.DataFrame, hosts: bool, threshold: float) -> list[str]:
    out = []
    named = len(c[["device", M, "base_device", BASE_M]].drop_duplicates()) > 1
    for axis, fixed_name, unit in (("batch", "width", "batch"), ("width", "batch", "width")):
        for _, r in c[c["axis"] == axis].iterrows():
            reached = r["crossover"] is not None and not pd.isna(r["crossover"])
            if len(r["tested"]) < 2 and not reached:
                continue  # one measured value and below the threshold: the findings already say so
            who = f"{pair_label(r, hosts)}, " if named else ""
            at = f"{who}{r['pipeline']} pipeline{_variant(r)} at {fixed_name} {r['fixed']:g}"
            tested = ", ".join(f"{v:g}" for v in r["tested"])
            if not reached:
                out.append(f"{at}: the GPU is not {threshold:g}x faster at any {unit} measured ({tested}).")
            else:
                out.append(f"{at}: the smallest {unit} at which the GPU is {threshold:g}x or more faster is "
                           f"**{r['crossover']:g}** (measured: {tested}).")
    return out


def judge(df: pd.DataFrame, baseline: str = BASELINE, threshold: float = THRESHOLD) -> Verdict:
    """The verdict, per regime present in the results, with the crossovers and what to run next."""
    ok = pairing.usable(df)
    kinds = sorted(ok["device_kind"].unique().tolist())
    p = pairs(df, baseline, threshold)
    c = crossovers(p, threshold)
    hosts = multi_machine(df)
    summary = []
    if not kinds:
        summary.append("No cell finished with step times, so there is nothing to compare. "
                       "Run `bench run` and render its results.")
    elif kinds == [baseline]:
        summary.append(f"These results hold only {baseline.upper()} measurements, so there is no GPU/CPU speedup "
                       f"to report. To complete the comparison, run `bench run` on a machine with a GPU (it measures "
                       f"that machine's CPU too, with the same default grid), then render both result folders "
                       f"together: `bench report <these results> <the GPU machine's results>`.")
    elif baseline not in kinds:
        summary.append(f"These results hold only {', '.join(kinds)} measurements and no {baseline.upper()} baseline, "
                       f"so there is no speedup to report. To complete the comparison, run the same grid on a CPU "
                       f"with `bench run --devices cpu` (same --pipeline, --batch-size and --width) and render both "
                       f"result folders together.")
    elif p.empty:
        summary.append("CPU and GPU results are both present, but no configuration was measured on both; run the "
                       "same --pipeline, --batch-size and --width on each device and render again.")
    findings = []
    failed = df[df["status"] != "ok"]
    failed_regimes = failed.apply(lambda r: regime(r["pipeline"], r["batch_size"], r["width"]), axis=1) \
        if not failed.empty else pd.Series(dtype=object)
    for name in REGIMES:
        in_regime = p[p["regime"] == name]
        fails_here = failed[failed_regimes == name] if not failed.empty else failed
        if in_regime.empty and fails_here.empty:
            continue
        findings.append(_finding(name, in_regime, fails_here, hosts, several_pairs(p), threshold))
    headlines = _headlines(p, threshold) if not p.empty else []
    if not p.empty:
        summary += _smallest(c, threshold)
    return Verdict(kinds, p, c, findings, summary, threshold, headlines)


def _headlines(p: pd.DataFrame, threshold: float) -> list[tuple[str, str]]:
    out = []
    tut = p[p["regime"] == "tutorial configuration"]
    named = several_pairs(p)
    for _, r in tut.iterrows():
        pace = "slower than" if r["high"] < 1 else "faster than" if r["low"] > 1 else "about as fast as"
        gpu, cpu = r["device_name"] or r["device"], "CPU"
        if named:
            gpu, cpu = f"{gpu} on {r[M]}", f"CPU ({r['base_device_name'] or 'cpu'} on {r[BASE_M]})"
        out.append((r["outcome"], f"**In the tutorial configuration the GPU ({gpu}) is {pace} the {cpu}**: "
                    f"{r['speedup']:.2f}x the CPU's images/s (95% CI {r['low']:.2f}-{r['high']:.2f}x), so "
                    f"{_phrase(r['outcome'], threshold)}."))
    return out


def _smallest(c: pd.DataFrame, threshold: float) -> list[str]:
    """The smallest batch and width at which the GPU is threshold-x faster; eager and tuned cells apart."""
    out = []
    variants = c.groupby("variant", sort=True) if "variant" in c and c["variant"].nunique() > 1 else [(None, c)]
    for _, cv in variants:
        for axis, unit in (("batch", "batch size"), ("width", "width")):
            reached = cv[(cv["axis"] == axis) & cv["crossover"].notna()]
            if reached.empty:
                if (cv["axis"] == axis).any():
                    out.append(f"No {unit} measured makes the GPU {threshold:g}x faster"
                               f"{_variant(cv.iloc[0]).replace(',', ' in the', 1)} cells.")
                continue
            best = reached.loc[reached["crossover"].astype(float).idxmin()]
            fixed = "width" if axis == "batch" else "batch"
            out.append(f"The smallest {unit} at which the GPU is {threshold:g}x or more faster: "
                       f"**{best['crossover']:g}** ({best['pipeline']} pipeline{_variant(best)}, {fixed} "
                       f"{best['fixed']:g}).")
    return out


def crossover_sentences(v: Verdict, hosts: bool) -> list[str]:
    return _crossover_sentences(v.crossovers, hosts, v.threshold)
