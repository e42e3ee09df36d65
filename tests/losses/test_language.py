"""Language, preference and diffusion losses against torch core."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import losskit
import losskit.functional as LF

REDUCTIONS = ("mean", "sum", "none")


def _lm(batch: int = 3, length: int = 6, vocab: int = 11, ignore_index: int = -100):
    torch.manual_seed(0)
    logits = torch.randn(batch, length, vocab, dtype=torch.float64, requires_grad=True)
    tokens = torch.randint(0, vocab, (batch, length))
    tokens[0, 2] = ignore_index
    tokens[1, -1] = ignore_index
    return logits, tokens


def _shifted_ce(logits, tokens, ignore_index=-100, reduction="mean"):
    """The reference: shift by hand, then torch's cross-entropy."""
    vocab = logits.shape[-1]
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, vocab),
        tokens[:, 1:].reshape(-1),
        ignore_index=ignore_index,
        reduction=reduction,
    )


# ----------------------------------------------------------------------------- next-token CE


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_next_token_cross_entropy_matches_shifted_torch_cross_entropy(reduction):
    logits, tokens = _lm()
    ours = LF.next_token_cross_entropy(logits, tokens, reduction=reduction)
    ref = _shifted_ce(logits, tokens, reduction=reduction)
    if reduction == "none":
        assert ours.shape == (3, 5)
        ref = ref.reshape(3, 5)
    torch.testing.assert_close(ours, ref)
    (g_ours,) = torch.autograd.grad(ours.sum(), logits)
    (g_ref,) = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(g_ours, g_ref)
    assert g_ours[:, -1].abs().sum() == 0  # the last position predicts nothing


def test_next_token_cross_entropy_custom_ignore_index_and_module():
    logits, tokens = _lm(ignore_index=0)
    module = losskit.NextTokenCrossEntropyLoss(ignore_index=0, reduction="sum")
    torch.testing.assert_close(module(logits, tokens), _shifted_ce(logits, tokens, 0, "sum"))
    # "mean" divides by the valid positions only.
    valid = (tokens[:, 1:] != 0).sum()
    total = LF.next_token_cross_entropy(logits, tokens, ignore_index=0, reduction="sum")
    torch.testing.assert_close(
        LF.next_token_cross_entropy(logits, tokens, ignore_index=0), total / valid
    )


def test_next_token_cross_entropy_nothing_valid_is_zero_and_connected():
    logits = torch.randn(2, 4, 5, requires_grad=True)
    tokens = torch.full((2, 4), -100)
    value = LF.next_token_cross_entropy(logits, tokens)
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    single = LF.next_token_cross_entropy(logits[:, :1], torch.zeros(2, 1, dtype=torch.long))
    assert single.item() == 0.0 and single.requires_grad  # T = 1: no next token


