"""Contract examples for the proxy losses (`losskit.losses.metric.proxies`)."""

from __future__ import annotations

import torch


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    embeddings = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    return embeddings, torch.tensor([0, 0, 1, 1, 2, 4])


EXAMPLES = {
    "proxy_anchor": lambda: ({"num_classes": 5, "embedding_dim": 4}, _batch()),
    "focal_proxy_anchor": lambda: ({"num_classes": 5, "embedding_dim": 4}, _batch()),
    "multi_proxy_anchor": lambda: (
        {"num_classes": 5, "embedding_dim": 4, "proxies_per_class": 2},
        _batch(),
    ),
    "cosine_softmax_cross_entropy": lambda: (
        {"num_classes": 5, "embedding_dim": 4, "scale": 16.0},
        _batch(),
    ),
    "arcface": lambda: ({"num_classes": 5, "embedding_dim": 4, "scale": 16.0}, _batch()),
    "cosface": lambda: ({"num_classes": 5, "embedding_dim": 4, "scale": 16.0}, _batch()),
    "subcenter_arcface": lambda: (
        {"num_classes": 5, "embedding_dim": 4, "sub_centers": 2, "scale": 16.0},
        _batch(),
    ),
    "proxy_nca": lambda: ({"num_classes": 5, "embedding_dim": 4}, _batch()),
}
