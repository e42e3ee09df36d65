"""The overflow-safe norms of ``losskit._scaled`` against torch and float64."""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn.functional as F

import losskit._scaled as scaled_module
from losskit._scaled import l2_normalize, pow2_scale, scaled_vector_norm


def test_doctests():
    assert doctest.testmod(scaled_module).failed == 0


def test_pow2_scale_is_a_power_of_two_near_the_peak():
    x = torch.tensor([[3.0, -40.0], [0.0, 0.0], [1e-30, 0.0], [float("inf"), 1.0], [1.0, 0.5]])
    s = pow2_scale(x, dim=1)
    assert s.squeeze(1).tolist() == [32.0, 1.0, 2.0**-100, 1.0, 1.0]
    assert pow2_scale(torch.zeros(0, 3), dim=0).shape == (1, 3)
    assert float(pow2_scale(torch.zeros(0, 3))) == 1.0
    assert float(pow2_scale(torch.tensor([[3e20, 1.0]]))) == 2.0**68
    assert not pow2_scale(torch.ones(2, requires_grad=True)).requires_grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_l2_normalize_is_f_normalize_bit_for_bit_in_its_range(dtype):
    torch.manual_seed(0)
    x = torch.randn(64, 7, dtype=dtype) * torch.logspace(-3, 3, 64, dtype=dtype).unsqueeze(1)
    x[3] = 0.0
    x[5] = 1e-14  # below eps: x / eps
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, ref = l2_normalize(a, dim=1), F.normalize(b, dim=1)
    assert torch.equal(ours, ref)
    weights = torch.randn_like(x)
    (ga,) = torch.autograd.grad((ours * weights).sum(), a)
    (gb,) = torch.autograd.grad((ref * weights).sum(), b)
    torch.testing.assert_close(ga, gb, rtol=1e-6 if dtype == torch.float32 else 1e-13, atol=0.0)


@pytest.mark.parametrize(
    ("dtype", "scale", "tol"),
    [(torch.float32, 1e30, 1e-6), (torch.bfloat16, 1e30, 1e-2), (torch.float16, 6e3, 2e-3)],
    ids=str,
)
def test_l2_normalize_at_large_norms_matches_float64(dtype, scale, tol):
    torch.manual_seed(0)
    x = (torch.randn(8, 5, dtype=torch.float64) * scale).to(dtype).requires_grad_()
    if dtype != torch.float16:  # the collapse guarded against: ‖x‖² = inf, so x / ‖x‖ = 0
        assert float(F.normalize(x.detach(), dim=1).abs().max()) == 0.0
    ours = l2_normalize(x, dim=1)
    x64 = x.detach().double().requires_grad_()
    ref = F.normalize(x64, dim=1)
    torch.testing.assert_close(ours.double(), ref, rtol=tol, atol=tol)
    w = torch.randn(8, 5, dtype=torch.float64)
    (g,) = torch.autograd.grad((ours * w.to(dtype)).sum(), x)
    (g64,) = torch.autograd.grad((ref * w).sum(), x64)
    assert torch.isfinite(g).all()
    assert float((g.double() - g64).norm() / g64.norm()) < 5 * tol


@pytest.mark.parametrize("ord", [1.0, 2.0, 3.0, float("inf")])
def test_scaled_vector_norm_matches_float64_beyond_the_square_range(ord):
    torch.manual_seed(0)
    x = (torch.randn(6, 4, dtype=torch.float64) * 1e25).float().requires_grad_()
    ours = scaled_vector_norm(x, ord=ord, dim=1)
    x64 = x.detach().double().requires_grad_()
    ref = torch.linalg.vector_norm(x64, ord=ord, dim=1)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=0.0)
    (g,) = torch.autograd.grad(ours.sum(), x)
    (g64,) = torch.autograd.grad(ref.sum(), x64)
    torch.testing.assert_close(g.double(), g64, rtol=1e-4, atol=1e-30)


def test_scaled_vector_norm_zero_vector_has_zero_gradient():
    x = torch.zeros(2, 3, requires_grad=True)
    value = scaled_vector_norm(x, dim=1)
    (g,) = torch.autograd.grad(value.sum(), x)
    assert value.tolist() == [0.0, 0.0] and torch.equal(g, torch.zeros(2, 3))
