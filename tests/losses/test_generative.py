"""Generative losses against torch core, autograd references and closed forms."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck
from torch.distributions import Normal, kl_divergence

import losskit
import losskit.functional as LF
from losskit.models import VGG16_LAYERS, VGG16Features, vgg16_features

KINDS = ("minimax", "nonsaturating", "wgan", "hinge")


def _f64(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def _grads(value: torch.Tensor, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(value, inputs, allow_unused=True)


# ----------------------------------------------------------------------------- GAN objectives


def _reference_gan(kind: str, real: torch.Tensor, fake: torch.Tensor):
    """Each objective written from its paper, with torch's BCE for the cross-entropy ones."""
    ones, zeros = torch.ones_like(real), torch.zeros_like(fake)
    bce = F.binary_cross_entropy_with_logits
    if kind in ("minimax", "nonsaturating"):
        d = bce(real, ones) + bce(fake, zeros)
        g = -bce(fake, zeros) if kind == "minimax" else bce(fake, torch.ones_like(fake))
    elif kind == "wgan":
        d, g = fake.mean() - real.mean(), -fake.mean()
    else:
        d, g = (
            torch.clamp(1 - real, min=0).mean() + torch.clamp(1 + fake, min=0).mean(),
            -fake.mean(),
        )
    return d, g


@pytest.mark.parametrize("kind", KINDS)
def test_gan_losses_match_reference_values_and_gradients(kind):
    torch.manual_seed(0)
    real, fake = _f64(6, 1), _f64(5, 1)  # batches of different sizes are allowed for "mean"
    d_ref, g_ref = _reference_gan(kind, real, fake)
    d = LF.gan_discriminator(real, fake, kind)
    g = LF.gan_generator(fake, kind)
    torch.testing.assert_close(d, d_ref)
    torch.testing.assert_close(g, g_ref)
    for ours, ref in ((d, d_ref), (g, g_ref)):
        for a, b in zip(_grads(ours, [real, fake]), _grads(ref, [real, fake])):
            torch.testing.assert_close(a, b)


def test_gan_minimax_generator_is_log_one_minus_sigmoid():
    fake = torch.linspace(-5, 5, 11, dtype=torch.float64)
    expected = torch.log(1 - torch.sigmoid(fake)).mean()
    torch.testing.assert_close(LF.gan_generator(fake, "minimax"), expected)


@pytest.mark.parametrize("kind", KINDS)
def test_gan_reductions(kind):
    real, fake = _f64(4), _f64(4)
    none_d = LF.gan_discriminator(real, fake, kind, reduction="none")
    none_g = LF.gan_generator(fake, kind, reduction="none")
    assert none_d.shape == (4,) and none_g.shape == (4,)
    torch.testing.assert_close(
        LF.gan_discriminator(real, fake, kind, reduction="sum"), none_d.sum()
    )
    torch.testing.assert_close(LF.gan_discriminator(real, fake, kind), none_d.mean())
    torch.testing.assert_close(LF.gan_generator(fake, kind, reduction="sum"), none_g.sum())


def test_gan_hinge_closed_form_on_hand_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.0])
    # max(0, 1 − r) = (0, 0.5); max(0, 1 + f) = (0, 1)
    assert float(LF.gan_discriminator(real, fake, "hinge", reduction="sum")) == 1.5


