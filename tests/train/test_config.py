"""The trainer's config: YAML + flags, validation messages, the banner."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest
import yaml

from losskit.cli import build_parser
from losskit.train.config import ConfigError, TrainConfig, load_config, save_config
from losskit.train.objective import build_proxy_loss
from losskit.train.tracking import banner

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "losskit" / "configs"


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _cli_config(argv: list[str]) -> TrainConfig:
    from losskit.train.cli import _overrides

    args = _parse(["train", *argv])
    return load_config(args.config, _overrides(args))


def test_defaults_are_the_guide_defaults() -> None:
    c = TrainConfig()
    assert (c.loss_type, c.proxy_type, c.dataset) == ("combined", "ProxyAnchorLoss", "digits")
    assert (c.proxy_alpha, c.proxy_delta, c.lambda_combined) == (32.0, 0.1, 0.5)
    assert (c.proxy_pos_gamma, c.proxy_neg_gamma, c.device) == (2.0, 2.0, "auto")
    assert c.proxy_lr_multiplier == 100.0


@pytest.mark.parametrize("flag", ["--lambda_combined", "--lambda-combined"])
def test_flags_with_underscores_or_dashes(flag: str) -> None:
    assert _cli_config([flag, "0.7"]).lambda_combined == 0.7


def test_flags_override_yaml_which_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("loss_type: proxy\nproxy_alpha: 16\nepochs: 3\n")
    c = _cli_config(["--config", str(path), "--epochs", "5", "--no-amp", "--quiet"])
    assert (c.loss_type, c.proxy_alpha, c.epochs, c.amp, c.quiet) == ("proxy", 16.0, 5, False, True)
    assert _cli_config(["--grad-clip", "none"]).grad_clip is None


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    c = load_config(overrides={"loss_type": "focal", "epochs": 2}).with_output_dir()
    save_config(c, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == c
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["loss_type"] == "focal"


def test_default_output_dir_is_timestamped() -> None:
    c = TrainConfig(loss_type="proxy").with_output_dir(dt.datetime(2026, 11, 23, 9, 5, 7))
    assert Path(c.output_dir or "") == Path("runs/20261123-090507-proxy")


def test_choices_are_case_insensitive() -> None:
    assert TrainConfig(loss_type="ce").loss_type == "CE"
    assert TrainConfig(proxy_type="proxyanchorloss").proxy_type == "ProxyAnchorLoss"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lamda_combined": 0.5}, r"unknown key `lamda_combined` \(did you mean `lambda_combined`"),
        ({"lambda_combined": 1.5}, r"expected `lambda_combined` in \[0, 1\], got 1.5"),
        ({"lambda_combined": -0.1}, r"expected `lambda_combined` in \[0, 1\], got -0.1"),
        ({"proxy_alpha": 0}, r"expected `proxy_alpha` in \(0, inf\), got 0"),
        ({"proxy_alpha": -3.0}, r"expected `proxy_alpha` in \(0, inf\), got -3.0"),
        (
            {"loss_type": "combine"},
            r"`loss_type` one of .* got 'combine' \(did you mean 'combined'",
        ),
        (
            {"proxy_type": "ProxyAnchor"},
            r"`proxy_type` one of .*got 'ProxyAnchor' \(did you mean 'ProxyAnchorLoss'",
        ),
        ({"backbone": "resnet34"}, r"`backbone` one of .*got 'resnet34'"),
        ({"dataset": "digit"}, r"`dataset` one of .*got 'digit' \(did you mean 'digits'"),
        ({"epochs": 0}, r"expected `epochs` to be an integer >= 1, got 0"),
        ({"epochs": "many"}, r"`epochs` to be an integer"),
        ({"lr": 0.0}, r"expected `lr` in \(0, inf\), got 0.0"),
        ({"classifier": "cosin"}, r"`classifier` one of .*got 'cosin' \(did you mean 'cosine'"),
        ({"cosine_scale": 0}, r"expected `cosine_scale` in \(0, inf\), got 0"),
        ({"freeze_epochs": 3, "epochs": 3}, r"expected `freeze_epochs` < epochs \(3\), got 3"),
        ({"warmup_epochs": 4, "epochs": 3}, r"expected `warmup_epochs` <= epochs \(3\), got 4"),
        ({"optimizer": "adam"}, r"`optimizer` one of 'adamw', 'sgd', got 'adam'"),
        ({"val_fraction": 1.0}, r"expected `val_fraction` in \[0, 1\), got 1.0"),
        ({"grad_accum_steps": 0}, r"expected `grad_accum_steps` to be an integer >= 1"),
        ({"patience": 2, "val_fraction": 0}, r"expected `patience` none with val_fraction 0"),
        (
            {"sampler": "m_per_class", "batch_size": 30, "m_per_class": 4},
            r"expected `batch_size` divisible by m_per_class \(4\)",
        ),
    ],
)
def test_config_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^config: .*" + message):
        load_config(overrides=overrides)


def test_yaml_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("lambda_combined: 0.5\nproxy_alpah: 32\n")
    with pytest.raises(
        ConfigError, match=r"unknown key `proxy_alpah` \(did you mean `proxy_alpha`"
    ):
        load_config(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"to hold a mapping of keys, got list"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match=r"config: no config file at"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("flag", "hint"),
    [
        ("--lamda-combined", "--lambda-combined"),
        ("--lamda", "--lambda_combined"),
        ("--proxy_alpah", "--proxy_alpha"),
        ("--epoch", "--epochs"),
    ],
)
def test_unknown_flag_names_the_closest(
    capsys: pytest.CaptureFixture[str], flag: str, hint: str
) -> None:
    with pytest.raises(SystemExit):
        _parse(["train", flag, "0.7"])
    assert f"unknown flag {flag} (did you mean {hint}?)" in capsys.readouterr().err


BANNER_COMBINED = """TRAINING CONFIGURATION
======================================================================
Loss Type: combined
Proxy Type: ProxyAnchorLoss
Proxy α (alpha): 32.0
Proxy δ (delta): 0.1
λ (lambda): 0.50
  → CE weight: 0.50
  → Proxy weight: 0.50"""


def test_banner_is_the_guides() -> None:
    assert banner(TrainConfig()) == BANNER_COMBINED


def test_banner_for_each_loss_type() -> None:
    ce = banner(TrainConfig(loss_type="CE"))
    assert ce == "TRAINING CONFIGURATION\n" + "=" * 70 + "\nLoss Type: CE"
    proxy = banner(TrainConfig(loss_type="proxy", proxy_alpha=16, proxy_delta=0.2))
    assert proxy.splitlines()[2:] == [
        "Loss Type: proxy",
        "Proxy Type: ProxyAnchorLoss",
        "Proxy α (alpha): 16.0",
        "Proxy δ (delta): 0.2",
    ]
    c7 = banner(TrainConfig(lambda_combined=0.7))
    assert c7.splitlines()[-3:] == [
        "λ (lambda): 0.70",
        "  → CE weight: 0.70",
        "  → Proxy weight: 0.30",
    ]
    focal_proxy = banner(TrainConfig(proxy_type="FocalStyleProxyAnchorLoss"))
    assert focal_proxy.startswith(
        BANNER_COMBINED.replace("ProxyAnchorLoss", "FocalStyleProxyAnchorLoss")
    )
    assert focal_proxy.endswith("Proxy γ (pos/neg gamma): 2.0 / 2.0")


@pytest.mark.parametrize(
    ("proxy_type", "names"),
    [
        ("ArcFaceLoss", {"scale": "s", "margin": "m"}),
        ("CosFaceLoss", {"scale": "s", "margin": "m"}),
        ("SubCenterArcFaceLoss", {"scale": "s", "margin": "m"}),
        ("ProxyNCALoss", {"temperature": "T"}),
    ],
)
def test_banner_shows_the_parameters_the_proxy_loss_runs_with(proxy_type, names) -> None:
    config = TrainConfig(loss_type="proxy", proxy_type=proxy_type, proxies_per_class=4)
    loss = build_proxy_loss(config, 10, 8)  # the module the trainer trains with
    expected = [
        f"Proxy {sym} ({name}): {round(getattr(loss, name), 4)}" for name, sym in names.items()
    ]
    if proxy_type == "SubCenterArcFaceLoss":
        expected.append(f"Sub-centers per class: {loss.proxies_per_class}")
    lines = banner(config).splitlines()
    assert lines[3:] == [f"Proxy Type: {proxy_type}", *expected]
    assert not any("alpha" in line or "delta" in line for line in lines)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ce.yaml", {"loss_type": "CE"}),
        ("proxy_anchor.yaml", {"loss_type": "proxy", "proxy_type": "ProxyAnchorLoss"}),
        ("combined_05.yaml", {"loss_type": "combined", "lambda_combined": 0.5}),
        ("combined_07.yaml", {"loss_type": "combined", "lambda_combined": 0.7}),
        (
            "focal_proxy_combined.yaml",
            {
                "loss_type": "combined",
                "proxy_type": "FocalStyleProxyAnchorLoss",
                "lambda_combined": 0.5,
            },
        ),
    ],
)
def test_example_configs_load(name: str, expected: dict[str, object]) -> None:
    c = load_config(CONFIGS / name)
    assert {k: getattr(c, k) for k in expected} == expected
    assert (c.proxy_alpha, c.proxy_delta) == (32.0, 0.1)
