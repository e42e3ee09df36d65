"""Metric learning with proxies: Proxy-Anchor, its focal-style and multi-proxy variants, and a
cosine-softmax cross-entropy over proxies.

Every loss here compares L2-normalised embeddings with L2-normalised learnable proxies (one per
class, or ``K`` per class) by cosine similarity ``s(x, p)``. The modules own their proxies,
initialised as in the paper's code (Kaiming normal, fan-out). The single-proxy losses walk the
proxies in chunks with gradients formed in the forward pass (:mod:`._chunked`): exact, and near
the cost of ``x @ P.T`` forward plus backward for 10⁵–10⁶ classes.

Compared with pytorch-metric-learning's ``ProxyAnchorLoss(num_classes, embedding_size,
margin=δ, alpha=α)`` with the same proxies, :func:`proxy_anchor` gives the same value and
gradients (same ``1/|P⁺|`` and ``1/C`` divisors, same treatment of absent classes). It differs
in that it (1) computes the log-sum-exps in float32 for half-precision inputs where PML computes
in the embeddings' dtype, (2) never casts the proxies in place (PML converts its proxies to the
embeddings' dtype at each call), (3) offers no miner weights (``indices_tuple``) nor weight
regularisers, and (4) rejects out-of-range labels with a clear error.

Several processes: ``gather_distributed=True`` computes the loss of the global batch (every
rank's rows) on every rank, with gradients that give, under ``DistributedDataParallel``, the
step of one process on the whole batch. The modules' ``shard_proxies=True`` keeps on each rank
only its block of classes (:func:`losskit.distributed.shard_range`); each rank walks its block
and the shares are added (:mod:`._chunked`).

An empty batch (``B = 0``, on every rank with ``gather_distributed``) gives ``0.0`` connected to
the graph of the embeddings and the proxies (an empty ``(0,)`` for ``reduction="none"``), as the
pair, triplet and InfoNCE-family losses do: nothing to compare, as with no valid pair.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from losskit._checks import (
    check_bool,
    check_choice,
    check_floating,
    check_int,
    check_labels,
    check_ndim,
    check_number,
    check_same_device,
    check_shape,
    fail,
    shape_str,
)
from losskit._reduce import Reduction, check_reduction, compute_dtype
from losskit._scaled import l2_normalize
from losskit.distributed import (
    all_gather,
    best_over_ranks,
    broadcast_,
    local_rows,
    rank,
    shard_range,
    world_size,
)
from losskit.losses.metric._chunked import (
    Block,
    CosFaceTarget,
    Target,
    auto_chunk_size,
    finish_shares,
    global_batch,
    log1p_sum_exp,
    margin_softmax_chunked,
    positive_term,
    proxy_anchor_chunked,
)
from losskit.registry import register

__all__ = [
    "CosineSoftmaxCrossEntropyLoss",
    "FocalStyleProxyAnchorLoss",
    "MultiProxyAnchorLoss",
    "ProxyAnchorLoss",
    "cosine_softmax_cross_entropy",
    "focal_proxy_anchor",
    "multi_proxy_anchor",
    "nearest_proxy",
    "proxy_anchor",
    "proxy_similarity",
]

Pooling = Literal["softmax", "max"]
PLAIN = CosFaceTarget(0.0)  # the target logit of the cosine-softmax: φ(s) = s
POOLINGS: tuple[str, ...] = ("softmax", "max")


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_features(
    fn: str, features: object, proxies: object, name: str = "embeddings"
) -> tuple[Tensor, Tensor]:
    """``name`` ``(B, D)`` and proxies ``(C, D)``, both floating point, ``D`` matching."""
    x = check_ndim(fn, name, check_floating(fn, name, features), 2, "(B, D)")
    p = check_ndim(fn, "proxies", check_floating(fn, "proxies", proxies), 2, "(C, D)")
    if p.shape[1] != x.shape[1]:
        fail(
            fn,
            "proxies",
            f"of shape (C, {x.shape[1]}) matching {name} (D={x.shape[1]})",
            shape_str(p.shape),
        )
    if p.shape[0] == 0:
        fail(fn, "proxies", "to hold at least one proxy", shape_str(p.shape))
    return x, check_same_device(fn, "proxies", p, name, x)


def _check_inputs(
    fn: str, embeddings: object, labels: object, proxies: object, num_classes: int | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Validate ``(embeddings, labels, proxies)``; labels index ``num_classes`` (default C)."""
    x, p = _check_features(fn, embeddings, proxies)
    classes = p.shape[0] if num_classes is None else num_classes
    y = check_labels(fn, "labels", labels, classes)
    check_shape(fn, "labels", y, (x.shape[0],), f"matching embeddings (B={x.shape[0]})")
    return x, y, p


