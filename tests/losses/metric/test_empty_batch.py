"""The empty-batch rule of the batch-dependent losses (metric and self-supervised families).

An empty batch (``B = 0``) gives ``0.0`` connected to the graph, with zero gradients for the
embeddings and every learnable parameter (proxies), as every loss with no valid element does
(DESIGN §2); ``reduction="none"`` gives an empty ``(0,)``. Only the losses whose formula needs
batch statistics (``barlow_twins``, ``vicreg``, ``dcl``: a standard deviation or the other
samples as negatives) refuse a batch of fewer than 2 rows, with a ValueError naming the count.
"""

from __future__ import annotations

import pytest
import torch

import losskit
from tests.test_contract import EXAMPLES

NEEDS_TWO_ROWS = {"barlow_twins", "vicreg", "dcl"}
# Mining modes and reductions beyond the contract examples' own settings.
VARIANTS = {
    "online_triplet": [{"mining": m} for m in ("batch_hard", "semi_hard", "batch_all")],
    "multi_similarity": [{"mining": m} for m in ("none", "multi_similarity")],
    "proxy_anchor": [{}],
    "arcface": [{"reduction": r} for r in ("mean", "sum", "none")],
    "proxy_nca": [{"reduction": r} for r in ("mean", "sum", "none")],
}
NAMES = sorted(losskit.list_losses("metric") + losskit.list_losses("self_supervised"))


def _empty(value):
    """Every tensor argument cut to 0 rows (embeddings keep their requires_grad)."""
    if isinstance(value, torch.Tensor) and value.dim() >= 1:
        cut = value.detach()[:0].clone()
        return cut.requires_grad_(value.requires_grad)
    if isinstance(value, tuple | list):
        return type(value)(_empty(v) for v in value)
    return value


def _cases():
    for name in NAMES:
        for extra in VARIANTS.get(name, [{}]):
            yield pytest.param(name, extra, id=f"{name}-{extra}" if extra else name)


@pytest.mark.parametrize(("name", "extra"), list(_cases()))
def test_empty_batch(name, extra):
    torch.manual_seed(0)
    kwargs, args = EXAMPLES[name]()
    module = losskit.build_loss(name, **{**kwargs, **extra})
    args = _empty(args)
    if name in NEEDS_TWO_ROWS:
        with pytest.raises(ValueError, match=f"{name}: expected `z1` with at least 2 rows.*got 0"):
            module(*args)
        return
    out = module(*args)
    out = out[0] if isinstance(out, tuple) else out
    if extra.get("reduction") == "none":
        assert out.shape == (0,)
        out = out.sum()
    assert out.shape == () and float(out.detach()) == 0.0 and out.requires_grad
    embeddings = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(out, embeddings + params, allow_unused=True)
    for grad in grads:
        assert grad is None or (torch.isfinite(grad).all() and not grad.any())
    # The proxies are in the graph: an optimiser step sees a zero gradient, not a missing one.
    assert all(grad is not None for grad in grads[len(embeddings) :])
