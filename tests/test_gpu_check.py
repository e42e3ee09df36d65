"""``benchmarks/gpu_check.py`` (``make gpu-check``) as far as a machine without CUDA can run it:
the plan and its flags, the no-CUDA exit, the step runner, the key numbers and the table."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


def _script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **env}, cwd=ROOT,
    )  # fmt: skip


def test_dry_run_prints_the_plan(tmp_path):
    (tmp_path / "pydantic-2.0-py3-none-any.whl").write_bytes(b"")
    out = _script("--dry-run", "--wheels", str(tmp_path))
    assert out.returncode == 0, out.stderr
    names = [line.split(" (")[0] for line in out.stdout.splitlines()]
    assert names == ["wheels", "cuda-tests", "proxy-scale", "linear-ce", "train-amp", "torchrun"]
    assert "pydantic-2.0-py3-none-any.whl" in out.stdout
    assert "--amp" in out.stdout and "--nproc_per_node 1" in out.stdout


def test_every_flag_the_plan_gives_a_benchmark_or_the_trainer_exists(gpu_check, tmp_path):
    programs = {"proxy-scale": slice(1, 2), "linear-ce": slice(1, 2), "train-amp": slice(1, 4)}
    for step in gpu_check.plan(sys.executable, tmp_path, tmp_path):
        if step.name in programs:
            help_text = _script_help(step.argv[programs[step.name]])
            for flag in (a for a in step.argv if a.startswith("--")):
                assert flag in help_text, (step.name, flag)


def _script_help(target: list[str]) -> str:
    out = subprocess.run(
        [sys.executable, *target, "--help"], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_without_a_gpu_it_says_so_and_runs_nothing():
    out = _script(CUDA_VISIBLE_DEVICES="")
    assert out.returncode == 1
    assert out.stdout.strip() == (
        "gpu-check: no CUDA device (torch.cuda.is_available() is False); nothing run"
    )


def test_steps_report_status_seconds_and_key(gpu_check, tmp_path):
    table = "| V | time ours |\n|---|---|\n| 32,768 | 1.5× (2 s) |\n| 262,144 | 1.2× (9 s) |"
    python = [sys.executable, "-c"]
    steps = [
        gpu_check.Step("ok", [*python, f"print({table!r})"], 60,
                       gpu_check.table_row("time ours", "V")),
        gpu_check.Step("fails", [*python, "import sys; print('boom'); sys.exit(3)"], 60,
                       lambda out, _: out.strip()),
        gpu_check.Step("hangs", [*python, "import time; time.sleep(60)"], 1,
                       lambda out, _: "-"),
    ]  # fmt: skip
    outcomes = gpu_check.run_steps(steps, 100, tmp_path, dict(os.environ))
    assert [(o.name, o.status, o.key) for o in outcomes] == [
        ("ok", "ok", "time ours 1.2× (9 s) at V=262,144"),
        ("fails", "failed (exit 3)", "boom"),
        ("hangs", "timeout (1 s)", "-"),
    ]
    assert 1 <= outcomes[2].seconds < 30
    assert (tmp_path / "fails.log").read_text() == "boom\n"
    text = gpu_check.summary_table(outcomes).splitlines()
    assert text[0].split() == ["step", "status", "seconds", "key", "number"]
    assert text[4].startswith("hangs  timeout (1 s)")


def test_a_step_is_skipped_when_the_budget_is_spent(gpu_check, tmp_path):
    step = gpu_check.Step("late", [sys.executable, "-c", "pass"], 60, lambda out, _: "")
    (outcome,) = gpu_check.run_steps([step], gpu_check.MIN_START_S - 1, tmp_path, {})
    assert outcome.status == "skipped (budget)"
    assert not (tmp_path / "late.log").exists()


def test_key_numbers_read_the_outputs(gpu_check, tmp_path):
    summary = "..s\n3 passed, 2 skipped, 1090 deselected, 1 error in 12.3s"
    assert gpu_check.pytest_counts(summary, tmp_path) == "3 passed, 2 skipped, 1 error"
    two_tables = (
        "| B | C | D | time ours/GEMM |\n|---|---|---|---|\n| 180 | 1,000 | 512 | 1.10 |\n"
        "| 180 | 10,000 | 512 | 0.95 |\n\n| C | focal |\n|---|---|\n| 1,000 | 2.00 |"
    )
    read = gpu_check.table_row("time ours/GEMM", "C")
    assert read(two_tables, tmp_path) == "time ours/GEMM 0.95 at C=10,000"
    assert read("no table", tmp_path) == "no table row"
    (tmp_path / "results.json").write_text('{"accuracy": 0.91234, "epoch": 2}')
    assert gpu_check.run_accuracy(tmp_path) == "test accuracy 0.9123 after 2 epochs"
    assert gpu_check.run_accuracy(tmp_path / "missing") == "no results.json"
