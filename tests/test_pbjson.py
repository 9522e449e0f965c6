"""pytest-benchmark JSON from this project's suite: written by pytest, read by pytest-benchmark and by bench."""

import json
import os
import subprocess
import sys

import pytest

from bench.errors import UserError
from bench.results import load
from tests.conftest import record_dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def document(**extra):
    info = {"schema": "bench-train-step/1", "device": "cuda:0", "device_name": "NVIDIA H100 80GB HBM3",
            "pipeline": "resident", "batch_size": 256, "width": 4.0, "threads": 16, "dataset": "synthetic",
            "tune": [], "variant": "", "lr": 0.05, "torch": "2.x", "flops_per_image": 1000, "parameters": 62006,
            "steps_per_round": 10, "step_seconds": [0.001, 0.002, 0.003], "images_per_s": 128000.0}
    info.update(extra)
    return {"machine_info": {"node": "gpuhost", "cpu": {"brand_raw": "Xeon"}}, "commit_info": {"id": "abc"},
            "datetime": "2026-11-26T00:00:00", "version": "5.3.1",
            "benchmarks": [{"name": "test_train_step[x]", "stats": {"median": 0.02}, "extra_info": info},
                           {"name": "test_other", "stats": {"median": 1.0}, "extra_info": {}}]}


def test_train_step_benchmarks_become_rows_with_the_results_columns(tmp_path):
    path = tmp_path / "out.json"
    path.write_text(json.dumps(document()))
    df = load(path)
    assert len(df) == 1  # the benchmark of another kind is ignored
    r = df.iloc[0]
    assert (r.device, r.pipeline, r.batch_size, r.width, r.host, r.status) == (
        "cuda:0", "resident", 256, 4.0, "gpuhost", "ok")
    assert r.step_ms == pytest.approx(2.0) and r.images_per_s == pytest.approx(128_000)
    assert r.peak_fraction == pytest.approx(1000 * 128_000 / 494.7e12)  # eager CUDA: TF32 convolutions


def test_a_train_step_benchmark_missing_its_facts_is_named(tmp_path):
    doc = document()
    del doc["benchmarks"][0]["extra_info"]["step_seconds"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=r"old\.json: benchmark 0 \(test_train_step\[x\]\) lacks extra_info 'step_seconds'"):
        load(path)


GPU_HOST = {"host": "gpuhost", "machine_id": "a1b2c3d4e5f6", "cpu_model": "Xeon", "cpu_logical_cores": 16,
            "memory_bytes": 128 * 2**30, "gpus": [{"name": "NVIDIA H100 80GB HBM3"}]}


def bench_run_record(device: str) -> dict:
    """A `bench run` record from GPU_HOST, as its JSON object."""
    d = record_dict(device=device, pipeline="resident", batch_size=256, width=4.0)
    return {**d, "env": {**d["env"], **GPU_HOST}, "device_name": "NVIDIA H100 80GB HBM3" if device != "cpu" else "Xeon"}


def test_the_suite_s_machine_facts_join_its_rows_to_the_same_machine_s_bench_run(tmp_path):
    """The H200 reference folder read whole: its benchmarks.json rows were a second machine "vm" beside
    "vm (16 cores, H200)", and the report set that GPU beside the other's CPU, across machines."""
    doc = document(machine={**GPU_HOST, "gpus": ["NVIDIA H100 80GB HBM3"]})
    (tmp_path / "benchmarks.json").write_text(json.dumps(doc))
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(bench_run_record(d)) + "\n" for d in ("cpu", "cuda:0")))
    df = load(tmp_path)
    assert len(df) == 3 and df["machine"].nunique() == 1, df[["machine", "host", "device"]]


def test_a_document_without_them_keeps_its_cpu_and_gpu_rows_one_machine_apart_from_the_run(tmp_path):
    cpu = document(device="cpu", device_name="Xeon")["benchmarks"][0]
    doc = document()
    doc["benchmarks"].append(cpu)
    doc["machine_info"]["cpu"]["count"] = 16
    (tmp_path / "benchmarks.json").write_text(json.dumps(doc))
    (tmp_path / "records.jsonl").write_text(json.dumps(bench_run_record("cpu")) + "\n")
    df = load(tmp_path)
    from_doc = df[df["run_id"] == "benchmarks"]
    assert len(from_doc) == 2 and from_doc["machine"].nunique() == 1  # one machine: its CPU and its GPU
    assert df["machine"].nunique() == 2  # never merged with a run whose machine it cannot be shown to be
    assert "16 cores" in from_doc["machine"].iloc[0] and "H100" in from_doc["machine"].iloc[0]


@pytest.mark.parametrize("bad", [{"cpu_logical_cores": True}, {"memory_bytes": -1}, {"gpus": "H100"},
                                 {"machine_id": 7}, {"gpus": [3, None]}])
def test_machine_facts_of_the_wrong_type_are_left_out(tmp_path, bad):
    path = tmp_path / "out.json"
    path.write_text(json.dumps(document(machine={**GPU_HOST, "gpus": ["NVIDIA H100 80GB HBM3"], **bad})))
    r = load(path).iloc[0]
    assert r.status == "ok" and r.host == "gpuhost"


@pytest.mark.slow
def test_benchmark_only_writes_json_that_pytest_benchmark_and_bench_read(tmp_path):
    out = tmp_path / "out.json"
    env = {**os.environ, "BENCH_BATCHES": "4", "BENCH_WIDTHS": "1", "BENCH_SECONDS": "0.2"}
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--benchmark-only",
                        "--benchmark-json", str(out), "-k", "cpu-resident", "tests/benchmarks/test_train_step.py"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    compare = subprocess.run([sys.executable, "-c", "from pytest_benchmark.cli import main; main()", "compare",
                              str(out)],
                             capture_output=True, text=True, timeout=60)
    assert compare.returncode == 0 and "test_train_step[cpu-resident-bs4-w1]" in compare.stdout, compare.stderr
    df = load(out)
    assert list(df.device) == ["cpu"] and df.images_per_s.iloc[0] > 0