@pytest.mark.parametrize("kind", KINDS)
def test_gan_gradcheck(kind):
    real, fake = _f64(3, 1), _f64(3, 1)
    assert gradcheck(lambda r, f: LF.gan_discriminator(r, f, kind), (real, fake))
    assert gradcheck(lambda f: LF.gan_generator(f, kind, reduction="none"), (fake,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
def test_gan_extreme_half_precision_logits_are_finite(kind, dtype):
    logits = torch.tensor([-6e4, -50.0, 0.0, 50.0, 6e4], dtype=dtype, requires_grad=True)
    d = LF.gan_discriminator(logits, logits.flip(0), kind)
    g = LF.gan_generator(logits, kind)
    assert d.dtype == dtype and g.dtype == dtype
    (d + g).backward()
    assert torch.isfinite(d) and torch.isfinite(g) and torch.isfinite(logits.grad).all()


def test_gan_modules():
    real, fake = torch.randn(4), torch.randn(4)
    gan = losskit.GANLoss(kind="wgan")
    torch.testing.assert_close(gan(fake), LF.gan_generator(fake, "wgan"))
    torch.testing.assert_close(gan(fake, real), LF.gan_discriminator(real, fake, "wgan"))
    torch.testing.assert_close(gan.discriminator(real, fake), gan(fake, real))
    torch.testing.assert_close(
        losskit.GANDiscriminatorLoss(kind="hinge", reduction="sum")(real, fake),
        LF.gan_discriminator(real, fake, "hinge", reduction="sum"),
    )
    torch.testing.assert_close(losskit.GANGeneratorLoss()(fake), LF.gan_generator(fake))
    assert isinstance(losskit.build_loss("gan", kind="hinge"), losskit.GANLoss)
    assert "kind='wgan'" in repr(gan)


def test_gan_errors():
    x = torch.randn(3)
    with pytest.raises(
        ValueError, match=r"gan_generator: expected `kind` one of .*did you mean 'hinge'"
    ):
        LF.gan_generator(x, "hinje")
    with pytest.raises(ValueError, match=r"GANLoss: expected `kind` .*did you mean 'wgan'"):
        losskit.GANLoss(kind="wgn")
    with pytest.raises(
        ValueError, match=r"expected `fake_logits` of the same shape as `real_logits`"
    ):
        LF.gan_discriminator(x, torch.randn(4), reduction="none")
    with pytest.raises(TypeError, match=r"expected `real_logits` to be a floating-point tensor"):
        LF.gan_discriminator(torch.ones(3, dtype=torch.long), x)
    with pytest.raises(ValueError, match=r"expected `reduction` one of"):
        LF.gan_generator(x, reduction="avg")


# ----------------------------------------------------------------------------- WGAN-GP and R1


def _critic() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 4 * 4, 1)
    ).double()


def _per_sample_gp(critic, real, fake, eps, weight=10.0):
    """Algorithm 1 of Gulrajani et al., one sample at a time."""
    penalties = []
    for i in range(real.shape[0]):
        x = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).unsqueeze(0).detach().requires_grad_()
        (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        penalties.append(weight * (g.flatten().norm() - 1) ** 2)
    return torch.stack(penalties)


def test_gradient_penalty_matches_per_sample_autograd():
    critic = _critic()
    real = torch.randn(5, 2, 4, 4, dtype=torch.float64)
    fake = torch.randn(5, 2, 4, 4, dtype=torch.float64)
    eps = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert eps.flatten().unique().numel() == 5  # one ε per sample
    ours = LF.gradient_penalty(
        critic, real, fake, generator=torch.Generator().manual_seed(7), reduction="none"
    )
    ref = _per_sample_gp(critic, real, fake, eps)
    torch.testing.assert_close(ours, ref)
    # create_graph=True: the penalty trains the critic, with the same gradient as the reference.
    params = list(critic.parameters())
    for a, b in zip(_grads(ours.mean(), params), _grads(ref.mean(), params)):
        torch.testing.assert_close(a, b)
    mean = LF.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(mean, ref.mean())


def test_gradient_penalty_closed_form_for_a_linear_critic():
    # D(x) = w·x has ∇D = w everywhere: penalty = λ(‖w‖ − 1)² whatever ε is.
    critic = nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 0.0, 4.0]]))
    real, fake = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    with torch.no_grad():  # the penalty builds its own graph even here
        value = LF.gradient_penalty(critic, real, fake, weight=2.0)
    assert float(value) == pytest.approx(2.0 * 16.0)


def test_gradient_penalty_gradcheck_and_module():
    critic = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    real, fake = _f64(3, 3), _f64(3, 3)

    def fn(r, f):
        return LF.gradient_penalty(critic, r, f, generator=torch.Generator().manual_seed(0))

    assert gradcheck(fn, (real, fake))
    module = losskit.GradientPenaltyLoss(weight=5.0, reduction="sum")
    torch.testing.assert_close(
        module(critic, real, fake, torch.Generator().manual_seed(3)),
        LF.gradient_penalty(
            critic,
            real,
            fake,
            weight=5.0,
            generator=torch.Generator().manual_seed(3),
            reduction="sum",
        ),
    )


