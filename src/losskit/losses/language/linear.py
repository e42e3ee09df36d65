"""Cross-entropy and log-probabilities of a linear output head, without the logits.

Registry name: ``linear_cross_entropy`` (:class:`LinearCrossEntropyLoss`). Also
:func:`linear_log_probs` and :func:`sequence_log_probs` (per-token and per-sequence
``log p(target)``, the inputs of the preference losses).

The language-model head ``logits = hidden @ weight.T + bias`` is the largest tensor of a
training step at a real vocabulary (8 × 4096 tokens × 256k entries is 16.8 GB in float16 before
its gradient). These functions take the hidden states and the head's weight instead and walk
the logits in blocks (:mod:`losskit.losses.language._vocab_walk`), never holding more than one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from losskit._checks import (
    check_bool,
    check_floating,
    check_int,
    check_labels,
    check_ndim,
    check_number,
    check_shape,
    fail,
    shape_str,
)
from losskit._reduce import Reduction, check_reduction
from losskit.losses.language._vocab_walk import Head, auto_blocks, linear_cross_entropy_walk
from losskit.losses.metric._chunked import gemm_dtype
from losskit.registry import register

__all__ = [
    "LinearCrossEntropyLoss",
    "linear_cross_entropy",
    "linear_log_probs",
    "sequence_log_probs",
]

ChunkSize = int | tuple[int, int] | None


def _check_options(
    fn: str, label_smoothing: float, z_loss: float, softcap: float | None
) -> tuple[float, float, float | None]:
    smoothing = check_number(fn, "label_smoothing", label_smoothing, low=0.0, high=1.0)
    z = check_number(fn, "z_loss", z_loss, low=0.0)
    cap = None if softcap is None else check_number(fn, "softcap", softcap, low=0.0, low_open=True)
    return smoothing, z, cap


def _check_chunk_size(fn: str, chunk_size: object) -> ChunkSize:
    """``None``, an integer ≥ 1 (vocabulary entries per block) or ``(rows, cols)`` ≥ 1."""
    if chunk_size is None:
        return None
    if isinstance(chunk_size, tuple) and len(chunk_size) == 2:
        return check_int(fn, "chunk_size", chunk_size[0], low=1), check_int(
            fn, "chunk_size", chunk_size[1], low=1
        )
    if isinstance(chunk_size, (tuple, list)):
        fail(
            fn, "chunk_size", "an integer or a pair (rows, cols)", repr(chunk_size), kind=TypeError
        )
    return check_int(fn, "chunk_size", chunk_size, low=1)


def _blocks(chunk_size: ChunkSize, hidden: Tensor, weight: Tensor) -> tuple[int, int]:
    """The walk's ``(rows, cols)``: from ``chunk_size``, or chosen by shape."""
    tokens, vocab = hidden.shape[0], weight.shape[0]
    if chunk_size is None:
        gemm = gemm_dtype(hidden, weight)
        exact_acc = gemm in (torch.float32, torch.float64) and weight.dtype == gemm
        return auto_blocks(tokens, vocab, hidden.shape[1], hidden.device.type, exact_acc)
    if isinstance(chunk_size, tuple):
        return max(1, min(chunk_size[0], tokens)), min(chunk_size[1], vocab)
    return max(1, tokens), min(chunk_size, vocab)


def _flatten(
    fn: str,
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    bias: Tensor | None,
    ignore_index: int,
    shift: bool,
) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    """Validated ``hidden (N, D)`` and ``targets (N,)`` (shifted if asked), and the token shape."""
    check_floating(fn, "hidden", hidden)
    check_floating(fn, "weight", weight)
    check_ndim(fn, "weight", weight, 2, "(V, D)")
    vocab, dim = weight.shape
    if shift:
        check_ndim(fn, "hidden", hidden, 3, "(B, T, D) with shift=True")
    elif hidden.dim() < 2:
        fail(fn, "hidden", "to be (N, D) or (B, T, D)", f"shape {shape_str(hidden.shape)}")
    if hidden.shape[-1] != dim:
        fail(fn, "hidden", f"with last dimension D={dim} matching weight (V, D)",
             shape_str(hidden.shape))  # fmt: skip
    if bias is not None:
        check_floating(fn, "bias", bias)
        check_shape(fn, "bias", bias, (vocab,), f"matching weight (V={vocab})")
    check_int(fn, "ignore_index", ignore_index)
    check_labels(fn, "targets", targets, vocab, ignore_index=ignore_index)
    check_shape(fn, "targets", targets, hidden.shape[:-1], "matching hidden without D")
    if shift:  # position t predicts token t + 1
        hidden, targets = hidden[:, :-1], targets[:, 1:]
    return hidden.reshape(-1, dim), targets.reshape(-1), tuple(targets.shape)


