"""Bad input, table-driven: every case raises the right type (library) or exits with the right
code and one line (CLI), and the message names the argument, key, flag or file."""

from __future__ import annotations

import math
import pickle
import re

import numpy as np
import pytest
import torch

import losskit
import losskit.functional as LF
from losskit.cli import main
from losskit.train.config import TrainConfig, load_config, save_config

t = torch.tensor


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


def _labels(*values: int) -> torch.Tensor:
    return t(values)


# (id, call, exception type, regex that names the argument)
LIBRARY = [
    ("mse shape", lambda: LF.mse(_x(3), _x(4)), ValueError, "`target`"),
    ("mse int", lambda: LF.mse(t([1, 2]), t([1, 2])), TypeError, "`input`"),
    ("mse list", lambda: LF.mse([1.0], _x(1)), TypeError, "`input`"),
    ("mse reduction", lambda: LF.mse(_x(2), _x(2), reduction="avg"), ValueError, "`reduction`"),
    ("huber delta 0", lambda: LF.huber(_x(2), _x(2), delta=0.0), ValueError, "`delta`"),
    ("huber delta inf", lambda: LF.huber(_x(2), _x(2), delta=math.inf), ValueError, "finite"),
    ("huber delta bool", lambda: LF.huber(_x(2), _x(2), delta=True), TypeError, "`delta`"),
    ("smooth_l1 beta", lambda: LF.smooth_l1(_x(2), _x(2), beta=-1.0), ValueError, "`beta`"),
    ("asym over", lambda: LF.asymmetric_mse(_x(2), _x(2), over_penalty=0), ValueError, "over_"),
    ("log_cosh shape", lambda: LF.log_cosh(_x(2), _x(3)), ValueError, "`target`"),
    ("mae str", lambda: LF.mae("a", _x(2)), TypeError, "`input`"),
    ("bce targets 2", lambda: LF.binary_cross_entropy(_x(2), t([2.0, 0])), ValueError, "targets"),
    ("bce targets nan", lambda: LF.binary_cross_entropy(_x(1), t([math.nan])), ValueError, "tar"),
    (
        "bce pos_weight neg",
        lambda: LF.binary_cross_entropy(_x(2, 2), _x(2, 2).sigmoid(), pos_weight=t([-1.0, 1])),
        ValueError,
        "`pos_weight`",
    ),
    (
        "bce pos_weight shape",
        lambda: LF.binary_cross_entropy(_x(2, 2), _x(2, 2).sigmoid(), pos_weight=t([1.0, 1, 1])),
        ValueError,
        "`pos_weight`",
    ),
    ("bce int logits", lambda: LF.binary_cross_entropy(t([1]), t([1.0])), TypeError, "logits"),
    ("ce label 3", lambda: LF.cross_entropy(_x(2, 3), _labels(0, 3)), ValueError, "`targets`"),
    ("ce label -2", lambda: LF.cross_entropy(_x(2, 3), _labels(0, -2)), ValueError, "targets"),
    (
        "ce weight shape",
        lambda: LF.cross_entropy(_x(2, 3), _labels(0, 1), weight=t([1.0])),
        ValueError,
        "`weight`",
    ),
    (
        "ce weight neg",
        lambda: LF.cross_entropy(_x(2, 3), _labels(0, 1), weight=t([1.0, -1, 1])),
        ValueError,
        "`weight`",
    ),
    (
        "ce smoothing 1",
        lambda: LF.cross_entropy(_x(2, 3), _labels(0, 1), label_smoothing=1.5),
        ValueError,
        "label_smoothing",
    ),
    ("ce float labels", lambda: LF.cross_entropy(_x(2, 3), t([0.5, 1.0])), TypeError, "targets"),
    ("ce probs neg", lambda: LF.cross_entropy(_x(1, 2), t([[2.0, -1.0]])), ValueError, "targets"),
    ("ce 1-D logits", lambda: LF.cross_entropy(_x(3), _labels(0)), ValueError, "`logits`"),
    (
        "ls eps 2",
        lambda: LF.label_smoothing_cross_entropy(_x(2, 3), _labels(0, 1), epsilon=2),
        ValueError,
        "`epsilon`",
    ),
    (
        "ls convention",
        lambda: LF.label_smoothing_cross_entropy(_x(2, 3), _labels(0, 1), convention="other"),
        ValueError,
        "`convention`",
    ),
    ("focal gamma", lambda: LF.focal(_x(2, 3), _labels(0, 1), gamma=-1.0), ValueError, "gamma"),
    (
        "focal alpha shape",
        lambda: LF.focal(_x(2, 3), _labels(0, 1), alpha=t([1.0, 1])),
        ValueError,
        "`alpha`",
    ),
    (
        "focal alpha neg",
        lambda: LF.focal(_x(2, 3), _labels(0, 1), alpha=-0.5),
        ValueError,
        "`alpha`",
    ),
    ("binary_focal targets", lambda: LF.binary_focal(_x(2), t([2.0, 0])), ValueError, "targets"),
    (
        "binary_focal alpha",
        lambda: LF.binary_focal(_x(2), t([1.0, 0]), alpha=1.5),
        ValueError,
        "`alpha`",
    ),
    ("class_weights label", lambda: LF.class_weights(_labels(-1, 0), 2), ValueError, "`labels`"),
    ("class_weights float", lambda: LF.class_weights(t([0.0]), 2), TypeError, "`labels`"),
    (
        "contrastive similar 2",
        lambda: LF.contrastive(_x(2, 3), _x(2, 3), _labels(2, 0)),
        ValueError,
        "`similar`",
    ),
    (
        "contrastive similar -1",
        lambda: LF.contrastive(_x(2, 3), _x(2, 3), _labels(-1, 0)),
        ValueError,
        "`similar`",
    ),
    (
        "contrastive shape",
        lambda: LF.contrastive(_x(2, 3), _x(2, 4), _labels(1, 0)),
        ValueError,
        "`x2`",
    ),
    (
        "contrastive similar len",
        lambda: LF.contrastive(_x(2, 3), _x(2, 3), _labels(1)),
        ValueError,
        "`similar`",
    ),
    (
        "contrastive margin",
        lambda: LF.contrastive(_x(2, 3), _x(2, 3), _labels(1, 0), margin=-1),
        ValueError,
        "`margin`",
    ),
    ("triplet p", lambda: LF.triplet(_x(2, 3), _x(2, 3), _x(2, 3), p=0), ValueError, "`p`"),
    (
        "triplet squared int",
        lambda: LF.triplet(_x(2, 3), _x(2, 3), _x(2, 3), squared=1),
        TypeError,
        "`squared`",
    ),
    (
        "triplet negative shape",
        lambda: LF.triplet(_x(2, 3), _x(2, 3), _x(3, 3)),
        ValueError,
        "`negative`",
    ),
    (
        "online mining",
        lambda: LF.online_triplet(_x(4, 3), _labels(0, 0, 1, 1), mining="hard"),
        ValueError,
        "`mining`",
    ),
    (
        "online labels len",
        lambda: LF.online_triplet(_x(4, 3), _labels(0, 0, 1)),
        ValueError,
        "`labels`",
    ),
    (
        "online labels float",
        lambda: LF.online_triplet(_x(2, 3), t([0.0, 1.0])),
        TypeError,
        "`labels`",
    ),
    (
        "online normalize",
        lambda: LF.online_triplet(_x(2, 3), _labels(0, 1), normalize="yes"),
        TypeError,
        "`normalize`",
    ),
    (
        "info_nce temperature",
        lambda: LF.info_nce(_x(2, 3), _x(2, 3), temperature=0),
        ValueError,
        "`temperature`",
    ),
    ("info_nce key shape", lambda: LF.info_nce(_x(2, 3), _x(3, 3)), ValueError, "positive_key"),
    ("nt_xent shape", lambda: LF.nt_xent(_x(2, 3), _x(2, 4)), ValueError, "`z_j`"),
    (
        "nt_xent temperature",
        lambda: LF.nt_xent(_x(2, 3), _x(2, 3), temperature=-1.0),
        ValueError,
        "`temperature`",
    ),
    (
        "proxy_anchor proxies dim",
        lambda: LF.proxy_anchor(_x(2, 3), _labels(0, 1), _x(4, 5)),
        ValueError,
        "`proxies`",
    ),
    (
        "proxy_anchor label",
        lambda: LF.proxy_anchor(_x(2, 3), _labels(0, 9), _x(4, 3)),
        ValueError,
        "`labels`",
    ),
    (
        "proxy_anchor alpha",
        lambda: LF.proxy_anchor(_x(2, 3), _labels(0, 1), _x(4, 3), alpha=0),
        ValueError,
        "`alpha`",
    ),
    (
        "proxy_anchor alpha inf",
        lambda: LF.proxy_anchor(_x(2, 3), _labels(0, 1), _x(4, 3), alpha=math.inf),
        ValueError,
        "`alpha` to be a finite number",
    ),
    (
        "focal_proxy gamma",
        lambda: LF.focal_proxy_anchor(_x(2, 3), _labels(0, 1), _x(4, 3), pos_gamma=-1),
        ValueError,
        "`pos_gamma`",
    ),
    ("ProxyAnchorLoss classes", lambda: losskit.ProxyAnchorLoss(0, 3), ValueError, "classes"),
    ("ProxyAnchorLoss dim", lambda: losskit.ProxyAnchorLoss(3, -1), ValueError, "embedding_dim"),
    (
        "MultiProxy k",
        lambda: losskit.MultiProxyAnchorLoss(3, 4, proxies_per_class=0),
        ValueError,
        "proxies_per_class",
    ),
    (
        "dice label",
        lambda: LF.dice(_x(1, 3, 2, 2), torch.full((1, 2, 2), 5)),
        ValueError,
        "`target`",
    ),
    (
        "dice onehot 2",
        lambda: LF.dice(_x(1, 3, 2, 2), torch.full((1, 3, 2, 2), 2.0)),
        ValueError,
        "`target`",
    ),
    (
        "dice activation",
        lambda: LF.dice(_x(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), activation="relu"),
        ValueError,
        "`activation`",
    ),
    (
        "dice smooth",
        lambda: LF.dice(_x(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), smooth=-1.0),
        ValueError,
        "`smooth`",
    ),
    (
        "tversky alpha",
        lambda: LF.tversky(_x(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), alpha=-1),
        ValueError,
        "`alpha`",
    ),
    (
        "ce_dice weight",
        lambda: LF.ce_dice(_x(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), ce_weight=-1.0),
        ValueError,
        "`ce_weight`",
    ),
    ("iou shape", lambda: LF.iou(_x(2, 3), _x(2, 3)), ValueError, "`boxes1`"),
    ("giou other shape", lambda: LF.giou(_x(2, 4), _x(3, 4)), ValueError, "`boxes2`"),
    ("diou int", lambda: LF.diou("boxes", _x(1, 4)), TypeError, "`boxes1`"),
    ("ciou eps", lambda: LF.ciou(_x(1, 4), _x(1, 4), eps=-1.0), ValueError, "`eps`"),
    ("gan kind", lambda: LF.gan_discriminator(_x(2), _x(2), kind="wgn"), ValueError, "`kind`"),
    ("gan generator kind", lambda: LF.gan_generator(_x(2), kind="x"), ValueError, "`kind`"),
    ("gp critic 3", lambda: LF.gradient_penalty(3, _x(2, 3), _x(2, 3)), TypeError, "`critic`"),
    (
        "gp shape",
        lambda: LF.gradient_penalty(torch.nn.Linear(3, 1), _x(2, 3), _x(3, 3)),
        ValueError,
        "`fake`",
    ),
    (
        "gp weight",
        lambda: LF.gradient_penalty(torch.nn.Linear(3, 1), _x(2, 3), _x(2, 3), weight=-1.0),
        ValueError,
        "`weight`",
    ),
    ("r1 no grad", lambda: LF.r1_penalty(_x(2), _x(2, 3)), ValueError, "`real`"),
    (
        "vae bce x 3",
        lambda: LF.vae_elbo(_x(2, 4), torch.full((2, 4), 3.0), _x(2, 2), _x(2, 2)),
        ValueError,
        "`x`",
    ),
    (
        "vae bce x neg",
        lambda: LF.vae_elbo(_x(2, 4), -torch.ones(2, 4), _x(2, 2), _x(2, 2)),
        ValueError,
        "`x`",
    ),
    (
        "vae logvar",
        lambda: LF.vae_elbo(_x(2, 4), _x(2, 4), _x(2, 2), _x(2, 3), reconstruction="mse"),
        ValueError,
        "`logvar`",
    ),
    (
        "vae reconstruction",
        lambda: LF.vae_elbo(_x(2, 4), _x(2, 4), _x(2, 2), _x(2, 2), reconstruction="l1"),
        ValueError,
        "`reconstruction`",
    ),
    (
        "vae beta",
        lambda: LF.vae_elbo(_x(2, 4), _x(2, 4).sigmoid(), _x(2, 2), _x(2, 2), beta=-1),
        ValueError,
        "`beta`",
    ),
    (
        "next_token label",
        lambda: LF.next_token_cross_entropy(_x(1, 3, 4), torch.full((1, 3), 9)),
        ValueError,
        "tokens",
    ),
    (
        "next_token shape",
        lambda: LF.next_token_cross_entropy(_x(1, 3, 4), torch.zeros(1, 2, dtype=int)),
        ValueError,
        "tokens",
    ),
    (
        "bradley margin nan",
        lambda: LF.bradley_terry(_x(2), _x(2), margin=math.nan),
        ValueError,
        "`margin`",
    ),
    ("bradley shape", lambda: LF.bradley_terry(_x(2), _x(3)), ValueError, "rejected_rewards"),
    ("diffusion shape", lambda: LF.diffusion_noise_mse(_x(2, 3), _x(2, 2)), ValueError, "`noise`"),
    ("list_losses family", lambda: losskit.list_losses("regresion"), ValueError, "regression"),
    ("build_loss name", lambda: losskit.build_loss("focall"), ValueError, "'focal'"),
    ("build_loss keyword", lambda: losskit.build_loss("focal", gama=1.0), TypeError, "'gamma'"),
    ("build_loss mse delta", lambda: losskit.build_loss("mse", delta=1.0), TypeError, "'delta'"),
    ("UncertaintyWeighting", lambda: losskit.UncertaintyWeighting(0), ValueError, "num_tasks"),
    ("GradNorm alpha", lambda: losskit.GradNorm(2, alpha=-1.0), ValueError, "`alpha`"),
    (
        "task_gradient_norms empty",
        lambda: LF.task_gradient_norms([], [torch.nn.Parameter(torch.ones(2))]),
        ValueError,
        "`task_losses` at least one",
    ),
    (
        "diffusion weight neg",
        lambda: LF.diffusion_noise_mse(_x(2, 3), _x(2, 3), weight=t([1.0, -1.0])),
        ValueError,
        "`weight` with values in \\[0, inf\\), got a value -1",
    ),
    (
        "kto kl shape",
        lambda: LF.kto(_x(2), _x(2), _x(2), _x(2), kl_log_ratios=_x(2, 2)),
        ValueError,
        "`kl_log_ratios` to be 1-D",
    ),
    (
        "batch_hard non-square",
        lambda: LF.batch_hard_triplets(_x(3, 4), _labels(0, 1, 0)),
        ValueError,
        "`distances` of shape \\(3, 3\\).*got \\(3, 4\\)",
    ),
    (
        "semi_hard non-square",
        lambda: LF.semi_hard_negatives(_x(3, 4), _labels(0, 1, 0)),
        ValueError,
        "`distances` of shape \\(3, 3\\)",
    ),
    (
        "mae device",
        lambda: LF.mae(_x(2), torch.empty(2, device="meta")),
        ValueError,
        "`target` on the device of `input` \\(cpu\\), got device meta",
    ),
    (
        "proxy_anchor device",
        lambda: LF.proxy_anchor(_x(2, 3), _labels(0, 1), torch.empty(4, 3, device="meta")),
        ValueError,
        "`proxies` on the device of `embeddings`",
    ),
    (
        "dice batch str",
        lambda: LF.dice(_x(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), batch="yes"),
        TypeError,
        "`batch` to be a bool, got str",
    ),
    (
        "gp generator str",
        lambda: LF.gradient_penalty(torch.nn.Linear(3, 1), _x(2, 3), _x(2, 3), generator="seed"),
        TypeError,
        "`generator` to be a torch.Generator",
    ),
    (
        "perceptual features 3",
        lambda: LF.perceptual(_x(1, 3, 8, 8), _x(1, 3, 8, 8), 3),
        TypeError,
        "`features` to be callable",
    ),
    (
        "PerceptualLoss backbone path",
        lambda: losskit.PerceptualLoss("/no/such/vgg.pt"),
        FileNotFoundError,
        "`backbone`.*no file at /no/such/vgg.pt",
    ),
]

