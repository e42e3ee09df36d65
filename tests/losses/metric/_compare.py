"""Value-and-gradient comparison shared by the metric-loss tests."""

from __future__ import annotations

import torch

TOL = {"rtol": 1e-6, "atol": 1e-6}


def value_and_grads(fn, *inputs):
    """``fn``'s output and the gradients of its sum with respect to fresh copies of ``inputs``."""
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    out.sum().backward()
    return out.detach(), [x.grad for x in leaves]


def assert_same(fn1, fn2, *inputs):
    """``fn1`` and ``fn2`` agree in value and gradient on ``inputs`` (float64 tolerance)."""
    v1, g1 = value_and_grads(fn1, *inputs)
    v2, g2 = value_and_grads(fn2, *inputs)
    torch.testing.assert_close(v1, v2, **TOL)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, **TOL)
