"""pytest-benchmark JSON (`--benchmark-json`, `--benchmark-autosave`) read as bench records."""

from __future__ import annotations

from pathlib import Path

from bench.config import is_number
from bench.errors import UserError, one_line
from bench.records import Environment, Record
from bench.schema import decode

TRAIN_STEP_SCHEMA = "bench-train-step/1"  # extra_info["schema"] of tests/benchmarks/test_train_step.py


def schema_problem(doc) -> str | None:
    """What keeps doc from being a pytest-benchmark document this bench reads, or None."""
    if not isinstance(doc, dict):
        return f"the top level is a JSON {type(doc).__name__}, not an object"
    if not isinstance(doc.get("benchmarks"), list):
        return "no 'benchmarks' list"
    for i, bench in enumerate(doc["benchmarks"]):
        if not isinstance(bench, dict) or not isinstance(bench.get("name"), str):
            return f"benchmarks[{i}] has no 'name'"
        stats_ = bench.get("stats")
        if not isinstance(stats_, dict) or not is_number(stats_.get("median")):
            return f"benchmarks[{i}] ({bench['name']!r}) has no numeric stats.median"
    return None


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def records(path: str | Path, doc: dict) -> list[Record]:
    """One ok record per train-step benchmark in the document; other benchmarks in it are ignored.

    A document with no train-step benchmarks (another suite's, or another schema) is bad input."""
    machine = doc.get("machine_info") if isinstance(doc.get("machine_info"), dict) else {}
    commit = doc.get("commit_info") if isinstance(doc.get("commit_info"), dict) else {}
    cpu = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    dirty = commit.get("dirty")
    env = {"host": _text(machine.get("node")), "cpu_model": _text(cpu.get("brand_raw")),
           "cpu_logical_cores": _count(cpu.get("count")),
           "python": _text(machine.get("python_version")) or "",
           "os": f"{_text(machine.get('system')) or ''} {_text(machine.get('release')) or ''}".strip(),
           "git": {"commit": _text(commit.get("id")), "dirty": dirty if isinstance(dirty, bool) else None},
           "source": f"pytest-benchmark {doc.get('version', '?')}"}
    steps = [(i, b, b.get("extra_info")) for i, b in enumerate(doc["benchmarks"])]
    steps = [(i, b, info) for i, b, info in steps if isinstance(info, dict) and info.get("schema") == TRAIN_STEP_SCHEMA]
    env.update(_identity([info for _, _, info in steps]))
    out = []
    for i, bench, info in steps:
        try:
            out.append(_record(Path(path), doc, env, bench, info))
        except KeyError as exc:
            raise UserError(f"{path}: benchmark {i} ({bench.get('name', '?')}) lacks extra_info {exc}; "
                            f"rerun `pytest --benchmark-only --benchmark-json FILE` with this version") from None
        except (TypeError, ValueError) as exc:
            raise UserError(f"{path}: benchmark {i} ({bench.get('name', '?')}): {one_line(str(exc), 160)}; "
                            f"rerun `pytest --benchmark-only --benchmark-json FILE` with this version") from None
    if not out:
        raise UserError(f"{path}: a pytest-benchmark file without bench train-step benchmarks "
                        f"(extra_info schema {TRAIN_STEP_SCHEMA}); give JSON from this project's benchmark suite")
    return out


def machine_extra(env: Environment) -> dict:
    """What the benchmark suite writes in each train-step benchmark's extra_info["machine"]: the facts that
    identify a machine (bench.machines.fingerprint), so that its rows and a bench run's records from the same
    machine are one machine in a report, not two."""
    return {"host": env.host, "machine_id": env.machine_id, "cpu_model": env.cpu_model,
            "cpu_logical_cores": env.cpu_logical_cores, "memory_bytes": env.memory_bytes,
            "gpus": [g.name for g in env.gpus]}


def _identity(infos: list[dict]) -> dict:
    """The machine's identity for every row of a document (one process ran them all): machine_extra() where the
    suite wrote it; else the GPUs named by its GPU benchmarks, so its CPU and GPU rows stay one machine. A value of
    the wrong type is left out, never guessed."""
    given = next((i["machine"] for i in infos if isinstance(i.get("machine"), dict)), None)
    if given is None:
        names = sorted({i["device_name"] for i in infos if str(i.get("device", "")).startswith("cuda")
                        and isinstance(i.get("device_name"), str)})
        return {"gpus": [{"name": n} for n in names]}
    out = {k: _text(given.get(k)) for k in ("host", "machine_id", "cpu_model")}
    out.update({k: _count(given.get(k)) for k in ("cpu_logical_cores", "memory_bytes")})
    gpus = given.get("gpus")
    out["gpus"] = [{"name": n} for n in gpus if isinstance(n, str)] if isinstance(gpus, list) else []
    return {k: v for k, v in out.items() if v is not None}


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _record(path: Path, doc: dict, env: dict, bench: dict, info: dict) -> Record:
    """The record a bench run would have written for these rounds, read back through the record's types."""
    steps = info["step_seconds"]
    if not isinstance(steps, list) or not steps:
        raise ValueError("step_seconds must be a non-empty list")
    batch, per_round = info["batch_size"], info.get("steps_per_round")
    tune = info.get("tune", [])
    cell = {"dataset": info.get("dataset", "synthetic"), "device": info["device"], "pipeline": info["pipeline"],
            "batch_size": batch, "width": info["width"], "threads": info["threads"],
            "budget": f"{len(steps) * (per_round if isinstance(per_round, int) else 1)}steps",
            "lr": info.get("lr", 0.001), "tune": tune,
            "variant": info.get("variant", "+".join(tune) if isinstance(tune, list) else ""),
            "eval_points": 0, "warmup_steps": 0}
    record = {
        "cell": cell, "status": "ok", "run_id": path.stem, "created_utc": str(doc.get("datetime", "")),
        "env": {**env, "torch": _text(info.get("torch"))}, "device_name": str(info.get("device_name", "")),
        "message": f"pytest-benchmark: {bench.get('name', '')}",
        "model": {"parameters": info.get("parameters"), "train_flops_per_image": info.get("flops_per_image")},
        "timing": {"clock": "pytest-benchmark rounds, one synchronize per round", "steps": len(steps),
                   "samples": len(steps) * batch if isinstance(batch, int) else 0, "step_seconds": steps,
                   "steps_per_round": per_round},
    }
    return decode(Record, record, "extra_info")
