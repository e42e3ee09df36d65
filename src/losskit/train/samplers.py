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


def _check_replicas(fn: str, num_replicas: int, rank: int) -> None:
    """``num_replicas >= 1`` processes, ``rank`` one of them."""
    check_int(fn, "num_replicas", num_replicas, low=1)
    check_int(fn, "rank", rank, low=0)
    if rank >= num_replicas:
        fail(fn, "rank", f"in [0, {num_replicas - 1}] (num_replicas={num_replicas})", rank)


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
    """A sampler whose order depends only on ``seed`` and the epoch set by :meth:`set_epoch`.

    The whole epoch is drawn as ``blocks * num_replicas`` blocks of ``block`` indices (a block is
    one index or one batch) identically on every process; replica ``rank`` takes every
    ``num_replicas``-th block, so the processes of a distributed run see disjoint draws.
    """

    def __init__(
        self,
        fn: str,
        labels: Tensor,
        *,
        seed: int,
        block: int,
        blocks: int,
        num_replicas: int,
        rank: int,
    ) -> None:
        check_int(fn, "seed", seed, low=0)
        self.labels = labels
        self.seed = seed
        self.epoch = 0
        self.block = block
        self.blocks = blocks
        self.num_replicas = num_replicas
        self.rank = rank

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` on the next iteration."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.blocks * self.block

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = self._draw(generator, self.blocks * self.num_replicas)
        mine = drawn.view(-1, self.block)[self.rank :: self.num_replicas]
        return iter(mine.reshape(-1).tolist())

    def _draw(self, generator: torch.Generator, blocks: int) -> Tensor:
        """``blocks * block`` indices of the whole epoch."""
        raise NotImplementedError


class ClassBalancedSampler(_SeededSampler):
    """Draws ``N`` indices with replacement so that every class is equally likely.

    Sample ``i`` of class ``c`` has probability ``1 / (K · n_c)`` (``K`` classes present), so a
    batch holds each class ``B / K`` times on average whatever the imbalance. With
    ``num_replicas > 1`` each process draws ``ceil(N / num_replicas)``.

    Args:
        labels (Tensor[N]): class index of each sample.
        seed: base seed of the order.
        num_replicas, rank: the number of processes of a distributed run, and this one's rank.
    """

    def __init__(
        self, labels: Tensor, *, seed: int = 0, num_replicas: int = 1, rank: int = 0
    ) -> None:
        fn = "ClassBalancedSampler"
        labels = _check_labels(fn, labels)
        _check_replicas(fn, num_replicas, rank)
        blocks = -(-labels.numel() // num_replicas)  # ceil(N / num_replicas)
        super().__init__(
            fn, labels, seed=seed, block=1, blocks=blocks, num_replicas=num_replicas, rank=rank
        )
        counts = torch.bincount(self.labels).double()
        self.weights = 1.0 / counts[self.labels]

    def _draw(self, generator: torch.Generator, blocks: int) -> Tensor:
        return torch.multinomial(self.weights, blocks, True, generator=generator)


class MPerClassSampler(_SeededSampler):
    """Orders indices so that each run of ``batch_size`` consecutive ones (one batch) holds
    ``batch_size / m`` distinct classes with ``m`` samples each.

    Classes are drawn uniformly without replacement for each batch; a class's ``m`` samples are
    drawn without replacement, or with replacement when it has fewer than ``m``. An epoch has
    ``max(1, N // (batch_size · num_replicas))`` batches per process (``len`` is a multiple of
    ``batch_size``).

    Args:
        labels (Tensor[N]): class index of each sample.
        batch_size: the DataLoader's batch size (per process), a multiple of ``m``.
        m: samples per class in a batch.
        seed: base seed of the order.
        num_replicas, rank: the number of processes of a distributed run, and this one's rank.

    Raises:
        ValueError: ``batch_size`` not a multiple of ``m``, or fewer classes than
            ``batch_size / m``.
    """

    def __init__(
        self,
        labels: Tensor,
        *,
        batch_size: int,
        m: int = 4,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        fn = "MPerClassSampler"
        labels = _check_labels(fn, labels)
        check_int(fn, "m", m, low=1)
        check_int(fn, "batch_size", batch_size, low=m)
        _check_replicas(fn, num_replicas, rank)
        if batch_size % m:
            fail(fn, "batch_size", f"a multiple of m={m}", f"{batch_size}")
        order = torch.argsort(labels, stable=True)
        classes, counts = torch.unique_consecutive(labels[order], return_counts=True)
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
        blocks = max(1, labels.numel() // (batch_size * num_replicas))
        super().__init__(
            fn,
            labels,
            seed=seed,
            block=batch_size,
            blocks=blocks,
            num_replicas=num_replicas,
            rank=rank,
        )

    def _draw(self, generator: torch.Generator, blocks: int) -> Tensor:
        m, chosen = self.m, []
        for _ in range(blocks):
            classes = torch.randperm(len(self.members), generator=generator)
            for c in classes[: self.classes_per_batch].tolist():
                members = self.members[c]
                n = members.numel()
                if n >= m:
                    pick = torch.randperm(n, generator=generator)[:m]
                else:
                    pick = torch.randint(n, (m,), generator=generator)
                chosen.append(members[pick])
        return torch.cat(chosen)


def make_sampler(
    kind: str,
    labels: Tensor,
    *,
    batch_size: int,
    m_per_class: int = 4,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
) -> Sampler[int] | None:
    """The training sampler by name: ``"random"`` -> ``None`` (shuffle in the DataLoader),
    ``"balanced"`` -> :class:`ClassBalancedSampler`, ``"m_per_class"`` ->
    :class:`MPerClassSampler` (use the same ``batch_size`` in the DataLoader). In a
    distributed run pass ``num_replicas`` (the world size) and ``rank``; for ``"random"``
    (``None``) use torch's ``DistributedSampler`` there.

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
        return ClassBalancedSampler(labels, seed=seed, num_replicas=num_replicas, rank=rank)
    if kind == "m_per_class":
        return MPerClassSampler(
            labels,
            batch_size=batch_size,
            m=m_per_class,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
        )
    return None
