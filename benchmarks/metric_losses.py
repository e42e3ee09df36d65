"""Metric losses against pytorch-metric-learning: forward + backward time (a benchmark, not a test).

Cases, each timed as one forward and one backward pass on the same inputs:

- ``online_triplet(mining="batch_hard")`` vs PML ``BatchHardMiner`` + ``TripletMarginLoss``
  (Euclidean on raw embeddings, mean over mined anchors), B in {256, 1024}, D = 128, 4 samples
  per class;
- ``losskit.ProxyAnchorLoss`` vs PML ``ProxyAnchorLoss`` with the same proxies, B = 180, D = 512,
  C in {1000, 10000}, beside the GEMM floor ``x @ P.T`` (forward + backward) of DESIGN §3.

Ours and theirs are timed alternately (one call each per round) after warm-up rounds, and the
median of the rounds is reported, so load drifting on a shared machine hits both alike. Ratios
(ours / theirs; below 1 means losskit is faster) are printed first, then the details.

Run: ``.venv/bin/python benchmarks/metric_losses.py [--repeats 9] [--warmup 2] [--device cpu]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.miners import BatchHardMiner
from pytorch_metric_learning.reducers import MeanReducer

import losskit
from losskit.functional import online_triplet

Step = Callable[[], torch.Tensor]


@dataclass
class Result:
    name: str
    ours_ms: float
    theirs_ms: float
    floor_ms: float | None
    loss_diff: float

    @property
    def ratio(self) -> float:
        return self.ours_ms / self.theirs_ms


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_alternating(
    steps: list[Step], repeats: int, warmup: int, device: torch.device
) -> list[float]:
    """Median milliseconds of each step, calling the steps in turn for every round."""
    times: list[list[float]] = [[] for _ in steps]
    for round_ in range(warmup + repeats):
        for i, step in enumerate(steps):
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            if round_ >= warmup:
                times[i].append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t) for t in times]


def _fwd_bwd(loss_fn: Callable[[], torch.Tensor], leaves: list[torch.Tensor]) -> Step:
    def step() -> torch.Tensor:
        for leaf in leaves:
            leaf.grad = None
        loss = loss_fn()
        loss.backward()
        return loss.detach()

    return step


def bench_batch_hard(b: int, d: int, args: argparse.Namespace, device: torch.device) -> Result:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, d, generator=g).to(device).requires_grad_(True)
    labels = (torch.arange(b) // 4)[torch.randperm(b, generator=g)].to(device)
    margin = 0.2
    distance = LpDistance(normalize_embeddings=False)
    miner = BatchHardMiner(distance=distance)
    theirs_fn = pml_losses.TripletMarginLoss(
        margin=margin, distance=distance, reducer=MeanReducer()
    )

    ours = _fwd_bwd(lambda: online_triplet(x, labels, margin, "batch_hard"), [x])
    theirs = _fwd_bwd(lambda: theirs_fn(x, labels, miner(x, labels)), [x])
    diff = abs(float(ours()) - float(theirs()))
    ours_ms, theirs_ms = _time_alternating([ours, theirs], args.repeats, args.warmup, device)
    return Result(f"online_triplet batch_hard  B={b} D={d}", ours_ms, theirs_ms, None, diff)


def bench_proxy_anchor(
    b: int, d: int, c: int, args: argparse.Namespace, device: torch.device
) -> Result:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, d, generator=g).to(device).requires_grad_(True)
    labels = torch.randint(0, c, (b,), generator=g).to(device)
    ours_fn = losskit.ProxyAnchorLoss(c, d, alpha=32.0, delta=0.1).to(device)
    theirs_fn = pml_losses.ProxyAnchorLoss(c, d, margin=0.1, alpha=32.0).to(device)
    with torch.no_grad():
        theirs_fn.proxies.copy_(ours_fn.proxies)
    proxies = torch.randn(c, d, generator=g).to(device).requires_grad_(True)

    ours = _fwd_bwd(lambda: ours_fn(x, labels), [x, ours_fn.proxies])
    theirs = _fwd_bwd(lambda: theirs_fn(x, labels), [x, theirs_fn.proxies])
    floor = _fwd_bwd(lambda: (x @ proxies.T).sum(), [x, proxies])
    diff = abs(float(ours()) - float(theirs()))
    ours_ms, theirs_ms, floor_ms = _time_alternating(
        [ours, theirs, floor], args.repeats, args.warmup, device
    )
    return Result(f"ProxyAnchorLoss  B={b} D={d} C={c}", ours_ms, theirs_ms, floor_ms, diff)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(os.cpu_count() or 1)

    results = [bench_batch_hard(b, 128, args, device) for b in (256, 1024)]
    results += [bench_proxy_anchor(180, 512, c, args, device) for c in (1000, 10000)]

    print(f"RATIOS  ours / pytorch-metric-learning, median forward+backward ({device})")
    width = max(len(r.name) for r in results)
    for r in results:
        print(f"  {r.name:<{width}}  {r.ratio:5.2f}x")
    print(
        f"\nDETAILS  torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.repeats} rounds after {args.warmup} warm-up"
    )
    print(f"  {'case':<{width}}  {'ours ms':>9} {'PML ms':>9} {'GEMM ms':>9} {'|Δloss|':>9}")
    for r in results:
        floor = f"{r.floor_ms:9.2f}" if r.floor_ms is not None else f"{'-':>9}"
        print(
            f"  {r.name:<{width}}  {r.ours_ms:9.2f} {r.theirs_ms:9.2f} {floor} {r.loss_diff:9.1e}"
        )


if __name__ == "__main__":
    main()
