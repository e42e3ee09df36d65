"""Sharded Proxy-Anchor on 1 vs 2 processes (gloo, CPU): step time and per-rank peak memory.

Each run spawns ``W`` processes (one intra-op thread each). Every rank holds ``B`` embeddings
(its rows of the global batch ``W·B``) and, with ``shard_proxies=True``, its block of
``⌈C/W⌉`` proxies. A step is forward + backward + SGD (momentum) step on the proxies; its time
is the slowest rank's, best of the timed steps. Peak memory is each rank's resident-set
high-water mark (``VmHWM``) above its reading just before the loss was built, so it counts the
proxies, their gradient, the optimiser state and every temporary.

The trainer's samples/s under ``torchrun`` belongs here too; it is not measured yet (the
trainer does not run under ``torchrun`` yet).

Run: ``python benchmarks/distributed.py`` (a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import losskit


def _vm_hwm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _worker(rank: int, world: int, port: int, args: argparse.Namespace, out: dict) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(args.batch, args.dim, generator=g, requires_grad=True)
    labels = torch.randint(0, args.classes, (args.batch,), generator=g)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident set
    baseline = _rss_bytes()
    loss_fn = losskit.ProxyAnchorLoss(
        args.classes, args.dim, gather_distributed=True, shard_proxies=True
    )
    opt = torch.optim.SGD(loss_fn.parameters(), lr=0.1, momentum=0.9)
    times = []
    for _ in range(args.steps + 1):
        dist.barrier()
        start = time.perf_counter()
        loss = loss_fn(x, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        elapsed = torch.tensor(time.perf_counter() - start)
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
        times.append(float(elapsed))
    out[rank] = (min(times[1:]), _vm_hwm_bytes() - baseline, loss_fn.proxies.shape[0])
    dist.destroy_process_group()


def run(world: int, args: argparse.Namespace) -> tuple[float, float, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.Manager().dict()
    mp.spawn(_worker, args=(world, port, args, out), nprocs=world, join=True)
    step = max(out[r][0] for r in range(world))
    memory = max(out[r][1] for r in range(world))
    return step, memory, out[0][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=512, help="rows per rank")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up")
    args = parser.parse_args()
    rows = {w: run(w, args) for w in (1, 2)}
    print(
        f"Sharded Proxy-Anchor, C = {args.classes:,}, B = {args.batch} per rank, "
        f"D = {args.dim}, gloo on CPU, 1 thread per rank"
    )
    print(
        f"{'processes':>9} {'global B':>9} {'proxies/rank':>13} {'step s':>8} {'peak MiB/rank':>14}"
    )
    for w, (step, memory, owned) in rows.items():
        print(f"{w:>9} {w * args.batch:>9} {owned:>13,} {step:>8.2f} {memory / 2**20:>14.0f}")
    (t1, m1, _), (t2, m2, _) = rows[1], rows[2]
    print(
        f"2 vs 1 process: step time ×{t2 / t1:.2f} (for ×2 the global batch), "
        f"per-rank peak memory ×{m2 / m1:.2f}, samples/s ×{2 * t1 / t2:.2f}"
    )
    print("Trainer samples/s on digits under torchrun: not measured yet.")


if __name__ == "__main__":
    main()
