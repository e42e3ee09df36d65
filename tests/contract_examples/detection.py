"""Contract examples for the box regression losses."""

from __future__ import annotations

import torch


def _boxes():
    xy = torch.rand(4, 2, dtype=torch.float64)
    wh = torch.rand(4, 2, dtype=torch.float64) + 0.5
    pred = torch.cat([xy, xy + wh], dim=1).requires_grad_()
    xy_t = torch.rand(4, 2, dtype=torch.float64)
    target = torch.cat([xy_t, xy_t + wh.flip(1)], dim=1)
    return pred, target


EXAMPLES = {
    "iou": lambda: ({}, _boxes()),
    "giou": lambda: ({"reduction": "sum"}, _boxes()),
    "diou": lambda: ({}, _boxes()),
    "ciou": lambda: ({"eps": 1e-7}, _boxes()),
}
