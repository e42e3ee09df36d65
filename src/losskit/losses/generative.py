"""Generative losses: GAN objectives, gradient penalties, the VAE ELBO and the perceptual loss.

Every log/exp part runs in float32 or wider (``softplus`` forms, never ``log(sigmoid(x))``), so
fp16/bf16 logits of any size give finite losses and gradients; results follow the input dtype.

Registry names: ``gan_discriminator`` (:class:`GANDiscriminatorLoss`), ``gan_generator``
(:class:`GANGeneratorLoss`), ``gan`` (:class:`GANLoss`, both sides of one ``kind``),
``gradient_penalty``, ``r1_penalty``, ``vae_elbo`` (:class:`VAELoss`) and ``perceptual``
(:class:`PerceptualLoss`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import (
    check_choice,
    check_floating,
    check_number,
    check_same_shape,
    check_tensor,
    check_values,
    fail,
    shape_str,
)
from losskit._reduce import Reduction, check_reduction, reduce, sample_rows, upcast
from losskit.models.vgg import VGG16Features
from losskit.registry import register

__all__ = [
    "GAN_KINDS",
    "GANDiscriminatorLoss",
    "GANGeneratorLoss",
    "GANLoss",
    "GradientPenaltyLoss",
    "PerceptualLoss",
    "R1PenaltyLoss",
    "VAELoss",
    "gan_discriminator",
    "gan_generator",
    "gradient_penalty",
    "perceptual",
    "r1_penalty",
    "vae_elbo",
]

GANKind = Literal["minimax", "nonsaturating", "wgan", "hinge"]
GAN_KINDS: tuple[str, ...] = ("minimax", "nonsaturating", "wgan", "hinge")

# Per-logit terms of each GAN objective, from the discriminator's raw scores (logits).
# minimax / nonsaturating: -log σ(x) = softplus(-x), -log(1 - σ(x)) = softplus(x).
_REAL_TERM: dict[str, Callable[[Tensor], Tensor]] = {
    "minimax": lambda r: F.softplus(-r),
    "nonsaturating": lambda r: F.softplus(-r),
    "wgan": lambda r: -r,
    "hinge": lambda r: F.relu(1.0 - r),
}
_FAKE_TERM: dict[str, Callable[[Tensor], Tensor]] = {
    "minimax": F.softplus,
    "nonsaturating": F.softplus,
    "wgan": lambda f: f,
    "hinge": lambda f: F.relu(1.0 + f),
}
_GENERATOR_TERM: dict[str, Callable[[Tensor], Tensor]] = {
    "minimax": lambda f: -F.softplus(f),  # log(1 - σ(f)), minimised by the generator
    "nonsaturating": lambda f: F.softplus(-f),  # -log σ(f)
    "wgan": lambda f: -f,
    "hinge": lambda f: -f,
}


def _check_batched(fn: str, arg: str, x: object) -> Tensor:
    """A floating tensor with a leading batch dimension and at least one feature dimension."""
    t = check_floating(fn, arg, x)
    if t.dim() < 2:
        fail(fn, arg, "of shape (B, ...) with at least 2 dimensions", shape_str(t.shape))
    return t


def gan_discriminator(
    real_logits: Tensor,
    fake_logits: Tensor,
    kind: GANKind = "nonsaturating",
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Discriminator (critic) loss of a GAN, from raw discriminator scores.

    Formula, with ``r = D(x)`` on real and ``f = D(G(z))`` on generated samples:

    - ``minimax`` and ``nonsaturating``: ``softplus(−r) + softplus(f)``
      ``= −log σ(r) − log(1 − σ(f))`` (binary cross-entropy: real → 1, fake → 0);
    - ``wgan``: ``f − r`` (pair it with :func:`gradient_penalty`);
    - ``hinge``: ``max(0, 1 − r) + max(0, 1 + f)``.

    ``"mean"`` averages the real and the fake terms separately and adds them, so the two batches
    may differ in size; ``"sum"`` adds all terms; ``"none"`` returns ``real term + fake term``
    element-wise and needs both of the same shape.

    Args:
        real_logits (Tensor[B, ...]): scores of real samples (logits, not probabilities).
        fake_logits (Tensor[B', ...]): scores of generated samples.
        kind: ``"minimax" | "nonsaturating" | "wgan" | "hinge"``.
        reduction: ``"mean" | "sum" | "none"``.

    Returns:
        Tensor: a scalar, or ``Tensor[B, ...]`` for ``"none"``; in the input dtype.

    Raises:
        ValueError: an unknown ``kind`` (the closest is suggested) or ``reduction``, or shapes
            that differ under ``"none"``.
        TypeError: logits that are not floating-point tensors.

    Reference:
        Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014; Arjovsky et al.,
        "Wasserstein GAN", ICML 2017; Lim & Ye, "Geometric GAN", 2017 (hinge).

    Example:
        >>> real, fake = torch.tensor([2.0, 3.0]), torch.tensor([-1.0, 0.5])
        >>> round(float(gan_discriminator(real, fake, "hinge")), 4)
        0.75
    """
    fn = "gan_discriminator"
    check_floating(fn, "real_logits", real_logits)
    check_floating(fn, "fake_logits", fake_logits)
    kind = check_choice(fn, "kind", kind, GAN_KINDS)  # type: ignore[assignment]
    check_reduction(fn, reduction)
    real = _REAL_TERM[kind](upcast(real_logits))
    fake = _FAKE_TERM[kind](upcast(fake_logits))
    if reduction == "none":
        check_same_shape(fn, "fake_logits", fake_logits, "real_logits", real_logits)
        return (real + fake).to(real_logits.dtype)
    total = reduce(real, reduction, fn=fn) + reduce(fake, reduction, fn=fn)
    return total.to(real_logits.dtype)


