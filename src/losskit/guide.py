"""The loss guide as code: ``recommend`` (the decision tree), ``explain``, and focal-loss stats.

- :data:`DECISION_TREE` — the guide's "which loss for my task?" tree as data: tasks, the
  situations under each, and for every leaf the ``losskit`` registry names and why.
- :func:`recommend` — walk the tree for a task and situations.
- :func:`explain` — a loss's formula, parameters with defaults, when to use it and its reference,
  read from the registry's docstrings (the one source of truth) and the tree.
- :func:`focal_stats` — the guide's effective-sample-count table for focal loss, computed with
  :func:`losskit.functional.focal`.

Example:
    >>> [leaf.losses for leaf in recommend("regression", ["outliers"])]
    [('huber', 'mae')]
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from losskit._plain_checks import check_choice, check_int, check_number, did_you_mean, fail
from losskit._plain_text import plain_text
from losskit.registry import LossSpec, get_spec, list_losses

if TYPE_CHECKING:  # torch is imported by the focal-stats functions: the tree stays light
    import torch

__all__ = [
    "DECISION_TREE",
    "FocalStatsRow",
    "Leaf",
    "Task",
    "explain",
    "focal_stats",
    "focal_weights",
    "format_focal_stats",
    "format_recommendation",
    "format_tree",
    "get_task",
    "recommend",
    "sample_focal_mix",
    "task_names",
]

# --------------------------------------------------------------------------------------------
# The decision tree
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """One situation under a task: the losses to use (registry names, best first) and why."""

    situation: str
    question: str
    losses: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class Task:
    """A task of the decision tree; ``default`` lists the situations used when none is given."""

    name: str
    description: str
    default: tuple[str, ...]
    leaves: tuple[Leaf, ...]

    @property
    def situations(self) -> tuple[str, ...]:
        return tuple(leaf.situation for leaf in self.leaves)


DECISION_TREE: tuple[Task, ...] = (
    Task(
        "classification",
        "assign each sample one (or several) of C classes",
        ("multi-class",),
        (
            Leaf(
                "multi-class",
                "mutually exclusive classes",
                ("cross_entropy",),
                "Softmax + negative log-likelihood on raw logits (log-softmax inside is stable). "
                "A fresh C-class model should start near log C (losskit.debug).",
            ),
            Leaf(
                "binary",
                "two classes, one output",
                ("binary_cross_entropy",),
                "One sigmoid logit per sample; `pos_weight` up-weights the positive class when "
                "positives are rare.",
            ),
            Leaf(
                "multi-label",
                "independent labels (a sample may have several)",
                ("binary_cross_entropy",),
                "One sigmoid per class with multi-hot float targets: each label is its own "
                "binary problem (softmax would force the labels to compete).",
            ),
            Leaf(
                "imbalanced",
                "class imbalance (rare classes matter)",
                ("focal", "cross_entropy", "binary_focal"),
                "Focal loss multiplies CE by (1-p_t)^gamma: with gamma=2 a sample at p_t=0.9 "
                "weighs 100x less, so the rare, hard samples drive the gradient (see `losskit "
                "focal-stats`). Or weight CE per class: weight=losskit.functional.class_weights("
                "labels, C) gives n / (C * n_c). binary_focal for sigmoid heads.",
            ),
            Leaf(
                "overconfident",
                "overconfident predictions or noisy labels",
                ("label_smoothing_cross_entropy",),
                "Label smoothing trains towards (1 - eps) on the target and eps spread over the "
                "classes, which keeps logits bounded, improves calibration and tolerates some "
                "label noise; eps=0.1 is typical.",
            ),
            Leaf(
                "multi-label-imbalanced",
                "multi-label with many more negative than positive labels",
                ("asymmetric_loss", "binary_cross_entropy"),
                "ASL focuses the negatives harder (gamma_neg=4) than the positives and drops easy "
                "negatives below the probability margin `clip`; binary_cross_entropy takes "
                "label_smoothing= (target y(1-eps) + eps/2).",
            ),
            Leaf(
                "augmentation-consistency",
                "robustness to corruptions with several augmented views (AugMix)",
                ("jsd_cross_entropy",),
                "CE on the clean view plus alpha times the Jensen-Shannon divergence between the "
                "views' predictions, which makes them agree.",
            ),
        ),
    ),
    Task(
        "regression",
        "predict real values",
        ("clean",),
        (
            Leaf(
                "clean",
                "clean data, no outliers",
                ("mse",),
                "Squared error is the Gaussian maximum-likelihood loss: smooth, convex, strong "
                "gradients for large errors; it predicts the conditional mean.",
            ),
            Leaf(
                "outliers",
                "data with outliers",
                ("huber", "mae"),
                "MAE grows linearly, so a few large errors cannot dominate (it predicts the "
                "median). Huber is quadratic within delta and linear beyond: MSE's smooth "
                "convergence near the optimum, MAE's robustness far from it; set delta near the "
                "noise scale.",
            ),
            Leaf(
                "smooth",
                "need smooth, twice-differentiable gradients",
                ("log_cosh", "huber"),
                "log cosh(e) is about e^2/2 for small errors and |e| - log 2 for large ones, "
                "differentiable everywhere (Huber's curvature jumps at delta).",
            ),
            Leaf(
                "asymmetric",
                "over- and under-prediction cost differently",
                ("asymmetric_mse",),
                "Squared error with over-predictions weighted by `over_penalty` (e.g. demand "
                "forecasting where overstock costs more than a shortfall).",
            ),
            Leaf(
                "heavy-outliers",
                "gross outliers (many, or very large)",
                ("robust", "cauchy", "welsch", "charbonnier"),
                "Barron's general robust loss: alpha=1 Charbonnier, 0 Cauchy, -2 Geman-McClure, "
                "-inf Welsch; the smaller alpha, the less an outlier's gradient counts (it "
                "vanishes for alpha < 0); `scale` sets where the quadratic bowl ends.",
            ),
            Leaf(
                "intervals",
                "prediction intervals or several quantiles of the target",
                ("quantile",),
                "The pinball loss max(tau*e, (tau-1)*e) per level tau is minimised by the "
                "tau-quantile; predict (N, Q) quantiles at once.",
            ),
        ),
    ),
    Task(
        "segmentation",
        "label every pixel or voxel",
        ("balanced",),
        (
            Leaf(
                "balanced",
                "balanced classes",
                ("ce_dice", "cross_entropy"),
                "Pixel-wise CE gives stable gradients everywhere; adding Dice optimises the "
                "region overlap that segmentation is judged by.",
            ),
            Leaf(
                "small-objects",
                "small objects",
                ("dice", "tversky", "focal_tversky"),
                "Dice normalises the overlap per image and class, so a 20-pixel object counts as "
                "much as the background; pixel-wise CE is dominated by the large regions. "
                "focal_tversky raises the Tversky loss to a power to focus on the hard regions.",
            ),
            Leaf(
                "imbalanced",
                "class imbalance",
                ("dice", "focal"),
                "Dice is insensitive to class frequency; focal loss down-weights the many easy "
                "background pixels.",
            ),
            Leaf(
                "recall",
                "missed foreground (false negatives) costs more than false alarms",
                ("tversky",),
                "Tversky index TP / (TP + alpha*FP + beta*FN) with beta > alpha (0.3/0.7) "
                "penalises false negatives more; alpha = beta = 0.5 is Dice.",
            ),
            Leaf(
                "rare-classes",
                "classes of very different volumes (e.g. organs and lesions)",
                ("generalized_dice", "dice_focal"),
                "Generalized Dice weights each class by 1/volume^2 so small classes count as "
                "much as large ones; dice_focal adds a focal voxel term to Dice.",
            ),
            Leaf(
                "iou-metric",
                "judged by mean IoU (Jaccard)",
                ("lovasz_softmax", "lovasz_hinge", "jaccard"),
                "The Lovasz losses are convex surrogates of the Jaccard loss (softmax for C "
                "classes, hinge for binary maps); fine-tune with them after CE. jaccard is the "
                "soft IoU.",
            ),
            Leaf(
                "thin-structures",
                "tiny or thin foreground on a large background (skin lesions, vessels)",
                ("mcc",),
                "The Matthews correlation also counts true negatives and stays informative when "
                "the foreground is a small fraction of the image.",
            ),
        ),
    ),
    Task(
        "detection",
        "find objects: a class score and a box per anchor or query",
        ("classification-head", "box-regression"),
        (
            Leaf(
                "classification-head",
                "the classification head",
                ("binary_focal", "focal", "cross_entropy"),
                "Dense detectors score ~100k anchors for a handful of objects: focal loss "
                "(alpha=0.25, gamma=2, RetinaNet) stops the easy background from swamping the "
                "gradient; plain CE suits two-stage detectors with sampled proposals.",
            ),
            Leaf(
                "box-regression",
                "bounding-box regression",
                ("giou", "diou", "ciou", "iou", "smooth_l1"),
                "IoU losses optimise the evaluation metric directly and are scale invariant; "
                "GIoU still has a gradient when boxes do not overlap, DIoU adds the centre "
                "distance (faster convergence), CIoU the aspect ratio. Smooth L1 on box offsets "
                "is the classic alternative.",
            ),
        ),
    ),
    Task(
        "metric-learning",
        "learn an embedding where similar samples are close",
        ("proxies",),
        (
            Leaf(
                "pairs",
                "pair verification (same / different)",
                ("contrastive",),
                "Pulls similar pairs together (d^2) and pushes dissimilar ones beyond the margin "
                "(max(0, m - d)^2): Siamese networks, face verification.",
            ),
            Leaf(
                "triplets",
                "relative comparisons (anchor closer to positive than to negative)",
                ("online_triplet", "triplet"),
                "Enforces d(a, p) + m < d(a, n). Mine triplets online in the batch "
                "(batch_hard): random triplets are mostly easy and give zero loss.",
            ),
            Leaf(
                "proxies",
                "labelled classes, retrieval (CUB-200, Cars196, SOP); fast convergence",
                (
                    "proxy_anchor",
                    "focal_proxy_anchor",
                    "multi_proxy_anchor",
                    "cosine_softmax_cross_entropy",
                ),
                "One learnable proxy per class: O(B*C) pairs instead of O(B^3) triplets, "
                "converges in a few epochs (alpha=32, delta=0.1). focal_proxy_anchor weights "
                "hard pairs more; multi_proxy_anchor gives multi-modal classes several proxies; "
                "cosine_softmax_cross_entropy (normalised softmax) is the classification-style "
                "alternative. `losskit train --loss_type combined` adds CE on a classification "
                "head.",
            ),
            Leaf(
                "margin-softmax",
                "many classes, face / person recognition (a softmax over class proxies)",
                ("arcface", "subcenter_arcface", "cosface", "proxy_nca"),
                "A cross-entropy over scaled cosines with a margin on the target: ArcFace adds "
                "m to the target angle (scale=64, margin=0.5 rad), CosFace subtracts m from the "
                "target cosine; sub-center ArcFace gives each class K proxies to absorb noisy "
                "labels. ProxyNCA++ is the margin-free softmax over proxy distances with a low "
                "temperature. All walk the proxies in chunks: 10^6 classes fit.",
            ),
            Leaf(
                "batch-pairs",
                "labelled batches, every pair weighted (no proxies)",
                ("multi_similarity", "supcon", "circle", "cross_batch_memory"),
                "Multi-Similarity (with mining='multi_similarity') weighs each pair by its "
                "similarity relative to the others; SupCon is the supervised NT-Xent (several "
                "positives per anchor); Circle re-weights each similarity by its distance to "
                "the optimum. CrossBatchMemory adds the embeddings of past batches as "
                "references when batches are small.",
            ),
            Leaf(
                "self-supervised",
                "no labels: two augmented views of each sample",
                ("nt_xent", "info_nce"),
                "The other view is the positive, the rest of the batch the negatives; the "
                "temperature sets how strongly hard negatives count; larger batches help.",
            ),
            Leaf(
                "non-contrastive",
                "no labels, two views, no (or few) negatives",
                ("barlow_twins", "vicreg", "negative_cosine", "dcl"),
                "Barlow Twins decorrelates the features of the two views, VICReg adds variance "
                "and covariance terms, negative_cosine is BYOL/SimSiam's stop-gradient "
                "objective; dcl is InfoNCE without the positive in the denominator (small "
                "batches). gather_distributed=True uses the global batch under DDP.",
            ),
        ),
    ),
    Task(
        "generative",
        "generate images or other data",
        ("gan", "vae", "image-translation", "diffusion"),
        (
            Leaf(
                "gan",
                "generative adversarial network",
                ("gan", "gradient_penalty", "r1_penalty"),
                "Non-saturating BCE (or hinge / Wasserstein) adversarial losses; regularise the "
                "discriminator with a gradient penalty (WGAN-GP) or R1 for stable training.",
            ),
            Leaf(
                "vae",
                "variational autoencoder",
                ("vae_elbo",),
                "Reconstruction (BCE for data in [0, 1], else MSE) + beta * KL(q(z|x) || N(0, I)): "
                "the negative ELBO; beta > 1 for disentanglement, anneal beta to avoid posterior "
                "collapse.",
            ),
            Leaf(
                "image-translation",
                "image-to-image translation, super-resolution, style transfer",
                ("perceptual", "mae"),
                "Perceptual loss compares features of a pretrained network (structure, texture) "
                "rather than pixels; add L1 for colour fidelity and a GAN loss for sharpness.",
            ),
            Leaf(
                "structure",
                "image restoration judged by structure (denoising, compression, MRI)",
                ("ssim", "ms_ssim", "total_variation"),
                "1 - SSIM compares local means, contrasts and structure (MS-SSIM over five "
                "scales) and matches perception better than L2; total variation regularises "
                "towards piecewise-smooth images.",
            ),
            Leaf(
                "diffusion",
                "denoising diffusion model",
                ("diffusion_noise_mse",),
                "Train the network to predict the added noise with plain MSE (Ho et al. 2020).",
            ),
        ),
    ),
    Task(
        "language",
        "language models",
        ("pretraining",),
        (
            Leaf(
                "pretraining",
                "next-token prediction (pre-training, fine-tuning)",
                ("next_token_cross_entropy", "perplexity"),
                "Cross-entropy of each token given the ones before (targets shifted by one, "
                "padding and prompt tokens ignored); perplexity = exp(CE) is how it is reported.",
            ),
            Leaf(
                "preference",
                "reward model from human preference pairs (RLHF)",
                ("bradley_terry",),
                "-log sigmoid(r_chosen - r_rejected): the Bradley-Terry likelihood that the "
                "chosen response wins.",
            ),
            Leaf(
                "large-vocabulary",
                "a big vocabulary: the (tokens, V) logits dominate memory",
                ("linear_cross_entropy",),
                "Pass the hidden states and the head's weight instead of the logits: the loss "
                "walks the vocabulary in blocks with the gradients formed on the way (about the "
                "cost of the head's matmuls), exact, with z_loss, softcap, label smoothing and "
                "shift=True for next-token prediction; linear_log_probs gives per-token "
                "log-probabilities the same way.",
            ),
            Leaf(
                "preference-optimisation",
                "align a policy on preference pairs without a reward model",
                ("dpo", "simpo", "orpo", "kto"),
                "DPO on the policy's and a frozen reference's sequence log-probabilities "
                "(sequence_log_probs); IPO or robust variants for noisy labels. SimPO and ORPO "
                "need no reference model (length-normalised; odds ratio added to the SFT loss); "
                "KTO takes unpaired good/bad answers.",
            ),
            Leaf(
                "distillation",
                "train a smaller student on a teacher's outputs",
                ("kl_divergence", "jsd"),
                "Forward KL (T^2-scaled) on the tempered softmaxes is the classic; reverse KL is "
                "mode-seeking; the generalised JSD (beta) interpolates and is bounded.",
            ),
        ),
    ),
    Task(
        "multi-task",
        "several losses (tasks or terms) trained together",
        ("fixed",),
        (
            Leaf(
                "fixed",
                "known relative importance of the parts",
                ("combined",),
                "A weighted sum that logs every part. Check the parts' scales at the first step "
                "(losskit.debug.warn_if_combined_scales_differ): a part 100x smaller than the "
                "others barely trains, whatever its weight suggests.",
            ),
            Leaf(
                "uncertain",
                "tasks in different units or with different noise levels",
                ("uncertainty_weighting",),
                "Learns one log-variance s per task and minimises exp(-s)*L + s: noisy tasks get "
                "down-weighted automatically (Kendall et al. 2018).",
            ),
            Leaf(
                "gradient-balance",
                "one task trains much faster than the others",
                ("gradnorm",),
                "Learns the task weights so the tasks' gradient norms on the last shared layer "
                "match their relative training rates (Chen et al. 2018).",
            ),
            Leaf(
                "curriculum",
                "noisy or very hard samples disturb early training",
                ("curriculum",),
                "Self-paced learning: samples whose loss is above a threshold that grows every "
                "epoch are left out, so training starts on the easy ones.",
            ),
        ),
    ),
)

_TASKS: dict[str, Task] = {task.name: task for task in DECISION_TREE}


def task_names() -> tuple[str, ...]:
    """The tasks of the decision tree, in order."""
    return tuple(_TASKS)


def _normalise(word: str) -> str:
    return word.strip().lower().replace("_", "-").replace(" ", "-")


def get_task(task: str) -> Task:
    """The :class:`Task` named ``task`` (``_`` and spaces read as ``-``, case ignored).

    Raises:
        TypeError: if ``task`` is not a string.
        ValueError: for an unknown task, listing the tasks with the closest one.
    """
    if not isinstance(task, str):
        fail("recommend", "task", "to be a string", type(task).__name__, kind=TypeError)
    return _TASKS[check_choice("recommend", "task", _normalise(task), task_names())]


def recommend(task: str, situations: Iterable[str] = ()) -> tuple[Leaf, ...]:
    """The decision tree's leaves for ``task`` in the given ``situations`` (its default if none).

    Args:
        task (str): one of :func:`task_names` (``_`` and spaces read as ``-``).
        situations (Iterable[str]): situations under that task (e.g. ``["imbalanced"]``).

    Returns:
        tuple[Leaf, ...]: each with the registry names to use and why.

    Raises:
        TypeError: if ``task`` is not a string.
        ValueError: for an unknown task or situation, listing the valid ones with the closest.

    Example:
        >>> [leaf.losses[0] for leaf in recommend("classification", ["imbalanced"])]
        ['focal']
    """
    node = get_task(task)
    wanted = [_normalise(s) for s in situations] or list(node.default)
    for situation in wanted:
        check_choice("recommend", f"situation of {node.name}", situation, node.situations)
    return tuple(leaf for leaf in node.leaves if leaf.situation in wanted)


def _loss_line(name: str) -> str:
    """``name  (losskit.Cls, losskit.functional.name)``: where to find a registered loss."""
    try:
        spec = get_spec(name)
    except ValueError:
        return name
    where = [f"losskit.{spec.cls.__name__}"]
    if spec.function is not None:
        where.append(f"losskit.functional.{spec.function.__name__}")
    return f"{name}  ({', '.join(where)})"


def format_recommendation(task: str, leaves: Sequence[Leaf]) -> str:
    """Printable text of :func:`recommend`'s answer."""
    blocks = []
    for leaf in leaves:
        lines = [f"{task} / {leaf.situation}: {leaf.question}"]
        lines.append("  use: " + _loss_line(leaf.losses[0]))
        lines.extend("   or: " + _loss_line(name) for name in leaf.losses[1:])
        lines += textwrap.wrap(
            leaf.why, width=100, initial_indent="  why: ", subsequent_indent=" " * 7
        )
        lines.append(f"  see: losskit explain {leaf.losses[0]}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def format_tree() -> str:
    """The whole decision tree, one line per leaf."""
    lines = []
    for task in DECISION_TREE:
        lines.append(f"{task.name}: {task.description}")
        for leaf in task.leaves:
            mark = "*" if leaf.situation in task.default else " "
            losses = ", ".join(leaf.losses)
            lines.append(f" {mark} --{leaf.situation:<20} {leaf.question}\n{'':24}-> {losses}")
    lines.append("(* = used when no situation is given)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# explain
# --------------------------------------------------------------------------------------------

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Returns?|Raises|Warns|References?|Examples?|Notes?|Shape|"
    r"When to use):\s*$"
)


def _sections(doc: str) -> dict[str, str]:
    """Split a Google-style docstring into its body (key ``""``) and named sections."""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in doc.splitlines():
        match = _SECTION.match(line)
        if match:
            current = match.group(1).lower().rstrip("s")
            sections.setdefault(current, [])
        else:
            sections[current].append(line)
    return {k: inspect.cleandoc("\n".join(v)) for k, v in sections.items()}


def _arg_descriptions(args_text: str) -> dict[str, str]:
    """``name -> description`` from an Args section (``name (type): text`` + indented lines;
    ``a, b: text`` describes both)."""
    found: dict[str, str] = {}
    current: list[str] = []
    for line in args_text.splitlines():
        head = re.match(r"^(\*{0,2}\w+(?:, \w+)*)\s*(\([^)]*\))?\s*:\s*(.*)$", line)
        if head and not line.startswith(" "):
            current = [name.lstrip("*") for name in head.group(1).split(", ")]
            kind = f"{head.group(2)} " if head.group(2) else ""
            found.update(dict.fromkeys(current, (kind + head.group(3).strip()).strip()))
        elif current and line.strip():
            found.update({name: (found[name] + " " + line.strip()) for name in current})
    return found


def _parameter_lines(spec: LossSpec, described: dict[str, str]) -> list[str]:
    target = spec.function if spec.function is not None else spec.cls
    lines = []
    for param in inspect.signature(target).parameters.values():
        if param.name in ("self", "args", "kwargs"):
            continue
        head = param.name
        if param.default is not inspect.Parameter.empty:
            head += f"={param.default!r}"
        text = described.get(param.name, "")
        lines += _wrap(f"{head:<26} {text}".rstrip(), indent=29)
    return lines


def _wrap(text: str, *, indent: int = 4) -> list[str]:
    """``text`` wrapped to 100 columns, two spaces in, continuation lines ``indent`` in."""
    return textwrap.wrap(text, width=100, initial_indent="  ", subsequent_indent=" " * indent) or [
        ""
    ]


def _plain_signature(obj: object) -> str:
    """``(a, *, b=1.0)``: a signature without annotations."""
    sig = inspect.signature(obj)  # type: ignore[arg-type]
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def explain(name: str) -> str:
    """Formula, parameters with defaults, when to use, and reference of a registered loss.

    Everything comes from the loss's docstring (via the registry) and :data:`DECISION_TREE`, so
    there is one copy of the text.

    Args:
        name (str): a registry name (see ``losskit list``).

    Returns:
        str: the printable explanation.

    Raises:
        ValueError: for an unknown name, with the closest registered name.

    Example:
        >>> explain("huber").splitlines()[0]
        'huber: losskit.HuberLoss / losskit.functional.huber (regression)'
    """
    names = list_losses()
    if not isinstance(name, str) or name not in names:
        suggestion = did_you_mean(name, names)
        fail(
            "explain",
            "name",
            "to be a registered loss (see `losskit list`)",
            f"{name!r}{suggestion}",
        )
    spec = get_spec(name)
    parts = _sections(plain_text(spec.doc))
    where = f"losskit.{spec.cls.__name__}"
    if spec.function is not None:
        where += f" / losskit.functional.{spec.function.__name__}"
    out = [f"{name}: {where} ({spec.family})", "", parts[""]]
    out += ["", "Parameters:", *_parameter_lines(spec, _arg_descriptions(parts.get("arg", "")))]
    if spec.function is not None:
        out += ["", f"Module: losskit.{spec.cls.__name__}{_plain_signature(spec.cls)}"]
    uses = [
        line
        for task in DECISION_TREE
        for leaf in task.leaves
        if name in leaf.losses
        for line in _wrap(f"{task.name} / {leaf.situation}: {leaf.question}. {leaf.why}")
    ]
    for section in ("when to use", "note"):
        if parts.get(section):
            uses += ["  " + line for line in parts[section].splitlines()]
    out += ["", "When to use:", *(uses or ["  (see the summary above; `losskit recommend`)"])]
    if parts.get("reference"):
        out += ["", "Reference:", "  " + parts["reference"].replace("\n", "\n  ")]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Focal loss: effective number of samples
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FocalStatsRow:
    """Focal weights summed over a hard/easy mix for one ``gamma``: ``N_eff = hard + easy``."""

    gamma: float
    hard: float
    easy: float
    total: int

    @property
    def n_eff(self) -> float:
        return self.hard + self.easy

    @property
    def share(self) -> float:
        """``N_eff / N``."""
        return self.n_eff / self.total

    @property
    def reduction(self) -> float:
        """``N / N_eff``: how many times fewer samples effectively count."""
        return self.total / self.n_eff


def focal_weights(p_t: torch.Tensor, gamma: float) -> torch.Tensor:
    """The focal modulating factor ``(1 - p_t)^gamma`` per sample, read off the library's loss.

    Computed as ``focal(gamma) / focal(gamma=0)`` on two-class logits ``[log p_t, log(1-p_t)]``
    with target 0 (so the softmax probability of the target is exactly ``p_t``).

    Args:
        p_t (Tensor[N]): the probability of the true class, in (0, 1).
        gamma (float): the focusing parameter, ``>= 0``.

    Returns:
        Tensor[N]: the weights, in the dtype of ``p_t``.

    Raises:
        ValueError: if a probability is outside (0, 1) or ``gamma`` is negative.
    """
    import torch

    import losskit.functional as LF

    gamma = check_number("focal_weights", "gamma", gamma, low=0.0)
    p = p_t.to(torch.float64)
    if p.numel() and not bool(((p > 0) & (p < 1)).all()):
        fail("focal_weights", "p_t", "in (0, 1)", f"values in [{float(p.min())}, {float(p.max())}]")
    logits = torch.stack([p.log(), (-p).log1p()], dim=-1)
    targets = torch.zeros(p.shape[0], dtype=torch.long)
    fl = LF.focal(logits, targets, gamma=gamma, reduction="none")
    ce = LF.focal(logits, targets, gamma=0.0, reduction="none")
    return (fl / ce).to(p_t.dtype)


def sample_focal_mix(
    n_hard: int = 10,
    n_easy: int = 990,
    hard_range: tuple[float, float] = (0.1, 0.5),
    easy_range: tuple[float, float] = (0.9, 0.99),
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The guide's easy/hard mix: ``p_t`` uniform in ``hard_range`` and in ``easy_range``.

    Returns:
        tuple[Tensor, Tensor]: ``(p_hard (n_hard,), p_easy (n_easy,))`` in float64.

    Raises:
        ValueError: for negative counts, no samples at all, or a range not inside (0, 1).
    """
    import numpy as np
    import torch

    fn = "focal_stats"
    check_int(fn, "n_hard", n_hard, low=0)
    check_int(fn, "n_easy", n_easy, low=0)
    if n_hard + n_easy == 0:
        fail(fn, "n_hard + n_easy", "to be at least 1", 0)
    for arg, (lo, hi) in (("hard_range", hard_range), ("easy_range", easy_range)):
        if not 0 < lo <= hi < 1:
            fail(fn, arg, "to be (low, high) with 0 < low <= high < 1", (lo, hi))
    rng = np.random.default_rng(seed)
    p_hard = rng.uniform(hard_range[0], hard_range[1], n_hard)
    p_easy = rng.uniform(easy_range[0], easy_range[1], n_easy)
    return torch.from_numpy(p_hard), torch.from_numpy(p_easy)


def focal_stats(
    p_hard: torch.Tensor, p_easy: torch.Tensor, gammas: Sequence[float] = (0.0, 1.0, 2.0, 5.0)
) -> list[FocalStatsRow]:
    """Effective sample count ``N_eff = Σ (1 - p_t)^gamma`` of a hard/easy mix, per ``gamma``.

    Args:
        p_hard (Tensor[N_h]): ``p_t`` of the hard samples.
        p_easy (Tensor[N_e]): ``p_t`` of the easy samples.
        gammas (Sequence[float]): focusing parameters to tabulate.

    Returns:
        list[FocalStatsRow]: one row per ``gamma``.

    Reference:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.

    Example:
        >>> import torch
        >>> rows = focal_stats(torch.tensor([0.5]), torch.tensor([0.9]), gammas=[0, 2])
        >>> [round(r.n_eff, 4) for r in rows]
        [2.0, 0.26]
    """
    total = p_hard.numel() + p_easy.numel()
    return [
        FocalStatsRow(
            gamma=float(g),
            hard=float(focal_weights(p_hard, g).sum()),
            easy=float(focal_weights(p_easy, g).sum()),
            total=total,
        )
        for g in gammas
    ]


def format_focal_stats(rows: Sequence[FocalStatsRow], n_hard: int, n_easy: int) -> str:
    """The table printed by ``losskit focal-stats``."""
    lines = [
        f"Effective samples N_eff = sum (1 - p_t)^gamma  (N = {n_hard + n_easy}: "
        f"{n_hard} hard, {n_easy} easy)",
        f"{'gamma':>6} {'N_eff':>10} {'% of N':>8} {'hard':>9} {'easy':>9} {'reduction':>10}",
    ]
    for r in rows:
        lines.append(
            f"{r.gamma:>6g} {r.n_eff:>10.2f} {100 * r.share:>7.1f}% {r.hard:>9.2f} "
            f"{r.easy:>9.2f} {r.reduction:>9.2f}x"
        )
    return "\n".join(lines)
