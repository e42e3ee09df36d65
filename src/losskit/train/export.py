"""A trained run applied to new data: its features (``losskit embed``) and a portable program
(``losskit export``).

Both take raw samples ``(N, *sample_shape)`` as stored in the data files and apply the run's
standardisation (the training statistics saved in the checkpoint) first, as ``losskit predict``
does. The exported program is a :func:`torch.export.export` graph of plain ATen operations with the
weights and the statistics inside: ``torch.export.load(path).module()(x)`` returns
``(features, logits)`` with torch alone, for any batch size.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from losskit._checks import fail
from losskit._files import atomic_write
from losskit._scaled import l2_normalize
from losskit.train.assembly import raw_inputs
from losskit.train.data.arrays import check_float32_range, read_npy

if TYPE_CHECKING:
    from losskit.train.assembly import LoadedRun

__all__ = [
    "METADATA_FILE",
    "StandardizedModel",
    "check_output_path",
    "check_run_dir",
    "embed_samples",
    "export_program",
    "program_metadata",
    "read_samples",
    "save_program",
]

METADATA_FILE = "losskit.json"
"""The name of the metadata saved beside the program (``torch.export.load(extra_files=...)``)."""
_BATCH = 1024


def read_samples(
    fn: str, path: str | os.PathLike[str], info: dict[str, Any], *, normalized: bool = False
) -> Tensor:
    """The samples of the ``.npy`` file at ``path`` as model inputs ``(N, *sample_shape)``.

    One sample of ``sample_shape`` is taken as a batch of one. Unless ``normalized``, the run's
    standardisation (``info["input_mean"]`` / ``info["input_std"]``, array data only) is applied.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a ``.npy`` array of numbers, samples of another shape, an empty batch,
            NaN / inf values (the message gives the first rows that hold them), or float64
            values beyond the float32 range.
    """
    raw = read_npy(fn, "input", Path(path))
    if raw.dtype.kind not in "uif":
        fail(fn, "input", "to hold numbers (integer or float)", f"dtype {raw.dtype}")
    check_float32_range(fn, "input", raw)
    x = raw_inputs(raw, info, fn=fn, normalized=normalized)
    if x.shape[0] == 0:
        fail(fn, "input", "at least one sample", "none (N = 0)")
    bad = torch.nonzero(~torch.isfinite(x.reshape(len(x), -1)).all(dim=1)).flatten().tolist()
    if bad:
        rows = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        fail(fn, "input", "finite values", f"NaN or inf in {len(bad)} rows ({rows})")
    return x


def check_output_path(fn: str, path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`~pathlib.Path` whose folder exists (else a one-line error)."""
    p = Path(path)
    if not p.parent.is_dir():
        fail(fn, "output", "a file in an existing folder", f"{p} (no folder {p.parent})",
             kind=FileNotFoundError)  # fmt: skip
    if p.is_dir():
        fail(fn, "output", "a file name", f"the folder {p}")
    return p


def check_run_dir(fn: str, run: str | os.PathLike[str], checkpoint: str = "best") -> Path:
    """``run`` as a :class:`~pathlib.Path` holding ``config.yaml`` and the checkpoint."""
    p = Path(run)
    needs = ("config.yaml", f"checkpoints/{checkpoint}.pt")
    missing = [name for name in needs if not (p / name).is_file()]
    if missing:
        fail(fn, "run", f"a run folder holding {' and '.join(needs)}",
             f"{str(p)!r} (no {', '.join(missing)})", kind=FileNotFoundError)  # fmt: skip
    return p


def embed_samples(run: LoadedRun, x: Tensor, *, normalize: bool = False) -> Tensor:
    """The features ``(N, embedding_dim)`` of model inputs ``x`` (L2-normalised if ``normalize``),
    in float32 on the CPU; computed in batches of 1024."""
    device = next(run.model.parameters()).device
    parts = []
    with torch.no_grad():
        for start in range(0, len(x), _BATCH):
            features, _ = run.model(x[start : start + _BATCH].to(device))
            parts.append(features.float().cpu())
    features = torch.cat(parts)
    return l2_normalize(features, dim=1) if normalize else features


class StandardizedModel(nn.Module):
    """Raw samples -> ``(features, logits)``: the run's standardisation, then its network."""

    mean: Tensor
    std: Tensor

    def __init__(self, model: nn.Module, mean: Tensor | None, std: Tensor | None) -> None:
        super().__init__()
        self.model = model
        self.standardize = mean is not None and std is not None
        self.register_buffer("mean", torch.zeros(()) if mean is None else mean.float().clone())
        self.register_buffer("std", torch.ones(()) if std is None else std.float().clone())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.standardize:
            x = (x - self.mean) / self.std
        features, logits = self.model(x)
        return features, logits


def export_program(run: LoadedRun) -> torch.export.ExportedProgram:
    """A :func:`torch.export.export` program of the run's model on the CPU: raw samples
    ``(N, *sample_shape)`` (any ``N``) -> ``(features (N, D), logits (N, C))``."""
    info = run.info
    model = StandardizedModel(run.model.cpu().eval(), info.get("input_mean"), info.get("input_std"))
    example = torch.zeros(2, *(int(d) for d in info["sample_shape"]))
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        return torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch},))


def program_metadata(run: LoadedRun) -> dict[str, Any]:
    """What a user of the program needs to know: input shape, outputs and class names."""
    return {
        "inputs": "raw samples (N, *sample_shape) as stored in the data files",
        "outputs": ["features (N, embedding_dim)", "logits (N, num_classes)"],
        "sample_shape": list(run.info["sample_shape"]),
        "embedding_dim": run.config.embedding_dim,
        "class_names": list(run.info["class_names"]),
        "protocol": run.info.get("protocol"),
        "loss_type": run.config.loss_type,
    }


def save_program(
    program: torch.export.ExportedProgram, path: str | os.PathLike[str], metadata: dict[str, Any]
) -> None:
    """Write ``program`` (with ``metadata`` as :data:`METADATA_FILE`) to ``path`` atomically."""
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={METADATA_FILE: json.dumps(metadata)})
    data = buffer.getvalue()
    atomic_write(path, lambda f: f.write(data))