def test_gradient_penalty_errors():
    critic = nn.Linear(3, 1)
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"gradient_penalty: expected `fake` of the same shape"):
        LF.gradient_penalty(critic, x, torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"expected `weight` in \[0, inf\)"):
        LF.gradient_penalty(critic, x, x, weight=-1.0)
    with pytest.raises(ValueError, match=r"expected `critic\(x̂\)` one score per sample \(4\)"):
        LF.gradient_penalty(nn.Linear(3, 2), x, x)
    with pytest.raises(ValueError, match=r"expected `critic` scores that depend on its input"):
        LF.gradient_penalty(lambda t: torch.zeros(t.shape[0]), x, x)
    with pytest.raises(ValueError, match=r"expected `real` of shape \(B, \.\.\.\) with a batch"):
        LF.gradient_penalty(critic, torch.tensor(1.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"GradientPenaltyLoss: expected `weight`"):
        losskit.GradientPenaltyLoss(weight=-2.0)


def test_r1_penalty_matches_per_sample_autograd():
    critic = _critic()
    real = torch.randn(4, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    ours = LF.r1_penalty(critic(real), real, gamma=3.0, reduction="none")
    ref = []
    for i in range(4):
        x = real[i : i + 1].detach().requires_grad_()
        (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        ref.append(1.5 * g.pow(2).sum())
    ref_t = torch.stack(ref)
    torch.testing.assert_close(ours, ref_t)
    params = list(critic.parameters())
    for a, b in zip(_grads(ours.sum(), params), _grads(ref_t.sum(), params)):
        torch.testing.assert_close(a, b)
    module = losskit.R1PenaltyLoss(gamma=3.0, reduction="sum")
    torch.testing.assert_close(module(critic(real), real), ref_t.sum())


def test_r1_penalty_closed_form_and_gradcheck():
    w = torch.tensor([1.0, -2.0, 2.0], dtype=torch.float64, requires_grad=True)
    real = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    value = LF.r1_penalty(real @ w, real, gamma=4.0)
    assert value.item() == pytest.approx(0.5 * 4.0 * 9.0)  # γ/2 · ‖w‖²
    (gw,) = torch.autograd.grad(value, w)
    torch.testing.assert_close(gw, 4.0 * w.detach())  # d/dw γ/2‖w‖² = γ·w

    def fn(x):
        return LF.r1_penalty(torch.tanh(x).pow(3).sum(dim=1), x)

    assert gradcheck(fn, (real,))


def test_r1_penalty_errors():
    real = torch.randn(3, 2)
    with pytest.raises(ValueError, match=r"r1_penalty: expected `real` to require grad"):
        LF.r1_penalty(real.sum(1), real)
    real.requires_grad_()
    with pytest.raises(ValueError, match=r"expected `real_logits` computed from `real`"):
        LF.r1_penalty(torch.randn(3), real)
    with pytest.raises(ValueError, match=r"expected `real_logits` one score per sample"):
        LF.r1_penalty(real, real)
    with pytest.raises(ValueError, match=r"expected `gamma` in \[0, inf\)"):
        LF.r1_penalty(real.sum(1), real, gamma=-1.0)


# ----------------------------------------------------------------------------- VAE


def _vae_inputs(batch: int = 4):
    torch.manual_seed(2)
    recon = torch.randn(batch, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    x = torch.rand(batch, 1, 3, 3, dtype=torch.float64)
    mu, logvar = _f64(batch, 5), _f64(batch, 5)
    return recon, x, mu, logvar


def _kl_reference(mu, logvar):
    posterior = Normal(mu, torch.exp(0.5 * logvar))
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return kl_divergence(posterior, prior).sum(dim=1)


@pytest.mark.parametrize("reconstruction", ["bce", "mse"])
@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
def test_vae_elbo_matches_torch_references(reconstruction, beta):
    recon, x, mu, logvar = _vae_inputs()
    if reconstruction == "bce":
        rec = F.binary_cross_entropy_with_logits(recon, x, reduction="none").flatten(1).sum(1)
    else:
        rec = F.mse_loss(recon, x, reduction="none").flatten(1).sum(1)
    ref = rec + beta * _kl_reference(mu, logvar)
    ours = LF.vae_elbo(
        recon,
        x,
        mu,
        logvar,
        beta,
        reconstruction,
        reduction="none",  # the documented order
    )
    torch.testing.assert_close(ours, ref)
    inputs = [recon, mu, logvar]
    for a, b in zip(_grads(ours.mean(), inputs), _grads(ref.mean(), inputs)):
        torch.testing.assert_close(a, b)
    mean = LF.vae_elbo(recon, x, mu, logvar, beta=beta, reconstruction=reconstruction)
    total = LF.vae_elbo(
        recon, x, mu, logvar, beta=beta, reconstruction=reconstruction, reduction="sum"
    )
    torch.testing.assert_close(mean, ref.mean())  # sum over features, mean over the batch
    torch.testing.assert_close(total, ref.sum())
    module = losskit.VAELoss(beta=beta, reconstruction=reconstruction)
    torch.testing.assert_close(module(recon, x, mu, logvar), mean)


def test_vae_elbo_gradcheck():
    recon, x, mu, logvar = _vae_inputs(2)
    assert gradcheck(lambda r, m, lv: LF.vae_elbo(r, x, m, lv, beta=2.0), (recon, mu, logvar))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_vae_elbo_extreme_half_precision_is_finite(dtype):
    recon = torch.tensor([[-6e4, 6e4, 0.0]], dtype=dtype, requires_grad=True)
    x = torch.tensor([[0.0, 1.0, 0.5]], dtype=dtype)
    mu = torch.tensor([[3.0, -3.0]], dtype=dtype, requires_grad=True)
    logvar = torch.tensor([[-20.0, 8.0]], dtype=dtype, requires_grad=True)
    value = LF.vae_elbo(recon, x, mu, logvar)
    value.backward()
    assert value.dtype == dtype and torch.isfinite(value)
    assert all(torch.isfinite(t.grad).all() for t in (recon, mu, logvar))


def test_vae_elbo_errors():
    recon, x, mu, logvar = _vae_inputs(2)
    with pytest.raises(
        ValueError, match=r"vae_elbo: expected `x` of the same shape as `recon_logits`"
    ):
        LF.vae_elbo(recon, x[:1], mu, logvar)
    with pytest.raises(ValueError, match=r"expected `logvar` of the same shape as `mu`"):
        LF.vae_elbo(recon, x, mu, logvar[:, :2])
    with pytest.raises(ValueError, match=r"expected `mu` of batch size 2 like `x`"):
        LF.vae_elbo(recon, x, mu[:1], logvar[:1])
    with pytest.raises(
        ValueError, match=r"expected `recon_logits` of shape \(B, \.\.\.\) with at least 2"
    ):
        LF.vae_elbo(recon.flatten(), x.flatten(), mu, logvar)
    with pytest.raises(ValueError, match=r"expected `beta` in \[0, inf\)"):
        LF.vae_elbo(recon, x, mu, logvar, beta=-0.5)
    with pytest.raises(ValueError, match=r"expected `reconstruction` one of .*did you mean 'mse'"):
        LF.vae_elbo(recon, x, mu, logvar, reconstruction="mae")
    with pytest.raises(ValueError, match=r"VAELoss: expected `reconstruction`"):
        losskit.VAELoss(reconstruction="l1")


# ----------------------------------------------------------------------------- perceptual


def test_vgg16_layout_matches_torchvision():
    # torchvision.models.vgg16().features: 13 conv + 13 ReLU + 5 max-pool = 31 layers,
    # 14,714,688 parameters, ReLU indices 3/8/15/22/29 for relu1_2 … relu5_3.
    trunk = vgg16_features()
    assert len(trunk) == 31
    assert sum(p.numel() for p in trunk.parameters()) == 14_714_688
    assert [VGG16_LAYERS[f"relu{b}_{c}"] for b, c in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))] == [
        3,
        8,
        15,
        22,
        29,
    ]
    assert all(isinstance(trunk[i], nn.ReLU) for i in VGG16_LAYERS.values())
    assert [i for i, m in enumerate(trunk) if isinstance(m, nn.MaxPool2d)] == [4, 9, 16, 23, 30]
    assert list(trunk.state_dict())[:4] == ["0.weight", "0.bias", "2.weight", "2.bias"]


def _random_loss(**kw) -> losskit.PerceptualLoss:
    with pytest.warns(UserWarning, match="untrained"):
        return losskit.PerceptualLoss(backbone=None, **kw)


def test_perceptual_random_backbone_identity_reference_and_frozen():
    torch.manual_seed(0)
    loss = _random_loss(layers=("relu1_2", "relu2_1"), weights=(1.0, 0.5))
    img = torch.rand(2, 3, 8, 8)
    assert float(loss(img, img)) == 0.0
    pred = torch.rand(2, 3, 8, 8, requires_grad=True)
    trunk = loss.features.trunk
    assert len(trunk) == VGG16_LAYERS["relu2_1"] + 1  # cut after the deepest layer
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def feats(x, upto):
        return trunk[: upto + 1]((x - mean) / std)

    ref = F.mse_loss(feats(pred, 3), feats(img, 3)) + 0.5 * F.mse_loss(
        feats(pred, 6), feats(img, 6)
    )
    value = loss(pred, img)
    torch.testing.assert_close(value, ref)
    torch.testing.assert_close(_grads(value, [pred])[0], _grads(ref, [pred])[0])
    none = losskit.PerceptualLoss(backbone=trunk, layers=("relu1_2",), reduction="none")(pred, img)
    assert none.shape == (2,)
    # Frozen: no parameter requires grad, and the trunk stays in eval mode after .train().
    assert not any(p.requires_grad for p in loss.features.parameters())
    loss.train()
    assert loss.training and not loss.features.trunk.training


def test_perceptual_state_dict_round_trip(tmp_path):
    torch.manual_seed(0)
    source = vgg16_features(9)  # up to relu2_2 and its max-pool
    path = tmp_path / "vgg16_features.pt"
    torch.save(source.state_dict(), path)
    loss = losskit.PerceptualLoss(backbone=str(path), layers=("relu2_2",))
    for key, value in loss.features.trunk.state_dict().items():
        torch.testing.assert_close(value, source.state_dict()[key])
    # A whole-model state_dict ("features.<i>", plus a classifier) loads the same way.
    whole = {f"features.{k}": v for k, v in source.state_dict().items()}
    whole["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(whole, tmp_path / "vgg16.pt")
    other = losskit.PerceptualLoss(backbone=tmp_path / "vgg16.pt", layers=("relu2_2",))
    pred, target = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(other(pred, target), loss(pred, target))
    expected = F.mse_loss(
        *(source[:9]((x - loss.features.mean) / loss.features.std) for x in (pred, target))
    )
    torch.testing.assert_close(loss(pred, target), expected)


def test_perceptual_learnable_weights_and_user_module():
    trunk = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
    )
    loss = losskit.PerceptualLoss(
        trunk, layers=("relu1_1", "relu1_2"), learnable_weights=True, normalize_input=False
    )
    assert isinstance(loss.weights, nn.Parameter)
    assert not any(p.requires_grad for p in trunk.parameters())  # frozen in place
    pred, target = torch.rand(2, 3, 6, 6, requires_grad=True), torch.rand(2, 3, 6, 6)
    value = loss(pred, target)
    value.backward()
    assert loss.weights.grad is not None and pred.grad is not None
    f1 = trunk[:2](pred.detach()), trunk[:2](target)
    f2 = trunk(pred.detach()), trunk(target)
    torch.testing.assert_close(value.detach(), 0.5 * F.mse_loss(*f1) + 0.5 * F.mse_loss(*f2))


def test_perceptual_bfloat16_is_finite():
    trunk = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).to(torch.bfloat16)
    loss = losskit.PerceptualLoss(backbone=trunk, layers=("relu1_1",))
    pred = (torch.rand(1, 3, 4, 4) * 300).to(torch.bfloat16).requires_grad_()
    value = loss(pred, torch.zeros(1, 3, 4, 4, dtype=torch.bfloat16))
    value.backward()
    assert (
        value.dtype == torch.bfloat16 and torch.isfinite(value) and torch.isfinite(pred.grad).all()
    )


@pytest.mark.parametrize(
    ("trunk_dtype", "input_dtype"),
    [
        (torch.float64, torch.float32),
        (torch.float32, torch.bfloat16),
        (torch.float32, torch.float16),
    ],
    ids=str,
)
def test_perceptual_casts_inputs_to_the_backbone_dtype(trunk_dtype, input_dtype):
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).to(trunk_dtype)
    loss = losskit.PerceptualLoss(backbone=trunk, layers=("relu1_1",), normalize_input=False)
    pred = torch.rand(2, 3, 5, 5).to(input_dtype).requires_grad_()
    target = torch.rand(2, 3, 5, 5).to(input_dtype)
    value = loss(pred, target)
    (grad,) = torch.autograd.grad(value, pred)
    # The reference: the same trunk on the inputs cast by hand.
    ref_pred = pred.detach().to(trunk_dtype).requires_grad_()
    ref = F.mse_loss(trunk(ref_pred), trunk(target.to(trunk_dtype)))
    (ref_grad,) = torch.autograd.grad(ref, ref_pred)
    assert value.dtype == input_dtype and grad.dtype == input_dtype
    torch.testing.assert_close(value, ref.to(input_dtype))
    torch.testing.assert_close(grad, ref_grad.to(input_dtype))


