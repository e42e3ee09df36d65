"""Figures that train small models: the loss landscape and the convergence comparison."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.func import functional_call

import losskit.functional as LF
from losskit._checks import check_choice, check_int, check_number
from losskit.plots._common import log_axis, new_figure, style_axes
from losskit.registry import build_loss

__all__ = [
    "LANDSCAPE_LOSSES",
    "convergence_curves",
    "convergence_figure",
    "filter_normalized_direction",
    "landscape_figure",
    "loss_landscape",
]

# Losses of (logits, targets) the landscape figure can draw.
LANDSCAPE_LOSSES: tuple[str, ...] = ("cross_entropy", "focal", "label_smoothing_cross_entropy")

LossFn = Callable[[Tensor, Tensor], Tensor]


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> dict[str, Tensor]:
    """A random direction in parameter space, normalised filter by filter (Li et al. 2018).

    Each weight tensor gets a Gaussian direction whose every filter (slice along dim 0) is
    rescaled to the norm of the matching filter of the weights, so the landscape is comparable
    across layers of different scale; 1-D parameters (biases, norm layers) get a zero direction.

    Args:
        model (nn.Module): the model whose ``named_parameters()`` set the shapes.
        generator (torch.Generator): source of randomness (reproducible directions).

    Returns:
        dict[str, Tensor]: parameter name -> direction of the same shape.

    Reference:
        Li et al., "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018.
    """
    direction = {}
    for name, p in model.named_parameters():
        w = p.detach()
        if w.dim() <= 1:
            direction[name] = torch.zeros_like(w)
            continue
        d = torch.randn(w.shape, generator=generator, dtype=w.dtype)
        shape = (-1,) + (1,) * (w.dim() - 1)
        scale = torch.linalg.vector_norm(w.flatten(1), dim=1) / torch.linalg.vector_norm(
            d.flatten(1), dim=1
        ).clamp_min(torch.finfo(w.dtype).tiny)
        direction[name] = d * scale.view(shape)
    return direction


@torch.no_grad()
def loss_landscape(
    model: nn.Module,
    loss_fn: LossFn,
    inputs: Tensor,
    targets: Tensor,
    *,
    resolution: int = 31,
    span: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loss on a 2-D grid ``θ + a·d₁ + b·d₂`` around the parameters ``θ`` of ``model``.

    ``d₁, d₂`` come from :func:`filter_normalized_direction`; ``a, b`` span ``[-span, span]``.
    The model's own parameters are left untouched (``torch.func.functional_call``).

    Args:
        model (nn.Module): the model at ``θ``.
        loss_fn (callable): ``loss_fn(model(inputs), targets)`` -> scalar tensor.
        inputs (Tensor): the model's inputs.
        targets (Tensor): the loss's targets.
        resolution (int): grid points per axis.
        span (float): half-width of the grid in units of the directions.
        seed (int): seed of the two directions.

    Returns:
        tuple: ``(a (R,), b (R,), loss (R, R))`` with ``loss[j, i]`` at ``(a[i], b[j])``.
    """
    check_int("loss_landscape", "resolution", resolution, low=2)
    span = check_number("loss_landscape", "span", span, low=0.0, low_open=True)
    generator = torch.Generator().manual_seed(seed)
    d1 = filter_normalized_direction(model, generator)
    d2 = filter_normalized_direction(model, generator)
    theta = {n: p.detach() for n, p in model.named_parameters()}
    steps = np.linspace(-span, span, resolution)
    grid = np.empty((resolution, resolution))
    for j, b in enumerate(steps):
        for i, a in enumerate(steps):
            params = {n: theta[n] + a * d1[n] + b * d2[n] for n in theta}
            grid[j, i] = float(loss_fn(functional_call(model, params, (inputs,)), targets))
    return steps, steps.copy(), grid


def _digits(n: int | None = None) -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled handwritten digits: ``(N, 64)`` in [0, 1] and labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data[:n] / 16.0, dtype=torch.float32)
    return x, torch.tensor(data.target[:n], dtype=torch.long)


