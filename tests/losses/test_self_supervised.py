"""Self-supervised losses: values and gradients against lightly's own loss files (loaded from
its wheel), the formulas in float64, gradcheck, identities and every error message."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

import losskit
import losskit.functional as LF
from tests import peers


def _views(b: int = 6, d: int = 4, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(b, d, generator=g, dtype=torch.float64)
    z2 = z1 + 0.5 * torch.randn(b, d, generator=g, dtype=torch.float64)
    return z1.to(dtype).requires_grad_(), z2.to(dtype).requires_grad_()


def _value_and_grads(f, z1, z2):
    a, b = z1.detach().clone().requires_grad_(), z2.detach().clone().requires_grad_()
    out = f(a, b)
    grads = torch.autograd.grad(out, (a, b), allow_unused=True)
    return out.detach(), grads


def _lightly(name: str):
    module, cls = {
        "barlow_twins": ("barlow_twins_loss", "BarlowTwinsLoss"),
        "vicreg": ("vicreg_loss", "VICRegLoss"),
        "dcl": ("dcl_loss", "DCLLoss"),
        "negative_cosine": ("negative_cosine_similarity", "NegativeCosineSimilarity"),
    }[name]
    return getattr(peers.load("lightly", f"lightly.loss.{module}"), cls)


PEER_CASES = {
    "barlow_twins": (lambda a, b: LF.barlow_twins(a, b, 0.01), {"lambda_param": 0.01}),
    "vicreg": (
        lambda a, b: LF.vicreg(a, b, 3.0, 2.0, 0.5),
        {"lambda_param": 3.0, "mu_param": 2.0, "nu_param": 0.5},
    ),
}


@pytest.mark.parametrize("name", sorted(PEER_CASES))
def test_matches_lightly_value_and_gradient(name):
    ours, kwargs = PEER_CASES[name]
    peer = _lightly(name)(**kwargs)
    z1, z2 = _views()
    v_ours, g_ours = _value_and_grads(ours, z1, z2)
    v_peer, g_peer = _value_and_grads(peer, z1, z2)
    torch.testing.assert_close(v_ours, v_peer, rtol=1e-9, atol=1e-9)
    for a, b in zip(g_ours, g_peer):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_negative_cosine_matches_lightly_and_stops_gradient_on_target():
    p, z = _views()
    peer = _lightly("negative_cosine")()
    torch.testing.assert_close(LF.negative_cosine(p, z), peer(p, z))
    (gp, gz) = torch.autograd.grad(LF.negative_cosine(p, z), (p, z), allow_unused=True)
    (gp_peer,) = torch.autograd.grad(peer(p, z.detach()), (p,))
    torch.testing.assert_close(gp, gp_peer)
    assert gz is None
    per = LF.negative_cosine(p, z, reduction="none")
    assert per.shape == (6,)
    torch.testing.assert_close(LF.negative_cosine(p, z, reduction="sum"), per.sum())


def _barlow_formula(z1, z2, lam):
    """The paper's formula written as explicit sums over feature pairs."""
    b, d = z1.shape
    n1 = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + 1e-5)
    n2 = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + 1e-5)
    total = z1.new_zeros(())
    for i in range(d):
        for j in range(d):
            c = sum(n1[k, i] * n2[k, j] for k in range(b)) / b
            total = total + ((1 - c) ** 2 if i == j else lam * c**2)
    return total


def _dcl_formula(z1, z2, t):
    u = z1 / z1.norm(dim=1, keepdim=True)
    v = z2 / z2.norm(dim=1, keepdim=True)
    terms = []
    for x, y in ((u, v), (v, u)):
        for i in range(len(x)):
            neg = [
                torch.exp(x[i] @ x[j] / t) + torch.exp(x[i] @ y[j] / t)
                for j in range(len(x))
                if j != i
            ]
            terms.append(-(x[i] @ y[i]) / t + torch.log(sum(neg)))
    return sum(terms) / len(terms)


def test_dcl_is_lightlys_structure_with_one_log_over_all_negatives():
    # lightly's DCLLoss adds log Σ exp s(u_i, u_j) and log Σ exp s(u_i, v_j); the paper (Eq. 6)
    # and its authors' code take one log over the union of both negative sets. Their difference
    # is exactly log(A·B) − log(A + B) per anchor, which recovers lightly's value from ours.
    z1, z2 = _views()
    peer = _lightly("dcl")(temperature=0.3)(z1, z2)
    u, v = torch.nn.functional.normalize(z1, dim=1), torch.nn.functional.normalize(z2, dim=1)
    off = ~torch.eye(6, dtype=torch.bool)
    gap = []
    for x, y in ((u, v), (v, u)):
        a = torch.logsumexp((x @ x.T / 0.3)[off].view(6, 5), 1)
        b = torch.logsumexp((x @ y.T / 0.3)[off].view(6, 5), 1)
        gap.append(a + b - torch.logaddexp(a, b))
    torch.testing.assert_close(LF.dcl(z1, z2, 0.3) + 0.5 * sum(g.mean() for g in gap), peer)


