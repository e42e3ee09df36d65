"""Validation split, model selection on it, and early stopping (digits, tiny runs)."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from losskit.cli import main
from losskit.train.checkpoint import load_checkpoint
from losskit.train.config import load_config
from losskit.train.data import load_splits
from losskit.train.loop import train
from losskit.train.state import Selection

TINY = {"epochs": 3, "hidden_dim": 32, "embedding_dim": 16, "lr": 1e-2, "quiet": True}
KEYS = ("accuracy", "macro_f1", "recall_at_1", "recall_at_2", "recall_at_4", "recall_at_8")


def _labels(dataset: Any) -> list[int]:
    return [int(dataset[i][1]) for i in range(len(dataset))]


def test_classification_validation_is_stratified_seeded_and_disjoint() -> None:
    plain = load_splits("digits")
    splits = load_splits("digits", val_fraction=0.1)
    assert splits.val is not None and splits.val_labels is not None
    n_val, n_train = len(splits.val), len(splits.train)  # type: ignore[arg-type]
    assert n_val + n_train == len(plain.train)  # type: ignore[arg-type]
    assert len(splits.test) == len(plain.test)  # type: ignore[arg-type]  # the test split is kept
    # every class sends about 10 % of its training samples
    per_class = np.bincount(splits.val_labels.numpy(), minlength=10)
    totals = np.bincount(plain.train_labels.numpy(), minlength=10)
    assert np.all(np.abs(per_class - 0.1 * totals) <= 1)
    assert _labels(splits.val) == splits.val_labels.tolist()
    # no sample in two parts: compare the (standardised) rows themselves
    rows = {tuple(np.round(splits.train[i][0].numpy(), 5)) for i in range(n_train)}
    assert not any(tuple(np.round(splits.val[i][0].numpy(), 5)) in rows for i in range(n_val))
    again = load_splits("digits", val_fraction=0.1)
    assert again.val_labels is not None and again.val_labels.tolist() == splits.val_labels.tolist()
    other = load_splits("digits", val_fraction=0.1, seed=1)
    assert other.val[0][0].tolist() != splits.val[0][0].tolist()  # type: ignore[index]
    assert load_splits("digits", val_fraction=0.0).val is None


def test_retrieval_validation_holds_out_training_classes() -> None:
    splits = load_splits("digits", protocol="retrieval", val_fraction=0.1)
    # 5 training classes: 2 go to validation (at least 2, so Recall@K means something)
    assert splits.num_classes == 3 and len(splits.val_class_names) == 2
    assert not set(splits.val_class_names) & set(splits.class_names)
    assert not set(splits.val_class_names) & set(splits.test_class_names)
    with pytest.raises(ValueError, match=r"expected `val_fraction` to leave at least 2 training"):
        load_splits("digits", protocol="retrieval", val_fraction=0.7)


def test_results_report_the_test_metrics_of_the_model_selected_on_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(overrides={**TINY, "output_dir": str(tmp_path / "run")})
    results = train(config, stream=io.StringIO())
    run = tmp_path / "run"
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    # the last epoch within one standard error of the best validation accuracy
    top = max(r["Val/accuracy"] for r in records)
    n_val = len(load_splits("digits", val_fraction=0.1).val)  # type: ignore[arg-type]
    within = top - math.sqrt(top * (1 - top) / n_val)
    best = [r for r in records if r["Val/accuracy"] >= within][-1]
    assert results["selection_split"] == "validation" and results["best_epoch"] == best["epoch"]
    assert results["best_value"] == top and results["val_accuracy"] == best["Val/accuracy"]
    for key in KEYS:  # the same keys as before, now of the selected model
        assert results[key] == pytest.approx(best[f"Eval/{key}"])
        assert results[f"val_{key}"] == pytest.approx(best[f"Val/{key}"])
    assert load_checkpoint(run / "checkpoints" / "best.pt")["epoch"] == best["epoch"]
    assert main(["evaluate", "--run", str(run)]) == 0  # evaluate defaults to the same model
    shown = capsys.readouterr().out
    assert re.search(rf"accuracy\s+{results['accuracy']:.4f}", shown)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run))
    acc.Reload()
    assert {"Val/accuracy", "Eval/accuracy"} <= set(acc.Tags()["scalars"])


def test_selection_takes_the_last_score_within_one_standard_error_of_the_best() -> None:
    # 100 validation samples, best 0.9: one standard error is sqrt(0.9 * 0.1 / 100) = 0.03
    sel = Selection("accuracy", "validation", samples=100)
    scores = [0.80, 0.90, 0.875, 0.865, 0.90, float("nan"), 0.95, 0.93, 0.91]
    taken = [sel.update(e, {"accuracy": s}, {"accuracy": e / 10}) for e, s in enumerate(scores, 1)]
    # after 0.95 the tolerance is sqrt(0.95 * 0.05 / 100) = 0.0218: 0.93 is within, 0.91 is not
    assert taken == [True, True, True, False, True, False, True, True, False]
    assert (sel.epoch, sel.value) == (8, 0.95)
    assert (sel.val, sel.test) == ({"accuracy": 0.93}, {"accuracy": 0.8})
    assert sel.tolerance() == pytest.approx(math.sqrt(0.95 * 0.05 / 100))
    assert sel.stale == 2  # evaluations since the best was last beaten (patience counts these)
    perfect = Selection("accuracy", "validation", samples=50)
    assert [perfect.update(e, {"accuracy": s}, {}) for e, s in enumerate([1.0, 0.99, 1.0])] == [
        True, False, True
    ]  # fmt: skip
    last = Selection("accuracy", "none")
    assert all(last.update(e, {}, {"accuracy": s}) for e, s in enumerate([0.9, 0.5], 1))
    assert (last.epoch, last.value) == (2, 0.5)


def test_without_validation_the_last_epoch_is_reported(tmp_path: Path) -> None:
    config = load_config(
        overrides={**TINY, "epochs": 2, "val_fraction": 0, "output_dir": str(tmp_path)}
    )
    results = train(config, stream=io.StringIO())
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert results["selection_split"] == "none" and results["best_epoch"] == 2
    assert results["accuracy"] == pytest.approx(last["Eval/accuracy"])
    assert not any(k.startswith("val_") for k in results) and "Val/accuracy" not in last


def test_patience_stops_after_evaluations_without_improvement(tmp_path: Path) -> None:
    # lr 0 never improves on the first evaluation: the run stops after 1 + patience epochs
    overrides = {**TINY, "epochs": 6, "lr": 1e-12, "patience": 2, "output_dir": str(tmp_path)}
    out = io.StringIO()
    results = train(load_config(overrides={**overrides, "quiet": False}), stream=out)
    epochs = [json.loads(x)["epoch"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert results["stopped_early"] and results["best_epoch"] == 1
    assert epochs == [1, 2, 3] and results["epoch"] == 3
    assert "no better validation score in 2 evaluations: stopping after epoch 3" in out.getvalue()
