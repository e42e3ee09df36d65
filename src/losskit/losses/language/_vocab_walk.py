"""Exact cross-entropy of a linear head, walked in blocks: the ``(N, V)`` logits are never held.

The loss of :func:`losskit.functional.linear_cross_entropy` on hidden states ``h (N, D)``, an
output weight ``W (V, D)`` and an optional bias ``b (V,)``: per valid token ``i`` with logits
``z_i = W h_i + b`` (capped to ``s = c·tanh(z/c)`` with a softcap ``c``, else ``s = z``),

    ``ℓ_i = lse_i + λ·lse_i² − (1−ε)·s_{i,y_i} − (ε/V)·Σ_j s_ij``,  ``lse_i = logsumexp_j s_ij``

(``ε`` label smoothing as PyTorch defines it, ``λ`` the z-loss weight), whose derivative is

    ``∂ℓ_i/∂s_ij = p_ij·(1 + 2λ·lse_i) − (1−ε)·[j = y_i] − ε/V``,  ``∂s/∂z = 1 − (s/c)²``.

The walk visits ``(rows, cols)`` blocks of the logits: one GEMM gives the block, the
derivative ``G`` above (times each token's gradient weight ``w_i``) is formed in place, and two
GEMMs add the block's share of ``∂L/∂h = G W`` and ``∂L/∂W = Gᵀ h`` (``∂L/∂b = Σ_i G``).

- **Token blocks** (``cols = V``): a block holds whole rows, so each token's log-sum-exp is
  known from its block: one pass, three GEMMs — the cost of ``h @ W.T`` forward and backward.
  ``∂L/∂W`` is accumulated over the token blocks in the weight's dtype.
- **Vocabulary blocks** (``cols < V``): a first pass accumulates each token's log-sum-exp
  online over the vocabulary (one GEMM per block), a second pass forms the gradients; four
  GEMMs. Each row block of ``∂L/∂W`` comes out of one GEMM, which keeps half-precision and
  autocast weights' gradients as accurate as the dense product's; and a single vocabulary row
  never has to fit in a block.

With gradient weights known in the forward pass (``"mean"``, ``"sum"``) the gradients are
formed during the forward walk and ``backward`` only scales them; with ``"none"`` the forward
walk computes the per-token losses alone and ``backward`` walks again with the incoming
per-token gradient as the weights. GEMMs run in the autocast dtype when autocast is on (else in
the inputs' dtype); everything exponential runs in float32 or wider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from losskit.losses.metric._chunked import gemm_dtype, scaled_grads

__all__: list[str] = []

# The automatic plan: a block holds at most half the weight's elements (so the block
# costs little next to W and ∂L/∂W), within [low, high] elements: 2²⁰…2²⁵ on CPU (cache-sized
# to GEMM-efficient), 2²²…2²⁸ on accelerators. Token blocks need at least MIN_ROWS rows to keep
# the GEMMs efficient and ∂L/∂W's read-modify-write traffic small; otherwise, and for
# half-precision weights, the vocabulary is walked in multiples of COL_MULTIPLE entries.
WEIGHT_FRACTION = 2
BLOCK_ELEMENTS = {"cpu": (1 << 20, 1 << 25)}
BLOCK_ELEMENTS_ACCELERATOR = (1 << 22, 1 << 28)
MIN_ROWS = 32
COL_MULTIPLE = 256


@dataclass(frozen=True)
class Head:
    """The loss options of the walk."""

    ignore_index: int
    smoothing: float
    z_loss: float
    softcap: float | None


def auto_blocks(tokens: int, vocab: int, dim: int, device: str, exact_acc: bool) -> tuple[int, int]:
    """``(rows, cols)`` of the walk's blocks, chosen by shape (see the module docstring).

    ``exact_acc`` says whether ``∂L/∂W`` may be accumulated over token blocks in its own dtype
    without losing accuracy (float32 or float64 weights and GEMMs).
    """
    low, high = BLOCK_ELEMENTS.get(device, BLOCK_ELEMENTS_ACCELERATOR)
    budget = min(high, max(low, vocab * dim // WEIGHT_FRACTION))
    rows = budget // max(vocab, 1)
    if exact_acc and (rows >= tokens or rows >= MIN_ROWS):
        return max(1, min(tokens, rows)), vocab
    rows = max(1, min(tokens, budget // COL_MULTIPLE))
    cols = budget // rows // COL_MULTIPLE * COL_MULTIPLE
    return rows, max(1, min(vocab, max(COL_MULTIPLE, cols)))


def _product(out: Tensor, a: Tensor, b: Tensor, first: bool) -> None:
    """``out = a @ b`` (``first``) or ``out += a @ b``, in ``out``'s storage when dtypes allow."""
    if out.dtype == a.dtype:
        if first:
            torch.mm(a, b, out=out)
        else:
            out.addmm_(a, b)
    elif first:
        out.copy_(a @ b)
    else:
        out.add_(a @ b)


