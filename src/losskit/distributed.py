"""Process-group helpers for global-batch losses (``torch.distributed``; no transport of our own).

Every helper is a no-op in a single process or before ``torch.distributed.init_process_group``:
:func:`world_size` is then 1, :func:`rank` 0 and :func:`all_gather` returns its input.

Gradients under ``DistributedDataParallel``: each rank back-propagates only through its own
rows and DDP *averages* the model gradients over the ``W`` ranks. A loss computed on the
gathered batch on every rank therefore gives the right step when the backward of
:func:`all_gather` hands each rank the **sum** over ranks of the gradients of its rows (``W``
copies of the global gradient, averaged back to one by DDP). Losses that split their work over
the ranks instead (sharded proxies: each rank computes a share ``L_r``, ``Σ_r L_r = L``) gather
with :func:`gather_shares` (the same, times ``W``) and add the shares with :func:`sum_shares`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["all_gather", "is_distributed", "rank", "shard_range", "world_size"]


def is_distributed() -> bool:
    """Whether a default process group is initialised (``torch.distributed``)."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes of the default group; 1 without a process group."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank in the default group; 0 without a process group."""
    return dist.get_rank() if is_distributed() else 0


def shard_range(num_items: int, *, rank_: int | None = None, size: int | None = None) -> range:
    """The contiguous block ``[r·⌈n/W⌉, min(n, (r+1)·⌈n/W⌉))`` of ``n`` items owned by rank ``r``.

    Example:
        >>> shard_range(7, rank_=1, size=2)
        range(4, 7)
    """
    r, w = rank() if rank_ is None else rank_, world_size() if size is None else size
    per_rank = -(-num_items // w)
    return range(min(num_items, r * per_rank), min(num_items, (r + 1) * per_rank))


def _row_counts(tensor: Tensor) -> list[int]:
    """Rows of ``tensor`` on every rank, in rank order."""
    mine = torch.tensor([tensor.shape[0]], dtype=torch.long, device=tensor.device)
    counts = [torch.empty_like(mine) for _ in range(world_size())]
    dist.all_gather(counts, mine)
    return [int(c) for c in counts]


def _slice_of_rank(counts: list[int]) -> slice:
    return slice(sum(counts[: rank()]), sum(counts[: rank() + 1]))


class _AllGather(torch.autograd.Function):
    """Rows of every rank concatenated in rank order; backward: summed over ranks, own rows."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        counts = _row_counts(tensor)
        ctx.rows = _slice_of_rank(counts)
        padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded)
        return torch.cat([part[:n] for part, n in zip(parts, counts)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        # A private contiguous copy: incoming gradients may be expanded, transposed or shared.
        total = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total[ctx.rows]


def all_gather(tensor: Tensor) -> Tensor:
    """Concatenate every rank's ``tensor`` along dim 0 in rank order, differentiably.

    The ranks may hold different numbers of rows (the trailing shape and dtype must agree).
    In backward each rank receives, for its own rows, the sum over all ranks of the gradients
    flowing into those rows (as ``torch.distributed.nn.functional.all_gather``), also for
    non-contiguous gradients. Without a process group it returns ``tensor`` itself.

    Args:
        tensor (Tensor[n_r, ...]): this rank's rows.

    Returns:
        Tensor[Σ_r n_r, ...]: the rows of rank 0, then rank 1, ...

    Raises:
        ValueError: a 0-d ``tensor``.

    Example:
        >>> all_gather(torch.ones(2, 3)).shape  # no process group: the input itself
        torch.Size([2, 3])
    """
    if tensor.dim() == 0:
        raise ValueError(f"all_gather: expected `tensor` with at least 1 dimension, got {()}")
    if world_size() == 1:
        return tensor
    return _AllGather.apply(tensor)


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: Tensor, factor: float) -> Tensor:
        ctx.factor = factor
        return tensor.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.factor, None


class _SumShares(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, share: Tensor) -> Tensor:
        total = share.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad  # ∂(Σ_r L_r)/∂L_r = 1


def gather_shares(tensor: Tensor) -> Tensor:
    """:func:`all_gather` whose backward is multiplied by ``W``, for losses computed as shares.

    Rank ``r``'s share ``L_r`` of ``L = Σ_r L_r`` sends back ``∂L_r/∂X``; the summed backward
    gives each rank ``∂L/∂x_r``, and the factor ``W`` cancels DDP's average over ranks.
    """
    if world_size() == 1:
        return tensor
    return all_gather(_ScaleGrad.apply(tensor, float(world_size())))


def sum_shares(share: Tensor) -> Tensor:
    """``Σ_r share_r`` on every rank; the gradient of each share is that of the sum."""
    return share if world_size() == 1 else _SumShares.apply(share)


def all_reduce_logsumexp(values: Tensor) -> Tensor:
    """Element-wise ``log Σ_r exp(values_r)`` over ranks (no autograd; finite values)."""
    if world_size() == 1:
        return values
    top = values.clone()
    dist.all_reduce(top, op=dist.ReduceOp.MAX)
    total = torch.exp(values - top)
    dist.all_reduce(total)
    return top + torch.log(total)


def broadcast_(tensor: Tensor, src: int = 0) -> Tensor:
    """Overwrite ``tensor`` in place with rank ``src``'s (through the current GPU under NCCL)."""
    if world_size() == 1:
        return tensor
    on_gpu_only = dist.get_backend() == "nccl" and tensor.device.type == "cpu"
    buffer = tensor.to(torch.device("cuda", torch.cuda.current_device())) if on_gpu_only else tensor
    dist.broadcast(buffer, src)
    if buffer is not tensor:
        tensor.copy_(buffer)
    return tensor


def local_rows(tensor: Tensor) -> slice:
    """Where this rank's rows of ``tensor`` lie in :func:`all_gather` ``(tensor)``."""
    if world_size() == 1:
        return slice(0, tensor.shape[0])
    return _slice_of_rank(_row_counts(tensor))


def best_over_ranks(values: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """Per row, the largest ``values`` over ranks and its ``index`` (lowest rank on ties)."""
    if world_size() == 1:
        return values, index
    all_values = [torch.empty_like(values) for _ in range(world_size())]
    all_index = [torch.empty_like(index) for _ in range(world_size())]
    dist.all_gather(all_values, values.contiguous())
    dist.all_gather(all_index, index.contiguous())
    best, which = torch.stack(all_values).max(dim=0)
    return best, torch.stack(all_index).gather(0, which.unsqueeze(0)).squeeze(0)