def _empty_batch(xs: Tensor, proxies: Tensor, reduction: str) -> Tensor:
    """The loss of an empty (global) batch: ``0.0`` (``(0,)`` for ``"none"``), connected to the
    graph of the embeddings and the proxies (their gradients are zero)."""
    zero = (xs.sum() + proxies.sum()).mul(0.0).abs()  # +0.0, whatever the sign of the sum
    return xs.sum(dim=1) + zero if reduction == "none" else zero


def _check_margins(fn: str, alpha: object, delta: object) -> tuple[float, float]:
    return (
        check_number(fn, "alpha", alpha, low=0.0, low_open=True),
        check_number(fn, "delta", delta),
    )


def _check_gammas(fn: str, pos_gamma: object, neg_gamma: object) -> tuple[float, float]:
    return (
        check_number(fn, "pos_gamma", pos_gamma, low=0.0),
        check_number(fn, "neg_gamma", neg_gamma, low=0.0),
    )


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


def _check_chunk_size(fn: str, chunk_size: object, x: Tensor, proxies: Tensor) -> int:
    """``None`` → :func:`auto_chunk_size`; otherwise an integer ≥ 1 (capped at ``C``)."""
    if chunk_size is None:
        return auto_chunk_size(x.shape[0], proxies.shape[0], x.device.type)
    return min(check_int(fn, "chunk_size", chunk_size, low=1), proxies.shape[0])


def _normalized(x: Tensor, proxies: Tensor) -> Tensor:
    """``x / ‖x‖`` per row in the compute dtype (float32 or wider) of ``x`` and ``proxies``."""
    return l2_normalize(x.to(compute_dtype(torch.promote_types(x.dtype, proxies.dtype))), dim=1)


def _anchor_from_similarity(sim: Tensor, labels: Tensor, alpha: float, delta: float) -> Tensor:
    """Proxy-Anchor from a full similarity matrix ``sim (B, C)`` (the multi-proxy path)."""
    classes = torch.arange(sim.shape[1], device=labels.device)
    targets = labels.unsqueeze(1) == classes  # one-hot without F.one_hot's range check
    z = (alpha * (sim + delta)).masked_fill(targets, -torch.inf)
    negative = log1p_sum_exp(z, 0).sum() / sim.shape[1]
    target_sim = sim.gather(1, labels.unsqueeze(1)).squeeze(1)
    return positive_term(target_sim, labels, alpha, delta, 0.0) + negative


def _cosine(x: Tensor, proxies: Tensor) -> Tensor:
    """Cosine similarity ``(B, C)`` in the compute dtype (float32 or wider)."""
    xn = _normalized(x, proxies)
    return xn @ l2_normalize(proxies.to(xn.dtype), dim=1).T


# --------------------------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------------------------


def proxy_similarity(features: Tensor, proxies: Tensor) -> Tensor:
    """Cosine similarity between every feature vector and every proxy.

    ``s(x, p) = x·p / (‖x‖ ‖p‖)`` (each norm clamped at 1e-12 as in ``F.normalize``).

    Args:
        features (Tensor[B, D]): feature vectors.
        proxies (Tensor[C, D]): one proxy per class.

    Returns:
        Tensor[B, C]: cosine similarities, in the features' dtype.

    Raises:
        TypeError: a non-tensor or non-floating input.
        ValueError: an input that is not 2-D, or mismatched ``D``.

    Example:
        >>> proxy_similarity(torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
        tensor([[1., 0.]])
    """
    x, p = _check_features("proxy_similarity", features, proxies, "features")
    return _cosine(x, p).to(x.dtype)


def nearest_proxy(
    features: Tensor,
    proxies: Tensor,
    logits: Tensor | None = None,
    logits_weight: float = 0.5,
    *,
    chunk_size: int | None = None,
) -> Tensor:
    """Predicted class: the proxy of highest cosine, optionally blended with classifier logits.

    ``ŷ = argmax_c cos(x, p_c)``, or with ``logits`` given
    ``ŷ = argmax_c [λ·logits_c + (1 − λ)·cos(x, p_c)]`` with ``λ = logits_weight``. The classes
    are walked ``chunk_size`` at a time, so no ``(B, C)`` matrix is held for huge ``C``.

    Args:
        features (Tensor[B, D]): feature vectors.
        proxies (Tensor[C, D]): one proxy per class.
        logits (Tensor[B, C], optional): classifier logits to blend in.
        logits_weight (float): ``λ`` in [0, 1], the weight of ``logits``.
        chunk_size (int, optional): classes scored at a time (default: automatic, as for
            :func:`proxy_anchor`).

    Returns:
        Tensor[B]: class indices (``torch.long``).

    Raises:
        TypeError: a non-tensor or non-floating input, a non-integer ``chunk_size``.
        ValueError: wrong shapes, ``logits_weight`` outside [0, 1], ``chunk_size`` < 1.

    Example:
        >>> nearest_proxy(torch.tensor([[0.1, 2.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        tensor([1])
    """
    fn = "nearest_proxy"
    x, p = _check_features(fn, features, proxies, "features")
    lam = check_number(fn, "logits_weight", logits_weight, low=0.0, high=1.0)
    step = _check_chunk_size(fn, chunk_size, x, p)
    if logits is not None:
        check_floating(fn, "logits", logits)
        check_shape(fn, "logits", logits, (x.shape[0], p.shape[0]), "matching (B, C)")
    return _best_proxy(x, p, logits, lam, step)[1]