def test_next_token_cross_entropy_gradcheck():
    logits, tokens = _lm(2, 4, 5)
    assert gradcheck(lambda z: LF.next_token_cross_entropy(z, tokens), (logits,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_next_token_cross_entropy_half_precision(dtype):
    logits, tokens = _lm()
    low = (logits.detach() * 1e4).to(dtype).requires_grad_()  # extreme logits
    value = LF.next_token_cross_entropy(low, tokens)
    value.backward()
    assert value.dtype == dtype and torch.isfinite(value) and torch.isfinite(low.grad).all()
    ref = _shifted_ce(low.detach().float(), tokens)
    torch.testing.assert_close(value.float(), ref, rtol=1e-2, atol=1e-2)
    ppl = LF.perplexity(logits.detach().to(dtype), tokens)
    assert ppl.dtype == torch.float32 and torch.isfinite(ppl)


def test_perplexity_of_a_large_vocabulary_does_not_overflow_float16():
    logits = torch.zeros(1, 3, 100_000, dtype=torch.float16)  # uniform: perplexity = V > 65504
    value = LF.perplexity(logits, torch.tensor([[1, 2, 3]]))
    assert value.dtype == torch.float32 and value.item() == pytest.approx(1e5, rel=1e-3)


def test_next_token_cross_entropy_errors():
    logits, tokens = _lm()
    fn = LF.next_token_cross_entropy
    with pytest.raises(ValueError, match=r"next_token_cross_entropy: expected `logits` to be 3-D"):
        fn(logits[0], tokens[0])
    with pytest.raises(ValueError, match=r"expected `tokens` of shape \(3, 6\) matching logits"):
        fn(logits, tokens[:, :4])
    with pytest.raises(
        ValueError, match=r"expected `tokens` in \[0, 10\] or -100 .*got a label 11"
    ):
        fn(logits, torch.full((3, 6), 11))
    with pytest.raises(TypeError, match=r"expected `tokens` to hold integer class indices"):
        fn(logits, tokens.double())
    with pytest.raises(TypeError, match=r"expected `logits` to be a floating-point tensor"):
        fn(tokens.unsqueeze(-1), tokens)
    with pytest.raises(TypeError, match=r"expected `ignore_index` to be an integer"):
        fn(logits, tokens, ignore_index=1.5)
    with pytest.raises(ValueError, match=r"expected `reduction` one of"):
        fn(logits, tokens, reduction="batchmean")
    with pytest.raises(TypeError, match=r"NextTokenCrossEntropyLoss: expected `ignore_index`"):
        losskit.NextTokenCrossEntropyLoss(ignore_index="pad")


# ----------------------------------------------------------------------------- perplexity


def test_perplexity_is_exp_of_the_mean_cross_entropy():
    logits, tokens = _lm()
    value = LF.perplexity(logits, tokens)
    ref = torch.exp(_shifted_ce(logits, tokens))
    torch.testing.assert_close(value, ref)
    (g,) = torch.autograd.grad(value, logits)
    (g_ref,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(g, g_ref)
    torch.testing.assert_close(losskit.PerplexityLoss()(logits, tokens), value)
    assert gradcheck(lambda z: LF.perplexity(z, tokens), (logits,))


def test_perplexity_identities():
    uniform = torch.zeros(2, 5, 9)
    tokens = torch.randint(0, 9, (2, 5))
    assert LF.perplexity(uniform, tokens).item() == pytest.approx(9.0)  # uniform over V
    nothing = LF.perplexity(uniform, torch.full((2, 5), -100))
    assert nothing.item() == 1.0


# ----------------------------------------------------------------------------- Bradley–Terry


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.7])
def test_bradley_terry_matches_logsigmoid(reduction, margin):
    torch.manual_seed(0)
    chosen = torch.randn(7, dtype=torch.float64, requires_grad=True)
    rejected = torch.randn(7, dtype=torch.float64, requires_grad=True)
    ours = LF.bradley_terry(chosen, rejected, margin=margin, reduction=reduction)
    per_pair = -F.logsigmoid(chosen - rejected - margin)
    ref = {"mean": per_pair.mean(), "sum": per_pair.sum(), "none": per_pair}[reduction]
    torch.testing.assert_close(ours, ref)
    g = torch.autograd.grad(ours.sum(), [chosen, rejected])
    g_ref = torch.autograd.grad(ref.sum(), [chosen, rejected])
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b)
    module = losskit.BradleyTerryLoss(margin=margin, reduction=reduction)
    torch.testing.assert_close(module(chosen, rejected), ours)


