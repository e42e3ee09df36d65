"""The guide's language-model, reward-model (RLHF) and diffusion losses.

Registry names: ``next_token_cross_entropy`` (:class:`NextTokenCrossEntropyLoss`),
``perplexity`` (:class:`PerplexityLoss`), ``bradley_terry`` (:class:`BradleyTerryLoss`) and
``diffusion_noise_mse`` (:class:`DiffusionNoiseMSELoss`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import (
    check_floating,
    check_int,
    check_labels,
    check_ndim,
    check_number,
    check_same_shape,
    check_shape,
    check_values,
    fail,
    shape_str,
)
from losskit._reduce import Reduction, check_reduction, reduce, sample_rows, upcast
from losskit.registry import register

__all__ = [
    "BradleyTerryLoss",
    "DiffusionNoiseMSELoss",
    "NextTokenCrossEntropyLoss",
    "PerplexityLoss",
    "bradley_terry",
    "diffusion_noise_mse",
    "next_token_cross_entropy",
    "perplexity",
]


def _next_token_nll(
    fn: str, logits: Tensor, tokens: Tensor, ignore_index: int
) -> tuple[Tensor, Tensor]:
    """Per-position NLL ``Tensor[B, T−1]`` (0 where ignored, float32 or wider) and valid count."""
    check_floating(fn, "logits", logits)
    check_ndim(fn, "logits", logits, 3, "(B, T, V)")
    batch, length, vocab = logits.shape
    check_int(fn, "ignore_index", ignore_index)
    check_labels(fn, "tokens", tokens, vocab, ignore_index=ignore_index)
    check_shape(fn, "tokens", tokens, (batch, length), "matching logits (B, T)")
    # Position t predicts token t + 1: drop the last prediction and the first token.
    pred = upcast(logits[:, :-1]).reshape(-1, vocab)
    target = tokens[:, 1:].reshape(-1)
    nll = F.cross_entropy(pred, target, ignore_index=ignore_index, reduction="none")
    count = (target != ignore_index).sum()
    return nll.reshape(batch, max(length - 1, 0)), count


def next_token_cross_entropy(
    logits: Tensor, tokens: Tensor, ignore_index: int = -100, *, reduction: Reduction = "mean"
) -> Tensor:
    """Causal language-model loss: cross-entropy of each position's logits on the next token.

    Formula: ``ℓ_{b,t} = −log softmax(z_{b,t})[y_{b,t+1}]`` for ``t = 0 … T−2``; the logits of
    the last position and the first token have no partner and are dropped (the shift is done
    here: pass the model's logits and the input tokens as they are). Positions whose next token
    is ``ignore_index`` (padding, prompt tokens) count 0; ``"mean"`` divides by the number of
    valid positions, and is ``0.0`` still connected to the graph when none is valid. The
    log-softmax runs in float32 or wider.

    Args:
        logits (Tensor[B, T, V]): the model's logits at every position.
        tokens (Tensor[B, T]): the input token ids (int64), ``ignore_index`` where masked.
        ignore_index: target id that contributes nothing.
        reduction: ``"mean" | "sum" | "none"``; ``"none"`` gives ``Tensor[B, T−1]``.

    Returns:
        Tensor: a scalar, or ``Tensor[B, T−1]`` for ``"none"``; in the dtype of ``logits``.

    Raises:
        ValueError: ``logits`` not 3-D, ``tokens`` not ``(B, T)``, or token ids outside
            ``[0, V)`` other than ``ignore_index``.
        TypeError: float ``tokens`` or integer ``logits``.

    Reference:
        Radford et al., "Improving Language Understanding by Generative Pre-Training", 2018.

    Example:
        >>> logits = torch.zeros(1, 3, 5)  # uniform over 5 tokens
        >>> round(float(next_token_cross_entropy(logits, torch.tensor([[1, 2, 3]]))), 4)  # log 5
        1.6094
    """
    fn = "next_token_cross_entropy"
    check_reduction(fn, reduction)
    nll, count = _next_token_nll(fn, logits, tokens, ignore_index)
    return reduce(nll, reduction, fn=fn, denominator=count, dtype=logits.dtype)


def perplexity(logits: Tensor, tokens: Tensor, ignore_index: int = -100) -> Tensor:
    """Perplexity of a causal language model: exp of the mean next-token cross-entropy.

    Formula: ``PPL = exp((1/N) Σ_{valid b,t} −log p(y_{b,t+1} | y_{b,≤t}))`` with ``N`` the number
    of valid positions (see :func:`next_token_cross_entropy`); ``1.0`` when none is valid.
    Minimising it minimises the cross-entropy; it is reported far more often than trained on.

    Args:
        logits (Tensor[B, T, V]): the model's logits at every position.
        tokens (Tensor[B, T]): the input token ids, ``ignore_index`` where masked.
        ignore_index: target id that contributes nothing.

    Returns:
        Tensor: a scalar in float32 or wider — unlike the losses, not cast back to a half
        dtype: an untrained model's perplexity is about the vocabulary size, which overflows
        float16 (max 65504) for large vocabularies.

    Raises:
        ValueError: as :func:`next_token_cross_entropy`.
        TypeError: as :func:`next_token_cross_entropy`.

    Reference:
        Jelinek et al., "Perplexity — a measure of the difficulty of speech recognition tasks",
        JASA 1977.

    Example:
        >>> round(float(perplexity(torch.zeros(1, 4, 7), torch.tensor([[0, 1, 2, 3]]))), 4)
        7.0
    """
    fn = "perplexity"
    nll, count = _next_token_nll(fn, logits, tokens, ignore_index)
    return torch.exp(reduce(nll, "mean", fn=fn, denominator=count))


def bradley_terry(
    chosen_rewards: Tensor,
    rejected_rewards: Tensor,
    margin: float | Tensor = 0.0,
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Bradley–Terry preference loss of a reward model (pairwise ranking, RLHF).

    Formula: ``ℓ_i = −log σ(r_w,i − r_l,i − m_i) = softplus(−(r_w,i − r_l,i − m_i))``, computed as
    a softplus in float32 or wider (finite for any reward gap). ``margin`` may be one float or
    one value per pair (e.g. from the annotators' preference strength, as in Llama 2).

    Args:
        chosen_rewards (Tensor[B]): rewards ``r_w`` of the preferred responses.
        rejected_rewards (Tensor[B]): rewards ``r_l`` of the rejected responses, same shape.
        margin: a float, or ``Tensor[B]`` of per-pair margins.
        reduction: ``"mean" | "sum" | "none"``.

    Returns:
        Tensor: a scalar, or ``Tensor[B]`` for ``"none"``; in the dtype of ``chosen_rewards``.

    Raises:
        ValueError: shapes that differ, a non-finite float margin, or a margin tensor of
            another shape.
        TypeError: rewards or margin tensor that are not floating-point.

    Reference:
        Bradley & Terry, "Rank Analysis of Incomplete Block Designs", Biometrika 1952;
        Ouyang et al., "Training language models to follow instructions with human feedback",
        NeurIPS 2022 (eq. 1); Touvron et al., "Llama 2", 2023 (margin).

    Example:
        >>> round(float(bradley_terry(torch.tensor([1.0]), torch.tensor([1.0]))), 4)  # log 2
        0.6931
    """
    fn = "bradley_terry"
    check_floating(fn, "chosen_rewards", chosen_rewards)
    check_floating(fn, "rejected_rewards", rejected_rewards)
    check_same_shape(fn, "rejected_rewards", rejected_rewards, "chosen_rewards", chosen_rewards)
    if isinstance(margin, Tensor):
        check_floating(fn, "margin", margin)
        check_same_shape(fn, "margin", margin, "chosen_rewards", chosen_rewards)
        m: Tensor | float = upcast(margin)
    else:
        m = check_number(fn, "margin", margin)
    gap = upcast(chosen_rewards) - upcast(rejected_rewards) - m
    return reduce(F.softplus(-gap), reduction, fn=fn, dtype=chosen_rewards.dtype)


def diffusion_noise_mse(
    pred_noise: Tensor,
    noise: Tensor,
    *,
    weight: Tensor | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Denoising diffusion ("simple") loss: mean squared error of the predicted noise.

    Formula: ``ℓ_i = w_i · mean_d (ε̂_i,d − ε_i,d)²`` per sample ``i`` (mean over all its
    non-batch dimensions), ``w_i = 1`` unless ``weight`` gives per-sample weights (e.g. the
    min-SNR-γ weights of the sampled timesteps). ``"mean"`` averages ``ℓ_i`` over the batch —
    with unit weights this is ``F.mse_loss(pred_noise, noise)``; ``"none"`` returns ``ℓ``
    ``Tensor[B]``. The squares run in float32 or wider.

    Args:
        pred_noise (Tensor[B, ...]): the network's noise prediction ``ε_θ(x_t, t)``.
        noise (Tensor[B, ...]): the noise ``ε`` that was added, same shape.
        weight (Tensor[B], optional): per-sample weights.
        reduction: ``"mean" | "sum" | "none"`` over the per-sample losses.

    Returns:
        Tensor: a scalar, or ``Tensor[B]`` for ``"none"``; in the dtype of ``pred_noise``.

    Raises:
        ValueError: shapes that differ, a tensor without a batch dimension, or ``weight`` not
            of shape ``(B,)`` or with a negative (or NaN) value.
        TypeError: inputs that are not floating-point tensors.

    Reference:
        Ho et al., "Denoising Diffusion Probabilistic Models", NeurIPS 2020 (eq. 14);
        Hang et al., "Efficient Diffusion Training via Min-SNR Weighting Strategy", ICCV 2023.

    Example:
        >>> float(diffusion_noise_mse(torch.ones(2, 3), torch.zeros(2, 3)))
        1.0
    """
    fn = "diffusion_noise_mse"
    check_floating(fn, "pred_noise", pred_noise)
    check_floating(fn, "noise", noise)
    check_same_shape(fn, "noise", noise, "pred_noise", pred_noise)
    if pred_noise.dim() < 1:
        fail(fn, "pred_noise", "of shape (B, ...) with a batch dimension", shape_str(noise.shape))
    batch = pred_noise.shape[0]
    per_sample = sample_rows((upcast(pred_noise) - upcast(noise)).square()).mean(dim=1)
    if weight is not None:
        check_floating(fn, "weight", weight)
        check_shape(fn, "weight", weight, (batch,), f"matching the batch (B={batch})")
        check_values(fn, "weight", weight, low=0.0)
        per_sample = per_sample * upcast(weight)
    return reduce(per_sample, reduction, fn=fn, dtype=pred_noise.dtype)


@register(next_token_cross_entropy)
class NextTokenCrossEntropyLoss(nn.Module):
    """Causal language-model loss with the shift built in; see :func:`next_token_cross_entropy`.

    Example:
        >>> loss = NextTokenCrossEntropyLoss(ignore_index=0)
        >>> float(loss(torch.zeros(1, 2, 3), torch.tensor([[1, 0]])))  # nothing valid
        0.0
    """

    def __init__(self, *, ignore_index: int = -100, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.ignore_index = check_int("NextTokenCrossEntropyLoss", "ignore_index", ignore_index)
        self.reduction: Reduction = check_reduction("NextTokenCrossEntropyLoss", reduction)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"

    def forward(self, logits: Tensor, tokens: Tensor) -> Tensor:
        return next_token_cross_entropy(
            logits, tokens, ignore_index=self.ignore_index, reduction=self.reduction
        )


@register(perplexity)
class PerplexityLoss(nn.Module):
    """Perplexity of a causal language model; see :func:`perplexity`.

    Example:
        >>> float(PerplexityLoss()(torch.zeros(1, 3, 4), torch.tensor([[0, 1, 2]])))
        4.0
    """

    def __init__(self, *, ignore_index: int = -100) -> None:
        super().__init__()
        self.ignore_index = check_int("PerplexityLoss", "ignore_index", ignore_index)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}"

    def forward(self, logits: Tensor, tokens: Tensor) -> Tensor:
        return perplexity(logits, tokens, ignore_index=self.ignore_index)


@register(bradley_terry)
class BradleyTerryLoss(nn.Module):
    """Bradley–Terry pairwise preference loss; see :func:`bradley_terry`.

    Example:
        >>> loss = BradleyTerryLoss(margin=1.0)
        >>> round(float(loss(torch.tensor([2.0]), torch.tensor([1.0]))), 4)  # softplus(0)
        0.6931
    """

    def __init__(self, *, margin: float = 0.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.margin = check_number("BradleyTerryLoss", "margin", margin)
        self.reduction: Reduction = check_reduction("BradleyTerryLoss", reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"

    def forward(self, chosen_rewards: Tensor, rejected_rewards: Tensor) -> Tensor:
        return bradley_terry(
            chosen_rewards, rejected_rewards, margin=self.margin, reduction=self.reduction
        )


@register(diffusion_noise_mse)
class DiffusionNoiseMSELoss(nn.Module):
    """Noise-prediction MSE of a diffusion model; see :func:`diffusion_noise_mse`.

    Example:
        >>> float(DiffusionNoiseMSELoss(reduction="sum")(torch.ones(2, 4), torch.zeros(2, 4)))
        2.0
    """

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.reduction: Reduction = check_reduction("DiffusionNoiseMSELoss", reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"

    def forward(self, pred_noise: Tensor, noise: Tensor, weight: Tensor | None = None) -> Tensor:
        return diffusion_noise_mse(pred_noise, noise, weight=weight, reduction=self.reduction)
