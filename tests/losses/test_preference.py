"""Preference losses against their closed forms, the papers' limits and torch autograd."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

import losskit
import losskit.functional as LF


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def _logps(batch=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [-(torch.rand(batch, dtype=torch.float64, generator=g) * 5 + 0.1) for _ in range(4)]


# A hand point: log-ratio of the chosen answer 1, of the rejected one −1, so h = 2.
POINT = [torch.tensor([v], dtype=torch.float64) for v in (-1.0, -3.0, -2.0, -2.0)]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"beta": 0.5}, _softplus(-1.0)),  # −log σ(βh), βh = 1
        ({"beta": 0.5, "label_smoothing": 0.2}, 0.8 * _softplus(-1.0) + 0.2 * _softplus(1.0)),
        ({"beta": 0.25, "loss_type": "hinge"}, 0.5),  # max(0, 1 − 0.5)
        ({"beta": 0.5, "loss_type": "hinge"}, 0.0),
        ({"beta": 0.5, "loss_type": "ipo"}, 1.0),  # (2 − 1/(2·0.5))²
        (
            {"beta": 0.5, "loss_type": "robust", "label_smoothing": 0.2},
            (0.8 * _softplus(-1.0) - 0.2 * _softplus(1.0)) / 0.6,
        ),
    ],
)
def test_dpo_closed_forms(kwargs, expected):
    assert float(LF.dpo(*POINT, **kwargs)) == pytest.approx(expected, rel=1e-12)


def test_dpo_limits_and_rewards():
    pc, pr, rc, rr = _logps()
    for beta in (1e-8, 1e-6):  # β → 0: the sigmoid loss tends to log 2
        assert float(LF.dpo(pc, pr, rc, rr, beta=beta)) == pytest.approx(math.log(2), abs=1e-5)
    # Equal log-ratios: log 2 whatever β.
    assert float(LF.dpo(pc, pc, rc, rc, beta=3.0)) == pytest.approx(math.log(2), rel=1e-12)
    loss, chosen, rejected = LF.dpo(pc, pr, rc, rr, beta=0.3, return_rewards=True)
    torch.testing.assert_close(chosen, 0.3 * (pc - rc))
    torch.testing.assert_close(rejected, 0.3 * (pr - rr))
    assert not chosen.requires_grad and loss.dim() == 0


def test_ipo_minimum_at_target_margin():
    beta = 0.2
    margin = torch.tensor([1.0 / (2 * beta)], dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(1, dtype=torch.float64)
    loss = LF.dpo(margin, zero, zero, zero, beta=beta, loss_type="ipo")
    (grad,) = torch.autograd.grad(loss, margin)
    assert loss.item() == 0.0 and grad.item() == 0.0


def test_robust_dpo_is_unbiased_under_label_flips():
    # E over flips of rate ε of the robust loss equals the clean DPO loss (Chowdhury et al.).
    pc, pr, rc, rr = _logps()
    eps, beta = 0.3, 0.7
    kw = {"beta": beta, "loss_type": "robust", "label_smoothing": eps, "reduction": "none"}
    flipped = LF.dpo(pr, pc, rr, rc, **kw)
    expected = (1 - eps) * LF.dpo(pc, pr, rc, rr, **kw) + eps * flipped
    torch.testing.assert_close(expected, LF.dpo(pc, pr, rc, rr, beta=beta, reduction="none"))


@pytest.mark.parametrize("loss_type", ("sigmoid", "hinge", "ipo", "robust"))
def test_dpo_gradcheck(loss_type):
    smoothing = 0.1 if loss_type in ("sigmoid", "robust") else 0.0
    inputs = [x.requires_grad_() for x in _logps()]
    assert gradcheck(
        lambda *x: LF.dpo(*x, beta=0.4, loss_type=loss_type, label_smoothing=smoothing), inputs
    )


def test_simpo_closed_form_and_limits():
    pc, pr = torch.tensor([-6.0], dtype=torch.float64), torch.tensor([-12.0], dtype=torch.float64)
    nc, nr = torch.tensor([3]), torch.tensor([4])
    # β/|y_w|·log π_w − β/|y_l|·log π_l − γ = 2·(−2) − 2·(−3) − 0.5 = 1.5
    assert float(LF.simpo(pc, pr, nc, nr)) == pytest.approx(_softplus(-1.5), rel=1e-12)
    # Equal normalised log-probabilities: softplus(γ).
    same = LF.simpo(pc, pc * 4 / 3, nc, nr, gamma=0.7)
    assert float(same) == pytest.approx(_softplus(0.7), rel=1e-12)
    _, chosen, rejected = LF.simpo(pc, pr, nc, nr, return_rewards=True)
    assert float(chosen) == pytest.approx(-4.0) and float(rejected) == pytest.approx(-6.0)
    inputs = [x.requires_grad_() for x in _logps()[:2]]
    lengths = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([5, 4, 3, 2, 1])
    assert gradcheck(lambda a, b: LF.simpo(a, b, *lengths), inputs)


def _log_odds(lp: float) -> float:
    return lp - math.log(1 - math.exp(lp))


def test_orpo_closed_form_and_stability():
    pc, pr = torch.tensor([-0.5], dtype=torch.float64), torch.tensor([-2.0], dtype=torch.float64)
    expected = 0.5 + 0.1 * _softplus(-(_log_odds(-0.5) - _log_odds(-2.0)))
    assert float(LF.orpo(pc, pr)) == pytest.approx(expected, rel=1e-12)
    # Near p = 1 (log p → 0⁻) and very unlikely answers the odds stay finite.
    extreme = LF.orpo(torch.tensor([-1e-7]), torch.tensor([-80.0]), lambda_=1.0)
    assert torch.isfinite(extreme)
    inputs = [x.requires_grad_() for x in _logps()[:2]]
    assert gradcheck(lambda a, b: LF.orpo(a, b, lambda_=0.5), inputs)


def test_kto_closed_form_reference_point_and_weights():
    pc, pr = torch.tensor([-1.0, -2.0], dtype=torch.float64), torch.tensor([-4.0])
    rc, rr = torch.tensor([-2.0, -2.0], dtype=torch.float64), torch.tensor([-3.0])
    pr, rr = pr.double(), rr.double()
    # log-ratios: chosen (1, 0), rejected (−1); z₀ = max(0, mean(1, 0, −1)) = 0.
    beta, wd, wu = 0.5, 2.0, 1.5
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = (wd * (1 - sig(0.5)) + wd * (1 - sig(0.0)) + wu * (1 - sig(0.5))) / 3
    loss = LF.kto(pc, pr, rc, rr, beta=beta, desirable_weight=wd, undesirable_weight=wu)
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    # A given KL estimate sets z₀ (clamped at 0) and is detached.
    kl = torch.tensor([0.4, 0.8], dtype=torch.float64, requires_grad=True)
    loss = LF.kto(pc, pr, rc, rr, beta=beta, kl_log_ratios=kl)
    z0 = 0.6
    expected = (1 - sig(beta * (1 - z0))) + (1 - sig(-beta * z0)) + (1 - sig(beta * (z0 + 1)))
    assert float(loss) == pytest.approx(expected / 3, rel=1e-12)
    assert not loss.requires_grad  # the estimate is detached
    # Unpaired: no undesirable answer at all.
    only = LF.kto(pc, pr[:0], rc, rr[:0], beta=beta, reduction="none")
    assert only.shape == (2,)
    inputs = [x.requires_grad_() for x in _logps()]
    assert gradcheck(lambda *x: LF.kto(*x, beta=0.3), inputs)


def test_modules_match_functions():
    pc, pr, rc, rr = _logps()
    lengths = torch.tensor([2, 3, 4, 5, 6])
    cases = [
        ("dpo", {"beta": 0.2, "loss_type": "robust", "label_smoothing": 0.1}, (pc, pr, rc, rr)),
        ("simpo", {"beta": 2.5, "gamma": 1.0}, (pc, pr, lengths, lengths)),
        ("orpo", {"lambda_": 0.3}, (pc / 10, pr / 10)),
        ("kto", {"beta": 0.2, "undesirable_weight": 2.0}, (pc, pr, rc, rr)),
    ]
    for name, kwargs, args in cases:
        module = losskit.build_loss(name, return_rewards=True, **kwargs)
        for a, b in zip(module(*args), getattr(LF, name)(*args, return_rewards=True, **kwargs)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x: LF.dpo(x, x, x, x, beta=0.0), ValueError, r"`beta` in \(0, inf\)"),
        (lambda x: LF.dpo(x, x, x, x, loss_type="sigmod"), ValueError, "did you mean 'sigmoid'"),
        (
            lambda x: LF.dpo(x, x, x, x, loss_type="ipo", label_smoothing=0.1),
            ValueError,
            "`label_smoothing` 0.0 for loss_type='ipo'",
        ),
        (
            lambda x: LF.dpo(x, x, x, x, loss_type="robust", label_smoothing=0.5),
            ValueError,
            r"`label_smoothing` in \[0, 0.5\)",
        ),
        (lambda x: LF.dpo(x, x[:2], x, x), ValueError, "`policy_rejected` of the same shape"),
        (lambda x: LF.dpo(x[None], x[None], x, x), ValueError, r"`policy_chosen` of shape \(B,\)"),
        (lambda x: LF.simpo(x, x, torch.zeros(3), torch.ones(3)), ValueError, "`chosen_lengths`"),
        (lambda x: LF.orpo(-x, x), ValueError, "`policy_chosen` with values in"),
        (lambda x: LF.kto(x[:0], x[:0], x[:0], x[:0]), ValueError, "at least one answer"),
        (lambda x: LF.kto(x, x, x[:1], x), ValueError, "`reference_chosen` of the same shape"),
        (lambda x: LF.dpo(x.long(), x, x, x), TypeError, "floating-point"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(-torch.rand(3) - 0.1)
