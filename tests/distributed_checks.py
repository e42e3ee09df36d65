"""Checks run inside a 2-process gloo group spawned by ``tests/test_distributed.py``.

Each rank runs every check and records ``name -> None | error message`` in a JSON file.
References are computed in the same process without any gathering, on the concatenated batch.
"""

from __future__ import annotations

import copy
import json
import traceback
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import losskit
from losskit import distributed as D
from losskit.functional import arcface, cosface, nearest_proxy, proxy_nca, subcenter_arcface

F64 = torch.float64
ROWS = (3, 5)  # uneven rows per rank
CLASSES = 7  # not divisible by the world size


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n = sum(ROWS)
    return (
        torch.randn(n, 6, generator=g, dtype=F64),
        torch.randn(n, 6, generator=g, dtype=F64),
        torch.tensor([0, 1, 2, 0, 1, 3, 6, 2]),
    )


def _mine(t: torch.Tensor) -> torch.Tensor:
    start = sum(ROWS[: D.rank()])
    return t[start : start + ROWS[D.rank()]]


def check_all_gather() -> None:
    g = torch.Generator().manual_seed(1)
    full = torch.randn(sum(ROWS), 4, generator=g, dtype=F64)
    weights = torch.randn(D.world_size(), 4, sum(ROWS), generator=g, dtype=F64)
    x = _mine(full).clone().requires_grad_()
    y = D.all_gather(x)
    torch.testing.assert_close(y, full, rtol=0, atol=0)
    # y.T makes the incoming gradient non-contiguous; each rank weighs the rows differently.
    (y.T * weights[D.rank()]).sum().backward()
    expected = _mine(weights.sum(0).T)
    assert x.grad is not None
    torch.testing.assert_close(x.grad, expected, rtol=1e-12, atol=1e-12)
    labels = D.all_gather(_mine(torch.arange(sum(ROWS))))
    assert labels.tolist() == list(range(sum(ROWS)))


def _pair_input(loss: nn.Module, model: nn.Module, a, b, y):
    za, zb = model(torch.cat([a, b])).split(a.shape[0])
    if isinstance(loss, losskit.OnlineTripletLoss):
        return loss(za, y)
    return loss(za, zb)


def _labelled_input(loss, model, a, b, y):
    return loss(model(a), y)


LOSSES: dict[str, tuple[Callable[..., nn.Module], Callable, bool]] = {
    "online_triplet": (lambda **k: losskit.OnlineTripletLoss(margin=2.0, **k), _pair_input, False),
    "online_triplet_all": (
        lambda **k: losskit.OnlineTripletLoss(margin=2.0, mining="batch_all", **k),
        _pair_input,
        False,
    ),
    "info_nce": (lambda **k: losskit.InfoNCELoss(temperature=0.5, **k), _pair_input, False),
    "nt_xent": (lambda **k: losskit.NTXentLoss(**k), _pair_input, False),
    "proxy_anchor": (
        lambda **k: losskit.ProxyAnchorLoss(CLASSES, 4, alpha=8.0, chunk_size=2, **k),
        _labelled_input,
        True,
    ),
    "focal_proxy_anchor": (
        lambda **k: losskit.FocalStyleProxyAnchorLoss(CLASSES, 4, alpha=8.0, chunk_size=3, **k),
        _labelled_input,
        True,
    ),
    "multi_proxy_anchor": (
        lambda **k: losskit.MultiProxyAnchorLoss(CLASSES, 4, proxies_per_class=2, alpha=8.0, **k),
        _labelled_input,
        False,
    ),
    "supcon": (lambda **k: losskit.SupConLoss(temperature=0.5, **k), _labelled_input, False),
    "multi_similarity": (
        lambda **k: losskit.MultiSimilarityLoss(mining="multi_similarity", epsilon=0.5, **k),
        _labelled_input,
        False,
    ),
    "circle": (lambda **k: losskit.CircleLoss(margin=0.4, gamma=4.0, **k), _labelled_input, False),
    "barlow_twins": (lambda **k: losskit.BarlowTwinsLoss(lambda_=0.1, **k), _pair_input, False),
    "vicreg": (lambda **k: losskit.VICRegLoss(**k), _pair_input, False),
    "dcl": (lambda **k: losskit.DCLLoss(temperature=0.5, **k), _pair_input, False),
    "negative_cosine": (lambda **k: losskit.NegativeCosineLoss(**k), _pair_input, False),
    "cosine_softmax_cross_entropy": (
        lambda **k: losskit.CosineSoftmaxCrossEntropyLoss(CLASSES, 4, scale=4.0, chunk_size=2, **k),
        _labelled_input,
        True,
    ),
    "cosine_softmax_cross_entropy_none": (
        lambda **k: losskit.CosineSoftmaxCrossEntropyLoss(CLASSES, 4, reduction="none", **k),
        _labelled_input,
        True,
    ),
    "arcface": (
        lambda **k: losskit.ArcFaceLoss(CLASSES, 4, scale=4.0, margin=0.3, chunk_size=2, **k),
        _labelled_input,
        True,
    ),
    "arcface_none": (
        lambda **k: losskit.ArcFaceLoss(CLASSES, 4, scale=4.0, reduction="none", **k),
        _labelled_input,
        True,
    ),
    "cosface": (
        lambda **k: losskit.CosFaceLoss(CLASSES, 4, scale=4.0, margin=0.2, chunk_size=3, **k),
        _labelled_input,
        True,
    ),
    "subcenter_arcface": (
        lambda **k: losskit.SubCenterArcFaceLoss(
            CLASSES, 4, sub_centers=2, scale=4.0, margin=0.3, chunk_size=2, **k
        ),
        _labelled_input,
        True,
    ),
    "proxy_nca": (
        lambda **k: losskit.ProxyNCALoss(CLASSES, 4, temperature=0.5, chunk_size=3, **k),
        _labelled_input,
        True,
    ),
}

OPTIMISERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.5, momentum=0.9, weight_decay=0.1),
    # A large eps keeps AdamW's first step sensitive to the scale of the gradients.
    "adamw": lambda params: torch.optim.AdamW(params, lr=0.1, eps=0.5, weight_decay=0.1),
}


def _step(model, loss, run, opt_name, a, b, y) -> torch.Tensor:
    opt = OPTIMISERS[opt_name](list(model.parameters()) + list(loss.parameters()))
    value = run(loss, model, a, b, y)
    value = value.sum() if value.dim() else value
    opt.zero_grad()
    value.backward()
    opt.step()
    return value.detach()


def check_step(name: str, opt_name: str, shard: bool) -> None:
    make, run, _ = LOSSES[name]
    torch.manual_seed(0)
    model = nn.Linear(6, 4).to(F64)
    reference = make().to(F64)
    torch.manual_seed(0)
    loss = make(gather_distributed=True, shard_proxies=True).to(F64) if shard else None
    if loss is None:
        loss = make(gather_distributed=True).to(F64)
    if hasattr(loss, "proxies"):
        with torch.no_grad():  # the same starting proxies (the reference's full set)
            loss.proxies.copy_(reference.proxies[_proxy_rows(loss)])
    ddp = DistributedDataParallel(copy.deepcopy(model))
    a, b, y = _inputs()
    before = [p.detach().clone() for p in model.parameters()]
    ref_value = _step(model, reference, run, opt_name, a, b, y)
    value = _step(ddp, loss, run, opt_name, _mine(a), _mine(b), _mine(y))
    # The global-batch loss, bit-identical on every rank.
    torch.testing.assert_close(value, ref_value, rtol=1e-12, atol=1e-12)
    values = [torch.empty_like(value) for _ in range(D.world_size())]
    dist.all_gather(values, value)
    assert all(bool(v == value) for v in values), f"values differ over ranks: {values}"
    # Model step.
    for p0, p_ref, p in zip(before, model.parameters(), ddp.module.parameters()):
        step = (p_ref - p0).abs().max()
        err = (p - p_ref).abs().max()
        assert err <= 1e-6 * step, f"model step error {float(err):.3g} of step {float(step):.3g}"
    # Proxy step (this rank's block when sharded) and the proxies identical on every rank.
    if hasattr(loss, "proxies"):
        rows = _proxy_rows(loss)
        ref_step = reference.proxies[rows] - before_proxies(reference, make)[rows]
        err = (loss.proxies - reference.proxies[rows]).abs().max()
        step = ref_step.abs().max()
        assert err <= 1e-6 * step, f"proxy step error {float(err):.3g} of step {float(step):.3g}"
        assert loss.proxies.shape[0] == (
            (len(D.shard_range(CLASSES)) if shard else CLASSES) * loss.proxies_per_class
        )
        if not shard:
            copies = [torch.empty_like(loss.proxies) for _ in range(D.world_size())]
            dist.all_gather(copies, loss.proxies.detach())
            assert all(torch.equal(c, copies[0]) for c in copies), "proxies differ over ranks"


def _proxy_rows(loss: nn.Module) -> slice:
    """The rows of the whole proxies that ``loss`` holds (its block when sharded)."""
    offset = loss.block.offset * loss.proxies_per_class if loss.block is not None else 0
    return slice(offset, offset + loss.proxies.shape[0])


def before_proxies(reference: nn.Module, make) -> torch.Tensor:
    torch.manual_seed(0)
    nn.Linear(6, 4)
    return make().to(F64).proxies.detach()


