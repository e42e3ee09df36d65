"""Figures of a training run's folder: training curves and the test embeddings."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Literal

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, Colormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from losskit._checks import check_choice, check_int, fail
from losskit.plots._common import log_axis, new_figure, style_axes

__all__ = ["embeddings_figure", "load_embeddings", "read_metrics", "run_figure"]

Method = Literal["tsne", "pca"]


def _run_file(fn: str, run: str | os.PathLike[str], name: str) -> Path:
    """``run/name`` (``run`` may also be the file itself); a clear error when it is missing."""
    path = Path(run)
    target = path if path.is_file() else path / name
    if not target.is_file():
        fail(
            fn,
            "run",
            f"to be a run folder containing {name}",
            repr(str(path)),
            kind=FileNotFoundError,
        )
    return target


def read_metrics(run: str | os.PathLike[str]) -> list[dict[str, float]]:
    """The per-epoch records of a run's ``metrics.jsonl`` (one JSON object per line).

    Args:
        run (path): the run folder (or the ``metrics.jsonl`` file itself).

    Returns:
        list[dict]: the records in file order; blank lines are skipped.

    Raises:
        FileNotFoundError: if there is no ``metrics.jsonl``.
        ValueError: for a line that is not a JSON object with an ``epoch``, or an empty file.
    """
    path = _run_file("read_metrics", run, "metrics.jsonl")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            fail("read_metrics", f"line {number}", "to be a JSON object", f"{err.msg}")
        if not isinstance(record, dict) or "epoch" not in record:
            fail("read_metrics", f"line {number}", "to be a JSON object with an `epoch`", line[:60])
        records.append(record)
    if not records:
        fail("read_metrics", "metrics.jsonl", "to hold at least one epoch", "an empty file")
    return records


def _series(records: list[dict[str, float]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(epochs, values)`` of ``key`` over the records that have a finite value for it."""
    pairs = [
        (float(r["epoch"]), float(r[key]))
        for r in records
        if isinstance(r.get(key), (int, float)) and math.isfinite(float(r[key]))
    ]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def _wide_positive(series: list[np.ndarray]) -> bool:
    """Whether values are all positive and span more than a factor of 10 (then: log scale)."""
    values = np.concatenate(series)
    return bool(values.size) and bool((values > 0).all()) and values.max() > 10 * values.min()


def run_figure(run: str | os.PathLike[str]) -> Figure:
    """Training curves of a run, from its ``metrics.jsonl``.

    One panel per group present in the records: every ``Loss/*`` key (``Loss/Total``,
    ``Loss/CE``, ``Loss/Proxy``, ...), every ``Eval/*`` key, and ``lr``. Losses and the learning
    rate use a log scale when they are positive and span more than a factor of 10.

    Args:
        run (path): the run folder (or its ``metrics.jsonl``).

    Returns:
        Figure: the matplotlib figure (450 px wide per panel × 400 px at 100 dpi).

    Raises:
        FileNotFoundError: if there is no ``metrics.jsonl``.
        ValueError: for malformed lines, or no ``Loss/*`` values at all.
    """
    records = read_metrics(run)
    keys = sorted({k for r in records for k in r})
    groups = {
        "Losses": [k for k in keys if k.startswith("Loss/")],
        "Evaluation": [k for k in keys if k.startswith("Eval/")],
        "Learning rate": [k for k in keys if k == "lr"],
    }
    # Loss/Total first, then the parts
    groups["Losses"].sort(key=lambda k: (k != "Loss/Total", k))
    panels = {title: [k for k in ks if _series(records, k)[0].size] for title, ks in groups.items()}
    panels = {title: ks for title, ks in panels.items() if ks}
    if "Losses" not in panels:
        fail("run_figure", "metrics.jsonl", "to hold `Loss/*` values", f"keys {keys}")
    fig, axes = new_figure(len(panels), (4.5 * len(panels), 4))
    few = len(records) <= 30
    for ax, (title, ks) in zip(axes, panels.items()):
        for key in ks:
            epochs, values = _series(records, key)
            label = key.split("/", 1)[-1]
            ax.plot(
                epochs, values, label=label, linewidth=2, marker="o" if few else None, markersize=3
            )
        if title != "Evaluation" and _wide_positive([_series(records, k)[1] for k in ks]):
            log_axis(ax)
        ylabel = {"Losses": "loss (epoch mean)", "Evaluation": "metric", "Learning rate": "lr"}
        style_axes(ax, title, "epoch", ylabel[title], legend=title != "Learning rate")
    fig.suptitle(f"Run {Path(run).resolve().name}")
    return fig


