"""``gather_distributed`` under a real two-process gloo group: uneven rows, the global-batch loss
on every rank, and gradients that DDP's average turns into the single-process gradient."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import losskit.functional as LF

ROWS = (3, 5)  # uneven rows per rank
LOSSES = {
    "barlow_twins": lambda a, b, g: LF.barlow_twins(a, b, 0.05, gather_distributed=g),
    "vicreg": lambda a, b, g: LF.vicreg(a, b, gather_distributed=g),
    "dcl": lambda a, b, g: LF.dcl(a, b, 0.3, gather_distributed=g),
}


def _global_views():
    g = torch.Generator().manual_seed(0)
    n = sum(ROWS)
    return torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randn(
        n, 4, generator=g, dtype=torch.float64
    )


def _worker(rank: int, port: int, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=len(ROWS))
    try:
        z1, z2 = _global_views()
        start = sum(ROWS[:rank])
        rows = slice(start, start + ROWS[rank])
        for name, f in LOSSES.items():
            a = z1[rows].clone().requires_grad_()
            b = z2[rows].clone().requires_grad_()
            value = f(a, b, True)
            ga, gb = torch.autograd.grad(value, (a, b))
            # DDP averages gradients over the ranks: the step a rank's rows receive.
            out[(name, rank)] = (value.detach(), ga / len(ROWS), gb / len(ROWS))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_gather_distributed_equals_the_single_process_global_batch():
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(_free_port(), out), nprocs=len(ROWS), join=True)
    z1, z2 = _global_views()
    for name, f in LOSSES.items():
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        value = f(a, b, False)
        ga, gb = torch.autograd.grad(value, (a, b))
        start = 0
        for rank, n in enumerate(ROWS):
            v, ra, rb = out[(name, rank)]
            torch.testing.assert_close(v, value.detach())
            torch.testing.assert_close(ra, ga[start : start + n], rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(rb, gb[start : start + n], rtol=1e-9, atol=1e-12)
            start += n
