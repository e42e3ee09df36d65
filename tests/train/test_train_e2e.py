"""``losskit train | evaluate | predict`` end to end on tiny runs (digits, 2-3 short epochs)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from losskit.cli import main
from losskit.train import assembly
from losskit.train.assembly import load_run
from losskit.train.checkpoint import load_checkpoint
from losskit.train.config import TrainConfig, load_config
from losskit.train.evaluate import evaluate
from losskit.train.loop import NonFiniteLossError, train
from losskit.train.objective import LossParts, Objective
from losskit.train.runtime import Runtime
from losskit.train.tracking import Callback, RunState

TINY = {
    "epochs": 2,
    "hidden_dim": 32,
    "embedding_dim": 16,
    "batch_size": 64,
    "lr": 1e-2,
    "quiet": True,
}
RULE = "=" * 70
CLASSIFICATION_KEYS = {f"recall_at_{k}" for k in (1, 2, 4, 8)} | {"accuracy", "macro_f1"}
RETRIEVAL_KEYS = {f"recall_at_{k}" for k in (1, 2, 4, 8)} | {"map_at_r", "nmi"}


def _run(tmp_path: Path, name: str = "run", **overrides: Any) -> tuple[TrainConfig, dict, str]:
    config = load_config(overrides={**TINY, "output_dir": str(tmp_path / name), **overrides})
    out = io.StringIO()
    results = train(config, stream=out)
    return config, results, out.getvalue()


def _tags(run_dir: Path, kind: str = "scalars") -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return set(acc.Tags()[kind])


PROXY_LINES = [
    "Proxy Type: {}",
    "Proxy α (alpha): 32.0",
    "Proxy δ (delta): 0.1",
]
LAMBDA_LINES = ["λ (lambda): 0.50", "  → CE weight: 0.50", "  → Proxy weight: 0.50"]
EXTRA = {
    "FocalStyleProxyAnchorLoss": ["Proxy γ (pos/neg gamma): 2.0 / 2.0"],
    "MultiProxyAnchorLoss": ["Proxies per class: 3"],
    "ProxyAnchorLoss": [],
}


def _expected_banner(loss_type: str, proxy_type: str) -> list[str]:
    lines = ["TRAINING CONFIGURATION", RULE, f"Loss Type: {loss_type}"]
    if loss_type in ("proxy", "combined"):
        lines += [PROXY_LINES[0].format(proxy_type), *PROXY_LINES[1:]]
    if loss_type == "combined":
        lines += LAMBDA_LINES
    if loss_type in ("proxy", "combined"):
        lines += EXTRA[proxy_type]
    if loss_type == "focal":
        lines += ["Focal γ (gamma): 2.0"]
    return lines


CASES = [("CE", "ProxyAnchorLoss"), ("focal", "ProxyAnchorLoss")] + [
    (loss, proxy)
    for loss in ("proxy", "combined")
    for proxy in ("ProxyAnchorLoss", "FocalStyleProxyAnchorLoss", "MultiProxyAnchorLoss")
]


@pytest.mark.parametrize(("loss_type", "proxy_type"), CASES)
def test_every_loss_and_proxy_type_trains(tmp_path: Path, loss_type: str, proxy_type: str) -> None:
    threads = torch.get_num_threads()
    config, results, printed = _run(tmp_path, loss_type=loss_type, proxy_type=proxy_type)
    assert torch.get_num_threads() == threads  # the run's thread choice does not leak
    run = tmp_path / "run"
    expected = _expected_banner(loss_type, proxy_type)
    assert printed.splitlines()[: len(expected)] == expected
    if (loss_type, proxy_type) == ("combined", "ProxyAnchorLoss"):  # DESIGN §4 verbatim
        assert printed.startswith(
            "TRAINING CONFIGURATION\n" + RULE + "\nLoss Type: combined\n"
            "Proxy Type: ProxyAnchorLoss\nProxy α (alpha): 32.0\nProxy δ (delta): 0.1\n"
            "λ (lambda): 0.50\n  → CE weight: 0.50\n  → Proxy weight: 0.50\n"
        )
    assert f"Run folder: {run}" in printed
    # results.json: the final metrics under DESIGN's keys
    saved = json.loads((run / "results.json").read_text())
    assert saved == results
    assert set(saved) >= CLASSIFICATION_KEYS and not {"map_at_r", "nmi"} & set(saved)
    assert saved["accuracy"] > 0.5  # two tiny epochs learn something
    # TensorBoard: the three loss scalars every step, Eval/* every epoch
    tags = _tags(run)
    assert {"Loss/Total", "Loss/CE", "Loss/Proxy", "Eval/accuracy", "Eval/recall_at_1"} <= tags
    assert "Eval/confusion_matrix" in _tags(run, "images")
    # metrics.jsonl: one line per epoch with the keys the plots read
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert {"Loss/Total", "Loss/CE", "Loss/Proxy", "lr", "Eval/accuracy"} <= set(lines[0])
    uses_ce, uses_proxy = loss_type != "proxy", loss_type in ("proxy", "combined")
    assert (lines[0]["Loss/CE"] > 0) == uses_ce and (lines[0]["Loss/Proxy"] > 0) == uses_proxy
    # embeddings.npz for the plots; proxies only with a proxy loss
    with np.load(run / "embeddings.npz") as npz:
        assert npz["features"].shape == (len(npz["labels"]), 16)
        assert ("proxies" in npz.files) == uses_proxy
    assert load_config(run / "config.yaml") == config
    assert (run / "checkpoints" / "best.pt").is_file()
    assert (run / "confusion_matrix.png").stat().st_size > 0


def test_retrieval_protocol(tmp_path: Path) -> None:
    _, results, printed = _run(tmp_path, protocol="retrieval")
    assert set(results) >= RETRIEVAL_KEYS and "accuracy" not in results
    assert results["protocol"] == "retrieval" and 0 <= results["nmi"] <= 1
    assert {"Eval/map_at_r", "Eval/nmi"} <= _tags(tmp_path / "run")
    assert "map_at_r" in printed


class _Interrupt(Callback):
    def __init__(self, after: int) -> None:
        self.after = after

    def on_epoch_end(self, run: RunState, record: dict[str, float], evaluation: Any) -> None:
        if run.epoch == self.after:
            raise KeyboardInterrupt


def test_resume_continues_exactly(tmp_path: Path) -> None:
    settings = {"epochs": 3, "dropout": 0.3, "sampler": "random", "seed": 3}
    _, full, _ = _run(tmp_path, "full", **settings)
    config = load_config(overrides={**TINY, **settings, "output_dir": str(tmp_path / "cut")})
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[_Interrupt(after=2)], stream=io.StringIO())
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["epoch"] == 2
    resumed = train(config, resume=True, stream=io.StringIO())
    for key in CLASSIFICATION_KEYS:
        assert resumed[key] == full[key]
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    for name, tensor in a["model"].items():
        torch.testing.assert_close(b["model"][name], tensor, rtol=0, atol=0)
    torch.testing.assert_close(
        b["objective"]["proxy_loss.proxies"], a["objective"]["proxy_loss.proxies"]
    )
    lines = [(tmp_path / r / "metrics.jsonl").read_text().splitlines() for r in ("full", "cut")]
    strip = [[{k: v for k, v in json.loads(x).items() if k != "time_s"} for x in f] for f in lines]
    assert strip[0] == strip[1]
    with pytest.raises(FileExistsError, match=r"already holds a run; continue it with --resume"):
        train(config, stream=io.StringIO())


class _WatchFrozen(Callback):
    def on_train_start(self, run: RunState) -> None:
        self.start = {k: v.clone() for k, v in run.model.state_dict().items()}
        self.seen: dict[int, dict[str, bool]] = {}

    def on_epoch_end(self, run: RunState, record: dict[str, float], evaluation: Any) -> None:
        now = run.model.state_dict()
        changed = {k: not torch.equal(now[k], self.start[k]) for k in now if "num_batches" not in k}
        self.seen[run.epoch] = changed


def test_freeze_epochs_train_only_the_heads(tmp_path: Path) -> None:
    watch = _WatchFrozen()
    config = load_config(overrides={**TINY, "freeze_epochs": 1, "output_dir": str(tmp_path)})
    train(config, callbacks=[watch], stream=io.StringIO())
    weights = [k for k in watch.seen[1] if k.endswith("weight")]
    backbone = [k for k in weights if k.startswith("backbone.")]
    assert backbone and not any(watch.seen[1][k] for k in backbone)  # frozen in epoch 1
    assert watch.seen[1]["embedding.weight"] and watch.seen[1]["classifier.weight"]
    assert all(watch.seen[2][k] for k in backbone)  # trained from epoch 2


@pytest.mark.parametrize("protocol", ["classification", "retrieval"])
def test_cosine_classifier_head_reloads_to_the_results_of_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    overrides = {"classifier": "cosine", "cosine_scale": 10.0, "protocol": protocol}
    _, results, _ = _run(tmp_path, loss_type="CE", epochs=3, **overrides)
    run = tmp_path / "run"
    config, model, objective, info = load_run(run)
    head = model.classifier
    assert config.classifier == "cosine" and head.scale == 10.0
    assert head.weight.shape == (info["num_classes"], config.embedding_dim)
    # The reloaded model embeds the test split bit for bit as the training-time evaluation did,
    # and gives results.json's metrics exactly, as `losskit evaluate` prints them.
    splits = assembly.build_data(config)
    runtime = Runtime(torch.device("cpu"))
    _, test = assembly.eval_splits(splits, config, runtime)
    again = assembly.evaluate_split(
        model, objective, test, protocol=protocol, runtime=runtime, seed=config.seed
    )
    saved = np.load(run / "embeddings.npz")
    assert torch.equal(again.features, torch.from_numpy(saved["features"]))  # all test rows
    reported = {k: v for k, v in results.items() if k in again.metrics}
    assert len(reported) >= 6 and reported == {k: again.metrics[k] for k in reported}
    assert main(["evaluate", "--run", str(run)]) == 0
    shown = capsys.readouterr().out
    for key, value in reported.items():
        assert re.search(rf"^{key}\s+{value:.4f}$", shown, re.M), key


def test_checkpoint_round_trip_and_evaluate_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(tmp_path)
    run = tmp_path / "run"
    config, model, objective, info = load_run(run)
    assert info["num_classes"] == 10 and info["sample_shape"] == [64]
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    record = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    at_best = record[best["epoch"] - 1]
    from torch.utils.data import DataLoader

    from losskit.train.assembly import build_data

    splits = build_data(config)  # the splits (and standardisation) the run trained on
    result = evaluate(model, objective, DataLoader(splits.test, batch_size=256),
                      protocol="classification", class_names=splits.class_names,
                      device=torch.device("cpu"))  # fmt: skip
    assert result.metrics["accuracy"] == pytest.approx(at_best["Eval/accuracy"])
    assert main(["evaluate", "--run", str(run)]) == 0
    shown = capsys.readouterr().out
    assert re.search(rf"accuracy\s+{at_best['Eval/accuracy']:.4f}", shown) and "macro avg" in shown


def test_predict_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(tmp_path, loss_type="combined")
    run = tmp_path / "run"
    _, model, objective, info = load_run(run)
    from sklearn.datasets import load_digits

    raw = load_digits().data[:50].astype(np.float32)  # samples as stored, before standardising
    np.save(tmp_path / "x.npy", raw)
    out = tmp_path / "preds.csv"
    code = main(["predict", "--run", str(run), "--input", str(tmp_path / "x.npy"),
                 "--output", str(out), "--all-scores"])  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 50 and list(rows[0])[:4] == ["index", "prediction", "class_name", "score"]
    x = (torch.from_numpy(raw) - info["input_mean"]) / info["input_std"]
    with torch.no_grad():
        expected = objective.scores(*model(x)).argmax(dim=1).tolist()
    assert [int(r["prediction"]) for r in rows] == expected
    assert [r["class_name"] for r in rows] == [info["class_names"][p] for p in expected]
    bad = tmp_path / "bad.npy"
    np.save(bad, raw[:, :10])
    assert main(["predict", "--run", str(run), "--input", str(bad), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "predict: expected `input` of shape (N, 64), got (50, 10)" in err


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = {"n": 0}

    class Exploding(Objective):
        def forward(self, features: Any, logits: Any, labels: Any) -> LossParts:
            parts = super().forward(features, logits, labels)
            steps["n"] += 1
            if steps["n"] > 25:  # in the second epoch (22 steps per epoch)
                return LossParts(parts.total * float("nan"), parts.ce, parts.proxy)
            return parts

    monkeypatch.setattr(assembly, "Objective", Exploding)
    with pytest.raises(
        NonFiniteLossError, match=r"the loss became nan at epoch 2, step 26 .*stopped"
    ):
        _run(tmp_path)
    kept = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert kept["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in kept["model"].values() if t.is_floating_point())


def test_cli_train_prints_banner_and_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "cli"
    argv = ["train", "--epochs", "1", "--hidden-dim", "16", "--embedding_dim", "8",
            "--loss-type", "CE", "--output-dir", str(run)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("TRAINING CONFIGURATION\n" + RULE + "\nLoss Type: CE\n")
    assert "epoch 1/1" in out and "RESULTS (test set, epoch 1)" in out and "accuracy" in out
    assert main(argv) == 2  # the folder holds a run: refuse, suggest --resume
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--quiet"]) == 0  # finished: evaluates again
    again = capsys.readouterr().out
    assert "Loss Type: CE" in again and "epoch 1/1" not in again and "RESULTS" in again
    assert main(["train", "--lambda_combined", "2", "--output-dir", str(tmp_path / "x")]) == 2
    assert "expected `lambda_combined` in [0, 1], got 2" in capsys.readouterr().err
    assert main(["train", "--device", "gpu", "--output-dir", str(tmp_path / "x")]) == 2
    assert "expected `device` 'auto', 'cpu', 'cuda' or 'cuda:<index>', got 'gpu'" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "x").exists()  # errors come before any work


@pytest.mark.parametrize("sampler", ["balanced", "m_per_class"])
def test_samplers_and_class_weights(tmp_path: Path, sampler: str) -> None:
    # 64 / 8 = 8 classes of 8 samples per batch (digits has 10 classes)
    _, results, _ = _run(tmp_path, sampler=sampler, m_per_class=8, class_weighted=True, epochs=1)
    assert results["accuracy"] > 0.3
    steps = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 1 and steps[0]["Loss/CE"] > 0


@pytest.mark.parametrize(("shape", "conv_dims"), [((1, 8, 8), 4), ((2, 16), 3)])
def test_images_and_signals_train_a_cnn(
    tmp_path: Path, shape: tuple[int, ...], conv_dims: int
) -> None:
    g = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 48), ("test", 24)):
        y = np.arange(n) % 3
        x = g.normal(size=(n, *shape)).astype(np.float32) + y.reshape(-1, *[1] * len(shape))
        np.save(data / f"{split}_data.npy", x)
        np.save(data / f"{split}_labels.npy", y)
    _, results, _ = _run(tmp_path, dataset="npy", data_dir=str(data), epochs=1, batch_size=16)
    assert set(results) >= CLASSIFICATION_KEYS
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["data"]["sample_shape"] == list(shape)
    stem = "backbone.net.0.weight" if len(shape) == 2 else "backbone.net.0.0.weight"
    assert state["model"][stem].dim() == conv_dims  # auto picked a 1-D or 2-D CNN
