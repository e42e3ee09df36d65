"""Contract examples for the image losses."""

from __future__ import annotations

import torch


def _images(size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(2, 1, size, size, dtype=torch.float64, requires_grad=True)
    return x, torch.rand(2, 1, size, size, dtype=torch.float64)


EXAMPLES = {
    "ssim": lambda: ({"kernel_size": 7}, _images()),
    "ms_ssim": lambda: ({"kernel_size": 3, "weights": (0.5, 0.5)}, _images()),
    "total_variation": lambda: (
        {},
        (torch.rand(2, 3, 4, 5, dtype=torch.float64, requires_grad=True),),
    ),
}
