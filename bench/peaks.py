"""Datasheet peak FLOP/s of common GPUs (dense, no sparsity), to show achieved FLOP/s as a fraction of peak."""

from __future__ import annotations

# (name fragment, FP32 TFLOP/s, BF16 tensor-core TFLOP/s or None); most specific fragments first.
# Sources: NVIDIA datasheets for each part (dense figures; the sparsity figures are twice these).
PEAKS_TFLOPS: tuple[tuple[str, float, float | None], ...] = (
    ("H100 PCIe", 51.2, 756.0),
    ("H100 NVL", 60.0, 835.0),
    ("H100", 66.9, 989.4),  # SXM, e.g. "NVIDIA H100 80GB HBM3"
    ("H200", 66.9, 989.4),
    ("GH200", 66.9, 989.4),
    ("A100", 19.5, 312.0),
    ("L40S", 91.6, 362.1),
    ("L4", 30.3, 121.0),
    ("A10", 31.2, 125.0),
    ("RTX 4090", 82.6, 165.2),
    ("RTX 3090", 35.6, 71.0),
    ("V100", 15.7, None),
    ("T4", 8.1, None),
)


def peak_flops(device_name: str, precision: str = "fp32") -> float | None:
    """Peak FLOP/s for the named device in fp32 or bf16; None for CPUs and devices not in the table."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
    for fragment, fp32, bf16 in PEAKS_TFLOPS:
        if fragment.lower() in (device_name or "").lower():
            value = fp32 if precision == "fp32" else bf16
            return value * 1e12 if value is not None else None
    return None


def precision_of(tune) -> str:
    """The arithmetic a cell's matrix work runs in: bf16 under amp, fp32 otherwise."""
    return "bf16" if "amp" in (tune or ()) else "fp32"