def _best_proxy(
    x: Tensor, p: Tensor, logits: Tensor | None, lam: float, step: int
) -> tuple[Tensor, Tensor]:
    """The best score of each row of ``x`` over the proxies ``p`` and its index, chunked."""
    dtype = compute_dtype(torch.promote_types(x.dtype, p.dtype))
    with torch.no_grad():
        xn = l2_normalize(x.to(dtype), dim=1)
        best = torch.full((x.shape[0],), -torch.inf, dtype=dtype, device=x.device)
        index = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        for start in range(0, p.shape[0], step):
            score = xn @ l2_normalize(p[start : start + step].to(dtype), dim=1).T
            if logits is not None:
                score = lam * logits[:, start : start + step].to(dtype) + (1 - lam) * score
            value, arg = score.max(dim=1)
            better = value > best
            best = torch.where(better, value, best)
            index = torch.where(better, arg + start, index)
    return best, index


def _proxy_anchor_impl(
    fn: str,
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    alpha: float,
    delta: float,
    pos_gamma: float,
    neg_gamma: float,
    chunk_size: int | None,
    gather_distributed: bool,
    block: Block | None = None,
) -> Tensor:
    x, y, p = _check_inputs(
        fn, embeddings, labels, proxies, None if block is None else block.num_classes
    )
    a, d = _check_margins(fn, alpha, delta)
    gp, gn = _check_gammas(fn, pos_gamma, neg_gamma)
    xs, ys = global_batch(x, y, check_bool(fn, "gather_distributed", gather_distributed), block)
    if xs.shape[0] == 0:
        return _empty_batch(xs, p, "mean").to(x.dtype)
    chunk = _check_chunk_size(fn, chunk_size, xs, p)
    loss = proxy_anchor_chunked(_normalized(xs, p), p, ys, a, d, gp, gn, chunk, block)
    return finish_shares(loss, block).to(x.dtype)


def proxy_anchor(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    alpha: float = 32.0,
    delta: float = 0.1,
    *,
    chunk_size: int | None = None,
    gather_distributed: bool = False,
) -> Tensor:
    """Proxy-Anchor loss: each proxy pulls its class's samples and pushes all others away.

    With ``s`` the cosine similarity of an embedding and a proxy, ``P⁺`` the proxies with at
    least one positive in the batch, ``X_p⁺`` / ``X_p⁻`` the samples of / not of class ``p``:

    ``L = 1/|P⁺| Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} e^{−α(s(x,p)−δ)})
    + 1/C Σ_p log(1 + Σ_{x∈X_p⁻} e^{α(s(x,p)+δ)})``

    Each ``log(1 + Σ e^z)`` is computed as ``softplus(logsumexp(z))`` in float32 or wider, so
    ``α = 32`` stays finite in half precision. A proxy whose class is absent from the batch adds
    only its negative term; a batch of one class has no negatives for its proxy (term 0). This
    is the convention of the paper's code and of pytorch-metric-learning's ``ProxyAnchorLoss``.

    Speed and memory: the proxies are walked ``chunk_size`` rows at a time and the gradients
    are formed during the forward pass, so the cost is about that of ``x @ P.T`` forward plus
    backward (3 GEMMs) and the ``(B, C)`` matrix is never held more than a chunk at a time. The
    result is exact (the negative term is a per-proxy sum over the batch, complete within each
    chunk). ``chunk_size=None`` aims at ``(B, chunk)`` blocks of about 2²⁰ elements on CPU
    (chunks a multiple of 256 proxies, at most 4096) and 2²³ on CUDA; one chunk, i.e. the dense
    computation, when ``C`` is small. Under autocast the GEMMs run in the autocast
    dtype, the log-sum-exps in float32.

    Args:
        embeddings (Tensor[B, D]): embeddings (normalised inside).
        labels (Tensor[B]): integer class indices in ``[0, C)``.
        proxies (Tensor[C, D]): one proxy per class (normalised inside).
        alpha (float): scale ``α > 0``.
        delta (float): margin ``δ``.
        chunk_size (int, optional): proxies per chunk (default: automatic, see above).
        gather_distributed (bool): compute the loss of the global batch, all ranks' rows in
            rank order, on every rank (see :mod:`losskit.distributed`); a no-op without a
            process group.

    Returns:
        Tensor: the scalar loss, in the embeddings' dtype.

    Raises:
        TypeError: a non-tensor or non-floating input, non-integer labels or ``chunk_size``.
        ValueError: wrong shapes, a label outside ``[0, C)``, ``alpha`` ≤ 0, ``chunk_size`` < 1.

    Reference:
        Kim et al., "Proxy Anchor Loss for Deep Metric Learning", CVPR 2020.

    Example:
        >>> x, p = torch.randn(6, 4), torch.randn(3, 4)
        >>> proxy_anchor(x, torch.tensor([0, 0, 1, 1, 2, 2]), p).shape
        torch.Size([])
    """
    return _proxy_anchor_impl(
        "proxy_anchor",
        embeddings,
        labels,
        proxies,
        alpha,
        delta,
        0.0,
        0.0,
        chunk_size,
        gather_distributed,
    )


