"""Exact proxy losses that walk the proxies in chunks and never hold the ``(B, C)`` matrix.

The losses of :mod:`losskit.losses.metric.proxies` compare ``B`` normalised embeddings with
``C`` normalised proxies. For huge ``C`` the dense ``(B, C)`` cosine matrix and its autograd
temporaries dominate time and memory. The functions here walk the proxies ``chunk`` rows at a
time and compute the gradients during the forward pass, in the spirit of fused
large-vocabulary cross-entropy kernels: per chunk one GEMM gives the products
``R_c = x̂ P_cᵀ`` (the cosines once divided by ``‖p‖``), the closed-form derivative
``G_c = ∂L/∂R_c`` is formed in place, and two GEMMs give the chunk's share of ``∂L/∂x̂`` and its
rows of ``∂L/∂P`` (3 GEMMs in all, the cost of ``x @ P.T`` forward plus backward). ``backward``
only scales the stored gradients.

Exactness: Proxy-Anchor's negative term is a per-proxy log-sum-exp over the batch, so each chunk
is complete in itself; its positive term needs only the ``B`` target cosines. The margin
softmax (the cosine-softmax cross-entropy, ArcFace, CosFace, sub-center ArcFace, ProxyNCA++),
whose target logit ``σ·φ(s_y)`` alone differs from the scaled cosines, needs each sample's
log-sum-exp over all classes first (a first pass with one GEMM per chunk, started from the
target logit, the target's column left out), then the same gradient pass (4 GEMMs in all).

Sharded proxies: the walk may hold only the block of classes ``[offset, offset + rows)`` of
``C`` (the labels stay global; samples whose class lies elsewhere are negatives of every local
proxy). Proxy-Anchor then returns this block's share of the loss (its proxies' terms, divided by
the global ``C`` and ``|P⁺|``); the cross-entropy all-reduces each sample's log-sum-exp over the
ranks (the target logit enters on the rank that holds the class) and returns the share of the
samples whose class lies here. The shares add up to the loss
(:func:`losskit.distributed.sum_shares`), the gradients to each block's proxies are exact, and
those to the embeddings add up over the ranks.

The proxies are normalised inside the walk (``s = x̂·p / ‖p‖``, gradient
``∂s/∂p = (x̂ − s·p̂) / ‖p‖``), so neither ``P̂`` nor ``∂L/∂P̂`` is ever materialised; the only
``(C, D)`` buffer is ``∂L/∂P`` itself. GEMMs run in the autocast dtype when autocast is on
(else in the inputs' dtype); everything exponential runs in float32 or wider.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from losskit.distributed import all_gather, all_reduce_logsumexp, gather_shares, sum_shares

__all__: list[str] = []

# The automatic chunk size aims at (B, chunk) blocks of a given number of elements, rounded
# down to a multiple of 256 proxies (GEMM-friendly) and capped. CPU: 2²⁰ elements, at most 4096
# proxies: big enough for efficient GEMMs and few parallel regions (which matters on a loaded
# machine), small enough for the blocks and proxy rows to stay mostly in cache (measured with
# B = 180 and 1024, D = 512). Accelerators: 2²³ elements, so kernel launches stay negligible.
AUTO_CHUNK = {"cpu": (1 << 20, 4096)}
AUTO_CHUNK_ACCELERATOR = (1 << 23, 1 << 20)
CHUNK_MULTIPLE = 256
NORM_EPS = 1e-12  # as F.normalize
FOCAL_TINY = 1e-30  # floor of a focal weight in its slope γ/w (finite, times e^{-inf} = 0)


def auto_chunk_size(batch: int, num_proxies: int, device: str = "cpu") -> int:
    """Proxies per chunk: ``min(C, max(256, min(cap, ⌊E / B⌋ rounded down to 256·k)))``.

    ``E`` is the target size of a ``(B, chunk)`` block and ``cap`` a maximum chunk: 2²⁰
    elements and 4096 proxies on CPU, 2²³ elements on CUDA and other accelerators. Small ``C``
    gives one chunk, i.e. the dense computation.
    """
    elements, cap = AUTO_CHUNK.get(device, AUTO_CHUNK_ACCELERATOR)
    chunk = min(cap, elements // max(batch, 1) // CHUNK_MULTIPLE * CHUNK_MULTIPLE)
    return min(num_proxies, max(CHUNK_MULTIPLE, chunk))


# --------------------------------------------------------------------------------------------
# Shared numerics (also used by the dense path of proxies.py)
# --------------------------------------------------------------------------------------------


def log1p_sum_exp(z: Tensor, dim: int) -> Tensor:
    """``log(1 + Σ exp(z))`` along ``dim``, stable, and 0 with finite gradients when all -inf
    or when ``dim`` is empty.

    Equal to ``softplus(logsumexp(z))``; the shift ``m = max(0, max z)`` is detached because the
    result does not depend on it.
    """
    if z.shape[dim] == 0:
        return z.sum(dim=dim)  # log(1 + 0), still connected to the graph
    m = z.detach().amax(dim=dim, keepdim=True).clamp_min(0.0)
    total = torch.exp(-m) + torch.exp(z - m).sum(dim=dim, keepdim=True)
    return (m + torch.log(total)).squeeze(dim)


def log_weight(w: Tensor, gamma: float) -> Tensor:
    """``γ·log(w)`` for a focal weight ``w`` in [0, 1]; ``-inf`` (no term) where ``w = 0``."""
    positive = w > 0
    safe = torch.where(positive, w, torch.ones_like(w))
    return torch.where(positive, gamma * torch.log(safe), torch.full_like(w, -torch.inf))


def positive_exponent(s: Tensor, alpha: float, delta: float, gamma: float) -> Tensor:
    """``−α(s − δ) + γ·log clamp(1 − s, 0, 1)`` (the log term only when ``γ > 0``)."""
    z = -alpha * (s - delta)
    return z if gamma == 0 else z + log_weight((1 - s).clamp(0.0, 1.0), gamma)


def focal_negative_exponent(
    s: Tensor, alpha: float, delta: float, gamma: float
) -> tuple[Tensor, Tensor]:
    """``z = α(s + δ) + γ·log clamp(s, 0, 1)`` and ``∂z/∂s`` for ``γ > 0`` (no autograd).

    ``log 0 = −inf`` removes the terms with ``s ≤ 0``; their slope is left finite (the weight
    ``1/max(w, 1e-30)``) so that it multiplies their zero ``e^z`` into 0. Above 1 the clamp's
    derivative is 0, as in autograd.
    """
    w = s.clamp(0.0, 1.0)
    z = torch.log(w).mul_(gamma).add_(s, alpha=alpha).add_(alpha * delta)
    slope = w.clamp_min(FOCAL_TINY).reciprocal_().mul_(gamma).add_(alpha)
    return z, slope.masked_fill_(s > 1, alpha)


def positive_term(
    target_sim: Tensor,
    labels: Tensor,
    alpha: float,
    delta: float,
    gamma: float,
    own: Tensor | None = None,
) -> Tensor:
    """``1/|P⁺| Σ_{p∈P⁺} log(1 + Σ_{x∈X_p⁺} e^{z⁺})`` from each sample's cosine to its proxy.

    Row ``j`` of a ``(B, B)`` membership matrix holds the class of the ``j``-th smallest label
    when it is the first of its class (else nothing), so each class in the batch gets one row,
    in ascending order, and no shape depends on the labels. Only the samples in ``own`` count
    in the sums (all by default); ``|P⁺|`` counts the classes of all ``labels``.
    """
    ordered = labels.sort().values
    first = torch.cat([torch.ones_like(ordered[:1], dtype=torch.bool), ordered[1:] != ordered[:-1]])
    members = (ordered.unsqueeze(1) == labels.unsqueeze(0)) & first.unsqueeze(1)
    if own is not None:
        members &= own.unsqueeze(0)
    z = positive_exponent(target_sim, alpha, delta, gamma).unsqueeze(0)
    z = torch.where(members, z, torch.full_like(z, -torch.inf))
    return log1p_sum_exp(z, 1).sum() / first.sum()


# --------------------------------------------------------------------------------------------
# The chunk walk
# --------------------------------------------------------------------------------------------


def gemm_dtype(xn: Tensor, proxies: Tensor) -> torch.dtype:
    """The inputs' dtype, or the autocast dtype when autocast is on (float64 is never cast)."""
    dtype, device = torch.promote_types(xn.dtype, proxies.dtype), xn.device.type
    if dtype != torch.float64 and torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return dtype