def gan_generator(
    fake_logits: Tensor, kind: GANKind = "nonsaturating", *, reduction: Reduction = "mean"
) -> Tensor:
    """Generator loss of a GAN, from the discriminator's raw scores on generated samples.

    Formula, with ``f = D(G(z))``:

    - ``minimax``: ``log(1 − σ(f)) = −softplus(f)`` (the original zero-sum objective; its gradient
      vanishes when the discriminator wins, which is why ``nonsaturating`` exists);
    - ``nonsaturating``: ``−log σ(f) = softplus(−f)``;
    - ``wgan`` and ``hinge``: ``−f``.

    Args:
        fake_logits (Tensor[B, ...]): scores of generated samples (logits).
        kind: ``"minimax" | "nonsaturating" | "wgan" | "hinge"``.
        reduction: ``"mean" | "sum" | "none"``.

    Returns:
        Tensor: a scalar, or ``Tensor[B, ...]`` for ``"none"``; in the input dtype.

    Raises:
        ValueError: an unknown ``kind`` (the closest is suggested) or ``reduction``.
        TypeError: logits that are not a floating-point tensor.

    Reference:
        Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (§3, the non-saturating
        trick); Arjovsky et al., "Wasserstein GAN", ICML 2017; Lim & Ye, "Geometric GAN", 2017.

    Example:
        >>> round(float(gan_generator(torch.tensor([0.0]), "nonsaturating")), 4)  # log 2
        0.6931
    """
    fn = "gan_generator"
    check_floating(fn, "fake_logits", fake_logits)
    kind = check_choice(fn, "kind", kind, GAN_KINDS)  # type: ignore[assignment]
    loss = _GENERATOR_TERM[kind](upcast(fake_logits))
    return reduce(loss, reduction, fn=fn, dtype=fake_logits.dtype)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *,
    weight: float = 10.0,
    generator: torch.Generator | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """WGAN-GP gradient penalty, with one interpolation ε and one gradient norm per sample.

    Formula: ``x̂_i = ε_i·x_i + (1 − ε_i)·x̃_i`` with ``ε_i ~ U(0, 1)`` drawn per sample and
    broadcast over its other dimensions, then ``λ·(‖∇_x̂ D(x̂_i)‖₂ − 1)²`` per sample, the norm
    taken over all of a sample's non-batch dimensions. The gradient is built with
    ``create_graph=True``, so the penalty trains the critic. It is also differentiable with
    respect to ``real`` and ``fake``: pass ``fake.detach()`` in the critic step as usual.
    The critic must treat samples independently (no batch normalisation), as the paper requires;
    the norm runs in float32 or wider.

    Args:
        critic: the critic ``D``, mapping ``Tensor[B, ...]`` to scores ``Tensor[B]``/``[B, 1]``.
        real (Tensor[B, ...]): real samples.
        fake (Tensor[B, ...]): generated samples, same shape.
        weight: the penalty weight λ (≥ 0; 10 in the paper).
        generator: a ``torch.Generator`` for ε (reproducible penalties); the global RNG if None.
        reduction: ``"mean" | "sum" | "none"`` over the per-sample penalties.

    Returns:
        Tensor: a scalar, or ``Tensor[B]`` for ``"none"``; in the input dtype.

    Raises:
        ValueError: shapes that differ, a tensor without a batch dimension, a negative
            ``weight``, critic scores without one value per sample, or a critic whose scores do
            not depend on its input.
        TypeError: a ``critic`` that is not callable, ``real``/``fake`` that are not
            floating-point tensors, or non-tensor scores.

    Reference:
        Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017 (Algorithm 1).

    Example:
        >>> critic = torch.nn.Linear(4, 1)
        >>> penalty = gradient_penalty(critic, torch.randn(8, 4), torch.randn(8, 4))
        >>> penalty.dim(), bool(penalty >= 0)
        (0, True)
    """
    fn = "gradient_penalty"
    _check_penalty_inputs(fn, critic, real, fake, generator)
    weight = check_number(fn, "weight", weight, low=0.0)
    check_reduction(fn, reduction)
    batch = real.shape[0]
    eps_shape = (batch,) + (1,) * (real.dim() - 1)
    eps = torch.rand(eps_shape, generator=generator, dtype=real.dtype, device=real.device)
    with torch.enable_grad():
        mixed = torch.lerp(fake, real, eps)  # ε·real + (1 − ε)·fake
        if not mixed.requires_grad:
            mixed.requires_grad_(True)
        scores = check_tensor(fn, "critic(x̂)", critic(mixed))
        if scores.numel() != batch:
            fail(fn, "critic(x̂)", f"one score per sample ({batch})", shape_str(scores.shape))
        grad = _input_gradient(scores, mixed)
    if grad is None:
        fail(fn, "critic", "scores that depend on its input", "scores independent of it")
    norm = torch.linalg.vector_norm(sample_rows(upcast(grad)), dim=1)
    return reduce(weight * (norm - 1.0).square(), reduction, fn=fn, dtype=real.dtype)


