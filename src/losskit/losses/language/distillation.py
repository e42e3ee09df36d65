"""Distillation losses between a student's and a teacher's logits: KL divergence and JSD.

Registry names: ``kl_divergence`` (:class:`KLDivergenceLoss`), ``jsd`` (:class:`JSDLoss`).
Both work in log space in float32 or wider (finite in bf16 and fp16), take logits ``(..., V)``
and optional ``targets (...)`` whose ``ignore_index`` positions (prompt, padding) count 0.
``"mean"`` averages over the counted positions (tokens): the sum over the vocabulary, then the
mean over tokens — ``F.kl_div(..., reduction="batchmean")`` on ``(tokens, V)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import (
    check_choice,
    check_floating,
    check_int,
    check_labels,
    check_number,
    check_same_shape,
    check_shape,
    fail,
)
from losskit._reduce import Reduction, check_reduction, reduce, upcast
from losskit.registry import register

__all__ = ["JSDLoss", "KLDivergenceLoss", "jsd", "kl_divergence"]

DIRECTIONS = ("forward", "reverse")


def _kl_terms(log_p: Tensor, log_q: Tensor) -> Tensor:
    """``Σ_v p (log p − log q)`` over the last dimension; a zero ``p`` adds 0 (not NaN)."""
    terms = torch.exp(log_p) * (log_p - log_q)
    return torch.where(log_p > -torch.inf, terms, 0.0).sum(dim=-1)


def _log_probs(
    fn: str, student: Tensor, teacher: Tensor, temperature: float, targets: Tensor | None,
    ignore_index: int,
) -> tuple[Tensor, Tensor, Tensor | None]:  # fmt: skip
    """Validated tempered log-softmaxes (float32 or wider) and the counted positions."""
    check_floating(fn, "student_logits", student)
    check_floating(fn, "teacher_logits", teacher)
    check_same_shape(fn, "teacher_logits", teacher, "student_logits", student)
    if student.dim() < 1:
        fail(fn, "student_logits", "of shape (..., V)", tuple(student.shape))
    check_int(fn, "ignore_index", ignore_index)
    valid = None
    if targets is not None:
        check_labels(fn, "targets", targets, student.shape[-1], ignore_index=ignore_index)
        check_shape(fn, "targets", targets, student.shape[:-1], "matching the logits without V")
        valid = targets != ignore_index
    log_s = F.log_softmax(upcast(student) / temperature, dim=-1)
    log_t = F.log_softmax(upcast(teacher) / temperature, dim=-1)
    return log_s, log_t, valid


def _reduced(fn: str, per_token: Tensor, valid: Tensor | None, reduction: str, dtype: torch.dtype):
    if valid is not None:
        per_token = torch.where(valid, per_token, 0.0)
        count: Tensor | float = valid.sum()
    else:
        count = float(per_token.numel())
    return reduce(per_token, reduction, fn=fn, denominator=count, dtype=dtype)


def kl_divergence(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    temperature: float = 1.0,
    direction: str = "forward",
    targets: Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> Tensor:
    """Knowledge-distillation KL divergence between tempered softmaxes, scaled by ``T²``.

    Formula: with ``P_t = softmax(z_t/T)`` and ``P_s = softmax(z_s/T)`` per position,
    ``"forward"``: ``T²·KL(P_t ‖ P_s) = T² Σ_v P_t (log P_t − log P_s)`` (Hinton's, mean-seeking);
    ``"reverse"``: ``T²·KL(P_s ‖ P_t)`` (mode-seeking, as in MiniLLM). ``T²`` keeps the
    gradient's scale independent of ``T``. ``"mean"`` averages over the counted positions
    (tokens; those with a ``targets`` entry other than ``ignore_index``, or all when ``targets``
    is ``None``), i.e. ``batchmean`` per token; ``0.0`` still connected when none counts.

    Args:
        student_logits (Tensor[..., V]): the student's logits (e.g. ``(B, T, V)``).
        teacher_logits (Tensor[..., V]): the teacher's logits, same shape (detach them).
        temperature: ``T > 0``.
        direction: ``"forward" | "reverse"``.
        targets (Tensor[...], optional): token ids; positions equal to ``ignore_index`` count 0.
        ignore_index: the masked id in ``targets``.
        reduction: ``"mean" | "sum" | "none"``; ``"none"`` gives one value per position.

    Returns:
        Tensor: a scalar, or ``Tensor[...]`` for ``"none"``; in the dtype of ``student_logits``.

    Raises:
        ValueError: shapes that differ, ``targets`` not the logits' shape without ``V``, a
            ``temperature`` ≤ 0 or an unknown ``direction``.
        TypeError: non-floating logits or non-integer targets.

    Reference:
        Hinton et al., "Distilling the Knowledge in a Neural Network", 2015; Gu et al.,
        "MiniLLM: Knowledge Distillation of Large Language Models", ICLR 2024.

    Example:
        >>> z = torch.randn(2, 5)
        >>> float(kl_divergence(z, z))
        0.0
    """
    fn = "kl_divergence"
    t = check_number(fn, "temperature", temperature, low=0.0, low_open=True)
    check_choice(fn, "direction", direction, DIRECTIONS)
    check_reduction(fn, reduction)
    log_s, log_t, valid = _log_probs(fn, student_logits, teacher_logits, t, targets, ignore_index)
    kl = _kl_terms(log_t, log_s) if direction == "forward" else _kl_terms(log_s, log_t)
    return _reduced(fn, kl * (t * t), valid, reduction, student_logits.dtype)


def jsd(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    beta: float = 0.5,
    temperature: float = 1.0,
    targets: Tensor | None = None,
    ignore_index: int = -100,
    reduction: Reduction = "mean",
) -> Tensor:
    """Generalised Jensen–Shannon divergence between the teacher's and student's softmaxes.

    Formula: ``M = β·P_t + (1−β)·P_s``, ``JSD_β = β·KL(P_t ‖ M) + (1−β)·KL(P_s ‖ M)``, with
    ``P = softmax(z/T)`` and no ``T²`` factor; ``log M`` is a log-sum-exp of
    ``log β + log P_t`` and ``log(1−β) + log P_s``, so everything stays in log space. ``β = 0.5``
    is the symmetric JSD (at most ``log 2``); ``β`` is open at both ends because the divergence
    vanishes identically there (use :func:`kl_divergence`). ``"mean"`` averages over the
    counted positions, as :func:`kl_divergence`.

    Args:
        student_logits (Tensor[..., V]): the student's logits.
        teacher_logits (Tensor[..., V]): the teacher's logits, same shape.
        beta: ``β`` in (0, 1), the teacher's weight in the mixture.
        temperature: ``T > 0``.
        targets (Tensor[...], optional): token ids; positions equal to ``ignore_index`` count 0.
        ignore_index: the masked id in ``targets``.
        reduction: ``"mean" | "sum" | "none"``.

    Returns:
        Tensor: a scalar, or ``Tensor[...]`` for ``"none"``; in the dtype of ``student_logits``.

    Raises:
        ValueError: as :func:`kl_divergence`, or ``beta`` outside (0, 1).
        TypeError: as :func:`kl_divergence`.

    Reference:
        Agarwal et al., "On-Policy Distillation of Language Models: Learning from
        Self-Generated Mistakes" (GKD), ICLR 2024; Lin, "Divergence measures based on the
        Shannon entropy", IEEE Trans. Inf. Theory 1991.

    Example:
        >>> big = torch.tensor([[30.0, -30.0]])
        >>> round(float(jsd(big, -big)), 4)  # disjoint distributions: log 2
        0.6931
    """
    fn = "jsd"
    b = check_number(fn, "beta", beta, low=0.0, high=1.0, low_open=True, high_open=True)
    t = check_number(fn, "temperature", temperature, low=0.0, low_open=True)
    check_reduction(fn, reduction)
    log_s, log_t, valid = _log_probs(fn, student_logits, teacher_logits, t, targets, ignore_index)
    log_m = torch.logaddexp(log_t + math.log(b), log_s + math.log1p(-b))
    per_token = b * _kl_terms(log_t, log_m) + (1.0 - b) * _kl_terms(log_s, log_m)
    return _reduced(fn, per_token, valid, reduction, student_logits.dtype)


@register(kl_divergence)
class KLDivergenceLoss(nn.Module):
    """Distillation KL divergence with temperature; see :func:`kl_divergence`.

    Example:
        >>> loss_fn = KLDivergenceLoss(temperature=2.0, direction="reverse")
        >>> z = torch.randn(3, 7)
        >>> float(loss_fn(z, z))
        0.0
    """

    def __init__(
        self,
        *,
        temperature: float = 1.0,
        direction: str = "forward",
        ignore_index: int = -100,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        fn = "KLDivergenceLoss"
        self.temperature = check_number(fn, "temperature", temperature, low=0.0, low_open=True)
        self.direction = check_choice(fn, "direction", direction, DIRECTIONS)
        self.ignore_index = check_int(fn, "ignore_index", ignore_index)
        self.reduction: Reduction = check_reduction(fn, reduction)

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, direction={self.direction!r}, "
            f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"
        )

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor | None = None
    ) -> Tensor:
        return kl_divergence(
            student_logits, teacher_logits, temperature=self.temperature,
            direction=self.direction, targets=targets, ignore_index=self.ignore_index,
            reduction=self.reduction,
        )  # fmt: skip


@register(jsd)
class JSDLoss(nn.Module):
    """Generalised Jensen–Shannon divergence for distillation; see :func:`jsd`.

    Example:
        >>> z = torch.randn(2, 4, 9)
        >>> abs(float(JSDLoss(beta=0.3)(z, z))) < 1e-6
        True
    """

    def __init__(
        self,
        *,
        beta: float = 0.5,
        temperature: float = 1.0,
        ignore_index: int = -100,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        fn = "JSDLoss"
        self.beta = check_number(fn, "beta", beta, low=0.0, high=1.0, low_open=True,
                                 high_open=True)  # fmt: skip
        self.temperature = check_number(fn, "temperature", temperature, low=0.0, low_open=True)
        self.ignore_index = check_int(fn, "ignore_index", ignore_index)
        self.reduction: Reduction = check_reduction(fn, reduction)

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta}, temperature={self.temperature}, "
            f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"
        )

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor | None = None
    ) -> Tensor:
        return jsd(
            student_logits, teacher_logits, beta=self.beta, temperature=self.temperature,
            targets=targets, ignore_index=self.ignore_index, reduction=self.reduction,
        )  # fmt: skip