def focal_proxy_anchor(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    alpha: float = 32.0,
    delta: float = 0.1,
    pos_gamma: float = 2.0,
    neg_gamma: float = 2.0,
    *,
    chunk_size: int | None = None,
    gather_distributed: bool = False,
) -> Tensor:
    """Focal-style Proxy-Anchor loss: Proxy-Anchor with hard examples weighted up.

    As :func:`proxy_anchor`, with each positive term weighted by ``clamp(1 − s, 0, 1)^γ⁺`` and
    each negative term by ``clamp(s, 0, 1)^γ⁻`` inside the sums (weights not detached):

    ``L = 1/|P⁺| Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} (1−s)^γ⁺ e^{−α(s−δ)})
    + 1/C Σ_p log(1 + Σ_{x∈X_p⁻} s^γ⁻ e^{α(s+δ)})``

    The weights enter in log space (``γ·log w`` added to the exponent; a zero weight removes the
    term), so ``pos_gamma = neg_gamma = 0`` gives :func:`proxy_anchor` exactly.

    Args:
        embeddings (Tensor[B, D]): embeddings (normalised inside).
        labels (Tensor[B]): integer class indices in ``[0, C)``.
        proxies (Tensor[C, D]): one proxy per class (normalised inside).
        alpha (float): scale ``α > 0``.
        delta (float): margin ``δ``.
        pos_gamma (float): focusing exponent ``γ⁺ ≥ 0`` of the positive terms.
        neg_gamma (float): focusing exponent ``γ⁻ ≥ 0`` of the negative terms.
        chunk_size (int, optional): proxies per chunk (default: automatic, as for
            :func:`proxy_anchor`, computed the same chunked, exact way).
        gather_distributed (bool): compute the loss of the global batch, all ranks' rows in
            rank order, on every rank (see :mod:`losskit.distributed`); a no-op without a
            process group.

    Returns:
        Tensor: the scalar loss, in the embeddings' dtype.

    Raises:
        TypeError: a non-tensor or non-floating input, non-integer labels or ``chunk_size``.
        ValueError: wrong shapes, a label outside ``[0, C)``, ``alpha`` ≤ 0, a negative gamma,
            ``chunk_size`` < 1.

    Reference:
        Kim et al., "Proxy Anchor Loss for Deep Metric Learning", CVPR 2020; the focal
        weighting follows Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.

    Example:
        >>> x, p, y = torch.randn(6, 4), torch.randn(3, 4), torch.tensor([0, 0, 1, 1, 2, 2])
        >>> bool(focal_proxy_anchor(x, y, p, pos_gamma=0.0, neg_gamma=0.0) == proxy_anchor(x, y, p))
        True
    """
    return _proxy_anchor_impl(
        "focal_proxy_anchor",
        embeddings,
        labels,
        proxies,
        alpha,
        delta,
        pos_gamma,
        neg_gamma,
        chunk_size,
        gather_distributed,
    )