# Every numeric config key refuses a bool and names itself.
_NUMERIC_KEYS = [
    name
    for name, f in TrainConfig.model_fields.items()
    if f.annotation is not bool and any(k in str(f.annotation) for k in ("int", "float"))
]
CONFIG = [
    (f"{k}: true", {k: True}, f"`{k}` to be an? (integer|real number)") for k in _NUMERIC_KEYS
]
CONFIG += [
    (f"{k}: inf", {k: math.inf}, f"`{k}` to be a finite number in \\(0, inf\\)")
    for k in ("proxy_alpha", "lr", "proxy_lr_multiplier", "cosine_scale", "grad_clip")
]
CONFIG += [
    (f"{k}: nan", {k: math.nan}, f"`{k}`")
    for k in ("proxy_delta", "lambda_combined", "dropout", "weight_decay", "focal_gamma")
]
CONFIG += [
    ("epochs 0", {"epochs": 0}, "`epochs` to be an integer >= 1"),
    ("epochs 2.5", {"epochs": 2.5}, "`epochs` to be an integer"),
    ("epochs str", {"epochs": "many"}, "`epochs` to be an integer"),
    ("lr str", {"lr": "fast"}, "`lr` to be a real number"),
    ("quiet maybe", {"quiet": "maybe"}, "`quiet` to be true or false"),
    ("quiet 1", {"quiet": 1}, "`quiet` to be true or false, got 1"),
    ("augment 0.0", {"augment": 0.0}, "`augment` to be true or false, got 0.0"),
    ("data_dir int", {"data_dir": 5}, "`data_dir` to be a string"),
    ("lambda 1.5", {"lambda_combined": 1.5}, "`lambda_combined` in \\[0, 1\\]"),
    ("loss_type", {"loss_type": "ce2"}, "`loss_type` one of"),
    ("proxy_type", {"proxy_type": "Proxy"}, "`proxy_type`"),
    ("unknown key", {"lamda_combined": 0.5}, "did you mean `lambda_combined`"),
    ("backbone", {"backbone": "resnet"}, "`backbone`"),
    ("m_per_class 1", {"m_per_class": 1}, "`m_per_class`"),
    ("warmup >= epochs", {"warmup_epochs": 6, "epochs": 5}, "`warmup_epochs`"),
    (
        "shard_proxies CE",
        {"shard_proxies": True, "loss_type": "CE"},
        "expected `shard_proxies` false with loss_type CE and no proxies .*got true",
    ),
    (
        "shard_proxies multi",
        {"shard_proxies": True, "proxy_type": "MultiProxyAnchorLoss"},
        "`shard_proxies` false with loss_type combined and proxy_type MultiProxyAnchorLoss",
    ),
]