def landscape_figure(
    *,
    loss: str = "cross_entropy",
    resolution: int = 31,
    span: float = 1.0,
    train_steps: int = 150,
    samples: int | None = None,
    seed: int = 0,
) -> Figure:
    """2-D loss landscape of a small MLP trained on the digits data, around its trained weights.

    A 64-32-10 MLP is trained with Adam for ``train_steps`` full-batch steps with the chosen
    library loss, then the same loss is evaluated on a grid along two random filter-normalised
    directions (:func:`loss_landscape`). Filled contours on a log colour scale; the star marks
    the trained weights.

    Args:
        loss (str): one of :data:`LANDSCAPE_LOSSES`.
        resolution (int): grid points per axis.
        span (float): half-width of the grid.
        train_steps (int): training steps before the landscape is taken.
        samples (int, optional): use only the first ``samples`` digits (faster).
        seed (int): seed of the model, the training and the directions.

    Returns:
        Figure: the matplotlib figure (650×550 px at 100 dpi; 2 axes: plot and colour bar).
    """
    name = check_choice("landscape_figure", "loss", loss, LANDSCAPE_LOSSES)
    check_int("landscape_figure", "train_steps", train_steps, low=0)
    loss_fn = build_loss(name)
    x, y = _digits(samples)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(train_steps):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    a, b, grid = loss_landscape(model, loss_fn, x, y, resolution=resolution, span=span, seed=seed)
    fig, (ax,) = new_figure(1, (6.5, 5.5))
    low, high = max(float(grid.min()), 1e-6), max(float(grid.max()), 1e-6) * 1.0001
    levels = np.geomspace(low, max(high, low * 1.01), 25)
    filled = ax.contourf(
        a, b, np.clip(grid, low, None), levels=levels, norm=LogNorm(), cmap="viridis"
    )
    ax.contour(a, b, grid, levels=levels[::3], colors="white", linewidths=0.5, alpha=0.5)
    ax.plot(
        [0.0],
        [0.0],
        marker="*",
        markersize=14,
        color="red",
        linestyle="none",
        label=f"trained weights ({name} = {grid[len(b) // 2, len(a) // 2]:.3g})",
    )
    fig.colorbar(filled, ax=ax, label=f"{name} (log scale)", format="%.2g")
    ax.set_aspect("equal")
    style_axes(
        ax,
        f"Loss landscape: MLP on digits ({len(y)} samples)",
        "direction 1 (filter-normalised)",
        "direction 2 (filter-normalised)",
    )
    return fig


def _regression_data(
    n: int, outliers: float, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Linear data ``y = Xw + b + noise`` with a fraction of large positive outliers, and a
    clean test set of the same distribution."""
    dim = 10
    w = torch.randn(dim, 1, generator=generator)
    x = torch.randn(n, dim, generator=generator)
    y = x @ w + 0.5 + 0.1 * torch.randn(n, 1, generator=generator)
    hit = torch.rand(n, generator=generator) < outliers
    y[hit] += 10.0 + 20.0 * torch.rand(int(hit.sum()), 1, generator=generator)
    x_test = torch.randn(n // 2, dim, generator=generator)
    return x, y, x_test, x_test @ w + 0.5


def convergence_curves(
    losses: Sequence[str] = ("mse", "mae", "huber"),
    *,
    epochs: int = 200,
    lr: float = 0.05,
    outliers: float = 0.1,
    samples: int = 1000,
    seed: int = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train the same linear model from the same start with each loss (full-batch SGD).

    Args:
        losses (Sequence[str]): registry names of regression losses ``(input, target)``.
        epochs (int): SGD steps.
        lr (float): learning rate.
        outliers (float): fraction of training targets shifted up by 10–30.
        samples (int): training samples (the clean test set has half as many).
        seed (int): seed of the data and of the initial weights.

    Returns:
        dict: loss name -> ``(training loss before each step (epochs,), clean test RMSE after
        each step (epochs,))``.
    """
    fn = "convergence_curves"
    check_int(fn, "epochs", epochs, low=1)
    check_int(fn, "samples", samples, low=2)
    lr = check_number(fn, "lr", lr, low=0.0, low_open=True)
    outliers = check_number(fn, "outliers", outliers, low=0.0, high=1.0)
    x, y, x_test, y_test = _regression_data(samples, outliers, torch.Generator().manual_seed(seed))
    curves = {}
    for name in losses:
        loss_fn = build_loss(name)
        torch.manual_seed(seed)
        model = nn.Linear(x.shape[1], 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        train, test = np.empty(epochs), np.empty(epochs)
        for epoch in range(epochs):
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            train[epoch] = float(loss.detach())
            with torch.no_grad():
                test[epoch] = float(LF.mse(model(x_test), y_test).sqrt())
        curves[name] = (train, test)
    return curves


def convergence_figure(
    *,
    epochs: int = 200,
    lr: float = 0.05,
    outliers: float = 0.1,
    samples: int = 1000,
    seed: int = 0,
) -> Figure:
    """Convergence of MSE, MAE and Huber on the same data (the guide's comparison).

    Two panels on log scales: each loss's own training value per epoch, and the RMSE on clean
    test data (the common yardstick: losses of different kinds are not comparable in value).
    With outliers in the training targets, MSE converges fast but to a biased fit.

    Args:
        epochs, lr, outliers, samples, seed: as :func:`convergence_curves`.

    Returns:
        Figure: the matplotlib figure (1000×400 px at 100 dpi).
    """
    curves = convergence_curves(
        ("mse", "mae", "huber"),
        epochs=epochs,
        lr=lr,
        outliers=outliers,
        samples=samples,
        seed=seed,
    )
    labels = {"mse": "MSE", "mae": "MAE", "huber": "Huber (δ=1)"}
    fig, (ax_train, ax_test) = new_figure(2, (10, 4))
    steps = np.arange(1, epochs + 1)
    for name, (train, test) in curves.items():
        ax_train.plot(steps, train, label=labels[name], linewidth=2)
        ax_test.plot(steps, test, label=labels[name], linewidth=2)
    for ax in (ax_train, ax_test):
        log_axis(ax)
    style_axes(
        ax_train,
        f"Training loss ({outliers:.0%} outliers in the targets)",
        "epoch (full-batch SGD)",
        "loss (each its own, log scale)",
    )
    style_axes(ax_test, "Error on clean test data", "epoch", "test RMSE (log scale)")
    return fig
