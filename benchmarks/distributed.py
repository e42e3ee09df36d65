"""Sharded Proxy-Anchor on 1 vs 2 processes (gloo, CPU): step time and per-rank peak memory.

Each run spawns ``W`` processes (one intra-op thread each). Every rank holds ``B`` embeddings
(its rows of the global batch ``W·B``) and, with ``shard_proxies=True``, its block of
``⌈C/W⌉`` proxies. A step is forward + backward + SGD (momentum) step on the proxies; its time
is the slowest rank's, best of the timed steps. Peak memory is each rank's resident-set
high-water mark (``VmHWM``) above its reading just before the loss was built, so it counts the
proxies, their gradient, the optimiser state and every temporary.

The trainer part runs ``torchrun --nproc_per_node W -m losskit train`` on digits (default
config, ``batch_size`` per process) and reports training samples per second: the training
samples of an epoch over its wall time (``metrics.jsonl``'s ``time_s``, evaluation included),
the first epoch left out.

Run: ``python benchmarks/distributed.py`` (a few minutes on 2 CPU cores; ``--part trainer`` or
``--part proxies`` for one table).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def trainer_samples_per_s(world: int, epochs: int) -> float:
    """Training samples per second of ``losskit train`` under ``torchrun`` with ``world``
    processes (the mean over the epochs after the first)."""
    from losskit.train import assembly
    from losskit.train.config import load_config

    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc_per_node", str(world), "-m", "losskit", "train", "--quiet",
                   "--epochs", str(epochs), "--output_dir", str(run_dir)]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, env={**os.environ})
        records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        config = load_config(run_dir / "config.yaml")
    samples = len(assembly.build_data(config).train_labels)
    times = [r["time_s"] for r in records[1:]]
    return samples / (sum(times) / len(times))


def proxies_table(args: argparse.Namespace) -> None:
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


def trainer_table(args: argparse.Namespace) -> None:
    rates = {w: trainer_samples_per_s(w, args.epochs) for w in (1, 2)}
    print(f"losskit train on digits under torchrun (default config, {args.epochs} epochs, gloo)")
    print(f"{'processes':>9} {'global B':>9} {'samples/s':>10}")
    for w, rate in rates.items():
        print(f"{w:>9} {64 * w:>9} {rate:>10.0f}")
    print(f"2 vs 1 process: trainer samples/s ×{rates[2] / rates[1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=512, help="rows per rank")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up")
    parser.add_argument("--epochs", type=int, default=4, help="trainer epochs (the first untimed)")
    parser.add_argument("--part", choices=("all", "proxies", "trainer"), default="all")
    args = parser.parse_args()
    if args.part in ("all", "proxies"):
        proxies_table(args)
    if args.part in ("all", "trainer"):
        trainer_table(args)


if __name__ == "__main__":
    main()
