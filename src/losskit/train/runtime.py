"""Where a run executes: device, precision, process rank, threads and seeds."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from losskit._checks import fail
from losskit.train.config import TrainConfig

__all__ = [
    "Runtime",
    "cpu_threads",
    "epoch_seed",
    "first_to_fail",
    "from_main_process",
    "seed_everything",
    "share_buffers",
    "wrap_model",
]

T = TypeVar("T")
_failures: dist.Store | None = None  # counts the failed processes of a multi-process run

SMALL_MODEL_PARAMETERS = 1_000_000
# A rank that waits this long in a collective (another rank stuck or gone) fails instead of
# hanging; torchrun then stops the others.
COLLECTIVE_TIMEOUT = timedelta(minutes=10)


@dataclass(frozen=True)
class Runtime:
    """Device, mixed precision and, for multi-process runs, rank and world size.

    Only the main process (rank 0) writes files and prints; a multi-process launcher sets
    ``RANK`` / ``WORLD_SIZE`` and everything rank-dependent reads them from here.
    ``amp_dtype`` is the autocast dtype (``None``: full precision): bfloat16 on the CPU and on
    CUDA devices that support it, else float16 (with loss scaling).
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1
    amp_dtype: torch.dtype | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def precision(self) -> str:
        """How the forward pass computes, for the banner."""
        if self.amp_dtype is None:
            return "float32"
        scaled = " with loss scaling" if self.amp_dtype == torch.float16 else ""
        return f"{str(self.amp_dtype).removeprefix('torch.')} autocast{scaled}"

    @classmethod
    def from_env(cls, device: str, *, amp: bool = False) -> Runtime:
        """The runtime of this process; under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the
        process group (gloo on the CPU, NCCL on CUDA with the device ``LOCAL_RANK``)."""
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            dev = torch.device(device)
        except RuntimeError:
            fail("train", "device", "'auto', 'cpu', 'cuda' or 'cuda:<index>'", repr(device))
        if dev.type == "cuda" and not torch.cuda.is_available():
            fail("train", "device", "an available device (CUDA is not available)", repr(device))
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size > 1:
            dev = _join_process_group(dev)
        dtype = None
        if amp:
            bf16 = dev.type == "cpu" or (dev.type == "cuda" and torch.cuda.is_bf16_supported())
            dtype = torch.bfloat16 if bf16 else torch.float16
        return cls(
            dev,
            rank=int(os.environ.get("RANK", "0")),
            world_size=world_size,
            amp_dtype=dtype,
        )


def _join_process_group(device: torch.device) -> torch.device:
    """Initialise the default process group from torchrun's environment (once); the device of
    this process (``cuda:LOCAL_RANK`` on CUDA)."""
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        global _failures
        backend = "nccl" if device.type == "cuda" else "gloo"
        store, rank, world_size = next(dist.rendezvous("env://", timeout=COLLECTIVE_TIMEOUT))
        store.set_timeout(COLLECTIVE_TIMEOUT)
        _failures = dist.PrefixStore("losskit/failures", store)
        dist.init_process_group(
            backend,
            store=dist.PrefixStore("default_pg", store),  # what init_process_group would use
            rank=rank,
            world_size=world_size,
            timeout=COLLECTIVE_TIMEOUT,
        )
    return device


def leave_process_group() -> None:
    """Close the process group :func:`_join_process_group` opened, once every process has
    finished (a group left to the interpreter's exit may abort a process as it shuts down).
    A group the caller opened is left open."""
    global _failures
    if _failures is not None and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        _failures = None


def first_to_fail() -> bool:
    """Whether this process is the first of the run to fail (call it once, on failure).

    When one process fails the others fail next, in the collective it no longer joins; only
    the first reports its error, so a run stops with the failing process's message. A process
    counts its failure in the launcher's store before the failure closes its connections, so
    the others' failures always come later. True in a single process.
    """
    if _failures is None:
        return True
    try:
        return int(_failures.add("count", 1)) == 1
    except (RuntimeError, OSError):  # the store went away: report rather than lose the error
        return True


def from_main_process(value: T) -> T:
    """Rank 0's ``value`` on every process of a multi-process run (e.g. the resolved config,
    whose default run folder carries a timestamp), else ``value``."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wrap_model(model: nn.Module, runtime: Runtime, *, frozen_epochs: bool) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` in a multi-process run (the model only: losses
    keep their own parameters in step), else ``model`` itself."""
    if runtime.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [runtime.device.index] if runtime.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=frozen_epochs)


def share_buffers(model: nn.Module, runtime: Runtime) -> None:
    """Give every process rank 0's buffers (batch-norm running statistics), before evaluating.

    ``DistributedDataParallel`` copies rank 0's buffers to the others at the start of each
    forward, so after an epoch's last step each rank holds statistics updated by its own last
    batch; evaluated that way, each rank's block of a split would be embedded by a slightly
    different model than the ``best.pt`` rank 0 saves, and ``losskit evaluate`` would not
    reproduce ``results.json``.
    """
    if runtime.world_size == 1:
        return
    from losskit import distributed

    with torch.no_grad():
        for buffer in model.buffers():
            distributed.broadcast_(buffer, src=0)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's shuffling, augmentation and dropout, from the run's seed and
    the epoch."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def cpu_threads(config: TrainConfig, model: nn.Module) -> int:
    """Intra-op threads for CPU training: ``cpu_threads`` if set, else 1 for a small model
    (under a million parameters: its matrices are too small to gain from threads, and busy
    threads waiting on a shared machine slow it down many times), else torch's default."""
    if config.cpu_threads is not None:
        return config.cpu_threads
    small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS
    return 1 if small else torch.get_num_threads()
