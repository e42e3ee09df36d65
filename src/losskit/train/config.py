"""The trainer's configuration: one validated object, from YAML and command-line flags.

Precedence: defaults < ``--config FILE.yaml`` < flags (``--lambda_combined 0.7`` or
``--lambda-combined 0.7``). Every problem is reported before any work starts, in the project's
one message style, e.g. ``"config: expected `lambda_combined` in [0, 1], got 1.5"`` or
``"config: unknown key `lamda_combined` (did you mean `lambda_combined`?)"``.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from losskit._files import atomic_write
from losskit._plain_checks import check_number, did_you_mean

__all__ = [
    "BACKBONES",
    "LOSS_TYPES",
    "PROXY_TYPES",
    "ConfigError",
    "TrainConfig",
    "example_configs",
    "load_config",
    "resolve_config",
    "save_config",
]

LOSS_TYPES: tuple[str, ...] = ("CE", "proxy", "combined", "focal")
PROXY_TYPES: tuple[str, ...] = (
    "ProxyAnchorLoss",
    "FocalStyleProxyAnchorLoss",
    "MultiProxyAnchorLoss",
    "ArcFaceLoss",
    "CosFaceLoss",
    "SubCenterArcFaceLoss",
    "ProxyNCALoss",
)
BACKBONES: tuple[str, ...] = ("auto", "mlp", "cnn1d", "cnn2d", "resnet18", "resnet50")
_FN = "config"
_EXAMPLES = Path(__file__).resolve().parents[1] / "configs"  # shipped inside the package
# What pydantic's annotation names mean, for messages.
_KIND = {
    "int": "an integer",
    "float": "a real number",
    "str": "a string",
    "int | None": "an integer or none",
    "float | None": "a real number or none",
    "str | None": "a string or none",
}
# Pydantic error types, in the project's words.
_EXPECTED = {
    "int_parsing": "to be an integer",
    "int_from_float": "to be an integer",
    "int_type": "to be an integer",
    "float_parsing": "to be a real number",
    "float_type": "to be a real number",
    "finite_number": "to be a finite number",
    "bool_parsing": "to be true or false",
    "bool_type": "to be true or false",
    "string_type": "to be a string",
}


class ConfigError(ValueError):
    """A configuration problem, found before any work starts."""


def _choice(arg: str, value: object, choices: tuple[str, ...]) -> str:
    """Case-insensitive choice (``ce`` -> ``CE``); the error names the closest valid one."""
    if isinstance(value, str):
        for c in choices:
            if c.lower() == value.lower():
                return c
    listed = ", ".join(repr(c) for c in choices)
    suggestion = did_you_mean(value, choices)
    raise ValueError(f"{_FN}: expected `{arg}` one of {listed}, got {value!r}{suggestion}")


class TrainConfig(BaseModel):
    """Every key of ``losskit train`` (YAML and CLI), with its default.

    The defaults train the scikit-learn ``digits`` data set with the combined objective in well
    under a minute on two CPU cores. They come from ``benchmarks/trainer_quality.py`` (3 seeds,
    CE / proxy / combined, both protocols): test accuracy sits at 0.98-0.99 for every setting
    tried (lr 2e-3 or 5e-3, dropout 0.1 or 0.3, weight decay 1e-4 or 1e-2, embedding 64-256,
    15-50 epochs, proxy LR multiplier 1-100), so the choice follows retrieval Recall@1 on unseen
    classes, which rises with the embedding size (0.85 at 64, 0.90 at 128) and falls with long
    training (0.86 at 20 epochs, 0.83 at 50). The proxy LR multiplier keeps the Proxy-Anchor
    recipe's 100: 1, 10 and 100 measure the same here.
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_attribute_docstrings=True
    )

    # -- objective (DESIGN §4) ------------------------------------------------------------------
    loss_type: Literal["CE", "proxy", "combined", "focal"] = "combined"
    """CE | proxy | combined (λ·CE + (1−λ)·Proxy) | focal"""
    proxy_type: Literal[
        "ProxyAnchorLoss",
        "FocalStyleProxyAnchorLoss",
        "MultiProxyAnchorLoss",
        "ArcFaceLoss",
        "CosFaceLoss",
        "SubCenterArcFaceLoss",
        "ProxyNCALoss",
    ] = "ProxyAnchorLoss"
    """ProxyAnchorLoss | FocalStyleProxyAnchorLoss | MultiProxyAnchorLoss | ArcFaceLoss |
    CosFaceLoss | SubCenterArcFaceLoss | ProxyNCALoss (the last four with their default scale,
    margin and temperature)"""
    proxy_alpha: float = 32.0
    """Proxy-Anchor scale α > 0"""
    proxy_delta: float = 0.1
    """Proxy-Anchor margin δ ≥ 0"""
    proxy_pos_gamma: float = 2.0
    """focal-style weight exponent of the positive terms"""
    proxy_neg_gamma: float = 2.0
    """focal-style weight exponent of the negative terms"""
    proxies_per_class: int = 3
    """proxies per class of MultiProxyAnchorLoss (sub-centers of SubCenterArcFaceLoss)"""
    lambda_combined: float = 0.5
    """λ in [0, 1]: the CE weight of the combined loss"""
    focal_gamma: float = 2.0
    """γ of the focal loss (loss_type focal)"""
    class_weighted: bool = False
    """weight CE / focal by n / (C·n_c) of the training labels"""
    # -- data -------------------------------------------------------------------------------------
    dataset: str = "digits"
    """digits | npy | idx | imagefolder | cub200 | cars196 | sop | inshop"""
    data_dir: str | None = None
    """the folder holding the data set's files"""
    protocol: Literal["classification", "retrieval"] | None = None
    """classification | retrieval (default: retrieval for the four metric-learning sets)"""
    image_size: int = 224
    """side of the square inputs of image-file data sets"""
    test_fraction: float = 0.2
    """held-out fraction per class of one-split data sets"""
    val_fraction: float = 0.1
    """validation part of the training split (per class; a share of the classes for retrieval);
    0: none"""
    augment: bool = False
    """training augmentation: images random resized crop + flip, signals shift + scaling"""
    sampler: Literal["random", "balanced", "m_per_class"] = "random"
    """random | balanced (class-balanced) | m_per_class"""
    m_per_class: int = 4
    """samples per class in a batch with sampler m_per_class"""
    num_workers: int = 0
    """DataLoader worker processes"""
    # -- model ------------------------------------------------------------------------------------
    backbone: Literal["auto", "mlp", "cnn1d", "cnn2d", "resnet18", "resnet50"] = "auto"
    """auto (by sample rank) | mlp | cnn1d | cnn2d | resnet18 | resnet50"""
    pretrained_weights: str | None = None
    """a local state_dict file for the ResNet backbones"""
    embedding_dim: int = 128
    """size D of the features the proxies live with"""
    hidden_dim: int = 256
    """width of the MLP backbone"""
    dropout: float = 0.1
    """dropout of the MLP backbone"""
    pool_grid: int = 4
    """cnn2d: average-pool the last feature map to pool_grid × pool_grid, flattened (1: global)"""
    classifier: Literal["linear", "cosine"] = "linear"
    """linear | cosine: the classifier head (cosine: normalised softmax, scale·cos(x, w_c))"""
    cosine_scale: float = 16.0
    """scale σ > 0 of the cosine classifier's logits"""
    # -- optimisation ---------------------------------------------------------------------------
    epochs: int = 20
    """training epochs"""
    batch_size: int = 64
    """training batch size"""
    optimizer: Literal["adamw", "sgd"] = "adamw"
    """adamw | sgd (momentum, Nesterov)"""
    lr: float = 2e-3
    """learning rate of the network"""
    momentum: float = 0.9
    """momentum of sgd"""
    weight_decay: float = 1e-4
    """weight decay of the network's weight matrices"""
    proxy_lr_multiplier: float = 100.0
    """the proxies' learning rate is lr × this"""
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    """cosine (per step, to zero) | constant"""
    warmup_epochs: int = 0
    """first epochs with a linear learning-rate warm-up"""
    freeze_epochs: int = 0
    """first epochs with the backbone frozen (heads and proxies train)"""
    grad_accum_steps: int = 1
    """batches whose gradients add up to one optimiser step"""
    grad_clip: float | None = 5.0
    """clip the gradient norm to this (none: no clipping)"""
    amp: bool = False
    """mixed precision: bf16 autocast (CPU, and CUDA where supported), else fp16 with scaling"""
    # -- run --------------------------------------------------------------------------------------
    seed: int = 0
    """seed of the split, initialisation, shuffling and dropout"""
    device: str = "auto"
    """auto | cpu | cuda | cuda:<index>"""
    cpu_threads: int | None = None
    """torch threads on the CPU (default: 1 for models under 1M parameters)"""
    shard_proxies: bool = False
    """under torchrun, each process holds only its block of classes' proxies (not with
    MultiProxyAnchorLoss)"""
    output_dir: str | None = None
    """the run folder (default: runs/<timestamp>-<loss_type>)"""
    eval_every: int = 1
    """evaluate every this many epochs (and always after the last)"""
    log_every: int = 10
    """read the losses from the device every this many steps (and at each epoch's end)"""
    patience: int | None = None
    """stop after this many evaluations without a better validation score (none: never)"""
    quiet: bool = False
    """no progress bars or per-epoch lines"""

    # -- validation -------------------------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key not in cls.model_fields:
                    suggestion = did_you_mean(str(key), cls.model_fields, form="`{}`")
                    raise ValueError(f"{_FN}: unknown key `{key}`{suggestion}")
        return data

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        """``epochs: true`` is a mistake, not 1 epoch: only flags take true / false; and
        ``quiet: 1`` is not true."""
        if isinstance(data, Mapping):
            for key, value in data.items():
                field = cls.model_fields.get(key)
                if field is not None and field.annotation is bool and type(value) in (int, float):
                    raise ValueError(f"{_FN}: expected `{key}` to be true or false, got {value!r}")
                if isinstance(value, bool) and field is not None and field.annotation is not bool:
                    ann = field.annotation
                    name = ann.__name__ if isinstance(ann, type) else str(ann)
                    want = _KIND.get(name, "a value")
                    raise ValueError(f"{_FN}: expected `{key}` to be {want}, got {value} (a bool)")
        return data

    @field_validator("output_dir")
    @classmethod
    def _output_dir(cls, v: str | None) -> str | None:
        if v is not None and Path(v).exists() and not Path(v).is_dir():
            raise ValueError(
                f"{_FN}: expected `output_dir` to be a folder (new or holding a run), got {v} "
                "(a file)"
            )
        return v

    @field_validator("loss_type", mode="before")
    @classmethod
    def _loss_type(cls, v: object) -> str:
        return _choice("loss_type", v, LOSS_TYPES)

    @field_validator("proxy_type", mode="before")
    @classmethod
    def _proxy_type(cls, v: object) -> str:
        return _choice("proxy_type", v, PROXY_TYPES)

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset(cls, v: object) -> str:
        from losskit.train.data import DATASETS

        return _choice("dataset", v, tuple(DATASETS))

    @field_validator("backbone", mode="before")
    @classmethod
    def _backbone(cls, v: object) -> str:
        return _choice("backbone", v, BACKBONES)

    @field_validator("sampler", mode="before")
    @classmethod
    def _sampler(cls, v: object) -> str:
        return _choice("sampler", v, ("random", "balanced", "m_per_class"))

    @field_validator("classifier", mode="before")
    @classmethod
    def _classifier(cls, v: object) -> str:
        return _choice("classifier", v, ("linear", "cosine"))

    @field_validator("optimizer", mode="before")
    @classmethod
    def _optimizer(cls, v: object) -> str:
        return _choice("optimizer", v, ("adamw", "sgd"))

    @field_validator("lr_schedule", mode="before")
    @classmethod
    def _schedule(cls, v: object) -> str:
        return _choice("lr_schedule", v, ("cosine", "constant"))

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol(cls, v: object) -> str | None:
        return None if v is None else _choice("protocol", v, ("classification", "retrieval"))

    @field_validator("lambda_combined", "test_fraction", "val_fraction", "dropout", "momentum")
    @classmethod
    def _unit_interval(cls, v: float, info: Any) -> float:
        high_open = info.field_name in ("test_fraction", "val_fraction", "dropout", "momentum")
        low_open = info.field_name == "test_fraction"
        return check_number(
            _FN, info.field_name, v, low=0, high=1, low_open=low_open, high_open=high_open
        )

    @field_validator("proxy_alpha", "lr", "proxy_lr_multiplier", "cosine_scale")
    @classmethod
    def _positive(cls, v: float, info: Any) -> float:
        return check_number(_FN, info.field_name, v, low=0, low_open=True)

    @field_validator(
        "proxy_delta", "proxy_pos_gamma", "proxy_neg_gamma", "focal_gamma", "weight_decay"
    )
    @classmethod
    def _non_negative(cls, v: float, info: Any) -> float:
        return check_number(_FN, info.field_name, v, low=0)

    @field_validator("grad_clip")
    @classmethod
    def _clip(cls, v: float | None) -> float | None:
        return None if v is None else check_number(_FN, "grad_clip", v, low=0, low_open=True)

    @field_validator(
        "epochs",
        "batch_size",
        "embedding_dim",
        "hidden_dim",
        "proxies_per_class",
        "eval_every",
        "log_every",
        "image_size",
        "grad_accum_steps",
        "pool_grid",
    )
    @classmethod
    def _at_least_one(cls, v: int, info: Any) -> int:
        if v < 1:
            raise ValueError(f"{_FN}: expected `{info.field_name}` to be an integer >= 1, got {v}")
        return v

    @field_validator("m_per_class")
    @classmethod
    def _m(cls, v: int) -> int:
        if v < 2:
            raise ValueError(f"{_FN}: expected `m_per_class` to be an integer >= 2, got {v}")
        return v

    @field_validator("cpu_threads", "patience")
    @classmethod
    def _optional_at_least_one(cls, v: int | None, info: Any) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"{_FN}: expected `{info.field_name}` to be an integer >= 1, got {v}")
        return v

    @field_validator("warmup_epochs", "freeze_epochs", "num_workers")
    @classmethod
    def _non_negative_int(cls, v: int, info: Any) -> int:
        if v < 0:
            raise ValueError(f"{_FN}: expected `{info.field_name}` to be an integer >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.freeze_epochs >= self.epochs and self.freeze_epochs > 0:
            raise ValueError(
                f"{_FN}: expected `freeze_epochs` < epochs ({self.epochs}), "
                f"got {self.freeze_epochs}"
            )
        if self.warmup_epochs > self.epochs:
            raise ValueError(
                f"{_FN}: expected `warmup_epochs` <= epochs ({self.epochs}), "
                f"got {self.warmup_epochs}"
            )
        if self.patience is not None and self.val_fraction == 0:
            raise ValueError(
                f"{_FN}: expected `patience` none with val_fraction 0 (early stopping needs "
                f"a validation split), got {self.patience}"
            )
        if self.shard_proxies and not (
            self.uses_proxies and self.proxy_type != "MultiProxyAnchorLoss"
        ):
            has = f"proxy_type {self.proxy_type}" if self.uses_proxies else "no proxies"
            raise ValueError(
                f"{_FN}: expected `shard_proxies` false with loss_type {self.loss_type} and "
                f"{has} (sharding needs a proxy loss other than MultiProxyAnchorLoss), got true"
            )
        if self.sampler == "m_per_class" and self.batch_size % self.m_per_class:
            raise ValueError(
                f"{_FN}: expected `batch_size` divisible by m_per_class ({self.m_per_class}) "
                f"with sampler 'm_per_class', got {self.batch_size}"
            )
        return self

    # -- derived ----------------------------------------------------------------------------------
    @property
    def uses_proxies(self) -> bool:
        """Whether the objective has a proxy loss (``proxy`` or ``combined``)."""
        return self.loss_type in ("proxy", "combined")

    @property
    def uses_logits(self) -> bool:
        """Whether the objective trains the classifier head (``CE``, ``focal``, ``combined``)."""
        return self.loss_type != "proxy"

    def with_output_dir(self, now: _dt.datetime | None = None) -> TrainConfig:
        """A copy whose ``output_dir`` is set: ``runs/<timestamp>-<loss_type>`` by default."""
        if self.output_dir is not None:
            return self
        stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
        return self.model_copy(
            update={"output_dir": str(Path("runs") / f"{stamp}-{self.loss_type}")}
        )


def _format_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, ValueError | TypeError):
            lines.append(str(cause))
        else:
            where = ".".join(str(p) for p in e["loc"]) or "config"
            expected = _EXPECTED.get(e["type"], e["msg"].lower())
            lines.append(f"{_FN}: expected `{where}` {expected}, got {e['input']!r}")
    return "; ".join(dict.fromkeys(lines))