def test_barlow_twins_and_dcl_match_the_formulas():
    z1, z2 = _views(5, 3)
    torch.testing.assert_close(LF.barlow_twins(z1, z2, 0.2), _barlow_formula(z1, z2, 0.2))
    torch.testing.assert_close(LF.dcl(z1, z2, 0.5), _dcl_formula(z1, z2, 0.5))


@pytest.mark.parametrize(
    "f",
    [
        lambda a, b: LF.barlow_twins(a, b, 0.1),
        lambda a, b: LF.vicreg(a, b),
        lambda a, b: LF.dcl(a, b, 0.5),
    ],
)
def test_gradcheck(f):
    z1, z2 = _views(5, 3)
    assert gradcheck(f, (z1, z2))
    assert gradcheck(lambda p: LF.negative_cosine(p, z2), (z1,))


def test_identities():
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    # Barlow Twins: identical views with uncorrelated standardised features give C = I.
    assert float(LF.barlow_twins(z, z)) == pytest.approx(0.0, abs=1e-4)
    # VICReg with only the invariance term is the MSE between the views.
    z1, z2 = _views()
    mse = torch.nn.functional.mse_loss(z1, z2)
    torch.testing.assert_close(LF.vicreg(z1, z2, 1.0, 0.0, 0.0), mse)
    # Negative cosine of a view with itself is −1 per sample.
    torch.testing.assert_close(LF.negative_cosine(z1, z1), z1.new_tensor(-1.0))


def test_gather_is_a_no_op_without_a_process_group():
    z1, z2 = _views()
    for f in (LF.barlow_twins, LF.vicreg, LF.dcl):
        torch.testing.assert_close(f(z1, z2, gather_distributed=True), f(z1, z2))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_finite_and_keeps_dtype(dtype):
    z1, z2 = _views(dtype=dtype)
    for f in (LF.barlow_twins, LF.vicreg, LF.dcl, LF.negative_cosine):
        out = f(z1, z2)
        assert out.dtype == dtype and torch.isfinite(out)
        (g,) = torch.autograd.grad(out.float(), (z1,))
        assert torch.isfinite(g).all()


def test_modules_call_the_functions():
    z1, z2 = _views()
    pairs = [
        (losskit.BarlowTwinsLoss(lambda_=0.02), LF.barlow_twins(z1, z2, 0.02)),
        (
            losskit.VICRegLoss(sim_weight=1.0, var_weight=2.0, cov_weight=3.0),
            LF.vicreg(z1, z2, 1.0, 2.0, 3.0),
        ),
        (losskit.DCLLoss(temperature=0.2), LF.dcl(z1, z2, 0.2)),
        (losskit.NegativeCosineLoss(reduction="sum"), LF.negative_cosine(z1, z2, reduction="sum")),
    ]
    for module, expected in pairs:
        torch.testing.assert_close(module(z1, z2), expected)
    assert "gather_distributed=False" in repr(losskit.DCLLoss())


def test_errors():
    z1, z2 = _views()
    with pytest.raises(
        ValueError,
        match=r"barlow_twins: expected `z2` of the same shape as `z1` \(6, 4\), got \(6, 3\)",
    ):
        LF.barlow_twins(z1, z2[:, :3])
    with pytest.raises(
        ValueError, match=r"vicreg: expected `z1` to be 2-D \(B, D\), got shape \(6,\)"
    ):
        LF.vicreg(z1[:, 0], z2[:, 0])
    with pytest.raises(ValueError, match=r"dcl: expected `z1` with at least 2 rows"):
        LF.dcl(z1[:1], z2[:1])
    with pytest.raises(ValueError, match=r"dcl: expected `temperature` in \(0, inf\)"):
        LF.dcl(z1, z2, 0.0)
    with pytest.raises(ValueError, match=r"barlow_twins: expected `lambda_` in \[0, inf\)"):
        LF.barlow_twins(z1, z2, -1.0)
    with pytest.raises(TypeError, match=r"vicreg: expected `gather_distributed` to be a bool"):
        LF.vicreg(z1, z2, gather_distributed=1)
    with pytest.raises(TypeError, match=r"negative_cosine: expected `p` to be a floating-point"):
        LF.negative_cosine(z1.long(), z2)
    with pytest.raises(ValueError, match=r"VICRegLoss: expected `cov_weight` in \[0, inf\)"):
        losskit.VICRegLoss(cov_weight=-1.0)
