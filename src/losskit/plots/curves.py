"""Loss and gradient curves of the library's losses (gradients by autograd, never by formula)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

import losskit.functional as LF
from losskit._checks import check_int, check_number, fail
from losskit.plots._common import log_axis, new_figure, series_colours, style_axes, value_and_grad

__all__ = [
    "classification_figure",
    "focal_figure",
    "proxy_contributions",
    "proxy_figure",
    "regression_figure",
]

Curve = Callable[[Tensor], Tensor]


def _regression_curves(delta: float) -> dict[str, Curve]:
    """Per-element loss of a prediction error ``e`` (prediction ``e``, target 0)."""
    return {
        "MSE": lambda e: LF.mse(e, torch.zeros_like(e), reduction="none"),
        "MAE": lambda e: LF.mae(e, torch.zeros_like(e), reduction="none"),
        f"Huber (δ={delta:g})": lambda e: LF.huber(
            e, torch.zeros_like(e), delta=delta, reduction="none"
        ),
        "Log-Cosh": lambda e: LF.log_cosh(e, torch.zeros_like(e), reduction="none"),
    }


def regression_figure(*, delta: float = 1.0, limit: float = 5.0, points: int = 401) -> Figure:
    """MSE, MAE, Huber and Log-Cosh and their gradients against the prediction error.

    Two panels (loss, gradient), four lines each, from :mod:`losskit.functional`.

    Args:
        delta (float): Huber's ``delta``.
        limit (float): the error axis spans ``[-limit, limit]``.
        points (int): number of sample points.

    Returns:
        Figure: the matplotlib figure (1000×400 px at 100 dpi).
    """
    delta = check_number("regression_figure", "delta", delta, low=0.0, low_open=True)
    limit = check_number("regression_figure", "limit", limit, low=0.0, low_open=True)
    check_int("regression_figure", "points", points, low=2)
    errors = np.linspace(-limit, limit, points)
    fig, (ax_loss, ax_grad) = new_figure(2, (10, 4))
    for label, fn in _regression_curves(delta).items():
        value, grad = value_and_grad(fn, errors)
        ax_loss.plot(errors, value, label=label, linewidth=2)
        ax_grad.plot(errors, grad, label=label, linewidth=2)
    ax_loss.set_ylim(0, min(10.0, limit**2))
    style_axes(ax_loss, "Regression losses", "prediction error ŷ − y", "loss")
    style_axes(ax_grad, "Their gradients (autograd)", "prediction error ŷ − y", "∂loss / ∂ŷ")
    return fig


def _focal_of_logit(gamma: float) -> Curve:
    """Focal loss of a two-class sample whose true-class logit margin is ``z`` (p_t = σ(z))."""

    def curve(z: Tensor) -> Tensor:
        logits = torch.stack([z, torch.zeros_like(z)], dim=-1)
        targets = torch.zeros(z.shape[0], dtype=torch.long)
        return LF.focal(logits, targets, gamma=gamma, reduction="none")

    return curve


def focal_figure(
    *,
    gammas: Sequence[float] = (0.0, 0.5, 1.0, 2.0, 5.0),
    points: int = 199,
) -> Figure:
    """The guide's focal-loss analysis, three panels against ``p_t``.

    1. loss ``FL(p_t)`` for each ``gamma`` (``gamma = 0`` is cross-entropy);
    2. ``FL / CE`` on a log scale (how much an easy sample is down-weighted), ``gamma > 0``;
    3. gradient ratio ``|∂FL/∂z| / |∂CE/∂z|`` with respect to the logit, ``gamma ≥ 1``.

    Every value is :func:`losskit.functional.focal` of two-class logits ``[z, 0]`` with target
    0, so ``p_t = σ(z)``; gradients by autograd.

    Args:
        gammas (Sequence[float]): focusing parameters to draw.
        points (int): number of ``p_t`` sample points in ``[0.01, 0.99]``.

    Returns:
        Figure: the matplotlib figure (1500×450 px at 100 dpi).
    """
    gs = [check_number("focal_figure", "gammas", g, low=0.0) for g in gammas]
    check_int("focal_figure", "points", points, low=2)
    p_t = np.linspace(0.01, 0.99, points)
    z = np.log(p_t) - np.log1p(-p_t)
    ce, ce_grad = value_and_grad(_focal_of_logit(0.0), z)
    fig, (ax_loss, ax_ratio, ax_grad) = new_figure(3, (15, 4.5))
    colour = series_colours(gs)  # one γ, one colour, in every panel
    for g in gs:
        fl, fl_grad = value_and_grad(_focal_of_logit(g), z)
        label = "CE (γ=0)" if g == 0 else f"FL (γ={g:g})"
        ax_loss.plot(p_t, fl, label=label, linewidth=2, color=colour[g])
        if g > 0:
            ax_ratio.plot(p_t, fl / ce, label=f"γ={g:g}", linewidth=2, color=colour[g])
        if g >= 1:
            ratio = np.abs(fl_grad) / np.abs(ce_grad)
            ax_grad.plot(p_t, ratio, label=f"γ={g:g}", linewidth=2, color=colour[g])
    ax_loss.set_ylim(0, 5)
    log_axis(ax_ratio)
    style_axes(
        ax_loss, "Focal loss vs cross-entropy", "p_t (probability of the true class)", "loss"
    )
    style_axes(ax_ratio, "Down-weighting FL / CE = (1 − p_t)^γ", "p_t", "FL / CE (log scale)")
    style_axes(ax_grad, "Gradient ratio", "p_t", "|∂FL/∂z| / |∂CE/∂z|")
    return fig


def classification_figure(
    *,
    gamma: float = 2.0,
    epsilon: float = 0.1,
    limit: float = 6.0,
    points: int = 241,
) -> Figure:
    """Cross-entropy, focal loss and label smoothing against the logit margin.

    A two-class sample with logits ``[m, 0]`` and target 0: the margin ``m`` is the true-class
    logit minus the other one (``m > 0``: correct). Two panels: the loss and its derivative
    ``∂L/∂m`` (autograd). Label smoothing's gradient crosses zero at a finite margin — it stops
    pushing logits apart — while CE and focal loss keep pushing (ever more weakly).

    Args:
        gamma (float): focal loss's ``gamma``.
        epsilon (float): label smoothing's ``epsilon``.
        limit (float): the margin axis spans ``[-limit, limit]``.
        points (int): number of sample points.

    Returns:
        Figure: the matplotlib figure (1000×400 px at 100 dpi).
    """
    fn = "classification_figure"
    gamma = check_number(fn, "gamma", gamma, low=0.0)
    epsilon = check_number(fn, "epsilon", epsilon, low=0.0, high=1.0)
    limit = check_number(fn, "limit", limit, low=0.0, low_open=True)
    check_int(fn, "points", points, low=2)

    def two_class(loss: Callable[[Tensor, Tensor], Tensor]) -> Curve:
        def curve(m: Tensor) -> Tensor:
            logits = torch.stack([m, torch.zeros_like(m)], dim=-1)
            return loss(logits, torch.zeros(m.shape[0], dtype=torch.long))

        return curve

    curves: dict[str, Curve] = {
        "cross-entropy": two_class(lambda x, t: LF.cross_entropy(x, t, reduction="none")),
        f"focal (γ={gamma:g})": two_class(
            lambda x, t: LF.focal(x, t, gamma=gamma, reduction="none")
        ),
        f"label smoothing (ε={epsilon:g})": two_class(
            lambda x, t: LF.label_smoothing_cross_entropy(x, t, epsilon=epsilon, reduction="none")
        ),
    }
    margins = np.linspace(-limit, limit, points)
    fig, (ax_loss, ax_grad) = new_figure(2, (10, 4))
    for label, curve in curves.items():
        value, grad = value_and_grad(curve, margins)
        ax_loss.plot(margins, value, label=label, linewidth=2)
        ax_grad.plot(margins, grad, label=label, linewidth=2)
    ax_grad.axhline(0.0, color="black", linewidth=0.8)
    style_axes(ax_loss, "Classification losses", "margin m = z_true − z_other", "loss")
    style_axes(ax_grad, "Their gradients (autograd)", "margin m", "∂loss / ∂m")
    return fig


def proxy_contributions(
    similarity: Sequence[float] | np.ndarray,
    *,
    positive: bool,
    alpha: float = 32.0,
    delta: float = 0.1,
    gamma: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One pair's Proxy-Anchor term and its derivative with respect to the cosine ``s``.

    The pair is the only one in its batch: for a positive pair an embedding and its class's
    proxy (``C = 1``); for a negative pair an embedding of class 1 at cosine ``s`` to proxy 0
    and orthogonal to its own proxy 1, where the term is isolated as ``C · (L − L_own)`` with
    ``L_own`` the loss of the embedding with its own proxy alone (a constant in ``s``).
    Embeddings are built as ``(s, √(1 − s²), 0)`` so the cosine is exactly ``s``; values are
    :func:`losskit.functional.focal_proxy_anchor` (``gamma = 0`` is
    :func:`~losskit.functional.proxy_anchor` exactly), derivatives by autograd through the
    normalisation inside the loss.

    Args:
        similarity (array of float): cosines in ``(-1, 1)``.
        positive (bool): a positive (same class) or a negative pair.
        alpha, delta (float): Proxy-Anchor's scale and margin.
        gamma (float): focal exponent of the pair's weight (``pos_gamma`` or ``neg_gamma``).

    Returns:
        tuple[ndarray, ndarray]: the term and ``∂term/∂s`` at each cosine.
    """
    fn = "proxy_contributions"
    alpha = check_number(fn, "alpha", alpha, low=0.0, low_open=True)
    delta = check_number(fn, "delta", delta)
    gamma = check_number(fn, "gamma", gamma, low=0.0)
    s_values = np.asarray(similarity, dtype=np.float64)
    if s_values.size and not ((s_values > -1) & (s_values < 1)).all():
        fail(fn, "similarity", "in (-1, 1)", f"values in [{s_values.min()}, {s_values.max()}]")
    e1, e3 = [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]

    def loss(x: Tensor, labels: list[int], proxies: list[list[float]]) -> Tensor:
        return LF.focal_proxy_anchor(
            x.unsqueeze(0),
            torch.tensor(labels),
            torch.tensor(proxies, dtype=torch.float64),
            alpha=alpha,
            delta=delta,
            pos_gamma=gamma,
            neg_gamma=gamma,
        )

    def term(s: Tensor) -> Tensor:
        out = []
        for si in s:  # one batch per point: pairs in one batch would interact in the sums
            x = torch.stack([si, torch.sqrt(1 - si * si), torch.zeros_like(si)])
            if positive:
                out.append(loss(x, [0], [e1]))
            else:
                out.append(2 * (loss(x, [1], [e1, e3]) - loss(x, [0], [e3])))
        return torch.stack(out)

    return value_and_grad(term, s_values)


