"""Loss weighting: fixed combinations, uncertainty weighting, GradNorm and the curriculum."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import losskit
from losskit import CombinedLoss, CurriculumLoss, GradNorm, UncertaintyWeighting
from losskit.functional import task_gradient_norms

# ----------------------------------------------------------------------------- CombinedLoss


class _Scaled(nn.Module):
    """A loss module with a parameter, to check that parts are registered."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0, dtype=torch.float64))

    def forward(self, pred, target):
        return self.scale * F.l1_loss(pred, target)


def test_combined_loss_total_parts_and_gradient():
    pred = torch.randn(6, dtype=torch.float64, requires_grad=True)
    target = torch.randn(6, dtype=torch.float64)
    scaled = _Scaled()
    loss = CombinedLoss({"mse": (F.mse_loss, 0.3), "l1": (scaled, 1.5)})
    total, parts = loss(pred, target)
    expected = 0.3 * F.mse_loss(pred, target) + 1.5 * scaled(pred, target)
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(parts["mse"], F.mse_loss(pred, target).detach())
    torch.testing.assert_close(parts["l1"], scaled(pred, target).detach())
    assert list(parts) == ["mse", "l1"] and not any(v.requires_grad for v in parts.values())
    (g,) = torch.autograd.grad(total, pred)
    (g_ref,) = torch.autograd.grad(expected, pred)
    torch.testing.assert_close(g, g_ref)
    assert list(loss.parameters()) == [scaled.scale]  # module parts are submodules
    assert "mse=0.3, l1=1.5" in repr(loss)


def test_combined_loss_convex_and_registry():
    loss = CombinedLoss.convex(("ce", F.cross_entropy), ("focal", F.cross_entropy), 0.7)
    assert loss.weights == {"ce": 0.7, "focal": pytest.approx(0.3)}
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    total, _ = loss(logits, labels)
    torch.testing.assert_close(total, F.cross_entropy(logits, labels))
    built = losskit.build_loss("combined", parts={"a": (F.mse_loss, 1.0)})
    assert isinstance(built, CombinedLoss)


def test_combined_loss_errors():
    with pytest.raises(ValueError, match=r"CombinedLoss: expected `parts` a non-empty mapping"):
        CombinedLoss({})
    with pytest.raises(ValueError, match=r"expected `parts\['a'\]` a \(loss, weight\) pair"):
        CombinedLoss({"a": F.mse_loss})
    with pytest.raises(TypeError, match=r"expected `parts\['a'\]` a callable loss, got int"):
        CombinedLoss({"a": (3, 1.0)})
    with pytest.raises(ValueError, match=r"expected `parts\['a'\] weight` in \[0, inf\)"):
        CombinedLoss({"a": (F.mse_loss, -1.0)})
    with pytest.raises(ValueError, match=r"expected `parts` names that are non-empty strings"):
        CombinedLoss({"a.b": (F.mse_loss, 1.0)})
    with pytest.raises(
        ValueError, match=r"CombinedLoss.convex: expected `lam` in \[0, 1\], got 1.5"
    ):
        CombinedLoss.convex(("a", F.mse_loss), ("b", F.l1_loss), 1.5)
    per_element = CombinedLoss({"a": (lambda p, t: (p - t) ** 2, 1.0)})
    with pytest.raises(ValueError, match=r"expected `part 'a'` to return a scalar"):
        per_element(torch.zeros(3), torch.ones(3))


# ----------------------------------------------------------------------------- uncertainty


def test_uncertainty_weighting_formula_and_gradient():
    weighting = UncertaintyWeighting(3, init_log_var=0.2)
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([0.5, -1.0, 2.0]))
    losses = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    value = weighting(losses)
    s = torch.tensor([0.5, -1.0, 2.0])
    assert value.item() == pytest.approx((torch.exp(-s) * losses + s).sum().item())
    value.backward()
    torch.testing.assert_close(losses.grad, torch.exp(-s))
    torch.testing.assert_close(weighting.log_vars.grad, 1 - torch.exp(-s) * losses.detach())
    torch.testing.assert_close(weighting.weights, torch.exp(-s))
    same = weighting([torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0)])
    torch.testing.assert_close(same, value.detach())


def test_uncertainty_weighting_optimum_is_log_loss():
    fixed = torch.tensor([0.5, 2.0, 8.0])
    weighting = UncertaintyWeighting(3)
    optimiser = torch.optim.Adam(weighting.parameters(), lr=0.05)
    for _ in range(400):
        optimiser.zero_grad()
        weighting(fixed).backward()
        optimiser.step()
    torch.testing.assert_close(weighting.log_vars.detach(), fixed.log(), atol=1e-3, rtol=0)
    torch.testing.assert_close(weighting.weights, 1 / fixed, atol=1e-3, rtol=1e-3)