def _per_token_or_reduced(
    fn: str,
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    bias: Tensor | None,
    head: Head,
    shift: bool,
    reduction: str,
    chunk_size: object,
) -> Tensor:
    chunk = _check_chunk_size(fn, chunk_size)
    h, y, shape = _flatten(fn, hidden, weight, targets, bias, head.ignore_index, shift)
    out = linear_cross_entropy_walk(h, weight, bias, y, head, _blocks(chunk, h, weight), reduction)
    return out.reshape(shape) if reduction == "none" else out


def linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    *,
    bias: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    shift: bool = False,
    reduction: Reduction = "mean",
    chunk_size: int | tuple[int, int] | None = None,
) -> Tensor:
    """Cross-entropy of a linear head ``hidden @ weight.T + bias``, never holding the logits.

    Formula: with ``z_i = W h_i + b``, capped ``s_i = c·tanh(z_i/c)`` when ``softcap=c`` (Gemma
    2; else ``s = z``) and ``lse_i = logsumexp_j s_ij``, each valid token costs
    ``ℓ_i = (1−ε)·(lse_i − s_{i,y_i}) + ε·(lse_i − (1/V) Σ_j s_ij) + λ·lse_i²`` — PyTorch's
    label-smoothed cross-entropy plus the z-loss ``λ·lse²`` (PaLM), both on the capped logits.
    Equal, value and gradients for ``hidden``, ``weight`` and ``bias``, to
    ``F.cross_entropy(F.linear(hidden, weight, bias), targets, ignore_index=…,
    label_smoothing=…, reduction=…)`` (plus the z-loss, after the softcap). Tokens whose target
    is ``ignore_index`` count 0; ``"mean"`` divides by the valid tokens and is ``0.0`` still
    connected to the graph when none is valid. ``shift=True`` is the next-token form: position
    ``t`` predicts ``targets[:, t+1]`` (pass the model's hidden states and the input ids).

    Speed and memory: the logits are walked in blocks and the gradients formed during the walk
    (one ``(rows, cols)`` block at a time, at most about half the weight's size): with
    whole vocabulary rows per block the cost is the three GEMMs of ``h @ W.T`` forward and
    backward; for half-precision or autocast weights, and when a few vocabulary rows would not
    fit, the vocabulary is walked in two passes (an online log-sum-exp, then the gradients).
    ``"none"`` computes the per-token losses in the forward pass and the gradients in backward,
    for any upstream gradient. Under autocast the GEMMs run in the autocast dtype and the
    log-sum-exp in float32. Only first derivatives (no double backward).

    Args:
        hidden (Tensor[N, D] or Tensor[B, T, D]): the hidden states feeding the head.
        weight (Tensor[V, D]): the head's weight (``nn.Linear(D, V).weight``).
        targets (Tensor[N] or Tensor[B, T]): target ids (int64), ``ignore_index`` where masked.
        bias (Tensor[V], optional): the head's bias.
        ignore_index: target id that contributes nothing.
        label_smoothing: ``ε`` in [0, 1], spread uniformly over the ``V`` entries (PyTorch's).
        z_loss: ``λ ≥ 0``, weight of ``lse²`` per valid token (PaLM uses 1e-4).
        softcap: ``c > 0`` caps the logits to ``c·tanh(z/c)`` before everything else.
        shift: next-token form; needs ``hidden (B, T, D)`` and ``targets (B, T)``.
        reduction: ``"mean" | "sum" | "none"``; ``"none"`` gives one loss per token (``(B, T−1)``
            with ``shift``).
        chunk_size (int or (int, int), optional): vocabulary entries per block (all tokens at
            once), or ``(tokens, vocabulary entries)`` per block; default: chosen by shape.

    Returns:
        Tensor: a scalar, or the per-token losses in the shape of ``targets`` for ``"none"``;
        in the dtype of the inputs.

    Raises:
        ValueError: ``weight`` not 2-D, ``hidden``'s last dimension not ``D``, ``targets`` not
            ``hidden``'s shape without ``D``, a target outside ``[0, V)`` other than
            ``ignore_index``, ``bias`` not ``(V,)``, an option out of range, ``chunk_size`` < 1,
            ``shift=True`` without ``(B, T, D)`` hidden states.
        TypeError: non-floating ``hidden``/``weight``/``bias``, non-integer ``targets`` or
            ``chunk_size``.

    Reference:
        Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models", ICLR 2025;
        Hsu et al., "Liger Kernel: Efficient Triton Kernels for LLM Training", 2024;
        Chowdhery et al., "PaLM", JMLR 2023 (z-loss); Gemma Team, "Gemma 2", 2024 (softcap).

    Example:
        >>> head = torch.nn.Linear(4, 10)
        >>> hidden, targets = torch.randn(6, 4), torch.randint(0, 10, (6,))
        >>> loss = linear_cross_entropy(hidden, head.weight, targets, bias=head.bias)
        >>> dense = torch.nn.functional.cross_entropy(head(hidden), targets)
        >>> bool(torch.allclose(loss, dense, atol=1e-6))
        True
    """
    fn = "linear_cross_entropy"
    check_reduction(fn, reduction)
    check_bool(fn, "shift", shift)
    smoothing, z, cap = _check_options(fn, label_smoothing, z_loss, softcap)
    head = Head(ignore_index, smoothing, z, cap)
    return _per_token_or_reduced(
        fn, hidden, weight, targets, bias, head, shift, reduction, chunk_size
    )


