"""pytest-benchmark JSON (`--benchmark-json`, `--benchmark-autosave`) read as bench records."""

from __future__ import annotations

from pathlib import Path

from bench.errors import UserError
from bench.records import Record

TRAIN_STEP_SCHEMA = "bench-train-step/1"  # extra_info["schema"] of tests/benchmarks/test_train_step.py


def records(path: str | Path, doc: dict) -> list[Record]:
    """One ok record per train-step benchmark in the document; other benchmarks in it are ignored.

    A document with no train-step benchmarks (another suite's, or another schema) is bad input."""
    benchmarks = doc.get("benchmarks")
    if not isinstance(benchmarks, list):
        raise UserError(f"{path}: 'benchmarks' is not a list; give JSON written by pytest-benchmark")
    machine = doc.get("machine_info") if isinstance(doc.get("machine_info"), dict) else {}
    commit = doc.get("commit_info") if isinstance(doc.get("commit_info"), dict) else {}
    cpu = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    env = {"host": machine.get("node"), "cpu_model": cpu.get("brand_raw"), "python": machine.get("python_version"),
           "os": f"{machine.get('system', '')} {machine.get('release', '')}".strip(),
           "git": {"commit": commit.get("id"), "dirty": commit.get("dirty")},
           "source": f"pytest-benchmark {doc.get('version', '?')}"}
    out = []
    for i, bench in enumerate(benchmarks):
        info = bench.get("extra_info") if isinstance(bench, dict) else None
        if not isinstance(info, dict) or info.get("schema") != TRAIN_STEP_SCHEMA:
            continue
        try:
            out.append(_record(Path(path), doc, env, bench, info))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{path}: benchmark {i} ({bench.get('name', '?')}) lacks {exc}; "
                            f"rerun `pytest --benchmark-only --benchmark-json FILE` with this version") from None
    if not out:
        raise UserError(f"{path}: a pytest-benchmark file without bench train-step benchmarks "
                        f"(extra_info schema {TRAIN_STEP_SCHEMA}); give JSON from this project's benchmark suite")
    return out


def _record(path: Path, doc: dict, env: dict, bench: dict, info: dict) -> Record:
    steps = [float(s) for s in info["step_seconds"]]
    if not steps:
        raise ValueError("step_seconds")
    batch = int(info["batch_size"])
    env = {**env, "torch": info.get("torch")}
    cell = {"dataset": info.get("dataset", "synthetic"), "device": info["device"], "pipeline": info["pipeline"],
            "batch_size": batch, "width": float(info["width"]), "threads": int(info["threads"]),
            "budget": f"{len(steps) * int(info.get('steps_per_round', 1))}steps", "lr": info.get("lr", 0.001),
            "tune": info.get("tune", []), "variant": info.get("variant", "+".join(info.get("tune", []))),
            "eval_points": 0, "warmup_steps": 0}
    return Record(
        cell=cell, status="ok", run_id=path.stem, created_utc=doc.get("datetime", ""), env=env,
        device_name=info.get("device_name", ""), message=f"pytest-benchmark: {bench.get('name', '')}",
        model={"parameters": info.get("parameters"), "train_flops_per_image": info.get("flops_per_image")},
        timing={"clock": "pytest-benchmark rounds, one synchronize per round", "steps": len(steps),
                "samples": len(steps) * batch, "train_seconds": None, "step_seconds": steps,
                "steps_per_round": info.get("steps_per_round")},
    )