def cosine_softmax_cross_entropy(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    scale: float = 16.0,
    *,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    gather_distributed: bool = False,
) -> Tensor:
    """Normalised-softmax cross-entropy: softmax over scaled cosines to one proxy per class.

    ``ℓ_i = −log softmax_c(σ·s(x_i, p_c))[y_i] = logsumexp_c(σ·s(x_i, p_c)) − σ·s(x_i, p_{y_i})``
    with ``s`` the cosine similarity and ``σ = scale``. Computed exactly in chunks of proxies
    (see :func:`proxy_anchor`): a first pass accumulates each sample's log-sum-exp online, a
    second forms the gradients (4 GEMMs in all, no ``(B, C)`` matrix). With
    ``reduction="none"`` the gradient pass runs in backward with the incoming weights.

    Args:
        embeddings (Tensor[B, D]): embeddings (normalised inside).
        labels (Tensor[B]): integer class indices in ``[0, C)``.
        proxies (Tensor[C, D]): one proxy (class weight vector) per class, normalised inside.
        scale (float): ``σ > 0``, the inverse temperature of the softmax.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        chunk_size (int, optional): proxies per chunk (default: automatic).
        gather_distributed (bool): compute the loss of the global batch, all ranks' rows in
            rank order, on every rank (see :mod:`losskit.distributed`); a no-op without a
            process group.

    Returns:
        Tensor: the scalar loss, or ``Tensor[B]`` for ``reduction="none"``, in the embeddings'
        dtype.

    Raises:
        TypeError: a non-tensor or non-floating input, non-integer labels or ``chunk_size``.
        ValueError: wrong shapes, a label outside ``[0, C)``, ``scale`` ≤ 0, ``chunk_size``
            < 1, an unknown ``reduction``.

    Reference:
        Wang et al., "NormFace: L2 Hypersphere Embedding for Face Verification", ACM MM 2017;
        Zhai & Wu, "Classification is a Strong Baseline for Deep Metric Learning", BMVC 2019.

    Example:
        >>> x, p, y = torch.randn(4, 8), torch.randn(10, 8), torch.tensor([0, 3, 3, 9])
        >>> cosine_softmax_cross_entropy(x, y, p, scale=16.0).shape
        torch.Size([])
    """
    fn = "cosine_softmax_cross_entropy"
    sigma = check_number(fn, "scale", scale, low=0.0, low_open=True)
    return _margin_softmax(
        fn, embeddings, labels, proxies, PLAIN, sigma, 1, reduction, chunk_size, gather_distributed
    )


