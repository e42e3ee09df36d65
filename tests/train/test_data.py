"""Loaders on small files written in each layout: shapes, labels, protocols and errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from sklearn.datasets import load_digits

from losskit.train.data import DATASETS, default_protocol, load_image, load_splits
from losskit.train.data import arrays as data_arrays
from losskit.train.data._core import stratified_split
from losskit.train.data.arrays import read_idx

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406])
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225])
SIZE = 6  # image_size of the image tests


# ---------------------------------------------------------------- writers for each layout


def write_image(path: Path, color: tuple[int, int, int] = (10, 20, 30), size=(9, 7), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).convert(mode).save(path)


def write_idx(path: Path, array: np.ndarray, code: int = 0x08, gz: bool = False) -> None:
    """The idx format by its specification: 0, 0, type code, rank, big-endian dims, data."""
    dtype = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    raw = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    raw += array.astype(dtype).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def write_mnist(root: Path, gz: bool = False, prefix: str = "", test: str = "t10k"):
    rng = np.random.default_rng(0)
    data = {}
    for split, n in (("train", 12), (test, 8)):
        images = rng.integers(0, 256, (n, 5, 4), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 4
        ext = ".gz" if gz else ""
        write_idx(root / f"{prefix}{split}-images-idx3-ubyte{ext}", images, gz=gz)
        write_idx(root / f"{prefix}{split}-labels-idx1-ubyte{ext}", labels, gz=gz)
        data[split] = (images, labels)
    return data


def write_npy(root: Path, sample_shape, labels=(3, 7, 9, 11), n_train=16, n_test=8):
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        arrays[f"{split}_data"] = rng.normal(2.0, 3.0, (n, *sample_shape)).astype(np.float32)
        arrays[f"{split}_labels"] = np.resize(np.asarray(labels), n)
    root.mkdir(parents=True, exist_ok=True)
    for key, value in arrays.items():
        np.save(root / f"{key}.npy", value)
    return arrays


def write_cub(root: Path, n_classes=4, per_class=3) -> Path:
    base = root / "CUB_200_2011"
    images, labels, classes, split = [], [], [], []
    for c in range(1, n_classes + 1):
        name = f"{c:03d}.Bird_{c}"
        classes.append(f"{c} {name}")
        for k in range(per_class):
            i = len(images) + 1
            images.append(f"{i} {name}/img_{k}.jpg")
            labels.append(f"{i} {c}")
            split.append(f"{i} {int(k > 0)}")  # first image of each class -> test
            write_image(base / "images" / name / f"img_{k}.jpg", (c * 40, 0, 0))
    for fname, lines in (
        ("images.txt", images),
        ("image_class_labels.txt", labels),
        ("classes.txt", classes),
        ("train_test_split.txt", split),
    ):
        (base / fname).write_text("\n".join(lines) + "\n")
    return base


def write_cars(root: Path, n_classes=4, per_class=3) -> None:
    fields = ["relative_im_path", "bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "test"]
    annos = np.zeros((1, n_classes * per_class), dtype=[(f, "O") for f in fields])
    for i in range(n_classes * per_class):
        c, k = i // per_class + 1, i % per_class
        path = f"car_ims/{i + 1:06d}.jpg"
        write_image(root / path)
        annos[0, i] = (path, 0, 0, 5, 5, c, int(k == 0))
    names = np.empty((1, n_classes), dtype=object)
    names[0, :] = [f"Make {c} 2012" for c in range(1, n_classes + 1)]
    scipy.io.savemat(root / "cars_annos.mat", {"annotations": annos, "class_names": names})


def write_sop(root: Path) -> Path:
    base = root / "Stanford_Online_Products"
    for fname, classes in (("Ebay_train.txt", (1, 2, 3)), ("Ebay_test.txt", (4, 5, 6))):
        lines = ["image_id class_id super_class_id path"]
        for c in classes:
            for k in range(2):
                rel = f"chair_final/{c}_{k}.JPG"
                write_image(base / rel)
                lines.append(f"{len(lines)} {c} 1 {rel}")
        (base / fname).write_text("\n".join(lines) + "\n")
    return base


def write_inshop(root: Path, img_base: str = "") -> None:
    rows = []
    for item, status in ((1, "train"), (2, "train"), (3, "query"), (3, "gallery"), (4, "query")):
        for k in range(2):
            name = f"img/WOMEN/Dresses/id_{item:08d}/{k:02d}_{status}_front.jpg"
            write_image(root / img_base / name)
            rows.append(f"{name}  id_{item:08d}  {status}")
    rows.append("img/WOMEN/Dresses/id_00000004/extra.jpg id_00000004 gallery")
    write_image(root / img_base / "img/WOMEN/Dresses/id_00000004/extra.jpg")
    (root / "Eval").mkdir()
    text = f"{len(rows)}\nimage_name item_id evaluation_status\n" + "\n".join(rows) + "\n"
    (root / "Eval" / "list_eval_partition.txt").write_text(text)


def items(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))))
    assert all(isinstance(y, int) for y in ys)
    return torch.stack(xs), torch.tensor(ys)


def check_consistent(splits) -> None:
    """Labels of the items match the label tensors and the class name lists."""
    for dataset, labels, names in (
        (splits.train, splits.train_labels, splits.class_names),
        (splits.test, splits.test_labels, splits.test_class_names),
    ):
        x, y = items(dataset)
        assert tuple(x.shape[1:]) == splits.sample_shape and x.dtype == torch.float32
        assert torch.equal(y, labels) and labels.dtype == torch.long
        assert int(labels.min()) >= 0 and int(labels.max()) < len(names)
    assert splits.num_classes == len(splits.class_names)
    if splits.protocol == "classification":
        assert splits.test_class_names == splits.class_names
    else:
        assert not set(splits.class_names) & set(splits.test_class_names)


# ---------------------------------------------------------------- digits


def test_digits_classification_is_a_stratified_split_of_sklearn_digits():
    splits = load_splits("digits", standardize=False)
    check_consistent(splits)
    raw_x, raw_y = load_digits(return_X_y=True)
    assert splits.sample_shape == (64,) and splits.num_classes == 10
    assert len(splits.train) + len(splits.test) == len(raw_y)
    # Every item is a sklearn digit scaled to [0, 1], with its own label.
    rows = {tuple(r): int(y) for r, y in zip(raw_x, raw_y)}
    x, y = items(splits.train)
    assert x.min() >= 0 and x.max() <= 1
    assert all(rows[tuple((r * 16).round().tolist())] == int(c) for r, c in zip(x, y))
    # Stratified: each class keeps round(0.2 n) test samples.
    per_class = np.bincount(raw_y)
    assert splits.test_labels.bincount().tolist() == [round(0.2 * n) for n in per_class]


def test_digits_standardized_with_training_statistics_and_seeded():
    splits = load_splits("digits", seed=3)
    x, _ = items(splits.train)
    varying = x.std(0) > 0
    torch.testing.assert_close(x.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(0, correction=0)[varying], torch.ones(int(varying.sum())))
    # normalize() maps the raw sklearn digits to the model inputs.
    raw = torch.from_numpy(load_digits().data).float()
    assert splits.normalize(raw).shape == raw.shape
    same = load_splits("digits", seed=3)
    other = load_splits("digits", seed=4)
    assert torch.equal(same.test.x, splits.test.x)
    assert not torch.equal(other.test_labels, splits.test_labels)


def test_digits_retrieval_uses_all_samples_of_each_half():
    splits = load_splits("digits", protocol="retrieval")
    check_consistent(splits)
    raw_y = load_digits().target
    assert splits.class_names == ["0", "1", "2", "3", "4"]
    assert splits.test_class_names == ["5", "6", "7", "8", "9"]
    assert len(splits.train) == int((raw_y < 5).sum()) and len(splits.test) == int(
        (raw_y >= 5).sum()
    )


# ---------------------------------------------------------------- npy


@pytest.mark.parametrize(
    "sample_shape", [(5,), (2, 7), (3, 4, 5)], ids=["vector", "signal", "image"]
)
def test_npy_ranks_and_standardization(tmp_path, sample_shape):
    arrays = write_npy(tmp_path, sample_shape)
    splits = load_splits("npy", data_dir=tmp_path)
    check_consistent(splits)
    assert splits.sample_shape == sample_shape and splits.class_names == ["3", "7", "9", "11"]
    lookup = {3: 0, 7: 1, 9: 2, 11: 3}
    assert splits.train_labels.tolist() == [lookup[v] for v in arrays["train_labels"]]
    x, _ = items(splits.train)
    # Per feature for vectors, per channel (over samples and positions) otherwise.
    axes = (0,) if len(sample_shape) == 1 else (0, *range(2, x.dim()))
    torch.testing.assert_close(x.mean(axes), torch.zeros(sample_shape[0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(axes, correction=0), torch.ones(sample_shape[0]))
    for split in ("train", "test"):
        raw = torch.from_numpy(arrays[f"{split}_data"])
        torch.testing.assert_close(splits.normalize(raw), items(getattr(splits, split))[0])


def test_npy_statistics_in_chunks_match_numpy(tmp_path, monkeypatch):
    arrays = write_npy(tmp_path, (2, 7))
    monkeypatch.setattr(data_arrays, "_CHUNK", 20)  # 20 elements: one sample per chunk
    splits = load_splits("npy", data_dir=tmp_path)
    raw = arrays["train_data"].astype(np.float64)
    np.testing.assert_allclose(splits.input_mean.numpy(), raw.mean((0, 2))[:, None], rtol=1e-6)
    np.testing.assert_allclose(splits.input_std.numpy(), raw.std((0, 2))[:, None], rtol=1e-6)


def test_npy_without_standardization_keeps_values(tmp_path):
    arrays = write_npy(tmp_path, (4,))
    splits = load_splits("npy", data_dir=tmp_path, standardize=False)
    assert torch.equal(items(splits.test)[0], torch.from_numpy(arrays["test_data"]))


def test_npy_retrieval_takes_each_splits_half(tmp_path):
    arrays = write_npy(tmp_path, (4,))
    splits = load_splits("npy", data_dir=tmp_path, protocol="retrieval")
    check_consistent(splits)
    assert splits.class_names == ["3", "7"] and splits.test_class_names == ["9", "11"]
    assert len(splits.train) == int(np.isin(arrays["train_labels"], [3, 7]).sum())
    assert len(splits.test) == int(np.isin(arrays["test_labels"], [9, 11]).sum())


def test_npy_string_labels(tmp_path):
    write_npy(tmp_path, (3,), labels=("cat", "dog"))
    splits = load_splits("npy", data_dir=tmp_path)
    assert splits.class_names == ["cat", "dog"]


@pytest.mark.parametrize(
    ("fname", "value", "match"),
    [
        ("train_data.npy", np.zeros((2, 2, 2, 2, 2)), r"npy: expected `train_data.npy` of shape"),
        ("test_data.npy", np.zeros((8, 5)), r"`test_data.npy` samples of the shape of train_data"),
        ("train_labels.npy", np.zeros(3, int), r"`train_labels.npy` of shape \(N,\) with N=16"),
        ("test_labels.npy", np.zeros(8), r"`test_labels.npy` to hold integer or string class"),
        ("test_labels.npy", np.full(8, 5), r"`test classes` to appear in the training split"),
        ("train_data.npy", np.array([{"a": 1}] * 16), r"`train_data.npy` to be a NumPy .npy"),
        ("test_data.npy", np.zeros((8, 4), bool), r"`test_data.npy` to hold numbers"),
        ("test_data.npy", np.full((8, 4), np.nan), r"`test_data.npy` finite values, got 32 NaN"),
        ("test_labels.npy", np.array(["a"] * 8), r"`test_labels.npy` labels of the same kind"),
    ],
)
def test_npy_malformed_files(tmp_path, fname, value, match):
    write_npy(tmp_path, (4,))
    np.save(tmp_path / fname, value, allow_pickle=True)
    with pytest.raises(ValueError, match=match):
        load_splits("npy", data_dir=tmp_path)


def test_npz_archive_is_not_an_npy_array(tmp_path):
    write_npy(tmp_path, (4,))
    with open(tmp_path / "train_data.npy", "wb") as f:
        np.savez(f, a=np.zeros(3))
    with pytest.raises(ValueError, match=r"`train_data.npy` to be a NumPy .npy array, got a NpzF"):
        load_splits("npy", data_dir=tmp_path)


def test_npy_missing_files_and_folder(tmp_path):
    write_npy(tmp_path, (4,))
    (tmp_path / "test_labels.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"npy: expected `data_dir` to contain test_labels"):
        load_splits("npy", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"npy: expected `data_dir` .* got no such folder"):
        load_splits("npy", data_dir=tmp_path / "nope")
    with pytest.raises(ValueError, match=r"npy: expected `data_dir` to be a folder .* got None"):
        load_splits("npy")


# ---------------------------------------------------------------- idx


@pytest.mark.parametrize(
    ("gz", "prefix", "test"), [(False, "", "t10k"), (True, "", "t10k"), (True, "emnist-x-", "test")]
)
def test_idx_files_plain_and_gzip(tmp_path, gz, prefix, test):
    data = write_mnist(tmp_path, gz=gz, prefix=prefix, test=test)
    splits = load_splits("idx", data_dir=tmp_path, standardize=False)
    check_consistent(splits)
    assert splits.sample_shape == (1, 5, 4) and splits.num_classes == 4
    expected = torch.from_numpy(data[test][0]).float().unsqueeze(1) / 255
    torch.testing.assert_close(items(splits.test)[0], expected)
    assert splits.test_labels.tolist() == data[test][1].tolist()


def test_idx_standardized_over_the_single_channel(tmp_path):
    data = write_mnist(tmp_path)
    splits = load_splits("idx", data_dir=tmp_path)
    raw = data["train"][0].astype(np.float64)
    assert splits.input_mean.item() == pytest.approx(raw.mean(), rel=1e-6)
    assert splits.input_std.item() == pytest.approx(raw.std(), rel=1e-6)


@pytest.mark.parametrize(("code", "dtype"), [(0x0C, np.int32), (0x0D, np.float32)])
def test_read_idx_big_endian_types(tmp_path, code, dtype):
    array = np.arange(-6, 6).reshape(3, 4).astype(dtype)
    write_idx(tmp_path / "a-idx2-ubyte", array, code)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx2-ubyte", 2), array)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x08\x03\x00\x00", r"`f` to start with an idx magic number .* got bytes 08 03 00 00"),
        (bytes([0, 0, 8, 2, 0, 0, 0, 1]), r"`f` to hold a 3-D array, got 2-D"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 2]), r"`f` a 16-byte idx header, got 8 bytes"),
        (
            bytes([0, 0, 8, 3]) + np.array([2, 2, 2], ">u4").tobytes() + b"\x00" * 7,
            r"`f` 24 bytes for an idx array of shape \(2, 2, 2\), got 23 bytes",
        ),
    ],
)
def test_read_idx_malformed(tmp_path, raw, match):
    (tmp_path / "f").write_bytes(raw)
    with pytest.raises(ValueError, match=match):
        read_idx(tmp_path / "f", 3)


def test_idx_errors_name_the_file(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match=r"`t10k-labels-idx1-ubyte.gz` to be a readable gzip"):
        load_splits("idx", data_dir=tmp_path)
    (tmp_path / "train-images-idx3-ubyte").unlink()
    with pytest.raises(
        FileNotFoundError,
        match=r"idx: expected `data_dir` to contain train-images-idx3-ubyte\[.gz\], got no such",
    ):
        load_splits("idx", data_dir=tmp_path)
    write_mnist(tmp_path, prefix="fashion-")
    with pytest.raises(ValueError, match=r"to contain one train-labels-idx1-ubyte\[.gz\], got sev"):
        load_splits("idx", data_dir=tmp_path)


# ---------------------------------------------------------------- image loading


def test_load_image_normalizes_a_solid_image_with_imagenet_statistics(tmp_path):
    write_image(tmp_path / "a.png", (255, 128, 0), size=(13, 9))
    x = load_image(tmp_path / "a.png", SIZE)
    assert x.shape == (3, SIZE, SIZE) and x.dtype == torch.float32
    expected = (torch.tensor([255, 128, 0]) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    torch.testing.assert_close(x, expected.view(3, 1, 1).expand(3, SIZE, SIZE))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_load_image_converts_to_rgb(tmp_path, mode):
    write_image(tmp_path / "a.png", (102, 102, 102), mode=mode)  # a web-palette colour
    x = load_image(tmp_path / "a.png", SIZE)
    assert x.shape == (3, SIZE, SIZE)
    torch.testing.assert_close(
        x * IMAGENET_STD.view(3, 1, 1) + IMAGENET_MEAN.view(3, 1, 1),
        torch.full((3, SIZE, SIZE), 102 / 255),
    )


@pytest.mark.parametrize("transpose", [False, True], ids=["wide", "tall"])
def test_load_image_resizes_the_shorter_side_and_crops_the_centre(tmp_path, transpose):
    # 40 x 20 with red | green | blue bands of 10, 20, 10 columns: the shorter side goes to 10,
    # the longer to 20, and the centre crop keeps the green half.
    bands = np.zeros((20, 40, 3), np.uint8)
    bands[:, :10, 0] = bands[:, 10:30, 1] = bands[:, 30:, 2] = 255
    image = bands.transpose(1, 0, 2) if transpose else bands
    Image.fromarray(np.ascontiguousarray(image)).save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png", 10)
    rgb = (x * IMAGENET_STD.view(3, 1, 1) + IMAGENET_MEAN.view(3, 1, 1)).clamp(0, 1)
    inner = rgb[:, 1:-1, 1:-1] if not transpose else rgb[:, 1:-1, 1:-1].transpose(1, 2)
    torch.testing.assert_close(inner[1], torch.ones_like(inner[1]), atol=1e-3, rtol=0)
    assert float(rgb[0].max()) < 0.5 and float(rgb[2].max()) < 0.5


def test_unreadable_image_names_the_file(tmp_path):
    (tmp_path / "a.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"image: expected `image file` to be an image PIL can"):
        load_image(tmp_path / "a.png", SIZE)
    with pytest.raises(FileNotFoundError, match=r"got no such file .*b.png"):
        load_image(tmp_path / "b.png", SIZE)


# ---------------------------------------------------------------- image folders


def _imagefolder(root: Path, splits=("train", "test")) -> None:
    for split in splits:
        for c, color in (("cat", (200, 0, 0)), ("dog", (0, 200, 0)), ("eel", (0, 0, 200))):
            for k in range(3):
                ext = "png" if k % 2 else "JPG"
                write_image(root / split / c / f"{k}.{ext}", color)
            (root / split / c / "notes.txt").write_text("not an image")


def test_imagefolder_two_splits(tmp_path):
    _imagefolder(tmp_path)
    splits = load_splits("imagefolder", data_dir=tmp_path, image_size=SIZE)
    check_consistent(splits)
    assert splits.class_names == ["cat", "dog", "eel"] and splits.sample_shape == (3, SIZE, SIZE)
    assert len(splits.train) == len(splits.test) == 9
    x, y = items(splits.test)
    red_channel = x[:, 0].mean((1, 2))
    assert bool((red_channel[y == 0] > red_channel[y != 0].max()).all())
    retrieval = load_splits("imagefolder", data_dir=tmp_path, image_size=SIZE, protocol="retrieval")
    check_consistent(retrieval)
    assert retrieval.class_names == ["cat", "dog"] and retrieval.test_class_names == ["eel"]


def test_hidden_folders_are_not_classes(tmp_path):
    _imagefolder(tmp_path)
    (tmp_path / "train" / ".cache").mkdir()
    splits = load_splits("imagefolder", data_dir=tmp_path, image_size=SIZE)
    assert splits.class_names == ["cat", "dog", "eel"]


def test_imagefolder_one_split_is_split_per_class(tmp_path):
    _imagefolder(tmp_path, splits=("all",))
    root = tmp_path / "all"
    splits = load_splits("imagefolder", data_dir=root, image_size=SIZE, test_fraction=0.3)
    check_consistent(splits)
    assert splits.test_labels.tolist() == [0, 1, 2]
    assert len(splits.train) == 6


def test_imagefolder_errors(tmp_path):
    _imagefolder(tmp_path, splits=("train",))
    with pytest.raises(FileNotFoundError, match=r"`data_dir` to contain test/ beside train/"):
        load_splits("imagefolder", data_dir=tmp_path)
    (tmp_path / "test" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"`class folder` to hold images, got none in .*test"):
        load_splits("imagefolder", data_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"`data_dir` class folders holding images, got none"):
        load_splits("imagefolder", data_dir=tmp_path / "empty")


def test_broken_image_fails_when_loaded(tmp_path):
    _imagefolder(tmp_path)
    (tmp_path / "test" / "dog" / "1.png").write_bytes(b"broken")
    splits = load_splits("imagefolder", data_dir=tmp_path, image_size=SIZE)
    with pytest.raises(ValueError, match=r"imagefolder: expected `image file` .*1.png"):
        items(splits.test)


# ---------------------------------------------------------------- CUB-200-2011


def test_cub200_protocols(tmp_path):
    write_cub(tmp_path)
    assert default_protocol("cub200") == "retrieval"
    retrieval = load_splits("cub200", data_dir=tmp_path, image_size=SIZE)
    check_consistent(retrieval)
    # Retrieval: all images of the first half of the classes, then the rest.
    assert retrieval.class_names == ["001.Bird_1", "002.Bird_2"]
    assert retrieval.test_class_names == ["003.Bird_3", "004.Bird_4"]
    assert len(retrieval.train) == len(retrieval.test) == 6
    # Classification: train_test_split.txt (one test image per class).
    classification = load_splits(
        "cub200", data_dir=tmp_path / "CUB_200_2011", image_size=SIZE, protocol="classification"
    )
    check_consistent(classification)
    assert classification.test_labels.tolist() == [0, 1, 2, 3] and len(classification.train) == 8
    x, y = items(classification.test)
    assert torch.equal(x[:, 0, 0, 0].argsort(), y.argsort())  # red grows with the class


def test_cub200_errors(tmp_path):
    base = write_cub(tmp_path)
    (base / "images" / "002.Bird_2" / "img_1.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"cub200: expected `image files` to exist, got 1"):
        load_splits("cub200", data_dir=tmp_path)
    lines = (base / "image_class_labels.txt").read_text().splitlines()
    (base / "image_class_labels.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match=r"`image_class_labels.txt` a line for image id 12"):
        load_splits("cub200", data_dir=tmp_path)
    (base / "classes.txt").write_text("1\n")
    with pytest.raises(ValueError, match=r"`classes.txt` 2 fields per line, got '1' on line 1"):
        load_splits("cub200", data_dir=tmp_path)
    (base / "train_test_split.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"contain train_test_split.txt, got no such file"):
        load_splits("cub200", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"images.txt, got no such file in .* \(nor in"):
        load_splits("cub200", data_dir=base / "images")


# ---------------------------------------------------------------- Cars-196


def test_cars196_protocols(tmp_path):
    write_cars(tmp_path)
    retrieval = load_splits("cars196", data_dir=tmp_path, image_size=SIZE)
    check_consistent(retrieval)
    assert retrieval.class_names == ["Make 1 2012", "Make 2 2012"]
    assert len(retrieval.train) == len(retrieval.test) == 6
    classification = load_splits(
        "cars196", data_dir=tmp_path, image_size=SIZE, protocol="classification"
    )
    check_consistent(classification)
    assert classification.test_labels.tolist() == [0, 1, 2, 3]


def test_cars196_malformed_annotations(tmp_path):
    write_cars(tmp_path)
    scipy.io.savemat(tmp_path / "cars_annos.mat", {"class_names": np.array(["a"], dtype=object)})
    with pytest.raises(ValueError, match=r"cars196: expected `cars_annos.mat` `annotations`"):
        load_splits("cars196", data_dir=tmp_path)
    (tmp_path / "cars_annos.mat").unlink()
    with pytest.raises(FileNotFoundError, match=r"to contain cars_annos.mat, got no such file"):
        load_splits("cars196", data_dir=tmp_path)


# ---------------------------------------------------------------- Stanford Online Products


def test_sop_protocols(tmp_path):
    write_sop(tmp_path)
    retrieval = load_splits("sop", data_dir=tmp_path, image_size=SIZE)
    check_consistent(retrieval)
    assert retrieval.class_names == ["1", "2", "3"] and retrieval.test_class_names == [
        "4",
        "5",
        "6",
    ]
    classification = load_splits(
        "sop", data_dir=tmp_path, image_size=SIZE, protocol="classification"
    )
    check_consistent(classification)
    # The own split separates classes, so classification splits each class's samples.
    assert classification.num_classes == 6 and classification.test_labels.tolist() == list(range(6))


def test_sop_errors(tmp_path):
    base = write_sop(tmp_path)
    text = (base / "Ebay_test.txt").read_text()
    (base / "Ebay_test.txt").write_text(text.replace(" 4 1 ", " 1 1 "))
    with pytest.raises(ValueError, match=r"sop: expected `Ebay_test.txt` classes unseen in train"):
        load_splits("sop", data_dir=tmp_path)
    (base / "Ebay_test.txt").write_text(text + "99 4 chair_final/x.JPG\n")
    with pytest.raises(ValueError, match=r"`Ebay_test.txt` 4 fields per line, got '99 4 chair"):
        load_splits("sop", data_dir=tmp_path)
    (base / "Ebay_test.txt").write_text(text.replace(" 4 1 ", " four 1 "))
    with pytest.raises(ValueError, match=r"`Ebay_test.txt` an integer field, got 'four'"):
        load_splits("sop", data_dir=tmp_path)


# ---------------------------------------------------------------- In-shop


@pytest.mark.parametrize("img_base", ["", "Img"])
def test_inshop_query_and_gallery(tmp_path, img_base):
    write_inshop(tmp_path, img_base)
    splits = load_splits("inshop", data_dir=tmp_path, image_size=SIZE)
    check_consistent(splits)
    assert splits.class_names == ["id_00000001", "id_00000002"]
    assert splits.test_class_names == ["id_00000003", "id_00000004"]
    assert splits.test_is_query.tolist() == [True, True, False, False, True, True, False]
    classification = load_splits(
        "inshop", data_dir=tmp_path, image_size=SIZE, protocol="classification"
    )
    assert classification.test_is_query is None and classification.num_classes == 4


def test_inshop_bad_status(tmp_path):
    write_inshop(tmp_path)
    f = tmp_path / "Eval" / "list_eval_partition.txt"
    f.write_text(f.read_text().replace("gallery", "val"))
    with pytest.raises(ValueError, match=r"`list_eval_partition.txt` status train, query or gal"):
        load_splits("inshop", data_dir=tmp_path)


# ---------------------------------------------------------------- names, protocols, arguments


def test_default_protocol_and_names():
    assert [default_protocol(d) for d in DATASETS] == ["classification"] * 4 + ["retrieval"] * 4
    with pytest.raises(
        ValueError, match=r"expected `dataset` one of .* got 'digit' \(did you mean"
    ):
        load_splits("digit")
    with pytest.raises(
        ValueError, match=r"`protocol` one of .* got 'retreival' \(did you mean 're"
    ):
        load_splits("digits", protocol="retreival")
    with pytest.raises(ValueError, match=r"load_splits: expected `test_fraction` in \(0, 1\)"):
        load_splits("digits", test_fraction=1.0)
    with pytest.raises(ValueError, match=r"default_protocol: expected `dataset` one of"):
        default_protocol("mnist")


def test_retrieval_needs_two_classes(tmp_path):
    write_npy(tmp_path, (3,), labels=(5,))
    with pytest.raises(ValueError, match=r"npy: expected `data` at least 2 classes for the retr"):
        load_splits("npy", data_dir=tmp_path, protocol="retrieval")
    write_npy(tmp_path, (3,), labels=(1, 2), n_test=2)
    np.save(tmp_path / "test_labels.npy", np.array([1, 1]))
    with pytest.raises(ValueError, match=r"`data` some test samples for the retrieval protocol"):
        load_splits("npy", data_dir=tmp_path, protocol="retrieval")


def test_stratified_split_keeps_singletons_in_training():
    labels = np.array([0, 0, 0, 0, 0, 1, 2, 2])
    is_test = stratified_split(labels, 0.5, seed=0)
    assert np.bincount(labels[is_test], minlength=3).tolist() == [2, 0, 1]
    assert np.array_equal(is_test, stratified_split(labels, 0.5, seed=0))