def _check_penalty_inputs(
    fn: str, critic: object, real: Tensor, fake: Tensor, generator: object
) -> None:
    """A callable critic, two float batches of one shape, a generator or None."""
    if not callable(critic):
        fail(
            fn,
            "critic",
            "to be callable (a module or function D)",
            type(critic).__name__,
            kind=TypeError,
        )
    check_floating(fn, "real", real)
    check_floating(fn, "fake", fake)
    check_same_shape(fn, "fake", fake, "real", real)
    if real.dim() < 1:
        fail(fn, "real", "of shape (B, ...) with a batch dimension", shape_str(real.shape))
    if generator is not None and not isinstance(generator, torch.Generator):
        fail(fn, "generator", "to be a torch.Generator or None", type(generator).__name__,
             kind=TypeError)  # fmt: skip


def _input_gradient(scores: Tensor, inputs: Tensor) -> Tensor | None:
    """``∂(Σ scores)/∂inputs`` with its graph kept (for the penalty's own gradient); None
    when the scores do not depend on the inputs."""
    if not scores.requires_grad:
        return None
    (grad,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True, allow_unused=True)
    return grad


def r1_penalty(
    real_logits: Tensor, real: Tensor, *, gamma: float = 10.0, reduction: Reduction = "mean"
) -> Tensor:
    """R1 regulariser: the squared gradient norm of the discriminator on real samples.

    Formula: ``γ/2 · ‖∇_x D(x_i)‖₂²`` per real sample ``x_i`` (norm over its non-batch
    dimensions), computed with ``create_graph=True`` so it trains the discriminator. Call
    ``real.requires_grad_()`` before computing ``real_logits = D(real)``.

    Args:
        real_logits (Tensor[B] or Tensor[B, 1]): discriminator scores of ``real``.
        real (Tensor[B, ...]): the real samples, with ``requires_grad=True``.
        gamma: the weight γ (≥ 0).
        reduction: ``"mean" | "sum" | "none"`` over the per-sample penalties.

    Returns:
        Tensor: a scalar, or ``Tensor[B]`` for ``"none"``; in the dtype of ``real``.

    Raises:
        ValueError: ``real`` that does not require grad, ``real_logits`` not computed from it or
            without one score per sample, or a negative ``gamma``.
        TypeError: inputs that are not floating-point tensors.

    Reference:
        Mescheder et al., "Which Training Methods for GANs do actually Converge?", ICML 2018.

    Example:
        >>> real = torch.randn(4, 3, requires_grad=True)
        >>> float(r1_penalty((2 * real).sum(dim=1), real, gamma=1.0))  # γ/2·‖(2, 2, 2)‖²
        6.0
    """
    fn = "r1_penalty"
    check_floating(fn, "real_logits", real_logits)
    check_floating(fn, "real", real)
    gamma = check_number(fn, "gamma", gamma, low=0.0)
    check_reduction(fn, reduction)
    if not real.requires_grad:
        fail(fn, "real", "to require grad (call real.requires_grad_() before D)", "False")
    if real.dim() < 1 or real_logits.numel() != real.shape[0]:
        fail(fn, "real_logits", "one score per sample of `real`", shape_str(real_logits.shape))
    grad = _input_gradient(real_logits, real)
    if grad is None:
        fail(fn, "real_logits", "computed from `real`", "scores that do not depend on it")
    sq_norm = sample_rows(upcast(grad)).square().sum(dim=1)
    return reduce(0.5 * gamma * sq_norm, reduction, fn=fn, dtype=real.dtype)


