"""Shared plumbing of the figures: figure creation, autograd curves, atomic PNG writing."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from PIL import Image
from torch import Tensor

from losskit._checks import fail
from losskit._files import atomic_write

__all__ = [
    "DPI",
    "log_axis",
    "new_figure",
    "save_figure",
    "series_colours",
    "style_axes",
    "value_and_grad",
]

# Pixel size of a saved figure = figsize (inches) × DPI; the figures keep their layout inside
# that size (no "tight" bounding box), so a figure's PNG size is known in advance.
DPI = 100


def new_figure(ncols: int, size: tuple[float, float], nrows: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure (no pyplot, so no display or global state) with a grid of axes, row by row."""
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def style_axes(ax: Axes, title: str, xlabel: str, ylabel: str, *, legend: bool = True) -> None:
    """Title, labels, a light grid and a legend — the common look of every panel."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:  # a panel may have no curve to name
        ax.legend(fontsize="small")


def log_axis(ax: Axes) -> None:
    """Put ``ax``'s y axis (drawn already) on a log scale labelled at its major ticks only.

    Under three decades the labels are 1, 2 and 5 × 10^k written plainly (0.02, 0.05, 0.1);
    wider, the powers of ten. Minor ticks stay unlabelled.
    """
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    if np.log10(high / low) < 3:
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def series_colours(keys: Sequence[object]) -> dict[object, str]:
    """One colour of the default cycle per key, so a key has the same colour in every panel."""
    return {key: f"C{i % 10}" for i, key in enumerate(dict.fromkeys(keys))}


def value_and_grad(
    fn: Callable[[Tensor], Tensor], x: Sequence[float] | np.ndarray | Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Values of an elementwise ``fn`` at the points ``x`` and ``d fn / dx`` there, by autograd.

    ``fn`` maps a float64 tensor of shape ``(N,)`` to per-point values ``(N,)`` where value ``i``
    depends only on ``x[i]``, so the gradient of the sum is the derivative at each point.
    """
    t = torch.as_tensor(np.asarray(x), dtype=torch.float64).clone().requires_grad_(True)
    y = fn(t)
    (g,) = torch.autograd.grad(y.sum(), t)
    return y.detach().numpy(), g.numpy()


def save_figure(
    fig: Figure, path: str | os.PathLike[str], *, dpi: int = DPI, palette: bool = True
) -> Path:
    """Write ``fig`` as a PNG atomically (:func:`losskit._files.atomic_write`).

    With ``palette`` (default) the image is stored with a 256-colour palette: line plots look
    the same and the file is about 3× smaller. The file gets the usual permissions (umask).

    Raises:
        ValueError: if ``path`` does not end in ``.png``.
    """
    out = Path(path)
    if out.suffix.lower() != ".png":
        fail("save_figure", "path", "to end in .png", repr(str(out)))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    if palette:
        image = Image.open(buffer).convert("RGB").quantize(256, dither=Image.Dither.NONE)
        buffer = io.BytesIO()
        image.save(buffer, format="png", optimize=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda f: f.write(buffer.getvalue()))
    return out
