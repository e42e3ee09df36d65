"""Data sets for the trainer: :func:`load_splits` turns a data set name into :class:`Splits`.

Layouts (``data_dir`` holds them):

- ``digits`` — scikit-learn's bundled 8x8 digits (no files), vectors ``(64,)``; one split.
- ``npy`` — ``train_data.npy train_labels.npy test_data.npy test_labels.npy``; data ``(N, L)``,
  ``(N, C, L)`` or ``(N, C, H, W)``, labels ``(N,)`` integers or strings.
- ``idx`` — MNIST-format ``train-images-idx3-ubyte train-labels-idx1-ubyte
  t10k-images-idx3-ubyte t10k-labels-idx1-ubyte`` (each optionally ``.gz``; a prefix such as
  ``emnist-letters-`` and ``test`` for ``t10k`` are accepted); images ``(1, H, W)``.
- ``imagefolder`` — ``train/<class>/*`` and ``test/<class>/*``, or ``<class>/*`` (one split).
- ``cub200`` — ``CUB_200_2011/`` (``images.txt image_class_labels.txt classes.txt
  train_test_split.txt images/``).
- ``cars196`` — ``cars_annos.mat`` and ``car_ims/`` (the archive metric-learning code uses).
- ``sop`` — ``Stanford_Online_Products/`` (``Ebay_train.txt Ebay_test.txt`` and the images).
- ``inshop`` — ``list_eval_partition.txt`` (or ``Eval/...``) and ``img/`` (or ``Img/img/``).

Protocols: ``classification`` trains and tests on the same classes (the data set's own split,
or a per-class split with ``test_fraction`` and ``seed`` where it has one split or its split
separates classes); ``retrieval`` trains on the first half of the sorted classes and tests on
the unseen rest (the training split's samples of the first half and the test split's samples of
the second; all samples of each half for one-split data sets and, by the metric-learning
convention, for CUB-200 and Cars-196; SOP and In-shop use their own class-disjoint split).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from losskit._checks import check_choice, check_int, check_number
from losskit.train.data._core import Pool, Splits, apply_protocol
from losskit.train.data.arrays import digits_pool, idx_pool, npy_pool
from losskit.train.data.images import (
    cars196_pool,
    cub200_pool,
    imagefolder_pool,
    inshop_pool,
    load_image,
    sop_pool,
)

__all__ = ["DATASETS", "PROTOCOLS", "Splits", "default_protocol", "load_image", "load_splits"]

DATASETS = ("digits", "npy", "idx", "imagefolder", "cub200", "cars196", "sop", "inshop")
PROTOCOLS = ("classification", "retrieval")
_RETRIEVAL_DATASETS = ("cub200", "cars196", "sop", "inshop")


def default_protocol(dataset: str) -> str:
    """``"retrieval"`` for the metric-learning benchmarks (cub200, cars196, sop, inshop),
    ``"classification"`` otherwise.

    Raises:
        ValueError: ``dataset`` is not one of :data:`DATASETS` (the closest is suggested).
    """
    check_choice("default_protocol", "dataset", dataset, DATASETS)
    return "retrieval" if dataset in _RETRIEVAL_DATASETS else "classification"


def load_splits(
    dataset: str,
    *,
    data_dir: str | Path | None = None,
    protocol: str | None = None,
    image_size: int = 224,
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    standardize: bool = True,
) -> Splits:
    """Load ``dataset`` and split it into training and test sets by ``protocol``.

    Args:
        dataset: one of :data:`DATASETS`.
        data_dir: the folder holding the files (not used by ``digits``).
        protocol: ``"classification"`` or ``"retrieval"``; ``None`` -> :func:`default_protocol`.
        image_size: side of the square image inputs (image-file data sets).
        seed: seed of the per-class split of one-split data sets.
        test_fraction: fraction of each class held out by that split, in ``(0, 1)``.
        val_fraction: validation part carved out of the training split, in ``[0, 1)``:
            per class for classification, a share of the training classes for retrieval
            (:func:`~losskit.train.data._core.validation_mask`); seeded by ``seed``.
        standardize: standardise array data with training statistics (see
            :mod:`losskit.train.data.arrays`); ignored for image files.

    Returns:
        :class:`Splits` with contiguous labels: ``0..num_classes-1`` for training, and for
        retrieval ``0..len(test_class_names)-1`` for the test set.

    Raises:
        ValueError: unknown ``dataset``/``protocol`` (the closest is suggested), bad arguments,
            malformed files (the message names the file and what was expected).
        FileNotFoundError: ``data_dir`` or a file it should hold is missing.

    Example:
        >>> splits = load_splits("digits")
        >>> splits.sample_shape, splits.num_classes, splits.protocol
        ((64,), 10, 'classification')
        >>> x, y = splits.train[0]
        >>> tuple(x.shape), type(y).__name__
        ((64,), 'int')
    """
    check_choice("load_splits", "dataset", dataset, DATASETS)
    protocol = default_protocol(dataset) if protocol is None else protocol
    check_choice("load_splits", "protocol", protocol, PROTOCOLS)
    check_int("load_splits", "image_size", image_size, low=1)
    check_int("load_splits", "seed", seed, low=0)
    check_number(
        "load_splits", "test_fraction", test_fraction, low=0, high=1, low_open=True, high_open=True
    )
    check_number("load_splits", "val_fraction", val_fraction, low=0, high=1, high_open=True)
    loaders: dict[str, Callable[[], Pool]] = {
        "digits": lambda: digits_pool(standardize),
        "npy": lambda: npy_pool(data_dir, standardize),
        "idx": lambda: idx_pool(data_dir, standardize),
        "imagefolder": lambda: imagefolder_pool(data_dir, image_size),
        "cub200": lambda: cub200_pool(data_dir, image_size),
        "cars196": lambda: cars196_pool(data_dir, image_size),
        "sop": lambda: sop_pool(data_dir, image_size),
        "inshop": lambda: inshop_pool(data_dir, image_size),
    }
    pool = loaders[dataset]()
    return apply_protocol(
        dataset, pool, protocol, test_fraction=test_fraction, seed=seed, val_fraction=val_fraction
    )
