"""Which machine a record was measured on: a host name together with its hardware, so that two machines that
share a name (every cloud VM called `vm`) are never merged, and a name that tells them apart in tables."""

from __future__ import annotations

from collections import defaultdict

from bench.errors import printable

GIB = 2**30


def fingerprint(env: dict) -> tuple:
    """What identifies a machine: its host name, the OS install's id where recorded, its CPU model and logical
    cores, its memory (GiB) and its GPUs. Records whose fingerprints are equal come from one machine."""
    memory = env.get("memory_bytes")
    gpus = tuple(sorted(g.get("name") or "" for g in env.get("gpus") or ()))
    return (env.get("host") or "unknown host", env.get("machine_id"), env.get("cpu_model"),
            env.get("cpu_logical_cores"), round(memory / GIB) if memory else None, gpus)


def _short_gpu(name: str) -> str:
    return name.replace("NVIDIA ", "").replace("GeForce ", "").split(" ")[0] if name else ""


def _described(f: tuple, detail: int) -> str:
    host, machine_id, cpu, cores, memory, gpus = f
    parts = [f"{cores} cores" if cores else "", *(_short_gpu(g) for g in gpus)]
    if detail >= 2:
        parts += [cpu or "", f"{memory} GiB" if memory else ""]
    if detail >= 3 and machine_id:
        parts.append(f"id {machine_id[:6]}")
    text = ", ".join(p for p in parts if p)
    return f"{host} ({text})" if text else host


def names(fingerprints: list[tuple]) -> dict[tuple, str]:
    """A name per distinct fingerprint: the host name where it is unique, else the host with as much of its
    hardware as tells the machines apart ("vm (16 cores, H200)" and "vm (2 cores)"), else a number."""
    by_host = defaultdict(list)
    for f in dict.fromkeys(fingerprints):
        by_host[f[0]].append(f)
    out = {}
    for host, group in by_host.items():
        if len(group) == 1:
            out[group[0]] = host
            continue
        for detail in (1, 2, 3):
            labels = [_described(f, detail) for f in group]
            if len(set(labels)) == len(labels):
                break
        else:
            labels = [f"{label} #{i + 1}" for i, label in enumerate(labels)]
        out.update(zip(group, labels))
    return {f: printable(name) for f, name in out.items()}  # a host name may hold control characters
