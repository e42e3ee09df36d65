"""Training augmentation (``augment: true``) with torch ops, reproducible for any worker count.

- images ``(C, H, W)``: a random resized crop (8-100 % of the area, aspect ratio in [3/4, 4/3],
  the usual metric-learning recipe) resized back to ``H x W`` (bilinear), then a horizontal flip
  with probability 1/2;
- signals ``(C, L)``: a random circular shift by up to 10 % of ``L`` and an amplitude scaling
  by a factor in [0.8, 1.2].

Each draw comes from a generator seeded per sample by :class:`SeededSampler` (from the run's
seed, the epoch and the position in the epoch), never from a worker's or the global RNG: the
same run gives the same batches with ``num_workers`` 0 or 8, persistent workers or not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from losskit._checks import fail

__all__ = ["SeededSampler", "TrainingView", "augmentation", "flip_crop", "shift_scale"]

Augment = Callable[[Tensor, torch.Generator], Tensor]
MAX_SHIFT = 0.1
SCALE_RANGE = (0.8, 1.2)


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def flip_crop(x: Tensor, g: torch.Generator) -> Tensor:
    """Random resized crop and horizontal flip of one image ``(C, H, W)``."""
    _, h, w = x.shape
    ch, cw = h, w
    for _ in range(10):
        area = h * w * _uniform(g, 0.08, 1.0)
        ratio = math.exp(_uniform(g, math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            break
    else:
        ch, cw = h, w
    top = int(torch.randint(0, h - ch + 1, (), generator=g))
    left = int(torch.randint(0, w - cw + 1, (), generator=g))
    crop = x[None, :, top : top + ch, left : left + cw]
    out = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)[0]
    return out.flip(-1) if float(torch.rand((), generator=g)) < 0.5 else out


def shift_scale(x: Tensor, g: torch.Generator) -> Tensor:
    """Random circular shift (up to 10 % of the length) and amplitude scaling of ``(C, L)``."""
    reach = int(MAX_SHIFT * x.shape[-1])
    shift = int(torch.randint(-reach, reach + 1, (), generator=g))
    return torch.roll(x, shift, dims=-1) * _uniform(g, *SCALE_RANGE)


def augmentation(sample_shape: tuple[int, ...]) -> Augment:
    """The augmentation for samples of ``sample_shape``.

    Raises:
        ValueError: vectors ``(L,)`` have no augmentation.
    """
    by_rank: dict[int, Augment] = {3: flip_crop, 2: shift_scale}
    if len(sample_shape) not in by_rank:
        fail("train", "augment", "image (C, H, W) or signal (C, L) samples", sample_shape)
    return by_rank[len(sample_shape)]


class TrainingView(Dataset[tuple[Tensor, int]]):
    """The training dataset read by ``(index, seed)`` keys from :class:`SeededSampler`."""

    def __init__(self, dataset: Dataset[tuple[Tensor, int]], augment: Augment | None) -> None:
        self.dataset = dataset
        self.augment = augment

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, int]:
        index, seed = key
        x, y = self.dataset[index]
        if self.augment is None:
            return x, y
        return self.augment(x, torch.Generator().manual_seed(seed)), y


class SeededSampler(Sampler[tuple[int, int]]):
    """Wraps a sampler of indices; yields ``(index, seed)`` with a seed per position.

    ``set_epoch(e)`` reseeds the wrapped sampler's order (its ``generator`` or its own
    ``set_epoch``) and the per-sample seeds from ``epoch_seed``; nothing draws from the global RNG.
    """

    def __init__(self, sampler: Sampler[int], epoch_seed: Callable[[int], int]) -> None:
        self.sampler = sampler
        self.epoch_seed = epoch_seed
        self.seed = epoch_seed(0)

    def set_epoch(self, epoch: int) -> None:
        self.seed = self.epoch_seed(epoch)
        generator: Any = getattr(self.sampler, "generator", None)
        if isinstance(generator, torch.Generator):
            generator.manual_seed(self.seed)
        elif hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for position, index in enumerate(self.sampler):
            yield int(index), (self.seed + position) % 2**63
