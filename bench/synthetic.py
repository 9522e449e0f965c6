"""A CIFAR-10-shaped image classification task generated in memory, for machines without the real data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CLASSES = tuple(f"pattern-{k}" for k in range(10))


@dataclass(frozen=True)
class SyntheticSpec:
    """The shape of the task and its difficulty knobs.

    The defaults were tuned so the PyTorch CIFAR-10 tutorial CNN (batch 4, SGD lr 0.001,
    momentum 0.9) reaches about 70% test accuracy after one epoch and about 74% after two.
    Changing any knob changes that; the benchmark only ever uses the defaults.
    """

    num_train: int = 50_000  # images
    num_test: int = 10_000  # images
    image_size: int = 32  # pixels per side
    num_classes: int = 10
    waves: int = 3  # plane waves per channel in each pattern
    max_frequency: float = 2.5  # cycles per image width
    blobs: int = 3  # coloured Gaussian blobs in each pattern
    blob_radius: tuple[float, float] = (3.0, 7.0)  # pixels, uniform range
    pair_share: float = 0.85  # fraction of template variance shared by classes 2j and 2j+1
    max_shift: int = 4  # pixels: each image shows its template moved by up to this much per axis
    mix: tuple[float, float] = (0.0, 0.45)  # weight of another class's template, uniform range
    clutter: float = 1.5  # std of the weight of a random non-class pattern, in template std units
    clutter_bank: int = 2048  # distinct clutter patterns per split
    contrast: tuple[float, float] = (0.5, 1.3)  # multiplier, uniform range
    brightness: float = 0.3  # std of a per-image, per-channel offset, in template std units
    noise: float = 0.5  # std of per-pixel noise, in template std units
    pixel_scale: float = 40.0  # grey levels per template std unit, around mid-grey 128
    chunk: int = 5_000  # images built at once: bounds peak memory to a few hundred MB


def _seeded(seed: int, stream: int) -> torch.Generator:
    # SeedSequence turns (seed, stream) into unrelated states, so the train and test
    # streams never replay each other, and seed 1's test set is not seed 0's anything.
    state = np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def _uniform(g: torch.Generator, shape: tuple[int, ...], lo: float, hi: float) -> torch.Tensor:
    return torch.rand(shape, generator=g) * (hi - lo) + lo


def _normalized(t: torch.Tensor) -> torch.Tensor:
    t = t - t.mean(dim=(1, 2, 3), keepdim=True)
    return t / t.std(dim=(1, 2, 3), keepdim=True)


def _patterns(spec: SyntheticSpec, g: torch.Generator, count: int, side: int) -> torch.Tensor:
    """`count` random smooth colour patterns, (count, 3, side, side), each with zero mean and unit std."""
    shape = (count, 3, spec.waves)
    axis = torch.arange(side, dtype=torch.float32)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    # Frequencies are per image width, not per canvas, so a pattern's scale does not depend on the margin.
    freq = _uniform(g, shape, 0.5, spec.max_frequency) * (2 * torch.pi / spec.image_size)
    angle = _uniform(g, shape, 0.0, torch.pi)[..., None, None]
    phase = _uniform(g, shape, 0.0, 2 * torch.pi)[..., None, None]
    amp = _uniform(g, shape, 0.5, 1.0)[..., None, None]
    along = torch.cos(angle) * xx + torch.sin(angle) * yy
    waves = (amp * torch.sin(freq[..., None, None] * along + phase)).sum(2)
    margin = (side - spec.image_size) / 2
    centre = _uniform(g, (count, spec.blobs, 2), margin, margin + spec.image_size)[..., None, None]
    radius = _uniform(g, (count, spec.blobs), *spec.blob_radius)[..., None, None]
    colour = torch.randn((count, spec.blobs, 3), generator=g) * 1.5
    blob = torch.exp(-((yy - centre[:, :, 0]) ** 2 + (xx - centre[:, :, 1]) ** 2) / (2 * radius**2))
    return _normalized(waves + torch.einsum("kbc,kbyx->kcyx", colour, blob))


def _class_templates(spec: SyntheticSpec, g: torch.Generator) -> torch.Tensor:
    """One canvas per class with room to shift; classes 2j and 2j+1 share most of theirs.

    The shared part is what keeps the task from being trivial: telling the pair apart takes
    the network longer to learn than telling the five pairs apart, so accuracy still climbs
    in the second epoch.
    """
    side = spec.image_size + 2 * spec.max_shift
    own = _patterns(spec, g, spec.num_classes, side)
    pair = _patterns(spec, g, (spec.num_classes + 1) // 2, side).repeat_interleave(2, dim=0)
    return _normalized(spec.pair_share**0.5 * pair[: spec.num_classes] + (1 - spec.pair_share) ** 0.5 * own)


def _shifted_bank(templates: torch.Tensor, spec: SyntheticSpec) -> torch.Tensor:
    """Every class at every shift, (shifts * classes, 3, H, W): a shifted template is then one gather."""
    size, span = spec.image_size, 2 * spec.max_shift + 1
    crops = [templates[:, :, dy : dy + size, dx : dx + size] for dy in range(span) for dx in range(span)]
    return torch.stack(crops).reshape(-1, 3, size, size).contiguous()


def _sample(bank: torch.Tensor, labels: torch.Tensor, spec: SyntheticSpec, g: torch.Generator) -> np.ndarray:
    """Draw one split's images for the given labels, as uint8 NHWC."""
    n, k = labels.numel(), spec.num_classes
    shifts = (2 * spec.max_shift + 1) ** 2
    other = (labels + torch.randint(1, k, (n,), generator=g)) % k  # any class but the label
    own_at = torch.randint(0, shifts, (n,), generator=g) * k + labels
    other_at = torch.randint(0, shifts, (n,), generator=g) * k + other
    mix = _uniform(g, (n, 1, 1, 1), *spec.mix)
    gain = _uniform(g, (n, 1, 1, 1), *spec.contrast)
    offset = torch.randn((n, 3, 1, 1), generator=g) * spec.brightness
    # Clutter comes from each split's own bank, so test images carry distractors never seen in training.
    clutter = _patterns(spec, g, spec.clutter_bank, spec.image_size)
    clutter_at = torch.randint(0, spec.clutter_bank, (n,), generator=g)
    clutter_w = torch.randn((n, 1, 1, 1), generator=g) * spec.clutter
    out = np.empty((n, spec.image_size, spec.image_size, 3), dtype=np.uint8)
    for lo in range(0, n, spec.chunk):
        s = slice(lo, lo + spec.chunk)
        x = bank[own_at[s]].mul_(1 - mix[s]).add_(bank[other_at[s]].mul_(mix[s]))
        x.add_(clutter[clutter_at[s]].mul_(clutter_w[s]))
        x.mul_(gain[s]).add_(offset[s])
        x.add_(torch.randn(x.shape, generator=g), alpha=spec.noise)
        x.mul_(spec.pixel_scale).add_(128.0).clamp_(0.0, 255.0).round_()
        out[s] = x.to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


