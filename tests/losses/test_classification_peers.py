"""Asymmetric loss, JSD cross-entropy and BCE label smoothing: values and gradients against
timm's own loss files (loaded from its wheel), PyTorch core, gradcheck and every error."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import losskit
import losskit.functional as LF
from tests import peers


def _multilabel(b: int = 5, c: int = 4, scale: float = 3.0):
    g = torch.Generator().manual_seed(0)
    x = (scale * torch.randn(b, c, generator=g, dtype=torch.float64)).requires_grad_()
    y = (torch.rand(b, c, generator=g) > 0.6).double()
    return x, y


def _grad(out, x):
    (g,) = torch.autograd.grad(out, (x,))
    return g


@pytest.mark.parametrize(
    ("gamma_pos", "gamma_neg", "clip"),
    [(0.0, 4.0, 0.05), (1.0, 4.0, 0.05), (0.5, 2.0, 0.0), (0.0, 0.0, 0.0)],
)
def test_asymmetric_loss_matches_timm(gamma_pos, gamma_neg, clip):
    timm = peers.load("timm", "timm.loss.asymmetric_loss").AsymmetricLossMultiLabel
    peer = timm(gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip)
    x, y = _multilabel()
    ours = LF.asymmetric_loss(x, y, gamma_pos, gamma_neg, clip, reduction="sum")
    theirs = peer(x, y)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(_grad(ours, x), _grad(theirs, x))
    torch.testing.assert_close(
        LF.asymmetric_loss(x, y, gamma_pos, gamma_neg, clip), theirs / y.numel()
    )
    assert gradcheck(lambda a: LF.asymmetric_loss(a, y, gamma_pos, gamma_neg, clip), (x,))


def test_asymmetric_loss_without_focusing_or_clip_is_bce():
    x, y = _multilabel()
    for r in ("mean", "sum", "none"):
        torch.testing.assert_close(
            LF.asymmetric_loss(x, y, 0.0, 0.0, 0.0, reduction=r),
            F.binary_cross_entropy_with_logits(x, y, reduction=r),
        )


def test_asymmetric_loss_extreme_logits_and_half_precision():
    x = torch.tensor([[80.0, -80.0]], requires_grad=True)
    y = torch.tensor([[0.0, 1.0]])
    out = LF.asymmetric_loss(x, y, 1.0, 4.0, 0.05)
    assert torch.isfinite(out) and torch.isfinite(_grad(out, x)).all()
    xh = x.detach().half().requires_grad_()
    out = LF.asymmetric_loss(xh, y.half())
    assert out.dtype == torch.float16 and torch.isfinite(out)


def test_jsd_cross_entropy_matches_timm_and_accepts_both_layouts():
    jsd = peers.load("timm", "timm.loss.jsd").JsdCrossEntropy
    g = torch.Generator().manual_seed(0)
    views = torch.randn(3, 4, 5, generator=g, dtype=torch.float64).requires_grad_()
    y = torch.randint(0, 5, (4,), generator=g)
    peer = jsd(num_splits=3, alpha=7.0, smoothing=None)
    theirs = peer(views.reshape(12, 5), y.repeat(3))
    ours = LF.jsd_cross_entropy(views, y, 7.0)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(_grad(ours, views), _grad(theirs, views))
    torch.testing.assert_close(LF.jsd_cross_entropy(tuple(views), y, 7.0), ours)
    smoothed = jsd(num_splits=3, alpha=7.0, smoothing=0.1)(views.reshape(12, 5), y.repeat(3))
    torch.testing.assert_close(LF.jsd_cross_entropy(views, y, 7.0, label_smoothing=0.1), smoothed)
    assert gradcheck(lambda v: LF.jsd_cross_entropy(v, y, 3.0), (views,))
    module = losskit.JSDCrossEntropyLoss(alpha=7.0)
    torch.testing.assert_close(module(views, y), ours)


def test_jsd_cross_entropy_identical_views_is_cross_entropy():
    clean = torch.randn(4, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0])
    out = LF.jsd_cross_entropy([clean, clean, clean], y)
    torch.testing.assert_close(out, F.cross_entropy(clean, y))


@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_binary_cross_entropy_label_smoothing_is_bce_on_the_smoothed_target(eps):
    x, y = _multilabel()
    ours = LF.binary_cross_entropy(x, y, label_smoothing=eps, reduction="none")
    ref = F.binary_cross_entropy_with_logits(x, y * (1 - eps) + eps / 2, reduction="none")
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(_grad(ours.sum(), x), _grad(ref.sum(), x))
    module = losskit.BCEWithLogitsLoss(label_smoothing=eps)
    torch.testing.assert_close(module(x, y), ref.mean())


def test_errors():
    x, y = _multilabel()
    with pytest.raises(ValueError, match=r"asymmetric_loss: expected `clip` in \[0, 1\], got 1.5"):
        LF.asymmetric_loss(x, y, clip=1.5)
    with pytest.raises(ValueError, match=r"AsymmetricLoss: expected `gamma_neg` in \[0, inf\)"):
        losskit.AsymmetricLoss(gamma_neg=-1.0)
    with pytest.raises(
        ValueError, match=r"asymmetric_loss: expected `targets` with values in \[0, 1\]"
    ):
        LF.asymmetric_loss(x, 2 * y + 1)
    with pytest.raises(
        ValueError, match=r"binary_cross_entropy: expected `label_smoothing` in \[0, 1\]"
    ):
        LF.binary_cross_entropy(x, y, label_smoothing=-0.1)
    views = torch.randn(2, 4, 3)
    with pytest.raises(
        ValueError, match=r"jsd_cross_entropy: expected `targets` of shape \(4,\) matching"
    ):
        LF.jsd_cross_entropy(views, torch.zeros(3, dtype=torch.long))
    with pytest.raises(
        ValueError,
        match=r"jsd_cross_entropy: expected `logits_per_view` of the same shape as `the first",
    ):
        LF.jsd_cross_entropy([views[0], views[1, :2]], torch.zeros(4, dtype=torch.long))
    with pytest.raises(
        ValueError, match=r"jsd_cross_entropy: expected `logits_per_view` to be \(B, C\) views"
    ):
        LF.jsd_cross_entropy(views[0], torch.zeros(4, dtype=torch.long))
    with pytest.raises(
        ValueError, match=r"jsd_cross_entropy: expected `logits_per_view` to hold at least one view"
    ):
        LF.jsd_cross_entropy([], torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"JSDCrossEntropyLoss: expected `alpha` in \[0, inf\)"):
        losskit.JSDCrossEntropyLoss(alpha=-1.0)
