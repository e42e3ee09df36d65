"""Segmentation losses against MONAI (value and gradient), identities, edge cases and errors."""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn.functional as F

import losskit
import losskit.functional as LF
import losskit.losses.segmentation as seg_module

monai_losses = pytest.importorskip("monai.losses")


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------


def _leaf(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clone().requires_grad_()


def _inputs(kind: str, spatial: tuple[int, ...], n: int = 2, c: int = 3, seed: int = 0):
    """Logits and target for one of the three set-ups (float64)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "multiclass":  # softmax, class indices
        logits = torch.randn(n, c, *spatial, generator=g, dtype=torch.float64)
        target = torch.randint(0, c, (n, *spatial), generator=g)
    elif kind == "binary":  # sigmoid, one channel, float mask
        logits = torch.randn(n, 1, *spatial, generator=g, dtype=torch.float64)
        target = torch.randint(0, 2, (n, 1, *spatial), generator=g).double()
    else:  # multilabel: sigmoid, multi-hot
        logits = torch.randn(n, c, *spatial, generator=g, dtype=torch.float64)
        target = torch.randint(0, 2, (n, c, *spatial), generator=g).double()
    return logits, target


ACTIVATION = {"multiclass": "softmax", "binary": "sigmoid", "multilabel": "sigmoid"}


def _monai_target(target: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """MONAI wants (N, 1, ...) labels with ``to_onehot_y`` or a one-hot map as it is."""
    if target.dim() == logits.dim() - 1:
        return target.unsqueeze(1), True
    return target, False


def _monai_dice(
    logits,
    target,
    *,
    activation,
    include_background=True,
    smooth=1.0,
    squared=False,
    batch=False,
    weight=None,
    ignore_index=None,
    reduction="mean",
):
    t, onehot = _monai_target(target, logits)
    if weight is not None and not include_background:
        weight = weight[1:]  # MONAI's weight excludes the dropped background channel
    loss = monai_losses.DiceLoss(
        include_background=include_background,
        to_onehot_y=onehot,
        sigmoid=activation == "sigmoid",
        softmax=activation == "softmax",
        squared_pred=squared,
        smooth_nr=smooth,
        smooth_dr=smooth,
        batch=batch,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
    )
    out = loss(logits, t)
    return (
        out.reshape(out.shape[:2] if not batch else out.shape[:1]) if reduction == "none" else out
    )


def _monai_tversky(
    logits,
    target,
    *,
    alpha,
    beta,
    activation,
    include_background=True,
    smooth=1.0,
    batch=False,
    ignore_index=None,
    reduction="mean",
):
    t, onehot = _monai_target(target, logits)
    loss = monai_losses.TverskyLoss(
        include_background=include_background,
        to_onehot_y=onehot,
        sigmoid=activation == "sigmoid",
        softmax=activation == "softmax",
        alpha=alpha,
        beta=beta,
        smooth_nr=smooth,
        smooth_dr=smooth,
        batch=batch,
        ignore_index=ignore_index,
        reduction=reduction,
    )
    return loss(logits, t)


def _assert_same_value_and_grad(ours_fn, ref_fn, logits, *, atol=1e-10):
    a, b = _leaf(logits), _leaf(logits)
    ours, ref = ours_fn(a), ref_fn(b)
    torch.testing.assert_close(ours, ref.to(ours.dtype), atol=atol, rtol=1e-8)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=atol, rtol=1e-8)


# ----------------------------------------------------------------------------------------------
# Against MONAI
# ----------------------------------------------------------------------------------------------

DICE_CASES = [
    # (kind, spatial, options)
    ("multiclass", (4, 5), {}),
    ("multiclass", (3, 4, 5), {}),  # 3-D volume
    ("multiclass", (4, 5), {"include_background": False}),
    ("multiclass", (4, 5), {"squared": True, "smooth": 1e-5}),
    ("multiclass", (3, 3, 4), {"batch": True, "smooth": 0.5}),
    ("multiclass", (4, 5), {"reduction": "sum"}),
    ("binary", (4, 5), {}),
    ("binary", (2, 3, 4), {"squared": True}),
    ("multilabel", (4, 5), {"include_background": False, "batch": True}),
    ("multilabel", (3, 4, 5), {"smooth": 1e-5}),
]


@pytest.mark.parametrize(("kind", "spatial", "options"), DICE_CASES)
def test_dice_matches_monai(kind, spatial, options):
    logits, target = _inputs(kind, spatial)
    activation = ACTIVATION[kind]
    # MONAI squares a float32 norm of its float32 one-hot target: agreement to float32 only.
    atol = 1e-6 if options.get("squared") and kind == "multiclass" else 1e-10
    _assert_same_value_and_grad(
        lambda x: LF.dice(x, target, activation=activation, **options),
        lambda x: _monai_dice(x, target, activation=activation, **options),
        logits,
        atol=atol,
    )


@pytest.mark.parametrize("batch", [False, True])
def test_dice_reduction_none_matches_monai(batch):
    logits, target = _inputs("multiclass", (4, 5), n=3, c=4)
    ours = LF.dice(logits, target, batch=batch, reduction="none")
    ref = _monai_dice(logits, target, activation="softmax", batch=batch, reduction="none")
    assert ours.shape == ((4,) if batch else (3, 4))
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("include_background", [True, False])
def test_dice_class_weight_matches_monai(include_background):
    logits, target = _inputs("multiclass", (4, 5), c=3)
    weight = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    kw = {"weight": weight, "include_background": include_background}
    # "none" and "sum": MONAI multiplies each entry by its class weight, as losskit does.
    for reduction in ("none", "sum"):
        _assert_same_value_and_grad(
            lambda x, r=reduction: LF.dice(x, target, reduction=r, **kw),
            lambda x, r=reduction: _monai_dice(x, target, activation="softmax", reduction=r, **kw),
            logits,
        )
    # "mean": losskit takes the weighted mean Σ w·L / Σ w (MONAI divides by the entry count).
    w_used = weight if include_background else weight[1:]
    unweighted = LF.dice(logits, target, include_background=include_background, reduction="none")
    expected = (unweighted * w_used).sum() / (w_used.sum() * unweighted.shape[0])
    torch.testing.assert_close(LF.dice(logits, target, **kw), expected)


def test_dice_weight_accepts_a_sequence():
    logits, target = _inputs("multiclass", (4, 5))
    torch.testing.assert_close(
        LF.dice(logits, target, weight=[1.0, 2.0, 3.0]),
        LF.dice(logits, target, weight=torch.tensor([1.0, 2.0, 3.0])),
    )


@pytest.mark.parametrize("ignore_index", [255, -1])
@pytest.mark.parametrize("batch", [False, True])
def test_dice_ignore_index_matches_monai(ignore_index, batch):
    logits, target = _inputs("multiclass", (5, 6))
    target = target.clone()
    target[:, :2, :3] = ignore_index
    for reduction in ("none", "mean"):  # every sample keeps valid voxels: the means agree too
        _assert_same_value_and_grad(
            lambda x, r=reduction: LF.dice(
                x, target, ignore_index=ignore_index, batch=batch, reduction=r
            ),
            lambda x, r=reduction: _monai_dice(
                x, target, activation="softmax", ignore_index=ignore_index, batch=batch, reduction=r
            ),
            logits,
        )


def test_dice_ignored_voxels_do_not_matter():
    logits, target = _inputs("multiclass", (5, 6))
    target = target.clone()
    target[:, 0, :] = 7
    moved = logits.clone()
    moved[:, :, 0, :] = torch.randn_like(moved[:, :, 0, :]) * 10  # change ignored voxels only
    a = _leaf(logits)
    loss = LF.dice(a, target, ignore_index=7)
    torch.testing.assert_close(loss, LF.dice(moved, target, ignore_index=7))
    loss.backward()
    assert torch.all(a.grad[:, :, 0, :] == 0)


TVERSKY_CASES = [
    ("multiclass", (4, 5), {"alpha": 0.3, "beta": 0.7}),
    ("multiclass", (3, 4, 5), {"alpha": 0.7, "beta": 0.3, "include_background": False}),
    ("multiclass", (4, 5), {"alpha": 0.5, "beta": 0.5, "batch": True, "smooth": 1e-5}),
    ("binary", (4, 5), {"alpha": 0.2, "beta": 0.8, "reduction": "sum"}),
    ("multilabel", (2, 3, 4), {"alpha": 1.0, "beta": 1.0, "smooth": 0.3}),
    ("multiclass", (5, 6), {"alpha": 0.3, "beta": 0.7, "ignore_index": 255, "reduction": "none"}),
]


@pytest.mark.parametrize(("kind", "spatial", "options"), TVERSKY_CASES)
def test_tversky_matches_monai(kind, spatial, options):
    logits, target = _inputs(kind, spatial)
    if "ignore_index" in options:
        target = target.clone()
        target[0, :2] = options["ignore_index"]
    activation = ACTIVATION[kind]
    _assert_same_value_and_grad(
        lambda x: LF.tversky(x, target, activation=activation, **options),
        lambda x: _monai_tversky(x, target, activation=activation, **options),
        logits,
    )


# ----------------------------------------------------------------------------------------------
# Identities
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("smooth", [0.0, 0.5])
def test_tversky_half_half_is_dice_with_double_smooth(smooth):
    logits, target = _inputs("multiclass", (4, 5))
    torch.testing.assert_close(
        LF.tversky(logits, target, 0.5, 0.5, smooth=smooth, reduction="none"),
        LF.dice(logits, target, smooth=2 * smooth, reduction="none"),
    )


def test_tversky_alpha_beta_weigh_false_positives_and_negatives():
    # Prediction p = sigmoid(0) = 0.5 on 4 voxels, target covers 2: FP = FN = 1, TP = 1.
    logits = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    target = torch.tensor([[[1, 1], [0, 0]]])
    for alpha, beta in [(0.3, 0.7), (1.0, 0.0), (0.0, 1.0), (2.0, 3.0)]:
        expected = 1 - 1 / (1 + alpha * 1 + beta * 1)
        got = LF.tversky(logits, target, alpha, beta, activation="sigmoid", smooth=0.0)
        assert float(got) == pytest.approx(expected)
    # With more false positives than false negatives, raising α raises the loss.
    logits = torch.tensor([[[[3.0, 3.0], [3.0, -3.0]]]], dtype=torch.float64)
    target = torch.tensor([[[1, 0], [0, 0]]])
    low = LF.tversky(logits, target, 0.2, 0.8, activation="sigmoid")
    high = LF.tversky(logits, target, 0.8, 0.2, activation="sigmoid")
    assert high > low


def test_focal_tversky_is_tversky_to_the_gamma():
    logits, target = _inputs("multiclass", (4, 5))
    base = LF.tversky(logits, target, 0.4, 0.6, reduction="none")
    for gamma in (0.75, 1.0, 2.0):
        got = LF.focal_tversky(logits, target, 0.4, 0.6, gamma, reduction="none")
        torch.testing.assert_close(got, base**gamma)
    torch.testing.assert_close(
        LF.focal_tversky(logits, target, 0.4, 0.6, 1.0), LF.tversky(logits, target, 0.4, 0.6)
    )


def test_focal_tversky_perfect_entry_has_zero_loss_and_finite_gradient():
    x = torch.full((1, 1, 2, 2), -1e4, dtype=torch.float64, requires_grad=True)  # p == 0 exactly
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    loss = LF.focal_tversky(x, target, gamma=0.5, activation="sigmoid", smooth=0.0)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("loss_fn", [LF.dice, LF.tversky, LF.focal_tversky, LF.ce_dice])
def test_one_hot_and_index_targets_agree(loss_fn):
    logits, target = _inputs("multiclass", (3, 4, 5))
    one_hot = F.one_hot(target, 3).movedim(-1, 1)
    torch.testing.assert_close(loss_fn(logits, target), loss_fn(logits, one_hot))
    torch.testing.assert_close(loss_fn(logits, target), loss_fn(logits, one_hot.bool()))


def test_binary_index_target_is_the_foreground_channel():
    logits, mask = _inputs("binary", (4, 5))
    for loss_fn in (LF.dice, LF.tversky, LF.ce_dice):
        torch.testing.assert_close(
            loss_fn(logits, mask.squeeze(1).long(), activation="sigmoid"),
            loss_fn(logits, mask, activation="sigmoid"),
        )


def test_include_background_has_no_effect_on_a_single_channel():
    logits, mask = _inputs("binary", (4, 5))
    torch.testing.assert_close(
        LF.dice(logits, mask, activation="sigmoid", include_background=False),
        LF.dice(logits, mask, activation="sigmoid"),
    )


# ----------------------------------------------------------------------------------------------
# CE + Dice
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spatial", [(4, 5), (2, 3, 4)])
def test_ce_dice_softmax_is_cross_entropy_plus_dice(spatial):
    logits, target = _inputs("multiclass", spatial)
    target = target.clone()
    target[0, 0] = -100
    weight = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    kw = {"weight": weight, "ignore_index": -100, "include_background": False}
    _assert_same_value_and_grad(
        lambda x: LF.ce_dice(x, target, ce_weight=0.3, dice_weight=0.7, **kw),
        lambda x: (
            0.3 * F.cross_entropy(x, target, weight=weight, ignore_index=-100)
            + 0.7 * LF.dice(x, target, **kw)
        ),
        logits,
    )


def test_ce_dice_sigmoid_is_bce_plus_dice():
    logits, mask = _inputs("multilabel", (4, 5))
    _assert_same_value_and_grad(
        lambda x: LF.ce_dice(x, mask, activation="sigmoid", squared=True),
        lambda x: (
            F.binary_cross_entropy_with_logits(x, mask)
            + _monai_dice(x, mask, activation="sigmoid", squared=True)
        ),
        logits,
    )


def test_ce_dice_sigmoid_class_weight_and_ignore_index():
    logits, target = _inputs("multiclass", (4, 5))
    target = target.clone()
    target[1, 1:3] = 9
    weight = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    got = LF.ce_dice(
        logits, target, activation="sigmoid", weight=weight, ignore_index=9, dice_weight=0.0
    )
    valid = (target != 9).unsqueeze(1).double().expand_as(logits)
    g = F.one_hot(target.clamp_max(2), 3).movedim(-1, 1).double()
    bce = F.binary_cross_entropy_with_logits(logits, g, reduction="none")
    w = weight.view(1, 3, 1, 1)
    torch.testing.assert_close(got, (bce * valid * w).sum() / (valid * w).sum())


@pytest.mark.parametrize("as_map", [False, True], ids=["indices", "one_hot_map"])
def test_ce_dice_cross_entropy_term_is_cross_entropy_on_the_same_target(as_map):
    """Class weights: indices give the weighted mean, a one-hot map the per-voxel mean of
    probability targets (torch, losskit's cross_entropy and MONAI's DiceCELoss all agree)."""
    logits, target = _inputs("multiclass", (4, 5))
    weight = torch.tensor([0.3, 1.0, 2.5], dtype=torch.float64)
    given = F.one_hot(target, 3).movedim(-1, 1).double() if as_map else target
    expected_values = [
        F.cross_entropy(logits, given, weight=weight),
        LF.cross_entropy(logits, given, weight=weight),
        monai_losses.DiceCELoss(
            softmax=True, to_onehot_y=not as_map, weight=weight, lambda_dice=0.0
        )(logits, given if as_map else target.unsqueeze(1)),
    ]
    _assert_same_value_and_grad(
        lambda x: LF.ce_dice(x, given, weight=weight, dice_weight=0.0),
        lambda x: F.cross_entropy(x, given, weight=weight),
        logits,
    )
    got = LF.ce_dice(logits, given, weight=weight, dice_weight=0.0)
    for expected in expected_values:
        torch.testing.assert_close(got, expected.to(got.dtype), rtol=1e-10, atol=0.0)


def test_ce_dice_one_hot_map_and_indices_agree_without_weights():
    logits, target = _inputs("multiclass", (4, 5))
    one_hot = F.one_hot(target, 3).movedim(-1, 1).double()
    torch.testing.assert_close(
        LF.ce_dice(logits, one_hot, dice_weight=0.0), LF.ce_dice(logits, target, dice_weight=0.0)
    )


def test_ce_dice_weights_of_the_terms():
    logits, target = _inputs("multiclass", (4, 5))
    ce = LF.ce_dice(logits, target, dice_weight=0.0)
    dice_only = LF.ce_dice(logits, target, ce_weight=0.0)
    torch.testing.assert_close(dice_only, LF.dice(logits, target))
    torch.testing.assert_close(
        LF.ce_dice(logits, target, ce_weight=2.0, dice_weight=3.0), 2 * ce + 3 * dice_only
    )


# ----------------------------------------------------------------------------------------------
# Empty masks and ignored samples
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("smooth", [0.0, 1e-5, 1.0])
@pytest.mark.parametrize("loss_fn", [LF.dice, LF.tversky, LF.focal_tversky])
def test_empty_prediction_on_empty_target_is_zero(loss_fn, smooth):
    x = torch.full((2, 1, 3, 4, 5), -1e4, dtype=torch.float64, requires_grad=True)  # p == 0
    target = torch.zeros(2, 3, 4, 5, dtype=torch.long)
    loss = loss_fn(x, target, activation="sigmoid", smooth=smooth)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(x.grad).all()


def test_empty_target_with_predicted_mass_and_no_smoothing_is_one():
    x = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    assert float(LF.dice(x, target, activation="sigmoid", smooth=0.0)) == 1.0


def test_absent_class_predicted_absent_scores_perfectly():
    # Every voxel is class 0 and predicted so: class 1's entry is empty on empty.
    x = torch.zeros(1, 2, 3, 3, dtype=torch.float64)
    x[:, 0] = 1e4
    target = torch.zeros(1, 3, 3, dtype=torch.long)
    none = LF.dice(x, target, smooth=0.0, reduction="none")
    assert torch.equal(none, torch.zeros(1, 2, dtype=torch.float64))


@pytest.mark.parametrize("loss_fn", [LF.dice, LF.tversky, LF.focal_tversky, LF.ce_dice])
def test_everything_ignored_gives_zero_connected_to_the_graph(loss_fn):
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    target = torch.full((2, 4, 4), -100)
    loss = loss_fn(x, target, ignore_index=-100)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_fully_ignored_sample_is_left_out_of_the_mean():
    logits, target = _inputs("multiclass", (4, 5))
    target = target.clone()
    target[1] = 255
    none = LF.dice(logits, target, ignore_index=255, reduction="none")
    assert torch.equal(none[1], torch.zeros(3, dtype=torch.float64))
    mean = LF.dice(logits, target, ignore_index=255)
    torch.testing.assert_close(mean, LF.dice(logits[:1], target[:1]))


# ----------------------------------------------------------------------------------------------
# Reductions, gradcheck, half precision
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss_fn", [LF.dice, LF.tversky, LF.focal_tversky])
def test_reductions_are_consistent(loss_fn):
    logits, target = _inputs("multiclass", (4, 5), n=3)
    none = loss_fn(logits, target, reduction="none")
    assert none.shape == (3, 3)
    torch.testing.assert_close(loss_fn(logits, target, reduction="sum"), none.sum())
    torch.testing.assert_close(loss_fn(logits, target, reduction="mean"), none.mean())
    batch_none = loss_fn(logits, target, batch=True, reduction="none")
    assert batch_none.shape == (3,)
    torch.testing.assert_close(loss_fn(logits, target, batch=True), batch_none.mean())


GRADCHECK_CASES = [
    (LF.dice, "multiclass", {"squared": True, "weight": torch.tensor([1.0, 2.0, 0.5])}),
    (LF.dice, "binary", {"activation": "sigmoid", "batch": True}),
    (LF.dice, "multiclass", {"ignore_index": 4, "include_background": False, "smooth": 0.0}),
    (LF.tversky, "multiclass", {"alpha": 0.3, "beta": 0.7, "ignore_index": 4}),
    (LF.focal_tversky, "multilabel", {"activation": "sigmoid", "gamma": 0.75}),
    (LF.ce_dice, "multiclass", {"ignore_index": 4, "weight": torch.tensor([1.0, 2.0, 0.5])}),
    (LF.ce_dice, "multilabel", {"activation": "sigmoid", "batch": True}),
]


@pytest.mark.parametrize(("loss_fn", "kind", "options"), GRADCHECK_CASES)
def test_gradcheck(loss_fn, kind, options):
    logits, target = _inputs(kind, (2, 3))
    if "ignore_index" in options:
        target = target.clone()
        target[0, 0] = options["ignore_index"]
    x = _leaf(logits)
    assert torch.autograd.gradcheck(lambda t: loss_fn(t, target, **options), (x,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("loss_fn", [LF.dice, LF.tversky, LF.focal_tversky, LF.ce_dice])
def test_half_precision_extreme_logits_are_finite(loss_fn, dtype):
    g = torch.Generator().manual_seed(1)
    signs = torch.randint(0, 2, (2, 3, 8, 8), generator=g) * 2 - 1
    x = (signs * 1e4).to(dtype).requires_grad_()
    target = torch.randint(0, 3, (2, 8, 8), generator=g)
    loss = loss_fn(x, target)
    loss.backward()
    assert loss.dtype == dtype
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    ref = loss_fn(x.detach().double(), target)
    torch.testing.assert_close(loss.double(), ref, atol=1e-2, rtol=1e-2)


def test_half_precision_large_volume_sums_do_not_overflow():
    # 70 000 voxels: a float16 sum of the probabilities would overflow (max 65504).
    x = torch.full((1, 2, 70_000), 3.0, dtype=torch.float16, requires_grad=True)
    target = torch.zeros(1, 70_000, dtype=torch.long)
    loss = LF.dice(x, target, smooth=0.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    torch.testing.assert_close(
        loss.double(), LF.dice(x.detach().double(), target, smooth=0.0), atol=1e-3, rtol=1e-3
    )


# ----------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------


def test_modules_call_their_functions():
    logits, target = _inputs("multiclass", (4, 5))
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    cases = [
        (
            losskit.DiceLoss(squared=True, weight=w, reduction="sum"),
            LF.dice(logits, target, squared=True, weight=w, reduction="sum"),
        ),
        (
            losskit.TverskyLoss(alpha=0.6, beta=0.4, batch=True),
            LF.tversky(logits, target, 0.6, 0.4, batch=True),
        ),
        (
            losskit.FocalTverskyLoss(gamma=2.0, include_background=False),
            LF.focal_tversky(logits, target, gamma=2.0, include_background=False),
        ),
        (
            losskit.CEDiceLoss(ce_weight=0.5, smooth=0.1),
            LF.ce_dice(logits, target, ce_weight=0.5, smooth=0.1),
        ),
    ]
    for module, expected in cases:
        torch.testing.assert_close(module(logits, target), expected)


def test_module_weight_is_a_buffer_that_follows_the_module():
    module = losskit.DiceLoss(weight=[1.0, 2.0])
    assert "weight" in module.state_dict()
    assert module.double().weight.dtype == torch.float64
    assert losskit.DiceLoss().weight is None


def test_build_loss_and_repr():
    module = losskit.build_loss("tversky", alpha=0.2, beta=0.8)
    assert isinstance(module, losskit.TverskyLoss)
    assert "alpha=0.2, beta=0.8" in repr(module)
    assert "weight=[1.0, 2.0]" in repr(losskit.DiceLoss(weight=[1.0, 2.0]))
    assert set(losskit.list_losses("segmentation")) == {
        "dice",
        "tversky",
        "focal_tversky",
        "ce_dice",
        "generalized_dice",
        "dice_focal",
        "jaccard",
        "mcc",
        "lovasz_softmax",
        "lovasz_hinge",
    }


def test_docstring_examples():
    assert doctest.testmod(seg_module).failed == 0


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


def _x(c=3):
    return torch.randn(2, c, 4, 4)


def _t():
    return torch.randint(0, 3, (2, 4, 4))


ERRORS = [
    (
        TypeError,
        r"dice: expected `logits` to be a floating-point tensor",
        lambda: LF.dice(_t().unsqueeze(1), _t()),
    ),
    (
        ValueError,
        r"dice: expected `logits` of shape \(N, C, \*spatial\) with at least one",
        lambda: LF.dice(torch.randn(2, 3), torch.randint(0, 3, (2,))),
    ),
    (
        ValueError,
        r"expected `logits` with C >= 2 channels for activation='softmax'",
        lambda: LF.dice(_x(1), torch.zeros(2, 4, 4, dtype=torch.long)),
    ),
    (
        ValueError,
        r"dice: expected `target` of shape \(2, 4, 4\) \(class indices\) or "
        r"\(2, 3, 4, 4\) \(one-hot\) matching `logits`, got \(2, 4, 5\)",
        lambda: LF.dice(_x(), torch.zeros(2, 4, 5, dtype=torch.long)),
    ),
    (
        ValueError,
        r"tversky: expected `target` of the same shape as `logits` \(2, 3, 4, 4\), "
        r"got \(2, 2, 4, 4\)",
        lambda: LF.tversky(_x(), torch.zeros(2, 2, 4, 4)),
    ),
    (
        TypeError,
        r"dice: expected `target` to hold integer class indices, got dtype torch.float32",
        lambda: LF.dice(_x(), torch.zeros(2, 4, 4)),
    ),
    (
        ValueError,
        r"dice: expected `target` in \[0, 2\] \(num_classes=3\), got a label 3",
        lambda: LF.dice(_x(), torch.full((2, 4, 4), 3)),
    ),
    (
        ValueError,
        r"in \[0, 1\] or 255 \(num_classes=2\), got a label 2",
        lambda: LF.dice(_x(1), torch.full((2, 4, 4), 2), activation="sigmoid", ignore_index=255),
    ),
    (
        ValueError,
        r"ce_dice: expected `target` with values in \[0, 1\], got a value 2",
        lambda: LF.ce_dice(_x(), torch.full((2, 3, 4, 4), 2.0)),
    ),
    (
        ValueError,
        r"dice: expected `target` as class indices \(N, \*spatial\) when "
        r"`ignore_index` is set, got a one-hot target",
        lambda: LF.dice(_x(), torch.zeros(2, 3, 4, 4), ignore_index=0),
    ),
    (
        ValueError,
        r"dice: expected `activation` one of 'sigmoid', 'softmax', got 'softmx' "
        r"\(did you mean 'softmax'\?\)",
        lambda: LF.dice(_x(), _t(), activation="softmx"),
    ),
    (
        ValueError,
        r"dice: expected `smooth` in \[0, inf\), got -1.0",
        lambda: LF.dice(_x(), _t(), smooth=-1.0),
    ),
    (
        ValueError,
        r"dice: expected `weight` of shape \(3,\) \(one weight per channel of logits, "
        r"C=3\), got \(2,\)",
        lambda: LF.dice(_x(), _t(), weight=torch.ones(2)),
    ),
    (
        ValueError,
        r"dice: expected `weight` of shape \(C,\) \(one weight per class\), got \(1, 3\)",
        lambda: LF.dice(_x(), _t(), weight=torch.ones(1, 3)),
    ),
    (
        ValueError,
        r"dice: expected `weight` with values in \[0, inf\), got a value -1",
        lambda: LF.dice(_x(), _t(), weight=[1.0, -1.0, 1.0]),
    ),
    (
        TypeError,
        r"dice: expected `weight` to be a tensor or sequence of class weights, got str",
        lambda: LF.dice(_x(), _t(), weight="balanced"),
    ),
    (
        TypeError,
        r"dice: expected `weight` to hold real class weights, got dtype torch.bool",
        lambda: LF.dice(_x(), _t(), weight=torch.ones(3, dtype=torch.bool)),
    ),
    (
        TypeError,
        r"dice: expected `ignore_index` to be an integer, got float",
        lambda: LF.dice(_x(), _t(), ignore_index=1.0),
    ),
    (
        ValueError,
        r"dice: expected `reduction` one of 'mean', 'sum', 'none', got 'mena'",
        lambda: LF.dice(_x(), _t(), reduction="mena"),
    ),
    (
        ValueError,
        r"tversky: expected `alpha \+ beta` > 0, got 0 \(alpha=0.0, beta=0.0\)",
        lambda: LF.tversky(_x(), _t(), 0.0, 0.0),
    ),
    (
        ValueError,
        r"tversky: expected `alpha` in \[0, inf\), got -0.5",
        lambda: LF.tversky(_x(), _t(), -0.5, 1.5),
    ),
    (
        ValueError,
        r"tversky: expected `beta` in \[0, inf\), got -1",
        lambda: LF.tversky(_x(), _t(), 0.5, -1),
    ),
    (
        ValueError,
        r"focal_tversky: expected `gamma` in \(0, inf\), got 0.0",
        lambda: LF.focal_tversky(_x(), _t(), gamma=0.0),
    ),
    (
        ValueError,
        r"ce_dice: expected `ce_weight` in \[0, inf\), got -1.0",
        lambda: LF.ce_dice(_x(), _t(), ce_weight=-1.0),
    ),
    (
        ValueError,
        r"ce_dice: expected `dice_weight` in \[0, inf\), got -2.0",
        lambda: LF.ce_dice(_x(), _t(), dice_weight=-2.0),
    ),
    (
        ValueError,
        r"DiceLoss: expected `smooth` in \[0, inf\), got -1",
        lambda: losskit.DiceLoss(smooth=-1),
    ),
    (ValueError, r"DiceLoss: expected `reduction` one of", lambda: losskit.DiceLoss(reduction="x")),
    (
        ValueError,
        r"DiceLoss: expected `activation` one of 'sigmoid', 'softmax', got 'Sigmoid' "
        r"\(did you mean 'sigmoid'\?\)",
        lambda: losskit.DiceLoss(activation="Sigmoid"),
    ),
    (
        ValueError,
        r"TverskyLoss: expected `alpha \+ beta` > 0",
        lambda: losskit.TverskyLoss(alpha=0, beta=0),
    ),
    (
        ValueError,
        r"FocalTverskyLoss: expected `gamma` in \(0, inf\)",
        lambda: losskit.FocalTverskyLoss(gamma=-1.0),
    ),
    (
        ValueError,
        r"CEDiceLoss: expected `ce_weight` in \[0, inf\)",
        lambda: losskit.CEDiceLoss(ce_weight=-1.0),
    ),
    (
        ValueError,
        r"CEDiceLoss: expected `weight` with values in \[0, inf\)",
        lambda: losskit.CEDiceLoss(weight=[-1.0, 1.0]),
    ),
]


@pytest.mark.parametrize(("kind", "match", "call"), ERRORS)
def test_errors(kind, match, call):
    with pytest.raises(kind, match=match):
        call()


def test_probabilities_passed_as_logits_warn():
    probs = torch.softmax(torch.randn(2, 3, 4, 4), dim=1)
    with pytest.warns(UserWarning, match=r"dice: expected `logits` to be raw scores"):
        LF.dice(probs, _t())
