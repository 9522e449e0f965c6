"""Tuned training paths (--tune): bf16 autocast, channels_last, cuDNN autotuning, torch.compile, CUDA graphs,
pinned host memory. Which options a cell can use, and the training step that applies them."""

from __future__ import annotations

import contextlib
import shutil
from typing import Iterator

import torch
from torch import nn

from bench import devices

OPTIONS = ("amp", "channels_last", "cudnn", "compile", "cudagraph", "pinned")
FAST = "fast"  # alias: the options that apply to a cell's device and pipeline, without compile's long start-up


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
    if devices.kind(device) != "cuda":
        return ("channels_last",)
    return tuple(sorted(("amp", "channels_last", "cudnn", "cudagraph" if pipeline == "resident" else "pinned")))


def unsupported(tune: tuple[str, ...], device: str, pipeline: str) -> str | None:
    """Why this cell cannot apply its options (one line), or None when it can."""
    kind = devices.kind(device)
    for option in ("cudnn", "cudagraph", "pinned"):
        if option in tune and kind != "cuda":
            return f"{option} needs a CUDA device, not {device}"
    if "cudagraph" in tune and pipeline != "resident":
        return "cudagraph captures the resident pipeline's step; the tutorial pipeline's batches come from the host"
    if "pinned" in tune and pipeline != "tutorial":
        return "pinned speeds the tutorial pipeline's host-to-device copies; the resident pipeline makes none"
    if "compile" in tune and "cudagraph" in tune:
        return "compile (mode reduce-overhead) already replays CUDA graphs: choose compile or cudagraph"
    if "compile" in tune and kind == "cpu" and not (shutil.which("c++") or shutil.which("g++")):
        return "torch.compile on the CPU needs a C++ compiler: install g++"
    if "amp" in tune and kind == "mps":
        return "amp is not validated on MPS by this project"
    return None


def amp_dtype(device: str) -> torch.dtype:
    """bf16 where the device has it; fp16 (with a GradScaler) on older GPUs."""
    if devices.kind(device) == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


@contextlib.contextmanager
def applied(tune: tuple[str, ...]) -> Iterator[None]:
    """Process-wide switches a cell needs for its lifetime, restored afterwards."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = "cudnn" in tune
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def prepare_model(net: nn.Module, tune: tuple[str, ...]) -> nn.Module:
    """Before the optimizer is built: memory format changes the parameters' layout in place."""
    if "channels_last" in tune:
        net = net.to(memory_format=torch.channels_last)
    return net


def make_step(tune: tuple[str, ...], device: str, net: nn.Module, optimizer: torch.optim.Optimizer,
              host_loss: bool):
    """The training step with the cell's options; with none, exactly the eager step of bench.train."""
    from bench.train import make_step as eager_step

    if not tune or tune == ("cudnn",) or tune == ("pinned",):
        return eager_step(net, optimizer, host_loss)
    criterion = nn.CrossEntropyLoss()
    kind = devices.kind(device)
    channels_last = "channels_last" in tune
    model = net
    if "compile" in tune:
        model = torch.compile(net, mode="reduce-overhead" if kind == "cuda" else None)
    dtype = amp_dtype(device) if "amp" in tune else None
    scaler = torch.amp.GradScaler(kind) if dtype == torch.float16 else None

    def forward_backward(x, y):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=kind, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = criterion(model(x), y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        return loss

    if "cudagraph" in tune:
        return CudaGraphStep(forward_backward, optimizer, device)

    def step(x, y):
        optimizer.zero_grad()
        loss = forward_backward(x, y)
        return loss.item() if host_loss else loss.detach()

    return step


class CudaGraphStep:
    """The whole training step (forward, backward, optimizer) captured once as a CUDA graph and replayed.

    Shapes are static: each batch is copied into fixed input buffers. The first call warms up on a side
    stream (the optimizer's momentum buffers and cuBLAS/cuDNN workspaces get created), captures, then
    replays; so the first call belongs in warm-up, off the clock."""

    WARMUP_ITERATIONS = 3

    def __init__(self, forward_backward, optimizer: torch.optim.Optimizer, device: str):
        self.forward_backward = forward_backward
        self.optimizer = optimizer
        self.device = device
        self.graph = None

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x.clone(), y.clone()
        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(self.WARMUP_ITERATIONS):
                self.optimizer.zero_grad(set_to_none=True)
                self.forward_backward(self.x, self.y)
        torch.cuda.current_stream(self.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(self.graph):
            self.loss = self.forward_backward(self.x, self.y)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.graph is None:
            self._capture(x, y)
        else:
            self.x.copy_(x, non_blocking=True)
            self.y.copy_(y, non_blocking=True)
        self.graph.replay()
        return self.loss.detach().clone()  # the graph overwrites its loss tensor on every replay
