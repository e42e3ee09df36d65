"""The shared machinery: input checks, the reduction helper, the registry and `losskit list`."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

import losskit
from losskit import _checks, registry
from losskit._reduce import check_reduction, compute_dtype, reduce, upcast
from losskit.cli import main


def _raises(kind, message):
    return pytest.raises(kind, match=re.escape(message))


# --- _checks ------------------------------------------------------------------------------------


def test_shape_str_and_fail_use_the_one_message_style():
    assert _checks.shape_str(torch.Size([31])) == "(31,)"
    assert _checks.shape_str((2, 3)) == "(2, 3)"
    with _raises(TypeError, "f: expected `x` something, got other"):
        _checks.fail("f", "x", "something", "other", kind=TypeError)


def test_closest_and_check_choice():
    assert _checks.closest("Mena", ["mean", "sum"]) == "mean"
    assert _checks.closest("xyz", ["mean", "sum"]) is None
    assert _checks.check_choice("f", "mode", "sum", ("mean", "sum")) == "sum"
    with _raises(ValueError, "f: expected `mode` one of 'mean', 'sum', got 'summ' (did you mean"):
        _checks.check_choice("f", "mode", "summ", ("mean", "sum"))
    with _raises(ValueError, "f: expected `mode` one of 'mean', 'sum', got 3"):
        _checks.check_choice("f", "mode", 3, ("mean", "sum"))


def test_tensor_and_floating_checks():
    x = torch.zeros(2)
    assert _checks.check_tensor("f", "x", x) is x
    assert _checks.check_floating("f", "x", x) is x
    with _raises(TypeError, "f: expected `x` to be a torch.Tensor, got list"):
        _checks.check_tensor("f", "x", [1.0])
    with _raises(TypeError, "f: expected `x` to be a floating-point tensor, got dtype torch.int64"):
        _checks.check_floating("f", "x", torch.zeros(2, dtype=torch.long))


def test_shape_checks():
    x = torch.zeros(2, 3)
    assert _checks.check_ndim("f", "x", x, (2, 3)) is x
    with _raises(ValueError, "f: expected `x` to be 1-D or 3-D (B, D), got shape (2, 3)"):
        _checks.check_ndim("f", "x", x, (1, 3), "(B, D)")
    assert _checks.check_shape("f", "x", x, (None, 3)) is x
    with _raises(ValueError, "f: expected `x` of shape (*, 4) per row, got (2, 3)"):
        _checks.check_shape("f", "x", x, (None, 4), context="per row")
    with _raises(ValueError, "f: expected `x` of shape (2,), got (2, 3)"):
        _checks.check_shape("f", "x", x, (2,))
    with _raises(ValueError, "f: expected `y` of the same shape as `x` (2, 3), got (3,)"):
        _checks.check_same_shape("f", "y", torch.zeros(3), "x", x)


def test_check_labels():
    labels = torch.tensor([0, 2, -100])
    assert _checks.check_labels("f", "y", labels, 3, ignore_index=-100) is labels
    for bad in (labels.float(), labels.bool()):
        with _raises(TypeError, "f: expected `y` to hold integer class indices, got dtype"):
            _checks.check_labels("f", "y", bad)
    with _raises(ValueError, "f: expected `y` in [0, 2] or -100 (num_classes=3), got a label 3"):
        _checks.check_labels("f", "y", torch.tensor([3, -100]), 3, ignore_index=-100)
    with _raises(ValueError, "f: expected `y` in [0, 2] (num_classes=3), got a label -100"):
        _checks.check_labels("f", "y", labels, 3)
    # only ignored labels, or none at all, are valid
    _checks.check_labels("f", "y", torch.tensor([-100]), 3, ignore_index=-100)
    _checks.check_labels("f", "y", torch.zeros(0, dtype=torch.long), 3)


@pytest.mark.parametrize(
    ("value", "kwargs", "kind", "message"),
    [
        (True, {}, TypeError, "f: expected `a` to be a real number, got bool"),
        ("1", {}, TypeError, "f: expected `a` to be a real number, got str"),
        (
            float("nan"),
            {},
            ValueError,
            "f: expected `a` to be a finite number in (-inf, inf), got nan",
        ),
        (0.0, {"low": 0.0, "low_open": True}, ValueError, "f: expected `a` in (0, inf), got 0.0"),
        (
            1.0,
            {"high": 1.0, "high_open": True},
            ValueError,
            "f: expected `a` in (-inf, 1), got 1.0",
        ),
        (-1, {"low": 0.0}, ValueError, "f: expected `a` in [0, inf), got -1"),
    ],
)
def test_check_number_errors(value, kwargs, kind, message):
    with _raises(kind, message):
        _checks.check_number("f", "a", value, **kwargs)


def test_check_number_and_int_accept_valid_values():
    assert _checks.check_number("f", "a", 1, low=1.0, high=1.0) == 1.0
    assert isinstance(_checks.check_number("f", "a", 1), float)
    assert _checks.check_int("f", "n", 3, low=3) == 3
    with _raises(TypeError, "f: expected `n` to be an integer, got bool"):
        _checks.check_int("f", "n", True)
    with _raises(ValueError, "f: expected `n` to be an integer >= 1, got 0"):
        _checks.check_int("f", "n", 0, low=1)


def test_check_bool():
    assert _checks.check_bool("f", "flag", False) is False
    with _raises(TypeError, "f: expected `flag` to be a bool, got int"):
        _checks.check_bool("f", "flag", 1)


def test_check_values():
    x = torch.tensor([0.0, 0.5, 1.0])
    assert _checks.check_values("f", "t", x, low=0.0, high=1.0) is x
    assert _checks.check_values("f", "t", torch.zeros(0), low=1.0).numel() == 0
    with _raises(ValueError, "f: expected `t` with values in [0, 1], got a value -0.5"):
        _checks.check_values("f", "t", torch.tensor([-0.5, 2.0]), low=0.0, high=1.0)
    with _raises(ValueError, "f: expected `t` with values in [0, 1], got a value 2"):
        _checks.check_values("f", "t", torch.tensor([0.5, 2.0]), low=0.0, high=1.0)
    with _raises(ValueError, "f: expected `t` with values in [0, inf), got a value nan"):
        _checks.check_values("f", "t", torch.tensor([0.5, float("nan")]), low=0.0)


def _warns(x, dim=None):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        returned = _checks.warn_if_probabilities("f", "logits", x, dim=dim)
    assert returned == bool(caught)
    return caught


def test_warn_if_probabilities_fires_on_probabilities():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 5, 3, generator=g)
    (w,) = _warns(torch.softmax(logits, dim=1), dim=1)
    assert w.category is UserWarning
    assert str(w.message).startswith(
        "f: expected `logits` to be raw scores (logits, before sigmoid/softmax), got values that "
        "look like probabilities (all in [0, 1], summing to 1 over dim 1)"
    )
    assert len(_warns(torch.sigmoid(logits))) == 1
    assert len(_warns(torch.softmax(logits, dim=1).half(), dim=1)) == 1  # sums in float32


def test_warn_if_probabilities_is_silent_on_logits():
    g = torch.Generator().manual_seed(0)
    for scale in (1e-3, 1.0, 100.0):
        logits = scale * torch.randn(16, 4, generator=g)
        assert not _warns(logits) and not _warns(logits, dim=1)
    rows = torch.rand(16, 4, generator=g)  # in [0, 1] but not normalised
    assert not _warns(rows, dim=1)
    assert not _warns(torch.zeros(4, 3))  # a zero-initialised head
    assert not _warns(torch.zeros(0, 3), dim=1)
    assert not _warns(torch.softmax(torch.randn(4, 3), dim=1) * 1.01, dim=1)


def test_warn_if_probabilities_is_shown_once_per_call_site_by_default():
    probs = torch.full((2, 2), 0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            _checks.warn_if_probabilities("f", "logits", probs, dim=1)
    assert len(caught) == 1


# --- _reduce ------------------------------------------------------------------------------------


def test_reduce_modes():
    loss = torch.tensor([1.0, 2.0, 3.0, 6.0])
    assert reduce(loss, "none", fn="f") is loss
    assert float(reduce(loss, "sum", fn="f")) == 12.0
    assert float(reduce(loss, "mean", fn="f")) == 3.0
    assert float(reduce(loss, "mean", fn="f", denominator=2.0)) == 6.0
    assert float(reduce(loss, "mean", fn="f", denominator=torch.tensor(3))) == 4.0
    out = reduce(loss.double(), "mean", fn="f", dtype=torch.float16)
    assert out.dtype == torch.float16


def test_reduce_mean_with_nothing_valid_is_zero_and_connected():
    x = torch.randn(3, requires_grad=True)
    loss = (x * 0.0).masked_fill(torch.ones(3, dtype=torch.bool), 0.0)
    out = reduce(loss, "mean", fn="f", denominator=torch.tensor(0))
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert torch.equal(x.grad, torch.zeros(3))
    assert reduce(torch.zeros(0), "mean", fn="f").item() == 0.0
    assert reduce(torch.zeros(2), "mean", fn="f", denominator=0.0).item() == 0.0


def test_reduction_errors_and_dtypes():
    with _raises(ValueError, "f: expected `reduction` one of 'mean', 'sum', 'none', got 'avg'"):
        reduce(torch.zeros(1), "avg", fn="f")
    with _raises(ValueError, "g: expected `reduction` one of 'mean', 'sum', 'none', got None"):
        check_reduction("g", None)
    assert check_reduction("g", "sum") == "sum"
    assert compute_dtype(torch.float16) == compute_dtype(torch.bfloat16) == torch.float32
    assert compute_dtype(torch.float64) == torch.float64
    assert upcast(torch.zeros(1, dtype=torch.bfloat16)).dtype == torch.float32
    x = torch.zeros(1, dtype=torch.float64)
    assert upcast(x) is x


# --- registry -----------------------------------------------------------------------------------


def test_list_losses_is_sorted_and_filters_by_family():
    names = losskit.list_losses()
    assert names == sorted(names)
    assert set(losskit.list_losses("regression")) == {
        "mse", "mae", "huber", "smooth_l1", "log_cosh", "asymmetric_mse",
        "robust", "charbonnier", "cauchy", "welsch", "quantile",
    }  # fmt: skip
    assert set(losskit.list_losses("classification")) == {
        "binary_cross_entropy", "cross_entropy", "label_smoothing_cross_entropy", "focal",
        "binary_focal", "asymmetric_loss", "jsd_cross_entropy",
    }  # fmt: skip
    with pytest.raises(
        ValueError, match=r"`family` one of .*got 'regresion' \(did you mean 'regression'\?\)"
    ):
        losskit.list_losses("regresion")


def test_get_spec_and_build_loss():
    spec = losskit.get_spec("huber")
    assert spec.cls is losskit.HuberLoss and spec.function is losskit.functional.huber
    assert spec.family == "regression"
    assert spec.summary.startswith("Huber loss")
    assert spec.doc.startswith(spec.summary)
    built = losskit.build_loss("huber", delta=0.5)
    assert isinstance(built, losskit.HuberLoss) and built.delta == 0.5


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("focall", " (did you mean 'focal'?)"), ("Huber", " (did you mean 'huber'?)"), ("xyzzy", "")],
)
def test_build_loss_unknown_name_suggests_the_closest(name, suffix):
    message = (
        "build_loss: expected `name` to be a registered loss (see losskit.list_losses()), "
        f"got {name!r}{suffix}"
    )
    with pytest.raises(ValueError, match=re.escape(message) + "$"):
        losskit.build_loss(name)
    with _raises(ValueError, "got 42"):
        losskit.build_loss(42)


def test_build_loss_passes_validation_errors_through():
    with _raises(ValueError, "HuberLoss: expected `delta` in (0, inf), got -1.0"):
        losskit.build_loss("huber", delta=-1.0)


def test_register(monkeypatch):
    losskit.list_losses()  # load every family before swapping in a scratch registry
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    def toy(x):
        """A toy loss."""
        return x

    @registry.register(toy)
    class ToyLoss(nn.Module):
        pass

    @registry.register(name="toy_by_name")
    class NamedLoss(nn.Module):
        """Named only."""

    assert registry.get_spec("toy").cls is ToyLoss and registry.get_spec("toy").summary == (
        "A toy loss."
    )
    assert registry.get_spec("toy_by_name").function is None
    assert registry.get_spec("toy_by_name").summary == "Named only."
    assert registry.register(toy)(ToyLoss) is ToyLoss  # registering the same class again is fine
    with _raises(ValueError, "register: expected a new loss name, got 'toy' registered twice"):
        registry.register(toy)(NamedLoss)
    with _raises(TypeError, "register: expected `function` or `name` for NamedLoss, got neither"):
        registry.register()(NamedLoss)


# --- losskit list -------------------------------------------------------------------------------


def test_cli_list_prints_every_loss_with_its_class_and_summary(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in losskit.list_losses():
        spec = losskit.get_spec(name)
        line = next(ln for ln in out.splitlines() if ln.startswith(f"  {name} "))
        assert spec.cls.__name__ in line and spec.summary in line
    assert "\nregression\n" in out and "\nclassification\n" in out


def test_cli_list_family(capsys):
    assert main(["list", "--family", "regression"]) == 0
    listed = [ln.split()[0] for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ")]
    assert sorted(listed) == losskit.list_losses("regression")


def test_cli_without_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: losskit" in capsys.readouterr().out
