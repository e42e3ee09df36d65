"""Optimisation keys: warm-up, SGD, gradient accumulation, CPU mixed precision, augmentation."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from losskit.train.assembly import build_optimizer, build_schedule
from losskit.train.augment import SeededSampler, augmentation, flip_crop, shift_scale
from losskit.train.config import TrainConfig, load_config
from losskit.train.loop import train
from losskit.train.models import build_model
from losskit.train.objective import Objective

C, D = 4, 8


def _model_and_objective(config: TrainConfig) -> tuple[torch.nn.Module, Objective]:
    torch.manual_seed(0)
    return build_model("mlp", (6,), C, embedding_dim=D, hidden_dim=16), Objective(config, C, D)


def _lrs(config: TrainConfig, steps_per_epoch: int) -> list[float]:
    model, objective = _model_and_objective(config)
    optimizer = build_optimizer(model, objective, config)
    schedule = build_schedule(optimizer, config, steps_per_epoch)
    lrs = []
    for _ in range(config.epochs * steps_per_epoch):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return lrs


def test_warmup_is_linear_then_cosine_over_the_rest() -> None:
    config = TrainConfig(lr=1.0, epochs=4, warmup_epochs=2, loss_type="CE")
    lrs = _lrs(config, steps_per_epoch=2)
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # (s + 1) / W over 4 warm-up steps
    rest = [0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4)]
    assert lrs[4:] == pytest.approx(rest)
    constant = TrainConfig(lr=1.0, epochs=2, warmup_epochs=1, lr_schedule="constant")
    assert _lrs(constant, steps_per_epoch=2) == pytest.approx([0.5, 1.0, 1.0, 1.0])


def test_sgd_uses_nesterov_momentum_and_keeps_the_groups() -> None:
    config = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.8)
    model, objective = _model_and_objective(config)
    optimizer = build_optimizer(model, objective, config)
    assert isinstance(optimizer, torch.optim.SGD)
    assert all(g["nesterov"] and g["momentum"] == 0.8 for g in optimizer.param_groups)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.1, 0.1, 10.0])
    adamw = build_optimizer(model, objective, TrainConfig())
    assert isinstance(adamw, torch.optim.AdamW)


def _one_epoch(tmp_path: Path, **overrides: object) -> Any:
    """One epoch of the loop's own steps, batch norm on running statistics (so the loss is a
    mean over samples and accumulation can be exact)."""
    from losskit.train import loop
    from losskit.train.run_folder import RunFolder
    from losskit.train.runtime import Runtime

    settings = {"loss_type": "CE", "dropout": 0.0, "epochs": 1, "hidden_dim": 16, "lr": 0.05,
                "embedding_dim": 8, "val_fraction": 0, "optimizer": "sgd",  # scale-sensitive
                "output_dir": str(tmp_path)}  # fmt: skip
    config = load_config(overrides={**settings, **overrides})
    run = loop.setup(config, RunFolder(tmp_path), None, Runtime.from_env(config.device))
    run.model.eval()
    run.model.train = lambda mode=True: run.model  # type: ignore[method-assign]
    loop.train_epoch(run, [])
    return run


def test_gradient_accumulation_equals_one_large_batch(tmp_path: Path) -> None:
    whole = _one_epoch(tmp_path, batch_size=64)
    halves = _one_epoch(tmp_path, batch_size=32, grad_accum_steps=2)
    assert whole.global_step == halves.global_step == 22  # 1437 samples: 22 steps of 64
    for name, value in whole.model.state_dict().items():
        torch.testing.assert_close(halves.model.state_dict()[name], value, rtol=1e-4, atol=1e-6)
    assert whole.epoch_sums["Loss/Total"] == pytest.approx(halves.epoch_sums["Loss/Total"])
    assert not any(tmp_path.iterdir())


def test_grad_accum_steps_halves_the_optimiser_steps(tmp_path: Path) -> None:
    from losskit.train.tracking import Callback

    class Count(Callback):
        steps = 0

        def on_step_end(self, run, parts, values) -> None:  # type: ignore[no-untyped-def]
            Count.steps += 1

    overrides = {"epochs": 1, "hidden_dim": 16, "embedding_dim": 8, "quiet": True}
    base = load_config(overrides={**overrides, "output_dir": str(tmp_path / "a")})
    train(base, callbacks=[Count()], stream=io.StringIO())
    one = Count.steps
    Count.steps = 0
    accum = base.model_copy(update={"grad_accum_steps": 2, "output_dir": str(tmp_path / "b")})
    train(accum, callbacks=[Count()], stream=io.StringIO())
    assert Count.steps == math.ceil(one / 2)


def test_amp_on_cpu_runs_bf16_autocast_and_says_so(tmp_path: Path) -> None:
    overrides = {"epochs": 1, "hidden_dim": 16, "embedding_dim": 8, "quiet": True, "amp": True}
    out = io.StringIO()
    results = train(load_config(overrides={**overrides, "output_dir": str(tmp_path)}), stream=out)
    assert "Device: cpu (bfloat16 autocast)" in out.getvalue()
    assert 0.0 <= results["accuracy"] <= 1.0


def test_image_augmentation_crops_flips_and_is_seeded() -> None:
    halves = torch.zeros(3, 16, 16)
    halves[0, :, :8] = 1.0  # red left half
    solid = torch.full((3, 10, 12), 0.3)
    g = torch.Generator().manual_seed(0)
    torch.testing.assert_close(flip_crop(solid, g), solid)  # any crop of a solid image
    draws = [flip_crop(halves, torch.Generator().manual_seed(s)) for s in range(40)]
    assert all(d.shape == halves.shape for d in draws)
    red = torch.stack([d[0, :, :8].mean() - d[0, :, 8:].mean() for d in draws])
    assert bool((red > 0).any()) and bool((red < 0).any())  # flipped and not flipped
    again = flip_crop(halves, torch.Generator().manual_seed(3))
    torch.testing.assert_close(again, draws[3], rtol=0, atol=0)


def test_signal_augmentation_shifts_and_scales() -> None:
    x = torch.arange(20.0).repeat(2, 1)
    y = shift_scale(x, torch.Generator().manual_seed(0))
    scale = y.abs().sum() / x.abs().sum()
    assert 0.8 <= float(scale) <= 1.2
    shifted = y / scale
    assert any(torch.allclose(shifted, torch.roll(x, s, -1)) for s in range(-2, 3))
    assert augmentation((2, 20)) is shift_scale and augmentation((3, 8, 8)) is flip_crop
    with pytest.raises(ValueError, match=r"expected `augment` image \(C, H, W\) or signal"):
        augmentation((64,))


def test_seeded_sampler_draws_nothing_from_the_global_rng() -> None:
    base = torch.utils.data.RandomSampler(range(10), generator=torch.Generator())
    sampler = SeededSampler(base, lambda epoch: 1000 + epoch)
    sampler.set_epoch(1)
    state = torch.get_rng_state()
    first = list(sampler)
    assert torch.equal(torch.get_rng_state(), state)
    sampler.set_epoch(1)
    assert list(sampler) == first and [s for _, s in first] == list(range(1001, 1011))
    sampler.set_epoch(2)
    assert [i for i, _ in sampler] != [i for i, _ in first]


def test_augment_on_signals_trains(tmp_path: Path) -> None:
    import numpy as np

    g = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 48), ("test", 24)):
        y = np.arange(n) % 3
        np.save(
            data / f"{split}_data.npy",
            g.normal(size=(n, 2, 16)).astype(np.float32) + y[:, None, None],
        )
        np.save(data / f"{split}_labels.npy", y)
    overrides = {"dataset": "npy", "data_dir": str(data), "epochs": 1, "batch_size": 16,
                 "quiet": True, "augment": True, "output_dir": str(tmp_path / "run")}  # fmt: skip
    results = train(load_config(overrides=overrides), stream=io.StringIO())
    assert results["accuracy"] > 0.0
    with pytest.raises(ValueError, match=r"expected `augment` image"):
        train(load_config(overrides={"augment": True, "output_dir": str(tmp_path / "v")}))
    assert not (tmp_path / "v").exists()
