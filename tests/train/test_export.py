"""``losskit embed`` and ``losskit export`` on tiny runs: outputs equal the trained model's."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from losskit.cli import main
from losskit.train.assembly import load_run
from losskit.train.config import load_config
from losskit.train.export import METADATA_FILE
from losskit.train.loop import train

TINY = {"epochs": 1, "hidden_dim": 32, "embedding_dim": 16, "lr": 1e-2, "quiet": True}


def _train(folder: Path, **overrides: object) -> Path:
    config = load_config(overrides={**TINY, "output_dir": str(folder), **overrides})
    train(config, stream=io.StringIO())
    return folder


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tmp_path_factory.mktemp("digits") / "run", loss_type="combined")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    g = np.random.default_rng(0)
    for split, n in (("train", 48), ("test", 24)):
        y = np.arange(n) % 3
        x = (g.integers(0, 200, size=(n, 1, 8, 8)) + 20 * y.reshape(-1, 1, 1, 1)).astype(np.uint8)
        np.save(root / f"{split}_data.npy", x)
        np.save(root / f"{split}_labels.npy", y)
    return _train(root / "run", dataset="npy", data_dir=str(root), batch_size=16)


def _raw_samples(run: Path, n: int) -> np.ndarray:
    """Samples as stored in the data files of ``run`` (before standardising)."""
    config = load_config(run / "config.yaml")
    if config.dataset == "digits":
        from sklearn.datasets import load_digits

        return load_digits().data[:n].astype(np.float32)
    return np.load(Path(str(config.data_dir)) / "test_data.npy")[:n]


def _reference(run: Path, raw: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features, logits)`` of the trained model, standardising by hand."""
    _, model, _, info = load_run(run)
    x = torch.from_numpy(raw).float()
    if "input_mean" in info:
        x = (x - info["input_mean"]) / info["input_std"]
    with torch.no_grad():
        features, logits = model(x)
    return features, logits


def test_embed_writes_the_models_features(digits_run: Path, tmp_path: Path) -> None:
    raw = _raw_samples(digits_run, 40)
    np.save(tmp_path / "x.npy", raw)
    features, _ = _reference(digits_run, raw)
    for flag, expected in (
        ([], features),
        (["--normalize"], torch.nn.functional.normalize(features)),
    ):
        out = tmp_path / "e.npy"
        argv = ["embed", "--run", str(digits_run), "--input", str(tmp_path / "x.npy"),
                "--output", str(out), *flag]  # fmt: skip
        assert main(argv) == 0
        got = np.load(out)
        assert got.shape == (40, 16) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.npy", "x.npy"]  # no temporary left


# Runs with torch alone: any import of losskit fails, so the program cannot depend on it.
_LOAD_WITHOUT_LOSSKIT = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoLosskit(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "losskit":
                raise ImportError("losskit is not installed here")
            return None

    sys.meta_path.insert(0, NoLosskit())
    try:
        import losskit
    except ImportError:
        pass
    else:
        raise SystemExit("losskit imported")
    import numpy as np
    import torch

    program, x_path, out_path, meta_name = sys.argv[1:]
    extra = {meta_name: ""}
    module = torch.export.load(program, extra_files=extra).module()
    x = torch.from_numpy(np.load(x_path)).float()
    with torch.no_grad():
        outputs = [module(x[:3]), module(x)]  # two batch sizes: the batch dimension is dynamic
    np.savez(out_path, f3=outputs[0][0], l3=outputs[0][1], f=outputs[1][0], l=outputs[1][1],
             meta=extra[meta_name])
    assert not any(m.split(".")[0] == "losskit" for m in sys.modules)
    """
)


@pytest.mark.parametrize("which", ["digits_run", "image_run"])
def test_export_loads_without_losskit_and_matches_the_model(
    which: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    run: Path = request.getfixturevalue(which)
    program = tmp_path / "model.pt2"
    assert main(["export", "--run", str(run), "--output", str(program)]) == 0
    raw = _raw_samples(run, 20)
    np.save(tmp_path / "x.npy", raw)
    script = tmp_path / "load.py"
    script.write_text(_LOAD_WITHOUT_LOSSKIT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [sys.executable, "-I", str(script), str(program), str(tmp_path / "x.npy"),
         str(tmp_path / "out.npz"), METADATA_FILE],
        cwd=tmp_path, env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    got = np.load(tmp_path / "out.npz")
    features, logits = _reference(run, raw)
    for key, expected in (("f", features), ("l", logits)):
        np.testing.assert_allclose(got[key], expected.numpy(), atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(got[key + "3"], expected[:3].numpy(), atol=1e-5, rtol=1e-5)
    meta = json.loads(str(got["meta"]))
    info = load_run(run).info
    assert (
        meta["sample_shape"] == info["sample_shape"] and meta["class_names"] == info["class_names"]
    )
    assert meta["embedding_dim"] == 16


def test_embed_and_export_errors(
    digits_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "x.npy"
    np.save(good, _raw_samples(digits_run, 5))
    out = str(tmp_path / "e.npy")

    def error(*argv: str) -> str:
        assert main(list(argv)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        return err

    run = str(digits_run)
    assert "embed: expected `run` a run folder holding config.yaml and checkpoints/best.pt, " \
        f"got '{tmp_path}' (no config.yaml, checkpoints/best.pt)" in error(
            "embed", "--run", str(tmp_path), "--input", str(good), "--output", out)  # fmt: skip
    assert "export: expected `run` a run folder" in error(
        "export", "--run", str(tmp_path / "none"), "--output", str(tmp_path / "m.pt2"))  # fmt: skip
    assert "embed: expected `input` to be a .npy file, got no file at" in error(
        "embed", "--run", run, "--input", str(tmp_path / "none.npy"), "--output", out)  # fmt: skip
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 10), np.float32))
    assert "embed: expected `input` of shape (N, 64), got (5, 10)" in error(
        "embed", "--run", run, "--input", str(bad), "--output", out)  # fmt: skip
    np.save(bad, np.array([["a"] * 64]))
    assert "embed: expected `input` to hold numbers (integer or float), got dtype <U1" in error(
        "embed", "--run", run, "--input", str(bad), "--output", out)  # fmt: skip
    nan = np.zeros((8, 64), np.float32)
    nan[[2, 5], 3], nan[6, 0] = np.nan, np.inf
    np.save(bad, nan)
    assert "embed: expected `input` finite values, got NaN or inf in 3 rows (2, 5, 6)" in error(
        "embed", "--run", run, "--input", str(bad), "--output", out)  # fmt: skip
    bad.write_bytes(b"not an array")
    assert "embed: expected `input` to be a NumPy .npy array of numbers (read without " \
        "pickle), got an object array, pickled data or another format" in error(
        "embed", "--run", run, "--input", str(bad), "--output", out)  # fmt: skip
    missing = tmp_path / "no" / "e.npy"
    assert f"embed: expected `output` a file in an existing folder, got {missing}" in error(
        "embed", "--run", run, "--input", str(good), "--output", str(missing))  # fmt: skip
    assert "export: expected `output` a file in an existing folder" in error(
        "export", "--run", run, "--output", str(tmp_path / "no" / "m.pt2"))  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npy", "x.npy"]  # nothing written
