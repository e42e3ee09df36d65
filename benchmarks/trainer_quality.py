"""How well and how fast ``losskit train`` does with its defaults, and how its features transfer.

1. Digits: for each protocol (classification, retrieval) and ``loss_type`` (CE, proxy, combined,
   focal) it trains with 3 seeds and prints the mean ± std of the test accuracy (classification)
   and Recall@1, and the wall time of the ``train`` call (data loading, training, evaluation,
   files); then the Recall@1 of the raw inputs (no training).
2. Unseen classes: Recall@1 of CE / proxy / combined on digits retrieval and on glyph images
   drawn procedurally (``glyphs.py``: 40 classes of random pen strokes, 28x28; the first 20
   train, the unseen 20 are searched; the recipe of a small image retrieval run: 3 epochs,
   batch 128), with the former default (global average pooling in the 2-D CNN) and the current
   one (4x4 pooling grid); beside them on glyphs, the plain PyTorch CE recipe of
   ``reference_recipe.py`` on the same splits (the bar CE should reach).
3. The wall time of the whole ``losskit train`` command with its defaults.

The trainer's defaults (learning rate, embedding size, epochs, proxy learning-rate multiplier,
pooling grid) were chosen from these numbers (see ``TrainConfig``); ``--set key=value`` tries
other values, e.g.

    python benchmarks/trainer_quality.py
    python benchmarks/trainer_quality.py --seeds 1 --protocols classification --set lr=1e-3
    python benchmarks/trainer_quality.py --unseen-only --unseen-sets glyphs --set val_fraction=0

Run it alone on the machine: the wall times are only meaningful without other load.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from glyphs import write_glyph_dataset
from losskit.train.config import load_config
from losskit.train.loop import train
from reference_recipe import reference_recall


def run_one(overrides: dict[str, Any], out_dir: Path) -> tuple[dict[str, Any], float]:
    config = load_config(overrides={**overrides, "output_dir": str(out_dir), "quiet": True})
    start = time.perf_counter()
    results = train(config, stream=io.StringIO())
    return results, time.perf_counter() - start


def raw_input_recall(protocol: str) -> float:
    """Recall@1 of the test samples' standardised inputs themselves: the bar an embedding must
    clear to have learnt anything for retrieval."""
    import torch

    from losskit.train.data import load_splits
    from losskit.train.evaluate import retrieval_metrics

    splits = load_splits("digits", protocol=protocol)
    x = torch.stack([splits.test[i][0] for i in range(len(splits.test))])
    return retrieval_metrics(x, splits.test_labels, ks=(1,), map_at_r=False)["recall_at_1"]


def cli_wall_time(out_dir: Path) -> float:
    """Seconds of ``losskit train`` with no config argument, as a user runs it (imports too)."""
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "losskit", "train", "--output_dir", str(out_dir), "--quiet"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


GLYPH_RECIPE = {"dataset": "npy", "protocol": "retrieval", "epochs": 3, "batch_size": 128}
# The default before the unseen-class fix: global average pooling in the 2-D CNN.
BEFORE = {"pool_grid": 1}


def digits_table(
    protocols: list[str], loss_types: list[str], seeds: int, extra: dict[str, Any], tmp: Path
) -> None:
    """Test accuracy, Recall@1 and wall time on digits for each protocol and loss type."""
    print(f"digits, defaults{' + ' + str(extra) if extra else ''}, {seeds} seeds")
    header = f"{'protocol':<15}{'loss_type':<10}{'accuracy':>18}{'recall_at_1':>18}{'wall s':>16}"
    print(header + "\n" + "-" * len(header))
    for protocol in protocols:
        for loss_type in loss_types:
            acc, r1, wall = [], [], []
            for seed in range(seeds):
                overrides = {**extra, "loss_type": loss_type, "protocol": protocol, "seed": seed}
                results, seconds = run_one(overrides, tmp / f"{protocol}-{loss_type}-{seed}")
                if "accuracy" in results:
                    acc.append(results["accuracy"])
                r1.append(results["recall_at_1"])
                wall.append(seconds)
            print(
                f"{protocol:<15}{loss_type:<10}{_fmt(acc):>18}{_fmt(r1):>18}"
                f"{statistics.mean(wall):>10.1f} ± {statistics.pstdev(wall):.1f}",
                flush=True,
            )
        print(f"{protocol:<15}{'raw input':<10}{'-':>18}{raw_input_recall(protocol):>18.4f}")


def unseen_class_table(
    sets: list[str], loss_types: list[str], seeds: int, extra: dict[str, Any], tmp: Path
) -> None:
    """Recall@1 on unseen classes (digits and glyphs) with the former and the current defaults,
    and on glyphs that of the reference recipe (trained on the trainer's training classes)."""
    glyph_dir = write_glyph_dataset(tmp / "glyphs")
    recipes: dict[str, dict[str, Any]] = {
        "digits": {"protocol": "retrieval"},
        "glyphs": {**GLYPH_RECIPE, "data_dir": str(glyph_dir)},
    }
    print(f"\nunseen classes, Recall@1, {seeds} seed(s); glyphs: {GLYPH_RECIPE}")
    header = f"{'data set':<10}{'loss_type':<18}{f'before {BEFORE}':>36}{'after (defaults)':>20}"
    print(header + "\n" + "-" * len(header))
    for name in sets:
        for loss_type in loss_types:
            row = []
            for variant, change in (("before", BEFORE), ("after", {})):
                r1 = []
                for seed in range(seeds):
                    overrides = {**recipes[name], **extra, **change, "seed": seed,
                                 "loss_type": loss_type}  # fmt: skip
                    out = tmp / f"{name}-{loss_type}-{variant}-{seed}"
                    r1.append(run_one(overrides, out)[0]["recall_at_1"])
                row.append(_fmt(r1))
            print(f"{name:<10}{loss_type:<18}{row[0]:>36}{row[1]:>20}", flush=True)
        if name == "glyphs":
            val_fraction = float(extra.get("val_fraction", load_config().val_fraction))
            r1 = [
                reference_recall(glyph_dir, seed=s, val_fraction=val_fraction) for s in range(seeds)
            ]
            print(f"{name:<10}{'reference recipe':<18}{'-':>36}{_fmt(r1):>20}", flush=True)


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--loss-types", nargs="+", default=["CE", "proxy", "combined", "focal"])
    parser.add_argument("--unseen-seeds", type=int, default=1, help="seeds of the unseen table")
    parser.add_argument("--unseen-loss-types", nargs="+", default=["CE", "proxy", "combined"])
    sets = ["digits", "glyphs"]
    parser.add_argument("--unseen-sets", nargs="+", default=sets, choices=sets)
    parser.add_argument("--unseen-only", action="store_true", help="run only the unseen table")
    parser.add_argument("--protocols", nargs="+", default=["classification", "retrieval"])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides applied to every run")  # fmt: skip
    args = parser.parse_args()
    extra = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.unseen_only:
            digits_table(args.protocols, args.loss_types, args.seeds, extra, Path(tmp))
        if args.unseen_seeds:
            sets, seeds = args.unseen_sets, args.unseen_seeds
            unseen_class_table(sets, args.unseen_loss_types, seeds, extra, Path(tmp))
        if not args.unseen_only:
            seconds = cli_wall_time(Path(tmp) / "cli")
            print(f"\n`losskit train` (defaults, whole command): {seconds:.1f} s")


if __name__ == "__main__":
    main()
