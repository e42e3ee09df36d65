"""Contract examples for the classification losses (`losskit.losses.classification`)."""

from __future__ import annotations

import torch


def _multiclass() -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    return logits, torch.tensor([0, 2, 1, -100, 2])


def _binary() -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    return logits, torch.tensor(
        [[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.3, 0.7]], dtype=torch.float64
    )


EXAMPLES = {
    "binary_cross_entropy": lambda: (
        {"pos_weight": torch.tensor([2.0, 0.5], dtype=torch.float64)},
        _binary(),
    ),
    "binary_focal": lambda: ({"alpha": 0.25, "gamma": 2.0}, _binary()),
    "cross_entropy": lambda: (
        {"weight": torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64), "label_smoothing": 0.1},
        _multiclass(),
    ),
    "label_smoothing_cross_entropy": lambda: (
        {"epsilon": 0.1, "convention": "others"},
        _multiclass(),
    ),
    "focal": lambda: (
        {"alpha": torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64), "gamma": 2.0},
        _multiclass(),
    ),
}


def _multilabel():
    logits = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    return logits, (torch.rand(4, 3) > 0.5).double()


def _views():
    logits = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    return logits, torch.randint(0, 5, (4,))


EXAMPLES.update(
    {
        "asymmetric_loss": lambda: ({"gamma_neg": 2.0, "clip": 0.05}, _multilabel()),
        "jsd_cross_entropy": lambda: ({"alpha": 12.0}, _views()),
    }
)
