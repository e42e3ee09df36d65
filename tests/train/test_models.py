"""The trainer's networks: backbone choice by sample rank, output shapes, freezing, errors."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch

from losskit.train.models import EmbeddingNet, build_backbone, build_model, resolve_backbone


@pytest.mark.parametrize(
    ("shape", "expected"), [((64,), "mlp"), ((3, 50), "cnn1d"), ((1, 8, 8), "cnn2d")]
)
def test_auto_picks_by_sample_rank(shape: tuple[int, ...], expected: str) -> None:
    assert resolve_backbone("auto", shape) == expected
    assert resolve_backbone("mlp", shape) == "mlp"


@pytest.mark.parametrize("shape", [(64,), (3, 50), (1, 8, 8), (3, 70, 45)])
def test_features_and_logits_shapes(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = build_model("auto", shape, 7, embedding_dim=12, hidden_dim=16)
    features, logits = model(torch.randn(5, *shape))
    assert features.shape == (5, 12)
    assert logits.shape == (5, 7)
    (features.sum() + logits.sum()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_freeze_backbone_leaves_the_heads_trainable() -> None:
    model = build_model("mlp", (10,), 3, embedding_dim=4, hidden_dim=8)
    model.freeze_backbone(True)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.embedding.parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    model.freeze_backbone(False)
    assert all(p.requires_grad for p in model.parameters())


def test_embedding_net_accepts_any_backbone_with_out_features() -> None:
    backbone = torch.nn.Flatten()
    backbone.out_features = 6  # type: ignore[assignment]
    net = EmbeddingNet(backbone, 4, 2)
    features, logits = net(torch.randn(3, 2, 3))
    assert (features.shape, logits.shape) == ((3, 4), (3, 2))


def test_cnn2d_pool_grid_keeps_where_things_are() -> None:
    torch.manual_seed(0)
    x = torch.zeros(2, 1, 32, 32)
    x[0, 0, 8:10, 8:10] = 1.0  # the same blob, moved by 12 pixels (far from the borders)
    x[1, 0, 20:22, 20:22] = 1.0
    pooled = {}
    for grid in (1, 4):
        net = build_backbone("cnn2d", (1, 32, 32), pool_grid=grid).eval()
        assert net.out_features == 128 * grid * grid
        with torch.no_grad():
            pooled[grid] = net(x)
        assert pooled[grid].shape == (2, 128 * grid * grid)
    # global pooling only sees what is there; the 4x4 grid also sees where
    torch.testing.assert_close(pooled[1][0], pooled[1][1], atol=1e-5, rtol=1e-5)
    assert (pooled[4][0] - pooled[4][1]).abs().max() > 1e-2


def test_errors() -> None:
    with pytest.raises(
        ValueError, match=r"expected `sample shape` \(L,\), \(C, L\) or \(C, H, W\)"
    ):
        resolve_backbone("auto", (1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"expected `samples` of shape \(C, H, W\) for backbone"):
        build_backbone("cnn2d", (64,))
    with pytest.raises(ValueError, match=r"expected `samples` of shape \(L,\) for backbone 'mlp'"):
        build_backbone("mlp", (1, 8, 8))


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="has torchvision")
def test_resnet_without_torchvision_says_how_to_get_it() -> None:
    with pytest.raises(ImportError, match=r"backbone 'resnet18' needs torchvision: pip install"):
        build_backbone("resnet18", (3, 32, 32))


class _TinyResNet(torch.nn.Module):
    """Stands in for a torchvision ResNet: same ``fc`` attribute and ``weights=`` argument."""

    def __init__(self, weights: object = None) -> None:
        super().__init__()
        assert weights is None
        self.conv1 = torch.nn.Conv2d(3, 8, 3)
        self.pool = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.fc = torch.nn.Linear(8, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.conv1(x)))


def test_resnet_weights_come_from_a_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = types.ModuleType("torchvision")
    fake.models = types.SimpleNamespace(resnet18=_TinyResNet)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    reference = _TinyResNet()
    torch.save(reference.state_dict(), tmp_path / "r18.pt")
    net = build_backbone("resnet18", (1, 16, 16), weights=tmp_path / "r18.pt")
    assert net.out_features == 8  # the classifier is dropped
    torch.testing.assert_close(net.net.conv1.weight, reference.conv1.weight)
    assert net(torch.randn(2, 1, 16, 16)).shape == (2, 8)  # grey images repeated to 3 channels
    with pytest.raises(FileNotFoundError, match=r"no pretrained weights file at"):
        build_backbone("resnet18", (3, 16, 16), weights=tmp_path / "missing.pt")


def test_cosine_classifier_logits_give_the_normalised_softmax_loss() -> None:
    import losskit.functional as LF

    torch.manual_seed(0)
    model = build_model(
        "mlp", (64,), 7, embedding_dim=12, hidden_dim=16, classifier="cosine", cosine_scale=8.0
    ).double()
    x, y = torch.randn(5, 64, dtype=torch.float64), torch.randint(0, 7, (5,))
    features, logits = model(x)
    assert logits.abs().max() <= 8.0 + 1e-9  # σ·cos is bounded by σ
    weight = model.classifier.weight
    expected = LF.cosine_softmax_cross_entropy(features, y, weight, scale=8.0)
    torch.testing.assert_close(LF.cross_entropy(logits, y), expected, rtol=1e-10, atol=1e-12)


class _Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.norm = torch.nn.BatchNorm2d(4)


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "module.", "nested"])
def test_pretrained_weights_load_strictly_through_the_usual_wrappers(
    tmp_path: Path, wrap: str
) -> None:
    from losskit.train.models import load_weights

    torch.manual_seed(0)
    source = _Small()
    state: object = source.state_dict()
    if wrap == "module.":
        state = {f"module.{k}": v for k, v in source.state_dict().items()}
    elif wrap == "nested":
        state = {"model": {"state_dict": source.state_dict()}, "epoch": 3}
    elif wrap != "plain":
        state = {wrap: source.state_dict(), "optimizer": {}}
    torch.save(state, tmp_path / "w.pt")
    target = _Small()
    load_weights(target, tmp_path / "w.pt")
    for k, v in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[k], v, rtol=0, atol=0)


def test_pretrained_weights_that_do_not_match_are_refused(tmp_path: Path) -> None:
    from losskit.train.models import load_weights

    state = _Small().state_dict()
    state["extra.weight"] = state.pop("conv.weight")
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(
        ValueError, match=r"missing 1 \(conv.weight\); unexpected 1 \(extra.weight\)"
    ):
        load_weights(_Small(), tmp_path / "w.pt")
    wide = _Small().state_dict()
    wide["conv.bias"] = torch.zeros(5)
    torch.save(wide, tmp_path / "wide.pt")
    with pytest.raises(ValueError, match=r"conv.bias \(5,\) in the file, \(4,\) in the model"):
        load_weights(_Small(), tmp_path / "wide.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"expected `pretrained_weights` a state_dict file torch"):
        load_weights(_Small(), tmp_path / "junk.pt")


def test_pretrained_weights_with_a_backbone_that_takes_none_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"expected `pretrained_weights` none for backbone 'mlp'"):
        build_backbone("auto", (64,), weights=tmp_path / "w.pt")
