"""Contract examples for the segmentation losses."""

from __future__ import annotations

import torch


def _multiclass():
    logits = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 5))
    return logits, target


def _binary():
    logits = torch.randn(2, 1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 2, (2, 1, 3, 4, 5)).double()
    return logits, target


EXAMPLES = {
    "dice": lambda: ({"include_background": False}, _multiclass()),
    "tversky": lambda: ({"alpha": 0.3, "beta": 0.7}, _multiclass()),
    "focal_tversky": lambda: ({"activation": "sigmoid", "gamma": 0.75}, _binary()),
    "ce_dice": lambda: ({"ce_weight": 0.5, "dice_weight": 0.5}, _multiclass()),
}

EXAMPLES.update(
    {
        "generalized_dice": lambda: ({"weight_type": "square"}, _multiclass()),
        "dice_focal": lambda: ({"gamma": 2.0}, _multiclass()),
        "jaccard": lambda: ({"smooth": 0.1}, _multiclass()),
        "mcc": lambda: ({"activation": "softmax"}, _multiclass()),
        "lovasz_softmax": lambda: ({"per_image": True}, _multiclass()),
        "lovasz_hinge": lambda: (
            {},
            (
                torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True),
                torch.randint(0, 2, (2, 4, 5)),
            ),
        ),
    }
)