@pytest.mark.parametrize(
    ("call", "kind", "names"), [c[1:] for c in LIBRARY], ids=[c[0] for c in LIBRARY]
)
def test_library_bad_input(call, kind, names):
    with pytest.raises(kind, match=names):
        call()


@pytest.mark.parametrize(
    ("overrides", "names"), [c[1:] for c in CONFIG], ids=[c[0] for c in CONFIG]
)
def test_config_bad_input(overrides, names):
    with pytest.raises(ValueError, match=names):
        load_config(None, overrides)


def _write(path, data: bytes | str):
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _npy_folder(root, **replace):
    """A folder of the four npy files, with some replaced by raw bytes or other arrays."""
    root.mkdir()
    rng = np.random.default_rng(0)
    files = {
        "train_data.npy": rng.normal(size=(20, 4)).astype(np.float32),
        "train_labels.npy": np.arange(20) % 2,
        "test_data.npy": rng.normal(size=(10, 4)).astype(np.float32),
        "test_labels.npy": np.arange(10) % 2,
    }
    for name, array in files.items():
        value = replace.get(name.removesuffix(".npy"), array)
        if isinstance(value, bytes):
            _write(root / name, value)
        else:
            np.save(root / name, value, allow_pickle=True)
    return root


def _run_folder(root, checkpoint: bytes | None):
    (root / "checkpoints").mkdir(parents=True)
    save_config(TrainConfig(output_dir=str(root)), root / "config.yaml")
    if checkpoint is not None:
        _write(root / "checkpoints" / "best.pt", checkpoint)
    return root


