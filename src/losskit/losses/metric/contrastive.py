"""Contrastive (InfoNCE-family) losses: InfoNCE with explicit or in-batch negatives, NT-Xent.

Both are a cross-entropy over cosine similarities divided by a temperature ``τ``. Embeddings are
L2-normalised and the logits and their log-softmax are computed in float32 or wider, so fp16 and
bf16 inputs stay finite for small ``τ``; the result has the input's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import (
    check_bool,
    check_floating,
    check_ndim,
    check_number,
    check_same_shape,
    check_shape,
)
from losskit._reduce import Reduction, check_reduction, reduce, upcast
from losskit._scaled import l2_normalize
from losskit.distributed import all_gather
from losskit.registry import register

__all__ = ["InfoNCELoss", "NTXentLoss", "info_nce", "nt_xent"]


def _check_temperature(fn: str, temperature: object) -> float:
    return check_number(fn, "temperature", temperature, low=0.0, low_open=True)


def _unit(x: Tensor) -> Tensor:
    """``x`` in the compute dtype, L2-normalised along the last dimension."""
    return l2_normalize(upcast(x), dim=-1)


def info_nce(
    query: Tensor,
    positive_key: Tensor,
    negative_keys: Tensor | None = None,
    temperature: float = 0.07,
    *,
    reduction: Reduction = "mean",
    gather_distributed: bool = False,
) -> Tensor:
    """InfoNCE: classify each query's positive key among negatives by cosine similarity.

    ``L_i = -log( exp(s(q_i, k_i⁺)/τ) / (exp(s(q_i, k_i⁺)/τ) + Σ_k exp(s(q_i, k_k⁻)/τ)) )`` with
    ``s`` the cosine similarity. The negatives are

    - ``negative_keys`` of shape ``(K, D)``: shared by every query;
    - ``negative_keys`` of shape ``(B, K, D)``: one set per query;
    - ``None``: in-batch, the other queries' positive keys ``k_j⁺`` (``j ≠ i``), i.e. the
      cross-entropy of the ``(B, B)`` similarity matrix with targets on the diagonal.

    Args:
        query (Tensor[B, D]): query embeddings.
        positive_key (Tensor[B, D]): each query's positive key.
        negative_keys (Tensor[K, D] | Tensor[B, K, D], optional): negatives, see above.
        temperature: ``τ > 0``.
        reduction: ``"mean"`` (over queries), ``"sum"`` or ``"none"``.
        gather_distributed: compute the loss of the global batch on every rank: the queries,
            positive keys and negatives of every rank, in rank order (so the in-batch
            negatives are the global batch's); a no-op without a process group.

    Returns:
        Tensor: the reduced loss, or ``Tensor[B]`` with ``"none"``; dtype of ``query``.

    Raises:
        TypeError: an input is not floating point.
        ValueError: ``query`` not 2-D, ``positive_key`` not of its shape, ``negative_keys`` not
            ``(K, D)`` / ``(B, K, D)``, ``temperature <= 0``, bad ``reduction``.

    Reference:
        van den Oord, Li, Vinyals, "Representation Learning with Contrastive Predictive Coding",
        2018.

    Example:
        >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> info_nce(q, q, temperature=1.0, reduction="none")
        tensor([0.3133, 0.3133])
    """
    fn = "info_nce"
    query = check_ndim(fn, "query", check_floating(fn, "query", query), 2, "(B, D)")
    check_same_shape(
        fn, "positive_key", check_floating(fn, "positive_key", positive_key), "query", query
    )
    t = _check_temperature(fn, temperature)
    check_reduction(fn, reduction)
    if check_bool(fn, "gather_distributed", gather_distributed):
        query, positive_key = all_gather(query), all_gather(positive_key)
        negative_keys = None if negative_keys is None else all_gather(negative_keys)
    batch, dim = query.shape
    q, k = _unit(query), _unit(positive_key)
    if negative_keys is None:
        logits = q @ k.T
        target = torch.arange(batch, device=query.device)
    else:
        neg = check_floating(fn, "negative_keys", negative_keys)
        check_ndim(fn, "negative_keys", neg, (2, 3), "(K, D) or (B, K, D)")
        want: tuple[int | None, ...] = (None, dim) if neg.dim() == 2 else (batch, None, dim)
        check_shape(fn, "negative_keys", neg, want, f"matching query {(batch, dim)}")
        n = _unit(neg)
        negatives = q @ n.T if n.dim() == 2 else torch.bmm(n, q.unsqueeze(2)).squeeze(2)
        logits = torch.cat([(q * k).sum(dim=1, keepdim=True), negatives], dim=1)
        target = torch.zeros(batch, dtype=torch.long, device=query.device)
    loss = F.cross_entropy(logits / t, target, reduction="none")
    return reduce(loss, reduction, fn=fn, dtype=query.dtype)


def nt_xent(
    z_i: Tensor,
    z_j: Tensor,
    temperature: float = 0.5,
    *,
    reduction: Reduction = "mean",
    gather_distributed: bool = False,
) -> Tensor:
    """NT-Xent (SimCLR): each of 2N views must pick out its partner among the other 2N - 1.

    With ``z = normalize([z_i; z_j])`` (``2N`` rows) and ``s_ab = z_a·z_b / τ``,
    ``L_a = -log( exp(s_{a,a⁺}) / Σ_{b ≠ a} exp(s_ab) )`` where ``a⁺`` is the other view of the
    same sample (``a ± N``); the self-similarity ``s_aa`` is masked out.

    Args:
        z_i (Tensor[N, D]): first views' embeddings.
        z_j (Tensor[N, D]): second views' embeddings, row ``n`` pairing with ``z_i[n]``.
        temperature: ``τ > 0``.
        reduction: ``"mean"`` (over the ``2N`` views), ``"sum"`` or ``"none"``.
        gather_distributed: compute the loss of the global batch on every rank (``z_i`` and
            ``z_j`` of every rank, in rank order); a no-op without a process group.

    Returns:
        Tensor: the reduced loss, or ``Tensor[2N]`` (``z_i``'s rows, then ``z_j``'s) with
        ``"none"``; dtype of ``z_i``.

    Raises:
        TypeError: an input is not floating point.
        ValueError: ``z_i`` not 2-D, ``z_j`` not of its shape, ``temperature <= 0``, bad
            ``reduction``.

    Reference:
        Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
        Representations", ICML 2020.

    Example:
        >>> z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> nt_xent(z, z, temperature=1.0)
        tensor(0.5514)
    """
    fn = "nt_xent"
    z_i = check_ndim(fn, "z_i", check_floating(fn, "z_i", z_i), 2, "(N, D)")
    check_same_shape(fn, "z_j", check_floating(fn, "z_j", z_j), "z_i", z_i)
    t = _check_temperature(fn, temperature)
    check_reduction(fn, reduction)
    if check_bool(fn, "gather_distributed", gather_distributed):
        z_i, z_j = all_gather(z_i), all_gather(z_j)
    n = z_i.shape[0]
    z = _unit(torch.cat([z_i, z_j], dim=0))
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = (z @ z.T / t).masked_fill(eye, -torch.inf)
    partner = torch.arange(2 * n, device=z.device).roll(n)
    loss = F.cross_entropy(logits, partner, reduction="none")
    return reduce(loss, reduction, fn=fn, dtype=z_i.dtype)


@register(info_nce)
class InfoNCELoss(nn.Module):
    """InfoNCE with explicit or in-batch negatives (module form of :func:`info_nce`).

    Args:
        temperature: ``τ > 0``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        gather_distributed: the loss of the global batch (see the function).

    Example:
        >>> loss = InfoNCELoss(temperature=0.1)
        >>> q = torch.eye(3)
        >>> float(loss(q, q)) < 1e-3
        True
    """

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        reduction: Reduction = "mean",
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        self.gather_distributed = check_bool(
            type(self).__name__, "gather_distributed", gather_distributed
        )
        self.temperature = _check_temperature(type(self).__name__, temperature)
        self.reduction: Reduction = check_reduction(type(self).__name__, reduction)

    def forward(
        self, query: Tensor, positive_key: Tensor, negative_keys: Tensor | None = None
    ) -> Tensor:
        return info_nce(
            query,
            positive_key,
            negative_keys,
            self.temperature,
            reduction=self.reduction,
            gather_distributed=self.gather_distributed,
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, reduction={self.reduction!r}, "
            f"gather_distributed={self.gather_distributed}"
        )


@register(nt_xent)
class NTXentLoss(nn.Module):
    """NT-Xent, the SimCLR loss (module form of :func:`nt_xent`).

    Args:
        temperature: ``τ > 0``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        gather_distributed: the loss of the global batch (see the function).

    Example:
        >>> loss = NTXentLoss(temperature=0.5)
        >>> z = torch.eye(4)
        >>> round(float(loss(z, z)), 4)
        0.5944
    """

    def __init__(
        self,
        *,
        temperature: float = 0.5,
        reduction: Reduction = "mean",
        gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        self.gather_distributed = check_bool(
            type(self).__name__, "gather_distributed", gather_distributed
        )
        self.temperature = _check_temperature(type(self).__name__, temperature)
        self.reduction: Reduction = check_reduction(type(self).__name__, reduction)

    def forward(self, z_i: Tensor, z_j: Tensor) -> Tensor:
        return nt_xent(
            z_i,
            z_j,
            self.temperature,
            reduction=self.reduction,
            gather_distributed=self.gather_distributed,
        )

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, reduction={self.reduction!r}, "
            f"gather_distributed={self.gather_distributed}"
        )
