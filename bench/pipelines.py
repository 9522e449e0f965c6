"""Where batches come from: the tutorial's DataLoader, or the whole dataset resident on the device."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from bench import signals
from bench.config import steps_per_epoch

Batch = tuple[torch.Tensor, torch.Tensor]


def tutorial_transform(channels: int) -> transforms.Compose:
    """The tutorial's per-image transform: ToTensor then Normalize to [-1, 1]."""
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * channels, (0.5,) * channels)])


class ImageArrayDataset(torch.utils.data.Dataset):
    """Images held as uint8 NHWC, served one at a time as PIL images through a transform, as torchvision's
    CIFAR10 does in __getitem__: the per-image cost is the tutorial's."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        img = self.images[i]
        img = Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
        return self.transform(img), int(self.labels[i])


def normalized_tensor(images: np.ndarray) -> torch.Tensor:
    """NHWC uint8 -> NCHW float32 with exactly the tutorial transform's arithmetic: (x/255 - 0.5) / 0.5."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
    return x.sub_(0.5).div_(0.5).contiguous()


class TutorialBatches:
    """As in the tutorial: DataLoader(shuffle=True, num_workers=2), a fresh iterator (and workers) every epoch,
    and each batch copied to the device with .to(device)."""

    def __init__(self, images, labels, batch_size: int, device: str, workers: int, seed: int,
                 pinned: bool = False):
        channels = images.shape[3]
        dataset = ImageArrayDataset(images, labels, tutorial_transform(channels))
        generator = torch.Generator().manual_seed(seed)
        # pinned (a tuned path, CUDA only): page-locked batches, copied without blocking the host
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                 drop_last=True, generator=generator, pin_memory=pinned,
                                 worker_init_fn=signals.quiet_worker if workers else None)
        self.non_blocking = pinned
        self.device = device
        self.steps_per_epoch = steps_per_epoch(len(labels), batch_size)

    def host(self) -> Iterator[Batch]:
        """Batches as the DataLoader yields them, on the host, epoch after epoch. Each epoch's workers fork
        with Ctrl-C and SIGTERM held (bench.signals): a signal then stops the run, never a half-born worker."""
        while True:
            with signals.deferred():
                epoch = iter(self.loader)
            yield from epoch

    def __iter__(self) -> Iterator[Batch]:
        for inputs, labels in self.host():
            yield (inputs.to(self.device, non_blocking=self.non_blocking),
                   labels.to(self.device, non_blocking=self.non_blocking))


class ResidentBatches:
    """The whole dataset as one normalized tensor on the device; each epoch a permutation drawn on the device,
    each batch an index_select: nothing in here waits for the host."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int):
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch(len(y), batch_size)
        self.generator = torch.Generator(device=x.device).manual_seed(seed)

    def __iter__(self) -> Iterator[Batch]:
        n, bs = len(self.y), self.batch_size
        while True:
            perm = torch.randperm(n, device=self.x.device, generator=self.generator)
            for i in range(self.steps_per_epoch):
                idx = perm[i * bs:(i + 1) * bs]
                yield self.x.index_select(0, idx), self.y.index_select(0, idx)
