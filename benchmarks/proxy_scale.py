"""Proxy losses at scale: time and peak memory of ours, the GEMM floor and pytorch-metric-learning.

The **GEMM floor** is ``S = x @ P.T`` forward plus its backward with a dense ``(B, C)`` upstream
gradient: the three matrix multiplies any proxy loss needs, with nothing else.

Memory: each method runs one forward + backward step in its own subprocess; the proxies
``P (C, D)`` and embeddings ``x (B, D)`` are allocated after a baseline reading of the resident
set, so the peak increase counts the proxies, their gradient and every temporary. Peak memory is
the kernel's high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs`` after a tiny
warm-up step and before the baseline).

Time: one subprocess per shape runs the methods on the same inputs in interleaved rounds (so
they see the same machine load) and keeps each method's fastest forward + backward step
(``P.grad`` reset to ``None`` before each step, as ``zero_grad`` does). At C = 10⁶ each method
runs a single step, in its memory subprocess.

At B = 180 the same rounds also time the other chunked losses (focal Proxy-Anchor, normalised
softmax, ArcFace, CosFace, sub-center ArcFace, ProxyNCA++) and pytorch-metric-learning's
``ArcFaceLoss``, ``CosFaceLoss``, ``SubCenterArcFaceLoss`` and ``ProxyNCALoss`` on the same
embeddings and proxies; the second table gives each as a ratio to the GEMM floor.

Run: ``python benchmarks/proxy_scale.py`` (about five minutes on 2 CPU cores; the C = 10⁶ case
needs about 13 GB free for the dense GEMM floor, otherwise its floor is timed 2¹⁴ proxies at a
time and the table says so). ``--quick`` runs the two smallest shapes only, ``--max-classes C``
the shapes up to C proxies. ``--device cuda`` runs on the GPU: memory is then the peak of
``torch.cuda.max_memory_allocated`` above the baseline, and every timed step is synchronised.
On a shared machine run it with ``OMP_NUM_THREADS=1``: each process then holds one core, and
the fastest-of-rounds ratios stay stable under load.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

CASES = ((180, 1_000, 512), (180, 10_000, 512), (180, 100_000, 512), (1024, 1_000_000, 512))
SINGLE_STEP_CLASSES = 1_000_000  # from here on: one step per method, timed in its memory run
# Other losses, timed at B = 180: ours and pytorch-metric-learning's, column by column.
EXTRAS = ("focal", "ce", "arcface", "cosface", "subcenter", "proxy_nca")
PML_EXTRAS = ("pml_arcface", "pml_cosface", "pml_subcenter", "pml_proxy_nca")
# method -> pytorch-metric-learning class and keyword arguments (ArcFace's margin in degrees)
PML_LOSSES: dict[str, tuple[str, dict[str, float]]] = {
    "pml": ("ProxyAnchorLoss", {"margin": 0.1, "alpha": 32}),
    "pml_arcface": ("ArcFaceLoss", {"margin": math.degrees(0.5), "scale": 64}),
    "pml_cosface": ("CosFaceLoss", {"margin": 0.35, "scale": 64}),
    "pml_subcenter": ("SubCenterArcFaceLoss", {"margin": math.degrees(0.5), "sub_centers": 3}),
    "pml_proxy_nca": ("ProxyNCALoss", {}),
}
GIB = 1 << 30


# --------------------------------------------------------------------------------------------
# Workers (subprocesses)
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


def _make_step(
    method: str, batch: int, classes: int, dim: int, shared: Any = None, device: str = "cpu"
) -> Any:
    """Inputs and a closure running one forward + backward step of ``method``.

    ``shared`` = ``(x, labels, proxies)`` reuses inputs (timing); otherwise they are drawn here
    (memory: pytorch-metric-learning then allocates its own proxies instead of ours).
    """
    import torch

    from losskit.functional import (
        arcface,
        cosface,
        cosine_softmax_cross_entropy,
        focal_proxy_anchor,
        proxy_anchor,
        proxy_nca,
        subcenter_arcface,
    )

    proxies: Any
    if shared is None:
        x = torch.randn(batch, dim, device=device, requires_grad=True)
        labels = torch.randint(0, classes, (batch,), device=device)
        proxies = (
            None
            if method in PML_LOSSES
            else torch.nn.Parameter(torch.randn(classes, dim, device=device))
        )
    else:
        x, labels, proxies = shared
    compute: Callable[[], None]
    if method in PML_LOSSES:
        module, proxies = _pml_loss(method, classes, dim, proxies, device)
        # sub-centers: the C proxies as ⌊C/3⌋ classes of 3, as for ours
        y = labels % (classes // 3) if method == "pml_subcenter" else labels

        def compute() -> None:
            module(x, y).backward()

    elif method == "gemm":

        def compute() -> None:
            sim = x @ proxies.T
            sim.backward(torch.ones_like(sim))

    elif method == "gemm_chunked":  # the same 3 GEMMs, 2**14 proxies at a time

        def compute() -> None:
            for rows in proxies.split(1 << 14):
                sim = x @ rows.T
                sim.backward(torch.ones_like(sim))

    else:
        losses: dict[str, Callable[..., Any]] = {
            "ours": proxy_anchor,
            "focal": focal_proxy_anchor,
            "ce": cosine_softmax_cross_entropy,
            "arcface": arcface,
            "cosface": cosface,
            # the C proxies as ⌊C/3⌋ classes of 3 sub-centers
            "subcenter": lambda x, y, p: subcenter_arcface(
                x, y % (len(p) // 3), p[: len(p) // 3 * 3], sub_centers=3
            ),
            "proxy_nca": proxy_nca,
        }
        loss = losses[method]

        def compute() -> None:
            loss(x, labels, proxies).backward()

    def step() -> None:
        x.grad, proxies.grad = None, None
        compute()

    return step


def _pml_loss(method: str, classes: int, dim: int, proxies: Any, device: str) -> tuple[Any, Any]:
    """pytorch-metric-learning's loss for ``method`` on ``device`` and its proxy parameter,
    holding ``proxies`` when given (its ArcFace family stores them transposed, ``(D, C)``)."""
    from pytorch_metric_learning import losses

    name, kwargs = PML_LOSSES[method]
    sub_centers = int(kwargs.get("sub_centers", 1))
    module = getattr(losses, name)(
        num_classes=classes // sub_centers, embedding_size=dim, **kwargs
    ).to(device)
    weight = module.W if hasattr(module, "W") else module.proxies
    if proxies is not None:
        rows = proxies.data[: classes // sub_centers * sub_centers]
        weight.data.copy_(rows.T if hasattr(module, "W") else rows)
    return module, weight


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def memory_worker(method: str, batch: int, classes: int, dim: int, device: str) -> None:
    """Peak memory increase (RSS, or CUDA memory allocated) and time of one step, as JSON."""
    import torch

    torch.manual_seed(0)
    _make_step(method, 4, 8, 4, device=device)()  # lazy initialisation before the baseline
    _sync(device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        baseline_kb = torch.cuda.memory_allocated(device) // 1024
    else:
        _reset_peak()
        baseline_kb = _status_kb("VmRSS")
    step = _make_step(method, batch, classes, dim, device=device)
    start = time.perf_counter()
    step()
    _sync(device)
    elapsed = time.perf_counter() - start
    peak_kb = torch.cuda.max_memory_allocated(device) // 1024 if cuda else _status_kb("VmHWM")
    print(json.dumps({"peak_mb": (peak_kb - baseline_kb) / 1024, "time_s": elapsed}))


def time_worker(
    methods: list[str], batch: int, classes: int, dim: int, rounds: int, device: str
) -> None:
    """Fastest step of each method over interleaved rounds on shared inputs, as JSON."""
    import torch

    torch.manual_seed(0)
    shared = (
        torch.randn(batch, dim, device=device, requires_grad=True),
        torch.randint(0, classes, (batch,), device=device),
        torch.nn.Parameter(torch.randn(classes, dim, device=device)),
    )
    steps = {m: _make_step(m, batch, classes, dim, shared, device) for m in methods}
    for step in steps.values():
        step()  # warm-up
    best = dict.fromkeys(methods, float("inf"))
    for _ in range(rounds):
        for method, step in steps.items():
            _sync(device)
            start = time.perf_counter()
            step()
            _sync(device)
            best[method] = min(best[method], time.perf_counter() - start)
    print(json.dumps(best))


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _available_bytes(device: str = "cpu") -> int:
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _run(args: list[str]) -> Any:
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"  {' '.join(args)} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b is not None else "—"


def _fmt(value: float | None, fmt: str) -> str:
    return format(value, fmt) if value is not None else "—"


def measure_case(batch: int, classes: int, dim: int, device: str = "cpu") -> dict[str, Any]:
    """Peak memory (gemm, ours, pml) and time (also the extras at B = 180) of one shape."""
    shape = [str(batch), str(classes), str(dim), "--device", device]  # and where it runs
    dense_floor_bytes = 4 * (2 * batch * classes + 2 * classes * dim)
    free = _available_bytes(device)
    floor = "gemm" if free > dense_floor_bytes + 2 * GIB else "gemm_chunked"
    # pytorch-metric-learning holds about a dozen (B, C) tensors, two of them int64.
    pml_fits = 80 * batch * classes < free - 2 * GIB
    pml_fits &= importlib.util.find_spec("pytorch_metric_learning") is not None
    methods = [floor, "ours"] + ["pml"] * pml_fits
    memory = {m: _run(["--memory", m, "--shape", *shape]) for m in methods}
    if classes >= SINGLE_STEP_CLASSES:
        times = {m: r["time_s"] for m, r in memory.items() if r}
    else:
        timed = methods + (list(EXTRAS) + list(PML_EXTRAS) * pml_fits) * (batch == 180)
        rounds = "5" if classes >= 100_000 else "15"
        times = _run(["--time", ",".join(timed), "--shape", *shape, "--rounds", rounds]) or {}
    # The chunked floor stands in for the dense one when memory is short (flagged in the table).
    memory["gemm"], times["gemm"] = memory.get(floor), times.get(floor)
    return {"memory": memory, "times": times, "chunked_floor": floor != "gemm"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--memory", help="worker: measure one method's peak memory")
    parser.add_argument("--time", help="worker: time these comma-separated methods")
    parser.add_argument("--shape", nargs=3, type=int, metavar=("B", "C", "D"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="only the two smallest shapes")
    parser.add_argument("--max-classes", type=int, help="only the shapes up to this many proxies")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:<index> (cpu)")
    args = parser.parse_args()
    if args.memory or args.time:
        batch, classes, dim = args.shape
        if args.memory:
            memory_worker(args.memory, batch, classes, dim, args.device)
        else:
            time_worker(args.time.split(","), batch, classes, dim, args.rounds, args.device)
        return

    import torch

    where = "CPU" if args.device == "cpu" else torch.cuda.get_device_name(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, {where}")
    kind = "RSS" if args.device == "cpu" else "CUDA memory allocated"
    print(f"time: fastest forward+backward step; memory: peak {kind} increase (own process)\n")
    results = []
    limit = CASES[1][1] if args.quick else args.max_classes or CASES[-1][1]
    for batch, classes, dim in (case for case in CASES if case[1] <= limit):
        results.append((batch, classes, dim, measure_case(batch, classes, dim, args.device)))
        print(f"measured B={batch} C={classes} D={dim}", file=sys.stderr, flush=True)

    head = (
        "| B | C | D | time ours/GEMM | time PML/GEMM | mem ours/GEMM | mem PML/GEMM "
        "| GEMM s | ours s | PML s | GEMM MB | ours MB | PML MB |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for batch, classes, dim, r in results:
        t = r["times"]
        mem = {m: (v or {}).get("peak_mb") for m, v in r["memory"].items()}
        cells = [
            str(batch),
            f"{classes:,}{'*' if r['chunked_floor'] else ''}",
            str(dim),
            _ratio(t.get("ours"), t.get("gemm")),
            _ratio(t.get("pml"), t.get("gemm")),
            _ratio(mem.get("ours"), mem.get("gemm")),
            _ratio(mem.get("pml"), mem.get("gemm")),
            _fmt(t.get("gemm"), ".3f"),
            _fmt(t.get("ours"), ".3f"),
            _fmt(t.get("pml"), ".3f"),
            _fmt(mem.get("gemm"), ".0f"),
            _fmt(mem.get("ours"), ".0f"),
            _fmt(mem.get("pml"), ".0f"),
        ]
        print("| " + " | ".join(cells) + " |")
    print("\nOther chunked losses, time / GEMM floor (B=180; sub-centers: C/3 classes × 3; "
          "PML: pytorch-metric-learning's loss on the same inputs):")  # fmt: skip
    print("| C | focal_proxy_anchor | cosine_softmax_cross_entropy | arcface | PML ArcFace "
          "| cosface | PML CosFace | subcenter_arcface | PML SubCenterArcFace | proxy_nca "
          "| PML ProxyNCA |")  # fmt: skip
    print("|" + "---|" * 11)
    columns = ("focal", "ce", *(m for pair in zip(EXTRAS[2:], PML_EXTRAS) for m in pair))
    for batch, classes, _, r in results:
        if batch == 180:
            t = r["times"]
            cells = [_ratio(t.get(m), t.get("gemm")) for m in columns]
            print(f"| {classes:,} | " + " | ".join(cells) + " |")
    if any(r["chunked_floor"] for *_, r in results):
        print("\n* GEMM floor run 2**14 proxies at a time (same 3 GEMMs): dense S would not fit.")
    print("— : not run (pytorch-metric-learning would not fit in memory) or failed.")


if __name__ == "__main__":
    main()
