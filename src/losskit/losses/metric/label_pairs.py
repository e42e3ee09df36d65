"""Losses over every labelled pair of a batch: SupCon, Multi-Similarity, Circle; and the
cross-batch memory that feeds them pairs from past batches.

Each loss compares every anchor (a row of ``embeddings``) with every reference by cosine
similarity ``S[a, r]`` of the L2-normalised embeddings, computed in float32 or wider. Pairs of
the same label are positives, of different labels negatives, and an anchor is never paired with
itself. The references are the batch itself by default (each anchor's own column is left out),
or given explicitly (``reference``, ``reference_labels``, and ``self_index``: the column of each
anchor's own copy among the references, ``-1`` for none); :class:`CrossBatchMemory` uses the
latter to pair the batch with a memory of past embeddings.

Compared with pytorch-metric-learning (``SupConLoss``, ``MultiSimilarityLoss`` with
``MultiSimilarityMiner``, ``CircleLoss``, ``CrossBatchMemory``), with the same hyper-parameters
the values and gradients agree; the differences are in edge cases, and listed in each
docstring. ``gather_distributed=True`` pairs every rank's batch with every other's (see
:mod:`losskit.distributed`); it goes with the batch as references, not with ``reference``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import (
    check_bool,
    check_choice,
    check_floating,
    check_int,
    check_labels,
    check_ndim,
    check_number,
    check_shape,
    checks_enabled,
    fail,
    shape_str,
)
from losskit._reduce import Reduction, check_reduction, reduce, upcast
from losskit._scaled import l2_normalize
from losskit.distributed import all_gather
from losskit.losses.metric._chunked import log1p_sum_exp
from losskit.losses.metric.miners import check_embeddings_and_labels, multi_similarity_pairs
from losskit.registry import register

__all__ = [
    "CircleLoss",
    "CrossBatchMemory",
    "MultiSimilarityLoss",
    "SupConLoss",
    "circle",
    "multi_similarity",
    "supcon",
]

MS_MINING: tuple[str, ...] = ("none", "multi_similarity")


# --------------------------------------------------------------------------------------------
# Pairs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pairs:
    """Cosine similarities ``(B, M)`` of anchors and references, and the pair masks."""

    similarity: Tensor
    positive: Tensor
    negative: Tensor
    dtype: torch.dtype


def _references(
    fn: str, x: Tensor, reference: object, reference_labels: object, self_index: object
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Validated ``reference (M, D)``, ``reference_labels (M,)`` and ``self_index (B,)``."""
    r = check_ndim(fn, "reference", check_floating(fn, "reference", reference), 2, "(M, D)")
    if r.shape[1] != x.shape[1]:
        dim = x.shape[1]
        fail(
            fn,
            "reference",
            f"of shape (M, {dim}) matching embeddings (D={dim})",
            shape_str(r.shape),
        )
    if reference_labels is None:
        fail(fn, "reference_labels", "with `reference`", "None")
    ry = check_labels(fn, "reference_labels", reference_labels)
    check_shape(fn, "reference_labels", ry, (r.shape[0],), f"matching reference (M={r.shape[0]})")
    if self_index is None:
        return r, ry, None
    index = check_labels(fn, "self_index", self_index)
    check_shape(fn, "self_index", index, (x.shape[0],), f"matching embeddings (B={x.shape[0]})")
    if index.numel() and checks_enabled():
        low, high = torch.stack(torch.aminmax(index)).tolist()  # one host sync
        if low < -1 or high >= r.shape[0]:
            bad = low if low < -1 else high
            fail(fn, "self_index", f"in [-1, {r.shape[0] - 1}]", f"a value {bad}")
    return r, ry, index


def _pairs(
    fn: str,
    embeddings: object,
    labels: object,
    reference: object,
    reference_labels: object,
    self_index: object,
    gather: object,
) -> _Pairs:
    """The anchors' similarities to the references and the positive / negative pair masks."""
    x, y = check_embeddings_and_labels(fn, embeddings, labels)
    if check_bool(fn, "gather_distributed", gather):
        if reference is not None:
            fail(fn, "gather_distributed", "False with `reference` (gather those yourself)", True)
        x, y = all_gather(x), all_gather(y)
    xn = l2_normalize(upcast(x), dim=1)
    if reference is None:
        if reference_labels is not None or self_index is not None:
            fail(fn, "reference", "with `reference_labels` / `self_index`", "None")
        rn, ry = xn, y
        index: Tensor | None = torch.arange(x.shape[0], device=x.device)
    else:
        r, ry, index = _references(fn, x, reference, reference_labels, self_index)
        rn = l2_normalize(r.to(xn.dtype), dim=1)
    same = y.unsqueeze(1) == ry.to(y.device).unsqueeze(0)
    positive = same
    if index is not None:
        columns = torch.arange(rn.shape[0], device=x.device)
        positive = same & (index.to(x.device).unsqueeze(1) != columns)
    return _Pairs(xn @ rn.T, positive, ~same, x.dtype)