def _torch_bytes(obj) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class _Foreign:  # a pickled object that weights_only refuses
    pass


def _truncated_npy() -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros((20, 4), np.float32))
    return buf.getvalue()[:100]


# (id, function of tmp_path returning argv, exit code, regex the one error line must match)
CLI = [
    (
        "yaml syntax",
        lambda p: ["train", "--config", str(_write(p / "c.yaml", "epochs: [1, 2"))],
        2,
        r"c\.yaml` to be valid YAML.*line",
    ),
    (
        "yaml python tag",
        lambda p: [
            "train",
            "--config",
            str(_write(p / "c.yaml", "epochs: !!python/object/apply:os.system ['true']")),
        ],
        2,
        r"c\.yaml` to hold plain YAML.*python",
    ),
    (
        "yaml non-utf8",
        lambda p: ["train", "--config", str(_write(p / "c.yaml", b"lr: \xff\n"))],
        2,
        r"c\.yaml` to be UTF-8 text, got byte 0xff",
    ),
    (
        "yaml integer key",
        lambda p: ["train", "--config", str(_write(p / "c.yaml", "1: 2\n"))],
        2,
        r"keys of `.*c\.yaml` to be names, got 1",
    ),
    (
        "yaml list",
        lambda p: ["train", "--config", str(_write(p / "c.yaml", "- 1\n"))],
        2,
        r"c\.yaml` to hold a mapping",
    ),
    ("yaml missing", lambda p: ["train", "--config", str(p / "none.yaml")], 2, r"none\.yaml"),
    (
        "yaml epochs true",
        lambda p: ["train", "--config", str(_write(p / "c.yaml", "epochs: true"))],
        2,
        r"`epochs` to be an integer, got True",
    ),
    (
        "yaml alpha inf",
        lambda p: ["train", "--config", str(_write(p / "c.yaml", "proxy_alpha: .inf"))],
        2,
        r"`proxy_alpha` to be a finite number in \(0, inf\)",
    ),
    ("flag unknown", lambda p: ["train", "--lamda", "1"], 2, r"unknown flag --lamda.*--lambda"),
    ("flag bad value", lambda p: ["train", "--epochs", "x"], 2, r"`epochs` to be an integer"),
    ("flag lambda", lambda p: ["train", "--lambda-combined", "2"], 2, r"`lambda_combined`"),
    ("flag lr true", lambda p: ["train", "--lr", "true"], 2, r"`lr` to be a real number"),
    (
        "output_dir file",
        lambda p: ["train", "--output_dir", str(_write(p / "f", "x"))],
        2,
        r"`output_dir` to be a folder",
    ),
    (
        "evaluate no run",
        lambda p: ["evaluate", "--run", str(p / "nope")],
        2,
        r"`--run` to be a run folder.*no such folder",
    ),
    (
        "evaluate run is file",
        lambda p: ["evaluate", "--run", str(_write(p / "f", "x"))],
        2,
        r"`--run` to be a run folder.*a file",
    ),
    (
        "resume empty folder",
        lambda p: ["train", "--resume", str(p)],
        2,
        r"`--resume` to be a run folder",
    ),
    (
        "evaluate no checkpoint",
        lambda p: ["evaluate", "--run", str(_run_folder(p / "r", None))],
        2,
        r"best\.pt",
    ),
    (
        "checkpoint garbage",
        lambda p: ["evaluate", "--run", str(_run_folder(p / "r", b"junk"))],
        2,
        r"best\.pt.*(damaged|not a losskit checkpoint)",
    ),
    (
        "checkpoint pickle",
        lambda p: ["evaluate", "--run", str(_run_folder(p / "r", _torch_bytes({"x": _Foreign()})))],
        2,
        r"best\.pt.*(damaged|not a losskit checkpoint)",
    ),
    (
        "checkpoint foreign",
        lambda p: [
            "evaluate",
            "--run",
            str(_run_folder(p / "r", _torch_bytes({"weight": torch.zeros(2)}))),
        ],
        2,
        r"best\.pt.*(damaged|not a losskit checkpoint)",
    ),
    (
        "checkpoint truncated",
        lambda p: [
            "evaluate",
            "--run",
            str(_run_folder(p / "r", _torch_bytes({"model": {}})[:60])),
        ],
        2,
        r"best\.pt.*(damaged|not a losskit checkpoint)",
    ),
    (
        "predict output folder",
        lambda p: [
            "predict",
            "--run",
            str(p),
            "--input",
            "x.npy",
            "--output",
            str(p / "no" / "out.csv"),
        ],
        2,
        r"`--output` to be a file in an existing folder.*no folder",
    ),
    (
        "predict output is dir",
        lambda p: ["predict", "--run", str(p), "--input", "x.npy", "--output", str(p)],
        2,
        r"`--output`.*is a folder",
    ),
    (
        "npy empty file",
        lambda p: [
            "train",
            "--dataset",
            "npy",
            "--data_dir",
            str(_npy_folder(p / "d", train_data=b"")),
            "--quiet",
        ],
        2,
        r"`train_data\.npy` to be a NumPy \.npy array",
    ),
    (
        "npy truncated",
        lambda p: [
            "train",
            "--dataset",
            "npy",
            "--data_dir",
            str(_npy_folder(p / "d", train_data=_truncated_npy())),
            "--quiet",
        ],
        2,
        r"`train_data\.npy` to be a NumPy \.npy array",
    ),
    (
        "npy text",
        lambda p: [
            "train",
            "--dataset",
            "npy",
            "--data_dir",
            str(_npy_folder(p / "d", test_data=b"1,2,3\n")),
            "--quiet",
        ],
        2,
        r"`test_data\.npy` to be a NumPy \.npy array",
    ),
    (
        "npy object",
        lambda p: [
            "train",
            "--dataset",
            "npy",
            "--data_dir",
            str(_npy_folder(p / "d", train_data=np.array([{}] * 20))),
            "--quiet",
        ],
        2,
        r"`train_data\.npy`.*an object array, pickled data",
    ),
    (
        "npy nan",
        lambda p: [
            "train",
            "--dataset",
            "npy",
            "--data_dir",
            str(_npy_folder(p / "d", test_data=np.full((10, 4), np.nan))),
            "--quiet",
        ],
        2,
        r"`test_data\.npy` finite values",
    ),
    (
        "npy float32 overflow",
        lambda p: [
            "train",
            "--dataset",
            "npy",
            "--data_dir",
            str(_npy_folder(p / "d", train_data=np.full((20, 4), 1e300))),
            "--quiet",
        ],
        2,
        r"`train_data\.npy` values within the float32 range",
    ),
    (
        "npy missing folder",
        lambda p: ["train", "--dataset", "npy", "--data_dir", str(p / "no")],
        2,
        r"data_dir",
    ),
    ("list family", lambda p: ["list", "--family", "regresion"], 2, r"`family`.*regression"),
    (
        "config a folder",
        lambda p: ["train", "--config", str(p)],
        2,
        r"to be a YAML file, got a folder",
    ),
    (
        "evaluate device",
        lambda p: ["evaluate", "--run", str(p), "--device", "tpu"],
        2,
        r"`--device` to be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got 'tpu'",
    ),
    (
        "plot dpi 0",
        lambda p: ["plot", "focal", "--dpi", "0", "--out", str(p / "f.png")],
        2,
        r"`--dpi` to be an integer >= 1, got 0",
    ),
    (
        "output_dir under a file",
        lambda p: ["train", "--output_dir", str(_write(p / "f", "x") / "run"), "--quiet"],
        2,
        r"f is a file, not a folder",
    ),
    (
        "flag bool with value",
        lambda p: ["train", "--quiet=yes"],
        2,
        r"argument --quiet/--no-quiet: expected no value, got 'yes'",
    ),
    ("explain name", lambda p: ["explain", "proxy_anchr"], 2, r"proxy_anchor"),
]