def test_bradley_terry_per_pair_margin_and_gradcheck():
    chosen = torch.randn(5, dtype=torch.float64, requires_grad=True)
    rejected = torch.randn(5, dtype=torch.float64, requires_grad=True)
    margin = torch.rand(5, dtype=torch.float64)
    torch.testing.assert_close(
        LF.bradley_terry(chosen, rejected, margin=margin),
        -F.logsigmoid(chosen - rejected - margin).mean(),
    )
    assert gradcheck(lambda c, r: LF.bradley_terry(c, r, margin=margin), (chosen, rejected))
    # The loss is log 2 when the reward gap equals the margin.
    assert LF.bradley_terry(torch.tensor([3.0]), torch.tensor([1.0]), margin=2.0).item() == (
        pytest.approx(math.log(2.0))
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_bradley_terry_extreme_half_precision(dtype):
    # a gap of 6e4: the loss itself must stay representable in float16 (max 65504)
    chosen = torch.tensor([-3e4, 3e4, 0.0], dtype=dtype, requires_grad=True)
    rejected = torch.tensor([3e4, -3e4, 0.0], dtype=dtype)
    value = LF.bradley_terry(chosen, rejected, reduction="none")
    value.sum().backward()
    assert value.dtype == dtype and torch.isfinite(value).all()
    assert torch.isfinite(chosen.grad).all()
    assert value[1].item() == 0.0 and value[2].item() == pytest.approx(math.log(2.0), rel=1e-2)


def test_bradley_terry_errors():
    r = torch.randn(4)
    with pytest.raises(
        ValueError, match=r"bradley_terry: expected `rejected_rewards` of the same shape"
    ):
        LF.bradley_terry(r, torch.randn(5))
    with pytest.raises(
        ValueError, match=r"expected `margin` of the same shape as `chosen_rewards`"
    ):
        LF.bradley_terry(r, r, margin=torch.zeros(3))
    with pytest.raises(
        ValueError, match=r"expected `margin` to be a finite number in \(-inf, inf\), got nan"
    ):
        LF.bradley_terry(r, r, margin=float("nan"))
    with pytest.raises(TypeError, match=r"expected `chosen_rewards` to be a floating-point tensor"):
        LF.bradley_terry(torch.ones(4, dtype=torch.long), r)
    with pytest.raises(TypeError, match=r"BradleyTerryLoss: expected `margin` to be a real number"):
        losskit.BradleyTerryLoss(margin="1")


# ----------------------------------------------------------------------------- diffusion


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_diffusion_noise_mse_matches_mse(reduction):
    torch.manual_seed(0)
    pred = torch.randn(4, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    noise = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    ours = LF.diffusion_noise_mse(pred, noise, reduction=reduction)
    per_sample = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
    ref = {"mean": F.mse_loss(pred, noise), "sum": per_sample.sum(), "none": per_sample}[reduction]
    torch.testing.assert_close(ours, ref)
    (g,) = torch.autograd.grad(ours.sum(), pred)
    (g_ref,) = torch.autograd.grad(ref.sum(), pred)
    torch.testing.assert_close(g, g_ref)
    module = losskit.DiffusionNoiseMSELoss(reduction=reduction)
    torch.testing.assert_close(module(pred, noise), ours)


def test_diffusion_noise_mse_weights_and_gradcheck():
    pred = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    noise = torch.randn(3, 5, dtype=torch.float64)
    weight = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    expected = (weight * ((pred - noise) ** 2).mean(dim=1)).mean()
    torch.testing.assert_close(LF.diffusion_noise_mse(pred, noise, weight=weight), expected)
    assert gradcheck(lambda p: LF.diffusion_noise_mse(p, noise, weight=weight), (pred,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_diffusion_noise_mse_half_precision(dtype):
    pred = torch.tensor([[200.0, -200.0], [0.0, 1.0]], dtype=dtype, requires_grad=True)
    value = LF.diffusion_noise_mse(pred, torch.zeros(2, 2, dtype=dtype))
    value.backward()
    assert value.dtype == dtype and torch.isfinite(value) and torch.isfinite(pred.grad).all()


def test_diffusion_noise_mse_errors():
    x = torch.randn(2, 3)
    with pytest.raises(
        ValueError, match=r"diffusion_noise_mse: expected `noise` of the same shape"
    ):
        LF.diffusion_noise_mse(x, torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"expected `weight` of shape \(2,\) matching the batch"):
        LF.diffusion_noise_mse(x, x, weight=torch.ones(3))
    with pytest.raises(ValueError, match=r"expected `pred_noise` of shape \(B, \.\.\.\)"):
        LF.diffusion_noise_mse(torch.tensor(1.0), torch.tensor(1.0))
    with pytest.raises(TypeError, match=r"expected `pred_noise` to be a floating-point tensor"):
        LF.diffusion_noise_mse(torch.ones(2, dtype=torch.long), x)
    with pytest.raises(ValueError, match=r"DiffusionNoiseMSELoss: expected `reduction`"):
        losskit.DiffusionNoiseMSELoss(reduction="mean_")