@dataclass(frozen=True)
class Block:
    """Classes ``[offset, offset + rows)`` of ``num_classes`` are the proxies' rows held here."""

    offset: int
    num_classes: int


class _Walk:
    """Normalised embeddings, proxies and their inverse norms, walked ``chunk`` rows at a time.

    ``xn`` is in the compute dtype (float32 or wider), ``gemm`` the dtype of the GEMMs.
    ``labels`` index the local rows (``label − offset``); ``own`` marks the samples whose class
    is held here (all of them unless the proxies are sharded).
    """

    def __init__(
        self,
        xn: Tensor,
        proxies: Tensor,
        labels: Tensor,
        chunk: int,
        gemm: torch.dtype,
        offset: int = 0,
    ) -> None:
        self.compute, self.gemm = xn.dtype, gemm
        self.xn, self.proxies, self.chunk = xn, proxies, chunk
        self.labels = labels - offset
        self.own = (self.labels >= 0) & (self.labels < proxies.shape[0])
        self.safe_labels = torch.where(self.own, self.labels, 0)
        self.xg = xn.to(self.gemm)
        norms = torch.linalg.vector_norm(proxies, dim=1, dtype=self.compute)
        self.inv_norm = 1.0 / norms.clamp_min(NORM_EPS)
        # The targets' rows: p̂_y (B, D) and the target cosines s_y (B,) (row 0 where not own).
        targets = self.safe_labels
        self.target_hat = proxies[targets].to(self.compute) * self.inv_norm[targets, None]
        self.target_sim = (xn * self.target_hat).sum(dim=1)

    def blocks(self) -> Iterator[tuple[int, int, Tensor, Tensor]]:
        """Yield ``(start, end, P_c, R_c)``: raw proxy rows and products ``R_c = x̂ P_cᵀ``.

        ``R_c (B, end − start)`` is in the compute dtype; the cosines are ``R_c / ‖p‖``
        (``self.inv_norm[start:end]``), left to the caller to fold into its next operation.
        """
        for start in range(0, self.proxies.shape[0], self.chunk):
            end = min(start + self.chunk, self.proxies.shape[0])
            rows = self.proxies[start:end]
            yield start, end, rows, (self.xg @ rows.to(self.gemm).T).to(self.compute)

    def without_targets(self, z: Tensor, start: int, end: int, fill: float = -torch.inf) -> Tensor:
        """``z`` (B, end − start) with each sample's own-class entry set to ``fill``, in place."""
        inside = (self.labels >= start) & (self.labels < end)
        col = (self.labels - start).clamp(0, end - start - 1).unsqueeze(1)
        kept = z.gather(1, col)
        return z.scatter_(1, col, torch.where(inside.unsqueeze(1), fill, kept))

    def add_block_grads(
        self, gx: Tensor, gp: Tensor, start: int, end: int, rows: Tensor, raw: Tensor, g: Tensor
    ) -> None:
        """Add ``∂L/∂x̂`` and write rows ``start:end`` of ``∂L/∂P`` given ``g = ∂L/∂R_c``.

        With ``s = R/‖p‖``: ``∂L/∂p = Σ_i g_ip x̂_i − (Σ_i g_ip R_ip) p / ‖p‖²``.
        """
        inv = self.inv_norm[start:end]
        coef = torch.linalg.vecdot(g, raw, dim=0).mul_(inv).mul_(inv).unsqueeze(1)
        g = g.to(self.gemm)
        gx.add_(g @ rows.to(self.gemm))
        block = gp[start:end]
        if block.dtype == self.gemm:
            torch.mm(g.T, self.xg, out=block)
        else:
            block.copy_(g.T @ self.xg)
        block.addcmul_(rows.to(gp.dtype), coef.to(gp.dtype), value=-1.0)

    def add_target_grads(self, gx: Tensor, gp: Tensor, g_sim: Tensor) -> None:
        """Add the gradients of a loss through the target cosines, given ``∂L/∂s_y`` (B,).

        ``g_sim`` must be 0 for the samples whose class is not held here.
        """
        gx.add_(g_sim.unsqueeze(1) * self.target_hat)
        radial = self.xn - self.target_sim.unsqueeze(1) * self.target_hat
        rows = g_sim.unsqueeze(1) * radial * self.inv_norm[self.safe_labels, None]
        gp.index_add_(0, self.safe_labels, rows.to(gp.dtype))

    def new_grads(self) -> tuple[Tensor, Tensor]:
        return torch.zeros_like(self.xn), torch.empty_like(self.proxies)


