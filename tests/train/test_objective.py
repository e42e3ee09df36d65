"""The objective of each loss_type and its prediction rule (DESIGN §4), against torch core."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import losskit
from losskit.train.config import TrainConfig
from losskit.train.objective import Objective, class_similarity

B, C, D = 12, 5, 8


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    features = torch.randn(B, D, generator=g, requires_grad=True)
    logits = torch.randn(B, C, generator=g, requires_grad=True)
    labels = torch.randint(0, C, (B,), generator=g)
    return features, logits, labels


def test_ce(batch: tuple[torch.Tensor, ...]) -> None:
    features, logits, labels = batch
    obj = Objective(TrainConfig(loss_type="CE"), C, D)
    parts = obj(features, logits, labels)
    torch.testing.assert_close(parts.total, F.cross_entropy(logits, labels))
    assert obj.proxies is None and parts.proxy.item() == 0.0
    torch.testing.assert_close(obj.scores(features, logits), logits.detach())


def test_class_weighted_ce_and_focal(batch: tuple[torch.Tensor, ...]) -> None:
    features, logits, labels = batch
    w = torch.linspace(0.5, 2.0, C)
    obj = Objective(TrainConfig(loss_type="CE", class_weighted=True), C, D, w)
    torch.testing.assert_close(
        obj(features, logits, labels).total, F.cross_entropy(logits, labels, weight=w)
    )
    focal = Objective(TrainConfig(loss_type="focal", focal_gamma=0.0), C, D)
    # gamma = 0 and no alpha: focal is cross-entropy
    torch.testing.assert_close(
        focal(features, logits, labels).total, F.cross_entropy(logits, labels)
    )


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 1.0])
def test_combined_is_the_lambda_blend(batch: tuple[torch.Tensor, ...], lam: float) -> None:
    features, logits, labels = batch
    torch.manual_seed(0)
    obj = Objective(TrainConfig(loss_type="combined", lambda_combined=lam), C, D)
    assert isinstance(obj.proxy_loss, losskit.ProxyAnchorLoss)
    proxies = obj.proxies
    assert proxies is not None
    proxy = losskit.functional.proxy_anchor(features, labels, proxies, alpha=32.0, delta=0.1)
    ce = F.cross_entropy(logits, labels)
    parts = obj(features, logits, labels)
    torch.testing.assert_close(parts.total, lam * ce + (1 - lam) * proxy)
    if 0 < lam < 1:
        torch.testing.assert_close(parts.ce, ce.detach())
        torch.testing.assert_close(parts.proxy, proxy.detach())
        parts.total.backward()
        assert proxies.grad is not None and features.grad is not None and logits.grad is not None
    # prediction: argmax of lam * logits + (1 - lam) * cos(features, proxies)
    cos = F.normalize(features, dim=1) @ F.normalize(proxies, dim=1).T
    torch.testing.assert_close(
        obj.scores(features, logits), (lam * logits + (1 - lam) * cos).detach()
    )


def test_proxy_predicts_the_nearest_proxy(batch: tuple[torch.Tensor, ...]) -> None:
    features, logits, labels = batch
    obj = Objective(TrainConfig(loss_type="proxy"), C, D)
    proxies = obj.proxies
    assert proxies is not None
    parts = obj(features, logits, labels)
    expected = losskit.functional.proxy_anchor(features, labels, proxies)
    torch.testing.assert_close(parts.total, expected)
    assert parts.ce.item() == 0.0
    nearest = losskit.functional.nearest_proxy(features, proxies)
    assert torch.equal(obj.scores(features, logits).argmax(dim=1), nearest)


@pytest.mark.parametrize(
    ("proxy_type", "cls"),
    [
        ("FocalStyleProxyAnchorLoss", losskit.FocalStyleProxyAnchorLoss),
        ("MultiProxyAnchorLoss", losskit.MultiProxyAnchorLoss),
    ],
)
def test_proxy_types_take_their_hyper_parameters(proxy_type: str, cls: type) -> None:
    config = TrainConfig(
        loss_type="proxy",
        proxy_type=proxy_type,
        proxy_alpha=16.0,
        proxy_delta=0.2,
        proxy_pos_gamma=1.0,
        proxy_neg_gamma=3.0,
        proxies_per_class=2,
    )
    loss = Objective(config, C, D).proxy_loss
    assert isinstance(loss, cls)
    assert (loss.alpha, loss.delta) == (16.0, 0.2)
    if proxy_type == "FocalStyleProxyAnchorLoss":
        assert (loss.pos_gamma, loss.neg_gamma) == (1.0, 3.0)
    else:
        assert loss.proxies.shape == (2 * C, D)


@pytest.mark.parametrize(
    ("proxy_type", "fn", "rows"),
    [
        ("ArcFaceLoss", losskit.functional.arcface, C),
        ("CosFaceLoss", losskit.functional.cosface, C),
        ("SubCenterArcFaceLoss", losskit.functional.subcenter_arcface, 2 * C),
        ("ProxyNCALoss", losskit.functional.proxy_nca, C),
    ],
)
def test_softmax_proxy_types_train_with_their_defaults(
    batch: tuple[torch.Tensor, ...], proxy_type: str, fn, rows: int
) -> None:
    features, logits, labels = batch
    config = TrainConfig(loss_type="combined", proxy_type=proxy_type.lower(), proxies_per_class=2)
    obj = Objective(config, C, D)
    assert config.proxy_type == proxy_type and obj.proxies.shape == (rows, D)
    parts = obj(features, logits, labels)
    kwargs = {"sub_centers": 2} if rows > C else {}
    expected = fn(features, labels, obj.proxies, **kwargs)
    torch.testing.assert_close(parts.proxy, expected.detach())
    parts.total.backward()
    assert obj.proxies.grad is not None and torch.isfinite(obj.proxies.grad).all()
    assert obj.scores(features, logits).shape == (B, C)


def test_multi_proxy_class_similarity_is_the_best_proxy_of_each_class() -> None:
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # class-major: class 0 -> rows 0, 1; class 1 -> rows 2, 3
    proxies = torch.tensor([[0.0, 1.0], [1.0, 0.1], [-1.0, 0.0], [0.6, 0.8]])
    sims = class_similarity(features, proxies, 2)
    cos = F.normalize(features, dim=1) @ F.normalize(proxies, dim=1).T
    torch.testing.assert_close(sims, cos.view(2, 2, 2).amax(dim=2))
    assert sims.argmax(dim=1).tolist() == [0, 0]


def test_optimizer_gives_the_proxies_their_own_learning_rate() -> None:
    from losskit.train.assembly import build_optimizer, build_schedule
    from losskit.train.models import build_model

    config = TrainConfig(lr=1e-3, proxy_lr_multiplier=100.0, weight_decay=0.01, epochs=5)
    model = build_model("mlp", (10,), C, embedding_dim=D, hidden_dim=16)
    obj = Objective(config, C, D)
    opt = build_optimizer(model, obj, config)
    by_id = {id(p): g for g in opt.param_groups for p in g["params"]}
    assert len(by_id) == sum(1 for _ in model.parameters()) + 1  # every parameter, once
    proxies = by_id[id(obj.proxies)]
    assert proxies["lr"] == pytest.approx(0.1) and proxies["weight_decay"] == 0.0
    assert by_id[id(model.embedding.weight)]["weight_decay"] == 0.01
    assert by_id[id(model.embedding.bias)]["weight_decay"] == 0.0
    # per-step cosine to zero over the run; the proxies keep their 100x ratio throughout
    schedule = build_schedule(opt, config, steps_per_epoch=2)
    lrs = []
    for _ in range(10):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        schedule.step()
    assert lrs[0] == pytest.approx([1e-3, 1e-3, 0.1])
    assert lrs[5] == pytest.approx([5e-4, 5e-4, 0.05])
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)
    ce_only = build_optimizer(model, Objective(TrainConfig(loss_type="CE"), C, D), config)
    assert len(ce_only.param_groups) == 2
