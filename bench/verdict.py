"""The verdict on "small models gain little from GPUs", computed from the results: numbers first, then sentences.

    from bench.verdict import judge; v = judge(bench.results.load("results/")); v.answers, v.headline

Two comparisons (bench.pairing's one rule for which cells are compared): *as written*, the eager step on both
devices, as the tutorial trains; and *each at its best*, each device's fastest cell of a pipeline, batch and
width across thread counts and --tune variants. Speedup = GPU images/s / CPU images/s (timed images over timed
seconds), with a 95% interval from resampling each cell's blocks. The claim holds in a comparison when the
interval lies below THRESHOLD, fails when it lies above; a cell with too few blocks, a noisy pace or a busy
machine cannot decide either way (inconclusive, with the reason). Where both cells of a pair have energy read from
a counter, the pair also gets the GPU's joules per image over the CPU's (per_joule); estimates get no ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench import pairing

THRESHOLD = 2.0  # "gains little": the GPU is less than this many times faster
BASELINE = pairing.BASELINE
M, BASE_M = pairing.MACHINE, f"base_{pairing.MACHINE}"  # the columns naming each side's machine
AS_WRITTEN, AT_BEST = "as written", "at their best"
REGIMES = {  # name: (definition, the `bench run` that measures it)
    "tutorial configuration": ("the tutorial's DataLoader loop at batch 4, width 1",
                               "bench run --pipeline tutorial --batch-size 4"),
    "larger batches": ("batch > 4 at width 1",
                       "bench run --pipeline resident --batch-size 4,64,256,1024,4096 --tune none,fast"),
    "wider models": ("width > 1", "bench run --pipeline resident --batch-size 64 --width 1,4,16 --tune none,fast"),
}
STATUS_TEXT = {"holds": "holds", "fails": "does not hold", "inconclusive": "inconclusive",
               "mixed": "depends on the device", "not measured": "not measured"}


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


DOUBTS = {"too few blocks": "fewer blocks than an interval needs", "noisy": "a pace that varied over 10% between blocks",
          "busy": "a busy machine"}


def doubts(cell: pd.Series) -> dict[str, str]:
    """Why one cell cannot decide a comparison by itself: {kind (a DOUBTS key): the detail}."""
    out = {}
    if cell["too_few_blocks"]:
        out["too few blocks"] = f"{cell['device']} ran {cell['blocks']} blocks"
    if cell["noisy"]:
        out["noisy"] = f"{cell['device']}'s pace varied {cell['block_iqr']:.0%} between blocks"
    if cell["busy"]:
        out["busy"] = f"other programs used {cell['others_cpu']:.0%} of the CPUs during the {cell['device']} cell"
    return out


def _both(cell: dict[str, str], base: dict[str, str]) -> dict[str, str]:
    """The doubts of a pair: each kind once, with both cells' details where both have it (two noisy cells:
    both paces named, not only the GPU's)."""
    return {k: "; ".join(d[k] for d in (cell, base) if k in d) for k in {**cell, **base}}


def judged(p: pd.DataFrame, df: pd.DataFrame, comparison: str, threshold: float) -> pd.DataFrame:
    """Pairs with their regime and outcome; where a cell cannot decide, inconclusive, with the kinds of doubt
    (doubt) and their details (reason)."""
    p = pairing.accelerator_pairs(p).reset_index(drop=True)
    found = [_both(doubts(df.loc[r]), doubts(df.loc[b])) for r, b in zip(p["row"], p["base_row"])]
    outcomes = [outcome(lo, hi, threshold) if not d else "inconclusive"
                for lo, hi, d in zip(p["low"], p["high"], found)]
    regimes = [regime(*k) for k in zip(p["pipeline"], p["batch_size"], p["width"])]
    return p.assign(comparison=comparison, regime=regimes, outcome=outcomes,
                    doubt=[", ".join(d) for d in found], reason=["; ".join(d.values()) for d in found])


def evidence(p: pd.DataFrame) -> pd.DataFrame:
    """The pairs a sentence may rest on: for each GPU and configuration, its same-machine pair where there is
    one, else its pairs with other machines' CPUs (which the sentences then label)."""
    if p.empty:
        return p
    keys = [c for c in ("comparison", "device", M, *pairing.WORK) if c in p]
    cross = p["cross_machine"].astype(bool)
    has_local = (~cross).groupby([p[k] for k in keys]).transform("any")
    return p[~cross | ~has_local]


