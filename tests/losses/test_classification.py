"""Classification losses: values and gradients against PyTorch core, torchvision's documented
sigmoid focal loss, scikit-learn's balanced class weights and hand-built target distributions;
identities, ignored targets, reductions, half precision, the probabilities warning, and every
error message."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight
from torch.autograd import gradcheck

import losskit
import losskit.functional as LF

REDUCTIONS = ("mean", "sum", "none")
C = 4
# (logits shape, targets shape): a batch of vectors, and a batch of 2-D maps (B, C, H, W).
SHAPES = [((6, C), (6,)), ((3, C, 2, 2), (3, 2, 2))]


def _logits(shape, scale: float = 2.0, dtype: torch.dtype = torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(*shape, generator=g, dtype=torch.float64)
    return x.to(dtype).requires_grad_()


def _targets(shape, ignored: int = 1, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, C, shape, generator=g)
    t.view(-1)[:ignored] = -100
    return t


def _binary(shape=(5, 3), seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    t = (torch.rand(*shape, generator=g) > 0.5).double()
    t.view(-1)[0] = 0.3  # one soft target
    return _logits(shape, seed=seed), t


def _value_and_grad(f, x, *args):
    x = x.detach().clone().requires_grad_()
    out = f(x, *args)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


def _assert_same(ours, theirs, atol=1e-10, rtol=1e-10):
    torch.testing.assert_close(ours[0], theirs[0], atol=atol, rtol=rtol)
    torch.testing.assert_close(ours[1], theirs[1], atol=atol, rtol=rtol)


def _raises(kind, message):
    return pytest.raises(kind, match=re.escape(message))


# --- cross_entropy ------------------------------------------------------------------------------

CE_OPTIONS = [
    {},
    {"weight": torch.tensor([0.5, 2.0, 1.0, 0.25], dtype=torch.float64)},
    {"label_smoothing": 0.2},
    {"weight": torch.tensor([0.5, 2.0, 1.0, 0.25], dtype=torch.float64), "label_smoothing": 0.3},
    {"ignore_index": 2},
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", CE_OPTIONS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize(("logits_shape", "targets_shape"), SHAPES)
def test_cross_entropy_matches_torch(logits_shape, targets_shape, options, reduction):
    # with a custom ignore_index, -100 is an ordinary out-of-range label: use valid ones only
    x, t = _logits(logits_shape), _targets(targets_shape, ignored=0 if options else 1)
    ours = _value_and_grad(lambda a: LF.cross_entropy(a, t, **options, reduction=reduction), x)
    theirs = _value_and_grad(lambda a: F.cross_entropy(a, t, **options, reduction=reduction), x)
    _assert_same(ours, theirs)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
def test_cross_entropy_with_class_probabilities(label_smoothing, reduction):
    x = _logits((5, C))
    q = torch.softmax(torch.randn(5, C, dtype=torch.float64), dim=1)
    w = torch.tensor([1.0, 0.5, 2.0, 1.5], dtype=torch.float64)
    kwargs = {"weight": w, "label_smoothing": label_smoothing, "reduction": reduction}
    ours = _value_and_grad(lambda a: LF.cross_entropy(a, q, **kwargs), x)
    theirs = _value_and_grad(lambda a: F.cross_entropy(a, q, **kwargs), x)
    _assert_same(ours, theirs)


def test_cross_entropy_with_one_hot_probabilities_equals_class_indices():
    x, t = _logits((6, C)), _targets((6,), ignored=0)
    one_hot = F.one_hot(t, C).double()
    _assert_same(
        _value_and_grad(lambda a: LF.cross_entropy(a, one_hot), x),
        _value_and_grad(lambda a: LF.cross_entropy(a, t), x),
    )


# --- label smoothing ----------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("logits_shape", "targets_shape"), SHAPES)
def test_uniform_smoothing_is_torch_label_smoothing(logits_shape, targets_shape, reduction):
    x, t = _logits(logits_shape), _targets(targets_shape, ignored=2)
    ours = _value_and_grad(
        lambda a: LF.label_smoothing_cross_entropy(a, t, 0.15, "uniform", reduction=reduction), x
    )
    theirs = _value_and_grad(
        lambda a: F.cross_entropy(a, t, label_smoothing=0.15, reduction=reduction), x
    )
    _assert_same(ours, theirs)


def _others_reference(logits, targets, eps):
    """−Σ_c q_c log p_c with q built by hand: 1 − ε on the target, ε/(C − 1) elsewhere."""
    q = torch.full_like(logits, eps / (logits.shape[1] - 1))
    q.scatter_(1, targets.unsqueeze(1), 1.0 - eps)
    assert torch.allclose(q.sum(1), torch.ones(len(q), dtype=q.dtype))
    return -(q * torch.log_softmax(logits, dim=1)).sum(dim=1)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.6])
def test_others_smoothing_matches_hand_built_distribution(eps):
    x, t = _logits((7, C)), _targets((7,), ignored=0)
    for reduction, reduce in (("none", lambda v: v), ("mean", torch.mean), ("sum", torch.sum)):
        ours = _value_and_grad(
            lambda a, r=reduction: LF.label_smoothing_cross_entropy(
                a, t, eps, "others", reduction=r
            ),
            x,
        )
        theirs = _value_and_grad(lambda a, f=reduce: f(_others_reference(a, t, eps)), x)
        _assert_same(ours, theirs)


def test_others_smoothing_with_two_classes_beyond_half():
    # ε = 0.8 with C = 2 puts 0.2 on the target: allowed (a valid distribution).
    x, t = _logits((4, 2)), torch.tensor([0, 1, 1, 0])
    _assert_same(
        _value_and_grad(lambda a: LF.label_smoothing_cross_entropy(a, t, 0.8, "others"), x),
        _value_and_grad(lambda a: _others_reference(a, t, 0.8).mean(), x),
    )


def test_others_convention_is_uniform_with_rescaled_epsilon():
    x, t = _logits((6, C)), _targets((6,))
    eps = 0.3
    _assert_same(
        _value_and_grad(lambda a: LF.label_smoothing_cross_entropy(a, t, eps, "others"), x),
        _value_and_grad(
            lambda a: LF.label_smoothing_cross_entropy(a, t, eps * C / (C - 1), "uniform"), x
        ),
    )


# --- focal --------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("logits_shape", "targets_shape"), SHAPES)
def test_focal_with_gamma_zero_is_cross_entropy(logits_shape, targets_shape, reduction):
    x, t = _logits(logits_shape), _targets(targets_shape, ignored=2)
    _assert_same(
        _value_and_grad(lambda a: LF.focal(a, t, None, 0.0, reduction=reduction), x),
        _value_and_grad(lambda a: F.cross_entropy(a, t, reduction=reduction), x),
    )


def test_focal_with_class_alpha_and_gamma_zero_sums_like_weighted_cross_entropy():
    x, t = _logits((8, C)), _targets((8,))
    w = torch.tensor([0.5, 2.0, 1.0, 0.25], dtype=torch.float64)
    _assert_same(
        _value_and_grad(lambda a: LF.focal(a, t, w, 0.0, reduction="sum"), x),
        _value_and_grad(lambda a: F.cross_entropy(a, t, weight=w, reduction="sum"), x),
    )


def _focal_reference(logits, targets, alpha, gamma):
    """The definition, term by term, on valid targets only (plain softmax, moderate logits)."""
    p = torch.softmax(logits, dim=1)
    valid = targets != -100
    idx = targets.clamp_min(0).unsqueeze(1)
    p_t = p.gather(1, idx).squeeze(1)
    if alpha is None:
        a_t = torch.ones_like(p_t)
    elif isinstance(alpha, torch.Tensor):
        a_t = alpha[targets.clamp_min(0)]
    else:
        a_t = torch.full_like(p_t, alpha)
    terms = -a_t * (1 - p_t) ** gamma * torch.log(p_t)
    return (terms * valid).sum() / valid.sum()


@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.0])
@pytest.mark.parametrize(
    "alpha", [None, 0.25, torch.tensor([0.1, 0.4, 0.3, 0.2], dtype=torch.float64)], ids=str
)
@pytest.mark.parametrize(("logits_shape", "targets_shape"), SHAPES)
def test_focal_matches_its_definition(logits_shape, targets_shape, alpha, gamma):
    x, t = _logits(logits_shape), _targets(targets_shape, ignored=2)
    _assert_same(
        _value_and_grad(lambda a: LF.focal(a, t, alpha, gamma), x),
        _value_and_grad(lambda a: _focal_reference(a, t, alpha, gamma), x),
    )


@pytest.mark.parametrize("gamma", [0.25, 0.5, 2.0])
def test_focal_saturated_logits_have_finite_gradients(gamma):
    # p_t rounds to exactly 1: (1 − p_t)^γ with γ < 1 must not give 0·∞ = NaN.
    x = torch.tensor([[60.0, -60.0], [-60.0, 60.0]], requires_grad=True)
    out = LF.focal(x, torch.tensor([0, 0]), gamma=gamma)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()


# --- binary losses ------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "pos_weight",
    [None, torch.tensor([2.0], dtype=torch.float64), torch.tensor([0.5, 3.0, 1.0]).double()],
    ids=["none", "scalar", "per-class"],
)
def test_binary_cross_entropy_matches_torch(pos_weight, reduction):
    x, t = _binary()
    _assert_same(
        _value_and_grad(
            lambda a: LF.binary_cross_entropy(a, t, pos_weight, reduction=reduction), x
        ),
        _value_and_grad(
            lambda a: F.binary_cross_entropy_with_logits(
                a, t, pos_weight=pos_weight, reduction=reduction
            ),
            x,
        ),
    )


def _sigmoid_focal_reference(inputs, targets, alpha, gamma, reduction):
    """torchvision.ops.sigmoid_focal_loss as documented (torchvision is not a dependency)."""
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [0.25, 0.5, -1.0])
def test_binary_focal_matches_torchvision_semantics(alpha, gamma, reduction):
    x, t = _binary((6, 2, 3))
    _assert_same(
        _value_and_grad(lambda a: LF.binary_focal(a, t, alpha, gamma, reduction=reduction), x),
        _value_and_grad(lambda a: _sigmoid_focal_reference(a, t, alpha, gamma, reduction), x),
    )


def test_binary_focal_alpha_none_disables_weighting():
    x, t = _binary()
    torch.testing.assert_close(LF.binary_focal(x, t, None), LF.binary_focal(x, t, -1.0))


def test_binary_focal_without_focusing_or_weighting_is_bce():
    x, t = _binary()
    _assert_same(
        _value_and_grad(lambda a: LF.binary_focal(a, t, alpha=-1.0, gamma=0.0), x),
        _value_and_grad(lambda a: LF.binary_cross_entropy(a, t), x),
    )


# --- class weights ------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [[0, 0, 0, 1, 2, 2], [3, 1, 1, 1, 0, 2, 2, 0, 1]])
def test_class_weights_match_sklearn_balanced(labels):
    num_classes = max(labels) + 1
    expected = compute_class_weight("balanced", classes=np.arange(num_classes), y=labels)
    ours = LF.class_weights(torch.tensor(labels), num_classes)
    assert ours.dtype == torch.get_default_dtype()
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-6)


def test_class_weights_absent_class_gets_zero_and_any_shape_is_counted():
    labels = torch.tensor([[0, 0], [0, 2]])  # class 1 absent, class 3 absent
    w = LF.class_weights(labels, 4)
    n = 4
    expected = torch.tensor([n / (4 * 3), 0.0, n / (4 * 1), 0.0])
    torch.testing.assert_close(w, expected)
    assert torch.isfinite(w).all()


def test_class_weights_of_a_balanced_set_are_ones_and_of_nothing_zeros():
    torch.testing.assert_close(LF.class_weights(torch.arange(3).repeat(5), 3), torch.ones(3))
    torch.testing.assert_close(
        LF.class_weights(torch.zeros(0, dtype=torch.long), 2), torch.zeros(2)
    )


# --- every function: gradcheck, reductions, ignored batches, half precision --------------------


def _mc(fn, **kw):
    return lambda x, t, **extra: fn(x, t, **kw, **extra)


MULTICLASS = {
    "cross_entropy": _mc(LF.cross_entropy),
    "cross_entropy-weight-smoothing": _mc(
        LF.cross_entropy,
        weight=torch.tensor([0.5, 2.0, 1.0, 0.25], dtype=torch.float64),
        label_smoothing=0.1,
    ),
    "label_smoothing-uniform": _mc(LF.label_smoothing_cross_entropy, epsilon=0.1),
    "label_smoothing-others": _mc(
        LF.label_smoothing_cross_entropy, epsilon=0.1, convention="others"
    ),
    "focal": _mc(LF.focal),
    "focal-alpha-float": _mc(LF.focal, alpha=0.25, gamma=0.5),
    "focal-alpha-tensor": _mc(
        LF.focal, alpha=torch.tensor([0.1, 0.4, 0.3, 0.2], dtype=torch.float64)
    ),
}
BINARY = {
    "binary_cross_entropy": _mc(LF.binary_cross_entropy),
    "binary_cross_entropy-pos_weight": _mc(
        LF.binary_cross_entropy, pos_weight=torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64)
    ),
    "binary_focal": _mc(LF.binary_focal),
    "binary_focal-gamma-half": _mc(LF.binary_focal, alpha=0.75, gamma=0.5),
}


def _case(name):
    if name in MULTICLASS:
        return MULTICLASS[name], _logits((4, C)), _targets((4,))
    x, t = _binary()
    return BINARY[name], x, t


ALL = sorted([*MULTICLASS, *BINARY])


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize("name", ALL)
def test_gradcheck(name, reduction):
    fn, x, t = _case(name)
    assert gradcheck(lambda a: fn(a, t, reduction=reduction), (x,))


def test_gradcheck_class_probabilities_and_spatial_targets():
    x = _logits((2, C, 3))
    q = torch.softmax(torch.randn(2, C, 3, dtype=torch.float64), dim=1)
    assert gradcheck(lambda a: LF.cross_entropy(a, q, label_smoothing=0.1), (x,))
    t = _targets((2, 3))
    assert gradcheck(lambda a: LF.focal(a, t, alpha=0.5), (x,))


def test_gradcheck_with_respect_to_binary_targets():
    x, t = _binary()
    t = (0.1 + 0.8 * t).requires_grad_()  # strictly inside (0, 1)
    assert gradcheck(lambda a, b: LF.binary_focal(a, b), (x, t))
    assert gradcheck(lambda a, b: LF.binary_cross_entropy(a, b), (x, t))


@pytest.mark.parametrize("name", ALL)
def test_reductions_agree(name):
    fn, x, t = _case(name)
    per_element = fn(x, t, reduction="none")
    assert per_element.shape == t.shape
    torch.testing.assert_close(fn(x, t, reduction="sum"), per_element.sum())
    if name in BINARY:
        torch.testing.assert_close(fn(x, t, reduction="mean"), per_element.mean())


@pytest.mark.parametrize(
    "name", [n for n in MULTICLASS if not n.startswith("cross_entropy-weight")]
)
def test_mean_divides_by_the_number_of_valid_targets(name):
    fn = MULTICLASS[name]
    x, t = _logits((6, C)), _targets((6,), ignored=2)
    per_element = fn(x, t, reduction="none")
    assert torch.all(per_element[:2] == 0)
    torch.testing.assert_close(fn(x, t), per_element.sum() / 4)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(MULTICLASS))
def test_all_ignored_batch_is_zero_with_a_gradient(name, reduction):
    fn = MULTICLASS[name]
    x = _logits((3, C, 2))
    out = fn(x, torch.full((3, 2), -100), reduction=reduction)
    assert not torch.isnan(out).any() and torch.all(out == 0)
    assert out.requires_grad
    out.sum().backward()
    assert x.grad is not None and torch.all(x.grad == 0)


def test_empty_batch_is_zero():
    x = torch.zeros(0, C, requires_grad=True)
    for fn in MULTICLASS.values():
        out = fn(x, torch.zeros(0, dtype=torch.long))
        assert out.item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ALL)
def test_half_precision_extreme_logits_are_finite(name, dtype):
    fn, x, t = _case(name)
    signs = torch.where(torch.arange(x.numel()) % 2 == 0, 1.0, -1.0).view_as(x)
    x = (1e4 * signs).to(dtype).requires_grad_()
    args = (x, t.to(dtype) if t.is_floating_point() else t)
    out = fn(*args)
    out.backward()
    assert out.dtype == dtype and torch.isfinite(out)
    assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()
    exact = fn(x.detach().double(), t)
    torch.testing.assert_close(out.double(), exact, atol=0.0, rtol=2e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ALL)
def test_cuda_matches_cpu(name):
    # class weights, α and pos_weight stay on the CPU: the functions move them to the logits
    fn, x, t = _case(name)
    on_cpu = _value_and_grad(lambda a: fn(a, t, reduction="none"), x)
    on_gpu = _value_and_grad(lambda a: fn(a, t.cuda(), reduction="none"), x.cuda())
    _assert_same((on_gpu[0].cpu(), on_gpu[1].cpu()), on_cpu)


# --- the probabilities warning ------------------------------------------------------------------

PROBABILITY_CASES = {
    "cross_entropy": (LF.cross_entropy, "softmax"),
    "focal": (LF.focal, "softmax"),
    "label_smoothing_cross_entropy": (LF.label_smoothing_cross_entropy, "softmax"),
    "binary_cross_entropy": (LF.binary_cross_entropy, "sigmoid"),
    "binary_focal": (LF.binary_focal, "sigmoid"),
}


@pytest.mark.parametrize("name", sorted(PROBABILITY_CASES))
def test_warns_when_probabilities_are_passed_as_logits(name):
    fn, squash = PROBABILITY_CASES[name]
    if squash == "softmax":
        probs, t = torch.softmax(_logits((5, C)), dim=1), _targets((5,), ignored=0)
    else:
        x, t = _binary()
        probs = torch.sigmoid(x)
    with pytest.warns(UserWarning, match=re.escape(f"{name}: expected `logits` to be raw scores")):
        fn(probs, t)


@pytest.mark.parametrize("name", sorted(PROBABILITY_CASES))
def test_ordinary_logits_never_warn(name):
    fn, squash = PROBABILITY_CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in range(20):
            if squash == "softmax":
                shape = (2, C) if seed % 2 else (2, C, 3)
                x = _logits(shape, scale=0.01, seed=seed)
                fn(x, _targets(shape[:1] + shape[2:], ignored=0, seed=seed))
                # all in [0, 1] but rows not normalised: ordinary non-negative scores
                fn(torch.rand(4, C, generator=torch.Generator().manual_seed(seed)), _targets((4,)))
            else:
                x, t = _binary(seed=seed)
                fn(0.01 * x, t)
        zeros = torch.zeros(4, C) if squash == "softmax" else torch.zeros(5, 3)
        fn(zeros, _targets((4,)) if squash == "softmax" else _binary()[1].float())


def test_probabilities_warning_is_shown_once_per_call_site():
    probs = torch.softmax(torch.randn(4, C), dim=1)
    t = _targets((4,), ignored=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            LF.cross_entropy(probs, t)
    assert len(caught) == 1 and caught[0].category is UserWarning
    assert caught[0].filename == __file__  # points at the caller, not at losskit


# --- modules ------------------------------------------------------------------------------------


def test_modules_call_their_functions():
    x, t = _logits((5, C)), _targets((5,), ignored=0)
    w = torch.tensor([0.5, 2.0, 1.0, 0.25], dtype=torch.float64)
    xb, tb = _binary()
    pw = torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64)
    pairs = [
        (losskit.CrossEntropyLoss(weight=w, label_smoothing=0.1, reduction="sum"), x, t,
         LF.cross_entropy(x, t, w, label_smoothing=0.1, reduction="sum")),
        (losskit.LabelSmoothingCrossEntropy(epsilon=0.2, convention="others"), x, t,
         LF.label_smoothing_cross_entropy(x, t, 0.2, "others")),
        (losskit.FocalLoss(alpha=w, gamma=1.5, ignore_index=1), x, t,
         LF.focal(x, t, w, 1.5, ignore_index=1)),
        (losskit.FocalLoss(alpha=0.5), x, t, LF.focal(x, t, 0.5)),
        (losskit.BCEWithLogitsLoss(pos_weight=pw), xb, tb, LF.binary_cross_entropy(xb, tb, pw)),
        (losskit.BinaryFocalLoss(alpha=0.75, gamma=1.0, reduction="none"), xb, tb,
         LF.binary_focal(xb, tb, 0.75, 1.0, reduction="none")),
    ]  # fmt: skip
    for module, a, b, expected in pairs:
        torch.testing.assert_close(module(a, b), expected)


def test_module_tensors_are_buffers_and_reprs_show_hyper_parameters():
    w = torch.ones(C)
    ce = losskit.CrossEntropyLoss(weight=w)
    assert "weight" in ce.state_dict() and ce.to(torch.float64).weight.dtype == torch.float64
    assert "alpha" in losskit.FocalLoss(alpha=w).state_dict()
    assert "pos_weight" in losskit.BCEWithLogitsLoss(pos_weight=torch.ones(1)).state_dict()
    assert repr(losskit.BinaryFocalLoss()) == (
        "BinaryFocalLoss(alpha=0.25, gamma=2.0, reduction='mean')"
    )
    assert repr(losskit.FocalLoss(alpha=0.5, gamma=1.0)) == (
        "FocalLoss(alpha=0.5, gamma=1.0, ignore_index=-100, reduction='mean')"
    )
    assert repr(losskit.LabelSmoothingCrossEntropy()) == (
        "LabelSmoothingCrossEntropy(epsilon=0.1, convention='uniform', ignore_index=-100, "
        "reduction='mean')"
    )
    assert type(losskit.build_loss("focal", gamma=1.0)) is losskit.FocalLoss


# --- errors -------------------------------------------------------------------------------------

X = torch.zeros(4, 3)
T = torch.tensor([0, 1, 2, 1])
XB = torch.zeros(4, 2)
TB = torch.zeros(4, 2)

ERRORS = [
    # logits
    (LF.cross_entropy, (X.long(), T), {}, TypeError,
     "cross_entropy: expected `logits` to be a floating-point tensor, got dtype torch.int64"),
    (LF.focal, (torch.zeros(3), T), {}, ValueError,
     "focal: expected `logits` of shape (B, C) or (B, C, d1, ...), got (3,)"),
    (LF.label_smoothing_cross_entropy, ([[0.0]], T), {}, TypeError,
     "label_smoothing_cross_entropy: expected `logits` to be a torch.Tensor, got list"),
    # targets
    (LF.cross_entropy, (X, torch.tensor([0, 1, 2])), {}, ValueError,
     "cross_entropy: expected `targets` of shape (4,) matching `logits` (4, 3), got (3,)"),
    (LF.cross_entropy, (X, T.float()), {}, TypeError,
     "cross_entropy: expected `targets` to hold integer class indices, or class probabilities "
     "of the shape of `logits` (4, 3), got dtype torch.float32 of shape (4,)"),
    (LF.cross_entropy, (X, torch.full((4, 3), 1.5)), {}, ValueError,
     "cross_entropy: expected `targets` with values in [0, 1], got a value 1.5"),
    (LF.focal, (X, T.float()), {}, TypeError,
     "focal: expected `targets` to hold integer class indices, got dtype torch.float32"),
    (LF.label_smoothing_cross_entropy, (X, torch.tensor([True, False, True, True])), {},
     TypeError, "expected `targets` to hold integer class indices, got dtype torch.bool"),
    (LF.cross_entropy, (X, torch.tensor([0, 1, 3, 1])), {}, ValueError,
     "cross_entropy: expected `targets` in [0, 2] or -100 (num_classes=3), got a label 3"),
    (LF.focal, (X, torch.tensor([0, -1, 2, 1])), {}, ValueError,
     "focal: expected `targets` in [0, 2] or -100 (num_classes=3), got a label -1"),
    (LF.label_smoothing_cross_entropy, (X, torch.tensor([0, 5, 2, 1])), {"ignore_index": 5},
     None, None),
    # weight / alpha / pos_weight
    (LF.cross_entropy, (X, T), {"weight": torch.ones(4)}, ValueError,
     "cross_entropy: expected `weight` of shape (3,) matching `logits` (C), got (4,)"),
    (LF.cross_entropy, (X, T), {"weight": torch.tensor([1.0, -1.0, 1.0])}, ValueError,
     "cross_entropy: expected `weight` with values in [0, inf), got a value -1"),
    (LF.cross_entropy, (X, T), {"weight": torch.ones(3, dtype=torch.long)}, TypeError,
     "cross_entropy: expected `weight` to be a floating-point tensor, got dtype torch.int64"),
    (LF.focal, (X, T), {"alpha": torch.ones(2)}, ValueError,
     "focal: expected `alpha` of shape (3,) matching `logits` (C), got (2,)"),
    (LF.focal, (X, T), {"alpha": -0.5}, ValueError,
     "focal: expected `alpha` in [0, inf), got -0.5"),
    (LF.focal, (X, T), {"alpha": "0.25"}, TypeError,
     "focal: expected `alpha` to be a real number, got str"),
    (LF.binary_cross_entropy, (XB, TB), {"pos_weight": torch.ones(3)}, ValueError,
     "binary_cross_entropy: expected `pos_weight` of shape (2,) matching the last dimension of "
     "`logits`, or (1,), got (3,)"),
    (LF.binary_cross_entropy, (XB, TB), {"pos_weight": torch.ones(1, 2)}, ValueError,
     "binary_cross_entropy: expected `pos_weight` of shape (C,), got (1, 2)"),
    (LF.binary_cross_entropy, (XB, TB), {"pos_weight": -torch.ones(2)}, ValueError,
     "binary_cross_entropy: expected `pos_weight` with values in [0, inf), got a value -1"),
    # scalar hyper-parameters
    (LF.cross_entropy, (X, T), {"label_smoothing": 1.5}, ValueError,
     "cross_entropy: expected `label_smoothing` in [0, 1], got 1.5"),
    (LF.cross_entropy, (X, T), {"ignore_index": -1.0}, TypeError,
     "cross_entropy: expected `ignore_index` to be an integer, got float"),
    (LF.label_smoothing_cross_entropy, (X, T), {"epsilon": 1.0}, ValueError,
     "label_smoothing_cross_entropy: expected `epsilon` in [0, 1), got 1.0"),
    (LF.label_smoothing_cross_entropy, (X, T), {"epsilon": -0.1}, ValueError,
     "label_smoothing_cross_entropy: expected `epsilon` in [0, 1), got -0.1"),
    (LF.label_smoothing_cross_entropy, (X, T), {"convention": "other"}, ValueError,
     "label_smoothing_cross_entropy: expected `convention` one of 'uniform', 'others', "
     "got 'other' (did you mean 'others'?)"),
    (LF.label_smoothing_cross_entropy, (torch.zeros(2, 1), torch.zeros(2, dtype=torch.long)),
     {"convention": "others"}, ValueError,
     "label_smoothing_cross_entropy: expected `logits` to have C >= 2 classes with "
     "convention='others', got C=1"),
    (LF.focal, (X, T), {"gamma": -1.0}, ValueError,
     "focal: expected `gamma` in [0, inf), got -1.0"),
    (LF.binary_focal, (XB, TB), {"gamma": -2.0}, ValueError,
     "binary_focal: expected `gamma` in [0, inf), got -2.0"),
    (LF.binary_focal, (XB, TB), {"alpha": 1.5}, ValueError,
     "binary_focal: expected `alpha` in (-inf, 1], got 1.5"),
    # binary targets
    (LF.binary_cross_entropy, (XB, TB.long()), {}, TypeError,
     "binary_cross_entropy: expected `targets` to be a floating-point tensor, got dtype "
     "torch.int64"),
    (LF.binary_focal, (XB, torch.zeros(4)), {}, ValueError,
     "binary_focal: expected `targets` of the same shape as `logits` (4, 2), got (4,)"),
    (LF.binary_focal, (XB, TB + 2), {}, ValueError,
     "binary_focal: expected `targets` with values in [0, 1], got a value 2"),
    (LF.binary_cross_entropy, (XB, TB - 1), {}, ValueError,
     "binary_cross_entropy: expected `targets` with values in [0, 1], got a value -1"),
    # reduction
    *[
        (fn, args, {"reduction": "avg"}, ValueError,
         f"{fn.__name__}: expected `reduction` one of 'mean', 'sum', 'none', got 'avg'")
        for fn, args in [
            (LF.cross_entropy, (X, T)),
            (LF.label_smoothing_cross_entropy, (X, T)),
            (LF.focal, (X, T)),
            (LF.binary_cross_entropy, (XB, TB)),
            (LF.binary_focal, (XB, TB)),
        ]
    ],
]  # fmt: skip


@pytest.mark.parametrize(("fn", "args", "kwargs", "kind", "message"), ERRORS)
def test_errors(fn, args, kwargs, kind, message):
    if kind is None:  # a label equal to ignore_index is valid even outside [0, C)
        assert torch.isfinite(fn(*args, **kwargs))
        return
    with _raises(kind, message):
        fn(*args, **kwargs)


@pytest.mark.parametrize(
    ("labels", "num_classes", "kind", "message"),
    [
        (torch.tensor([0, 1]), 0, ValueError,
         "class_weights: expected `num_classes` to be an integer >= 1, got 0"),
        (torch.tensor([0, 1]), 2.0, TypeError,
         "class_weights: expected `num_classes` to be an integer, got float"),
        (torch.tensor([0.0, 1.0]), 2, TypeError,
         "class_weights: expected `labels` to hold integer class indices, got dtype torch.float32"),
        (torch.tensor([0, 5]), 3, ValueError,
         "class_weights: expected `labels` in [0, 2] (num_classes=3), got a label 5"),
    ],
)  # fmt: skip
def test_class_weights_errors(labels, num_classes, kind, message):
    with _raises(kind, message):
        LF.class_weights(labels, num_classes)


@pytest.mark.parametrize(
    ("cls", "kwargs", "kind", "message"),
    [
        (losskit.CrossEntropyLoss, {"weight": torch.ones(1, 3)}, ValueError,
         "CrossEntropyLoss: expected `weight` of shape (C,), got (1, 3)"),
        (losskit.CrossEntropyLoss, {"label_smoothing": -0.1}, ValueError,
         "CrossEntropyLoss: expected `label_smoothing` in [0, 1], got -0.1"),
        (losskit.CrossEntropyLoss, {"reduction": "avg"}, ValueError,
         "CrossEntropyLoss: expected `reduction` one of 'mean', 'sum', 'none', got 'avg'"),
        (losskit.LabelSmoothingCrossEntropy, {"convention": "x"}, ValueError,
         "LabelSmoothingCrossEntropy: expected `convention` one of 'uniform', 'others', got 'x'"),
        (losskit.LabelSmoothingCrossEntropy, {"epsilon": 2.0}, ValueError,
         "LabelSmoothingCrossEntropy: expected `epsilon` in [0, 1), got 2.0"),
        (losskit.FocalLoss, {"gamma": -1.0}, ValueError,
         "FocalLoss: expected `gamma` in [0, inf), got -1.0"),
        (losskit.FocalLoss, {"alpha": torch.tensor([-1.0, 1.0])}, ValueError,
         "FocalLoss: expected `alpha` with values in [0, inf), got a value -1"),
        (losskit.FocalLoss, {"ignore_index": None}, TypeError,
         "FocalLoss: expected `ignore_index` to be an integer, got NoneType"),
        (losskit.BinaryFocalLoss, {"alpha": 2.0}, ValueError,
         "BinaryFocalLoss: expected `alpha` in (-inf, 1], got 2.0"),
        (losskit.BCEWithLogitsLoss, {"pos_weight": torch.tensor([-1.0])}, ValueError,
         "BCEWithLogitsLoss: expected `pos_weight` with values in [0, inf), got a value -1"),
    ],
)  # fmt: skip
def test_module_init_errors(cls, kwargs, kind, message):
    with _raises(kind, message):
        cls(**kwargs)
