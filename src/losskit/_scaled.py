"""Overflow-safe norms: divide by a power of two near the largest magnitude first.

Squares overflow long before the quantities built from them do: in float32 and bfloat16 (range
~3.4e38) ``‖x‖`` of a vector with entries ~1e20 is ~1e20, but its sum of squares is ~1e40 and
becomes ``inf``. Every helper here divides by ``s = 2^⌊log₂ max|x|⌋`` first, where the norm is
homogeneous (``‖x‖ = s·‖x / s‖``) or the result scale-invariant (``x / ‖x‖``). Dividing by a power
of two is exact, so wherever the unscaled computation neither overflows nor underflows the
results are bit for bit those of the unscaled formula; the cost is one max-abs and one divide.
The scale carries no gradient (it is piecewise constant).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["l2_normalize", "pow2_scale", "scaled_vector_norm"]


def pow2_scale(x: Tensor, dim: int | None = None) -> Tensor:
    """``2^⌊log₂ max|x|⌋`` along ``dim`` (kept as size 1; over all of ``x`` if ``None``).

    ``1`` where the max is ``0``, not finite, or taken over no elements. No gradient.

    Example:
        >>> pow2_scale(torch.tensor([[3.0, -40.0], [0.0, 0.0]]), dim=1)
        tensor([[32.],
                [ 1.]])
    """
    with torch.no_grad():
        size = x.numel() if dim is None else x.shape[dim]
        if size == 0:
            shape = [1] * x.dim() if dim is None else [*x.shape[:dim], 1, *x.shape[dim + 1 :]]
            return torch.ones(shape, dtype=x.dtype, device=x.device)
        peak = x.abs().amax() if dim is None else x.abs().amax(dim=dim, keepdim=True)
        ok = (peak > 0) & torch.isfinite(peak)
        power = torch.exp2(torch.floor(torch.log2(torch.where(ok, peak, 1.0))))
        return torch.where(ok, power, 1.0)


def scaled_vector_norm(x: Tensor, ord: float = 2.0, dim: int = -1) -> Tensor:
    """``torch.linalg.vector_norm(x, ord, dim)`` computed as ``s·‖x / s‖`` (:func:`pow2_scale`).

    Finite wherever the norm itself fits the dtype; the gradient at ``x = 0`` is ``0``.

    Example:
        >>> scaled_vector_norm(torch.tensor([[3e20, 4e20]]), dim=1)
        tensor([5.0000e+20])
    """
    s = pow2_scale(x, dim)
    return s.squeeze(dim) * torch.linalg.vector_norm(x / s, ord=ord, dim=dim)


def l2_normalize(x: Tensor, dim: int = -1, eps: float = 1e-12) -> Tensor:
    """``x / max(‖x‖₂, eps)`` along ``dim``, as ``F.normalize``, finite at any finite norm.

    Computed as ``y / max(‖y‖, eps / s)`` with ``y = x / s`` (:func:`pow2_scale`), which is the
    same quotient: equal to ``F.normalize`` bit for bit in its working range, and still a unit
    vector where ``‖x‖²`` overflows (bfloat16/float32 entries beyond ~1e19, float16 beyond ~256
    when computed in float16). A zero vector stays zero.

    Args:
        x (Tensor[*]): vectors along ``dim``.
        dim: the dimension normalised.
        eps: lower bound on the norm.

    Returns:
        Tensor[*]: ``x`` scaled to unit length (``x / eps`` if ``‖x‖ < eps``).

    Example:
        >>> l2_normalize(torch.tensor([[3e30, -4e30], [0.0, 0.0]]))
        tensor([[ 0.6000, -0.8000],
                [ 0.0000,  0.0000]])
    """
    s = pow2_scale(x, dim)
    y = x / s
    return y / torch.maximum(y.norm(2, dim, keepdim=True), eps / s)
