"""Datasheet peak FLOP/s of common GPUs (dense, no sparsity), to show achieved FLOP/s as a fraction of peak."""

from __future__ import annotations

# (name fragment, FP32, TF32 tensor-core, BF16 tensor-core TFLOP/s; None where the part has none); most specific
# fragments first. Sources: NVIDIA datasheets for each part (dense figures; the sparsity figures are twice these).
PEAKS_TFLOPS: tuple[tuple[str, float, float | None, float | None], ...] = (
    ("H100 PCIe", 51.2, 378.0, 756.0),
    ("H100 NVL", 60.0, 417.5, 835.0),
    ("H100", 66.9, 494.7, 989.4),  # SXM, e.g. "NVIDIA H100 80GB HBM3"
    ("GH200", 66.9, 494.7, 989.4),
    ("H200", 66.9, 494.7, 989.4),
    ("A100", 19.5, 156.0, 312.0),
    ("L40S", 91.6, 183.0, 362.1),
    ("L4", 30.3, 60.0, 121.0),
    ("A10", 31.2, 62.5, 125.0),
    ("RTX 4090", 82.6, 82.6, 165.2),
    ("RTX 3090", 35.6, 35.6, 71.0),
    ("V100", 15.7, None, None),
    ("T4", 8.1, None, None),
)
PRECISIONS = ("fp32", "tf32", "bf16")


def peak_flops(device_name: str, precision: str = "fp32") -> float | None:
    """Peak FLOP/s for the named device in fp32, tf32 or bf16; None for CPUs and devices not in the table."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    for fragment, *values in PEAKS_TFLOPS:
        if fragment.lower() in (device_name or "").lower():
            value = values[PRECISIONS.index(precision)]
            return value * 1e12 if value is not None else None
    return None


def precision_of(tune, device: str = "cpu") -> str:
    """The arithmetic most of a cell's FLOPs run in: bf16 under amp; on CUDA otherwise tf32, because cuDNN
    runs float32 convolutions (most of this net's FLOPs) on TF32 tensor cores by default
    (torch.backends.cudnn.allow_tf32); fp32 elsewhere. On an A100 or newer an eager CUDA cell can therefore
    pass the plain FP32 peak, which is why it is not the denominator there."""
    if "amp" in (tune or ()):
        return "bf16"
    return "tf32" if device.startswith("cuda") else "fp32"