Grads = tuple[Tensor | None, ...]


def scaled_grads(saved: Grads, grad_output: Tensor) -> Grads:
    """The gradients stored by the forward pass times the incoming scalar, on the device.

    Always multiplied: skipping the product when ``grad_output`` is 1 would read it on the host
    (a sync). The product is formed in place, so no second copy of ``∂L/∂P`` (or ``∂L/∂W``) is
    made, unless the graph is kept for another backward (``retain_graph``), which needs the
    stored gradients intact.
    """
    kept = getattr(torch._C._autograd, "_get_current_graph_task_keep_graph", lambda: True)()
    factor = grad_output.detach()
    return tuple(
        None if g is None else g * factor.to(g.dtype) if kept else g.mul_(factor.to(g.dtype))
        for g in saved
    )


# --------------------------------------------------------------------------------------------
# Proxy-Anchor
# --------------------------------------------------------------------------------------------


class _ProxyAnchor(torch.autograd.Function):
    """Chunked (focal) Proxy-Anchor loss of normalised embeddings ``xn`` and raw proxies."""

    @staticmethod
    def forward(
        ctx: Any,
        xn: Tensor,
        proxies: Tensor,
        labels: Tensor,
        alpha: float,
        delta: float,
        pos_gamma: float,
        neg_gamma: float,
        chunk: int,
        block: Block,
    ) -> Tensor:
        gemm = gemm_dtype(xn, proxies)
        with torch.autocast(xn.device.type, enabled=False):  # explicit dtypes from here on
            walk = _Walk(xn, proxies, labels, chunk, gemm, block.offset)
            gx, gp = walk.new_grads()
            inv_classes = 1.0 / block.num_classes
            negative = xn.new_zeros(())
            for start, end, rows, raw in walk.blocks():
                inv = walk.inv_norm[start:end]
                if neg_gamma == 0:
                    # z = α(s + δ) and its column max m ≥ 0 straight from the products; the
                    # targets get the lowest finite product (e^z = 0 and g = 0 there, and
                    # 0·R stays 0 in add_block_grads).
                    walk.without_targets(raw, start, end, torch.finfo(raw.dtype).min)
                    scale = alpha * inv
                    m = (
                        raw.amax(dim=0).mul_(scale).add_(alpha * delta)
                    )  # no scalar copied to the device
                    m.clamp_min_(0.0)
                    e = torch.addcmul(alpha * delta - m, raw, scale).exp_()  # e^{z − m}
                    column, slope = scale, None  # ∂z/∂s = α, folded into the column factor
                else:
                    z, slope = focal_negative_exponent(raw * inv, alpha, delta, neg_gamma)
                    z = walk.without_targets(z, start, end)
                    m = z.amax(dim=0).clamp_min_(0.0)
                    e = z.sub_(m).exp_()  # w^γ e^{α(s+δ)} / e^m, 0 at the targets
                    column = inv
                denom = e.sum(dim=0).add_(torch.exp(-m))
                negative += (m + torch.log(denom)).sum()
                # ∂L/∂R = e^{z−m}/denom · ∂z/∂s / ‖p‖ / C
                g = e.mul_(column / denom * inv_classes)
                if slope is not None:
                    g.mul_(slope)
                walk.add_block_grads(gx, gp, start, end, rows, raw, g)
            with torch.enable_grad():
                target_sim = walk.target_sim.detach().requires_grad_()
                # sharded: the samples whose class is held here; |P⁺| over the whole batch
                positive = positive_term(target_sim, labels, alpha, delta, pos_gamma, walk.own)
                (g_target,) = torch.autograd.grad(positive, target_sim)
            walk.add_target_grads(gx, gp, g_target)
        ctx.save_for_backward(gx, gp)
        return positive.detach() + negative * inv_classes

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        gx, gp = scaled_grads(ctx.saved_tensors, grad_output)
        return gx, gp, None, None, None, None, None, None, None