def _masked_logsumexp(z: Tensor, mask: Tensor) -> Tensor:
    """``logsumexp`` of ``z`` over ``mask`` per row; finite gradients for an empty row."""
    return torch.logsumexp(z.masked_fill(~mask, torch.finfo(z.dtype).min), dim=1)


# --------------------------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------------------------


def _check_temperature(fn: str, temperature: object) -> float:
    return check_number(fn, "temperature", temperature, low=0.0, low_open=True)


def supcon(
    embeddings: Tensor,
    labels: Tensor,
    temperature: float = 0.1,
    *,
    reference: Tensor | None = None,
    reference_labels: Tensor | None = None,
    self_index: Tensor | None = None,
    reduction: Reduction = "mean",
    gather_distributed: bool = False,
) -> Tensor:
    """Supervised contrastive loss (SupCon): each anchor's positives against all its pairs.

    With ``S`` the cosine similarities, ``P(a)`` the anchor's positives and ``A(a)`` all its
    pairs (positives and negatives, never itself):

    ``L_a = −1/|P(a)| Σ_{p∈P(a)} log( e^{S[a,p]/τ} / Σ_{r∈A(a)} e^{S[a,r]/τ} )``

    (the "L_out" form of Khosla et al.). ``"mean"`` averages over the anchors with at least one
    positive (``"none"``: ``Tensor[B]``, 0 for the others). With exactly one positive per
    anchor — two views of each sample — it is :func:`~losskit.functional.nt_xent`. Equals
    pytorch-metric-learning's ``SupConLoss(temperature)``, except that PML returns 0 for a
    batch without any negative pair, where this formula still applies.

    Args:
        embeddings (Tensor[B, D]): anchors (normalised inside).
        labels (Tensor[B]): integer class labels.
        temperature (float): ``τ > 0``.
        reference (Tensor[M, D], optional): the embeddings paired with the anchors (default: the
            anchors themselves, self-pairs left out).
        reference_labels (Tensor[M], optional): their labels (required with ``reference``).
        self_index (Tensor[B], optional): each anchor's own column in ``reference``, ``-1`` for
            none; that pair is left out.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        gather_distributed (bool): the loss of the global batch (every rank's rows, in rank
            order) on every rank; a no-op without a process group. Not with ``reference``.

    Returns:
        Tensor: the reduced loss, or ``Tensor[B]`` with ``"none"``; dtype of ``embeddings``.

    Raises:
        TypeError: non-floating embeddings, non-integer labels or ``self_index``.
        ValueError: wrong shapes, ``temperature`` ≤ 0, ``reference`` without its labels, a
            ``self_index`` outside ``[-1, M)``, an unknown ``reduction``.

    Reference:
        Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020.

    Example:
        >>> x = torch.eye(2).repeat(2, 1)  # one positive at cosine 1, two negatives at 0
        >>> supcon(x, torch.tensor([0, 1, 0, 1]), temperature=1.0)  # log(1 + 2/e)
        tensor(0.5514)
    """
    fn = "supcon"
    t = _check_temperature(fn, temperature)
    check_reduction(fn, reduction)
    pairs = _pairs(
        fn, embeddings, labels, reference, reference_labels, self_index, gather_distributed
    )
    logits = pairs.similarity / t
    log_prob = logits - _masked_logsumexp(logits, pairs.positive | pairs.negative).unsqueeze(1)
    count = pairs.positive.sum(dim=1)
    total = torch.where(pairs.positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    loss = -total / count.clamp_min(1)
    return reduce(loss, reduction, fn=fn, denominator=(count > 0).sum(), dtype=pairs.dtype)


def _check_ms(fn: str, alpha: object, beta: object, base: object) -> tuple[float, float, float]:
    return (
        check_number(fn, "alpha", alpha, low=0.0, low_open=True),
        check_number(fn, "beta", beta, low=0.0, low_open=True),
        check_number(fn, "base", base),
    )


def _check_epsilon(fn: str, epsilon: object) -> float:
    return check_number(fn, "epsilon", epsilon, low=0.0)


def multi_similarity(
    embeddings: Tensor,
    labels: Tensor,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    *,
    mining: str = "none",
    epsilon: float = 0.1,
    reference: Tensor | None = None,
    reference_labels: Tensor | None = None,
    self_index: Tensor | None = None,
    reduction: Reduction = "mean",
    gather_distributed: bool = False,
) -> Tensor:
    """Multi-Similarity loss: soft-weighted positive and negative pairs around a base similarity.

    With ``S`` the cosine similarities, ``P(a)`` / ``N(a)`` the anchor's positives / negatives
    and ``λ = base``:

    ``L_a = 1/α log(1 + Σ_{p∈P(a)} e^{−α(S[a,p] − λ)})
    + 1/β log(1 + Σ_{n∈N(a)} e^{β(S[a,n] − λ)})``

    computed as ``softplus(logsumexp(·))`` (finite for any ``α``, ``β``). With
    ``mining="multi_similarity"`` only the pairs kept by
    :func:`~losskit.functional.multi_similarity_pairs` (margin ``epsilon``) enter the sums, as in
    the paper. ``"mean"`` averages over all ``B`` anchors (an anchor without pairs adds 0), as
    pytorch-metric-learning's ``MultiSimilarityLoss(alpha, beta, base)`` (with
    ``MultiSimilarityMiner(epsilon)`` for the mining), which it equals.

    Args:
        embeddings (Tensor[B, D]): anchors (normalised inside).
        labels (Tensor[B]): integer class labels.
        alpha (float): ``α > 0``, the positive scale.
        beta (float): ``β > 0``, the negative scale.
        base (float): ``λ``, the similarity the pairs are weighed around.
        mining (str): ``"none"`` or ``"multi_similarity"``.
        epsilon (float): ``ε ≥ 0``, the mining margin.
        reference (Tensor[M, D], optional): the embeddings paired with the anchors (default: the
            anchors themselves, self-pairs left out).
        reference_labels (Tensor[M], optional): their labels (required with ``reference``).
        self_index (Tensor[B], optional): each anchor's own column in ``reference``, ``-1`` for
            none.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        gather_distributed (bool): the loss of the global batch (every rank's rows, in rank
            order) on every rank; a no-op without a process group. Not with ``reference``.

    Returns:
        Tensor: the reduced loss, or ``Tensor[B]`` with ``"none"``; dtype of ``embeddings``.

    Raises:
        TypeError: non-floating embeddings, non-integer labels or ``self_index``.
        ValueError: wrong shapes, ``alpha`` or ``beta`` ≤ 0, ``epsilon`` < 0, an unknown
            ``mining`` or ``reduction``, ``reference`` without its labels.

    Reference:
        Wang et al., "Multi-Similarity Loss with General Pair Weighting for Deep Metric
        Learning", CVPR 2019.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
        >>> multi_similarity(x, torch.tensor([0, 0, 1]), mining="multi_similarity").shape
        torch.Size([])
    """
    fn = "multi_similarity"
    a, b, lam = _check_ms(fn, alpha, beta, base)
    strategy = check_choice(fn, "mining", mining, MS_MINING)
    eps = _check_epsilon(fn, epsilon)
    check_reduction(fn, reduction)
    pairs = _pairs(
        fn, embeddings, labels, reference, reference_labels, self_index, gather_distributed
    )
    s, positive, negative = pairs.similarity, pairs.positive, pairs.negative
    if strategy == "multi_similarity":
        positive, negative = multi_similarity_pairs(s, positive, negative, eps)
    pos = log1p_sum_exp((-a * (s - lam)).masked_fill(~positive, -torch.inf), 1) / a
    neg = log1p_sum_exp((b * (s - lam)).masked_fill(~negative, -torch.inf), 1) / b
    return reduce(pos + neg, reduction, fn=fn, dtype=pairs.dtype)


def _check_circle(fn: str, margin: object, gamma: object) -> tuple[float, float]:
    return (
        check_number(fn, "margin", margin, low=0.0),
        check_number(fn, "gamma", gamma, low=0.0, low_open=True),
    )


def circle(
    embeddings: Tensor,
    labels: Tensor,
    margin: float = 0.25,
    gamma: float = 256.0,
    *,
    reference: Tensor | None = None,
    reference_labels: Tensor | None = None,
    self_index: Tensor | None = None,
    reduction: Reduction = "mean",
    gather_distributed: bool = False,
) -> Tensor:
    """Circle loss: pair similarities re-weighted by how far each is from its optimum.

    With ``S`` the cosine similarities, ``m = margin``, ``γ = gamma``, weights
    ``α_p = [1 + m − S[a,p]]₊`` and ``α_n = [S[a,n] + m]₊`` (treated as constants, as in the
    paper) and margins ``Δ_p = 1 − m``, ``Δ_n = m``:

    ``L_a = softplus( logsumexp_{p∈P(a)}(−γ α_p (S[a,p] − Δ_p))
    + logsumexp_{n∈N(a)}(γ α_n (S[a,n] − Δ_n)) )``

    ``"mean"`` averages over the anchors with both a positive and a negative (``"none"``:
    ``Tensor[B]``, 0 for the others). Equals pytorch-metric-learning's
    ``CircleLoss(m=margin, gamma=gamma)`` (whose defaults are ``m=0.4, γ=80``; these are the
    paper's face-recognition values).

    Args:
        embeddings (Tensor[B, D]): anchors (normalised inside).
        labels (Tensor[B]): integer class labels.
        margin (float): ``m ≥ 0``, the relaxation.
        gamma (float): ``γ > 0``, the scale.
        reference (Tensor[M, D], optional): the embeddings paired with the anchors (default: the
            anchors themselves, self-pairs left out).
        reference_labels (Tensor[M], optional): their labels (required with ``reference``).
        self_index (Tensor[B], optional): each anchor's own column in ``reference``, ``-1`` for
            none.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        gather_distributed (bool): the loss of the global batch (every rank's rows, in rank
            order) on every rank; a no-op without a process group. Not with ``reference``.

    Returns:
        Tensor: the reduced loss, or ``Tensor[B]`` with ``"none"``; dtype of ``embeddings``.

    Raises:
        TypeError: non-floating embeddings, non-integer labels or ``self_index``.
        ValueError: wrong shapes, ``margin`` < 0, ``gamma`` ≤ 0, an unknown ``reduction``,
            ``reference`` without its labels.

    Reference:
        Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity Optimization",
        CVPR 2020.

    Example:
        >>> x = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
        >>> circle(x, torch.tensor([0, 0, 1]), reduction="none")[2]
        tensor(0.)
    """
    fn = "circle"
    m, g = _check_circle(fn, margin, gamma)
    check_reduction(fn, reduction)
    pairs = _pairs(
        fn, embeddings, labels, reference, reference_labels, self_index, gather_distributed
    )
    s, fixed = pairs.similarity, pairs.similarity.detach()
    pos_logits = -g * F.relu(1.0 + m - fixed) * (s - (1.0 - m))
    neg_logits = g * F.relu(fixed + m) * (s - m)
    lse = _masked_logsumexp(pos_logits, pairs.positive)
    lse = lse + _masked_logsumexp(neg_logits, pairs.negative)
    valid = pairs.positive.any(dim=1) & pairs.negative.any(dim=1)
    loss = torch.where(valid, F.softplus(torch.where(valid, lse, 0.0)), 0.0)
    return reduce(loss, reduction, fn=fn, denominator=valid.sum(), dtype=pairs.dtype)


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------


class _PairModule(nn.Module):
    """A pair loss module: ``forward(embeddings, labels, *, reference, reference_labels,
    self_index)`` calls its function with the stored hyper-parameters."""

    reduction: Reduction

    def __init__(self, gather_distributed: bool) -> None:
        super().__init__()
        name = type(self).__name__
        self.gather_distributed = check_bool(name, "gather_distributed", gather_distributed)

    def _call(self, embeddings: Tensor, labels: Tensor, **references: Any) -> Tensor:
        raise NotImplementedError

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        *,
        reference: Tensor | None = None,
        reference_labels: Tensor | None = None,
        self_index: Tensor | None = None,
    ) -> Tensor:
        return self._call(
            embeddings,
            labels,
            reference=reference,
            reference_labels=reference_labels,
            self_index=self_index,
            reduction=self.reduction,
            gather_distributed=self.gather_distributed,
        )


