"""Regression losses: values and gradients against PyTorch core and closed forms, identities,
reductions, half precision, and every error message."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import losskit
import losskit.functional as LF

REDUCTIONS = ("mean", "sum", "none")

# (losskit function, its hyper-parameters, the independent reference on the same inputs)
TORCH_REFERENCES = {
    "mse": (LF.mse, {}, lambda x, y, r: F.mse_loss(x, y, reduction=r)),
    "mae": (LF.mae, {}, lambda x, y, r: F.l1_loss(x, y, reduction=r)),
    "huber": (LF.huber, {"delta": 0.7}, lambda x, y, r: F.huber_loss(x, y, reduction=r, delta=0.7)),
    "smooth_l1": (
        LF.smooth_l1,
        {"beta": 0.7},
        lambda x, y, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.7),
    ),
    "smooth_l1_beta0": (LF.smooth_l1, {"beta": 0.0}, lambda x, y, r: F.l1_loss(x, y, reduction=r)),
}

# Every function with the hyper-parameters its tests use.
ALL = {
    "mse": (LF.mse, {}),
    "mae": (LF.mae, {}),
    "huber": (LF.huber, {"delta": 0.7}),
    "smooth_l1": (LF.smooth_l1, {"beta": 0.7}),
    "log_cosh": (LF.log_cosh, {}),
    "asymmetric_mse": (LF.asymmetric_mse, {"over_penalty": 3.0}),
}


def _pair(*shape: int, scale: float = 1.0, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(0)
    x = (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)
    y = (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).to(dtype)
    return x.requires_grad_(), y


def _value_and_grad(f, x, y):
    x = x.detach().clone().requires_grad_()
    out = f(x, y)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


def _assert_same(a, b, atol=1e-10, rtol=1e-10):
    torch.testing.assert_close(a, b, atol=atol, rtol=rtol)


# --- value and gradient against references --------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(TORCH_REFERENCES))
def test_matches_torch_core(name, reduction):
    fn, kwargs, ref = TORCH_REFERENCES[name]
    x, y = _pair(5, 3, scale=2.0)
    ours = _value_and_grad(lambda a, b: fn(a, b, **kwargs, reduction=reduction), x, y)
    theirs = _value_and_grad(lambda a, b: ref(a, b, reduction), x, y)
    _assert_same(ours[0], theirs[0])
    _assert_same(ours[1], theirs[1])


def test_log_cosh_matches_closed_form_and_tanh_gradient():
    e = torch.linspace(-20, 20, 401, dtype=torch.float64)
    x = e.clone().requires_grad_()
    out = LF.log_cosh(x, torch.zeros_like(e), reduction="none")
    (grad,) = torch.autograd.grad(out.sum(), x)
    _assert_same(out.detach(), torch.log(torch.cosh(e)), atol=1e-12, rtol=1e-12)
    _assert_same(grad, torch.tanh(e), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("e", [1e-3, 1e-2, 0.5, 9.99, 10.0, 10.01, 30.0])
def test_log_cosh_float32_accurate_near_zero_and_at_the_switch(e):
    x = torch.tensor([e, -e], dtype=torch.float32)
    ours = LF.log_cosh(x, torch.zeros_like(x), reduction="none").double()
    exact = torch.log(torch.cosh(torch.tensor([e, -e], dtype=torch.float64)))
    _assert_same(ours, exact, atol=0.0, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_log_cosh_large_errors_are_finite_with_unit_gradient(dtype):
    x = torch.tensor([1e4, -1e4], dtype=dtype, requires_grad=True)
    out = LF.log_cosh(x, torch.zeros_like(x), reduction="none")
    out.sum().backward()
    assert out.dtype == dtype and torch.isfinite(out).all()
    expected = torch.full((2,), 1e4 - math.log(2.0), dtype=torch.float64)
    _assert_same(out.double(), expected, atol=0.0, rtol=1e-2 if dtype.itemsize == 2 else 1e-6)
    assert torch.equal(x.grad, torch.tensor([1.0, -1.0], dtype=dtype))


def _asymmetric_reference(x, y, k):
    e = x - y
    return torch.where(e > 0, k * e**2, e**2).mean()


def test_asymmetric_mse_matches_its_definition():
    x, y = _pair(6, 4)
    k = 0.3  # not exact in float32: the float64 result must not round it
    ours = _value_and_grad(lambda a, b: LF.asymmetric_mse(a, b, over_penalty=k), x, y)
    reference = _value_and_grad(lambda a, b: _asymmetric_reference(a, b, k), x, y)
    _assert_same(ours[0], reference[0])
    _assert_same(ours[1], reference[1])


# --- identities ---------------------------------------------------------------------------------


def test_huber_with_huge_delta_is_half_mse():
    x, y = _pair(7, 3)
    ours = _value_and_grad(lambda a, b: LF.huber(a, b, delta=1e6), x, y)
    half_mse = _value_and_grad(lambda a, b: 0.5 * LF.mse(a, b), x, y)
    _assert_same(ours[0], half_mse[0])
    _assert_same(ours[1], half_mse[1])


def test_huber_over_tiny_delta_is_mae():
    delta = 1e-8
    x, y = _pair(7, 3)
    ours = _value_and_grad(lambda a, b: LF.huber(a, b, delta=delta) / delta, x, y)
    l1 = _value_and_grad(LF.mae, x, y)
    _assert_same(ours[0], l1[0], atol=delta, rtol=0.0)  # differs by δ/2 per element
    _assert_same(ours[1], l1[1])


@pytest.mark.parametrize("beta", [0.1, 1.0, 3.0])
def test_smooth_l1_is_huber_divided_by_its_switch_point(beta):
    x, y = _pair(6, 2, scale=2.0)
    _assert_same(LF.smooth_l1(x, y, beta=beta), LF.huber(x, y, delta=beta) / beta)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_asymmetric_mse_with_unit_penalty_is_mse(reduction):
    x, y = _pair(5, 3)
    ours = _value_and_grad(lambda a, b: LF.asymmetric_mse(a, b, 1.0, reduction=reduction), x, y)
    plain = _value_and_grad(lambda a, b: LF.mse(a, b, reduction=reduction), x, y)
    _assert_same(ours[0], plain[0])
    _assert_same(ours[1], plain[1])


def test_asymmetric_mse_penalises_over_estimates_more():
    target = torch.zeros(1)
    over = LF.asymmetric_mse(torch.ones(1), target, over_penalty=4.0)
    under = LF.asymmetric_mse(-torch.ones(1), target, over_penalty=4.0)
    assert float(over) == pytest.approx(4.0 * float(under))


# --- gradcheck, reductions, dtypes ------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(ALL))
def test_gradcheck(name, reduction):
    fn, kwargs = ALL[name]
    x, y = _pair(4, 3, scale=2.0)
    y.requires_grad_()
    assert gradcheck(lambda a, b: fn(a, b, **kwargs, reduction=reduction), (x, y))


@pytest.mark.parametrize("name", sorted(ALL))
def test_reductions_agree(name):
    fn, kwargs = ALL[name]
    x, y = _pair(2, 3, 4)
    per_element = fn(x, y, **kwargs, reduction="none")
    assert per_element.shape == x.shape
    _assert_same(fn(x, y, **kwargs, reduction="sum"), per_element.sum())
    _assert_same(fn(x, y, **kwargs, reduction="mean"), per_element.mean())
    _assert_same(fn(x, y, **kwargs), per_element.mean())  # "mean" is the default


@pytest.mark.parametrize("name", sorted(ALL))
def test_empty_input_gives_zero(name):
    fn, kwargs = ALL[name]
    x = torch.zeros(0, 3, requires_grad=True)
    out = fn(x, torch.zeros(0, 3), **kwargs)
    out.backward()
    assert out.item() == 0.0 and x.grad is not None


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(ALL))
def test_half_precision_is_finite_and_follows_input_dtype(name, dtype):
    fn, kwargs = ALL[name]
    # Linear-growth losses take errors of 1e4; squared ones 100 (1e4² does not fit in fp16).
    scale = 100.0 if name in ("mse", "asymmetric_mse") else 1e4
    x, y = _pair(4, 3, scale=scale, dtype=dtype)
    out = fn(x, y, **kwargs)
    out.backward()
    assert out.dtype == dtype and torch.isfinite(out)
    assert x.grad is not None and x.grad.dtype == dtype and torch.isfinite(x.grad).all()
    exact = fn(x.detach().double(), y.double(), **kwargs)
    _assert_same(out.double(), exact, atol=0.0, rtol=2e-2)


def test_half_precision_squares_in_float32():
    # 300² = 9e4 overflows float16 (max 65504); the mean 4.5e4 does not.
    x = torch.tensor([300.0, 0.0], dtype=torch.float16)
    out = LF.mse(x, torch.zeros_like(x))
    assert out.dtype == torch.float16 and out == torch.tensor(45000.0, dtype=torch.float16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", sorted(ALL))
def test_cuda_matches_cpu(name):
    fn, kwargs = ALL[name]
    x, y = _pair(4, 3, scale=2.0)
    on_cpu = _value_and_grad(lambda a, b: fn(a, b, **kwargs), x, y)
    on_gpu = _value_and_grad(lambda a, b: fn(a, b, **kwargs), x.cuda(), y.cuda())
    _assert_same(on_gpu[0].cpu(), on_cpu[0])
    _assert_same(on_gpu[1].cpu(), on_cpu[1])


# --- modules ------------------------------------------------------------------------------------

MODULES = {
    "mse": (losskit.MSELoss, {}, "MSELoss(reduction='sum')"),
    "mae": (losskit.MAELoss, {}, "MAELoss(reduction='sum')"),
    "huber": (losskit.HuberLoss, {"delta": 0.7}, "HuberLoss(delta=0.7, reduction='sum')"),
    "smooth_l1": (losskit.SmoothL1Loss, {"beta": 0.7}, "SmoothL1Loss(beta=0.7, reduction='sum')"),
    "log_cosh": (losskit.LogCoshLoss, {}, "LogCoshLoss(reduction='sum')"),
    "asymmetric_mse": (
        losskit.AsymmetricMSELoss,
        {"over_penalty": 3.0},
        "AsymmetricMSELoss(over_penalty=3.0, reduction='sum')",
    ),
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_calls_its_function(name):
    cls, kwargs, text = MODULES[name]
    fn = ALL[name][0]
    module = cls(**kwargs, reduction="sum")
    x, y = _pair(3, 2)
    _assert_same(module(x, y), fn(x, y, **kwargs, reduction="sum"))
    assert repr(module) == text
    assert type(losskit.build_loss(name, **kwargs)) is cls


# --- errors -------------------------------------------------------------------------------------


def _raises(kind, message):
    return pytest.raises(kind, match=re.escape(message))


@pytest.mark.parametrize("name", sorted(ALL))
def test_input_errors(name):
    fn, kwargs = ALL[name]
    x = torch.zeros(2, 3)
    with _raises(TypeError, f"{name}: expected `input` to be a floating-point tensor, got dtype"):
        fn(torch.zeros(2, 3, dtype=torch.long), x, **kwargs)
    with _raises(TypeError, f"{name}: expected `target` to be a floating-point tensor, got dtype"):
        fn(x, torch.zeros(2, 3, dtype=torch.long), **kwargs)
    with _raises(TypeError, f"{name}: expected `input` to be a torch.Tensor, got list"):
        fn([0.0], x, **kwargs)
    with _raises(
        ValueError, f"{name}: expected `target` of the same shape as `input` (2, 3), got (3,)"
    ):
        fn(x, torch.zeros(3), **kwargs)
    with _raises(
        ValueError,
        f"{name}: expected `reduction` one of 'mean', 'sum', 'none', got 'meen' "
        "(did you mean 'mean'?)",
    ):
        fn(x, x, **kwargs, reduction="meen")


@pytest.mark.parametrize(
    ("fn", "kwargs", "message"),
    [
        (LF.huber, {"delta": 0.0}, "huber: expected `delta` in (0, inf), got 0.0"),
        (LF.huber, {"delta": -1.0}, "huber: expected `delta` in (0, inf), got -1.0"),
        (
            LF.huber,
            {"delta": math.inf},
            "huber: expected `delta` to be a finite number in (0, inf), got inf",
        ),
        (LF.smooth_l1, {"beta": -0.5}, "smooth_l1: expected `beta` in [0, inf), got -0.5"),
        (
            LF.asymmetric_mse,
            {"over_penalty": 0.0},
            "asymmetric_mse: expected `over_penalty` in (0, inf), got 0.0",
        ),
    ],
)
def test_hyper_parameter_errors(fn, kwargs, message):
    x = torch.zeros(2)
    with _raises(ValueError, message):
        fn(x, x, **kwargs)


def test_hyper_parameter_type_error():
    with _raises(TypeError, "huber: expected `delta` to be a real number, got str"):
        LF.huber(torch.zeros(2), torch.zeros(2), delta="1")


@pytest.mark.parametrize(
    ("cls", "kwargs", "kind", "message"),
    [
        (losskit.HuberLoss, {"delta": -1.0}, ValueError, "HuberLoss: expected `delta` in (0, inf)"),
        (
            losskit.SmoothL1Loss,
            {"beta": -1.0},
            ValueError,
            "SmoothL1Loss: expected `beta` in [0, inf)",
        ),
        (
            losskit.AsymmetricMSELoss,
            {"over_penalty": -2.0},
            ValueError,
            "AsymmetricMSELoss: expected `over_penalty` in (0, inf)",
        ),
        (losskit.MSELoss, {"reduction": "avg"}, ValueError, "MSELoss: expected `reduction` one of"),
        (losskit.HuberLoss, {"delta": True}, TypeError, "HuberLoss: expected `delta` to be a real"),
    ],
)
def test_module_init_errors(cls, kwargs, kind, message):
    with _raises(kind, message):
        cls(**kwargs)


def test_module_hyper_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        losskit.HuberLoss(0.5)  # type: ignore[misc]


# ---- Barron's general robust loss and its named cases; the quantile loss ----------------------


def _barron_reference(e, alpha, c):
    """Barron (2019), Eq. 1 and its limits, written independently in float64."""
    x2 = (e.double() / c) ** 2
    if alpha == 2:
        return x2 / 2
    if alpha == 0:
        return torch.log(x2 / 2 + 1)
    if alpha == -math.inf:
        return 1 - torch.exp(-x2 / 2)
    b = abs(alpha - 2)
    return b / alpha * ((x2 / b + 1) ** (alpha / 2) - 1)


CLOSED_FORMS = {
    2.0: lambda x2: x2 / 2,
    1.0: lambda x2: torch.sqrt(x2 + 1) - 1,
    0.0: lambda x2: torch.log(x2 / 2 + 1),
    -2.0: lambda x2: 2 * x2 / (x2 + 4),
    -math.inf: lambda x2: 1 - torch.exp(-x2 / 2),
}


@pytest.mark.parametrize("alpha", sorted(CLOSED_FORMS))
def test_robust_special_cases_are_the_named_losses(alpha):
    x, y = _pair(5, 4, scale=3.0)
    c = 0.7
    expected = CLOSED_FORMS[alpha](((x - y) / c) ** 2)
    value, grad = _value_and_grad(lambda a, b: LF.robust(a, b, alpha, c, reduction="none"), x, y)
    ref, ref_grad = _value_and_grad(lambda a, b: CLOSED_FORMS[alpha](((a - b) / c) ** 2), x, y)
    _assert_same(value, expected.detach())
    _assert_same(grad, ref_grad)
    _assert_same(ref, expected.detach())


def test_robust_alpha_two_is_half_mse():
    x, y = _pair(6, 3)
    _assert_same(LF.robust(x, y, 2.0), F.mse_loss(x, y) / 2)


@pytest.mark.parametrize("alpha", [1.5, 0.5, -0.5, -3.0, 4.0])
def test_robust_general_alpha_matches_the_formula(alpha):
    x, y = _pair(4, 4, scale=2.0)
    _assert_same(
        LF.robust(x, y, alpha, 1.3, reduction="none"), _barron_reference(x - y, alpha, 1.3).detach()
    )
    assert gradcheck(lambda a: LF.robust(a, y, alpha, 1.3), (x,))


@pytest.mark.parametrize("alpha", [2.0, 0.0, -math.inf])
def test_robust_is_continuous_at_the_singular_alphas(alpha):
    x, y = _pair(4, 3, scale=2.0)
    near = -1e6 if alpha == -math.inf else alpha + 1e-7
    torch.testing.assert_close(LF.robust(x, y, near), LF.robust(x, y, alpha), rtol=1e-3, atol=1e-6)
    assert gradcheck(lambda a: LF.robust(a, y, alpha), (x,))


@pytest.mark.parametrize(
    ("fn", "alpha"), [(LF.charbonnier, 1.0), (LF.cauchy, 0.0), (LF.welsch, -math.inf)]
)
def test_named_robust_losses_and_modules(fn, alpha):
    x, y = _pair(3, 5, scale=2.0)
    for r in REDUCTIONS:
        _assert_same(fn(x, y, 0.5, reduction=r), LF.robust(x, y, alpha, 0.5, reduction=r))
    module = losskit.build_loss(fn.__name__, scale=0.5, reduction="sum")
    _assert_same(module(x, y), fn(x, y, 0.5, reduction="sum"))
    assert "scale=0.5" in repr(module)
    _assert_same(losskit.RobustLoss(alpha=alpha, scale=0.5)(x, y), fn(x, y, 0.5))
    assert fn.__doc__ and fn.__name__ in fn.__doc__


def test_robust_half_precision_and_large_errors():
    x = torch.tensor([1e4, -3.0, 0.0], dtype=torch.float16, requires_grad=True)
    y = torch.zeros(3, dtype=torch.float16)
    for alpha in (2.0, 1.0, 0.0, -2.0, -math.inf, 0.5):
        out = LF.robust(x, y, alpha) if alpha != 2.0 else LF.robust(x / 100, y, alpha)
        assert out.dtype == torch.float16 and torch.isfinite(out)
        (g,) = torch.autograd.grad(out, x)
        assert torch.isfinite(g).all()


@pytest.mark.parametrize("alpha", [1.0, 0.0, -2.0, 0.5, -5.0])
def test_robust_errors_beyond_the_square_range_match_float64(alpha):
    """Errors of 1e25 square to 1e50, past float32; ρ itself (≤ ~1e25) fits and is accurate."""
    x = torch.tensor([1e25, -3e22, 5e19, 2.0, 0.0], requires_grad=True)
    y = torch.zeros(5)
    got = LF.robust(x, y, alpha, 1.5, reduction="none")
    x64 = x.detach().double().requires_grad_()
    ref = _barron_reference(x64, alpha, 1.5)
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-7)
    (grad,) = torch.autograd.grad(got.sum(), x)
    (ref_grad,) = torch.autograd.grad(ref.sum(), x64)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=1e-30)


def _pinball_reference(pred, target, taus):
    rows = []
    for n in range(pred.shape[0]):
        row = []
        for q, tau in enumerate(taus):
            e = float(target[n]) - float(pred[n, q])
            row.append(tau * e if e >= 0 else (tau - 1) * e)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64)


def test_quantile_matches_the_pinball_formula():
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randn(7, generator=g, dtype=torch.float64)
    taus = [0.1, 0.5, 0.9]
    ref = _pinball_reference(pred.detach(), target, taus)
    _assert_same(LF.quantile(pred, target, taus, reduction="none"), ref)
    _assert_same(LF.quantile(pred, target, torch.tensor(taus, dtype=torch.float64)), ref.mean())
    _assert_same(LF.quantile(pred, target, taus, reduction="sum"), ref.sum())
    assert gradcheck(lambda a: LF.quantile(a, target, taus), (pred,))
    # tau = 0.5: half the absolute error (no factor 2)
    _assert_same(LF.quantile(pred[:, :1], target, [0.5]), F.l1_loss(pred[:, 0], target) / 2)
    module = losskit.QuantileLoss(quantiles=taus)
    _assert_same(module(pred, target), ref.mean())
    assert "quantiles=[0.1, 0.5, 0.9]" in repr(module)


def test_robust_and_quantile_errors():
    x, y = _pair(3, 2)
    with pytest.raises(ValueError, match=r"robust: expected `scale` in \(0, inf\), got 0.0"):
        LF.robust(x, y, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"`alpha` to be a finite number in \(-inf, inf\)"):
        LF.robust(x, y, math.inf)
    with pytest.raises(TypeError, match=r"RobustLoss: expected `alpha` to be a real number"):
        losskit.RobustLoss(alpha="1")
    with pytest.raises(ValueError, match=r"welsch: expected `target` of the same shape"):
        LF.welsch(x, y[:, :1])
    with pytest.raises(
        ValueError,
        match=r"quantile: expected `target` of shape \(3,\) matching input \(N=3\), got \(3, 2\)",
    ):
        LF.quantile(x, y, [0.1, 0.9])
    with pytest.raises(
        ValueError, match=r"quantile: expected `quantiles` of shape \(2,\) matching input \(Q=2\)"
    ):
        LF.quantile(x, y[:, 0], [0.5])
    with pytest.raises(
        ValueError, match=r"quantile: expected `quantiles` with every level in \(0, 1\)"
    ):
        LF.quantile(x, y[:, 0], [0.0, 0.5])
    with pytest.raises(
        TypeError, match=r"QuantileLoss: expected `quantiles` to be a tensor or a non-empty"
    ):
        losskit.QuantileLoss(quantiles=[])
    with pytest.raises(ValueError, match=r"quantile: expected `input` to be 2-D \(N, Q\)"):
        LF.quantile(x[:, 0], y[:, 0], [0.5])
