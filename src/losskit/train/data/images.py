"""Image-file data sets: an image folder and the four metric-learning benchmarks.

Images are read lazily with PIL, converted to RGB, resized so the shorter side is
``image_size`` (bilinear, antialiased) and centre-cropped to ``image_size x image_size`` — the
semantics of torchvision's ``Resize(image_size)`` + ``CenterCrop(image_size)`` — then scaled to
``[0, 1]`` and normalised with the ImageNet mean and std (what pretrained ResNets expect).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from losskit._checks import fail
from losskit.train.data._core import Pool, find_file, require_dir

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageDataset",
    "cars196_pool",
    "cub200_pool",
    "imagefolder_pool",
    "inshop_pool",
    "load_image",
    "sop_pool",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The extensions torchvision's ImageFolder accepts.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def load_image(path: str | Path, image_size: int, name: str = "image") -> Tensor:
    """One image file as a normalised ``(3, image_size, image_size)`` float tensor.

    Training augmentation (``augment``) is applied to these tensors by
    :mod:`losskit.train.augment`.
    """
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except FileNotFoundError:
        fail(name, "image file", "to exist", f"no such file {path}", kind=FileNotFoundError)
    except (OSError, ValueError) as err:
        fail(name, "image file", "to be an image PIL can read", f"{err} ({path})")
    w, h = rgb.size
    # Shorter side -> image_size, the longer side scaled and truncated as torchvision does.
    size = (
        (image_size, int(image_size * h / w)) if w <= h else (int(image_size * w / h), image_size)
    )
    rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    left = round((size[0] - image_size) / 2.0)
    top = round((size[1] - image_size) / 2.0)
    rgb = rgb.crop((left, top, left + image_size, top + image_size))
    x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return ((x - _MEAN) / _STD).contiguous()


class ImageDataset(Dataset[tuple[Tensor, int]]):
    """Image files with integer labels, loaded on access by :func:`load_image`."""

    def __init__(
        self,
        paths: Sequence[str],
        labels: np.ndarray,
        image_size: int,
        name: str,
    ) -> None:
        self.paths = list(paths)
        self.labels = labels
        self.image_size = image_size
        self.name = name

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return load_image(self.paths[index], self.image_size, self.name), int(self.labels[index])


def _image_pool(
    name: str,
    paths: list[str],
    class_keys: Sequence[object],
    class_names: dict[object, str] | None,
    image_size: int,
    *,
    is_test: np.ndarray | None,
    split_by_class: bool = False,
    retrieval_uses_all: bool = False,
    is_query: np.ndarray | None = None,
) -> Pool:
    """A :class:`Pool` of image files; classes sorted by key, named by ``class_names``."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        fail(
            name,
            "image files",
            "to exist",
            f"{len(missing)} missing, the first {missing[0]}",
            kind=FileNotFoundError,
        )
    keys = np.asarray(class_keys)
    classes, labels = np.unique(keys, return_inverse=True)
    names = [class_names[c.item()] if class_names else str(c) for c in classes]
    path_array = np.asarray(paths, dtype=object)

    def build(
        train_idx: np.ndarray, train_y: np.ndarray, test_idx: np.ndarray, test_y: np.ndarray
    ) -> tuple[ImageDataset, ImageDataset, None]:
        return (
            ImageDataset(path_array[train_idx].tolist(), train_y, image_size, name),
            ImageDataset(path_array[test_idx].tolist(), test_y, image_size, name),
            None,
        )

    return Pool(
        labels=labels.reshape(-1).astype(np.int64),
        class_names=names,
        sample_shape=(3, image_size, image_size),
        build=build,
        is_test=is_test,
        split_by_class=split_by_class,
        retrieval_uses_all=retrieval_uses_all,
        is_query=is_query,
    )


