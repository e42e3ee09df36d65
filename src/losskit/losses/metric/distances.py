"""Pairwise distances and similarities between embeddings, safe where two embeddings coincide.

The Euclidean matrix is computed from Gram products (one matrix multiply, as FaceNet-style
miners do) rather than from a ``(B, B, D)`` difference tensor. Its square root is taken with
:func:`safe_sqrt`, whose gradient is ``0`` (a subgradient) at a zero distance instead of the
``inf`` / ``NaN`` that ``sqrt'(0)`` would give: coincident embeddings, and every embedding's
distance to itself on the diagonal, keep finite gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

from losskit._checks import check_floating, check_ndim, fail, shape_str
from losskit._reduce import upcast
from losskit._scaled import l2_normalize, pow2_scale

__all__ = [
    "pairwise_cosine_distance",
    "pairwise_cosine_similarity",
    "pairwise_euclidean",
    "safe_sqrt",
]


def safe_sqrt(x: Tensor) -> Tensor:
    """Square root whose gradient is ``0`` where ``x <= 0`` (never ``inf`` or ``NaN``).

    ``sqrt(x)`` for ``x > 0`` and ``0`` elsewhere; the value under the root is replaced by ``1``
    where ``x <= 0`` before the root is taken, so no infinite derivative enters the graph.

    Args:
        x (Tensor[*]): squared distances (small negative round-off is treated as ``0``).

    Returns:
        Tensor[*]: ``sqrt(max(x, 0))``.

    Example:
        >>> x = torch.tensor([0.0, 4.0], requires_grad=True)
        >>> y = safe_sqrt(x)
        >>> y.sum().backward()
        >>> y.detach(), x.grad
        (tensor([0., 2.]), tensor([0.0000, 0.2500]))
    """
    positive = x > 0
    root = torch.where(positive, x, torch.ones_like(x)).sqrt()
    return torch.where(positive, root, torch.zeros_like(x))


def _check_pair(fn: str, x: object, y: object | None) -> tuple[Tensor, Tensor | None]:
    xt = check_ndim(fn, "x", check_floating(fn, "x", x), 2, "(N, D)")
    if y is None:
        return xt, None
    yt = check_ndim(fn, "y", check_floating(fn, "y", y), 2, "(M, D)")
    if yt.shape[1] != xt.shape[1]:
        fail(fn, "y", f"of shape (M, {xt.shape[1]}) matching `x`", shape_str(yt.shape))
    return xt, yt


def _cosine(fn: str, x: Tensor, y: Tensor | None, eps: float) -> Tensor:
    x, y = _check_pair(fn, x, y)
    xn = l2_normalize(upcast(x), dim=1, eps=eps)
    yn = xn if y is None else l2_normalize(upcast(y), dim=1, eps=eps)
    return (xn @ yn.T).to(x.dtype)


def pairwise_euclidean(x: Tensor, y: Tensor | None = None, *, squared: bool = False) -> Tensor:
    """Pairwise Euclidean distances between the rows of ``x`` and ``y``.

    ``D[i, j] = ||x_i - y_j||₂`` (or its square), computed as
    ``||x_i||² + ||y_j||² - 2·x_i·y_j`` clamped at ``0``, on the rows divided by a power of two
    near their largest magnitude (and scaled back), so distances that fit the dtype stay finite.
    When ``y`` is omitted the distances are among the rows of ``x`` and the diagonal is exactly
    ``0``. The root is :func:`safe_sqrt`, so coincident rows give a zero gradient rather than
    ``NaN``.

    Args:
        x (Tensor[N, D]): embeddings.
        y (Tensor[M, D], optional): other embeddings; default ``x`` itself.
        squared: return squared distances.

    Returns:
        Tensor[N, M]: the distance matrix, in the dtype of ``x`` (computed in float32 or wider).

    Raises:
        TypeError: ``x`` or ``y`` is not a floating-point tensor.
        ValueError: ``x`` or ``y`` is not 2-D, or their sizes ``D`` differ.

    Example:
        >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
        >>> pairwise_euclidean(x)
        tensor([[0., 5.],
                [5., 0.]])
    """
    x, y = _check_pair("pairwise_euclidean", x, y)
    a = upcast(x)
    b = a if y is None else upcast(y)
    # One power-of-two scale for both sets (exact), so the squares cannot overflow.
    s = pow2_scale(a if y is None else torch.cat([a, b.to(a.dtype)]))
    a = a / s
    b = a if y is None else b / s
    a_sq = a.pow(2).sum(dim=1, keepdim=True)
    b_sq = a_sq.T if y is None else b.pow(2).sum(dim=1).unsqueeze(0)
    sq = torch.addmm(b_sq, a, b.T, alpha=-2.0).add_(a_sq).clamp_min(0.0)
    if y is None:
        sq.diagonal().zero_()  # exact zeros (no round-off); no gradient flows through them
    out = sq * s * s if squared else safe_sqrt(sq) * s  # s·s: no overflow of s² alone
    return out.to(x.dtype)


def pairwise_cosine_similarity(x: Tensor, y: Tensor | None = None, *, eps: float = 1e-8) -> Tensor:
    """Pairwise cosine similarities between the rows of ``x`` and ``y``.

    ``S[i, j] = x_i·y_j / (max(||x_i||, eps)·max(||y_j||, eps))``; a zero row has similarity
    ``0`` to everything, with a finite gradient.

    Args:
        x (Tensor[N, D]): embeddings.
        y (Tensor[M, D], optional): other embeddings; default ``x`` itself.
        eps: lower bound on the norms.

    Returns:
        Tensor[N, M]: similarities in ``[-1, 1]``.

    Raises:
        TypeError: ``x`` or ``y`` is not a floating-point tensor.
        ValueError: ``x`` or ``y`` is not 2-D, or their sizes ``D`` differ.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> pairwise_cosine_similarity(x, torch.tensor([[3.0, 0.0]]))
        tensor([[1.],
                [0.]])
    """
    return _cosine("pairwise_cosine_similarity", x, y, eps)


def pairwise_cosine_distance(x: Tensor, y: Tensor | None = None, *, eps: float = 1e-8) -> Tensor:
    """Pairwise cosine distances ``1 - S[i, j]`` (see :func:`pairwise_cosine_similarity`).

    Args:
        x (Tensor[N, D]): embeddings.
        y (Tensor[M, D], optional): other embeddings; default ``x`` itself.
        eps: lower bound on the norms.

    Returns:
        Tensor[N, M]: distances in ``[0, 2]``.

    Raises:
        TypeError: ``x`` or ``y`` is not a floating-point tensor.
        ValueError: ``x`` or ``y`` is not 2-D, or their sizes ``D`` differ.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
        >>> pairwise_cosine_distance(x)
        tensor([[0., 2.],
                [2., 0.]])
    """
    return 1.0 - _cosine("pairwise_cosine_distance", x, y, eps)