def load_embeddings(
    run: str | os.PathLike[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``features (N, D)``, ``labels (N,)`` and ``proxies (C, D)`` or ``None`` of a run.

    Args:
        run (path): the run folder (or its ``embeddings.npz``).

    Raises:
        FileNotFoundError: if there is no ``embeddings.npz``.
        ValueError: for missing arrays or inconsistent shapes.
    """
    fn = "load_embeddings"
    path = _run_file(fn, run, "embeddings.npz")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for key in ("features", "labels"):
        if key not in arrays:
            fail(fn, "embeddings.npz", f"to hold an array `{key}`", f"arrays {sorted(arrays)}")
    features, labels = arrays["features"], arrays["labels"]
    proxies = arrays.get("proxies")
    if features.ndim != 2 or features.shape[0] < 2:
        fail(fn, "features", "of shape (N, D) with N >= 2", str(features.shape))
    if labels.shape != (features.shape[0],):
        fail(fn, "labels", f"of shape ({features.shape[0]},) matching features", str(labels.shape))
    if proxies is not None and (proxies.ndim != 2 or proxies.shape[1] != features.shape[1]):
        fail(
            fn,
            "proxies",
            f"of shape (C, {features.shape[1]}) matching features",
            str(proxies.shape),
        )
    return (
        features.astype(np.float64),
        labels,
        None if proxies is None else proxies.astype(np.float64),
    )


def _saved_labels(
    run: str | os.PathLike[str],
) -> tuple[str | None, list[str] | None, list[str] | None]:
    """``protocol``, test ``class_names`` (by label) and ``proxy_class_names`` (the training
    classes) saved with a run's embeddings; ``None`` for each one the file lacks."""
    path = _run_file("load_embeddings", run, "embeddings.npz")
    with np.load(path, allow_pickle=False) as data:
        saved = {k: data[k] for k in ("protocol", "class_names", "proxy_class_names") if k in data}
    protocol = str(saved["protocol"]) if "protocol" in saved else None
    names, proxy_names = (
        [str(n) for n in saved[k].reshape(-1)] if k in saved else None
        for k in ("class_names", "proxy_class_names")
    )
    return protocol or None, names, proxy_names


def _proxy_classes(
    num_proxies: int, protocol: str | None, classes: np.ndarray, proxy_names: list[str] | None
) -> np.ndarray | None:
    """The test class of each proxy, or ``None`` when the proxies stand for other classes.

    Retrieval runs test on unseen classes: their proxies belong to the training classes, even
    when both halves have as many classes. Several proxies per class are stored class-major.
    A file without ``protocol`` counts as classification when its labels are ``0..C-1``.
    """
    if protocol == "retrieval":
        return None
    if protocol == "classification" and proxy_names:
        return np.arange(num_proxies) // max(1, num_proxies // len(proxy_names))
    return np.arange(num_proxies) if np.array_equal(classes, np.arange(num_proxies)) else None


def _project(points: np.ndarray, method: Method, seed: int) -> np.ndarray:
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(points)
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (points.shape[0] - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        points
    )


def embeddings_figure(
    run: str | os.PathLike[str],
    *,
    method: Method = "tsne",
    max_points: int = 2000,
    normalize: bool = True,
    seed: int = 0,
) -> Figure:
    """2-D t-SNE or PCA of a run's test embeddings, coloured by class, proxies marked.

    Embeddings and proxies are L2-normalised first (the proxy losses compare cosines) unless
    ``normalize=False``, and projected together so the proxies land among their classes.
    The protocol and class names saved with the run (``embeddings.npz``) decide the rest: under
    ``classification`` each proxy takes its class's colour; under ``retrieval`` the test classes
    are unseen, so the proxies (of the training classes) are drawn apart in black, whatever the
    number of classes. The colour bar (up to 20 classes) shows the class names. For files without
    a saved protocol, proxies are coloured when the labels are exactly ``0..C-1``.

    Args:
        run (path): the run folder (or its ``embeddings.npz``).
        method (str): ``"tsne"`` or ``"pca"``.
        max_points (int): at most this many embeddings (a seeded random subset).
        normalize (bool): L2-normalise embeddings and proxies first.
        seed (int): seed of the subset and of the projection.

    Returns:
        Figure: the matplotlib figure (700×600 px at 100 dpi).
    """
    method = check_choice("embeddings_figure", "method", method, ("tsne", "pca"))  # type: ignore[assignment]
    check_int("embeddings_figure", "max_points", max_points, low=2)
    features, labels, proxies = load_embeddings(run)
    protocol, names, proxy_names = _saved_labels(run)
    if features.shape[0] > max_points:
        keep = np.sort(np.random.default_rng(seed).permutation(features.shape[0])[:max_points])
        features, labels = features[keep], labels[keep]
    points = features if proxies is None else np.concatenate([features, proxies])
    if normalize:
        points = points / np.clip(np.linalg.norm(points, axis=1, keepdims=True), 1e-12, None)
    xy = _project(points, method, seed)
    classes = np.unique(labels)
    k = len(classes)
    cmap = colormaps["tab10" if k <= 10 else "tab20" if k <= 20 else "turbo"].resampled(k)
    norm = BoundaryNorm(np.arange(k + 1) - 0.5, k)  # class i -> colour i, centred colour-bar ticks
    fig, (ax,) = new_figure(1, (7, 6))
    ax.scatter(
        xy[: len(labels), 0],
        xy[: len(labels), 1],
        c=np.searchsorted(classes, labels),
        cmap=cmap,
        norm=norm,
        s=float(np.clip(4000 / len(labels), 6, 20)),
        alpha=0.7,
        linewidths=0,
    )
    if proxies is not None:
        owner = _proxy_classes(len(proxies), protocol, classes, proxy_names)
        handle = _draw_proxies(ax, xy[len(labels) :], owner, cmap, classes, proxy_names)
    if k <= 20:
        colours = fig.colorbar(ax.collections[0], ax=ax, ticks=range(k))
        colours.ax.set_yticklabels(
            [names[c] if names and 0 <= c < len(names) else str(c) for c in classes]
        )
        colours.set_label("class")
    name = "t-SNE" if method == "tsne" else "PCA"
    what = "unseen classes" if protocol == "retrieval" else "classes"
    title = f"{name} of {len(labels)} test embeddings, {len(classes)} {what}"
    style_axes(ax, title, f"{name} 1", f"{name} 2", legend=False)
    if proxies is not None:
        ax.legend(handles=[handle], fontsize="small")
    return fig


def _draw_proxies(
    ax: Axes,
    xy: np.ndarray,
    owner: np.ndarray | None,
    cmap: Colormap,
    classes: np.ndarray,
    proxy_names: list[str] | None,
) -> Line2D:
    """Star markers for the proxies: their class's colour, or black when ``owner`` is ``None``
    (training classes the test set does not hold); returns the legend entry."""
    face = "black" if owner is None else _class_colours(cmap, classes, owner)
    ax.scatter(xy[:, 0], xy[:, 1], s=260, marker="*", c=face, edgecolors="black", linewidths=1.2)
    label = (
        f"proxies ({len(xy)})"
        if owner is not None
        else f"proxies of the {len(proxy_names or xy)} training classes"
    )
    return Line2D(
        [],
        [],
        marker="*",
        markersize=15,
        linestyle="none",
        markeredgecolor="black",
        markerfacecolor="white" if owner is not None else "black",
        label=label,
    )


def _class_colours(cmap: Colormap, classes: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """The colour of each owner class among the plotted ``classes``; grey where it is absent."""
    index = np.searchsorted(classes, owner).clip(0, len(classes) - 1)
    colours = cmap(index)
    colours[classes[index] != owner] = (0.6, 0.6, 0.6, 1.0)
    return np.asarray(colours)
