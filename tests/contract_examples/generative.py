"""Contract examples for the generative losses."""

from __future__ import annotations

import torch
from torch import nn


def _logits(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 1, dtype=torch.float64, requires_grad=True)


def _critic() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1)).double()


def _samples() -> tuple[torch.Tensor, torch.Tensor]:
    real = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    return real, torch.randn(4, 3, dtype=torch.float64, requires_grad=True)


def _r1() -> tuple[torch.Tensor, torch.Tensor]:
    real = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    logits = _critic()(real)
    logits.retain_grad()  # a non-leaf input: keep its gradient for the contract's check
    return logits, real


def _vae() -> tuple[torch.Tensor, ...]:
    recon = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    x = torch.rand(4, 6, dtype=torch.float64)
    mu = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    return recon, x, mu, logvar


def _tiny_vgg() -> nn.Sequential:
    """The first block of a VGG16 ``features`` layout (indices 0-3), narrowed to 4 channels."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()
    ).double()


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    pred = torch.rand(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    return pred, torch.rand(2, 3, 8, 8, dtype=torch.float64)


EXAMPLES = {
    "gan_discriminator": lambda: ({"kind": "hinge"}, (_logits(), _logits(6))),
    "gan_generator": lambda: ({"kind": "nonsaturating"}, (_logits(),)),
    "gan": lambda: ({"kind": "minimax"}, (_logits(), _logits())),
    "gradient_penalty": lambda: ({"weight": 10.0}, (_critic(), *_samples())),
    "r1_penalty": lambda: ({"gamma": 1.0}, _r1()),
    "vae_elbo": lambda: ({"beta": 2.0}, _vae()),
    "perceptual": lambda: (
        {"backbone": _tiny_vgg(), "layers": ("relu1_1", "relu1_2"), "weights": (0.5, 1.0)},
        _images(),
    ),
}
