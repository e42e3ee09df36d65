"""In-memory data sets: scikit-learn's digits, ``.npy`` folders and MNIST-format idx files.

Samples are held as one float32 tensor per split. With ``standardize=True`` (the default) they are
standardised with the training part's statistics: per feature for vectors ``(N, L)``, per channel
for signals ``(N, C, L)`` and images ``(N, C, H, W)`` (a constant feature or channel keeps its
scale). Without it, ``uint8`` data (idx files, ``.npy`` images) is divided by 255 and the digits
by 16, other data is used as stored.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from losskit._checks import fail, shape_str
from losskit.train.data._core import ArrayDataset, Pool, find_file, require_dir

__all__ = [
    "check_float32_range",
    "check_samples",
    "digits_pool",
    "idx_pool",
    "npy_pool",
    "read_idx",
    "read_npy",
]

_NPY_FILES = ("train_data.npy", "train_labels.npy", "test_data.npy", "test_labels.npy")
_SHAPES = "(N, L), (N, C, L) or (N, C, H, W)"
# idx type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"), big-endian data.
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# Elements per chunk when summing squared deviations (bounds the float64 scratch memory).
_CHUNK = 1 << 22


def _statistics(x: np.ndarray, unit: float, standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (float32) of the raw training samples, shaped to broadcast against one."""
    sample_rank = x.ndim - 1
    if not standardize:
        shape = (1,) * sample_rank
        return np.zeros(shape, np.float32), np.full(shape, unit, np.float32)
    # Per feature for vectors, per channel (over samples and positions) otherwise.
    axes = (0,) if sample_rank == 1 else (0, *range(2, x.ndim))
    mean = x.mean(axis=axes, dtype=np.float64, keepdims=True)
    rows = max(1, _CHUNK // max(1, x[0].size))
    squares = sum(
        np.square(x[i : i + rows] - mean).sum(axis=axes, keepdims=True)
        for i in range(0, x.shape[0], rows)
    )
    std = np.sqrt(squares / (x.size // mean.size))
    std = np.where(std < 1e-6 * unit, unit, std)
    return mean[0].astype(np.float32), std[0].astype(np.float32)


def _standardized(raw: np.ndarray, mean: np.ndarray, std: np.ndarray) -> Tensor:
    """``(raw - mean) / std`` as a float32 tensor, without float64 copies."""
    out = raw.astype(np.float32)
    out -= mean
    out /= std
    return torch.from_numpy(out)


def array_pool(
    x: np.ndarray,
    raw_labels: np.ndarray,
    is_test: np.ndarray | None,
    *,
    unit: float,
    standardize: bool,
) -> Pool:
    """A :class:`Pool` over samples ``x (N, *sample_shape)`` with any sortable labels."""
    classes, labels = np.unique(raw_labels, return_inverse=True)

    def build(
        train_idx: np.ndarray, train_y: np.ndarray, test_idx: np.ndarray, test_y: np.ndarray
    ) -> tuple[ArrayDataset, ArrayDataset, tuple[Tensor, Tensor]]:
        train_x = x[train_idx]
        mean, std = _statistics(train_x, unit, standardize)
        return (
            ArrayDataset(_standardized(train_x, mean, std), torch.from_numpy(train_y)),
            ArrayDataset(_standardized(x[test_idx], mean, std), torch.from_numpy(test_y)),
            (torch.from_numpy(mean), torch.from_numpy(std)),
        )

    return Pool(
        labels=labels.reshape(-1).astype(np.int64),
        class_names=[str(c) for c in classes],
        sample_shape=tuple(int(d) for d in x.shape[1:]),
        build=build,
        is_test=is_test,
    )


def _two_splits(
    name: str, files: tuple[str, str, str, str], arrays: list[np.ndarray], standardize: bool
) -> Pool:
    """Check the four arrays (train data/labels, test data/labels) and pool them."""
    train_x, train_y, test_x, test_y = arrays
    for fname, x in ((files[0], train_x), (files[2], test_x)):
        check_samples(name, fname, x)
        if x.ndim not in (2, 3, 4) or x.shape[0] == 0:
            fail(name, fname, f"of shape {_SHAPES} with N >= 1", f"shape {shape_str(x.shape)}")
    if test_x.shape[1:] != train_x.shape[1:]:
        fail(
            name,
            files[2],
            f"samples of the shape of {files[0]}'s {shape_str(train_x.shape[1:])}",
            shape_str(test_x.shape[1:]),
        )
    for fname, y, x, xname in (
        (files[1], train_y, train_x, files[0]),
        (files[3], test_y, test_x, files[2]),
    ):
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            fail(
                name,
                fname,
                f"of shape (N,) with N={x.shape[0]} matching {xname}",
                f"shape {shape_str(y.shape)}",
            )
        if y.dtype.kind not in "iuUS":
            fail(name, fname, "to hold integer or string class labels", f"dtype {y.dtype}")
    if (train_y.dtype.kind in "US") != (test_y.dtype.kind in "US"):
        fail(
            name,
            files[3],
            f"labels of the same kind as {files[1]}'s ({train_y.dtype})",
            f"{test_y.dtype}",
        )
    is_test = np.repeat([False, True], [train_x.shape[0], test_x.shape[0]])
    unit = 255.0 if train_x.dtype == np.uint8 else 1.0
    return array_pool(
        np.concatenate([train_x, test_x]),
        np.concatenate([train_y, test_y]),
        is_test,
        unit=unit,
        standardize=standardize,
    )


def digits_pool(standardize: bool = True) -> Pool:
    """scikit-learn's bundled 8x8 handwritten digits as vectors ``(64,)``, one split."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return array_pool(x.astype(np.float32), y, None, unit=16.0, standardize=standardize)


def read_npy(fn: str, arg: str, path: Path) -> np.ndarray:
    """The array in the ``.npy`` file ``path``, read without pickle; errors name ``arg``."""
    if not path.is_file():
        fail(fn, arg, "to be a .npy file", f"no file at {path}", kind=FileNotFoundError)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as err:
        if "pickle" in str(err):  # numpy's text here would suggest unpickling: never
            found = f"an object array, pickled data or another format: {path}"
        else:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            found = f"unreadable: {path} ({first})"
        fail(fn, arg, "to be a NumPy .npy array of numbers (read without pickle)", found)
    if not isinstance(array, np.ndarray):
        array.close()
        fail(fn, arg, "to be a NumPy .npy array", f"a {type(array).__name__} ({path})")
    return array


def check_samples(fn: str, arg: str, x: np.ndarray) -> np.ndarray:
    """``x`` holds numbers that are finite and fit float32 (what the model computes in)."""
    if x.dtype.kind not in "uif":
        fail(fn, arg, "to hold numbers (integer or float)", f"dtype {x.dtype}")
    if x.dtype.kind == "f":
        finite = np.isfinite(x)
        if not finite.all():
            fail(fn, arg, "finite values", f"{int((~finite).sum())} NaN or inf")
    return check_float32_range(fn, arg, x)


def check_float32_range(fn: str, arg: str, x: np.ndarray) -> np.ndarray:
    """The finite values of a float64 ``x`` fit float32 (else they would become inf)."""
    if x.dtype.kind != "f" or x.itemsize <= 4:
        return x
    big = np.isfinite(x) & (np.abs(x) > np.finfo(np.float32).max)
    if big.any():
        fail(
            fn,
            arg,
            f"values within the float32 range (|x| <= {np.finfo(np.float32).max:.4g})",
            f"{int(big.sum())} beyond it, up to {float(np.abs(x[big]).max()):.4g}",
        )
    return x


def npy_pool(data_dir: str | Path | None, standardize: bool = True) -> Pool:
    """A folder with ``train_data.npy train_labels.npy test_data.npy test_labels.npy``."""
    root = require_dir("npy", data_dir, ", ".join(_NPY_FILES))
    arrays = [read_npy("npy", fname, find_file("npy", root, fname)) for fname in _NPY_FILES]
    return _two_splits("npy", _NPY_FILES, arrays, standardize)


def read_idx(path: Path, rank: int, name: str = "idx") -> np.ndarray:
    """Read an idx file (optionally gzip-compressed) whose array has ``rank`` dimensions.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the rank, one big-endian uint32 per dimension, then the data.
    """
    gz = path.suffix == ".gz"
    try:
        data = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        fail(name, path.name, f"to be a readable {'gzip ' if gz else ''}file", f"{err} ({path})")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        fail(
            name,
            path.name,
            "to start with an idx magic number (0x00 0x00, a type code, the rank)",
            f"bytes {data[:4].hex(' ') or 'none'} ({path})",
        )
    if data[3] != rank:
        fail(name, path.name, f"to hold a {rank}-D array", f"{data[3]}-D ({path})")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    header = 4 + 4 * rank
    if len(data) < header:
        fail(name, path.name, f"a {header}-byte idx header", f"{len(data)} bytes ({path})")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", rank, 4))
    count = int(np.prod(dims))
    if len(data) != header + count * dtype.itemsize:
        fail(
            name,
            path.name,
            f"{header + count * dtype.itemsize} bytes for an idx array of shape {shape_str(dims)}",
            f"{len(data)} bytes ({path})",
        )
    return np.frombuffer(data, dtype, count, header).reshape(dims)


def _idx_file(root: Path, splits: tuple[str, ...], kind: str, rank: int) -> Path:
    """The one ``*<split>-<kind>-idx<rank>-ubyte[.gz]`` file of ``root`` (``.`` also accepted)."""
    pattern = f"{kind}[-.]idx{rank}-ubyte"
    hits = sorted(
        p for s in splits for ext in ("", ".gz") for p in root.glob(f"*{s}-{pattern}{ext}")
    )
    stems = sorted({p.name.removesuffix(".gz") for p in hits})
    wanted = f"{splits[0]}-{kind}-idx{rank}-ubyte[.gz]"
    if not stems:
        fail(
            "idx",
            "data_dir",
            f"to contain {wanted}",
            f"no such file in {root}",
            kind=FileNotFoundError,
        )
    if len(stems) > 1:
        fail(
            "idx", "data_dir", f"to contain one {wanted}", f"several: {', '.join(stems)} in {root}"
        )
    plain = root / stems[0]
    return plain if plain.is_file() else hits[0]


def idx_pool(data_dir: str | Path | None, standardize: bool = True) -> Pool:
    """MNIST-format files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; any prefix
    such as ``emnist-letters-``; ``test`` for ``t10k``). Images become ``(N, 1, H, W)``."""
    root = require_dir("idx", data_dir, "train-images-idx3-ubyte[.gz] and the other MNIST files")
    paths = [
        _idx_file(root, split, kind, rank)
        for split in (("train",), ("t10k", "test"))
        for kind, rank in (("images", 3), ("labels", 1))
    ]
    arrays = [read_idx(p, p_rank) for p, p_rank in zip(paths, (3, 1, 3, 1))]
    arrays[0], arrays[2] = arrays[0][:, None], arrays[2][:, None]
    files = tuple(p.name for p in paths)
    return _two_splits("idx", (files[0], files[1], files[2], files[3]), arrays, standardize)
