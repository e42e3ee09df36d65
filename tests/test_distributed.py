"""Global-batch losses on 2 CPU processes (gloo): one spawned group runs every check."""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.multiprocessing as mp

import losskit
from losskit import distributed as D
from tests import distributed_checks

WORLD = 2


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> list[dict[str, str | None]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path_factory.mktemp("dist") / "results")
    mp.spawn(
        distributed_checks.worker,
        args=(WORLD, f"tcp://127.0.0.1:{port}", out),
        nprocs=WORLD,
        join=True,
    )
    found = []
    for rank in range(WORLD):
        with open(f"{out}.{rank}.json") as f:
            found.append(json.load(f))
    return found


@pytest.mark.parametrize("name", list(distributed_checks.checks()))
def test_two_processes(results, name):
    """Step invariant (model and proxies, SGD and AdamW, uneven rows), all_gather, sharding."""
    for rank, found in enumerate(results):
        assert found.get(name, "not run") is None, f"rank {rank}: {found.get(name, 'not run')}"


def test_no_process_group_is_a_no_op():
    assert (D.is_distributed(), D.world_size(), D.rank()) == (False, 1, 0)
    x = torch.randn(3, 2)
    assert D.all_gather(x) is x
    g = torch.Generator().manual_seed(0)
    emb, labels = torch.randn(8, 4, generator=g), torch.tensor([0, 1, 2, 0, 1, 2, 3, 3])
    for cls in (
        losskit.ProxyAnchorLoss,
        losskit.CosineSoftmaxCrossEntropyLoss,
        losskit.ArcFaceLoss,
        losskit.SubCenterArcFaceLoss,
        losskit.ProxyNCALoss,
    ):
        torch.manual_seed(0)
        plain = cls(5, 4)
        torch.manual_seed(0)
        gathered = cls(5, 4, gather_distributed=True, shard_proxies=True)
        assert torch.equal(plain(emb, labels), gathered(emb, labels))
        assert torch.equal(plain.nearest_proxy(emb), gathered.nearest_proxy(emb))
    for pair in (losskit.OnlineTripletLoss, losskit.SupConLoss, losskit.CircleLoss):
        assert torch.equal(pair(gather_distributed=True)(emb, labels), pair()(emb, labels))
    p, z = emb[:4], emb[4:]
    for two_view in (losskit.NegativeCosineLoss, losskit.DCLLoss):
        assert torch.equal(two_view(gather_distributed=True)(p, z), two_view()(p, z))


def test_errors():
    with pytest.raises(ValueError, match="expected `shard_proxies` together with gather_distrib"):
        losskit.ProxyAnchorLoss(5, 4, shard_proxies=True)
    with pytest.raises(TypeError, match="gather_distributed"):
        losskit.NTXentLoss(gather_distributed="yes")
    with pytest.raises(ValueError, match="expected `shard_proxies` together with gather_distrib"):
        losskit.ArcFaceLoss(5, 4, shard_proxies=True)
    with pytest.raises(TypeError, match="arcface: expected `gather_distributed`"):
        losskit.functional.arcface(
            torch.randn(2, 4), torch.tensor([0, 1]), torch.randn(3, 4), gather_distributed=1
        )
    with pytest.raises(ValueError, match=r"supcon: expected `gather_distributed` False with `re"):
        losskit.functional.supcon(
            torch.randn(2, 4), torch.tensor([0, 1]), reference=torch.randn(3, 4),
            reference_labels=torch.tensor([0, 1, 1]), gather_distributed=True,
        )  # fmt: skip
    with pytest.raises(TypeError, match="NegativeCosineLoss: expected `gather_distributed`"):
        losskit.NegativeCosineLoss(gather_distributed=1)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        D.all_gather(torch.tensor(1.0))