def pair_label(p: pd.Series, show_machine: bool) -> str:
    """'cuda:0 vs cpu', with machines named when the results come from several."""
    if not show_machine:
        return f"{p['device']} vs {p['base_device']}"
    return f"{p['device']} @ {p[M]} vs {p['base_device']} @ {p[BASE_M]}"


def fmt_speedup(s: pd.Series) -> str:
    return f"{s['speedup']:.2f}x [95% CI {s['low']:.2f}-{s['high']:.2f}]"


def status_of(p: pd.DataFrame) -> str:
    """A regime's status from its comparisons: fails where any conclusively fails, holds where all that
    decide hold and none is left undecided, else inconclusive; several devices that disagree: mixed."""
    if p.empty:
        return "not measured"
    found = set(p["outcome"])
    if "fails" in found and "holds" in found and p["width"].nunique() == 1 and p["batch_size"].nunique() == 1:
        return "mixed"
    if "fails" in found:
        return "fails"
    return "holds" if found == {"holds"} else "inconclusive"


MEASURED = ("nvml", "rapl")  # energy read from a counter; an estimate or an unavailable figure makes no ratio
ENERGY_PAIR_COLUMNS = ["comparison", "device", "device_name", M, BASE_M, "cross_machine", "pipeline", "batch_size",
                       "width", "joules_per_image", "base_joules_per_image", "energy_ratio", "energy_method",
                       "base_energy_method", "host_joules_per_image", "host_energy_method", "energy_ratio_with_host"]


def per_joule(p: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """The judged pairs a sentence may rest on (evidence) whose two cells both have measured energy: the GPU's
    joules per image over the CPU's, and, where its host's CPU packages were measured too, with those added."""
    rows = []
    if p.empty or "energy_method" not in df:
        return pd.DataFrame(columns=ENERGY_PAIR_COLUMNS)
    for _, q in evidence(p).iterrows():
        g, c = df.loc[q["row"]], df.loc[q["base_row"]]
        gj, cj = g["joules_per_image"], c["joules_per_image"]
        if not (g["energy_method"] in MEASURED and c["energy_method"] in MEASURED and gj > 0 and cj > 0):
            continue
        host = g["host_joules_per_image"] if g["host_energy_method"] in MEASURED else None
        rows.append({**{k: q[k] for k in ENERGY_PAIR_COLUMNS[:9]}, "joules_per_image": gj,
                     "base_joules_per_image": cj, "energy_ratio": gj / cj, "energy_method": g["energy_method"],
                     "base_energy_method": c["energy_method"], "host_joules_per_image": host,
                     "host_energy_method": g["host_energy_method"] if host is not None else None,
                     "energy_ratio_with_host": (gj + host) / cj if host is not None else None})
    return pd.DataFrame(rows, columns=ENERGY_PAIR_COLUMNS)


@dataclass(frozen=True)
class Verdict:
    """Every judged comparison; bench.sentences puts them into words."""

    kinds: list[str]  # device kinds with usable results
    pairs: pd.DataFrame  # one row per comparison, as written and at their best, with regime and outcome
    threshold: float = THRESHOLD
    baseline: str = BASELINE
    energy: pd.DataFrame | None = None  # per_joule: pairs with measured energy on both devices

    def of(self, comparison: str, regime_name: str | None = None) -> pd.DataFrame:
        """The comparisons of one kind (and regime), same-machine ones where there are any (evidence)."""
        p = self.pairs
        if p.empty:
            return p
        p = p[p["comparison"] == comparison]
        return evidence(p[p["regime"] == regime_name]) if regime_name else p


def judge(df: pd.DataFrame, baseline: str = BASELINE, threshold: float = THRESHOLD) -> Verdict:
    """Every comparison the results allow, as written (eager against eager) and each device at its best."""
    kinds = sorted(pairing.usable(df)["device_kind"].unique().tolist())
    if pairing.usable(df).empty:
        p = pd.DataFrame(columns=[*pairing.PAIR_COLUMNS, "comparison", "regime", "outcome", "doubt", "reason"])
    else:
        written = pairing.pairs(df[df["variant"] == ""], baseline)
        p = pd.concat([judged(written, df, AS_WRITTEN, threshold),
                       judged(pairing.best_pairs(df, baseline), df, AT_BEST, threshold)], ignore_index=True)
    return Verdict(kinds, p, threshold, baseline, per_joule(p, df))