def _margin_softmax(
    fn: str,
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    target: Target,
    scale: float,
    groups: int,
    reduction: str,
    chunk_size: int | None,
    gather_distributed: bool,
    block: Block | None = None,
) -> Tensor:
    """Validate the inputs and run :func:`margin_softmax_chunked` (``groups`` sub-centers per
    class) on the batch, or the global batch with ``gather_distributed``."""
    x, p = _check_features(fn, embeddings, proxies)
    if p.shape[0] % groups:
        fail(fn, "proxies", f"to have a multiple of sub_centers={groups} rows", shape_str(p.shape))
    classes = p.shape[0] // groups if block is None else block.num_classes
    x, y, p = _check_inputs(fn, x, labels, p, num_classes=classes)
    mode = check_reduction(fn, reduction)
    xs, ys = global_batch(x, y, check_bool(fn, "gather_distributed", gather_distributed), block)
    if xs.shape[0] == 0:
        return _empty_batch(xs, p, mode).to(x.dtype)
    chunk = _check_chunk_size(fn, chunk_size, xs, p)
    chunk = max(groups, chunk // groups * groups)  # whole classes in every chunk
    weight = {"mean": 1.0 / xs.shape[0], "sum": 1.0, "none": None}[mode]
    xn = _normalized(xs, p)
    loss = margin_softmax_chunked(xn, p, ys, target, scale, groups, chunk, weight, block)
    return finish_shares(loss, block).to(x.dtype)


def _pool(sim: Tensor, proxies_per_class: int, pooling: str, temperature: float) -> Tensor:
    """Pool ``(B, C·K)`` similarities to ``(B, C)`` over each class's ``K`` proxies."""
    grouped = sim.unflatten(1, (-1, proxies_per_class))
    if pooling == "max":
        return grouped.amax(dim=2)
    return (torch.softmax(grouped / temperature, dim=2) * grouped).sum(dim=2)


def multi_proxy_anchor(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    alpha: float = 32.0,
    delta: float = 0.1,
    *,
    proxies_per_class: int = 3,
    pooling: Pooling = "softmax",
    temperature: float = 0.1,
    gather_distributed: bool = False,
) -> Tensor:
    """Proxy-Anchor loss with several proxies per class, pooled into one similarity per class.

    The proxies are stored class-major: rows ``c·K … c·K + K − 1`` belong to class ``c``. A
    sample's similarity to class ``c`` pools its cosines ``s_k`` to that class's proxies:

    - ``pooling="softmax"``: ``s = Σ_k softmax_k(s_k / τ) · s_k`` (tends to the max as τ → 0);
    - ``pooling="max"``: ``s = max_k s_k``;

    then :func:`proxy_anchor`'s formula applies to the pooled ``(B, C)`` similarities. This
    loss is computed densely: it holds the ``(B, C·K)`` similarity matrix.

    Args:
        embeddings (Tensor[B, D]): embeddings (normalised inside).
        labels (Tensor[B]): integer class indices in ``[0, C)``.
        proxies (Tensor[C·K, D]): ``K = proxies_per_class`` proxies per class.
        alpha (float): scale ``α > 0``.
        delta (float): margin ``δ``.
        proxies_per_class (int): ``K ≥ 1``.
        pooling (str): ``"softmax"`` or ``"max"``.
        temperature (float): ``τ > 0`` of the softmax pooling.
        gather_distributed (bool): compute the loss of the global batch, all ranks' rows in
            rank order, on every rank (see :mod:`losskit.distributed`); a no-op without a
            process group.

    Returns:
        Tensor: the scalar loss, in the embeddings' dtype.

    Raises:
        TypeError: a non-tensor or non-floating input, non-integer labels or ``K``.
        ValueError: wrong shapes, proxies rows not a multiple of ``K``, a label outside
            ``[0, C)``, an unknown ``pooling``, ``alpha`` or ``temperature`` ≤ 0.

    Reference:
        Kim et al., "Proxy Anchor Loss for Deep Metric Learning", CVPR 2020; several proxies
        per class as in Qian et al., "SoftTriple Loss", ICCV 2019.

    Example:
        >>> x, p, y = torch.randn(6, 4), torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
        >>> multi_proxy_anchor(x, y, p, proxies_per_class=2).shape
        torch.Size([])
    """
    fn = "multi_proxy_anchor"
    k = check_int(fn, "proxies_per_class", proxies_per_class, low=1)
    mode = check_choice(fn, "pooling", pooling, POOLINGS)
    tau = check_number(fn, "temperature", temperature, low=0.0, low_open=True)
    a, d = _check_margins(fn, alpha, delta)
    x, p = _check_features(fn, embeddings, proxies)
    if p.shape[0] % k:
        fail(fn, "proxies", f"to have a multiple of proxies_per_class={k} rows", shape_str(p.shape))
    x, y, p = _check_inputs(fn, x, labels, p, num_classes=p.shape[0] // k)
    xs, ys = global_batch(x, y, check_bool(fn, "gather_distributed", gather_distributed), None)
    if xs.shape[0] == 0:
        return _empty_batch(xs, p, "mean").to(x.dtype)
    sim = _pool(_cosine(xs, p), k, mode, tau)
    return _anchor_from_similarity(sim, ys, a, d).to(x.dtype)


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------


def _check_module_chunk_size(fn: str, chunk_size: object) -> int | None:
    return None if chunk_size is None else check_int(fn, "chunk_size", chunk_size, low=1)


class _ProxyModule(nn.Module):
    """Owns validated ``num_classes``, ``embedding_dim`` and the learnable ``proxies``.

    The proxies ``(num_classes · proxies_per_class, D)`` are drawn as in the paper's code:
    ``kaiming_normal_(mode="fan_out")``. Under a process group (created before the loss):

    - ``gather_distributed=True``: the proxies are broadcast from rank 0, so that every rank
      starts from the same ones; each rank then computes the same loss of the global batch and
      the same proxy gradients, so they stay identical without any reduction (wrap only the
      model in ``DistributedDataParallel``, not the loss).
    - ``shard_proxies=True`` as well: rank ``r`` holds only the classes ``self.block`` =
      :func:`losskit.distributed.shard_range` ``(num_classes)`` and ``self.proxies`` is that
      block (its ``proxies_per_class`` rows per class), drawn with the same scale from a stream
      of its own per rank.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        proxies_per_class: int = 1,
        *,
        gather_distributed: bool = False,
        shard_proxies: bool = False,
    ) -> None:
        super().__init__()
        fn = type(self).__name__
        self.num_classes = check_int(fn, "num_classes", num_classes, low=1)
        self.embedding_dim = check_int(fn, "embedding_dim", embedding_dim, low=1)
        self.proxies_per_class = check_int(fn, "proxies_per_class", proxies_per_class, low=1)
        self.gather_distributed = check_bool(fn, "gather_distributed", gather_distributed)
        self.shard_proxies = check_bool(fn, "shard_proxies", shard_proxies)
        if shard_proxies and not gather_distributed:
            fail(fn, "shard_proxies", "together with gather_distributed=True", "False")
        rows = self.num_classes * self.proxies_per_class
        self.block: Block | None = None
        if shard_proxies and world_size() > 1:
            classes = self._shard(fn)
            self.block = Block(classes.start, self.num_classes)
            # The scale of kaiming_normal_(mode="fan_out") on the whole (C, D).
            generator = torch.Generator().manual_seed(torch.initial_seed() + rank())
            proxies = torch.empty(len(classes) * self.proxies_per_class, self.embedding_dim)
            proxies.normal_(0.0, (2.0 / rows) ** 0.5, generator=generator)
        else:
            proxies = torch.empty(rows, self.embedding_dim)
            nn.init.kaiming_normal_(proxies, mode="fan_out")
            if gather_distributed:
                broadcast_(proxies)
        self.proxies = nn.Parameter(proxies)

    def _shard(self, fn: str) -> range:
        """This rank's classes; each rank must hold some (checked alike on every rank)."""
        w = world_size()
        if not shard_range(self.num_classes, rank_=w - 1):
            fail(
                fn,
                "num_classes",
                f"> {(w - 1) * -(-self.num_classes // w)} so that each of the {w} ranks holds "
                "some classes with shard_proxies=True",
                self.num_classes,
            )
        return shard_range(self.num_classes)

    def nearest_proxy(
        self, features: Tensor, logits: Tensor | None = None, logits_weight: float = 0.5
    ) -> Tensor:
        """Predicted classes of ``features``: :func:`nearest_proxy` over all the classes.

        With sharded proxies every rank must call it (with its own features, any number of
        rows): the features are gathered, each rank scores its block and the best class over
        the ranks is returned for this rank's rows. ``logits (B, C)`` cover all the classes.
        """
        fn = f"{type(self).__name__}.nearest_proxy"
        x, p = _check_features(fn, features, self.proxies, "features")
        lam = check_number(fn, "logits_weight", logits_weight, low=0.0, high=1.0)
        if logits is not None:
            check_floating(fn, "logits", logits)
            check_shape(fn, "logits", logits, (x.shape[0], self.num_classes), "matching (B, C)")
        if self.block is None:
            step = _check_chunk_size(fn, getattr(self, "chunk_size", None), x, p)
            return _best_proxy(x, p, logits, lam, step)[1] // self.proxies_per_class
        xs = all_gather(x)
        classes = slice(self.block.offset, self.block.offset + p.shape[0])
        ls = None if logits is None else all_gather(logits)[:, classes]
        step = _check_chunk_size(fn, getattr(self, "chunk_size", None), xs, p)
        best, index = _best_proxy(xs, p, ls, lam, step)
        classes_ = index // self.proxies_per_class + self.block.offset
        return best_over_ranks(best, classes_)[1][local_rows(x)]

    def _distributed_repr(self) -> str:
        return f", gather_distributed={self.gather_distributed}, shard_proxies={self.shard_proxies}"


@register(proxy_anchor)
class ProxyAnchorLoss(_ProxyModule):
    """Proxy-Anchor loss owning its proxies; see :func:`losskit.functional.proxy_anchor`.

    Args:
        num_classes (int): ``C``, one proxy per class.
        embedding_dim (int): ``D``.
        alpha (float): scale ``α > 0``.
        delta (float): margin ``δ``.
        chunk_size (int, optional): proxies per chunk (default: automatic).
        gather_distributed (bool): the loss of the global batch (see :class:`_ProxyModule`).
        shard_proxies (bool): hold only this rank's block of classes (with
            ``gather_distributed``).

    Example:
        >>> loss = ProxyAnchorLoss(10, 8)
        >>> loss(torch.randn(4, 8), torch.tensor([0, 1, 2, 3])).shape
        torch.Size([])
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        alpha: float = 32.0,
        delta: float = 0.1,
        chunk_size: int | None = None,
        gather_distributed: bool = False,
        shard_proxies: bool = False,
    ) -> None:
        super().__init__(
            num_classes,
            embedding_dim,
            gather_distributed=gather_distributed,
            shard_proxies=shard_proxies,
        )
        fn = type(self).__name__
        self.alpha, self.delta = _check_margins(fn, alpha, delta)
        self.chunk_size = _check_module_chunk_size(fn, chunk_size)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return _proxy_anchor_impl(
            "proxy_anchor",
            embeddings,
            labels,
            self.proxies,
            self.alpha,
            self.delta,
            0.0,
            0.0,
            self.chunk_size,
            self.gather_distributed,
            self.block,
        )

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, "
            f"alpha={self.alpha}, delta={self.delta}, chunk_size={self.chunk_size}"
            + self._distributed_repr()
        )


@register(focal_proxy_anchor)
class FocalStyleProxyAnchorLoss(_ProxyModule):
    """Focal-style Proxy-Anchor loss owning its proxies; see
    :func:`losskit.functional.focal_proxy_anchor`.

    Args:
        num_classes (int): ``C``, one proxy per class.
        embedding_dim (int): ``D``.
        alpha (float): scale ``α > 0``.
        delta (float): margin ``δ``.
        pos_gamma (float): focusing exponent ``γ⁺ ≥ 0`` of the positive terms.
        neg_gamma (float): focusing exponent ``γ⁻ ≥ 0`` of the negative terms.
        chunk_size (int, optional): proxies per chunk (default: automatic).
        gather_distributed (bool): the loss of the global batch (see :class:`_ProxyModule`).
        shard_proxies (bool): hold only this rank's block of classes (with
            ``gather_distributed``).

    Example:
        >>> loss = FocalStyleProxyAnchorLoss(10, 8)
        >>> loss(torch.randn(4, 8), torch.tensor([0, 1, 2, 3])).shape
        torch.Size([])
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        alpha: float = 32.0,
        delta: float = 0.1,
        pos_gamma: float = 2.0,
        neg_gamma: float = 2.0,
        chunk_size: int | None = None,
        gather_distributed: bool = False,
        shard_proxies: bool = False,
    ) -> None:
        super().__init__(
            num_classes,
            embedding_dim,
            gather_distributed=gather_distributed,
            shard_proxies=shard_proxies,
        )
        fn = type(self).__name__
        self.alpha, self.delta = _check_margins(fn, alpha, delta)
        self.pos_gamma, self.neg_gamma = _check_gammas(fn, pos_gamma, neg_gamma)
        self.chunk_size = _check_module_chunk_size(fn, chunk_size)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return _proxy_anchor_impl(
            "focal_proxy_anchor",
            embeddings,
            labels,
            self.proxies,
            self.alpha,
            self.delta,
            self.pos_gamma,
            self.neg_gamma,
            self.chunk_size,
            self.gather_distributed,
            self.block,
        )

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, "
            f"alpha={self.alpha}, delta={self.delta}, pos_gamma={self.pos_gamma}, "
            f"neg_gamma={self.neg_gamma}, chunk_size={self.chunk_size}" + self._distributed_repr()
        )