def linear_log_probs(
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    *,
    bias: Tensor | None = None,
    shift: bool = False,
    ignore_index: int = -100,
    softcap: float | None = None,
    chunk_size: int | tuple[int, int] | None = None,
) -> Tensor:
    """Per-token ``log p(target)`` of a linear head, without the logits, with gradients.

    Formula: ``log p_i = s_{i,y_i} − logsumexp_j s_ij`` with ``s = hidden @ weight.T + bias``
    (capped by ``softcap`` as in :func:`linear_cross_entropy`), ``0`` where the target is
    ``ignore_index``: minus :func:`linear_cross_entropy`'s ``reduction="none"`` losses, with
    the same blocks and memory. The gradient is exact for any upstream gradient.

    Args:
        hidden (Tensor[N, D] or Tensor[B, T, D]): the hidden states feeding the head.
        weight (Tensor[V, D]): the head's weight.
        targets (Tensor[N] or Tensor[B, T]): target ids, ``ignore_index`` where masked.
        bias (Tensor[V], optional): the head's bias.
        shift: next-token form (position ``t`` scores ``targets[:, t+1]``).
        ignore_index: target id whose log-probability is reported as 0.
        softcap: ``c > 0`` caps the logits to ``c·tanh(z/c)``.
        chunk_size (int or (int, int), optional): as in :func:`linear_cross_entropy`.

    Returns:
        Tensor: in the shape of ``targets`` (``(B, T−1)`` with ``shift``), inputs' dtype.

    Raises:
        ValueError: as :func:`linear_cross_entropy`.
        TypeError: as :func:`linear_cross_entropy`.

    Reference:
        Rafailov et al., "Direct Preference Optimization", NeurIPS 2023 (the sequence
        log-likelihoods it compares).

    Example:
        >>> w = torch.zeros(8, 3)  # uniform over 8 entries
        >>> linear_log_probs(torch.randn(2, 3), w, torch.tensor([1, -100])).exp()
        tensor([0.1250, 1.0000])
    """
    fn = "linear_log_probs"
    check_bool(fn, "shift", shift)
    _, _, cap = _check_options(fn, 0.0, 0.0, softcap)
    head = Head(ignore_index, 0.0, 0.0, cap)
    nll = _per_token_or_reduced(fn, hidden, weight, targets, bias, head, shift, "none", chunk_size)
    return -nll


