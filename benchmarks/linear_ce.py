"""Linear cross-entropy at LLM vocabularies: ours, dense torch and torch's chunked path.

Methods, each one forward + backward step on ``h (N, D)`` (requires grad), ``W (V, D)``
(a parameter) and targets ``(N,)``:

- ``ours``: :func:`losskit.functional.linear_cross_entropy` (automatic blocks);
- ``dense``: ``F.cross_entropy(F.linear(h, W), y)``;
- ``torch_chunked``: ``F.linear_cross_entropy(h, W, y, options=nn.LinearCrossEntropyOptions())``
  (torch ≥ 2.13; it chunks over the tokens);
- ``floor``: the **time floor**, the three GEMMs any such loss needs: ``Z = h·Wᵀ`` forward and
  its backward with a dense upstream gradient (``G·W`` and ``Gᵀ·h``).

The **memory floor** is counted, not measured: the inputs (``h``, ``W``, targets), their
gradients and one ``(rows, cols)`` float32 block of the size ours walks with.

Memory: each method runs in its own subprocess; a tiny warm-up step initialises BLAS and
autograd, the kernel's resident-set high-water mark (``VmHWM``) is reset through
``/proc/self/clear_refs`` and read as the baseline, then the inputs are allocated and the step
runs: the peak increase counts the inputs, their gradients and every temporary, whatever
allocated it. Time: the fastest of ``--steps`` steps in that same process (gradients reset to
``None`` before each, as ``zero_grad`` does). On CUDA the peak is
``torch.cuda.max_memory_allocated`` above the baseline and steps are synchronised.

Run: ``python benchmarks/linear_ce.py`` (float32 CPU, V = 32k and 128k; several minutes on 2
cores), or ``python benchmarks/linear_ce.py --device cuda --dtype bfloat16 --vocab 262144``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

METHODS = ("floor", "ours", "dense", "torch_chunked")
MB = 1 << 20


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


class _Peak:
    """Peak memory above a baseline: RSS high-water mark on CPU, the allocator's on CUDA."""

    def __init__(self, device: str) -> None:
        import torch

        self.cuda = device == "cuda"
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            self.base = _status_kb("VmRSS") * 1024

    def read(self) -> float:
        import torch

        if self.cuda:
            return (torch.cuda.max_memory_allocated() - self.base) / MB
        return (_status_kb("VmHWM") * 1024 - self.base) / MB


def _step(method: str, tokens: int, vocab: int, dim: int, device: str, dtype: str) -> Any:
    import torch
    import torch.nn.functional as F

    from losskit.functional import linear_cross_entropy

    kind = getattr(torch, dtype)
    h = torch.randn(tokens, dim, device=device, dtype=kind, requires_grad=True)
    w = torch.nn.Parameter(torch.randn(vocab, dim, device=device, dtype=kind) * dim**-0.5)
    y = torch.randint(0, vocab, (tokens,), device=device)

    def compute() -> None:
        if method == "floor":
            z = h @ w.T
            z.backward(torch.ones_like(z))
        elif method == "ours":
            linear_cross_entropy(h, w, y).backward()
        elif method == "dense":
            F.cross_entropy(F.linear(h, w), y).backward()
        else:
            options = torch.nn.LinearCrossEntropyOptions()
            F.linear_cross_entropy(h, w, y, options=options).backward()

    def step() -> None:
        h.grad, w.grad = None, None
        compute()

    return step


def worker(method: str, tokens: int, vocab: int, dim: int, device: str, dtype: str, steps: int):
    import torch

    torch.manual_seed(0)
    _step(method, 64, 512, 16, device, dtype)()  # lazy initialisation before the baseline
    peak = _Peak(device)
    step = _step(method, tokens, vocab, dim, device, dtype)
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    print(json.dumps({"time_s": best, "peak_mb": peak.read()}))


def _run(args: list[str]) -> Any:
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"  {' '.join(args)} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_floor_mb(tokens: int, vocab: int, dim: int, device: str, dtype: str) -> tuple:
    """Inputs + gradients + one float32 block of ours, in MB, and the block's shape."""
    import torch

    from losskit.losses.language._vocab_walk import auto_blocks

    size = torch.empty((), dtype=getattr(torch, dtype)).element_size()
    exact = dtype in ("float32", "float64")
    rows, cols = auto_blocks(tokens, vocab, dim, device, exact)
    inputs = size * (tokens * dim + vocab * dim) + 8 * tokens
    grads = size * (tokens * dim + vocab * dim)
    return (inputs + grads + 4 * rows * cols) / MB, (rows, cols)


def _cell(result: dict | None, key: str, floor: float | None) -> str:
    """``ratio× (value)`` of one measurement, or ``—`` when it failed."""
    value = (result or {}).get(key)
    if value is None or floor is None:
        return "—"
    unit = f"{value:.2f} s" if key == "time_s" else f"{value:.0f} MB"
    return f"{value / floor:.2f}× ({unit})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--vocab", type=int, nargs="+", default=[32768, 131072])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--steps", type=int, default=2, help="steps per method (fastest kept)")
    args = parser.parse_args()
    common = ["--tokens", str(args.tokens), "--dim", str(args.dim), "--device", args.device,
              "--dtype", args.dtype, "--steps", str(args.steps)]  # fmt: skip
    if args.worker:
        worker(args.worker, args.tokens, args.vocab[0], args.dim, args.device, args.dtype,
               args.steps)  # fmt: skip
        return

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.dtype}, "
          f"{args.device}; N={args.tokens} tokens, D={args.dim}")  # fmt: skip
    print(f"time: fastest of {args.steps} forward+backward steps; memory: peak increase in its "
          "own process\n")  # fmt: skip
    head = ("| V | block | time ours | time dense | time torch chunked | mem ours | mem dense "
            "| mem torch chunked | floor s | floor MB |")  # fmt: skip
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for vocab in args.vocab:
        r = {m: _run(["--worker", m, "--vocab", str(vocab), *common]) for m in METHODS}
        floor_mb, block = memory_floor_mb(args.tokens, vocab, args.dim, args.device, args.dtype)
        floor_s = (r["floor"] or {}).get("time_s")

        cells = [f"{vocab:,}", f"{block[0]}×{block[1]}"]
        cells += [_cell(r[m], "time_s", floor_s) for m in METHODS[1:]]
        cells += [_cell(r[m], "peak_mb", floor_mb) for m in METHODS[1:]]
        cells += [f"{floor_s:.2f}" if floor_s else "—", f"{floor_mb:.0f}"]
        print("| " + " | ".join(cells) + " |", flush=True)
    print("\nRatios to the floor: time = the 3 GEMMs of h·Wᵀ forward+backward, measured; memory ="
          " inputs + their gradients + one float32 block of ours, counted.")  # fmt: skip


if __name__ == "__main__":
    main()