def _read_rows(name: str, path: Path, columns: int, *, header: int = 0) -> list[list[str]]:
    """The rows of a whitespace-separated text file, each split into ``columns`` fields
    (the last keeps inner spaces), after ``header`` lines."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        fail(name, path.name, "to be a UTF-8 text file", f"{err} ({path})")
    rows = []
    for number, line in enumerate(lines[header:], start=header + 1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=columns - 1)
        if len(fields) != columns:
            fail(
                name,
                path.name,
                f"{columns} fields per line",
                f"{line!r} on line {number} of {path}",
            )
        rows.append([*fields[:-1], fields[-1].strip()])
    if not rows:
        fail(name, path.name, "at least one line of data", f"an empty file {path}")
    return rows


def _int(name: str, path: Path, value: str) -> int:
    """``value`` read from ``path`` as an integer."""
    try:
        return int(value)
    except ValueError:
        fail(name, path.name, "an integer field", f"{value!r} in {path}")


def _lookup(name: str, path: Path, table: dict[int, str], image_id: int) -> str:
    """The row of ``table`` (read from ``path``) for ``image_id``."""
    if image_id not in table:
        fail(name, path.name, f"a line for image id {image_id}", f"none in {path}")
    return table[image_id]


def _folder_images(folder: Path) -> list[str]:
    """Image files under ``folder`` (recursively), sorted."""
    return sorted(
        str(p) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )


def imagefolder_pool(data_dir: str | Path | None, image_size: int) -> Pool:
    """``root/train/<class>/*`` and ``root/test/<class>/*``, or one split ``root/<class>/*``."""
    name = "imagefolder"
    root = require_dir(name, data_dir, "train/<class>/*.png and test/<class>/*.png, or <class>/*")
    two = [(root / s).is_dir() for s in ("train", "test")]
    if any(two) and not all(two):
        wanted, have = ("test", "train") if two[0] else ("train", "test")
        fail(
            name,
            "data_dir",
            f"to contain {wanted}/ beside {have}/",
            f"no such folder in {root}",
            kind=FileNotFoundError,
        )
    splits = [root / "train", root / "test"] if all(two) else [root]
    paths, keys, is_test = [], [], []
    for position, split in enumerate(splits):
        classes = sorted(d.name for d in split.iterdir() if d.is_dir() and d.name[0] != ".")
        if not classes:
            fail(name, "data_dir", "class folders holding images", f"none in {split}")
        for cls in classes:
            files = _folder_images(split / cls)
            if not files:
                fail(name, "class folder", "to hold images", f"none in {split / cls}")
            paths += files
            keys += [cls] * len(files)
            is_test += [position == 1] * len(files)
    own_split = np.asarray(is_test) if all(two) else None
    return _image_pool(name, paths, keys, None, image_size, is_test=own_split)


def cub200_pool(data_dir: str | Path | None, image_size: int) -> Pool:
    """CUB-200-2011: ``images.txt``, ``image_class_labels.txt``, ``classes.txt``,
    ``train_test_split.txt`` and ``images/`` in ``data_dir`` or ``data_dir/CUB_200_2011``."""
    name = "cub200"
    root = require_dir(name, data_dir, "CUB_200_2011's images.txt and images/")
    base = find_file(name, root, "images.txt", ("CUB_200_2011",)).parent
    files = [
        base / f
        for f in ("images.txt", "image_class_labels.txt", "classes.txt", "train_test_split.txt")
    ]
    for f in files:
        find_file(name, base, f.name)
    images, labels, classes, split = (
        {_int(name, f, a): b for a, b in _read_rows(name, f, 2)} for f in files
    )
    ids = sorted(images)
    class_ids = [_int(name, files[1], _lookup(name, files[1], labels, i)) for i in ids]
    for c in set(class_ids):
        _lookup(name, files[2], classes, c)
    is_test = [_lookup(name, files[3], split, i) == "0" for i in ids]
    paths = [str(base / "images" / images[i]) for i in ids]
    return _image_pool(
        name,
        paths,
        class_ids,
        {c: classes[c] for c in set(class_ids)},
        image_size,
        is_test=np.asarray(is_test),
        retrieval_uses_all=True,
    )


def cars196_pool(data_dir: str | Path | None, image_size: int) -> Pool:
    """Cars-196: ``cars_annos.mat`` (fields ``relative_im_path``, ``class``, ``test`` and
    ``class_names``) and the ``car_ims/`` it points to, in ``data_dir``."""
    import scipy.io  # installed with scikit-learn

    name = "cars196"
    root = require_dir(name, data_dir, "cars_annos.mat and car_ims/")
    path = find_file(name, root, "cars_annos.mat")
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True)
        annos = np.atleast_1d(mat["annotations"])
        paths = [str(root / str(p)) for p in annos["relative_im_path"]]
        class_ids = [int(c) for c in annos["class"]]
        is_test = np.asarray([bool(t) for t in annos["test"]])
        names = [str(n) for n in np.atleast_1d(mat["class_names"])]
    except (ValueError, KeyError, TypeError, OSError) as err:
        fail(
            name,
            path.name,
            "`annotations` (relative_im_path, class, test) and `class_names`",
            f"{type(err).__name__}: {err} ({path})",
        )
    if min(class_ids) < 1 or max(class_ids) > len(names):
        fail(
            name, path.name, f"classes in [1, {len(names)}]", f"{min(class_ids)}..{max(class_ids)}"
        )
    return _image_pool(
        name,
        paths,
        class_ids,
        {c: names[c - 1] for c in set(class_ids)},
        image_size,
        is_test=is_test,
        retrieval_uses_all=True,
    )


def _disjoint(name: str, keys: Sequence[object], is_test: Sequence[bool], test_file: str) -> None:
    """The data set's own split must separate the classes."""
    shared = {k for k, t in zip(keys, is_test) if t} & {k for k, t in zip(keys, is_test) if not t}
    if shared:
        fail(name, test_file, "classes unseen in training", f"{len(shared)} shared class(es)")


def sop_pool(data_dir: str | Path | None, image_size: int) -> Pool:
    """Stanford Online Products: ``Ebay_train.txt`` and ``Ebay_test.txt`` (a header line, then
    ``image_id class_id super_class_id path``) in ``data_dir`` or
    ``data_dir/Stanford_Online_Products``; paths relative to that folder."""
    name = "sop"
    root = require_dir(name, data_dir, "Ebay_train.txt, Ebay_test.txt and the image folders")
    base = find_file(name, root, "Ebay_train.txt", ("Stanford_Online_Products",)).parent
    paths, keys, is_test = [], [], []
    for fname in ("Ebay_train.txt", "Ebay_test.txt"):
        f = find_file(name, base, fname)
        for _, class_id, _, rel in _read_rows(name, f, 4, header=1):
            paths.append(str(base / rel))
            keys.append(_int(name, f, class_id))
            is_test.append(fname == "Ebay_test.txt")
    _disjoint(name, keys, is_test, "Ebay_test.txt")
    return _image_pool(
        name, paths, keys, None, image_size, is_test=np.asarray(is_test), split_by_class=True
    )


def inshop_pool(data_dir: str | Path | None, image_size: int) -> Pool:
    """In-shop Clothes Retrieval: ``list_eval_partition.txt`` (a count line, a header line,
    then ``image_name item_id evaluation_status``) in ``data_dir`` or ``data_dir/Eval``; image
    names relative to ``data_dir`` (or ``data_dir/Img``). Status ``train`` -> training,
    ``query`` and ``gallery`` -> test (queries marked in ``Splits.test_is_query``)."""
    name = "inshop"
    root = require_dir(name, data_dir, "list_eval_partition.txt and img/")
    f = find_file(name, root, "list_eval_partition.txt", ("Eval",))
    rows = _read_rows(name, f, 3, header=2)
    statuses = {"train", "query", "gallery"}
    for image, _, status in rows:
        if status not in statuses:
            fail(name, f.name, "status train, query or gallery", f"{status!r} for {image} in {f}")
    base = next((b for b in (root, root / "Img") if (b / rows[0][0]).is_file()), root)
    paths = [str(base / image) for image, _, _ in rows]
    keys: list[object] = [item for _, item, _ in rows]
    is_test = [status != "train" for _, _, status in rows]
    _disjoint(name, keys, is_test, f.name)
    return _image_pool(
        name,
        paths,
        keys,
        None,
        image_size,
        is_test=np.asarray(is_test),
        split_by_class=True,
        is_query=np.asarray([status == "query" for _, _, status in rows]),
    )