@pytest.mark.parametrize(("argv", "code", "names"), [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_cli_bad_input(tmp_path, capsys, argv, code, names):
    try:
        got = main(argv(tmp_path))
    except SystemExit as exit_:  # argparse's own usage errors
        got = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert got == code
    assert len(err) == 1, err
    assert re.match(r"losskit [\w -]+: error: ", err[0]), err[0]
    assert re.search(names, err[0]), err[0]


def test_cli_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="`epochs`"):
        main(["--debug", "train", "--epochs", "x"])


def test_matrix_size():
    assert len(LIBRARY) + len(CONFIG) + len(CLI) >= 150


def test_disk_full_names_the_file(tmp_path, monkeypatch):
    import errno

    from losskit.errors import DiskError, describe
    from losskit.train.checkpoint import save_checkpoint

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(DiskError, match=r"last\.pt: the disk is full") as info:
        save_checkpoint(tmp_path / "last.pt", {})
    assert describe(info.value) == (str(info.value), 1)
    assert not list(tmp_path.glob(".*tmp"))

    def short_write(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64")

    monkeypatch.setattr(torch, "save", short_write)
    with pytest.raises(DiskError, match=r"best\.pt: the disk is full"):
        save_checkpoint(tmp_path / "best.pt", {})


def test_samples_beyond_float32_are_named(tmp_path):
    from losskit.train.export import read_samples

    np.save(tmp_path / "x.npy", np.full((2, 4), 1e300))
    with pytest.raises(ValueError, match=r"`input` values within the float32 range.*8 beyond"):
        read_samples("predict", tmp_path / "x.npy", {})


def test_unpicklable_checkpoint_is_never_run(tmp_path):
    from losskit.train.checkpoint import load_checkpoint

    path = _write(tmp_path / "x.pt", pickle.dumps(_Foreign()))
    with pytest.raises(ValueError, match="not a losskit checkpoint"):
        load_checkpoint(path)