@register(supcon)
class SupConLoss(_PairModule):
    """Supervised contrastive loss (module form of :func:`supcon`).

    Args:
        temperature (float): ``τ > 0``.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        gather_distributed (bool): the loss of the global batch (see :func:`supcon`).

    Example:
        >>> loss = SupConLoss(temperature=0.5)
        >>> loss(torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])).shape
        torch.Size([])
    """

    def __init__(
        self,
        *,
        temperature: float = 0.1,
        reduction: Reduction = "mean",
        gather_distributed: bool = False,
    ) -> None:
        super().__init__(gather_distributed)
        name = type(self).__name__
        self.temperature = _check_temperature(name, temperature)
        self.reduction = check_reduction(name, reduction)

    def _call(self, embeddings: Tensor, labels: Tensor, **references: Any) -> Tensor:
        return supcon(embeddings, labels, self.temperature, **references)

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, reduction={self.reduction!r}, "
            f"gather_distributed={self.gather_distributed}"
        )


@register(multi_similarity)
class MultiSimilarityLoss(_PairModule):
    """Multi-Similarity loss, optionally with its mining (module form of
    :func:`multi_similarity`).

    Args:
        alpha (float): ``α > 0``.
        beta (float): ``β > 0``.
        base (float): ``λ``.
        mining (str): ``"none"`` or ``"multi_similarity"``.
        epsilon (float): ``ε ≥ 0``, the mining margin.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        gather_distributed (bool): the loss of the global batch (see :func:`supcon`).

    Example:
        >>> loss = MultiSimilarityLoss(mining="multi_similarity", epsilon=0.1)
        >>> loss(torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])).shape
        torch.Size([])
    """

    def __init__(
        self,
        *,
        alpha: float = 2.0,
        beta: float = 50.0,
        base: float = 0.5,
        mining: str = "none",
        epsilon: float = 0.1,
        reduction: Reduction = "mean",
        gather_distributed: bool = False,
    ) -> None:
        super().__init__(gather_distributed)
        name = type(self).__name__
        self.alpha, self.beta, self.base = _check_ms(name, alpha, beta, base)
        self.mining = check_choice(name, "mining", mining, MS_MINING)
        self.epsilon = _check_epsilon(name, epsilon)
        self.reduction = check_reduction(name, reduction)

    def _call(self, embeddings: Tensor, labels: Tensor, **references: Any) -> Tensor:
        return multi_similarity(
            embeddings,
            labels,
            self.alpha,
            self.beta,
            self.base,
            mining=self.mining,
            epsilon=self.epsilon,
            **references,
        )

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, beta={self.beta}, base={self.base}, mining={self.mining!r}, "
            f"epsilon={self.epsilon}, reduction={self.reduction!r}, "
            f"gather_distributed={self.gather_distributed}"
        )


