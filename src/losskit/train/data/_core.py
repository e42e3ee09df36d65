"""What every data set shares: the :class:`Splits` result, the protocols and the file checks.

A loader turns its files into a :class:`Pool` (every sample, its class, the data set's own
train/test split if it has one, and a way to build datasets from indices); :func:`apply_protocol`
then picks the training and test samples for ``classification`` or ``retrieval`` and remaps the
labels to contiguous ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset

from losskit._checks import fail

__all__ = [
    "ArrayDataset",
    "BuildFn",
    "Pool",
    "Splits",
    "apply_protocol",
    "find_file",
    "require_dir",
    "stratified_split",
    "validation_mask",
]

Item = tuple[Tensor, int]
# (train indices, train labels, test indices, test labels)
#   -> (train dataset, test dataset, (input_mean, input_std) or None)
BuildFn = Callable[
    [np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    tuple["Dataset[Item]", "Dataset[Item]", "tuple[Tensor, Tensor] | None"],
]


@dataclass(frozen=True)
class Splits:
    """A data set ready for training: the two datasets, their labels and what the model needs.

    Attributes:
        train: items ``(x, y)``: ``x`` a float tensor of ``sample_shape``, ``y`` an ``int`` in
            ``[0, num_classes)``.
        test: items ``(x, y)``; ``y`` indexes ``test_class_names``.
        train_labels: ``(N_train,)`` long tensor, the ``y`` of every training item in order.
        test_labels: ``(N_test,)`` long tensor.
        num_classes: number of training classes (classifier head, proxies).
        class_names: names of the training classes, by label.
        test_class_names: names of the test classes (``== class_names`` for classification).
        sample_shape: shape of one ``x``: ``(L,)``, ``(C, L)`` or ``(C, H, W)``.
        protocol: ``"classification"`` or ``"retrieval"``.
        input_mean, input_std: for array data sets, the statistics that turn a raw sample (as
            stored in the files) into a model input, ``(raw - input_mean) / input_std``; they
            broadcast against ``sample_shape``. ``None`` for image files (ImageNet statistics are
            applied while loading).
        test_is_query: ``(N_test,)`` bool tensor marking query samples where the data set
            defines queries and a gallery (In-shop retrieval); ``None`` otherwise.
        val, val_labels, val_class_names: the validation part carved out of the training
            split (see :func:`validation_mask`), labelled like ``test`` (training labels for
            classification, its own ``0..`` range for retrieval); ``None`` / ``[]`` without one.
    """

    train: Dataset[Item]
    test: Dataset[Item]
    train_labels: Tensor
    test_labels: Tensor
    num_classes: int
    class_names: list[str]
    test_class_names: list[str]
    sample_shape: tuple[int, ...]
    protocol: str
    input_mean: Tensor | None = None
    input_std: Tensor | None = None
    test_is_query: Tensor | None = None
    val: Dataset[Item] | None = None
    val_labels: Tensor | None = None
    val_class_names: list[str] = field(default_factory=list)

    def normalize(self, raw: Tensor) -> Tensor:
        """Raw samples ``(B, *sample_shape)`` as stored in the files -> model inputs."""
        x = raw.float()
        if self.input_mean is None or self.input_std is None:
            return x
        return (x - self.input_mean) / self.input_std


class ArrayDataset(Dataset[Item]):
    """Samples held in memory as one float tensor ``(N, *sample_shape)`` with integer labels."""

    def __init__(self, x: Tensor, labels: Tensor) -> None:
        self.x = x
        self.labels = labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> Item:
        return self.x[index], int(self.labels[index])


@dataclass(frozen=True)
class Pool:
    """Every sample of a data set before a protocol splits it.

    Attributes:
        labels: ``(N,)`` class index of each sample in ``[0, K)``; classes in sorted order.
        class_names: the ``K`` class names in that order.
        sample_shape: shape of one model input.
        build: makes the train and test datasets from indices and remapped labels.
        is_test: the data set's own split (``True`` = test), ``None`` when it has one split.
        split_by_class: the own split already separates the classes (SOP, In-shop); retrieval
            uses it as it is, classification pools the samples and splits them per class.
        retrieval_uses_all: retrieval ignores the own split and takes all samples of each half
            of the classes (the metric-learning convention for CUB-200 and Cars-196).
        is_query: ``(N,)`` query marks of the test samples (In-shop), else ``None``.
    """

    labels: np.ndarray
    class_names: list[str]
    sample_shape: tuple[int, ...]
    build: BuildFn
    is_test: np.ndarray | None = None
    split_by_class: bool = False
    retrieval_uses_all: bool = False
    is_query: np.ndarray | None = None


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """A per-class random split; returns the ``(N,)`` bool mask of the test samples.

    Each class with ``n >= 2`` samples sends ``round(n * test_fraction)`` of them (at least one,
    at most ``n - 1``) to the test part; a class with one sample stays in training. Unlike
    ``sklearn.model_selection.train_test_split(stratify=...)`` this never fails on small classes,
    and every test class is a training class.
    """
    rng = np.random.default_rng(seed)
    is_test = np.zeros(labels.shape[0], dtype=bool)
    order = np.argsort(labels, kind="stable")
    _, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    for start, n in zip(starts, counts):
        if n < 2:
            continue
        n_test = min(max(round(n * test_fraction), 1), n - 1)
        members = order[start : start + n]
        is_test[rng.permutation(members)[:n_test]] = True
    return is_test


def validation_mask(
    labels: np.ndarray, train_mask: np.ndarray, protocol: str, fraction: float, seed: int
) -> np.ndarray:
    """The ``(N,)`` bool mask of the validation samples, carved out of ``train_mask``, seeded.

    ``classification``: per class, as :func:`stratified_split` (every validation class keeps
    training samples). ``retrieval``: all training samples of ``round(K·fraction)`` randomly
    chosen training classes (at least 2, so Recall@K means something; at least 2 classes must
    remain for training).
    """
    val = np.zeros(labels.shape[0], dtype=bool)
    if fraction == 0:
        return val
    rng_seed = int(np.random.SeedSequence([seed, 0x7A1]).generate_state(1)[0])
    idx = np.flatnonzero(train_mask)
    if protocol == "classification":
        val[idx[stratified_split(labels[idx], fraction, rng_seed)]] = True
        return val
    classes = np.unique(labels[idx])
    n_val = max(2, round(classes.size * fraction))
    if classes.size - n_val < 2:
        fail(
            "load_splits",
            "val_fraction",
            "to leave at least 2 training classes beside at least 2 validation classes for "
            "retrieval (or 0: no validation split)",
            f"{fraction} of {classes.size} training classes",
        )
    chosen = np.random.default_rng(rng_seed).permutation(classes)[:n_val]
    val[idx[np.isin(labels[idx], chosen)]] = True
    return val


def _remap(labels: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels of ``keep``'s samples renumbered 0.. in sorted order, and the classes kept."""
    classes, new = np.unique(labels[keep], return_inverse=True)
    return new.astype(np.int64), classes


