"""Proxy-Anchor at scale: time and peak memory of ours, the GEMM floor and pytorch-metric-learning.

The **GEMM floor** is ``S = x @ P.T`` forward plus its backward with a dense ``(B, C)`` upstream
gradient: the three matrix multiplies any proxy loss needs, with nothing else. Every measurement
runs in its own subprocess: the proxies ``P (C, D)`` and embeddings ``x (B, D)`` are allocated
after a baseline reading of the resident set, so a method's peak increase counts the proxies,
their gradient and every temporary. Peak memory is the kernel's high-water mark (``VmHWM``,
reset through ``/proc/self/clear_refs`` before the baseline). Time is the fastest of a few
forward + backward steps (``P.grad`` reset to ``None`` between steps, as ``zero_grad`` does);
at C = 10⁶ the single measured step is also the memory step.

Run: ``python benchmarks/proxy_scale.py`` (a few minutes on 2 CPU cores; the C = 10⁶ case needs
about 13 GB free for the dense GEMM floor, otherwise its floor is timed chunk by chunk and the
table says so). ``--quick`` runs the two smallest cases only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

METHODS = ("gemm", "ours", "pml", "focal", "ce")
CASES = ((180, 1_000, 512), (180, 10_000, 512), (180, 100_000, 512), (1024, 1_000_000, 512))
GIB = 1 << 30


# --------------------------------------------------------------------------------------------
# Worker: one method, one shape, one process
# --------------------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS


def _step_fn(method: str, batch: int, classes: int, dim: int) -> Callable[[], None]:
    import torch

    from losskit.functional import cosine_softmax_cross_entropy, focal_proxy_anchor, proxy_anchor

    x = torch.randn(batch, dim, requires_grad=True)
    labels = torch.randint(0, classes, (batch,))
    if method == "pml":
        from pytorch_metric_learning.losses import ProxyAnchorLoss

        module = ProxyAnchorLoss(classes, dim, margin=0.1, alpha=32)
        proxies = module.proxies

        def loss() -> torch.Tensor:
            return module(x, labels)

    else:
        proxies = torch.nn.Parameter(torch.randn(classes, dim))

        chunked = {
            "ours": proxy_anchor,
            "focal": focal_proxy_anchor,
            "ce": cosine_softmax_cross_entropy,
        }.get(method, proxy_anchor)

        def loss() -> torch.Tensor:
            return chunked(x, labels, proxies)

    def step() -> None:
        x.grad, proxies.grad = None, None
        if method == "gemm":
            sim = x @ proxies.T
            sim.backward(torch.ones_like(sim))
        elif method == "gemm_chunked":  # the same 3 GEMMs, 2**14 proxies at a time
            for rows in proxies.split(1 << 14):
                sim = x @ rows.T
                sim.backward(torch.ones_like(sim))
        else:
            loss().backward()

    return step


def worker(method: str, batch: int, classes: int, dim: int, repeats: int) -> None:
    import torch

    torch.manual_seed(0)
    _step_fn(method, 4, 8, 4)()  # finish lazy initialisation (BLAS, autograd) before the baseline
    _reset_peak()
    baseline = _status_kb("VmRSS")
    step = _step_fn(method, batch, classes, dim)
    start = time.perf_counter()
    step()
    times = [time.perf_counter() - start]  # kept only when there are no repeats
    peak = _status_kb("VmHWM") - baseline
    times = times[:1] if repeats == 0 else []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps({"time_s": min(times), "peak_mb": peak / 1024}))


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _measure(method: str, batch: int, classes: int, dim: int) -> dict[str, float] | None:
    repeats = 0 if classes >= 1_000_000 else 3 if classes >= 100_000 else 5
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", method]
    cmd += ["--shape", str(batch), str(classes), str(dim), "--repeats", str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"  {method} at C={classes} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _ratio(a: dict[str, float] | None, b: dict[str, float] | None, key: str) -> str:
    return f"{a[key] / b[key]:.2f}" if a and b else "—"


def _value(r: dict[str, float] | None, key: str, fmt: str) -> str:
    return format(r[key], fmt) if r else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--worker", choices=(*METHODS, "gemm_chunked"))
    parser.add_argument("--shape", nargs=3, type=int, metavar=("B", "C", "D"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="only the two smallest cases")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, *args.shape, args.repeats)
        return

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU")
    print("time: fastest forward+backward step; memory: peak RSS increase (own process)\n")
    rows = []
    for batch, classes, dim in CASES[:2] if args.quick else CASES:
        found: dict[str, dict[str, float] | None] = {}
        dense_floor_bytes = 4 * (2 * batch * classes + 2 * classes * dim)
        floor = "gemm" if _available_bytes() > dense_floor_bytes + 2 * GIB else "gemm_chunked"
        found["gemm"] = _measure(floor, batch, classes, dim)
        found["ours"] = _measure("ours", batch, classes, dim)
        # pytorch-metric-learning holds several (B, C) tensors (two of them int64): skip it
        # where that cannot fit.
        fits = 80 * batch * classes < _available_bytes() - 2 * GIB
        found["pml"] = _measure("pml", batch, classes, dim) if fits else None
        for extra in ("focal", "ce"):
            found[extra] = _measure(extra, batch, classes, dim) if batch == 180 else None
        note = "" if floor == "gemm" else " (floor chunked: dense S would not fit)"
        rows.append((batch, classes, dim, found, note))
        print(f"measured B={batch} C={classes} D={dim}{note}", file=sys.stderr)

    head = (
        "| B | C | D | time ours/GEMM | time PML/GEMM | mem ours/GEMM | mem PML/GEMM "
        "| GEMM s | ours s | PML s | GEMM MB | ours MB | PML MB |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for batch, classes, dim, r, note in rows:
        g, o, p = r["gemm"], r["ours"], r["pml"]
        cells = [
            str(batch),
            f"{classes:,}{'*' if note else ''}",
            str(dim),
            _ratio(o, g, "time_s"),
            _ratio(p, g, "time_s"),
            _ratio(o, g, "peak_mb"),
            _ratio(p, g, "peak_mb"),
            _value(g, "time_s", ".3f"),
            _value(o, "time_s", ".3f"),
            _value(p, "time_s", ".3f"),
            _value(g, "peak_mb", ".0f"),
            _value(o, "peak_mb", ".0f"),
            _value(p, "peak_mb", ".0f"),
        ]
        print("| " + " | ".join(cells) + " |")
    print("\nOther chunked losses, time / GEMM floor (B=180):")
    print("| C | focal_proxy_anchor | cosine_softmax_cross_entropy |")
    print("|---|---|---|")
    for batch, classes, _, r, _ in rows:
        if batch == 180:
            focal, ce = (
                _ratio(r["focal"], r["gemm"], "time_s"),
                _ratio(r["ce"], r["gemm"], "time_s"),
            )
            print(f"| {classes:,} | {focal} | {ce} |")
    if any(note for *_, note in rows):
        print("\n* GEMM floor timed 2**14 proxies at a time (same 3 GEMMs) for lack of memory.")
    print("— : not run (pytorch-metric-learning would not fit in memory) or failed.")


if __name__ == "__main__":
    main()