class _Walk:
    """The inputs of one walk, their GEMM-dtype copies, and the gradient buffers."""

    def __init__(
        self,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        targets: Tensor,
        head: Head,
        blocks: tuple[int, int],
        gemm: torch.dtype,
        needs: tuple[bool, bool, bool],
    ) -> None:
        self.compute = torch.float64 if gemm == torch.float64 else torch.float32
        self.gemm, self.head, (self.rows, self.cols) = gemm, head, blocks
        self.tokens, self.vocab = hidden.shape[0], weight.shape[0]
        self.hg, self.wg = hidden.to(gemm), weight.to(gemm)
        self.bias = None if bias is None else bias.to(self.compute)
        self.valid = targets != head.ignore_index
        self.targets = torch.where(self.valid, targets, 0)
        need_h, need_w, need_b = needs
        self.gh = torch.zeros_like(hidden, dtype=self.compute) if need_h else None
        # Each row block of ∂L/∂W is first written by a GEMM (no zero fill), unless no token.
        empty = torch.empty_like if self.tokens else torch.zeros_like
        self.gw = empty(weight) if need_w else None
        self.gb = (
            torch.zeros_like(bias, dtype=self.compute) if need_b and bias is not None else None
        )
        self.scratch: dict[str, Tensor] = {}

    @property
    def one_pass(self) -> bool:
        return self.cols >= self.vocab

    def spans(self, size: int, step: int) -> list[tuple[int, int]]:
        return [(a, min(a + step, size)) for a in range(0, size, step)]

    def block(self, name: str, rows: int, cols: int) -> Tensor:
        """A ``(rows, cols)`` compute-dtype view of the walk's buffer ``name``, reused by every
        block: a fresh block per GEMM would cost its page faults each time (15 % of the GEMM
        on a CPU)."""
        buffer = self.scratch.get(name)
        if buffer is None:
            size = min(self.rows, self.tokens) * min(self.cols, self.vocab)
            buffer = torch.empty(size, dtype=self.compute, device=self.hg.device)
            self.scratch[name] = buffer
        return buffer[: rows * cols].view(rows, cols)

    def logits(
        self, r0: int, r1: int, c0: int, c1: int, slope: bool
    ) -> tuple[Tensor, Tensor | None]:
        """The block ``s`` (compute dtype) and, with a softcap and ``slope``, ``1 − (s/c)²``.

        Both live in the walk's buffers until the next block."""
        z = self.block("logits", r1 - r0, c1 - c0)
        if self.gemm == self.compute:
            torch.mm(self.hg[r0:r1], self.wg[c0:c1].T, out=z)
        else:
            z.copy_(self.hg[r0:r1] @ self.wg[c0:c1].T)
        if self.bias is not None:
            z.add_(self.bias[c0:c1])
        cap = self.head.softcap
        if cap is None:
            return z, None
        t = z.div_(cap).tanh_()
        derivative = None
        if slope:
            derivative = torch.mul(t, t, out=self.block("slope", *t.shape)).neg_().add_(1.0)
        return t.mul_(cap), derivative

    def targets_in(self, r0: int, r1: int, c0: int, c1: int) -> tuple[Tensor, Tensor]:
        """Rows ``r0:r1`` whose valid target lies in ``[c0, c1)``, and its column (clamped)."""
        y = self.targets[r0:r1]
        inside = self.valid[r0:r1] & (y >= c0) & (y < c1)
        return inside, (y - c0).clamp(0, c1 - c0 - 1).unsqueeze(1)

    def loss_parts(self, s: Tensor, r0: int, r1: int, c0: int, c1: int) -> tuple[Tensor, Tensor]:
        """The block's share of ``s_{i,y_i}`` and of ``Σ_j s_ij`` (rows ``r0:r1``)."""
        inside, col = self.targets_in(r0, r1, c0, c1)
        target = torch.where(inside, s.gather(1, col).squeeze(1), 0.0)
        total = s.sum(dim=1) if self.head.smoothing else torch.zeros_like(target)
        return target, total

    def add_grads(
        self,
        p: Tensor,
        slope: Tensor | None,
        scale: Tensor,
        weights: Tensor,
        block: tuple[int, int, int, int],
        first: bool,
    ) -> None:
        """Turn ``p`` (rows' softmax, up to the row factor ``scale``) into ``G``; add the grads.

        ``G_ij = w_i·(scale_i·p_ij·(1 + 2λ lse_i)/… − (1−ε)[j = y_i] − ε/V)·∂s/∂z``, with
        ``scale`` already holding ``w_i (1 + 2λ lse_i)`` (and ``1/Z_i`` in the one-pass walk).
        """
        r0, r1, c0, c1 = block
        eps, w = self.head.smoothing, weights[r0:r1]
        g = p.mul_(scale.unsqueeze(1))
        if eps:
            g.sub_((w * (eps / self.vocab)).unsqueeze(1))
        inside, col = self.targets_in(r0, r1, c0, c1)
        g.scatter_add_(1, col, torch.where(inside, -(1.0 - eps) * w, 0.0).unsqueeze(1))
        if slope is not None:
            g.mul_(slope)
        if self.gb is not None:
            self.gb[c0:c1].add_(g.sum(dim=0))
        g = g.to(self.gemm)
        if self.gh is not None:
            _product(self.gh[r0:r1], g, self.wg[c0:c1], first=False)
        if self.gw is not None:
            _product(self.gw[c0:c1], g.T, self.hg[r0:r1], first=first)

    def run(self, weights: Tensor | None, lse: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Walk every block; returns the per-token losses (0 where ignored) and ``lse``.

        ``weights`` (N,) are the tokens' gradient weights (``None``: no gradients); ``lse``
        from an earlier walk spares the vocabulary walk its first pass.
        """
        losses = torch.zeros(self.tokens, dtype=self.compute, device=self.hg.device)
        all_lse = torch.zeros_like(losses) if lse is None else lse
        for r0, r1 in self.spans(self.tokens, self.rows):
            first = r0 == 0
            if self.one_pass:
                row_lse, target, total = self._one_pass(weights, r0, r1, first)
            else:
                if lse is None:
                    row_lse, target, total = self._log_partition(r0, r1)
                else:
                    row_lse, target, total = lse[r0:r1], None, None
                if weights is not None:
                    self._gradient_pass(weights, row_lse, r0, r1, first)
            if lse is None:
                all_lse[r0:r1] = row_lse
            if target is not None and total is not None:
                head = self.head
                loss = row_lse * (1.0 + head.z_loss * row_lse) - (1.0 - head.smoothing) * target
                loss = loss - (head.smoothing / self.vocab) * total
                losses[r0:r1] = torch.where(self.valid[r0:r1], loss, 0.0)
        return losses, all_lse

    def _one_pass(
        self, weights: Tensor | None, r0: int, r1: int, first: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        s, slope = self.logits(r0, r1, 0, self.vocab, weights is not None)
        target, total = self.loss_parts(s, r0, r1, 0, self.vocab)
        top = s.amax(dim=1, keepdim=True)
        e = s.sub_(top).exp_()
        z = e.sum(dim=1)
        row_lse = top.squeeze(1) + torch.log(z)
        if weights is not None:
            scale = weights[r0:r1] * (1.0 + 2.0 * self.head.z_loss * row_lse) / z
            self.add_grads(e, slope, scale, weights, (r0, r1, 0, self.vocab), first)
        return row_lse, target, total

    def _log_partition(self, r0: int, r1: int) -> tuple[Tensor, Tensor, Tensor]:
        """Rows' ``lse`` accumulated online over the vocabulary, with the loss parts."""
        n = r1 - r0
        top = torch.full((n,), -torch.inf, dtype=self.compute, device=self.hg.device)
        z, target, total = torch.zeros_like(top), torch.zeros_like(top), torch.zeros_like(top)
        for c0, c1 in self.spans(self.vocab, self.cols):
            s, _ = self.logits(r0, r1, c0, c1, False)
            part_target, part_total = self.loss_parts(s, r0, r1, c0, c1)
            target += part_target
            total += part_total
            new_top = torch.maximum(top, s.amax(dim=1))
            z = z * torch.exp(top - new_top) + s.sub_(new_top.unsqueeze(1)).exp_().sum(dim=1)
            top = new_top
        return top + torch.log(z), target, total

    def _gradient_pass(
        self, weights: Tensor, row_lse: Tensor, r0: int, r1: int, first: bool
    ) -> None:
        scale = weights[r0:r1] * (1.0 + 2.0 * self.head.z_loss * row_lse)
        for c0, c1 in self.spans(self.vocab, self.cols):
            s, slope = self.logits(r0, r1, c0, c1, True)
            p = s.sub_(row_lse.unsqueeze(1)).exp_()
            self.add_grads(p, slope, scale, weights, (r0, r1, c0, c1), first)

    def grads(self, hidden: Tensor, bias: Tensor | None) -> tuple[Tensor | None, ...]:
        gh = None if self.gh is None else self.gh.to(hidden.dtype)
        gb = None if self.gb is None or bias is None else self.gb.to(bias.dtype)
        return gh, self.gw, gb


class _LinearCrossEntropy(torch.autograd.Function):
    """Per-token (``reduction="none"``) or reduced linear cross-entropy; see the module doc."""

    @staticmethod
    def forward(
        ctx: Any,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        targets: Tensor,
        head: Head,
        blocks: tuple[int, int],
        reduction: str,
    ) -> Tensor:
        gemm = gemm_dtype(hidden, weight)
        out_dtype = torch.promote_types(hidden.dtype, weight.dtype)
        needs = tuple(ctx.needs_input_grad[:3])
        with torch.autocast(hidden.device.type, enabled=False):  # explicit dtypes from here on
            walk = _Walk(hidden, weight, bias, targets, head, blocks, gemm, needs)
            if reduction == "none":
                losses, lse = walk.run(None)
                ctx.head, ctx.blocks, ctx.gemm = head, blocks, gemm
                ctx.save_for_backward(hidden, weight, bias, targets, lse)
                return losses.to(out_dtype)
            weights = walk.valid.to(walk.compute)
            if reduction == "mean":
                weights = weights / weights.sum().clamp_min(1.0)
            losses, _ = walk.run(weights)
        ctx.save_for_backward(*walk.grads(hidden, bias))
        return (losses * weights).sum().to(out_dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        if grad_output.dim() == 0:
            gh, gw, gb = scaled_grads(ctx.saved_tensors, grad_output)
        else:
            hidden, weight, bias, targets, lse = ctx.saved_tensors
            needs = tuple(ctx.needs_input_grad[:3])
            with torch.autocast(hidden.device.type, enabled=False):
                walk = _Walk(hidden, weight, bias, targets, ctx.head, ctx.blocks, ctx.gemm, needs)
                weights = torch.where(walk.valid, grad_output.to(walk.compute), 0.0)
                walk.run(weights, lse=None if walk.one_pass else lse)
                gh, gw, gb = walk.grads(hidden, bias)
        return gh, gw, gb, None, None, None, None


def linear_cross_entropy_walk(
    hidden: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    targets: Tensor,
    head: Head,
    blocks: tuple[int, int],
    reduction: str,
) -> Tensor:
    """Linear cross-entropy of ``hidden (N, D)``, ``weight (V, D)``, ``targets (N,)`` in
    ``(rows, cols)`` blocks: a scalar (``"mean"``, ``"sum"``) or per-token losses ``(N,)``."""
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets, head, blocks, reduction)