def _objective(shard: bool) -> nn.Module:
    from losskit.train.config import TrainConfig
    from losskit.train.objective import Objective

    torch.manual_seed(0)
    config = TrainConfig(loss_type="proxy", proxy_alpha=8.0, shard_proxies=shard)
    return Objective(config, CLASSES, 6).to(F64)


def _adamw(objective: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(objective.parameters(), lr=0.1, eps=1e-3, weight_decay=0.0)


def _train_steps(objective: nn.Module, opt: torch.optim.Optimizer, steps: range) -> None:
    x, _, y = _inputs()
    x, y = _mine(x), _mine(y)  # each rank's rows; the proxy loss gathers the batch
    for seed in steps:
        opt.zero_grad()
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
        objective(x + noise[: x.shape[0]], x.new_zeros(x.shape[0], CLASSES), y).total.backward()
        opt.step()


def check_trainer_sharded_checkpoint() -> None:
    """The trainer's sharded proxies: they start as the replicated ones; saved whole with
    AdamW's moments and cut back into blocks, they continue as the replicated run does."""
    from losskit.train.checkpoint import sharded_optimizer_state, whole_optimizer_state

    replicated, sharded = _objective(False), _objective(True)
    rows = sharded.sharded_rows
    assert rows == _proxy_rows(sharded.proxy_loss) and sharded.proxies.shape[0] < CLASSES
    start = sharded.whole_state_dict()["proxy_loss.proxies"]
    torch.testing.assert_close(start, replicated.proxies, rtol=0, atol=0)
    ref_opt, opt = _adamw(replicated), _adamw(sharded)
    _train_steps(replicated, ref_opt, range(2))
    _train_steps(sharded, opt, range(2))
    whole, ref_state = whole_optimizer_state(opt, sharded.proxies), ref_opt.state_dict()
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(
            whole["state"][0][key], ref_state["state"][0][key], rtol=1e-10, atol=1e-14
        )
    assert opt.state[sharded.proxies]["exp_avg"].shape == sharded.proxies.shape  # live: a block
    saved = sharded.whole_state_dict()
    torch.testing.assert_close(saved["proxy_loss.proxies"], replicated.proxies, rtol=1e-10,
                               atol=1e-12)  # fmt: skip
    # Resume: a new sharded objective and optimiser from the whole state, two more steps.
    resumed = _objective(True)
    resumed.load_whole_state_dict(saved)
    resumed_opt = _adamw(resumed)
    resumed_opt.load_state_dict(sharded_optimizer_state(whole, resumed_opt, resumed.proxies, rows))
    _train_steps(replicated, ref_opt, range(2, 4))
    _train_steps(resumed, resumed_opt, range(2, 4))
    torch.testing.assert_close(resumed.proxies, replicated.proxies[rows], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(resumed.all_proxies(), replicated.proxies, rtol=1e-9, atol=1e-12)


def check_trainer_clips_over_all_blocks() -> None:
    """``grad_clip`` with sharded proxies scales every gradient as with replicated proxies."""
    from types import SimpleNamespace

    from losskit.train.loop import clip_gradients

    g = torch.Generator().manual_seed(3)
    weight_grad = torch.randn(4, 6, generator=g, dtype=F64)
    proxy_grad = torch.randn(CLASSES, 6, generator=g, dtype=F64)
    clipped = []
    for objective in (_objective(False), _objective(True)):
        weight = nn.Parameter(torch.zeros(4, 6, dtype=F64))
        weight.grad = weight_grad.clone()
        rows = objective.sharded_rows or slice(None)
        objective.proxies.grad = proxy_grad[rows].clone()
        run = SimpleNamespace(
            optimizer=torch.optim.SGD([weight, *objective.parameters()], lr=0.1),
            objective=objective,
            runtime=SimpleNamespace(device=torch.device("cpu")),
        )
        clip_gradients(run, 1.0)  # type: ignore[arg-type]
        clipped.append((weight.grad, objective.proxies.grad, rows))
    (w_ref, p_ref, _), (w, p, rows) = clipped
    whole = torch.cat([weight_grad.flatten(), proxy_grad.flatten()]).norm()
    torch.testing.assert_close(w_ref, weight_grad / whole, rtol=1e-5, atol=0)
    torch.testing.assert_close(w, w_ref, rtol=1e-12, atol=0)
    torch.testing.assert_close(p, p_ref[rows], rtol=1e-12, atol=0)


def check_margin_functions() -> None:
    """The functions' ``gather_distributed``: the global-batch value and proxy gradient."""
    x, _, y = _inputs(2)
    for fn in (arcface, cosface, proxy_nca, subcenter_arcface):
        k = {"sub_centers": 2} if fn is subcenter_arcface else {}
        proxies = torch.randn(CLASSES * k.get("sub_centers", 1), 6, dtype=F64)
        p_ref, p = proxies.clone().requires_grad_(), proxies.clone().requires_grad_()
        xs = _mine(x).clone().requires_grad_()
        ref = fn(x, y, p_ref, **k)
        ref.backward()
        got = fn(xs, _mine(y), p, gather_distributed=True, **k)
        got.backward()
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-10, atol=1e-12)


def check_nearest_proxy_sharded() -> None:
    torch.manual_seed(0)
    full = losskit.ProxyAnchorLoss(CLASSES, 4).to(F64)
    loss = losskit.ProxyAnchorLoss(CLASSES, 4, gather_distributed=True, shard_proxies=True)
    loss = loss.to(F64)
    assert loss.block is not None
    with torch.no_grad():
        loss.proxies.copy_(full.proxies[loss.block.offset : loss.block.offset + len(loss.proxies)])
    g = torch.Generator().manual_seed(3)
    x = torch.randn(sum(ROWS), 4, generator=g, dtype=F64)
    logits = torch.randn(sum(ROWS), CLASSES, generator=g, dtype=F64)
    got = loss.nearest_proxy(_mine(x))
    assert torch.equal(got, _mine(nearest_proxy(x, full.proxies))), got
    got = loss.nearest_proxy(_mine(x), _mine(logits), 0.7)
    assert torch.equal(got, _mine(nearest_proxy(x, full.proxies, logits, 0.7))), got


def check_nearest_proxy_sub_centers() -> None:
    torch.manual_seed(0)
    full = losskit.SubCenterArcFaceLoss(CLASSES, 4, sub_centers=2).to(F64)
    loss = losskit.SubCenterArcFaceLoss(
        CLASSES, 4, sub_centers=2, gather_distributed=True, shard_proxies=True
    ).to(F64)
    with torch.no_grad():
        loss.proxies.copy_(full.proxies[_proxy_rows(loss)])
    x = torch.randn(sum(ROWS), 4, generator=torch.Generator().manual_seed(4), dtype=F64)
    got = loss.nearest_proxy(_mine(x))
    assert torch.equal(got, _mine(full.nearest_proxy(x))), got


def check_errors() -> None:
    try:
        losskit.ProxyAnchorLoss(1, 4, gather_distributed=True, shard_proxies=True)
    except ValueError as err:
        assert "each of the 2 ranks holds some classes" in str(err), str(err)
    else:
        raise AssertionError("no error for an empty block")


def check_shared_buffers() -> None:
    """After a DDP step on different rows, each rank's batch-norm statistics are its own;
    ``share_buffers`` gives every rank those of rank 0 (the model rank 0 saves)."""
    from losskit.train.runtime import Runtime, share_buffers

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4))
    net = DistributedDataParallel(model)
    x, _, _ = _inputs(2)
    net(_mine(x).float()).sum().backward()
    stats = D.all_gather(model[1].running_mean.unsqueeze(0))
    assert not torch.equal(stats[0], stats[1]), "the ranks' statistics should differ here"
    share_buffers(model, Runtime(torch.device("cpu"), rank=D.rank(), world_size=D.world_size()))
    for buffer in model.buffers():
        gathered = D.all_gather(buffer.reshape(1, -1).float())
        assert torch.equal(gathered[0], gathered[1]), "buffers differ after share_buffers"
    assert torch.equal(model[1].running_mean, stats[0])