@register(multi_proxy_anchor)
class MultiProxyAnchorLoss(_ProxyModule):
    """Proxy-Anchor loss with several proxies per class; see
    :func:`losskit.functional.multi_proxy_anchor`.

    ``self.proxies`` has ``num_classes · proxies_per_class`` rows, class-major.

    Args:
        num_classes (int): ``C``.
        embedding_dim (int): ``D``.
        proxies_per_class (int): ``K ≥ 1``.
        alpha (float): scale ``α > 0``.
        delta (float): margin ``δ``.
        pooling (str): ``"softmax"`` or ``"max"``.
        temperature (float): ``τ > 0`` of the softmax pooling.
        gather_distributed (bool): the loss of the global batch (see :class:`_ProxyModule`).

    Example:
        >>> loss = MultiProxyAnchorLoss(10, 8, proxies_per_class=2)
        >>> loss(torch.randn(4, 8), torch.tensor([0, 1, 2, 3])).shape
        torch.Size([])
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        proxies_per_class: int = 3,
        alpha: float = 32.0,
        delta: float = 0.1,
        pooling: Pooling = "softmax",
        temperature: float = 0.1,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__(
            num_classes, embedding_dim, proxies_per_class, gather_distributed=gather_distributed
        )
        fn = type(self).__name__
        self.alpha, self.delta = _check_margins(fn, alpha, delta)
        self.pooling: Pooling = check_choice(fn, "pooling", pooling, POOLINGS)  # type: ignore[assignment]
        self.temperature = check_number(fn, "temperature", temperature, low=0.0, low_open=True)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return multi_proxy_anchor(
            embeddings,
            labels,
            self.proxies,
            self.alpha,
            self.delta,
            proxies_per_class=self.proxies_per_class,
            pooling=self.pooling,
            temperature=self.temperature,
            gather_distributed=self.gather_distributed,
        )

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, "
            f"proxies_per_class={self.proxies_per_class}, alpha={self.alpha}, "
            f"delta={self.delta}, pooling={self.pooling!r}, temperature={self.temperature}, "
            f"gather_distributed={self.gather_distributed}"
        )


@register(cosine_softmax_cross_entropy)
class CosineSoftmaxCrossEntropyLoss(_ProxyModule):
    """Normalised-softmax cross-entropy owning its proxies; see
    :func:`losskit.functional.cosine_softmax_cross_entropy`.

    Args:
        num_classes (int): ``C``, one proxy per class.
        embedding_dim (int): ``D``.
        scale (float): ``σ > 0``.
        reduction (str): ``"mean"`` | ``"sum"`` | ``"none"``.
        chunk_size (int, optional): proxies per chunk (default: automatic).
        gather_distributed (bool): the loss of the global batch (see :class:`_ProxyModule`).
        shard_proxies (bool): hold only this rank's block of classes (with
            ``gather_distributed``).

    Example:
        >>> loss = CosineSoftmaxCrossEntropyLoss(10, 8, scale=16.0)
        >>> loss(torch.randn(4, 8), torch.tensor([0, 1, 2, 3])).shape
        torch.Size([])
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        scale: float = 16.0,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        gather_distributed: bool = False,
        shard_proxies: bool = False,
    ) -> None:
        super().__init__(
            num_classes,
            embedding_dim,
            gather_distributed=gather_distributed,
            shard_proxies=shard_proxies,
        )
        fn = type(self).__name__
        self.scale = check_number(fn, "scale", scale, low=0.0, low_open=True)
        self.reduction: Reduction = check_reduction(fn, reduction)
        self.chunk_size = _check_module_chunk_size(fn, chunk_size)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        return _margin_softmax(
            "cosine_softmax_cross_entropy",
            embeddings,
            labels,
            self.proxies,
            PLAIN,
            self.scale,
            1,
            self.reduction,
            self.chunk_size,
            self.gather_distributed,
            self.block,
        )

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, "
            f"scale={self.scale}, reduction={self.reduction!r}, chunk_size={self.chunk_size}"
            + self._distributed_repr()
        )