def test_uncertainty_weighting_errors():
    with pytest.raises(
        ValueError, match=r"UncertaintyWeighting: expected `num_tasks` to be an integer >= 1"
    ):
        UncertaintyWeighting(0)
    weighting = UncertaintyWeighting(2)
    with pytest.raises(ValueError, match=r"expected `task_losses` 2 losses \(num_tasks\), got 3"):
        weighting(torch.ones(3))
    with pytest.raises(ValueError, match=r"expected `task_losses` a 1-D tensor \(K,\)"):
        weighting(torch.ones(2, 1))
    with pytest.raises(ValueError, match=r"expected `task_losses` scalar losses"):
        weighting([torch.ones(2), torch.ones(2)])
    with pytest.raises(TypeError, match=r"expected `task_losses` a sequence of scalar tensors"):
        weighting(3.0)


# ----------------------------------------------------------------------------- GradNorm


def test_task_gradient_norms_match_autograd():
    shared = nn.Linear(4, 3).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    h = shared(x)
    losses = [h[:, 0].pow(2).mean(), h.sum(), 3 * h[:, 2].abs().mean()]
    norms = task_gradient_norms(losses, shared.parameters())
    for i, loss in enumerate(losses):
        gw, gb = torch.autograd.grad(loss, list(shared.parameters()), retain_graph=True)
        expected = torch.sqrt(gw.pow(2).sum() + gb.pow(2).sum())
        torch.testing.assert_close(norms[i], expected)
    assert not norms.requires_grad
    sum(losses).backward()  # the graph is still usable afterwards


def test_gradnorm_step_matches_the_paper_formulas():
    """One step against Algorithm 1 written out, with G_i differentiated through the gradient."""
    torch.manual_seed(0)
    shared = nn.Linear(4, 3).double()
    x = torch.randn(8, 4, dtype=torch.float64)
    gradnorm = GradNorm(3, alpha=0.8)
    with torch.no_grad():
        gradnorm.weights.copy_(torch.tensor([0.5, 1.2, 1.3]))
        gradnorm.initial_losses.copy_(torch.tensor([2.0, 1.0, 4.0]))

    def task_losses():
        h = torch.tanh(shared(x))
        return [h[:, 0].pow(2).mean(), (h[:, 1] - 1).pow(2).mean(), 5 * h[:, 2].abs().mean()]

    losses = task_losses()
    out = gradnorm(losses, [shared.weight])
    value_ref = sum(w * loss for w, loss in zip(gradnorm.weights.detach(), losses))
    torch.testing.assert_close(out, value_ref)  # its value is the weighted task loss

    # Reference: G_i = ‖∇_W (w_i L_i)‖ with create_graph, target detached, L1 loss.
    w = gradnorm.weights.detach().double().requires_grad_()
    ref_losses = task_losses()
    g = torch.stack(
        [
            torch.autograd.grad(w[i] * ref_losses[i], shared.weight, create_graph=True)[0].norm()
            for i in range(3)
        ]
    )
    ratio = torch.stack([loss.detach() for loss in ref_losses]) / gradnorm.initial_losses.double()
    target = (g.mean() * (ratio / ratio.mean()) ** 0.8).detach()
    (grad_w_ref,) = torch.autograd.grad((g - target).abs().sum(), w)

    params = list(shared.parameters())
    grads = torch.autograd.grad(out, [gradnorm.weights, *params])
    torch.testing.assert_close(grads[0].double(), grad_w_ref)
    net_ref = torch.autograd.grad(sum(w.detach()[i] * ref_losses[i] for i in range(3)), params)
    for a, b in zip(grads[1:], net_ref):  # the network only sees Σ w_i L_i
        torch.testing.assert_close(a, b)


def test_gradnorm_update_records_initial_losses_once_and_renormalises():
    gradnorm = GradNorm(3)
    assert torch.isnan(gradnorm.initial_losses).all()
    with torch.no_grad():
        gradnorm.weights.copy_(torch.tensor([2.0, -1.0, 4.0]))
    gradnorm.update([torch.tensor(3.0), torch.tensor(2.0), torch.tensor(1.0)])
    torch.testing.assert_close(gradnorm.initial_losses, torch.tensor([3.0, 2.0, 1.0]))
    assert gradnorm.weights.sum().item() == pytest.approx(3.0)
    assert (gradnorm.weights > 0).all()  # a negative weight is clamped to a small floor
    gradnorm.update(torch.tensor([9.0, 9.0, 9.0]))
    torch.testing.assert_close(gradnorm.initial_losses, torch.tensor([3.0, 2.0, 1.0]))
    assert "initial_losses" in gradnorm.state_dict()


