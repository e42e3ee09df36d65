"""Generalized Dice, Dice + focal, Dice's Jaccard and smoothing options against MONAI; soft
Jaccard, MCC and the Lovász losses against their definitions in float64; identities,
gradcheck and every error message."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceFocalLoss as MonaiDiceFocal
from monai.losses import DiceLoss as MonaiDice
from monai.losses import FocalLoss as MonaiFocal
from monai.losses import GeneralizedDiceLoss as MonaiGeneralizedDice
from monai.losses import TverskyLoss as MonaiTversky
from torch.autograd import gradcheck

import losskit
import losskit.functional as LF
from tests import peers


def _case(n=2, c=3, shape=(4, 5), seed=0, soft=False):
    g = torch.Generator().manual_seed(seed)
    logits = (2 * torch.randn(n, c, *shape, generator=g, dtype=torch.float64)).requires_grad_()
    labels = torch.randint(0, c, (n, *shape), generator=g)
    onehot = F.one_hot(labels, c).movedim(-1, 1).double()
    if soft:
        onehot = torch.softmax(3 * torch.randn(n, c, *shape, generator=g, dtype=torch.float64), 1)
    return logits, labels, onehot


def _both(f, logits):
    x = logits.detach().clone().requires_grad_()
    out = f(x)
    (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), g


def _same(ours, theirs, logits, rtol=1e-6, atol=1e-7):
    v, g = _both(ours, logits)
    v_ref, g_ref = _both(theirs, logits)
    torch.testing.assert_close(
        v.reshape(-1).float(), v_ref.reshape(-1).float(), rtol=rtol, atol=atol
    )
    torch.testing.assert_close(g.float(), g_ref.float(), rtol=rtol, atol=atol)


@pytest.mark.parametrize(
    ("batch", "w_type", "bg"),
    list(itertools.product([False, True], ["square", "simple", "uniform"], [True, False])),
)
def test_generalized_dice_matches_monai(batch, w_type, bg):
    logits, _, onehot = _case()
    onehot[0, 1] = 0  # an absent class in sample 0 (largest-weight rule)
    onehot[0, 0] = 1 - onehot[0, 2]
    peer = MonaiGeneralizedDice(
        softmax=True, include_background=bg, w_type=w_type, batch=batch, reduction="none"
    )
    _same(
        lambda x: LF.generalized_dice(
            x, onehot, include_background=bg, weight_type=w_type, batch=batch, reduction="none"
        ),
        lambda x: peer(x, onehot),
        logits,
    )


@pytest.mark.parametrize("gamma", [2.0, 0.5])
def test_dice_focal_sigmoid_matches_monai(gamma):
    logits, _, onehot = _case()
    kw = {"gamma": gamma, "lambda_dice": 0.7, "lambda_focal": 1.3}
    peer = MonaiDiceFocal(sigmoid=True, smooth_nr=1e-5, smooth_dr=1e-5, **kw)
    ours = lambda x: LF.dice_focal(  # noqa: E731
        x, onehot, gamma=gamma, dice_weight=0.7, focal_weight=1.3, activation="sigmoid", smooth=1e-5
    )
    _same(ours, lambda x: peer(x, onehot), logits)


@pytest.mark.parametrize("gamma", [2.0, 0.5])
def test_dice_focal_softmax_is_monai_dice_plus_the_per_voxel_softmax_focal(gamma):
    logits, labels, onehot = _case()
    dice = MonaiDice(softmax=True, smooth_nr=1e-5, smooth_dr=1e-5)
    focal = MonaiFocal(use_softmax=True, gamma=gamma)  # mean over N·C·voxels: times C per voxel
    ours = lambda x: LF.dice_focal(x, labels, gamma=gamma, dice_weight=0.7, smooth=1e-5)  # noqa: E731
    _same(ours, lambda x: 0.7 * dice(x, onehot) + 3 * focal(x, onehot), logits)
    ce = F.cross_entropy(logits, labels)
    torch.testing.assert_close(LF.dice_focal(logits, labels, gamma=0.0, dice_weight=0.0), ce)


@pytest.mark.parametrize(
    ("jaccard", "soft", "squared"),
    list(itertools.product([False, True], [False, True], [False, True])),
)
def test_dice_options_match_monai(jaccard, soft, squared):
    logits, _, target = _case(soft=soft)
    peer = MonaiDice(
        softmax=True,
        jaccard=jaccard,
        squared_pred=squared,
        smooth_nr=0.3,
        smooth_dr=0.7,
        reduction="none",
    )
    _same(
        lambda x: LF.dice(
            x,
            target,
            jaccard=jaccard,
            squared=squared,
            smooth_nr=0.3,
            smooth_dr=0.7,
            reduction="none",
        ),
        lambda x: peer(x, target),
        logits,
    )
    module = losskit.DiceLoss(jaccard=jaccard, smooth_nr=0.3, smooth_dr=0.7, squared=squared)
    torch.testing.assert_close(
        module(logits, target),
        LF.dice(logits, target, jaccard=jaccard, smooth_nr=0.3, smooth_dr=0.7, squared=squared),
    )


@pytest.mark.parametrize(("jaccard", "soft"), list(itertools.product([False, True], repeat=2)))
def test_tversky_options_match_monai(jaccard, soft):
    logits, _, target = _case(soft=soft)
    scale = 2.0 if jaccard else 1.0  # Jaccard scale: MONAI's Tversky with doubled alpha, beta
    opts = {"smooth_nr": 0.3, "smooth_dr": 0.7, "reduction": "none"}
    peer = MonaiTversky(softmax=True, alpha=0.4 * scale, beta=0.9 * scale, **opts)
    ours = lambda x: LF.tversky(x, target, 0.4, 0.9, jaccard=jaccard, **opts)  # noqa: E731
    _same(ours, lambda x: peer(x, target), logits)
    assert gradcheck(ours, (logits,))
    module = losskit.TverskyLoss(alpha=0.4, beta=0.9, jaccard=jaccard, **opts)
    torch.testing.assert_close(module(logits, target), ours(logits))
    assert "jaccard=" in repr(module)


@pytest.mark.parametrize("jaccard", [False, True])
def test_tversky_and_dice_match_smp(jaccard):
    logits, labels, _ = _case()
    scale = 2.0 if jaccard else 1.0
    tversky = _smp("tversky", "TverskyLoss")("multiclass", smooth=0.3, alpha=0.6, beta=1.2)
    _same(
        lambda x: LF.tversky(
            x, labels, 0.6 / scale, 1.2 / scale, smooth=0.3, batch=True, jaccard=jaccard
        ),
        lambda x: tversky(x, labels),
        logits,
    )
    # smp's Dice is its Tversky at 1/2, 1/2: (I + s)/(I + FP/2 + FN/2 + s), our smooth = 2s
    dice = _smp("dice", "DiceLoss")("multiclass", smooth=0.3)
    _same(lambda x: LF.dice(x, labels, smooth=0.6, batch=True), lambda x: dice(x, labels), logits)


def test_tversky_smoothing_and_jaccard_relations():
    logits, labels, _ = _case()
    # Tversky with alpha = beta = 1 is the soft Jaccard loss; with 1/2 it is Dice.
    torch.testing.assert_close(
        LF.tversky(logits, labels, 1.0, 1.0, smooth_nr=0.0, smooth_dr=0.0),
        LF.jaccard(logits, labels),
    )
    torch.testing.assert_close(
        LF.tversky(logits, labels, 0.5, 0.5, smooth_nr=0.4, smooth_dr=0.8),
        LF.dice(logits, labels, smooth_nr=0.8, smooth_dr=1.6),
    )
    # J = D / (2 − D) without smoothing, and dice(jaccard=True) equals the standalone jaccard then
    d = 1 - LF.dice(logits, labels, smooth=0.0, reduction="none")
    torch.testing.assert_close(1 - LF.jaccard(logits, labels, reduction="none"), d / (2 - d))
    torch.testing.assert_close(
        LF.dice(logits, labels, smooth=0.0, jaccard=True), LF.jaccard(logits, labels)
    )
    # On the Jaccard scale, alpha = beta = 1/2 is dice(jaccard=True) (with twice the smoothing)
    # and alpha = beta = 1 the Tversky loss with alpha = beta = 2.
    torch.testing.assert_close(
        LF.tversky(logits, labels, 0.5, 0.5, smooth=0.4, jaccard=True),
        LF.dice(logits, labels, smooth=0.8, jaccard=True),
    )
    torch.testing.assert_close(
        LF.tversky(logits, labels, 1.0, 1.0, jaccard=True), LF.tversky(logits, labels, 2.0, 2.0)
    )


def test_jaccard_matches_the_formula_with_batch_aggregation():
    logits, labels, onehot = _case()
    p = torch.softmax(logits, 1)
    inter = (p * onehot).sum((0, 2, 3))
    union = (p + onehot).sum((0, 2, 3)) - inter
    ref = (1 - (inter + 0.5) / (union + 0.5)).mean()
    torch.testing.assert_close(LF.jaccard(logits, labels, smooth=0.5, batch=True), ref)
    assert gradcheck(lambda x: LF.jaccard(x, labels, smooth=0.1), (logits,))


def _mcc_reference(p, g, eps):
    tp = (p * g).sum() + eps
    tn = ((1 - p) * (1 - g)).sum() + eps
    fp = (p * (1 - g)).sum() + eps
    fn = ((1 - p) * g).sum() + eps
    return 1 - (tp * tn - fp * fn) / torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))


def test_mcc_matches_the_formula():
    logits, labels, _ = _case(c=1)
    binary = (labels.unsqueeze(1) * 0 + torch.randint(0, 2, labels.unsqueeze(1).shape)).double()
    ref = _mcc_reference(torch.sigmoid(logits), binary, 1e-5)
    torch.testing.assert_close(LF.mcc(logits, binary), ref)
    per_sample = LF.mcc(logits, binary, batch=False, reduction="none")
    for i in range(2):
        torch.testing.assert_close(
            per_sample[i, 0], _mcc_reference(torch.sigmoid(logits[i]), binary[i], 1e-5)
        )
    assert gradcheck(lambda x: LF.mcc(x, binary), (logits,))
    perfect = 30 * (2 * binary - 1)
    assert float(LF.mcc(perfect, binary)) == pytest.approx(0.0, abs=1e-5)
    assert float(LF.mcc(-perfect, binary)) == pytest.approx(2.0, abs=1e-5)


def _lovasz_reference(errors, fg):
    """The Lovász extension of Δ_J(M) = |M| / |fg ∪ M| by its definition over sorted prefixes."""
    order = sorted(range(len(errors)), key=lambda i: -float(errors[i].detach()))
    n_fg = float(fg.sum())
    total, previous, wrong_bg = errors.new_zeros(()), 0.0, 0
    for prefix, i in enumerate(order, start=1):
        wrong_bg += int(fg[i] == 0)
        delta = prefix / (n_fg + wrong_bg)
        total = total + errors[i] * (delta - previous)
        previous = delta
    return total


def test_lovasz_softmax_matches_the_definition():
    logits, labels, _ = _case(n=2, c=3, shape=(3, 3))
    p = torch.softmax(logits, 1)
    _same(
        lambda x: LF.lovasz_softmax(x, labels),
        lambda x: _lovasz_classes(torch.softmax(x, 1), labels),
        logits,
        rtol=1e-9,
        atol=1e-12,
    )
    per = torch.stack([_lovasz_classes(p[i : i + 1], labels[i : i + 1]) for i in range(2)]).mean()
    torch.testing.assert_close(LF.lovasz_softmax(logits, labels, per_image=True), per)


def _lovasz_classes(p, labels):
    pp = p.movedim(1, -1).reshape(-1, p.shape[1])
    ll = labels.reshape(-1)
    terms = []
    for c in range(p.shape[1]):
        fg = (ll == c).double()
        if fg.sum() > 0:
            terms.append(_lovasz_reference((fg - pp[:, c]).abs(), fg))
    return torch.stack(terms).mean()


def test_lovasz_hinge_matches_the_definition_and_identities():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 4, generator=g, dtype=torch.float64).requires_grad_()
    labels = torch.randint(0, 2, (2, 3, 4), generator=g)

    def reference(x):
        fg = labels.reshape(-1).double()
        return _lovasz_reference(F.relu(1 - x.reshape(-1) * (2 * fg - 1)), fg)

    _same(lambda x: LF.lovasz_hinge(x, labels), reference, logits, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(
        LF.lovasz_hinge(logits.unsqueeze(1), labels), LF.lovasz_hinge(logits, labels)
    )
    assert float(LF.lovasz_hinge(5 * (2 * labels.double() - 1), labels)) == 0.0
    perfect = 40 * F.one_hot(labels, 2).movedim(-1, 1).double()
    assert float(LF.lovasz_softmax(perfect, labels)) == pytest.approx(0.0, abs=1e-12)
    ignored = labels.masked_fill(labels == 0, -1)
    out = LF.lovasz_hinge(logits, ignored, ignore_index=-1, per_image=True)
    assert torch.isfinite(out)
    assert losskit.LovaszHingeLoss(per_image=True)(logits, labels) == LF.lovasz_hinge(
        logits, labels, per_image=True
    )


def test_ignore_index_drops_pixels():
    logits, labels, _ = _case()
    ignored = labels.clone()
    ignored[:, 0] = 255
    kept = LF.lovasz_softmax(logits, ignored, ignore_index=255)
    torch.testing.assert_close(
        kept, _lovasz_classes(torch.softmax(logits[:, :, 1:], 1), labels[:, 1:])
    )
    out = LF.generalized_dice(logits, ignored, ignore_index=255)
    assert torch.isfinite(out)


def test_lovasz_ignore_index_that_is_a_class_drops_those_pixels():
    """Ignored pixels are kept in the (fixed-shape) sort with error 0: the same as dropping
    them, even when the ignored label is a class index; an image with none left counts 0."""
    logits, labels, _ = _case(n=2, c=3, shape=(3, 3))
    keep = labels.reshape(-1) != 0
    p = torch.softmax(logits, 1).movedim(1, -1).reshape(-1, 3)[keep]
    ref = _lovasz_classes(p.T.unsqueeze(0), labels.reshape(-1)[keep].unsqueeze(0))
    torch.testing.assert_close(LF.lovasz_softmax(logits, labels, ignore_index=0), ref)
    x = logits[:, 0].detach().clone().requires_grad_()
    binary = (labels > 0).long()
    kept = binary.reshape(-1) == 0  # ignoring 1 leaves the background pixels

    def reference(x):
        return _lovasz_reference(F.relu(1 + x.reshape(-1)[kept]), x.new_zeros(int(kept.sum())))

    _same(lambda x: LF.lovasz_hinge(x, binary, ignore_index=1), reference, x, atol=1e-12)
    none_left = torch.full_like(labels, 7)
    out = LF.lovasz_softmax(logits, none_left, ignore_index=7, per_image=True)
    out.backward()
    assert float(out.detach()) == 0.0
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_modules_and_half_precision():
    logits, labels, _ = _case()
    for name, kw in [
        ("generalized_dice", {"weight_type": "simple"}),
        ("dice_focal", {"gamma": 1.0}),
        ("jaccard", {"smooth": 0.5}),
        ("mcc", {"activation": "softmax"}),
        ("lovasz_softmax", {"per_image": True}),
    ]:
        module = losskit.build_loss(name, **kw)
        torch.testing.assert_close(module(logits, labels), getattr(LF, name)(logits, labels, **kw))
        assert losskit.get_spec(name).family == "segmentation"
        half = module(logits.detach().half(), labels)
        assert half.dtype == torch.float16 and torch.isfinite(half)


def test_errors():
    logits, labels, _ = _case()
    with pytest.raises(
        ValueError,
        match=r"generalized_dice: expected `weight_type` one of .*\(did you mean 'square'\?\)",
    ):
        LF.generalized_dice(logits, labels, weight_type="squared")
    with pytest.raises(ValueError, match=r"dice: expected `smooth_nr` in \[0, inf\), got -1.0"):
        LF.dice(logits, labels, smooth_nr=-1.0)
    with pytest.raises(ValueError, match=r"DiceLoss: expected `smooth_dr` in \[0, inf\)"):
        losskit.DiceLoss(smooth_dr=-1.0)
    with pytest.raises(TypeError, match=r"tversky: expected `jaccard` to be a bool, got int"):
        LF.tversky(logits, labels, jaccard=1)
    with pytest.raises(TypeError, match=r"TverskyLoss: expected `jaccard` to be a bool"):
        losskit.TverskyLoss(jaccard="yes")
    with pytest.raises(ValueError, match=r"tversky: expected `smooth_dr` in \[0, inf\)"):
        LF.tversky(logits, labels, smooth_dr=-0.1)
    with pytest.raises(ValueError, match=r"dice_focal: expected `gamma` in \[0, inf\)"):
        LF.dice_focal(logits, labels, gamma=-1.0)
    with pytest.raises(ValueError, match=r"mcc: expected `eps` in \(0, inf\)"):
        LF.mcc(logits, labels, eps=0.0, activation="softmax")
    with pytest.raises(ValueError, match=r"lovasz_softmax: expected `target` of shape \(2, 4, 5\)"):
        LF.lovasz_softmax(logits, labels[:, :2])
    with pytest.raises(
        ValueError, match=r"lovasz_softmax: expected `logits` of shape \(N, C >= 2, \*spatial\)"
    ):
        LF.lovasz_softmax(logits[:, :1], labels)
    with pytest.raises(ValueError, match=r"lovasz_hinge: expected `target` in \[0, 1\]"):
        LF.lovasz_hinge(logits[:, 0], labels)
    with pytest.raises(TypeError, match=r"LovaszSoftmaxLoss: expected `per_image` to be a bool"):
        losskit.LovaszSoftmaxLoss(per_image=1)


def _smp(module: str, cls: str):
    return getattr(
        peers.load("segmentation_models_pytorch", f"segmentation_models_pytorch.losses.{module}"),
        cls,
    )


@pytest.mark.parametrize("per_image", [False, True])
def test_lovasz_losses_match_smp(per_image):
    lovasz = _smp("lovasz", "LovaszLoss")
    logits, labels, _ = _case()
    logits = logits.detach().float()  # smp's Lovász runs in float32 only (its weights are float)
    ignored = labels.masked_fill(
        torch.rand(labels.shape, generator=torch.Generator().manual_seed(5)) < 0.2, 255
    )
    peer = lovasz("multiclass", per_image=per_image, ignore_index=255)
    _same(
        lambda x: LF.lovasz_softmax(x, ignored, per_image=per_image, ignore_index=255),
        lambda x: peer(x, ignored),
        logits,
        rtol=1e-5,
        atol=1e-6,
    )
    binary = (labels > 0).long()
    peer = lovasz("binary", per_image=per_image)
    _same(
        lambda x: LF.lovasz_hinge(x[:, :1], binary, per_image=per_image),
        lambda x: peer(x[:, :1].contiguous(), binary.unsqueeze(1)),
        logits,
        rtol=1e-5,
        atol=1e-6,
    )


def test_jaccard_and_mcc_match_smp():
    logits, labels, _ = _case()
    jac = _smp("jaccard", "JaccardLoss")("multiclass", smooth=0.3)
    _same(lambda x: LF.jaccard(x, labels, smooth=0.3, batch=True), lambda x: jac(x, labels), logits)
    binary = (labels > 0).double().unsqueeze(1)
    mcc = _smp("mcc", "MCCLoss")()
    _same(
        lambda x: LF.mcc(x[:, :1], binary), lambda x: mcc(torch.sigmoid(x[:, :1]), binary), logits
    )