CACHE_VERSION = 1  # raise when generate() changes what it makes, so old cached sets are not read


def generate(seed: int, spec: SyntheticSpec = SyntheticSpec()) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train images, train labels, test images, test labels (uint8 NHWC, int64); equal seeds give equal arrays."""
    bank = _shifted_bank(_class_templates(spec, _seeded(seed, 0)), spec)
    out = []
    for stream, n in ((1, spec.num_train), (2, spec.num_test)):
        g = _seeded(seed, stream)
        labels = (torch.arange(n) % spec.num_classes)[torch.randperm(n, generator=g)]  # balanced to within one
        out += [_sample(bank, labels, spec, g), labels.numpy().astype(np.int64)]
    return out[0], out[1], out[2], out[3]


def cached(seed: int, folder: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """generate(seed), kept in folder (when given) as plain arrays, so a series of runs (the GPU check's nine)
    generates it once. A file that is not exactly those arrays is ignored and written again."""
    if not folder:
        return generate(seed)
    path = Path(folder) / f"synthetic-{seed}-v{CACHE_VERSION}.npz"
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = tuple(f[k] for k in ("train_x", "train_y", "test_x", "test_y"))
        if all(a.dtype == b for a, b in zip(arrays, (np.uint8, np.int64, np.uint8, np.int64))):
            return arrays
    except (OSError, ValueError, KeyError):
        pass
    arrays = generate(seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **dict(zip(("train_x", "train_y", "test_x", "test_y"), arrays)))
        os.replace(tmp, path)  # whole or not at all: a run reading it meanwhile sees the old file or none
    except OSError:
        pass  # a cache that cannot be written costs time, not correctness
    return arrays
