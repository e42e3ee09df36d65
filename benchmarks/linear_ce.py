"""Linear cross-entropy at LLM vocabularies: ours, dense torch and torch's chunked path.

Methods, each one forward + backward step on ``h (N, D)`` (requires grad), ``W (V, D)``
(a parameter) and targets ``(N,)``, gradients reset to ``None`` before each (as ``zero_grad``
does):

- ``ours``: :func:`losskit.functional.linear_cross_entropy` (automatic blocks);
- ``dense``: ``F.cross_entropy(F.linear(h, W), y)``;
- ``torch_chunked``: ``F.linear_cross_entropy(h, W, y, options=nn.LinearCrossEntropyOptions())``
  (torch ≥ 2.13; it chunks over the tokens);
- ``floor``: the **time floor**, the three GEMMs any such loss needs: ``Z = h·Wᵀ`` into a
  ``(N, V)`` buffer allocated and touched beforehand (untimed), then ``Z·W`` and ``Zᵀ·h`` into
  fresh ``(N, D)`` and ``(V, D)`` tensors, as a backward creates its gradients — no
  exponential, no autograd.

The **memory floor** is counted, not measured: the inputs (``h``, ``W``, targets), their
gradients and one ``(rows, cols)`` float32 block of the size ours walks with.

Everything runs in one process, on ``--threads`` threads (default 1), the methods' steps
interleaved: ``--rounds`` rounds, each running every method once (the order rotated each
round), so that a change of the machine's load reaches all methods alike. Time: the fastest
step of each method in CPU time of the process (``time.process_time``: user + system, page
faults included; on one thread it is the step's wall clock less the time other processes held
the core), the median and the fastest wall clock printed too. Memory: before each step the kernel's
resident-set high-water mark (``VmHWM``) is reset through ``/proc/self/clear_refs`` and the
resident set read as the baseline; the inputs are then allocated and the step runs: the peak
increase counts the inputs, their gradients and every temporary, whatever allocated it. glibc
is told to map every allocation of 1 MiB or more on its own (``mallopt``) so that a freed
tensor leaves the resident set at once, and the heap is trimmed before each baseline. On CUDA
the peak is ``torch.cuda.max_memory_allocated`` above the baseline and steps are synchronised.

Run: ``python benchmarks/linear_ce.py`` (float32 CPU, V = 32k and 128k; about half an hour on
one thread, torch's chunked path at 128k most of it), or
``python benchmarks/linear_ce.py --device cuda --dtype bfloat16 --vocab 262144``.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from losskit.functional import linear_cross_entropy
from losskit.losses.language._vocab_walk import auto_blocks

METHODS = ("floor", "ours", "dense", "torch_chunked")
MB = 1 << 20
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _map_large_allocations() -> ctypes.CDLL:
    """Freed large blocks go back to the kernel at once (a fixed mmap threshold of 1 MiB)."""
    libc = ctypes.CDLL("libc.so.6")
    if libc.mallopt(M_MMAP_THRESHOLD, 1 << 20) != 1:
        raise RuntimeError("mallopt(M_MMAP_THRESHOLD) failed")
    return libc


class _Peak:
    """Peak memory above a baseline: RSS high-water mark on CPU, the allocator's on CUDA."""

    def __init__(self, device: str, libc: ctypes.CDLL | None) -> None:
        self.cuda = device == "cuda"
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            if libc is not None:
                libc.malloc_trim(0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS
            self.base = _status_kb("VmRSS") * 1024

    def read(self) -> float:
        if self.cuda:
            return (torch.cuda.max_memory_allocated() - self.base) / MB
        return (_status_kb("VmHWM") * 1024 - self.base) / MB


def _prepare(method: str, tokens: int, vocab: int, dim: int, device: str, dtype: str) -> Callable:
    """The inputs of one step (the same for every method) and the step itself."""
    kind = getattr(torch, dtype)
    torch.manual_seed(0)
    h = torch.randn(tokens, dim, device=device, dtype=kind, requires_grad=True)
    w = torch.nn.Parameter(torch.randn(vocab, dim, device=device, dtype=kind) * dim**-0.5)
    y = torch.randint(0, vocab, (tokens,), device=device)
    if method == "floor":
        z = torch.ones(tokens, vocab, device=device, dtype=kind)
        hd, wd = h.detach(), w.detach()

        def floor() -> None:
            torch.mm(hd, wd.T, out=z)
            h.grad, w.grad = z @ wd, z.T @ hd

        return floor

    def step() -> None:
        h.grad, w.grad = None, None
        if method == "ours":
            linear_cross_entropy(h, w, y).backward()
        elif method == "dense":
            F.cross_entropy(F.linear(h, w), y).backward()
        else:
            options = torch.nn.LinearCrossEntropyOptions()
            F.linear_cross_entropy(h, w, y, options=options).backward()

    return step


def measure(
    method: str, shape: tuple[int, int, int], device: str, dtype: str, libc: ctypes.CDLL | None
) -> dict[str, float]:
    """One step of ``method``: its ``time`` (the process's CPU time on the CPU, wall clock on
    CUDA) and ``wall`` clock in seconds, and its peak memory increase ``mb`` in MB."""
    clock = time.perf_counter if device == "cuda" else time.process_time
    peak = _Peak(device, libc)
    step = _prepare(method, *shape, device, dtype)
    start, wall = clock(), time.perf_counter()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    done = {"time": clock() - start, "wall": time.perf_counter() - wall, "mb": peak.read()}
    del step
    return done


def memory_floor_mb(tokens: int, vocab: int, dim: int, device: str, dtype: str) -> tuple:
    """Inputs + gradients + one float32 block of ours, in MB, and the block's shape."""
    size = torch.empty((), dtype=getattr(torch, dtype)).element_size()
    exact = dtype in ("float32", "float64")
    rows, cols = auto_blocks(tokens, vocab, dim, device, exact)
    inputs = size * (tokens * dim + vocab * dim) + 8 * tokens
    grads = size * (tokens * dim + vocab * dim)
    return (inputs + grads + 4 * rows * cols) / MB, (rows, cols)


def interleaved(
    shape: tuple[int, int, int], args: argparse.Namespace, libc: ctypes.CDLL | None
) -> dict:
    """``{method: {key: values}}`` over ``args.rounds`` rounds of every method in turn (keys of
    :func:`measure`)."""
    runs: dict[str, dict[str, list[float]]] = {m: {} for m in METHODS}
    for r in range(args.rounds):
        for method in METHODS[r % len(METHODS) :] + METHODS[: r % len(METHODS)]:
            done = measure(method, shape, args.device, args.dtype, libc)
            for key, value in done.items():
                runs[method].setdefault(key, []).append(value)
            print(f"  V={shape[1]} round {r + 1} {method}: {done['time']:.2f} s "
                  f"({done['wall']:.2f} s wall), {done['mb']:.0f} MB", file=sys.stderr,
                  flush=True)  # fmt: skip
    return runs


def _ratio(value: float, floor: float, unit: str) -> str:
    shown = f"{value:.2f} s" if unit == "s" else f"{value:.0f} MB"
    return f"{value / floor:.2f}× ({shown})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--vocab", type=int, nargs="+", default=[32768, 131072])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    parser.add_argument("--rounds", type=int, default=3, help="steps per method, interleaved")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    libc = None if args.device == "cuda" else _map_large_allocations()
    for method in METHODS:  # lazy initialisation (BLAS, autograd) before any baseline
        _prepare(method, 64, 512, 16, args.device, args.dtype)()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.dtype}, "
          f"{args.device}; N={args.tokens} tokens, D={args.dim}; {args.rounds} rounds of the "
          "methods interleaved in one process")  # fmt: skip
    print("time: fastest step of each method, CPU time of the process on the CPU (wall clock on"
          " CUDA), medians and wall clock below the table; memory: peak increase during the "
          "step, inputs included\n")  # fmt: skip
    head = ("| V | block | time ours | time dense | time torch chunked | mem ours | mem dense "
            "| mem torch chunked | floor s | floor MB |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    medians = []
    for vocab in args.vocab:
        runs = interleaved((args.tokens, vocab, args.dim), args, libc)
        floor_mb, block = memory_floor_mb(args.tokens, vocab, args.dim, args.device, args.dtype)
        floor_s = min(runs["floor"]["time"])
        cells = [f"{vocab:,}", f"{block[0]}×{block[1]}"]
        cells += [_ratio(min(runs[m]["time"]), floor_s, "s") for m in METHODS[1:]]
        cells += [_ratio(max(runs[m]["mb"]), floor_mb, "MB") for m in METHODS[1:]]
        cells += [f"{floor_s:.2f}", f"{floor_mb:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
        for name, key, pick in (("median time", "time", statistics.median),
                                ("fastest wall clock", "wall", min)):  # fmt: skip
            base = pick(runs["floor"][key])
            ratios = ", ".join(f"{m} {pick(runs[m][key]) / base:.2f}×" for m in METHODS[1:])
            medians.append(f"V={vocab:,}, {name} / the floor's: {ratios}")
    print("\n".join([*lines, "", *medians]))
    print("\nRatios to the floor: time = the 3 GEMMs of h·Wᵀ forward+backward, measured; memory ="
          " inputs + their gradients + one float32 block of ours, counted.")  # fmt: skip


if __name__ == "__main__":
    main()
