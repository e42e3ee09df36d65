"""Samplers for imbalanced data and metric learning, and :func:`make_sampler` to pick one.

Both samplers are index samplers (pass them as ``DataLoader(..., sampler=s,
batch_size=batch_size)``) and draw from a generator seeded with ``seed + epoch``: call
``set_epoch(epoch)`` before each epoch (as with ``DistributedSampler``) for a fresh, reproducible
order that a resumed run repeats exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Sampler

from losskit._checks import check_choice, check_int, check_labels, check_ndim, fail

__all__ = [
    "SAMPLERS",
    "ClassBalancedSampler",
    "MPerClassSampler",
    "class_counts",
    "make_sampler",
]

SAMPLERS = ("random", "balanced", "m_per_class")


def class_counts(labels: Tensor, num_classes: int | None = None) -> Tensor:
    """Samples per class: ``(num_classes,)`` long tensor (``num_classes`` defaults to max + 1).

    Example:
        >>> class_counts(torch.tensor([0, 2, 2]), 4).tolist()
        [1, 0, 2, 0]
    """
    labels = _check_labels("class_counts", labels)
    if num_classes is not None:
        check_int("class_counts", "num_classes", num_classes, low=1)
        check_labels("class_counts", "labels", labels, num_classes)
    return torch.bincount(labels, minlength=num_classes or 0)


def _check_labels(fn: str, labels: object) -> Tensor:
    """1-D, non-empty, non-negative integer labels, on the CPU."""
    t = check_labels(fn, "labels", labels)
    check_ndim(fn, "labels", t, 1, "(N,)")
    if t.numel() == 0:
        fail(fn, "labels", "at least one label", "none")
    if int(t.min()) < 0:
        fail(fn, "labels", "non-negative class indices", f"a label {int(t.min())}")
    return t.detach().cpu().long()


class _SeededSampler(Sampler[int]):
    """A sampler whose order depends only on ``seed`` and the epoch set by :meth:`set_epoch`."""

    def __init__(self, labels: Tensor, seed: int) -> None:
        self.labels = labels
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` on the next iteration."""
        self.epoch = epoch

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + self.epoch)


class ClassBalancedSampler(_SeededSampler):
    """Draws ``N`` indices with replacement so that every class is equally likely.

    Sample ``i`` of class ``c`` has probability ``1 / (K · n_c)`` (``K`` classes present), so a
    batch holds each class ``B / K`` times on average whatever the imbalance.

    Args:
        labels (Tensor[N]): class index of each sample.
        seed: base seed of the order.
    """

    def __init__(self, labels: Tensor, *, seed: int = 0) -> None:
        super().__init__(_check_labels("ClassBalancedSampler", labels), seed)
        counts = torch.bincount(self.labels).double()
        self.weights = 1.0 / counts[self.labels]

    def __len__(self) -> int:
        return int(self.labels.numel())

    def __iter__(self) -> Iterator[int]:
        order = torch.multinomial(self.weights, len(self), True, generator=self._generator())
        return iter(order.tolist())


class MPerClassSampler(_SeededSampler):
    """Orders indices so that each run of ``batch_size`` consecutive ones (one batch) holds
    ``batch_size / m`` distinct classes with ``m`` samples each.

    Classes are drawn uniformly without replacement for each batch; a class's ``m`` samples are
    drawn without replacement, or with replacement when it has fewer than ``m``. An epoch has
    ``max(1, N // batch_size)`` batches (``len`` is a multiple of ``batch_size``).

    Args:
        labels (Tensor[N]): class index of each sample.
        batch_size: the DataLoader's batch size, a multiple of ``m``.
        m: samples per class in a batch.
        seed: base seed of the order.

    Raises:
        ValueError: ``batch_size`` not a multiple of ``m``, or fewer classes than
            ``batch_size / m``.
    """

    def __init__(self, labels: Tensor, *, batch_size: int, m: int = 4, seed: int = 0) -> None:
        fn = "MPerClassSampler"
        super().__init__(_check_labels(fn, labels), seed)
        check_int(fn, "m", m, low=1)
        check_int(fn, "batch_size", batch_size, low=m)
        if batch_size % m:
            fail(fn, "batch_size", f"a multiple of m={m}", f"{batch_size}")
        order = torch.argsort(self.labels, stable=True)
        classes, counts = torch.unique_consecutive(self.labels[order], return_counts=True)
        self.members = list(torch.split(order, counts.tolist()))
        self.classes_per_batch = batch_size // m
        if self.classes_per_batch > classes.numel():
            fail(
                fn,
                "labels",
                f"at least batch_size / m = {self.classes_per_batch} classes",
                f"{classes.numel()}",
            )
        self.batch_size = batch_size
        self.m = m
        self.num_batches = max(1, self.labels.numel() // batch_size)

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def __iter__(self) -> Iterator[int]:
        g = self._generator()
        m, chosen = self.m, []
        for _ in range(self.num_batches):
            for c in torch.randperm(len(self.members), generator=g)[: self.classes_per_batch]:
                members = self.members[int(c)]
                n = members.numel()
                if n >= m:
                    pick = torch.randperm(n, generator=g)[:m]
                else:
                    pick = torch.randint(n, (m,), generator=g)
                chosen.append(members[pick])
        return iter(torch.cat(chosen).tolist())


def make_sampler(
    kind: str, labels: Tensor, *, batch_size: int, m_per_class: int = 4, seed: int = 0
) -> Sampler[int] | None:
    """The training sampler by name: ``"random"`` -> ``None`` (shuffle in the DataLoader),
    ``"balanced"`` -> :class:`ClassBalancedSampler`, ``"m_per_class"`` ->
    :class:`MPerClassSampler` (use the same ``batch_size`` in the DataLoader).

    Raises:
        ValueError: unknown ``kind`` (the closest is suggested) or a sampler's own errors.

    Example:
        >>> labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
        >>> sampler = make_sampler("m_per_class", labels, batch_size=4, m_per_class=2)
        >>> len(sampler)
        8
    """
    check_choice("make_sampler", "kind", kind, SAMPLERS)
    if kind == "balanced":
        return ClassBalancedSampler(labels, seed=seed)
    if kind == "m_per_class":
        return MPerClassSampler(labels, batch_size=batch_size, m=m_per_class, seed=seed)
    return None
