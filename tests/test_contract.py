"""The contract test: every registered loss builds by name and runs forward and backward."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import torch

import losskit
import tests.contract_examples as examples_pkg


def _all_examples() -> dict:
    merged: dict = {}
    for info in pkgutil.iter_modules(examples_pkg.__path__):
        merged.update(importlib.import_module(f"tests.contract_examples.{info.name}").EXAMPLES)
    return merged


EXAMPLES = _all_examples()


def test_every_registered_loss_has_an_example():
    missing = sorted(set(losskit.list_losses()) - set(EXAMPLES))
    assert not missing, f"registered losses without a contract example: {missing}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_forward_backward(name):
    torch.manual_seed(0)
    kwargs, args = EXAMPLES[name]()
    loss_module = losskit.build_loss(name, **kwargs)
    out = loss_module(*args)
    value = out[0] if isinstance(out, tuple) else out
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    grads = [a.grad for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    grads += [p.grad for p in loss_module.parameters() if p.requires_grad]
    assert grads and any(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_registered_loss_is_documented(name):
    spec = losskit.get_spec(name)
    assert spec.summary, f"{name} has no docstring summary"
    assert spec.cls.__name__ in dir(losskit), f"{spec.cls.__name__} is not re-exported by losskit"
    if spec.function is not None:
        assert getattr(losskit.functional, name) is spec.function