def vae_elbo(
    recon_logits: Tensor,
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    beta: float = 1.0,
    reconstruction: Literal["bce", "mse"] = "bce",
    *,
    reduction: Reduction = "mean",
) -> Tensor:
    """Negative evidence lower bound of a Gaussian VAE (β-VAE): reconstruction + β·KL.

    Formula, per sample ``i``, summed over its features and latent dimensions:
    ``ℓ_i = Σ_d rec(x̂_id, x_id) + β · KL(N(μ_i, σ_i²) ‖ N(0, I))`` with
    ``KL = −½ Σ_j (1 + log σ²_ij − μ²_ij − σ²_ij)`` in closed form, and ``rec`` the Bernoulli
    negative log-likelihood ``BCEWithLogits(x̂, x)`` (``"bce"``, x in [0, 1]) or the squared
    error ``(x̂ − x)²`` (``"mse"``, where ``recon_logits`` is the reconstruction itself).
    ``"mean"`` averages ``ℓ_i`` over the batch (sum over features, then mean over samples, so
    the KL/reconstruction balance does not depend on the image size the way a per-pixel mean
    would); with β = 1 and ``"bce"`` it is −ELBO per sample.

    Args:
        recon_logits (Tensor[B, ...]): decoder output (logits for ``"bce"``).
        x (Tensor[B, ...]): the inputs, same shape.
        mu (Tensor[B, Z]): posterior means.
        logvar (Tensor[B, Z]): posterior log-variances ``log σ²``.
        beta: weight of the KL term (≥ 0; β > 1 for a β-VAE).
        reconstruction: ``"bce" | "mse"``.
        reduction: ``"mean" | "sum" | "none"`` over the per-sample losses.

    Returns:
        Tensor: a scalar, or ``Tensor[B]`` for ``"none"``; in the dtype of ``recon_logits``.

    Raises:
        ValueError: mismatched shapes or batch sizes, tensors without a feature dimension, a
            negative ``beta``, ``x`` outside ``[0, 1]`` with ``"bce"``, or an unknown
            ``reconstruction``/``reduction``.
        TypeError: inputs that are not floating-point tensors.

    Reference:
        Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (Appendix B);
        Higgins et al., "β-VAE", ICLR 2017.

    Example:
        >>> x = torch.ones(2, 3)
        >>> z = torch.zeros(2, 4)
        >>> float(vae_elbo(x, x, z, z, reconstruction="mse"))  # perfect recon, posterior = prior
        0.0
    """
    fn = "vae_elbo"
    _check_batched(fn, "recon_logits", recon_logits)
    check_floating(fn, "x", x)
    check_same_shape(fn, "x", x, "recon_logits", recon_logits)
    _check_batched(fn, "mu", mu)
    check_floating(fn, "logvar", logvar)
    check_same_shape(fn, "logvar", logvar, "mu", mu)
    if mu.shape[0] != x.shape[0]:
        fail(fn, "mu", f"of batch size {x.shape[0]} like `x`", shape_str(mu.shape))
    beta = check_number(fn, "beta", beta, low=0.0)
    reconstruction = check_choice(fn, "reconstruction", reconstruction, ("bce", "mse"))  # type: ignore[assignment]
    check_reduction(fn, reduction)
    recon, target = upcast(recon_logits), upcast(x)
    if reconstruction == "bce":
        check_values(fn, "x", target, low=0.0, high=1.0)
        rec = F.binary_cross_entropy_with_logits(recon, target, reduction="none")
    else:
        rec = (recon - target).square()
    mu32, logvar32 = upcast(mu), upcast(logvar)
    kl = -0.5 * (1.0 + logvar32 - mu32.square() - logvar32.exp())
    per_sample = sample_rows(rec).sum(dim=1) + beta * sample_rows(kl).sum(dim=1)
    return reduce(per_sample, reduction, fn=fn, dtype=recon_logits.dtype)