@register(circle)
class CircleLoss(_PairModule):
    """Circle loss (module form of :func:`circle`).

    Args:
        margin (float): ``m ≥ 0``.
        gamma (float): ``γ > 0``.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        gather_distributed (bool): the loss of the global batch (see :func:`supcon`).

    Example:
        >>> loss = CircleLoss(margin=0.4, gamma=80.0)
        >>> loss(torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])).shape
        torch.Size([])
    """

    def __init__(
        self,
        *,
        margin: float = 0.25,
        gamma: float = 256.0,
        reduction: Reduction = "mean",
        gather_distributed: bool = False,
    ) -> None:
        super().__init__(gather_distributed)
        name = type(self).__name__
        self.margin, self.gamma = _check_circle(name, margin, gamma)
        self.reduction = check_reduction(name, reduction)

    def _call(self, embeddings: Tensor, labels: Tensor, **references: Any) -> Tensor:
        return circle(embeddings, labels, self.margin, self.gamma, **references)

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, gamma={self.gamma}, reduction={self.reduction!r}, "
            f"gather_distributed={self.gather_distributed}"
        )


# --------------------------------------------------------------------------------------------
# Cross-batch memory
# --------------------------------------------------------------------------------------------


def _takes_references(loss: object) -> bool:
    if not isinstance(loss, nn.Module):
        return False
    parameters = inspect.signature(loss.forward).parameters
    return all(k in parameters for k in ("reference", "reference_labels", "self_index"))


