"""A procedurally drawn image set for retrieval benchmarks: glyphs of random pen strokes.

Each class is a glyph of a few quadratic Bézier strokes with random control points; each sample
draws its class's glyph with jittered control points, a random affine transform (rotation, scale,
shear, shift), a random pen width and pixel noise, as ``uint8`` images ``(1, size, size)``.
Nothing is downloaded; the same seed gives the same images. Written as the ``npy`` data set's
four files, it serves ``losskit train --dataset npy --protocol retrieval`` (the first half of the
classes trains, the unseen second half is searched).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["render_glyphs", "write_glyph_dataset"]

_POINTS_PER_STROKE = 12


def _class_strokes(rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """Control points ``(C, strokes, 3, 2)`` of each class's glyph, in ``[-0.7, 0.7]²``."""
    strokes = 3
    return rng.uniform(-0.7, 0.7, size=(num_classes, strokes, 3, 2))


def _curves(control: np.ndarray) -> np.ndarray:
    """Points ``(..., strokes, P, 2)`` along each quadratic Bézier stroke."""
    t = np.linspace(0.0, 1.0, _POINTS_PER_STROKE)[:, None]
    p0, p1, p2 = control[..., 0:1, :], control[..., 1:2, :], control[..., 2:3, :]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _affine(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random ``(n, 2, 2)`` linear maps and ``(n, 2)`` shifts."""
    angle = rng.uniform(-0.35, 0.35, n)
    scale = rng.uniform(0.8, 1.1, n)
    shear = rng.uniform(-0.2, 0.2, n)
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shearing = np.tile(np.eye(2), (n, 1, 1))
    shearing[:, 0, 1] = shear
    return scale[:, None, None] * rotation @ shearing, rng.uniform(-0.12, 0.12, (n, 2))


def render_glyphs(
    labels: np.ndarray, strokes: np.ndarray, rng: np.random.Generator, size: int = 28
) -> np.ndarray:
    """``uint8`` images ``(N, 1, size, size)`` of the glyphs ``strokes[labels]``, each varied."""
    n = len(labels)
    control = strokes[labels] + rng.normal(0.0, 0.07, strokes[labels].shape)
    matrix, shift = _affine(rng, n)
    points = _curves(control).reshape(n, -1, 2) @ matrix.transpose(0, 2, 1) + shift[:, None]
    points = points.reshape(n, strokes.shape[1], _POINTS_PER_STROKE, 2)
    points = points.astype(np.float32)
    a, b = points[:, :, :-1].reshape(n, -1, 2), points[:, :, 1:].reshape(n, -1, 2)
    grid = ((np.arange(size) + 0.5) / size * 2 - 1).astype(np.float32)
    pixels = np.stack(np.meshgrid(grid, grid, indexing="xy"), -1).reshape(-1, 2)
    images = np.empty((n, size * size), np.float32)
    width = rng.uniform(0.06, 0.11, n).astype(np.float32)
    for start in range(0, n, 256):  # distance of every pixel to every segment, in chunks
        sa, sb = a[start : start + 256, None], b[start : start + 256, None]
        ab, ap = sb - sa, pixels[None, :, None] - sa
        t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0.0, 1.0)
        dist = np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(-1)
        images[start : start + 256] = np.clip(1.5 - dist / width[start : start + 256, None], 0, 1)
    images += rng.normal(0.0, 0.15, images.shape).astype(np.float32)
    return (np.clip(images, 0.0, 1.0) * 255).astype(np.uint8).reshape(n, 1, size, size)


def write_glyph_dataset(
    folder: str | Path,
    *,
    num_classes: int = 40,
    train_per_class: int = 100,
    test_per_class: int = 40,
    size: int = 28,
    seed: int = 0,
) -> Path:
    """Write ``train_data.npy train_labels.npy test_data.npy test_labels.npy`` into ``folder``."""
    rng = np.random.default_rng(seed)
    strokes = _class_strokes(rng, num_classes)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = np.repeat(np.arange(num_classes), per_class)
        np.save(out / f"{split}_data.npy", render_glyphs(labels, strokes, rng, size))
        np.save(out / f"{split}_labels.npy", labels)
    return out
