"""Checkpoints: save, verify and load.

A checkpoint holds everything needed to continue a run exactly: the model and objective (the
proxies live there), optimiser, scheduler and gradient-scaler states, the epoch and step reached,
the selection so far, the random-number generator states, the resolved config and what the data
looked like (classes, sample shape), so ``losskit evaluate`` / ``predict`` need nothing else.

Files are written with :func:`losskit._files.atomic_write` (a crash never leaves a half-written
checkpoint). A checkpoint is a zip archive whose records carry CRC-32 checksums; every load
verifies them first, so a damaged file is refused instead of loading silently wrong numbers.
It is then read with ``torch.load(weights_only=True)``: plain tensors, numbers, strings, lists
and dicts only — a file is never unpickled.

Proxies sharded over the processes of a ``torchrun`` run are saved whole, with their optimiser
state (:func:`whole_optimizer_state`); each process of the resuming run, whatever their number,
takes its rows back (:func:`sharded_optimizer_state`), and one process reads them as they are.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from losskit import distributed
from losskit._files import atomic_write

__all__ = [
    "CheckpointError",
    "atomic_write",
    "load_checkpoint",
    "restore_rng_state",
    "rng_state",
    "save_checkpoint",
    "sharded_optimizer_state",
    "verify_checkpoint",
    "whole_optimizer_state",
]


class CheckpointError(ValueError):
    """A file that is damaged or is not a losskit checkpoint."""


def rng_state() -> dict[str, Any]:
    """The Python, NumPy and torch (CPU and CUDA) generator states, as loadable plain data."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(_to_tuple(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tuple(x: Any) -> Any:
    return tuple(_to_tuple(v) for v in x) if isinstance(x, list | tuple) else x


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically (the folder is created if needed)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(state, f))


def verify_checkpoint(path: str | os.PathLike[str]) -> None:
    """Check that ``path`` is a readable archive whose records match their CRC-32 checksums.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is damaged or is not a checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint: no checkpoint at {p}")
    try:
        with zipfile.ZipFile(p) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise CheckpointError(
            f"checkpoint: {p} is damaged or not a losskit checkpoint ({err})"
        ) from None
    if bad is not None:
        raise CheckpointError(f"checkpoint: {p} is damaged (checksum mismatch in record {bad})")


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Verify (:func:`verify_checkpoint`) and read a checkpoint (``weights_only=True``).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is damaged, or holds something other than a losskit
            checkpoint (it is never unpickled).
    """
    verify_checkpoint(path)
    p = Path(path)
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(
            f"checkpoint: {p} is not a losskit checkpoint or is damaged (files are never "
            f"unpickled; {first})"
        ) from None
    if not isinstance(state, dict) or not {"model", "epoch", "config"} <= set(state):
        raise CheckpointError(f"checkpoint: {p} is not a losskit checkpoint")
    return state


def _index_of(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> int:
    """``param``'s key in ``optimizer.state_dict()["state"]`` (its place over the groups)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return next(i for i, p in enumerate(params) if p is param)


def whole_optimizer_state(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> dict[str, Any]:
    """``optimizer.state_dict()`` in which the state of ``param`` — a block of rows on each
    process, in rank order (e.g. AdamW's moments of sharded proxies) — is gathered whole.
    Every process must call it."""
    state = optimizer.state_dict()
    index = _index_of(optimizer, param)
    entry = state["state"].get(index)
    if entry is not None:  # a new dict: state_dict() shares the live state's tensors
        whole = {
            key: distributed.all_gather(v.detach())
            if isinstance(v, torch.Tensor) and v.shape == param.shape
            else v
            for key, v in entry.items()
        }
        state["state"] = {**state["state"], index: whole}
    return state


def sharded_optimizer_state(
    state: dict[str, Any], optimizer: torch.optim.Optimizer, param: torch.Tensor, rows: slice
) -> dict[str, Any]:
    """The inverse of :func:`whole_optimizer_state` on this process: the whole state of
    ``param`` in ``state`` cut to its ``rows`` (copies, so the whole tensors are freed)."""
    index = _index_of(optimizer, param)
    entry = state["state"].get(index)
    if entry is None:
        return state
    mine = {
        key: v[rows].clone() if isinstance(v, torch.Tensor) and v.dim() == param.dim() else v
        for key, v in entry.items()
    }
    return {**state, "state": {**state["state"], index: mine}}
