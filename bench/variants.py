"""The `--tune` variants as names: parsing them, resolving `fast` per cell, and which cells can use which option.

Torch-free, so a cell's configuration can be validated (and a record read) without importing torch; the steps
that apply the options live in bench.tuning.
"""

from __future__ import annotations

import shutil

OPTIONS = ("amp", "channels_last", "cudnn", "compile", "cudagraph", "pinned")
FAST = "fast"  # alias: the options that apply to a cell's device and pipeline, without compile's long start-up


def kind(device: str) -> str:
    """'cpu', 'cuda' or 'mps' (the part of a device string before the colon)."""
    return device.split(":", 1)[0]


def parse(text: str) -> tuple[tuple[str, ...], ...]:
    """'none,amp+channels_last,fast' -> ((), ('amp', 'channels_last'), ('fast',)): variants of the grid."""
    variants = []
    for item in (t.strip().lower() for t in text.split(",")):
        if not item:
            continue
        if item == "none":
            variants.append(())
            continue
        parts = tuple(sorted({p.strip() for p in item.split("+") if p.strip()}))
        for p in parts:
            if p not in OPTIONS and p != FAST:
                raise ValueError(f"unknown --tune option {p!r}: use none, {FAST}, or options joined by + "
                                 f"from {', '.join(OPTIONS)}")
        if FAST in parts and len(parts) > 1:
            raise ValueError(f"--tune {FAST} stands alone: it picks the options itself")
        variants.append(parts)
    if not variants:
        raise ValueError("--tune is empty: use none, fast, or options joined by +")
    return tuple(dict.fromkeys(variants))


def resolve(tune: tuple[str, ...], device: str, pipeline: str) -> tuple[str, ...]:
    """Expand the `fast` alias for one cell; other variants are returned as given."""
    if tune != (FAST,):
        return tune
    if kind(device) != "cuda":
        return ("channels_last",)
    return tuple(sorted(("amp", "channels_last", "cudnn", "cudagraph" if pipeline == "resident" else "pinned")))


def unsupported(tune: tuple[str, ...], device: str, pipeline: str) -> str | None:
    """Why this cell cannot apply its options (one line), or None when it can."""
    k = kind(device)
    for option in ("cudnn", "cudagraph", "pinned"):
        if option in tune and k != "cuda":
            return f"{option} needs a CUDA device, not {device}"
    if "cudagraph" in tune and pipeline != "resident":
        return "cudagraph captures the resident pipeline's step; the tutorial pipeline's batches come from the host"
    if "pinned" in tune and pipeline != "tutorial":
        return "pinned speeds the tutorial pipeline's host-to-device copies; the resident pipeline makes none"
    if "compile" in tune and "cudagraph" in tune:
        return "compile (mode reduce-overhead) already replays CUDA graphs: choose compile or cudagraph"
    if "compile" in tune and k == "cpu" and not (shutil.which("c++") or shutil.which("g++")):
        return "torch.compile on the CPU needs a C++ compiler: install g++"
    if "amp" in tune and k == "mps":
        return "amp is not validated on MPS by this project"
    return None
