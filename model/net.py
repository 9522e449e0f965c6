"""The tutorial CNN (conv 3->6 k5, pool, conv 6->16 k5, pool, fc 400->120->84->10) scaled by a width multiplier.

    >>> from model import TutorialNet, count_parameters
    >>> count_parameters(TutorialNet())
    62006

The model never chooses a device: callers move it.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _scaled(base: int, width: float) -> int:
    return max(1, round(base * width))


class TutorialNet(nn.Module):
    """The network of the PyTorch "Training a Classifier" tutorial; width 1 is exactly the tutorial's.

    width scales every channel count and hidden unit (6, 16, 120, 84); in_channels and image_size come
    from the dataset (3x32x32 for CIFAR-10, 1x28x28 for Fashion-MNIST).
    """

    def __init__(self, width: float = 1.0, in_channels: int = 3, image_size: int = 32, num_classes: int = 10):
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width!r}")
        side = ((image_size - 4) // 2 - 4) // 2  # two (conv k5, pool 2) stages
        if side < 1:
            raise ValueError(f"image_size must be at least 16 for two k5 conv + pool stages, got {image_size}")
        c1, c2 = _scaled(6, width), _scaled(16, width)
        h1, h2 = _scaled(120, width), _scaled(84, width)
        self.width = width
        self.conv1 = nn.Conv2d(in_channels, c1, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        self.fc1 = nn.Linear(c2 * side * side, h1)
        self.fc2 = nn.Linear(h1, h2)
        self.fc3 = nn.Linear(h2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _count(net: nn.Module, input_shape: tuple[int, int, int], backward: bool) -> int:
    """FLOPs per image counted by torch.utils.flop_counter (convolutions and matrix products) on the CPU."""
    x = torch.zeros((1, *input_shape))
    net = copy.deepcopy(net).to("cpu")  # count on a private CPU copy: the caller's model and its grads stay as they were
    with FlopCounterMode(display=False) as counter:
        out = net(x)
        if backward:
            out.sum().backward()
    return int(counter.get_total_flops())


def forward_flops_per_image(net: nn.Module, input_shape: tuple[int, int, int]) -> int:
    return _count(net, input_shape, backward=False)


def training_flops_per_image(net: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Forward plus backward FLOPs for one image (the input itself needs no gradient, as in training)."""
    return _count(net, input_shape, backward=True)