def test_perceptual_errors(tmp_path):
    with (
        pytest.raises(
            ValueError,
            match=r"PerceptualLoss: expected `layers` one of 'relu1_1'.*'relu5_3', got 'relu6_1'",
        ),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        losskit.PerceptualLoss(layers=("relu6_1",))
    with pytest.raises(ValueError, match=r"got 'relu3_4' \(did you mean 'relu3_"):
        VGG16Features(layers=("relu3_4",))
    with pytest.raises(ValueError, match=r"expected `layers` a non-empty sequence"):
        VGG16Features(layers=())
    short = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(ValueError, match=r"expected `backbone` at least 4 layers"):
        losskit.PerceptualLoss(backbone=short, layers=("relu1_2",))
    with pytest.raises(
        TypeError, match=r"expected `backbone` an nn.Sequential, a state_dict path or None"
    ):
        losskit.PerceptualLoss(backbone=nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"expected `weights` 1 values, one per layer, got 2"):
        losskit.PerceptualLoss(backbone=short, layers=("relu1_1",), weights=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"expected `weights` in \[0, inf\)"):
        losskit.PerceptualLoss(backbone=short, layers=("relu1_1",), weights=(-1.0,))
    torch.save({"0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "partial.pt")
    with pytest.raises(
        ValueError, match=r"expected `backbone` a VGG16 state_dict .* missing \['0.bias'\]"
    ):
        losskit.PerceptualLoss(backbone=tmp_path / "partial.pt", layers=("relu1_1",))
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(
        TypeError, match=r"expected `backbone` a file holding a state_dict, got Tensor"
    ):
        losskit.PerceptualLoss(backbone=tmp_path / "tensor.pt", layers=("relu1_1",))
    loss = losskit.PerceptualLoss(backbone=short, layers=("relu1_1",))
    with pytest.raises(ValueError, match=r"perceptual: expected `pred` of shape \(N, 3, H, W\)"):
        loss(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"expected `target` of the same shape as `pred`"):
        loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"expected `weights` of shape \(1,\), one per layer"):
        LF.perceptual(
            torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), loss.features, weights=[1.0, 1.0]
        )


def test_perceptual_gradcheck():
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.Tanh()).double()  # smooth stand-in
    features = VGG16Features(trunk, layers=("relu1_1",))
    pred = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    assert gradcheck(lambda p: LF.perceptual(p, target, features), (pred,))
