"""How well and how fast ``losskit train`` does with its defaults on the bundled digits.

For each protocol (classification, retrieval) and ``loss_type`` (CE, proxy, combined) it trains
with 3 seeds and prints the mean ± std of the test accuracy (classification) and Recall@1, and
the wall time of the ``train`` call (data loading, training, evaluation, files). The trainer's
defaults (learning rate, embedding size, epochs, proxy learning-rate multiplier, warm-up) were
chosen from these numbers; ``--set key=value`` tries other values, e.g.

    python benchmarks/trainer_quality.py
    python benchmarks/trainer_quality.py --seeds 1 --protocols classification --set lr=1e-3

Run it alone on the machine: the wall times are only meaningful without other load.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from losskit.train.config import load_config
from losskit.train.loop import train


def run_one(overrides: dict[str, Any], out_dir: Path) -> tuple[dict[str, Any], float]:
    config = load_config(overrides={**overrides, "output_dir": str(out_dir), "quiet": True})
    start = time.perf_counter()
    results = train(config, stream=io.StringIO())
    return results, time.perf_counter() - start


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--loss-types", nargs="+", default=["CE", "proxy", "combined"])
    parser.add_argument("--protocols", nargs="+", default=["classification", "retrieval"])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides applied to every run")  # fmt: skip
    args = parser.parse_args()
    extra = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    print(f"digits, defaults{' + ' + str(extra) if extra else ''}, {args.seeds} seeds")
    header = f"{'protocol':<15}{'loss_type':<10}{'accuracy':>18}{'recall_at_1':>18}{'wall s':>16}"
    print(header + "\n" + "-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for protocol in args.protocols:
            for loss_type in args.loss_types:
                acc, r1, wall = [], [], []
                for seed in range(args.seeds):
                    overrides = {**extra, "loss_type": loss_type, "protocol": protocol,
                                 "seed": seed}  # fmt: skip
                    out = Path(tmp) / f"{protocol}-{loss_type}-{seed}"
                    results, seconds = run_one(overrides, out)
                    if "accuracy" in results:
                        acc.append(results["accuracy"])
                    r1.append(results["recall_at_1"])
                    wall.append(seconds)
                print(
                    f"{protocol:<15}{loss_type:<10}{_fmt(acc):>18}{_fmt(r1):>18}"
                    f"{statistics.mean(wall):>10.1f} ± {statistics.pstdev(wall):.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
