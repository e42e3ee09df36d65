"""A plain PyTorch image retrieval recipe, the bar for the trainer's CE objective on unseen classes.

A small CNN (two 3x3 conv + ReLU + 2x2 max-pool stages), flattened, a linear 64-d embedding and a
linear classifier head over it, trained with cross-entropy (AdamW, lr 1e-3, batch 128, constant
rate, no dropout, no normalisation layers); retrieval is cosine Recall@1 on the embedding. It
trains on the same training split as ``losskit train`` (the trainer's validation classes left
out, so both see the same classes) and searches the same unseen test split.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from losskit.metrics import retrieval_metrics
from losskit.train.data import load_splits


def reference_net(channels: int, size: int, num_classes: int, dim: int = 64) -> nn.Sequential:
    """Conv-ReLU-pool twice, flatten, ``Linear -> dim`` (the embedding), ``Linear -> classes``."""
    side = size // 4
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * side * side, dim),
        nn.Linear(dim, num_classes),
    )  # fmt: skip


def reference_recall(
    data_dir: str | Path, *, seed: int = 0, val_fraction: float = 0.1, epochs: int = 3
) -> float:
    """Recall@1 on the unseen test classes of the ``npy`` images in ``data_dir``."""
    torch.manual_seed(seed)
    splits = load_splits(
        "npy", data_dir=data_dir, protocol="retrieval", seed=seed, val_fraction=val_fraction
    )
    channels, size, _ = splits.sample_shape
    net = reference_net(channels, size, splits.num_classes)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(splits.train, batch_size=128, shuffle=True, generator=generator)
    net.train()
    for _ in range(epochs):
        for x, y in loader:
            loss = nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    test = DataLoader(splits.test, batch_size=512)
    with torch.no_grad():
        features = torch.cat([net[:-1](x) for x, _ in test])
    return retrieval_metrics(features, splits.test_labels, k=1, cluster=False)["recall_at_1"]
