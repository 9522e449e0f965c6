"""Training steps: the tutorial's eager step, and the tuned paths of `--tune` (bf16 autocast, channels_last,
cuDNN autotuning, torch.compile, CUDA graphs, pinned host memory) that apply a cell's options.

Which options a cell can use is decided without torch, in bench.variants."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from bench.variants import kind


def amp_dtype(device: str) -> torch.dtype:
    """bf16 where the device has it; fp16 (with a GradScaler) on older GPUs."""
    if kind(device) == "cuda" and not torch.cuda.is_bf16_supported():
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


def eager_step(net: nn.Module, optimizer: torch.optim.Optimizer, host_loss: bool):
    """One training step as the tutorial writes it: forward, loss, backward, optimizer step. The tutorial reads
    loss.item() every step (a host synchronization); the resident pipeline keeps the loss on the device."""
    criterion = nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor):
        optimizer.zero_grad()
        loss = criterion(net(x), y)
        loss.backward()
        optimizer.step()
        return loss.item() if host_loss else loss.detach()

    return step


def make_step(tune: tuple[str, ...], device: str, net: nn.Module, optimizer: torch.optim.Optimizer,
              host_loss: bool):
    """The training step with the cell's options; with none (or only cudnn or pinned, which change no step),
    exactly the eager step."""
    if not tune or tune == ("cudnn",) or tune == ("pinned",):
        return eager_step(net, optimizer, host_loss)
    criterion = nn.CrossEntropyLoss()
    device_kind = kind(device)
    channels_last = "channels_last" in tune
    model = net
    if "compile" in tune:
        model = torch.compile(net, mode="reduce-overhead" if device_kind == "cuda" else None)
    dtype = amp_dtype(device) if "amp" in tune else None
    scaler = torch.amp.GradScaler(device_kind) if dtype == torch.float16 else None

    def forward_backward(x, y):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device_kind, dtype=dtype or torch.float32, enabled=dtype is not None):
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