def proxy_anchor_chunked(
    xn: Tensor,
    proxies: Tensor,
    labels: Tensor,
    alpha: float,
    delta: float,
    pos_gamma: float,
    neg_gamma: float,
    chunk: int,
    block: Block | None = None,
) -> Tensor:
    """(Focal) Proxy-Anchor of normalised ``xn (B, D)`` and raw ``proxies (C, D)``, chunked.

    With a ``block`` of sharded proxies: this block's share of the loss.
    """
    block = block or Block(0, proxies.shape[0])
    args = (alpha, delta, pos_gamma, neg_gamma, chunk, block)
    return _ProxyAnchor.apply(xn, proxies, labels, *args)


# --------------------------------------------------------------------------------------------
# Margin softmax (cosine-softmax cross-entropy, ArcFace, CosFace, sub-center ArcFace)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArcFaceTarget:
    """``φ(s) = cos(arccos s + m)`` for ``θ ≤ π − m``, else ``s − m·sin m``; and ``φ'(s)``."""

    margin: float

    def __call__(self, s: Tensor) -> tuple[Tensor, Tensor]:
        cos_m, sin_m = math.cos(self.margin), math.sin(self.margin)
        c = s.clamp(-1.0, 1.0)
        sin = (1.0 - c * c).clamp_min(0.0).sqrt()
        inside = c >= -cos_m  # θ ≤ π − m
        phi = torch.where(inside, c * cos_m - sin * sin_m, c - self.margin * sin_m)
        # dφ/ds = cos m + sin m · s / sin θ; at sin θ = 0 the (infinite) second term is dropped.
        slope = torch.where(sin > 0, c / torch.where(sin > 0, sin, 1.0), 0.0)
        dphi = torch.where(inside, cos_m + sin_m * slope, torch.ones_like(c))
        return phi, dphi