def perceptual(
    pred: Tensor,
    target: Tensor,
    features: Callable[[Tensor], Mapping[str, Tensor]],
    *,
    weights: Tensor | Sequence[float] | None = None,
    reduction: Reduction = "mean",
) -> Tensor:
    """Perceptual (feature reconstruction) loss: weighted squared distances of deep features.

    Formula: ``ℓ_i = Σ_l w_l · mean_{c,h,w} (φ_l(ŷ_i) − φ_l(y_i))²`` over the layers ``l`` that
    ``features`` returns (in its order); ``weights=None`` gives every layer ``1/L``. The squared
    differences run in float32 or wider. The target's features are computed without a graph
    unless ``target`` requires grad.

    Args:
        pred (Tensor[N, 3, H, W]): generated images.
        target (Tensor[N, 3, H, W]): reference images, same shape.
        features: maps images to ``{layer: Tensor[N, C_l, H_l, W_l]}``, e.g.
            :class:`losskit.models.VGG16Features`.
        weights (Tensor[L] or sequence of L floats): per-layer weights ``w_l``.
        reduction: ``"mean" | "sum" | "none"`` over the per-image losses.

    Returns:
        Tensor: a scalar, or ``Tensor[N]`` for ``"none"``; in the dtype of ``pred``.

    Raises:
        ValueError: mismatched shapes, images that are not ``(N, 3, H, W)``, or a number of
            weights different from the number of layers.
        TypeError: inputs that are not floating-point tensors, ``features`` not callable.

    Reference:
        Johnson et al., "Perceptual Losses for Real-Time Style Transfer and Super-Resolution",
        ECCV 2016 (feature reconstruction loss).

    Example:
        >>> from losskit.models import VGG16Features
        >>> extractor = VGG16Features(layers=("relu1_2",))
        >>> img = torch.rand(1, 3, 8, 8)
        >>> float(perceptual(img, img, extractor))
        0.0
    """
    fn = "perceptual"
    if not callable(features):
        fail(fn, "features", "to be callable (image -> feature maps)", type(features).__name__,
             kind=TypeError)  # fmt: skip
    check_floating(fn, "pred", pred)
    check_floating(fn, "target", target)
    check_same_shape(fn, "target", target, "pred", pred)
    if pred.dim() != 4 or pred.shape[1] != 3:
        fail(fn, "pred", "of shape (N, 3, H, W)", shape_str(pred.shape))
    check_reduction(fn, reduction)
    pred_feats = features(pred)
    with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
        target_feats = features(target)
    n_layers = len(pred_feats)
    if weights is None:
        w = torch.full((n_layers,), 1.0 / max(n_layers, 1), device=pred.device)
    else:
        w = torch.as_tensor(weights, device=pred.device)
        if w.shape != (n_layers,):
            fail(fn, "weights", f"of shape ({n_layers},), one per layer", shape_str(w.shape))
    total = pred.new_zeros(pred.shape[0], dtype=upcast(pred).dtype)
    for w_l, name in zip(upcast(w), pred_feats):
        diff = upcast(pred_feats[name]) - upcast(target_feats[name])
        total = total + w_l * diff.square().flatten(1).mean(dim=1)
    return reduce(total, reduction, fn=fn, dtype=pred.dtype)


class _GANBase(nn.Module):
    """Validation and repr shared by the GAN loss modules."""

    def __init__(self, *, kind: GANKind = "nonsaturating", reduction: Reduction = "mean") -> None:
        super().__init__()
        name = type(self).__name__
        self.kind: GANKind = check_choice(name, "kind", kind, GAN_KINDS)  # type: ignore[assignment]
        self.reduction: Reduction = check_reduction(name, reduction)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, reduction={self.reduction!r}"


