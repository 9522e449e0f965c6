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


# What may tell apart machines that share a host name, cores and GPUs, in the order a name adds them: the CPU
# model, the memory, the OS install's id; each as words, with what a record did not say said so.
_DETAILS = ((2, lambda v: v or "CPU unknown"), (4, lambda v: f"{v} GiB" if v else "memory unknown"),
            (1, lambda v: f"id {v[:6]}" if v else "no machine id"))


def _described(f: tuple, extra: list[str]) -> str:
    host, _, _, cores, _, gpus = f
    text = ", ".join(p for p in [f"{cores} cores" if cores else "", *(_short_gpu(g) for g in gpus), *extra] if p)
    return f"{host} ({text})" if text else host


def names(fingerprints: list[tuple]) -> dict[tuple, str]:
    """A name per distinct fingerprint: the host name where it is unique, else the host with its cores and GPUs
    ("vm (16 cores, H200)" and "vm (2 cores)"), then, while two names are still alike, only the details that differ
    among them (CPU model, memory, install id: "vm (16 cores, H200, memory unknown)"), else a number."""
    by_host = defaultdict(list)
    for f in dict.fromkeys(fingerprints):
        by_host[f[0]].append(f)
    out = {}
    for host, group in by_host.items():
        if len(group) == 1:
            out[group[0]] = host
            continue
        extras: list[list[str]] = [[] for _ in group]
        labels = [_described(f, []) for f in group]
        for index, words in _DETAILS:
            if len(set(labels)) == len(labels):
                break
            if len({f[index] for f in group}) > 1:
                for extra, f in zip(extras, group):
                    extra.append(words(f[index]))
                labels = [_described(f, extra) for f, extra in zip(group, extras)]
        if len(set(labels)) < len(labels):
            labels = [f"{label} #{i + 1}" for i, label in enumerate(labels)]
        out.update(zip(group, labels))
    return {f: printable(name) for f, name in out.items()}  # a host name may hold control characters
