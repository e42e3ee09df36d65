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

from losskit._files import atomic_write

__all__ = [
    "CheckpointError",
    "atomic_write",
    "load_checkpoint",
    "restore_rng_state",
    "rng_state",
    "save_checkpoint",
    "verify_checkpoint",
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
