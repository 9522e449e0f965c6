"""One pairing rule: `bench compare` and the report compare the same cells and give the same speedups, for
results of two machines, eager and tuned."""

from __future__ import annotations

import re
from dataclasses import replace

import pandas as pd
import pytest

from bench import pairing
from bench.cli import main
from bench.results import to_frame
from tests import reportdata as rd


def two_machines() -> list:
    """alpha has a CPU and a GPU, beta only a CPU; every cell eager and tuned (fast)."""
    out = []
    for host, devices in (("alpha", ("cpu", "cuda:0")), ("beta", ("cpu",))):
        for device in devices:
            for pipeline, batch in (("tutorial", 4), ("resident", 256), ("resident", 1024)):
                eager = rd.record(device, pipeline, batch, 1, host=host)
                tuned = rd.record(device, pipeline, batch, 1, host=host, seed=7, scale=0.8)
                out += [eager, replace(tuned, cell=replace(tuned.cell, variant="fast", tune=("channels_last",)))]
    return out


@pytest.fixture
def results(tmp_path):
    records = two_machines()
    for host in ("alpha", "beta"):
        rd.write(tmp_path / host / "records.jsonl", [r for r in records if r.env.host == host])
    return tmp_path


def compared_speedups(text: str) -> set[tuple]:
    """(pipeline, batch, variant, device label, speedup text) of every row of `bench compare`'s tables that has
    a speedup against a baseline."""
    found = set()
    for table in text.strip().split("\n\n"):
        title, _, _, *rows = table.splitlines()
        _, pipeline, batch, _, variant, _ = [t.strip() for t in title.split("|")]
        for row in rows:
            m = re.search(r"(\d+\.\d\dx \[\d+\.\d\d-\d+\.\d\d\])", row)
            if m:
                found.add((pipeline, int(batch.split()[1]), variant, row.split("  ")[0], m.group(1)))
    return found


def reported_speedups(csv: pd.DataFrame) -> set[tuple]:
    """The same, from the report's speedups.csv: the pairs on one machine (what a table row shows)."""
    same = csv[~csv["cross_machine"]]
    return {(r.pipeline, r.batch_size, r.variant if isinstance(r.variant, str) else "eager",
             f"{r.device} @ {r.machine}" + (f" [{r.variant}] = channels_last" if isinstance(r.variant, str) else ""),
             f"{r.speedup:.2f}x [{r.low:.2f}-{r.high:.2f}]") for r in same.itertuples()}


def test_compare_and_the_report_give_the_same_pairs_and_speedups(results, capsys):
    assert main(["compare", str(results / "alpha"), str(results / "beta"), "--no-pair"]) == 0
    compared = compared_speedups(capsys.readouterr().out)
    assert main(["report", str(results / "alpha"), str(results / "beta"), "--reports", str(results / "r"),
                 "--name", "x"]) == 0
    reported = reported_speedups(pd.read_csv(results / "r" / "x" / "speedups.csv", keep_default_na=False,
                                             na_values={"variant": []}).replace({"variant": {"": None}}))
    gpu_rows = {row for row in compared if row[3].startswith("cuda")}
    assert len(gpu_rows) == 6  # 3 configurations x eager and tuned, each against its own machine's CPU
    assert gpu_rows == reported


def test_a_gpu_is_paired_with_its_own_cpu_and_with_cpu_only_machines():
    df = to_frame(two_machines())
    p = pairing.pairs(df)
    gpu = p[p["device"] == "cuda:0"]
    assert len(gpu) == 12  # 3 configurations x 2 variants x (alpha's CPU, beta's CPU)
    assert set(zip(gpu["base_machine"], gpu["cross_machine"])) == {("alpha", False), ("beta", True)}
    for _, r in gpu.iterrows():  # eager against eager, tuned against tuned, at the same batch
        base = df.loc[r["base_row"]]
        assert (base["variant"], base["batch_size"], base["device"]) == (r["variant"], r["batch_size"], "cpu")
    cpu_rows = p[p["device"] == "cpu"]
    assert cpu_rows.empty  # one CPU cell per machine and configuration: each is its own baseline


def test_configuration_key_includes_the_variant():
    assert "variant" in pairing.CONFIG and "budget" not in pairing.CONFIG
    assert set(pairing.CONFIG) < set(pairing.CELL)


def test_a_cell_measured_at_two_budgets_is_compared_once_by_its_longer_run():
    """A GPU check measures resident batch 4 eager in two stages: one comparison, from the run with more timed
    samples, not the faster of the two (that would favour whichever short run went well)."""
    from bench.config import Budget

    short = rd.record("cuda:0", "resident", 4, 1, n=40, scale=0.5)  # twice as fast, but 40 steps
    short = replace(short, cell=replace(short.cell, budget=Budget.parse("40steps")))
    records = [*rd.grid(batches=(4,), widths=(1,), n=200), short]
    p = pairing.pairs(to_frame(records))
    gpu = p[(p["device"] == "cuda:0") & (p["pipeline"] == "resident")]
    assert len(gpu) == 1
    long_rate = 4 / rd.step_model("cuda:0", "resident", 4, 1)
    assert gpu.iloc[0]["images_per_s"] == pytest.approx(long_rate, rel=0.05)
