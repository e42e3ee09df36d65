"""``losskit embed`` (features of raw samples) and ``losskit export`` (a ``torch.export``
program); the work is in :mod:`losskit.train.export`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from losskit.train.assembly import LoadedRun

__all__ = ["add_parser"]


def _open(fn: str, args: argparse.Namespace, device: str) -> tuple[LoadedRun, Path]:
    """The run of ``--run`` and the path of ``--output``, both checked before any work."""
    from losskit.train.assembly import load_run
    from losskit.train.export import check_output_path, check_run_dir

    check_run_dir(fn, args.run, args.checkpoint)
    out = check_output_path(fn, args.output)
    return load_run(args.run, args.checkpoint, device), out


def _embed(args: argparse.Namespace) -> int:
    import numpy as np

    from losskit._files import atomic_write
    from losskit.train.cli import _device
    from losskit.train.export import embed_samples, read_samples

    run, out = _open("embed", args, _device(args.device))
    x = read_samples("embed", args.input, run.info, normalized=args.normalized)
    features = embed_samples(run, x, normalize=args.normalize).numpy()
    atomic_write(out, lambda f: np.save(f, features))
    print(f"wrote features {tuple(features.shape)} to {out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from losskit.train.export import export_program, program_metadata, save_program

    run, out = _open("export", args, "cpu")
    save_program(export_program(run), out, program_metadata(run))
    shape = ", ".join(map(str, run.info["sample_shape"]))
    print(
        f"wrote {out}: raw samples (N, {shape}) -> (features, logits); "
        f"load with torch.export.load({str(out)!r}).module()"
    )
    return 0


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="the run folder")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")


def add_parser(sub: Any) -> None:
    """Register ``losskit embed`` and ``losskit export``."""
    e = sub.add_parser(
        "embed",
        help="write the features of samples in a .npy file",
        description="Write the features (N, embedding_dim) of raw samples (N, *sample_shape) "
        "as a .npy file; the run's standardisation is applied, as by `losskit predict`.",
    )
    _run_options(e)
    e.add_argument("--input", required=True, help="X.npy: (N, *sample_shape) raw samples")
    e.add_argument("--output", required=True, help="the .npy file to write")
    e.add_argument("--normalize", action="store_true", help="L2-normalise each feature vector")
    e.add_argument(
        "--normalized",
        action="store_true",
        help="the input is already standardised (skip the run's input statistics)",
    )
    e.add_argument("--device", default="auto")
    e.set_defaults(func=_embed)

    x = sub.add_parser(
        "export",
        help="write a torch.export program: raw samples -> (features, logits)",
        description="Write a torch.export program (standardisation included, any batch size) "
        "that loads with torch.export.load without losskit.",
    )
    _run_options(x)
    x.add_argument("--output", required=True, help="the program file to write (model.pt2)")
    x.set_defaults(func=_export)