def checks() -> dict[str, Callable[[], None]]:
    found: dict[str, Callable[[], None]] = {
        "all_gather": check_all_gather,
        "nearest_proxy_sharded": check_nearest_proxy_sharded,
        "nearest_proxy_sharded_sub_centers": check_nearest_proxy_sub_centers,
        "margin_functions": check_margin_functions,
        "errors": check_errors,
        "shared_buffers": check_shared_buffers,
        "trainer_sharded_checkpoint": check_trainer_sharded_checkpoint,
        "trainer_clips_over_all_blocks": check_trainer_clips_over_all_blocks,
    }
    for name, (_, _, shardable) in LOSSES.items():
        for opt in OPTIMISERS:
            found[f"{name}-{opt}"] = lambda n=name, o=opt: check_step(n, o, False)
            if shardable:
                found[f"{name}-{opt}-sharded"] = lambda n=name, o=opt: check_step(n, o, True)
    return found


def worker(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    results: dict[str, str | None] = {}
    try:
        for name, check in checks().items():
            try:
                check()
                results[name] = None
            except Exception:  # recorded per check, reported by the test of that name
                results[name] = traceback.format_exc(limit=4)
            dist.barrier()
    finally:
        with open(f"{out}.{rank}.json", "w") as f:
            json.dump(results, f)
        dist.destroy_process_group()