@register(name="cross_batch_memory")
class CrossBatchMemory(nn.Module):
    """Cross-batch memory (XBM): pairs each batch with the embeddings of recent batches.

    A FIFO queue holds the last ``memory_size`` embeddings (detached) and their labels. Each
    call first **enqueues** the batch, overwriting the oldest entries, then returns the wrapped
    loss with the batch as anchors and the whole memory — the batch's own copies included — as
    references, each anchor's pair with its own copy left out (pytorch-metric-learning's
    ``CrossBatchMemory`` semantics). Gradients flow through the anchors only.

    State: the queue lives in buffers (``memory``, ``memory_labels``, saved in the
    ``state_dict`` with the queue position), and ``forward`` updates it — the one documented
    exception to "no state changes in forward", since enqueueing is part of each step's
    semantics. :meth:`reset` empties it. The memory follows the embeddings' device and dtype.

    Args:
        loss (nn.Module): a pair loss whose ``forward`` takes ``reference``,
            ``reference_labels`` and ``self_index``: :class:`SupConLoss`,
            :class:`MultiSimilarityLoss` or :class:`CircleLoss`.
        embedding_dim (int): ``D``.
        memory_size (int): the queue length, at least the batch size.

    Raises:
        TypeError: ``loss`` without reference keywords, non-integer sizes.
        ValueError: sizes < 1; in ``forward``, embeddings not ``(B, D)`` or ``B`` larger than
            the memory.

    Reference:
        Wang et al., "Cross-Batch Memory for Embedding Learning", CVPR 2020.

    Example:
        >>> xbm = CrossBatchMemory(SupConLoss(), embedding_dim=4, memory_size=16)
        >>> for _ in range(3):
        ...     loss = xbm(torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2]))
        >>> len(xbm), loss.shape
        (16, torch.Size([]))
    """

    memory: Tensor
    memory_labels: Tensor

    def __init__(self, loss: nn.Module, embedding_dim: int, memory_size: int = 1024) -> None:
        super().__init__()
        name = type(self).__name__
        if not _takes_references(loss):
            fail(
                name,
                "loss",
                "a pair loss whose forward takes `reference`, `reference_labels` and "
                "`self_index` (SupConLoss, MultiSimilarityLoss, CircleLoss)",
                type(loss).__name__,
                kind=TypeError,
            )
        self.loss = loss
        self.embedding_dim = check_int(name, "embedding_dim", embedding_dim, low=1)
        self.memory_size = check_int(name, "memory_size", memory_size, low=1)
        self.register_buffer("memory", torch.zeros(self.memory_size, self.embedding_dim))
        self.register_buffer("memory_labels", torch.zeros(self.memory_size, dtype=torch.long))
        self._next, self._count = 0, 0

    def __len__(self) -> int:
        """The number of embeddings held."""
        return self._count

    def reset(self) -> None:
        """Empty the memory."""
        self._next, self._count = 0, 0

    def get_extra_state(self) -> dict[str, int]:
        return {"next": self._next, "count": self._count}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self._next, self._count = int(state["next"]), int(state["count"])

    def enqueue(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Write the batch (detached) over the oldest entries; returns its slots ``(B,)``."""
        name = type(self).__name__
        x, y = check_embeddings_and_labels(name, embeddings, labels)
        want = f"(B, {self.embedding_dim}) with B <= memory_size={self.memory_size}"
        if x.shape[1] != self.embedding_dim or x.shape[0] > self.memory_size:
            fail(name, "embeddings", f"of shape {want}", shape_str(x.shape))
        if self.memory.device != x.device or self.memory.dtype != x.dtype:
            self.memory = self.memory.to(x)
            self.memory_labels = self.memory_labels.to(x.device)
        slots = (self._next + torch.arange(x.shape[0], device=x.device)) % self.memory_size
        self.memory[slots] = x.detach()
        self.memory_labels[slots] = y.to(self.memory_labels.dtype)
        self._next = (self._next + x.shape[0]) % self.memory_size
        self._count = min(self._count + x.shape[0], self.memory_size)
        return slots

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        slots = self.enqueue(embeddings, labels)
        held = self._count
        return self.loss(
            embeddings,
            labels,
            reference=self.memory[:held],
            reference_labels=self.memory_labels[:held],
            self_index=slots,
        )

    def extra_repr(self) -> str:
        return f"embedding_dim={self.embedding_dim}, memory_size={self.memory_size}"
