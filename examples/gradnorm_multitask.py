"""GradNorm on a small three-task model: watch the task weights balance the gradient norms.

A shared two-layer trunk feeds three heads on synthetic data:

- ``big``: a regression whose loss is 100× larger than the others (think of a loss in squared
  pixels next to losses in nats);
- ``small``: a regression on the same scale as the third task;
- ``class``: a 4-way classification (cross-entropy).

With equal weights the ``big`` task's gradient dominates the shared layer. GradNorm
(Chen et al., ICML 2018) learns weights ``w_i`` such that every task's gradient norm on the last
shared layer, ``G_i = ‖∇_W w_i·L_i‖``, matches the average scaled by how slowly the task trains.
The table shows ``w_i`` falling for ``big``, rising for the others, ``Σ w_i = 3`` throughout, and
the spread of the ``G_i`` (max/min) shrinking from about 900 to about 2. The task weights have
their own learning rate (0.01 here): too large a rate makes a weight that must become small
overshoot towards zero and oscillate.

Run: ``python examples/gradnorm_multitask.py`` (a few seconds on a CPU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from losskit import GradNorm
from losskit.functional import task_gradient_norms

TASKS = ("big", "small", "class")


class MultiTaskNet(nn.Module):
    """Shared trunk -> last shared layer -> one head per task."""

    def __init__(self, in_dim: int = 10, hidden: int = 32, num_classes: int = 4) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh())
        self.last_shared = nn.Linear(hidden, hidden)  # GradNorm measures gradients here
        self.heads = nn.ModuleList(
            [nn.Linear(hidden, 1), nn.Linear(hidden, 1), nn.Linear(hidden, num_classes)]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = torch.tanh(self.last_shared(self.trunk(x)))
        return [head(h) for head in self.heads]


def make_data(n: int = 256, in_dim: int = 10, num_classes: int = 4):
    """Three targets from one input: two regressions and a classification."""
    x = torch.randn(n, in_dim)
    y_big = x @ torch.randn(in_dim) + 0.1 * torch.randn(n)
    y_small = torch.sin(x[:, :3].sum(dim=1)) + 0.1 * torch.randn(n)
    y_class = (x @ torch.randn(in_dim, num_classes)).argmax(dim=1)
    return x, (y_big, y_small, y_class)


def task_losses(model: MultiTaskNet, x: torch.Tensor, targets) -> list[torch.Tensor]:
    out_big, out_small, logits = model(x)
    y_big, y_small, y_class = targets
    return [
        100.0 * F.mse_loss(out_big.squeeze(1), y_big),  # the ×100 task
        F.mse_loss(out_small.squeeze(1), y_small),
        F.cross_entropy(logits, y_class),
    ]


def main(steps: int = 300, report_every: int = 30) -> None:
    # 1. Data, model, GradNorm; one optimiser with its own learning rate for the task weights.
    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest
    x, targets = make_data()
    model = MultiTaskNet()
    gradnorm = GradNorm(num_tasks=len(TASKS), alpha=1.5)
    optimiser = torch.optim.Adam(
        [
            {"params": model.parameters(), "lr": 1e-2},
            {"params": gradnorm.parameters(), "lr": 0.01},  # the task weights
        ]
    )
    shared = [model.last_shared.weight]

    header = f"{'step':>5} | " + " ".join(f"w_{t:<6}" for t in TASKS)
    header += " | " + " ".join(f"L_{t:<6}" for t in TASKS) + " | G max/min"
    print(header)
    print("-" * len(header))
    for step in range(steps + 1):
        # 2. Task losses and the GradNorm objective (value: Σ w_i L_i).
        losses = task_losses(model, x, targets)
        loss = gradnorm(losses, shared)

        # 3. Report the weights, losses and the spread of G_i = w_i ‖∇_W L_i‖.
        if step % report_every == 0:
            w = gradnorm.weights.detach()
            g = w * task_gradient_norms(losses, shared)
            print(
                f"{step:>5} | "
                + " ".join(f"{v:8.3f}" for v in w.tolist())
                + " | "
                + " ".join(f"{v.item():8.3f}" for v in losses)
                + f" | {(g.max() / g.min()).item():9.2f}"
            )
        if step == steps:
            break

        # 4. One backward and one step update the network and the task weights;
        #    then GradNorm records L_i(0) (first step) and renormalises Σ w_i = 3.
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        gradnorm.update(losses)

    print(f"\nfinal weights: {dict(zip(TASKS, gradnorm.weights.detach().tolist()))}")
    print(f"sum of weights: {gradnorm.weights.detach().sum().item():.3f} (= number of tasks)")


if __name__ == "__main__":
    main()
