"""What a cell needs before its clock starts: the model, optimizer, batches and test set on its device, and the
snapshot of weights and optimizer state that warm-up restores. Data preparation is never timed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bench import tuning
from bench.config import CellConfig
from bench.data import Dataset
from bench.pipelines import ResidentBatches, TutorialBatches, normalized_tensor
from model import TutorialNet

EVAL_BATCH = 1000  # images per forward pass when measuring test accuracy (off the clock)


@dataclass
class Prepared:
    """What a cell needs on its device before the clock starts (data preparation is never timed)."""

    net: nn.Module
    optimizer: torch.optim.Optimizer
    batches: object  # TutorialBatches | ResidentBatches
    warmup_batches: object
    test_x: torch.Tensor
    test_y: torch.Tensor


def build_model(cell: CellConfig, data: Dataset) -> nn.Module:
    torch.manual_seed(cell.seed)
    return TutorialNet(width=cell.width, in_channels=data.channels, image_size=data.image_size,
                       num_classes=data.num_classes)


def prepare(cell: CellConfig, data: Dataset, net: nn.Module) -> Prepared:
    device = cell.device
    net = tuning.prepare_model(net.to(device), cell.tune)
    optimizer = torch.optim.SGD(net.parameters(), lr=cell.lr, momentum=cell.momentum)
    if cell.pipeline == "tutorial":
        pinned = "pinned" in cell.tune
        batches = TutorialBatches(data.train_images, data.train_labels, cell.batch_size, device,
                                  cell.workers, cell.seed, pinned)
        warmup = TutorialBatches(data.train_images, data.train_labels, cell.batch_size, device,
                                 cell.workers, cell.seed + 1, pinned)
    else:
        x = normalized_tensor(data.train_images).to(device)
        y = torch.from_numpy(data.train_labels).to(device)
        batches = ResidentBatches(x, y, cell.batch_size, cell.seed)
        warmup = ResidentBatches(x, y, cell.batch_size, cell.seed + 1)
    test_x = normalized_tensor(data.test_images).to(device)
    test_y = torch.from_numpy(data.test_labels).to(device)
    return Prepared(net, optimizer, batches, warmup, test_x, test_y)


@torch.no_grad()
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(y), EVAL_BATCH):
        correct += int((net(x[i:i + EVAL_BATCH]).argmax(1) == y[i:i + EVAL_BATCH]).sum())
    net.train()
    return correct / len(y)


def snapshot_state(net: nn.Module, optimizer: torch.optim.Optimizer):
    params = {k: v.detach().clone() for k, v in net.state_dict().items()}
    state = {p: {k: v.detach().clone() for k, v in s.items() if torch.is_tensor(v)} for p, s in optimizer.state.items()}
    return params, state


def restore_state(net: nn.Module, optimizer: torch.optim.Optimizer, snapshot) -> None:
    """Put weights and optimizer state back in place: a captured CUDA graph or a compiled model keeps
    pointing at these very tensors. SGD momentum created during warm-up is zeroed, which is exactly a fresh
    buffer for SGD without dampening (its first step sets the buffer to the gradient either way)."""
    params, state = snapshot
    with torch.no_grad():
        for k, v in net.state_dict().items():
            v.copy_(params[k])
        for p, s in optimizer.state.items():
            saved = state.get(p, {})
            for k, v in s.items():
                if torch.is_tensor(v):
                    v.copy_(saved[k]) if k in saved else v.zero_()
