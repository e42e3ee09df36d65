"""Distillation losses against F.kl_div compositions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import losskit
import losskit.functional as LF


def _logits(shape=(3, 4, 11), seed=0):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(*shape, dtype=torch.float64, generator=g).requires_grad_()
    teacher = torch.randn(*shape, dtype=torch.float64, generator=g) * 2
    targets = torch.randint(0, shape[-1], shape[:-1], generator=g)
    targets.view(-1)[::3] = -100
    return student, teacher, targets


def _kl_rows(log_p, log_q):
    """KL(P ‖ Q) per row, by torch's own kl_div (input = log Q, target = log P)."""
    return F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1)


@pytest.mark.parametrize("direction", ("forward", "reverse"))
@pytest.mark.parametrize("temperature", (1.0, 2.5))
def test_kl_matches_kl_div_batchmean(direction, temperature):
    s, t, _ = _logits(shape=(6, 9))
    ls, lt = F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1)
    pair = (lt, ls) if direction == "forward" else (ls, lt)
    ref = F.kl_div(pair[1], pair[0], log_target=True, reduction="batchmean") * temperature**2
    ours = LF.kl_divergence(s, t, temperature=temperature, direction=direction)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, s)[0], torch.autograd.grad(ref, s)[0])


@pytest.mark.parametrize("reduction", ("mean", "sum", "none"))
def test_kl_ignore_index_counts_valid_tokens(reduction):
    s, t, y = _logits()
    ours = LF.kl_divergence(s, t, temperature=2.0, targets=y, reduction=reduction)
    rows = _kl_rows(F.log_softmax(t / 2, -1), F.log_softmax(s / 2, -1)) * 4
    rows = torch.where(y != -100, rows, 0.0)
    ref = {"none": rows, "sum": rows.sum(), "mean": rows.sum() / (y != -100).sum()}[reduction]
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("beta", (0.5, 0.1, 0.9))
def test_jsd_matches_mixture_composition(beta):
    s, t, y = _logits()
    ps, pt = F.softmax(s / 1.5, -1), F.softmax(t / 1.5, -1)
    log_m = torch.log(beta * pt + (1 - beta) * ps)
    rows = beta * _kl_rows(pt.log(), log_m) + (1 - beta) * _kl_rows(ps.log(), log_m)
    ref = torch.where(y != -100, rows, 0.0).sum() / (y != -100).sum()
    ours = LF.jsd(s, t, beta=beta, temperature=1.5, targets=y)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, s)[0], torch.autograd.grad(ref, s)[0])


def test_jsd_identities():
    s, t, _ = _logits()
    sym = LF.jsd(s, t, reduction="none")
    torch.testing.assert_close(sym, LF.jsd(t, s, reduction="none"))  # β = ½ is symmetric
    assert bool((sym <= math.log(2) + 1e-12).all() and (sym >= 0).all())
    assert LF.jsd(s, s.detach()).item() == pytest.approx(0.0, abs=1e-12)
    # Swapping the roles swaps β.
    torch.testing.assert_close(LF.jsd(s, t, beta=0.2), LF.jsd(t, s, beta=0.8))


@pytest.mark.parametrize("dtype", (torch.float16, torch.bfloat16))
def test_half_precision_finite(dtype):
    s, t, y = _logits()
    s16 = (s.detach() * 30).to(dtype).requires_grad_()  # very peaked distributions
    t16 = (t.detach() * 30).to(dtype)
    for fn in (LF.kl_divergence, LF.jsd):
        out = fn(s16, t16, targets=y)
        out.backward()
        assert out.dtype == dtype and torch.isfinite(out) and torch.isfinite(s16.grad).all()
        ref = fn(s16.detach().double(), t16.double(), targets=y)
        torch.testing.assert_close(out.double(), ref, rtol=1e-2, atol=1e-2)
        s16.grad = None


def test_all_ignored_is_zero_and_connected():
    s, t, y = _logits()
    for fn in (LF.kl_divergence, LF.jsd):
        out = fn(s, t, targets=torch.full_like(y, -100))
        assert out.item() == 0.0 and out.requires_grad


def test_gradcheck_and_modules():
    s, t, y = _logits(shape=(2, 3, 5))
    assert gradcheck(lambda a: LF.kl_divergence(a, t, temperature=2.0, targets=y), [s])
    assert gradcheck(lambda a: LF.kl_divergence(a, t, direction="reverse"), [s])
    assert gradcheck(lambda a: LF.jsd(a, t, beta=0.3, targets=y), [s])
    kl = losskit.build_loss("kl_divergence", temperature=2.0, direction="reverse")
    torch.testing.assert_close(
        kl(s, t, y), LF.kl_divergence(s, t, temperature=2.0, direction="reverse", targets=y)
    )
    js = losskit.JSDLoss(beta=0.3, reduction="sum")
    torch.testing.assert_close(js(s, t), LF.jsd(s, t, beta=0.3, reduction="sum"))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s, t: LF.kl_divergence(s, t[:1]), ValueError, "`teacher_logits` of the same"),
        (lambda s, t: LF.kl_divergence(s, t, temperature=0), ValueError, "`temperature`"),
        (lambda s, t: LF.kl_divergence(s, t, direction="back"), ValueError, "`direction`"),
        (
            lambda s, t: LF.kl_divergence(s, t, targets=torch.zeros(3, dtype=torch.long)),
            ValueError,
            "`targets` of shape",
        ),
        (lambda s, t: LF.jsd(s, t, beta=1.0), ValueError, r"`beta` in \(0, 1\)"),
        (lambda s, t: LF.jsd(s.long(), t), TypeError, "floating-point"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(torch.randn(2, 4), torch.randn(2, 4))