def test_gradnorm_balances_a_task_scaled_by_100():
    """Chen et al. §3: the task with the ×100 loss (and gradients) gets its weight cut."""
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    y = torch.cat([x @ torch.randn(8, 1) for _ in range(3)], dim=1) + 0.1 * torch.randn(64, 3)
    trunk = nn.Sequential(nn.Linear(8, 16), nn.Tanh())
    shared = nn.Linear(16, 16)
    heads = nn.ModuleList(nn.Linear(16, 1) for _ in range(3))
    scale = torch.tensor([100.0, 1.0, 1.0])
    gradnorm = GradNorm(3, alpha=1.5)
    model_params = [*trunk.parameters(), *shared.parameters(), *heads.parameters()]
    optimiser = torch.optim.Adam(
        [{"params": model_params, "lr": 1e-2}, {"params": gradnorm.parameters(), "lr": 0.025}]
    )

    def task_losses():
        h = torch.tanh(shared(trunk(x)))
        return [scale[i] * F.mse_loss(heads[i](h).squeeze(1), y[:, i]) for i in range(3)]

    def spread(losses):
        g = gradnorm.weights.detach() * task_gradient_norms(losses, [shared.weight])
        return (g.max() / g.min()).item()

    first_spread = spread(task_losses())
    for _ in range(60):
        losses = task_losses()
        loss = gradnorm(losses, [shared.weight])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        gradnorm.update(losses)
        assert gradnorm.weights.sum().item() == pytest.approx(3.0)
    w = gradnorm.weights.detach()
    assert w[0] < 0.5 and (w[1:] > 1.0).all()
    assert first_spread > 50 and spread(task_losses()) < first_spread / 10


def test_gradnorm_errors():
    with pytest.raises(ValueError, match=r"GradNorm: expected `alpha` in \[0, inf\)"):
        GradNorm(2, alpha=-1.0)
    with pytest.raises(TypeError, match=r"GradNorm: expected `num_tasks` to be an integer"):
        GradNorm(2.0)
    w = torch.ones(3, requires_grad=True)
    other = torch.ones(3, requires_grad=True)
    gradnorm = GradNorm(2)
    with pytest.raises(
        ValueError, match=r"expected `task_losses\[1\]` to depend on `shared_parameters`"
    ):
        gradnorm([w.sum(), other.sum()], [w])
    with pytest.raises(
        ValueError, match=r"expected `shared_parameters` parameters that require grad"
    ):
        gradnorm([w.sum(), w.sum()], [torch.ones(3)])
    with pytest.raises(ValueError, match=r"expected `shared_parameters` at least one parameter"):
        gradnorm([w.sum(), w.sum()], [])
    with pytest.raises(ValueError, match=r"GradNorm.update: expected `task_losses` 2 losses"):
        gradnorm.update([w.sum()])


# ----------------------------------------------------------------------------- curriculum


def _absolute(pred, target):
    return (pred - target).abs()


def test_curriculum_masks_hard_samples_and_grows_with_the_epoch():
    pred = torch.tensor([0.5, 1.5, 3.0, 6.0], requires_grad=True)
    target = torch.zeros(4)
    curriculum = CurriculumLoss(_absolute, threshold=1.0, growth=2.0)
    value = curriculum(pred, target)
    assert value.item() == 0.5  # only the 0.5 sample is within λ(0) = 1
    value.backward()
    assert pred.grad.tolist() == [1.0, 0.0, 0.0, 0.0]
    expected = {1: (0.5 + 1.5) / 2, 2: (0.5 + 1.5 + 3.0) / 3, 3: (0.5 + 1.5 + 3.0 + 6.0) / 4}
    for epoch, mean in expected.items():
        curriculum.set_epoch(epoch)  # λ = 2, 4, 8
        assert curriculum.current_threshold() == 2.0**epoch
        assert curriculum(pred, target).item() == pytest.approx(mean)
    assert curriculum.state_dict()["epoch"].item() == 3


def test_curriculum_reductions_and_nothing_selected():
    pred = torch.tensor([0.5, 3.0], requires_grad=True)
    target = torch.zeros(2)
    none = CurriculumLoss(_absolute, reduction="none")(pred, target)
    assert none.tolist() == [0.5, 0.0]
    assert CurriculumLoss(_absolute, reduction="sum", threshold=4.0)(pred, target).item() == 3.5
    empty = CurriculumLoss(_absolute, threshold=0.1)(pred, target)
    assert empty.item() == 0.0 and empty.requires_grad
    assert not math.isnan(empty.item())


def test_curriculum_errors():
    with pytest.raises(ValueError, match=r"CurriculumLoss: expected `threshold` in \(0, inf\)"):
        CurriculumLoss(_absolute, threshold=0.0)
    with pytest.raises(ValueError, match=r"expected `growth` in \[1, inf\)"):
        CurriculumLoss(_absolute, growth=0.5)
    with pytest.raises(TypeError, match=r"expected `base_loss` a callable"):
        CurriculumLoss("mse")
    curriculum = CurriculumLoss(F.l1_loss)
    with pytest.raises(ValueError, match=r"expected `base_loss output` per-sample losses"):
        curriculum(torch.zeros(3), torch.ones(3))
    with pytest.raises(
        ValueError, match=r"CurriculumLoss.set_epoch: expected `epoch` to be an integer >= 0"
    ):
        curriculum.set_epoch(-1)


def test_gradnorm_worked_example_runs(capsys):
    path = Path(__file__).resolve().parents[2] / "examples" / "gradnorm_multitask.py"
    spec = importlib.util.spec_from_file_location("gradnorm_multitask", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    module.main(steps=20, report_every=10)
    torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "sum of weights: 3.000" in out and out.count("\n") > 5