@register(gan_discriminator)
class GANDiscriminatorLoss(_GANBase):
    """Discriminator loss of a GAN; see :func:`gan_discriminator`.

    Example:
        >>> GANDiscriminatorLoss(kind="hinge")(torch.tensor([2.0]), torch.tensor([-2.0]))
        tensor(0.)
    """

    def forward(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return gan_discriminator(real_logits, fake_logits, self.kind, reduction=self.reduction)


@register(gan_generator)
class GANGeneratorLoss(_GANBase):
    """Generator loss of a GAN; see :func:`gan_generator`.

    Example:
        >>> GANGeneratorLoss(kind="wgan")(torch.tensor([1.0, 3.0]))
        tensor(-2.)
    """

    def forward(self, fake_logits: Tensor) -> Tensor:
        return gan_generator(fake_logits, self.kind, reduction=self.reduction)


@register(name="gan")
class GANLoss(_GANBase):
    """Both sides of one GAN objective: ``.discriminator(real, fake)`` and ``.generator(fake)``.

    Calling the module dispatches on its arguments: ``loss(fake_logits)`` is the generator loss
    (:func:`gan_generator`), ``loss(fake_logits, real_logits)`` the discriminator loss
    (:func:`gan_discriminator`). Registered as ``"gan"``; the one-sided modules are registered
    under their function names ``"gan_generator"`` and ``"gan_discriminator"``.

    Args:
        kind: ``"minimax" | "nonsaturating" | "wgan" | "hinge"``.
        reduction: ``"mean" | "sum" | "none"``.

    Raises:
        ValueError: an unknown ``kind`` (the closest is suggested) or ``reduction``.

    Example:
        >>> gan = GANLoss(kind="hinge")
        >>> real, fake = torch.tensor([0.5]), torch.tensor([0.5])
        >>> gan.discriminator(real, fake), gan.generator(fake)
        (tensor(2.), tensor(-0.5000))
    """

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The discriminator loss (:func:`gan_discriminator`)."""
        return gan_discriminator(real_logits, fake_logits, self.kind, reduction=self.reduction)

    def generator(self, fake_logits: Tensor) -> Tensor:
        """The generator loss (:func:`gan_generator`)."""
        return gan_generator(fake_logits, self.kind, reduction=self.reduction)

    def forward(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        if real_logits is None:
            return self.generator(fake_logits)
        return self.discriminator(real_logits, fake_logits)


@register(gradient_penalty)
class GradientPenaltyLoss(nn.Module):
    """WGAN-GP gradient penalty; see :func:`gradient_penalty`.

    Example:
        >>> penalty = GradientPenaltyLoss(weight=10.0)
        >>> float(penalty(lambda x: 0 * x.sum(dim=1), torch.randn(2, 3), torch.randn(2, 3)))
        10.0
    """

    def __init__(self, *, weight: float = 10.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.weight = check_number("GradientPenaltyLoss", "weight", weight, low=0.0)
        self.reduction: Reduction = check_reduction("GradientPenaltyLoss", reduction)

    def extra_repr(self) -> str:
        return f"weight={self.weight}, reduction={self.reduction!r}"

    def forward(
        self,
        critic: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return gradient_penalty(
            critic, real, fake, weight=self.weight, generator=generator, reduction=self.reduction
        )


@register(r1_penalty)
class R1PenaltyLoss(nn.Module):
    """R1 gradient penalty on real samples; see :func:`r1_penalty`.

    Example:
        >>> real = torch.ones(2, 3, requires_grad=True)
        >>> float(R1PenaltyLoss(gamma=2.0)(real.sum(dim=1), real))
        3.0
    """

    def __init__(self, *, gamma: float = 10.0, reduction: Reduction = "mean") -> None:
        super().__init__()
        self.gamma = check_number("R1PenaltyLoss", "gamma", gamma, low=0.0)
        self.reduction: Reduction = check_reduction("R1PenaltyLoss", reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"

    def forward(self, real_logits: Tensor, real: Tensor) -> Tensor:
        return r1_penalty(real_logits, real, gamma=self.gamma, reduction=self.reduction)


@register(vae_elbo)
class VAELoss(nn.Module):
    """Negative ELBO of a Gaussian VAE (β-VAE); see :func:`vae_elbo`.

    Example:
        >>> x, z = torch.ones(2, 3), torch.zeros(2, 4)
        >>> float(VAELoss(beta=4.0, reconstruction="mse")(x, x, z + 1, z))  # β·½·Σμ² = 4·2
        8.0
    """

    def __init__(
        self,
        *,
        beta: float = 1.0,
        reconstruction: Literal["bce", "mse"] = "bce",
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        self.beta = check_number("VAELoss", "beta", beta, low=0.0)
        self.reconstruction: Literal["bce", "mse"] = check_choice(  # type: ignore[assignment]
            "VAELoss", "reconstruction", reconstruction, ("bce", "mse")
        )
        self.reduction: Reduction = check_reduction("VAELoss", reduction)

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta}, reconstruction={self.reconstruction!r}, "
            f"reduction={self.reduction!r}"
        )

    def forward(self, recon_logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        return vae_elbo(
            recon_logits,
            x,
            mu,
            logvar,
            beta=self.beta,
            reconstruction=self.reconstruction,
            reduction=self.reduction,
        )


@register(perceptual)
class PerceptualLoss(nn.Module):
    """Perceptual loss on frozen VGG16 features at named layers; see :func:`perceptual`.

    Nothing is downloaded. ``backbone`` is an ``nn.Sequential`` laid out like torchvision's
    ``vgg16().features`` (its parameters are frozen in place), a path to a local state_dict of
    ``vgg16()`` or ``vgg16().features`` (read with ``weights_only=True``), or ``None`` for a
    randomly initialised VGG16 (a warning says it is untrained: fine for tests, meaningless as
    a perceptual metric). The backbone stays in eval mode. Inputs are RGB in ``[0, 1]``,
    normalised with the ImageNet mean/std when ``normalize_input`` is true and cast to the
    backbone's dtype; the loss is returned in the dtype of ``pred``.

    With ``learnable_weights=True`` the per-layer weights are an ``nn.Parameter``, meant to be
    fitted against a separate objective (as LPIPS fits them to human judgements): minimising
    this loss itself with respect to them only drives them to zero.

    Args:
        backbone: ``nn.Sequential``, a state_dict path, or ``None``.
        layers: ReLU outputs to compare, from ``relu1_1`` … ``relu5_3``.
        weights: per-layer weights (≥ 0), one per layer; ``None`` gives each ``1/L``.
        learnable_weights: make the weights an ``nn.Parameter``.
        normalize_input: apply the ImageNet normalisation first.
        reduction: ``"mean" | "sum" | "none"`` over the images.

    Raises:
        ValueError: an unknown layer (the valid ones are listed), weights of the wrong length or
            negative, a backbone too short for ``layers``, or a state_dict without VGG16 keys.
        TypeError: a backbone that is neither a module, a path nor ``None``.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     loss = PerceptualLoss(backbone=None, layers=("relu1_2", "relu2_2"))
        >>> img = torch.rand(2, 3, 16, 16)
        >>> float(loss(img, img))
        0.0
    """

    weights: Tensor

    def __init__(
        self,
        backbone: nn.Module | str | os.PathLike[str] | None = None,
        *,
        layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3"),
        weights: Sequence[float] | None = None,
        learnable_weights: bool = False,
        normalize_input: bool = True,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        name = "PerceptualLoss"
        if backbone is None:
            warnings.warn(
                "PerceptualLoss: backbone=None builds a randomly initialised (untrained) VGG16; "
                "pass a pretrained module or a local state_dict path for a perceptual metric",
                UserWarning,
                stacklevel=2,
            )
        self.features = VGG16Features(
            backbone, layers=layers, normalize_input=normalize_input, fn=name
        )
        n_layers = len(self.features.layers)
        if weights is None:
            w = torch.full((n_layers,), 1.0 / n_layers)
        else:
            w = torch.tensor([check_number(name, "weights", v, low=0.0) for v in weights])
            if w.shape != (n_layers,):
                fail(name, "weights", f"{n_layers} values, one per layer", len(w))
        if learnable_weights:
            self.weights = nn.Parameter(w)
        else:
            self.register_buffer("weights", w)
        self.reduction: Reduction = check_reduction(name, reduction)

    def extra_repr(self) -> str:
        return f"layers={self.features.layers}, reduction={self.reduction!r}"

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return perceptual(
            pred, target, self.features, weights=self.weights, reduction=self.reduction
        )