def proxy_figure(
    *, alpha: float = 32.0, delta: float = 0.1, gamma: float = 2.0, points: int = 121
) -> Figure:
    """Proxy-Anchor vs its focal-style variant: per-pair term and gradient against cosine.

    Four panels: positive pairs (term, gradient) and negative pairs (term, gradient), two lines
    each (``proxy_anchor``, ``focal_proxy_anchor`` with ``pos_gamma = neg_gamma = gamma``). See
    :func:`proxy_contributions` for how a single pair's term is read off the library's loss.

    Args:
        alpha, delta (float): scale and margin.
        gamma (float): the focal-style exponent.
        points (int): number of cosine sample points in ``[-0.99, 0.99]``.

    Returns:
        Figure: the matplotlib figure (1000×750 px at 100 dpi).
    """
    check_int("proxy_figure", "points", points, low=2)
    s = np.linspace(-0.99, 0.99, points)
    fig, axes = new_figure(2, (10, 7.5), nrows=2)
    variants = {"ProxyAnchor": 0.0, f"focal-style (γ={gamma:g})": gamma}
    for row, positive in enumerate((True, False)):
        ax_term, ax_grad = axes[2 * row], axes[2 * row + 1]
        for label, g in variants.items():
            value, grad = proxy_contributions(
                s, positive=positive, alpha=alpha, delta=delta, gamma=g
            )
            ax_term.plot(s, value, label=label, linewidth=2)
            ax_grad.plot(s, grad, label=label, linewidth=2)
        kind = (
            "Positive pair (x, its class's proxy)" if positive else "Negative pair (x, other proxy)"
        )
        margin = delta if positive else -delta
        for ax in (ax_term, ax_grad):
            ax.axvline(margin, color="gray", linestyle=":", linewidth=1)
        ax_term.set_ylim(1e-6, 1e2)
        log_axis(ax_term)  # shows how far the easy pairs' terms are pushed down
        style_axes(ax_term, kind, "cosine similarity s", "contribution (log scale)")
        style_axes(ax_grad, f"{kind}: gradient", "cosine similarity s", "∂contribution / ∂s")
    fig.suptitle(f"Proxy-Anchor per-pair terms (α={alpha:g}, δ={delta:g}; dotted: s = ±δ)")
    return fig