def _protocol_masks(
    name: str, pool: Pool, protocol: str, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``(N,)`` bool masks of the training and test samples under ``protocol``."""
    labels, own_split = pool.labels, pool.is_test
    if protocol == "classification":
        if own_split is None or pool.split_by_class:
            own_split = stratified_split(labels, test_fraction, seed)
        return ~own_split, own_split
    n_classes = len(pool.class_names)
    if n_classes < 2:
        fail(name, "data", "at least 2 classes for the retrieval protocol", f"{n_classes}")
    if own_split is not None and pool.split_by_class:
        return ~own_split, own_split
    first_half = labels < (n_classes + 1) // 2
    if own_split is None or pool.retrieval_uses_all:
        return first_half, ~first_half
    return first_half & ~own_split, ~first_half & own_split


def _held_out_labels(
    name: str, pool: Pool, protocol: str, mask: np.ndarray, train_classes: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Labels and class names of a held-out part (test or validation) of the pool."""
    labels = pool.labels
    if protocol == "retrieval":
        held_y, held_classes = _remap(labels, mask)
        return held_y, [pool.class_names[c] for c in held_classes]
    held_idx = np.flatnonzero(mask)
    position = np.full(len(pool.class_names), -1, dtype=np.int64)
    position[train_classes] = np.arange(train_classes.size)
    held_y = position[labels[held_idx]]
    unseen = sorted({pool.class_names[c] for c in labels[held_idx][held_y < 0]})
    if unseen:
        shown = ", ".join(repr(c) for c in unseen[:5]) + (" ..." if len(unseen) > 5 else "")
        fail(
            name,
            "test classes",
            "to appear in the training split for the classification protocol",
            f"{len(unseen)} test-only class(es): {shown}",
        )
    return held_y, [pool.class_names[c] for c in train_classes]


def apply_protocol(
    name: str,
    pool: Pool,
    protocol: str,
    *,
    test_fraction: float,
    seed: int,
    val_fraction: float = 0.0,
) -> Splits:
    """Pick training, validation and test samples by ``protocol`` and build the
    :class:`Splits`."""
    labels = pool.labels
    train_mask, test_mask = _protocol_masks(name, pool, protocol, test_fraction, seed)
    val_mask = validation_mask(labels, train_mask, protocol, val_fraction, seed)
    train_mask = train_mask & ~val_mask
    train_idx, test_idx = np.flatnonzero(train_mask), np.flatnonzero(test_mask)
    val_idx = np.flatnonzero(val_mask)
    for part, idx in (("training", train_idx), ("test", test_idx)):
        if idx.size == 0:
            fail(name, "data", f"some {part} samples for the {protocol} protocol", "none")
    train_y, train_classes = _remap(labels, train_mask)
    names = [pool.class_names[c] for c in train_classes]
    test_y, test_names = _held_out_labels(name, pool, protocol, test_mask, train_classes)
    val_y, val_names = _held_out_labels(name, pool, protocol, val_mask, train_classes)
    # One build over validation + test: both are standardised with the training statistics.
    train, held, stats = pool.build(
        train_idx, train_y, np.concatenate([val_idx, test_idx]), np.concatenate([val_y, test_y])
    )
    n_val = val_idx.size
    is_query = None
    if pool.is_query is not None and protocol == "retrieval":
        is_query = torch.from_numpy(pool.is_query[test_idx])
    return Splits(
        train=train,
        test=Subset(held, range(n_val, n_val + test_idx.size)) if n_val else held,
        train_labels=torch.from_numpy(train_y),
        test_labels=torch.from_numpy(test_y),
        num_classes=len(names),
        class_names=names,
        test_class_names=test_names,
        sample_shape=pool.sample_shape,
        protocol=protocol,
        input_mean=None if stats is None else stats[0],
        input_std=None if stats is None else stats[1],
        test_is_query=is_query,
        val=Subset(held, range(n_val)) if n_val else None,
        val_labels=torch.from_numpy(val_y) if n_val else None,
        val_class_names=val_names if n_val else [],
    )


def require_dir(name: str, data_dir: str | Path | None, expected: str) -> Path:
    """``data_dir`` as an existing folder, else an error saying what it should hold."""
    if data_dir is None:
        fail(name, "data_dir", f"to be a folder holding {expected}", "None")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        fail(
            name,
            "data_dir",
            f"to be a folder holding {expected}",
            f"no such folder {root}",
            kind=FileNotFoundError,
        )
    return root


def find_file(name: str, root: Path, filename: str, subdirs: Sequence[str] = ()) -> Path:
    """``root/<subdir>/filename`` for the first of ``("", *subdirs)`` that has it."""
    for sub in ("", *subdirs):
        path = root / sub / filename
        if path.is_file():
            return path
    where = ", ".join(str(root / s) for s in subdirs)
    also = f" (nor in {where})" if subdirs else ""
    fail(
        name,
        "data_dir",
        f"to contain {filename}",
        f"no such file in {root}{also}",
        kind=FileNotFoundError,
    )