def sequence_log_probs(
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    *,
    bias: Tensor | None = None,
    shift: bool = False,
    ignore_index: int = -100,
    softcap: float | None = None,
    average: bool = False,
    chunk_size: int | tuple[int, int] | None = None,
) -> Tensor:
    """Per-sequence ``log π(y | x)``: the sum (or mean) of the valid tokens' log-probabilities.

    Formula: ``log π_b = Σ_{t valid} log p(y_{b,t})`` from :func:`linear_log_probs`; masked
    positions (prompt, padding: ``ignore_index``) add nothing. ``average=True`` divides by the
    number of valid tokens (``0.0`` for a sequence without one): the length-normalised form of
    SimPO's reward and ORPO's odds.

    Args:
        hidden (Tensor[B, T, D]): the hidden states of ``B`` sequences.
        weight (Tensor[V, D]): the head's weight.
        targets (Tensor[B, T]): token ids, ``ignore_index`` where masked.
        bias (Tensor[V], optional): the head's bias.
        shift: next-token form (position ``t`` scores ``targets[:, t+1]``).
        ignore_index: target id that counts 0.
        softcap: ``c > 0`` caps the logits to ``c·tanh(z/c)``.
        average: mean per valid token instead of the sum.
        chunk_size (int or (int, int), optional): as in :func:`linear_cross_entropy`.

    Returns:
        Tensor[B]: in the inputs' dtype.

    Raises:
        ValueError: ``hidden`` not ``(B, T, D)``, or as :func:`linear_cross_entropy`.
        TypeError: as :func:`linear_cross_entropy`.

    Reference:
        Rafailov et al., "Direct Preference Optimization", NeurIPS 2023.

    Example:
        >>> w = torch.zeros(4, 3)  # uniform over 4 entries
        >>> targets = torch.tensor([[0, 1, 2], [3, -100, -100]])
        >>> sequence_log_probs(torch.randn(2, 3, 3), w, targets, average=True).exp()
        tensor([0.2500, 0.2500])
    """
    fn = "sequence_log_probs"
    check_floating(fn, "hidden", hidden)
    check_ndim(fn, "hidden", hidden, 3, "(B, T, D)")
    check_bool(fn, "average", average)
    per_token = linear_log_probs(
        hidden, weight, targets, bias=bias, shift=shift, ignore_index=ignore_index,
        softcap=softcap, chunk_size=chunk_size,
    )  # fmt: skip
    total = per_token.sum(dim=1)
    if not average:
        return total
    kept = targets[:, 1:] if shift else targets
    count = (kept != ignore_index).sum(dim=1).clamp_min(1)
    return total / count.to(total.dtype)


@register(linear_cross_entropy)
class LinearCrossEntropyLoss(nn.Module):
    """Cross-entropy of a linear head without the logits; see :func:`linear_cross_entropy`.

    Example:
        >>> head = torch.nn.Linear(8, 100, bias=False)
        >>> loss_fn = LinearCrossEntropyLoss(shift=True, z_loss=1e-4)
        >>> hidden, tokens = torch.randn(2, 5, 8), torch.randint(0, 100, (2, 5))
        >>> loss_fn(hidden, head.weight, tokens).backward()
        >>> head.weight.grad.shape
        torch.Size([100, 8])
    """

    def __init__(
        self,
        *,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        z_loss: float = 0.0,
        softcap: float | None = None,
        shift: bool = False,
        reduction: Reduction = "mean",
        chunk_size: int | tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        fn = "LinearCrossEntropyLoss"
        self.ignore_index = check_int(fn, "ignore_index", ignore_index)
        self.label_smoothing, self.z_loss, self.softcap = _check_options(
            fn, label_smoothing, z_loss, softcap
        )
        self.shift = check_bool(fn, "shift", shift)
        self.reduction: Reduction = check_reduction(fn, reduction)
        self.chunk_size = _check_chunk_size(fn, chunk_size)

    def extra_repr(self) -> str:
        return (
            f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}, "
            f"z_loss={self.z_loss}, softcap={self.softcap}, shift={self.shift}, "
            f"reduction={self.reduction!r}, chunk_size={self.chunk_size}"
        )

    def forward(
        self, hidden: Tensor, weight: Tensor, targets: Tensor, bias: Tensor | None = None
    ) -> Tensor:
        return linear_cross_entropy(
            hidden,
            weight,
            targets,
            bias=bias,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            z_loss=self.z_loss,
            softcap=self.softcap,
            shift=self.shift,
            reduction=self.reduction,
            chunk_size=self.chunk_size,
        )