@dataclass(frozen=True)
class CosFaceTarget:
    """``φ(s) = s − m`` and ``φ'(s) = 1`` (``m = 0``: the plain cosine-softmax)."""

    margin: float

    def __call__(self, s: Tensor) -> tuple[Tensor, Tensor]:
        return s - self.margin, torch.ones_like(s)


Target = ArcFaceTarget | CosFaceTarget


def _margin_walk(
    xn: Tensor,
    proxies: Tensor,
    labels: Tensor,
    groups: int,
    chunk: int,
    gemm: torch.dtype,
    offset: int,
) -> _Walk:
    """The walk over ``proxies`` (classes ``offset …`` of ``groups`` rows each), its targets
    being each sample's most similar own sub-center (row −1 where the class is elsewhere)."""
    local = labels - offset
    if groups == 1:
        return _Walk(xn, proxies, local, chunk, gemm)
    own = (local >= 0) & (local < proxies.shape[0] // groups)
    rows = torch.where(own, local, 0).unsqueeze(1) * groups
    rows = rows + torch.arange(groups, device=labels.device)
    candidates = proxies[rows].to(xn.dtype)  # (B, K, D): the K sub-centers of each target
    norms = torch.linalg.vector_norm(candidates, dim=2).clamp_min(NORM_EPS)
    cosines = torch.linalg.vecdot(candidates, xn.unsqueeze(1), dim=2) / norms
    best = rows.gather(1, cosines.argmax(dim=1, keepdim=True)).squeeze(1)
    return _Walk(xn, proxies, torch.where(own, best, -1), chunk, gemm)


def _class_cosines(
    walk: _Walk, start: int, end: int, raw: Tensor, groups: int
) -> tuple[Tensor, Tensor | None]:
    """Cosines ``(B, n)`` of the chunk's ``n`` classes, and the argmax sub-center (``K > 1``)."""
    cos = raw * walk.inv_norm[start:end]
    if groups == 1:
        return cos, None
    best, index = cos.unflatten(1, (-1, groups)).max(dim=2)
    return best, index


def _without_targets(
    walk: _Walk, z: Tensor, start: int, end: int, groups: int, fill: float
) -> Tensor:
    """``z`` (B, n) over the chunk's ``n`` classes with each sample's own class set to ``fill``."""
    if groups == 1:
        return walk.without_targets(z, start, end, fill)
    classes = torch.arange(start // groups, end // groups, device=z.device)
    own = walk.labels.div(groups, rounding_mode="floor").unsqueeze(1) == classes
    return z.masked_fill_(own, fill)


def _log_partition(
    walk: _Walk, scale: float, groups: int, target_logit: Tensor, sharded: bool
) -> Tensor:
    """``log(e^{σφ_y} + Σ_{c≠y} e^{σ s_c})`` (B,), accumulated online from the target logit
    (held by the rank that owns the class when ``sharded``, then combined over the ranks)."""
    running_max = torch.where(walk.own, target_logit, -torch.inf)
    total = walk.own.to(target_logit.dtype)
    for start, end, _, raw in walk.blocks():
        z, _ = _class_cosines(walk, start, end, raw, groups)
        z = _without_targets(walk, z.mul_(scale), start, end, groups, -torch.inf)
        new_max = torch.maximum(running_max, z.amax(dim=1))
        total = total * torch.exp(running_max - new_max) + z.sub_(new_max[:, None]).exp_().sum(1)
        running_max = new_max
    lse = running_max + torch.log(total)
    return all_reduce_logsumexp(lse) if sharded else lse


def _margin_grads(
    walk: _Walk,
    scale: float,
    groups: int,
    lse: Tensor,
    target: tuple[Tensor, Tensor],
    weight: Tensor,
) -> tuple[Tensor, Tensor]:
    """Gradients of ``Σ_i weight_i·(lse_i − σφ(s_{i,y_i}))`` w.r.t. ``x̂`` and the proxies."""
    gx, gp = walk.new_grads()
    row_factor = (scale * weight).unsqueeze(1)
    for start, end, rows, raw in walk.blocks():
        cos, index = _class_cosines(walk, start, end, raw, groups)
        g = cos.mul_(scale).sub_(lse.unsqueeze(1)).exp_()  # softmax of the non-target classes
        _without_targets(walk, g, start, end, groups, 0.0).mul_(row_factor)
        if index is not None:  # each class's gradient goes to its most similar sub-center
            pooled = torch.zeros_like(raw).unflatten(1, (-1, groups))
            g = pooled.scatter_(2, index.unsqueeze(2), g.unsqueeze(2)).flatten(1)
        walk.add_block_grads(gx, gp, start, end, rows, raw, g.mul_(walk.inv_norm[start:end]))
    phi, dphi = target
    g_target = weight * scale * (torch.exp(scale * phi - lse) - 1.0) * dphi
    walk.add_target_grads(gx, gp, torch.where(walk.own, g_target, 0.0))
    return gx, gp


@dataclass(frozen=True)
class Softmax:
    """A margin softmax: target logit ``φ``, scale ``σ``, ``groups`` sub-centers per class,
    ``chunk`` proxies per chunk, and the proxies' ``block`` of classes."""

    target: Target
    scale: float
    groups: int
    chunk: int
    block: Block

    def walk(self, xn: Tensor, proxies: Tensor, labels: Tensor, gemm: torch.dtype) -> _Walk:
        args = (self.groups, self.chunk, gemm, self.block.offset)
        return _margin_walk(xn, proxies, labels, *args)

    def sharded(self, proxies: Tensor) -> bool:
        return proxies.shape[0] // self.groups < self.block.num_classes


class _MarginSoftmax(torch.autograd.Function):
    """Chunked ``lse_i − σφ(s_{i,y_i})``; reduced with ``weight`` (gradients in forward) or per
    sample (``weight=None``: the gradient pass runs in backward with the incoming weights).
    With sharded proxies, the terms of the samples whose class is held here (0 for the others).
    """

    @staticmethod
    def forward(
        ctx: Any,
        xn: Tensor,
        proxies: Tensor,
        labels: Tensor,
        softmax: Softmax,
        weight: float | None,
    ) -> Tensor:
        gemm = gemm_dtype(xn, proxies)
        scale, groups = softmax.scale, softmax.groups
        with torch.autocast(xn.device.type, enabled=False):  # explicit dtypes from here on
            walk = softmax.walk(xn, proxies, labels, gemm)
            phi, dphi = softmax.target(walk.target_sim)
            lse = _log_partition(walk, scale, groups, scale * phi, softmax.sharded(proxies))
            losses = torch.where(walk.own, lse - scale * phi, 0.0)
            if weight is not None:
                weights = torch.full_like(lse, weight)
                grads = _margin_grads(walk, scale, groups, lse, (phi, dphi), weights)
                ctx.save_for_backward(*grads)
                return (losses * weight).sum()
        ctx.softmax, ctx.gemm = softmax, gemm
        ctx.save_for_backward(xn, proxies, labels, lse)
        return losses

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        if grad_output.dim() == 0:
            gx, gp = scaled_grads(ctx.saved_tensors, grad_output)
        else:
            xn, proxies, labels, lse = ctx.saved_tensors
            softmax: Softmax = ctx.softmax
            with torch.autocast(xn.device.type, enabled=False):
                walk = softmax.walk(xn, proxies, labels, ctx.gemm)
                target = softmax.target(walk.target_sim)
                weight = grad_output.to(lse.dtype)
                gx, gp = _margin_grads(walk, softmax.scale, softmax.groups, lse, target, weight)
        return gx, gp, None, None, None


def margin_softmax_chunked(
    xn: Tensor,
    proxies: Tensor,
    labels: Tensor,
    target: Target,
    scale: float,
    groups: int,
    chunk: int,
    weight: float | None,
    block: Block | None = None,
) -> Tensor:
    """Chunked margin softmax of normalised ``xn (B, D)`` and raw ``proxies (C·K, D)``
    (``K = groups``, class-major; ``chunk`` a multiple of ``K``); ``weight`` reduces (``1/B``
    mean, ``1`` sum) or, as ``None``, keeps the per-sample losses ``(B,)``. With a ``block``
    of sharded proxies: this block's share (see :class:`_MarginSoftmax`)."""
    block = block or Block(0, proxies.shape[0] // groups)
    softmax = Softmax(target, scale, groups, chunk, block)
    return _MarginSoftmax.apply(xn, proxies, labels, softmax, weight)


# --------------------------------------------------------------------------------------------
# The global batch (several processes)
# --------------------------------------------------------------------------------------------


def global_batch(
    x: Tensor, labels: Tensor, gather: bool, block: Block | None
) -> tuple[Tensor, Tensor]:
    """The rows of every rank (``gather``), gathered for shares when the proxies are sharded.

    Replicated proxies: every rank computes the whole loss, so the gathered rows get the
    summed backward of :func:`losskit.distributed.all_gather`. Sharded proxies: each rank
    computes its block's share, so the rows are gathered by
    :func:`losskit.distributed.gather_shares`; pass the share to :func:`finish_shares`.
    """
    if block is not None:
        return gather_shares(x), all_gather(labels)
    return (all_gather(x), all_gather(labels)) if gather else (x, labels)


def finish_shares(loss: Tensor, block: Block | None) -> Tensor:
    """The loss from this block's share (the sum over the ranks), or ``loss`` unsharded."""
    return loss if block is None else sum_shares(loss)