def example_configs() -> dict[str, Path]:
    """The example configs shipped with losskit (the loss guide's five): name -> file."""
    return {p.stem: p for p in sorted(_EXAMPLES.glob("*.yaml"))}


def resolve_config(path: str | os.PathLike[str]) -> Path:
    """``path`` itself when it is a file, else the shipped example of that bare name.

    ``combined_07`` and ``combined_07.yaml`` both name ``losskit/configs/combined_07.yaml``
    (``losskit train --list-configs`` lists them); a file of that name in the current folder
    wins.

    Raises:
        FileNotFoundError: neither a file nor an example, with the closest example's name.
    """
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        raise ConfigError(f"{_FN}: expected `{p}` to be a YAML file, got a folder")
    examples = example_configs()
    name = p.name.removesuffix(".yaml")
    if p.parent == Path(".") and name in examples:
        return examples[name]
    raise FileNotFoundError(
        f"{_FN}: no config file at {p} and no example config of that name"
        f"{did_you_mean(name, examples)} (examples: {', '.join(examples)})"
    )


def _read_yaml(path: Path) -> Any:
    """The YAML document in ``path`` (``yaml.safe_load``: plain data, never a python tag)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{_FN}: expected `{path}` to be UTF-8 text, got byte 0x{err.object[err.start]:02x} "
            f"at offset {err.start}"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if isinstance(err, yaml.constructor.ConstructorError):
            raise ConfigError(
                f"{_FN}: expected `{path}` to hold plain YAML values (tags such as !!python are "
                f"never run), got {problem}{where}"
            ) from None
        raise ConfigError(
            f"{_FN}: expected `{path}` to be valid YAML, got {problem}{where}"
        ) from None


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """Build the config: defaults, then the YAML file at ``path``, then ``overrides``.

    ``path`` is a file or the bare name of a shipped example (:func:`resolve_config`).

    Raises:
        ConfigError: an unknown key (with the closest valid one), a value out of range, an unknown
            ``loss_type`` / ``proxy_type``, or a YAML file that is not a mapping.
        FileNotFoundError: ``path`` is neither a file nor an example's name.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = resolve_config(path)
        loaded = _read_yaml(p)
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(
                f"{_FN}: expected `{p}` to hold a mapping of keys, got {type(loaded).__name__}"
            )
        for key in loaded or {}:
            if not isinstance(key, str):
                raise ConfigError(
                    f"{_FN}: expected the keys of `{p}` to be names, got {key!r} "
                    f"({type(key).__name__})"
                )
        data.update(loaded or {})
    data.update(overrides or {})
    try:
        return TrainConfig(**data)
    except ValidationError as err:
        raise ConfigError(_format_error(err)) from None


def save_config(config: TrainConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML, atomically."""
    text = yaml.safe_dump(config.model_dump(), sort_keys=False)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
