"""Tests of losskit.debug: loss checks, gradient report, initial-loss baseline, scale warning."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from losskit.debug import (
    check_loss,
    expected_initial_loss,
    gradient_report,
    warn_if_combined_scales_differ,
)

# ---------------------------------------------------------------- check_loss


@pytest.mark.parametrize("value", [0.0, 1.5, torch.tensor(2.0), torch.tensor([0.1, 0.2])])
def test_check_loss_returns_valid_loss_unchanged(value):
    assert check_loss(value) is value


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (float("nan"), r"check_loss: expected `Loss/CE` to be finite at step 7, got nan"),
        (torch.tensor(float("inf")), r"expected `Loss/CE` to be finite at step 7, got inf"),
        (torch.tensor(-float("inf")), r"to be finite at step 7, got -inf"),
        (torch.tensor(-0.5), r"expected `Loss/CE` to be non-negative at step 7, got -0.5"),
    ],
)
def test_check_loss_errors_name_the_loss_and_step(value, match):
    with pytest.raises(ValueError, match=match):
        check_loss(value, step=7, name="Loss/CE")


def test_check_loss_without_step_or_name():
    with pytest.raises(ValueError, match=r"^check_loss: expected `loss` to be finite, got nan$"):
        check_loss(torch.tensor(float("nan")))


def test_check_loss_counts_bad_elements():
    loss = torch.tensor([1.0, float("nan"), float("nan"), 2.0])
    with pytest.raises(ValueError, match=r"got nan \(2 of 4 values\)"):
        check_loss(loss, name="per-sample")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_check_loss_half_precision(dtype):
    assert check_loss(torch.tensor(3.0, dtype=dtype)) is not None
    with pytest.raises(ValueError, match="to be finite"):
        check_loss(torch.tensor(torch.finfo(dtype).max, dtype=dtype) * 2)  # overflows


def test_check_loss_allow_negative():
    loss = torch.tensor(-3.0)
    assert check_loss(loss, allow_negative=True) is loss
    with pytest.raises(ValueError, match="to be finite"):
        check_loss(torch.tensor(float("nan")), allow_negative=True)


def test_check_loss_keeps_graph():
    x = torch.ones(3, requires_grad=True)
    loss = check_loss((x * 2).sum())
    loss.backward()
    assert torch.equal(x.grad, torch.full((3,), 2.0))


@pytest.mark.parametrize("value", ["1.0", None, True])
def test_check_loss_type_error(value):
    with pytest.raises(TypeError, match=r"check_loss: expected `loss` to be a tensor or a real"):
        check_loss(value)


# ----------------------------------------------------------- gradient_report


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(4, 3)
        self.dead = nn.Linear(4, 3)  # output multiplied by zero
        self.unused = nn.Linear(4, 3)  # never called
        self.frozen = nn.Linear(4, 3)
        self.frozen.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x) + 0.0 * self.dead(x) + self.frozen(x)


def test_gradient_report_statuses_and_norms():
    torch.manual_seed(0)
    net = _Net()
    net(torch.randn(5, 4)).pow(2).sum().backward()
    report = gradient_report(net)
    status = {p.name: p.status for p in report.parameters}
    assert status == {
        "used.weight": "ok",
        "used.bias": "ok",
        "dead.weight": "zero",
        "dead.bias": "zero",
        "unused.weight": "none",
        "unused.bias": "none",
        "frozen.weight": "frozen",
        "frozen.bias": "frozen",
    }
    # norms against NumPy
    norms = {p.name: p.norm for p in report.parameters}
    for name in ("used.weight", "used.bias"):
        grad = dict(net.named_parameters())[name].grad.numpy()
        assert norms[name] == pytest.approx(float(np.sqrt((grad.astype(np.float64) ** 2).sum())))
    assert norms["unused.weight"] is None
    expected_total = math.hypot(norms["used.weight"], norms["used.bias"])
    assert report.total_norm == pytest.approx(expected_total, rel=1e-6)
    assert not report.ok
    assert {p.name for p in report.flagged} == {
        "dead.weight",
        "dead.bias",
        "unused.weight",
        "unused.bias",
    }
    assert report.parameters[0].shape == (3, 4)


def test_gradient_report_text():
    torch.manual_seed(0)
    net = _Net()
    net(torch.randn(5, 4)).sum().backward()
    text = str(gradient_report(net))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["parameter", "shape", "grad"]
    assert any(line.startswith("dead.weight") and "ZERO GRADIENT" in line for line in lines)
    assert any(line.startswith("unused.bias") and "NO GRADIENT" in line for line in lines)
    assert any(line.startswith("frozen.bias") and "frozen" in line for line in lines)
    assert "used.bias    (3,) " in text and all(line == line.rstrip() for line in lines)
    assert lines[-1].endswith("4 flagged")


def test_gradient_report_exploding_and_nonfinite():
    lin = nn.Linear(2, 2)
    lin.weight.grad = torch.full((2, 2), 1e4)
    lin.bias.grad = torch.tensor([float("nan"), 0.0])
    report = gradient_report(lin)
    assert [p.status for p in report.parameters] == ["exploding", "nonfinite"]
    assert report.parameters[0].norm == pytest.approx(2e4)
    assert report.total_norm == pytest.approx(2e4)  # the non-finite gradient is left out
    assert "EXPLODING" in str(report) and "NON-FINITE" in str(report)
    relaxed = gradient_report(lin, explode_threshold=1e5)
    assert relaxed.parameters[0].status == "ok"


def test_gradient_report_healthy():
    lin = nn.Linear(3, 1)
    lin(torch.ones(2, 3)).sum().backward()
    report = gradient_report(lin)
    assert report.ok and report.flagged == ()
    assert str(report).endswith("all gradients look healthy")


def test_gradient_report_errors():
    with pytest.raises(TypeError, match=r"gradient_report: expected `model` to be an nn.Module"):
        gradient_report(torch.ones(3))
    with pytest.raises(ValueError, match=r"expected `explode_threshold` in \(0, inf\), got 0"):
        gradient_report(nn.Linear(1, 1), explode_threshold=0)


# ------------------------------------------------------ expected_initial_loss


@pytest.mark.parametrize("num_classes", [2, 10, 1000])
def test_expected_initial_loss_matches_uniform_cross_entropy(num_classes):
    logits = torch.zeros(4, num_classes, dtype=torch.float64)  # uniform prediction
    targets = torch.arange(4) % num_classes
    ce = torch.nn.functional.cross_entropy(logits, targets)
    assert expected_initial_loss(num_classes) == pytest.approx(float(ce))


def test_expected_initial_loss_errors():
    with pytest.raises(ValueError, match=r"expected `num_classes` to be an integer >= 1, got 0"):
        expected_initial_loss(0)
    with pytest.raises(TypeError, match=r"expected `num_classes` to be an integer, got float"):
        expected_initial_loss(10.0)


# --------------------------------------------- warn_if_combined_scales_differ


def test_scale_warning_fires_above_ratio():
    with pytest.warns(UserWarning, match=r"differ in scale by 1e\+04x .*'ce'=0\.01, 'proxy'=100"):
        assert warn_if_combined_scales_differ({"ce": torch.tensor(0.01), "proxy": 100.0})


def test_scale_warning_silent_within_ratio_and_for_zero_or_nonfinite_parts():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_combined_scales_differ({"a": 1.0, "b": 99.0})
        assert not warn_if_combined_scales_differ({"a": 0.0, "b": 5.0, "c": 4.0})
        assert not warn_if_combined_scales_differ({"a": float("nan"), "b": 5.0})
        assert not warn_if_combined_scales_differ({"a": 5.0})
        assert not warn_if_combined_scales_differ({"a": -1.0, "b": 50.0})


def test_scale_warning_custom_ratio_and_negative_values():
    with pytest.warns(UserWarning, match=r"by 20x \(more than 10x\)"):
        assert warn_if_combined_scales_differ({"a": -1.0, "b": 20.0}, ratio=10)


def test_scale_warning_errors():
    with pytest.raises(TypeError, match=r"expected `parts\['x'\]` to be a scalar tensor .*\(3,\)"):
        warn_if_combined_scales_differ({"x": torch.ones(3)})
    with pytest.raises(TypeError, match=r"expected `parts\['x'\]` .* got str"):
        warn_if_combined_scales_differ({"x": "1"})
    with pytest.raises(ValueError, match=r"expected `ratio` in \[1, inf\), got 0.5"):
        warn_if_combined_scales_differ({"x": 1.0}, ratio=0.5)
