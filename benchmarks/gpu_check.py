"""``make gpu-check``: everything CUDA in one run, within a time budget, ending in one table.

On a machine with a CUDA GPU and PyTorch (plus NumPy, scikit-learn, TensorBoard, matplotlib,
tqdm, PyYAML and pytest), from the source tree (``PYTHONPATH=src``), without network access:

1. ``wheels``: installs every wheel in ``.gpu-wheels/`` (``make gpu-wheels`` fills it: pydantic
   and its dependencies, pytorch-metric-learning for the reference tests) into a temporary
   folder put on ``PYTHONPATH``; nothing is installed into the interpreter itself;
2. ``cuda-tests``: the tests with ``cuda`` in their name or parameters (``pytest -k cuda``);
   test files whose imports are missing are counted as collection errors, not fatal;
3. ``proxy-scale``: ``benchmarks/proxy_scale.py --quick --device cuda``;
4. ``linear-ce``: ``benchmarks/linear_ce.py --device cuda --dtype bfloat16 --vocab 262144``;
5. ``train-amp``: ``losskit train --device cuda --amp --epochs 2``;
6. ``torchrun``: the same 2 epochs through ``torchrun --nproc_per_node 1`` (no ``--amp``).

Each step has a timeout, cut to what is left of ``--budget`` (480 s); a step that would start
with under 10 s left is skipped. The table gives each step's status, seconds and key number;
the logs stay in a temporary folder (printed), failed steps show their last lines. Without a
CUDA device the script says so and exits with status 1; ``--dry-run`` prints the plan only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIN_START_S = 10.0  # a step is not started with less budget left
FOLDERS = ("site", "train-amp", "torchrun")  # under the work folder: wheels, the two runs


@dataclass(frozen=True)
class Step:
    """One command of the check; ``key`` reads its key number from its output and folder."""

    name: str
    argv: list[str]
    timeout_s: float
    key: Callable[[str, Path], str]


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str
    seconds: float
    key: str


def pytest_counts(output: str, _: Path) -> str:
    """``3 passed, 1 skipped, 2 errors`` from pytest's last summary line."""
    found = re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed)", output)
    wanted = [f"{n} {what}" for n, what in found if what != "deselected"]
    return ", ".join(wanted[-4:]) or "no summary"


def table_row(column: str, at: str) -> Callable[[str, Path], str]:
    """``column``'s cell in the last row of the Markdown table that has it, and the row's ``at``."""

    def read(output: str, _: Path) -> str:
        head: list[str] = []
        value = ""
        lines = output.splitlines()
        for line, following in zip(lines, [*lines[1:], ""]):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not line.startswith("|") or line.startswith("|---"):
                continue
            if following.startswith("|---"):
                head = cells
            elif column in head and at in head and len(cells) == len(head):
                value = f"{column} {cells[head.index(column)]} at {at}={cells[head.index(at)]}"
        return value or "no table row"

    return read


def run_accuracy(folder: Path) -> str:
    """Test accuracy and epochs of the run folder ``folder`` (``results.json``)."""
    results = folder / "results.json"
    if not results.is_file():
        return "no results.json"
    data = json.loads(results.read_text(encoding="utf-8"))
    return f"test accuracy {data['accuracy']:.4f} after {data['epoch']} epochs"


def plan(python: str, wheels: Path, work: Path) -> list[Step]:
    """The steps, in order; run folders and the wheel target go under ``work``."""
    found = sorted(map(str, wheels.glob("*.whl")))
    py, site, amp_run, ddp_run = map(shlex.quote, (python, *(str(work / n) for n in FOLDERS)))
    train = "-m losskit train --epochs 2 --device cuda --quiet --output_dir"
    commands = {
        "wheels": f"{py} -m pip install --quiet --no-index --no-deps --target {site}",
        "cuda-tests": f"{py} -m pytest tests -k cuda -q -p no:cacheprovider "
        "--continue-on-collection-errors",
        "proxy-scale": f"{py} benchmarks/proxy_scale.py --quick --device cuda",
        "linear-ce": f"{py} benchmarks/linear_ce.py --device cuda --dtype bfloat16 --vocab 262144",
        "train-amp": f"{py} {train} {amp_run} --amp",
        "torchrun": f"{py} -m torch.distributed.run --nproc_per_node 1 {train} {ddp_run}",
    }
    keys: dict[str, tuple[float, Callable[[str, Path], str]]] = {
        "wheels": (30, lambda out, _: f"{len(found)} wheels"),
        "cuda-tests": (150, pytest_counts),
        "proxy-scale": (90, table_row("time ours/GEMM", "C")),
        "linear-ce": (90, table_row("time ours", "V")),
        "train-amp": (60, lambda out, _: run_accuracy(work / FOLDERS[1])),
        "torchrun": (60, lambda out, _: run_accuracy(work / FOLDERS[2])),
    }
    argv = {name: shlex.split(command) for name, command in commands.items()}
    argv["wheels"] += found
    return [Step(name, argv[name], *keys[name]) for name in commands]


def run_steps(steps: Sequence[Step], budget_s: float, logs: Path, env: dict[str, str]) -> list:
    """Run ``steps`` in order within ``budget_s`` seconds, each logged to ``logs/<name>.log``."""
    started = time.monotonic()
    outcomes = []
    for step in steps:
        left = budget_s - (time.monotonic() - started)
        if left < MIN_START_S:
            outcomes.append(Outcome(step.name, "skipped (budget)", 0.0, ""))
            continue
        log = logs / f"{step.name}.log"
        t0 = time.monotonic()
        try:
            done = subprocess.run(
                step.argv, cwd=ROOT, env=env, capture_output=True, text=True,
                timeout=min(step.timeout_s, left),
            )  # fmt: skip
            output, status = done.stdout + done.stderr, "ok"
            if done.returncode:
                status = f"failed (exit {done.returncode})"
        except subprocess.TimeoutExpired as err:
            output = _text(err.stdout) + _text(err.stderr)
            status = f"timeout ({min(step.timeout_s, left):.0f} s)"
        log.write_text(output, encoding="utf-8")
        if status != "ok":
            tail = "\n".join(output.splitlines()[-15:])
            print(f"--- {step.name}: {status}; last lines of {log}:\n{tail}", file=sys.stderr)
        outcomes.append(Outcome(step.name, status, time.monotonic() - t0, step.key(output, log)))
    return outcomes


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def summary_table(outcomes: Sequence[Outcome]) -> str:
    """One row per step: ``step | status | seconds | key number``."""
    rows = [("step", "status", "seconds", "key number")]
    rows += [(o.name, o.status, f"{o.seconds:.1f}", o.key) for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wheels", default=str(ROOT / ".gpu-wheels"), help="(.gpu-wheels)")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds in all (480)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = parser.parse_args(argv)
    if args.dry_run:
        for step in plan(sys.executable, Path(args.wheels), Path("<work>")):
            print(f"{step.name} (≤ {step.timeout_s:.0f} s): {' '.join(step.argv)}")
        return 0
    import torch

    if not torch.cuda.is_available():
        print("gpu-check: no CUDA device (torch.cuda.is_available() is False); nothing run")
        return 1
    work = Path(tempfile.mkdtemp(prefix="losskit-gpu-check-"))
    steps = plan(sys.executable, Path(args.wheels), work)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(work / FOLDERS[0]), str(ROOT)])
    print(f"gpu-check on {torch.cuda.get_device_name()} (torch {torch.__version__}); logs: {work}")
    outcomes = run_steps(steps, args.budget, work, env)
    print(summary_table(outcomes))
    return 0 if all(o.status == "ok" for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
