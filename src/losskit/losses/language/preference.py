"""Preference-optimisation losses on per-sequence log-probabilities: DPO, SimPO, ORPO, KTO.

Registry names: ``dpo`` (:class:`DPOLoss`), ``simpo`` (:class:`SimPOLoss`), ``orpo``
(:class:`ORPOLoss`), ``kto`` (:class:`KTOLoss`). Inputs are the summed (or, for ORPO, mean
per-token) log-probabilities ``(B,)`` of whole answers, e.g. from
:func:`losskit.functional.sequence_log_probs`. Everything runs in float32 or wider; the loss is
cast back to the inputs' dtype. ``return_rewards=True`` adds the implicit rewards, detached.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import (
    check_bool,
    check_choice,
    check_floating,
    check_ndim,
    check_number,
    check_same_shape,
    check_values,
    fail,
)
from losskit._reduce import Reduction, check_reduction, reduce, upcast
from losskit.registry import register

__all__ = [
    "DPOLoss",
    "KTOLoss",
    "ORPOLoss",
    "SimPOLoss",
    "dpo",
    "kto",
    "orpo",
    "simpo",
]

DPO_TYPES = ("sigmoid", "hinge", "ipo", "robust")
LossOrRewards = Tensor | tuple[Tensor, Tensor, Tensor]


def _pair(fn: str, chosen: Tensor, rejected: Tensor, names: tuple[str, str]) -> None:
    check_floating(fn, names[0], chosen)
    check_floating(fn, names[1], rejected)
    if chosen.dim() != 1:
        fail(fn, names[0], "of shape (B,)", tuple(chosen.shape))
    check_same_shape(fn, names[1], rejected, names[0], chosen)


def _finish(
    fn: str,
    losses: Tensor,
    reduction: str,
    dtype: torch.dtype,
    return_rewards: bool,
    rewards: tuple[Tensor, Tensor],
) -> LossOrRewards:
    loss = reduce(losses, reduction, fn=fn, dtype=dtype)
    if not return_rewards:
        return loss
    return loss, rewards[0].detach().to(dtype), rewards[1].detach().to(dtype)


def dpo(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    reference_chosen: Tensor,
    reference_rejected: Tensor,
    *,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    return_rewards: bool = False,
) -> LossOrRewards:
    """Direct Preference Optimization and its variants on sequence log-probabilities.

    Formula: with the log-ratio margin
    ``h = (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))`` per pair:

    - ``"sigmoid"`` (DPO; cDPO with ``ε`` = ``label_smoothing``):
      ``−(1−ε)·log σ(β h) − ε·log σ(−β h)``;
    - ``"hinge"`` (SLiC): ``max(0, 1 − β h)``;
    - ``"ipo"``: ``(h − 1/(2β))²``, minimised at the target margin ``h = 1/(2β)``;
    - ``"robust"`` (rDPO, unbiased under label flips of rate ``ε``):
      ``((1−ε)·(−log σ(β h)) − ε·(−log σ(−β h))) / (1 − 2ε)``.

    The implicit rewards are ``β·(log π − log π_ref)`` of the chosen and rejected answers.
    ``β → 0`` (or equal log-ratios) gives ``log 2`` for ``"sigmoid"``. IPO here uses the inputs
    as given (pass length-averaged log-probabilities for the paper's per-token form).

    Args:
        policy_chosen (Tensor[B]): ``log π(y_w | x)`` of the trained policy.
        policy_rejected (Tensor[B]): ``log π(y_l | x)``.
        reference_chosen (Tensor[B]): ``log π_ref(y_w | x)`` of the frozen reference.
        reference_rejected (Tensor[B]): ``log π_ref(y_l | x)``.
        beta: ``β > 0``, the strength of the KL regularisation towards the reference.
        loss_type: ``"sigmoid" | "hinge" | "ipo" | "robust"``.
        label_smoothing: ``ε``, the assumed rate of flipped preferences: in [0, 0.5] for
            ``"sigmoid"``, [0, 0.5) for ``"robust"``, 0 for ``"hinge"`` and ``"ipo"``.
        reduction: ``"mean" | "sum" | "none"`` over the pairs.
        return_rewards: also return the chosen and rejected rewards ``(B,)``, detached.

    Returns:
        Tensor, or ``(loss, chosen_rewards, rejected_rewards)``; in the dtype of
        ``policy_chosen``.

    Raises:
        ValueError: inputs not all ``(B,)``, ``beta`` ≤ 0, an unknown ``loss_type``, or
            ``label_smoothing`` out of range for the loss type.
        TypeError: non-floating inputs.

    Reference:
        Rafailov et al., "Direct Preference Optimization", NeurIPS 2023; Azar et al., "A General
        Theoretical Paradigm to Understand Learning from Human Preferences" (IPO), AISTATS 2024;
        Chowdhury et al., "Provably Robust DPO", ICML 2024; Zhao et al., "SLiC-HF", 2023.

    Example:
        >>> same = torch.tensor([-5.0])
        >>> round(float(dpo(same, same, same, same)), 4)  # log 2
        0.6931
    """
    fn = "dpo"
    _pair(fn, policy_chosen, policy_rejected, ("policy_chosen", "policy_rejected"))
    _pair(fn, reference_chosen, reference_rejected, ("reference_chosen", "reference_rejected"))
    check_same_shape(fn, "reference_chosen", reference_chosen, "policy_chosen", policy_chosen)
    beta = check_number(fn, "beta", beta, low=0.0, low_open=True)
    check_choice(fn, "loss_type", loss_type, DPO_TYPES)
    eps = _dpo_smoothing(fn, loss_type, label_smoothing)
    check_reduction(fn, reduction)
    check_bool(fn, "return_rewards", return_rewards)
    chosen = upcast(policy_chosen) - upcast(reference_chosen)
    rejected = upcast(policy_rejected) - upcast(reference_rejected)
    losses = _dpo_losses(chosen - rejected, beta, loss_type, eps)
    rewards = (beta * chosen, beta * rejected)
    return _finish(fn, losses, reduction, policy_chosen.dtype, return_rewards, rewards)


def _dpo_losses(h: Tensor, beta: float, loss_type: str, eps: float) -> Tensor:
    """The per-pair DPO-family loss of the log-ratio margins ``h``."""
    if loss_type == "hinge":
        return F.relu(1.0 - beta * h)
    if loss_type == "ipo":
        return (h - 1.0 / (2.0 * beta)).square()
    right = -F.logsigmoid(beta * h)
    wrong = -F.logsigmoid(-beta * h)  # −log σ(−βh): the loss if the labels were flipped
    if loss_type == "sigmoid":
        return (1.0 - eps) * right + eps * wrong
    return ((1.0 - eps) * right - eps * wrong) / (1.0 - 2.0 * eps)  # "robust"


def _dpo_smoothing(fn: str, loss_type: str, label_smoothing: float) -> float:
    if loss_type in ("hinge", "ipo"):
        eps = check_number(fn, "label_smoothing", label_smoothing)
        if eps != 0.0:
            fail(fn, "label_smoothing", f"0.0 for loss_type={loss_type!r}", repr(label_smoothing))
        return eps
    high_open = loss_type == "robust"
    return check_number(
        fn, "label_smoothing", label_smoothing, low=0.0, high=0.5, high_open=high_open
    )


def simpo(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
    *,
    beta: float = 2.0,
    gamma: float = 0.5,
    reduction: Reduction = "mean",
    return_rewards: bool = False,
) -> LossOrRewards:
    """SimPO: reference-free preference loss on length-normalised log-probabilities.

    Formula: ``ℓ = −log σ(β·log π(y_w)/|y_w| − β·log π(y_l)/|y_l| − γ)`` with summed
    log-probabilities and the answers' token counts ``|y|``; ``γ`` is the target reward margin.
    The implicit rewards are ``β·log π(y)/|y|``.

    Args:
        policy_chosen (Tensor[B]): summed ``log π(y_w | x)``.
        policy_rejected (Tensor[B]): summed ``log π(y_l | x)``.
        chosen_lengths (Tensor[B]): ``|y_w|``, the number of answer tokens (> 0).
        rejected_lengths (Tensor[B]): ``|y_l|`` (> 0).
        beta: ``β > 0``, the reward scale.
        gamma: ``γ ≥ 0``, the target margin.
        reduction: ``"mean" | "sum" | "none"`` over the pairs.
        return_rewards: also return the chosen and rejected rewards, detached.

    Returns:
        Tensor, or ``(loss, chosen_rewards, rejected_rewards)``; in the dtype of
        ``policy_chosen``.

    Raises:
        ValueError: shapes that differ, a length ≤ 0, ``beta`` ≤ 0 or ``gamma`` < 0.
        TypeError: non-floating log-probabilities, non-tensor lengths.

    Reference:
        Meng et al., "SimPO: Simple Preference Optimization with a Reference-Free Reward",
        NeurIPS 2024.

    Example:
        >>> lp, n = torch.tensor([-4.0]), torch.tensor([2])
        >>> round(float(simpo(lp, lp, n, n, gamma=0.0)), 4)  # log 2
        0.6931
    """
    fn = "simpo"
    _pair(fn, policy_chosen, policy_rejected, ("policy_chosen", "policy_rejected"))
    lengths = []
    for name, n in (("chosen_lengths", chosen_lengths), ("rejected_lengths", rejected_lengths)):
        if not isinstance(n, Tensor):
            fail(fn, name, "to be a torch.Tensor", type(n).__name__, kind=TypeError)
        check_same_shape(fn, name, n, "policy_chosen", policy_chosen)
        check_values(fn, name, n.double(), low=torch.finfo(torch.float64).tiny)
        lengths.append(n.to(upcast(policy_chosen).dtype))
    beta = check_number(fn, "beta", beta, low=0.0, low_open=True)
    gamma = check_number(fn, "gamma", gamma, low=0.0)
    check_reduction(fn, reduction)
    check_bool(fn, "return_rewards", return_rewards)
    chosen = beta * upcast(policy_chosen) / lengths[0]
    rejected = beta * upcast(policy_rejected) / lengths[1]
    losses = -F.logsigmoid(chosen - rejected - gamma)
    return _finish(fn, losses, reduction, policy_chosen.dtype, return_rewards, (chosen, rejected))


def _log1m_exp(x: Tensor) -> Tensor:
    """``log(1 − eˣ)`` for ``x < 0``, accurate near 0 and for very negative ``x``."""
    near_zero = x > -0.6931471805599453
    safe = torch.where(near_zero, x, -1.0)
    return torch.where(near_zero, torch.log(-torch.expm1(safe)), torch.log1p(-torch.exp(x)))


def orpo(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    *,
    lambda_: float = 0.1,
    reduction: Reduction = "mean",
    return_rewards: bool = False,
) -> LossOrRewards:
    """ORPO: the chosen answer's NLL plus an odds-ratio preference term (no reference model).

    Formula: with mean per-token log-probabilities ``ℓ_w, ℓ_l`` (< 0) and
    ``log odds(y) = ℓ − log(1 − e^ℓ)``: ``L = −ℓ_w − λ·log σ(log odds(y_w) − log odds(y_l))``.
    The rewards reported are ``λ·ℓ`` of each answer.

    Args:
        policy_chosen (Tensor[B]): mean per-token ``log π(y_w | x)`` (negative).
        policy_rejected (Tensor[B]): mean per-token ``log π(y_l | x)`` (negative).
        lambda_: ``λ ≥ 0``, the weight of the odds-ratio term.
        reduction: ``"mean" | "sum" | "none"`` over the pairs.
        return_rewards: also return the chosen and rejected rewards, detached.

    Returns:
        Tensor, or ``(loss, chosen_rewards, rejected_rewards)``; in the dtype of
        ``policy_chosen``.

    Raises:
        ValueError: shapes that differ, a log-probability ≥ 0, or ``lambda_`` < 0.
        TypeError: non-floating inputs.

    Reference:
        Hong et al., "ORPO: Monolithic Preference Optimization without Reference Model",
        EMNLP 2024.

    Example:
        >>> lp = torch.tensor([-1.0])
        >>> round(float(orpo(lp, lp, lambda_=1.0)), 4)  # 1 + log 2
        1.6931
    """
    fn = "orpo"
    _pair(fn, policy_chosen, policy_rejected, ("policy_chosen", "policy_rejected"))
    for name, x in (("policy_chosen", policy_chosen), ("policy_rejected", policy_rejected)):
        check_values(fn, name, x.detach(), high=-torch.finfo(torch.float32).tiny)
    lam = check_number(fn, "lambda_", lambda_, low=0.0)
    check_reduction(fn, reduction)
    check_bool(fn, "return_rewards", return_rewards)
    chosen, rejected = upcast(policy_chosen), upcast(policy_rejected)
    log_odds = (chosen - _log1m_exp(chosen)) - (rejected - _log1m_exp(rejected))
    losses = -chosen - lam * F.logsigmoid(log_odds)
    rewards = (lam * chosen, lam * rejected)
    return _finish(fn, losses, reduction, policy_chosen.dtype, return_rewards, rewards)


def kto(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    reference_chosen: Tensor,
    reference_rejected: Tensor,
    *,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    kl_log_ratios: Tensor | None = None,
    reduction: Reduction = "mean",
    return_rewards: bool = False,
) -> LossOrRewards:
    """KTO: Kahneman–Tversky optimisation on unpaired desirable and undesirable answers.

    Formula: with log-ratios ``r = log π(y) − log π_ref(y)`` and the reference point
    ``z₀ = max(0, mean(r_KL))`` (detached), a desirable answer costs
    ``λ_D·(1 − σ(β(r − z₀)))`` and an undesirable one ``λ_U·(1 − σ(β(z₀ − r)))``; ``"mean"``
    averages over all ``B_w + B_l`` answers (``"none"`` returns them concatenated, desirable
    first). ``z₀`` estimates ``KL(π ‖ π_ref)``: the paper (and TRL) use the log-ratios of
    mismatched prompt–answer pairs of the batch — pass them as ``kl_log_ratios``; by default
    the batch's own log-ratios (desirable and undesirable together) stand in. Either way ``z₀``
    is detached, as in the paper: it sets the reference point, it is not optimised.
    Rewards: ``β·r``.

    Args:
        policy_chosen (Tensor[B_w]): ``log π(y | x)`` of the desirable answers.
        policy_rejected (Tensor[B_l]): ``log π(y | x)`` of the undesirable answers.
        reference_chosen (Tensor[B_w]): ``log π_ref`` of the desirable answers.
        reference_rejected (Tensor[B_l]): ``log π_ref`` of the undesirable answers.
        beta: ``β > 0``.
        desirable_weight: ``λ_D ≥ 0``.
        undesirable_weight: ``λ_U ≥ 0``.
        kl_log_ratios (Tensor[K], optional): ``log π(y'|x) − log π_ref(y'|x)`` on mismatched
            pairs, for ``z₀``.
        reduction: ``"mean" | "sum" | "none"`` over all answers.
        return_rewards: also return the desirable and undesirable rewards, detached.

    Returns:
        Tensor, or ``(loss, chosen_rewards, rejected_rewards)``; in the dtype of
        ``policy_chosen``.

    Raises:
        ValueError: a policy and its reference of different shapes, no answer at all, or a
            hyper-parameter out of range.
        TypeError: non-floating inputs.

    Reference:
        Ethayarajh et al., "KTO: Model Alignment as Prospect Theoretic Optimization", ICML 2024.

    Example:
        >>> x = torch.tensor([-3.0])
        >>> float(kto(x, x, x, x))  # r = z₀ = 0: each answer costs 1 − σ(0)
        0.5
    """
    fn = "kto"
    _check_kto_inputs(fn, policy_chosen, policy_rejected, reference_chosen, reference_rejected)
    beta = check_number(fn, "beta", beta, low=0.0, low_open=True)
    w_d = check_number(fn, "desirable_weight", desirable_weight, low=0.0)
    w_u = check_number(fn, "undesirable_weight", undesirable_weight, low=0.0)
    check_reduction(fn, reduction)
    check_bool(fn, "return_rewards", return_rewards)
    chosen = upcast(policy_chosen) - upcast(reference_chosen)
    rejected = upcast(policy_rejected) - upcast(reference_rejected)
    if kl_log_ratios is None:
        kl = torch.cat([chosen, rejected]).detach().mean()
    else:
        check_floating(fn, "kl_log_ratios", kl_log_ratios)
        check_ndim(fn, "kl_log_ratios", kl_log_ratios, 1, "(K,)")
        kl = upcast(kl_log_ratios).detach().mean()
    z0 = kl.clamp_min(0.0)
    losses = torch.cat(
        [w_d * (1.0 - torch.sigmoid(beta * (chosen - z0))),
         w_u * (1.0 - torch.sigmoid(beta * (z0 - rejected)))]
    )  # fmt: skip
    rewards = (beta * chosen, beta * rejected)
    return _finish(fn, losses, reduction, policy_chosen.dtype, return_rewards, rewards)


def _check_kto_inputs(
    fn: str,
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    reference_chosen: Tensor,
    reference_rejected: Tensor,
) -> None:
    """Unpaired answers: each policy ``(B,)`` beside its reference, at least one answer."""
    pairs = (
        ("chosen", policy_chosen, reference_chosen),
        ("rejected", policy_rejected, reference_rejected),
    )
    for side, policy, reference in pairs:
        check_floating(fn, f"policy_{side}", policy)
        if policy.dim() != 1:
            fail(fn, f"policy_{side}", "of shape (B,)", tuple(policy.shape))
        check_floating(fn, f"reference_{side}", reference)
        check_same_shape(fn, f"reference_{side}", reference, f"policy_{side}", policy)
    if policy_chosen.numel() + policy_rejected.numel() == 0:
        fail(fn, "policy_chosen", "or `policy_rejected` to hold at least one answer", "none")


class _PreferenceLoss(nn.Module):
    """Shared ``reduction`` / ``return_rewards`` handling of the preference modules."""

    def __init__(self, fn: str, reduction: Reduction, return_rewards: bool) -> None:
        super().__init__()
        self.reduction: Reduction = check_reduction(fn, reduction)
        self.return_rewards = check_bool(fn, "return_rewards", return_rewards)

    def _common(self) -> str:
        return f"reduction={self.reduction!r}, return_rewards={self.return_rewards}"


@register(dpo)
class DPOLoss(_PreferenceLoss):
    """Direct Preference Optimization (and hinge / IPO / robust variants); see :func:`dpo`.

    Example:
        >>> loss_fn = DPOLoss(beta=0.1, loss_type="ipo")
        >>> x = torch.tensor([-2.0])
        >>> float(loss_fn(x, x, x, x))  # (0 − 1/(2β))²
        25.0
    """

    def __init__(
        self,
        *,
        beta: float = 0.1,
        loss_type: str = "sigmoid",
        label_smoothing: float = 0.0,
        reduction: Reduction = "mean",
        return_rewards: bool = False,
    ) -> None:
        super().__init__("DPOLoss", reduction, return_rewards)
        self.beta = check_number("DPOLoss", "beta", beta, low=0.0, low_open=True)
        self.loss_type = check_choice("DPOLoss", "loss_type", loss_type, DPO_TYPES)
        self.label_smoothing = _dpo_smoothing("DPOLoss", loss_type, label_smoothing)

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta}, loss_type={self.loss_type!r}, "
            f"label_smoothing={self.label_smoothing}, {self._common()}"
        )

    def forward(
        self,
        policy_chosen: Tensor,
        policy_rejected: Tensor,
        reference_chosen: Tensor,
        reference_rejected: Tensor,
    ) -> LossOrRewards:
        return dpo(
            policy_chosen, policy_rejected, reference_chosen, reference_rejected,
            beta=self.beta, loss_type=self.loss_type, label_smoothing=self.label_smoothing,
            reduction=self.reduction, return_rewards=self.return_rewards,
        )  # fmt: skip


@register(simpo)
class SimPOLoss(_PreferenceLoss):
    """Reference-free, length-normalised preference loss; see :func:`simpo`.

    Example:
        >>> lp, n = torch.tensor([-4.0]), torch.tensor([4])
        >>> round(float(SimPOLoss(beta=2.0, gamma=0.0)(lp, lp, n, n)), 4)
        0.6931
    """

    def __init__(
        self,
        *,
        beta: float = 2.0,
        gamma: float = 0.5,
        reduction: Reduction = "mean",
        return_rewards: bool = False,
    ) -> None:
        super().__init__("SimPOLoss", reduction, return_rewards)
        self.beta = check_number("SimPOLoss", "beta", beta, low=0.0, low_open=True)
        self.gamma = check_number("SimPOLoss", "gamma", gamma, low=0.0)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, gamma={self.gamma}, {self._common()}"

    def forward(
        self,
        policy_chosen: Tensor,
        policy_rejected: Tensor,
        chosen_lengths: Tensor,
        rejected_lengths: Tensor,
    ) -> LossOrRewards:
        return simpo(
            policy_chosen, policy_rejected, chosen_lengths, rejected_lengths,
            beta=self.beta, gamma=self.gamma, reduction=self.reduction,
            return_rewards=self.return_rewards,
        )  # fmt: skip


@register(orpo)
class ORPOLoss(_PreferenceLoss):
    """Odds-ratio preference optimisation (SFT + odds-ratio term); see :func:`orpo`.

    Example:
        >>> lp = torch.tensor([-1.0])
        >>> round(float(ORPOLoss(lambda_=0.0)(lp, lp)), 4)  # the chosen NLL alone
        1.0
    """

    def __init__(
        self, *, lambda_: float = 0.1, reduction: Reduction = "mean", return_rewards: bool = False
    ) -> None:
        super().__init__("ORPOLoss", reduction, return_rewards)
        self.lambda_ = check_number("ORPOLoss", "lambda_", lambda_, low=0.0)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_}, {self._common()}"

    def forward(self, policy_chosen: Tensor, policy_rejected: Tensor) -> LossOrRewards:
        return orpo(
            policy_chosen, policy_rejected, lambda_=self.lambda_, reduction=self.reduction,
            return_rewards=self.return_rewards,
        )  # fmt: skip


@register(kto)
class KTOLoss(_PreferenceLoss):
    """Kahneman–Tversky optimisation on unpaired answers; see :func:`kto`.

    Example:
        >>> x = torch.tensor([-3.0])
        >>> float(KTOLoss(desirable_weight=2.0)(x, x, x, x))  # (2·0.5 + 0.5) / 2
        0.75
    """

    def __init__(
        self,
        *,
        beta: float = 0.1,
        desirable_weight: float = 1.0,
        undesirable_weight: float = 1.0,
        reduction: Reduction = "mean",
        return_rewards: bool = False,
    ) -> None:
        super().__init__("KTOLoss", reduction, return_rewards)
        self.beta = check_number("KTOLoss", "beta", beta, low=0.0, low_open=True)
        self.desirable_weight = check_number(
            "KTOLoss", "desirable_weight", desirable_weight, low=0.0
        )
        self.undesirable_weight = check_number(
            "KTOLoss", "undesirable_weight", undesirable_weight, low=0.0
        )

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta}, desirable_weight={self.desirable_weight}, "
            f"undesirable_weight={self.undesirable_weight}, {self._common()}"
        )

    def forward(
        self,
        policy_chosen: Tensor,
        policy_rejected: Tensor,
        reference_chosen: Tensor,
        reference_rejected: Tensor,
        kl_log_ratios: Tensor | None = None,
    ) -> LossOrRewards:
        return kto(
            policy_chosen, policy_rejected, reference_chosen, reference_rejected,
            beta=self.beta, desirable_weight=self.desirable_weight,
            undesirable_weight=self.undesirable_weight, kl_log_ratios=kl_log_ratios,
            reduction=self.reduction, return_rewards=self.return_rewards,
        )  # fmt: skip
