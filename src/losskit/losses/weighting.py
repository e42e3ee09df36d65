"""Combining and weighting losses: fixed weights, learned uncertainty, GradNorm, curricula.

These modules wrap other losses rather than compare predictions with targets, so they have no
function form; they are registered by name: ``combined`` (:class:`CombinedLoss`),
``uncertainty_weighting`` (:class:`UncertaintyWeighting`), ``gradnorm`` (:class:`GradNorm`) and
``curriculum`` (:class:`CurriculumLoss`). :func:`task_gradient_norms` is the measurement
GradNorm is built on, public for logging and diagnostics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from losskit._checks import check_int, check_number, check_tensor, fail, shape_str
from losskit._reduce import Reduction, check_reduction, reduce
from losskit.registry import register

__all__ = [
    "CombinedLoss",
    "CurriculumLoss",
    "GradNorm",
    "UncertaintyWeighting",
    "task_gradient_norms",
]

LossFn = Callable[..., Tensor]
TaskLosses = Sequence[Tensor] | Tensor


def _task_losses(fn: str, task_losses: object, num_tasks: int | None = None) -> list[Tensor]:
    """The task losses as a list of scalar tensors (from a sequence or a 1-D tensor)."""
    if isinstance(task_losses, Tensor):
        if task_losses.dim() != 1:
            fail(fn, "task_losses", "a 1-D tensor (K,)", f"shape {shape_str(task_losses.shape)}")
        losses = list(task_losses.unbind())
    elif isinstance(task_losses, Sequence) and not isinstance(task_losses, str):
        losses = [check_tensor(fn, "task_losses", t) for t in task_losses]
        for t in losses:
            if t.dim() != 0:
                fail(fn, "task_losses", "scalar losses", f"a tensor of shape {shape_str(t.shape)}")
    else:
        expected = "a sequence of scalar tensors or a 1-D tensor"
        fail(fn, "task_losses", expected, type(task_losses).__name__, kind=TypeError)
    if num_tasks is not None and len(losses) != num_tasks:
        fail(fn, "task_losses", f"{num_tasks} losses (num_tasks)", len(losses))
    return losses


@register(name="combined")
class CombinedLoss(nn.Module):
    """Weighted sum of named losses, returned with its parts for logging.

    Formula: ``total = Σ_k w_k · L_k(*args, **kwargs)``: every part is called with the same
    arguments (wrap a part in a small function when it needs other inputs, e.g. the logits for
    CE and the embeddings for a metric loss). ``forward`` returns ``(total, parts)`` where
    ``parts`` maps each name to its unweighted value, **detached** — for logging only, so logged
    values never keep a graph alive; the gradient flows through ``total``. Parts that are
    ``nn.Module`` s are registered as submodules (moved by ``.to()``, their parameters — e.g.
    proxies — included in ``.parameters()``).

    Args:
        parts: ``{name: (loss, weight)}``: ``loss`` any callable returning a scalar tensor,
            ``weight`` a real number ≥ 0. Names are non-empty and contain no ``"."``.

    Returns:
        ``(Tensor, dict[str, Tensor])``: the scalar total and the detached parts.

    Raises:
        ValueError: no part, a malformed entry, a negative weight, a bad name, or (in forward) a
            part that does not return a scalar.
        TypeError: a loss that is not callable or a weight that is not a number.

    Reference:
        Kendall et al., CVPR 2018, §3 (the fixed-weight baseline of multi-task learning).

    Example:
        >>> import torch.nn.functional as F
        >>> loss = CombinedLoss({"mse": (F.mse_loss, 0.5), "l1": (F.l1_loss, 2.0)})
        >>> total, parts = loss(torch.zeros(3), torch.full((3,), 2.0))
        >>> float(total), {k: float(v) for k, v in parts.items()}
        (6.0, {'mse': 4.0, 'l1': 2.0})
    """

    def __init__(self, parts: Mapping[str, tuple[LossFn, float]]) -> None:
        super().__init__()
        fn = "CombinedLoss"
        if not isinstance(parts, Mapping) or len(parts) == 0:
            fail(fn, "parts", "a non-empty mapping {name: (loss, weight)}", repr(parts))
        self.loss_modules = nn.ModuleDict()
        self.parts: dict[str, LossFn] = {}
        self.weights: dict[str, float] = {}
        for name, entry in parts.items():
            if not isinstance(name, str) or not name or "." in name:
                fail(fn, "parts", "names that are non-empty strings without '.'", repr(name))
            if not isinstance(entry, tuple) or len(entry) != 2:
                fail(fn, f"parts[{name!r}]", "a (loss, weight) pair", repr(entry))
            loss, weight = entry
            if not callable(loss):
                fail(fn, f"parts[{name!r}]", "a callable loss", type(loss).__name__, kind=TypeError)
            self.weights[name] = check_number(fn, f"parts[{name!r}] weight", weight, low=0.0)
            self.parts[name] = loss
            if isinstance(loss, nn.Module):
                self.loss_modules[name] = loss

    @classmethod
    def convex(
        cls, first: tuple[str, LossFn], second: tuple[str, LossFn], lam: float
    ) -> CombinedLoss:
        """``λ·first + (1 − λ)·second`` with λ validated in ``[0, 1]``.

        Example:
            >>> import torch.nn.functional as F
            >>> loss = CombinedLoss.convex(("mse", F.mse_loss), ("l1", F.l1_loss), 0.7)
            >>> loss.weights == {"mse": 0.7, "l1": 1.0 - 0.7}
            True
        """
        lam = check_number("CombinedLoss.convex", "lam", lam, low=0.0, high=1.0)
        return cls({first[0]: (first[1], lam), second[0]: (second[1], 1.0 - lam)})

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={w:g}" for name, w in self.weights.items())

    def forward(self, *args: object, **kwargs: object) -> tuple[Tensor, dict[str, Tensor]]:
        values: dict[str, Tensor] = {}
        for name, loss in self.parts.items():
            value = check_tensor("CombinedLoss", f"part {name!r}", loss(*args, **kwargs))
            if value.dim() != 0:
                got = f"shape {shape_str(value.shape)}"
                fail("CombinedLoss", f"part {name!r}", "to return a scalar (reduce it)", got)
            values[name] = value
        total = torch.stack([self.weights[n] * v for n, v in values.items()]).sum()
        return total, {n: v.detach() for n, v in values.items()}


@register(name="uncertainty_weighting")
class UncertaintyWeighting(nn.Module):
    """Multi-task weighting by learned homoscedastic uncertainty (Kendall et al.).

    Formula: ``L = Σ_i exp(−s_i)·L_i + s_i`` with one learnable ``s_i = log σ_i²`` per task
    (the form used for every task type; the paper's ½ factors for regression tasks only rescale
    ``s``). For fixed ``L_i`` the optimum is ``s_i* = log L_i``, i.e. the weight ``exp(−s_i)``
    settles at ``1/L_i``; the ``+ s_i`` term stops it from collapsing to zero. Optimise ``s``
    together with the model.

    Args:
        num_tasks: number of tasks ``K`` (≥ 1).
        init_log_var: the initial ``s_i`` (0 gives weights 1).

    Returns:
        Tensor: the scalar total (``forward(task_losses)``).

    Raises:
        ValueError: ``num_tasks`` < 1, or ``task_losses`` not ``K`` scalars.
        TypeError: a non-integer ``num_tasks`` or non-tensor losses.

    Reference:
        Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for
        Scene Geometry and Semantics", CVPR 2018.

    Example:
        >>> weighting = UncertaintyWeighting(num_tasks=2)
        >>> float(weighting([torch.tensor(2.0), torch.tensor(3.0)]).detach())  # s = 0: plain sum
        5.0
    """

    def __init__(self, num_tasks: int, *, init_log_var: float = 0.0) -> None:
        super().__init__()
        fn = "UncertaintyWeighting"
        self.num_tasks = check_int(fn, "num_tasks", num_tasks, low=1)
        init = check_number(fn, "init_log_var", init_log_var)
        self.log_vars = nn.Parameter(torch.full((self.num_tasks,), init))

    @property
    def weights(self) -> Tensor:
        """The current task weights ``exp(−s_i)`` (detached)."""
        return torch.exp(-self.log_vars.detach())

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}"

    def forward(self, task_losses: TaskLosses) -> Tensor:
        losses = torch.stack(_task_losses("UncertaintyWeighting", task_losses, self.num_tasks))
        s = self.log_vars
        return (torch.exp(-s) * losses + s).sum()


def task_gradient_norms(task_losses: TaskLosses, shared_parameters: Iterable[Tensor]) -> Tensor:
    """Per-task gradient norms on shared parameters: ``n_i = ‖∇_W L_i‖₂`` (detached).

    The norm is taken over all of ``shared_parameters`` together (e.g. the last shared layer's
    weight and bias). Computed with one ``autograd.grad`` per task and ``retain_graph=True``, so
    the graph can still be back-propagated afterwards.

    Args:
        task_losses: ``K`` scalar losses (a sequence or ``Tensor[K]``).
        shared_parameters: the parameters ``W`` (requiring grad) every task depends on.

    Returns:
        Tensor[K]: the gradient norms, without a graph.

    Raises:
        ValueError: no shared parameter, one that does not require grad, or a task loss that
            does not depend on ``shared_parameters``.
        TypeError: non-tensor losses or parameters.

    Reference:
        Chen et al., "GradNorm", ICML 2018, §3 (``G_W^(i)``).

    Example:
        >>> w = torch.ones(3, requires_grad=True)
        >>> task_gradient_norms([w.sum(), (2 * w).sum()], [w])
        tensor([1.7321, 3.4641])
    """
    fn = "task_gradient_norms"
    losses = _task_losses(fn, task_losses)
    if not losses:
        fail(fn, "task_losses", "at least one task loss", "none")
    params = [check_tensor(fn, "shared_parameters", p) for p in shared_parameters]
    if not params:
        fail(fn, "shared_parameters", "at least one parameter", "none")
    if not all(p.requires_grad for p in params):
        fail(fn, "shared_parameters", "parameters that require grad", "requires_grad=False")
    norms = []
    for i, loss in enumerate(losses):
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        present = [torch.linalg.vector_norm(g) for g in grads if g is not None]
        if not loss.requires_grad or not present:
            fail(fn, f"task_losses[{i}]", "to depend on `shared_parameters`", "no dependence")
        norms.append(torch.linalg.vector_norm(torch.stack(present)))
    return torch.stack(norms)


@register(name="gradnorm")
class GradNorm(nn.Module):
    """GradNorm: task weights learned so every task trains at a balanced rate (Chen et al.).

    With task weights ``w_i`` (learnable, start at 1) and a chosen shared layer ``W`` (usually
    the last shared one), each step ``forward(task_losses, W.parameters())`` computes

    - ``G_i = ‖∇_W w_i·L_i‖₂ = w_i·‖∇_W L_i‖₂`` and their mean ``Ḡ``;
    - the relative inverse training rates ``r_i = L̃_i / mean_j L̃_j`` with ``L̃_i = L_i/L_i(0)``;
    - the GradNorm loss ``L_grad = Σ_i |G_i − Ḡ·r_i^α|`` with the target ``Ḡ·r_i^α`` detached.

    It returns one scalar: its **value** is the weighted task loss ``Σ_i w_i·L_i``; its
    **gradient** is ``∇ Σ_i w_i·L_i`` for the network (the weights held constant) and
    ``∇_w L_grad`` for the weights (``L_grad`` reaches no network parameter, as in the paper).
    One ``backward()`` and one optimiser step over the model's and this module's parameters
    (give ``w`` its own parameter group and learning rate) do both updates. Then call
    :meth:`update` with the step's task losses: it records ``L_i(0)`` on the first call and
    renormalises the weights to ``Σ_i w_i = K``. ``forward`` itself changes nothing; until
    ``L(0)`` is recorded it uses the current losses as ``L(0)`` (so ``r_i = 1``).

    Tasks that train slower (higher ``L̃_i``) get larger target gradient norms; ``α`` (≥ 0) sets
    the strength of that restoring force (``α = 0`` equalises the gradient norms).

    Args:
        num_tasks: number of tasks ``K`` (≥ 1).
        alpha: the asymmetry ``α`` (1.5 in the paper's NYUv2 experiments).

    Returns:
        Tensor: the scalar described above (``forward(task_losses, shared_parameters)``).

    Raises:
        ValueError: ``num_tasks`` < 1, a negative ``alpha``, ``task_losses`` not ``K`` scalars,
            or losses that do not depend on the shared parameters.
        TypeError: non-integer ``num_tasks``, non-tensor losses or parameters.

    Reference:
        Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for Adaptive
        Loss Balancing in Deep Multitask Networks", ICML 2018 (Algorithm 1).

    Example:
        >>> shared = torch.nn.Linear(2, 2)
        >>> gradnorm = GradNorm(num_tasks=2)
        >>> out = shared(torch.ones(1, 2))
        >>> losses = [out[0, 0] ** 2, 100 * out[0, 1] ** 2]
        >>> loss = gradnorm(losses, shared.parameters())
        >>> loss.backward()
        >>> gradnorm.update(losses)
        >>> float(gradnorm.weights.detach().sum())
        2.0
    """

    initial_losses: Tensor

    def __init__(self, num_tasks: int, *, alpha: float = 1.5) -> None:
        super().__init__()
        fn = "GradNorm"
        self.num_tasks = check_int(fn, "num_tasks", num_tasks, low=1)
        self.alpha = check_number(fn, "alpha", alpha, low=0.0)
        self.weights = nn.Parameter(torch.ones(self.num_tasks))
        self.register_buffer("initial_losses", torch.full((self.num_tasks,), float("nan")))

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}, alpha={self.alpha}"

    def forward(self, task_losses: TaskLosses, shared_parameters: Iterable[Tensor]) -> Tensor:
        losses_list = _task_losses("GradNorm", task_losses, self.num_tasks)
        losses = torch.stack(losses_list)
        norms = task_gradient_norms(losses_list, shared_parameters)
        grad_norms = self.weights * norms  # G_i; only the weights carry a graph
        current = losses.detach()
        initial = torch.where(torch.isnan(self.initial_losses), current, self.initial_losses)
        ratio = current / initial.clamp_min(torch.finfo(initial.dtype).tiny)
        rate = ratio / ratio.mean()
        target = (grad_norms.mean() * rate.pow(self.alpha)).detach()
        gradnorm_loss = (grad_norms - target).abs().sum()
        weighted = (self.weights.detach() * losses).sum()
        # Value: the weighted task loss; gradient: that of the weighted loss plus ∇_w L_grad.
        return weighted + (gradnorm_loss - gradnorm_loss.detach())

    @torch.no_grad()
    def update(self, task_losses: TaskLosses) -> None:
        """After the optimiser step: record ``L(0)`` once and renormalise ``Σ w_i = K``.

        Weights are first clamped to a small positive floor, so a too-large step cannot make a
        task's weight zero or negative.
        """
        current = torch.stack(_task_losses("GradNorm.update", task_losses, self.num_tasks))
        current = current.detach().to(self.initial_losses)
        self.initial_losses.copy_(
            torch.where(torch.isnan(self.initial_losses), current, self.initial_losses)
        )
        w = self.weights.clamp_min(1e-6)
        self.weights.copy_(w * (self.num_tasks / w.sum()))


@register(name="curriculum")
class CurriculumLoss(nn.Module):
    """Self-paced curriculum: samples harder than a threshold growing with the epoch are left out.

    Formula: with per-sample losses ``ℓ_i`` from ``base_loss`` and the threshold
    ``λ(e) = threshold · growth^e`` at epoch ``e``, ``v_i = [ℓ_i ≤ λ(e)]`` (computed on the
    detached loss), and the loss is ``Σ_i v_i·ℓ_i / Σ_i v_i`` for ``"mean"`` (``0.0`` still
    connected to the graph when no sample is easy enough), ``Σ_i v_i·ℓ_i`` for ``"sum"`` and
    ``v·ℓ`` for ``"none"``. This is the closed-form ``v`` step of self-paced learning; as ``λ``
    grows, harder samples join. Call :meth:`set_epoch` at the start of every epoch (like
    ``DistributedSampler.set_epoch``); the epoch is a buffer, so it is saved in checkpoints.

    Args:
        base_loss: a callable returning **per-sample** losses (e.g. a loss with
            ``reduction="none"``); it receives ``forward``'s arguments.
        threshold: ``λ(0)`` (> 0), in the units of the loss.
        growth: the factor ``λ`` grows by per epoch (≥ 1).
        reduction: ``"mean" | "sum" | "none"``.

    Returns:
        Tensor: a scalar, or the masked per-sample losses for ``"none"``.

    Raises:
        ValueError: a threshold ≤ 0, a growth < 1, a negative epoch, or a base loss returning a
            scalar.
        TypeError: a base loss that is not callable or does not return a tensor.

    Reference:
        Kumar, Packer & Koller, "Self-Paced Learning for Latent Variable Models", NeurIPS 2010;
        Bengio et al., "Curriculum Learning", ICML 2009.

    Example:
        >>> per_sample = lambda pred, target: (pred - target).abs()
        >>> curriculum = CurriculumLoss(per_sample, threshold=1.0, growth=4.0)
        >>> pred, target = torch.tensor([0.5, 3.0]), torch.zeros(2)
        >>> float(curriculum(pred, target))  # only the easy sample (loss 0.5 ≤ 1)
        0.5
        >>> curriculum.set_epoch(1)  # λ = 4: both samples
        >>> float(curriculum(pred, target))
        1.75
    """

    epoch: Tensor

    def __init__(
        self,
        base_loss: LossFn,
        *,
        threshold: float = 1.0,
        growth: float = 1.3,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        fn = "CurriculumLoss"
        if not callable(base_loss):
            fail(fn, "base_loss", "a callable", type(base_loss).__name__, kind=TypeError)
        self.base_loss = base_loss
        self.threshold = check_number(fn, "threshold", threshold, low=0.0, low_open=True)
        self.growth = check_number(fn, "growth", growth, low=1.0)
        self.reduction: Reduction = check_reduction(fn, reduction)
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, growth={self.growth}, reduction={self.reduction!r}"

    def set_epoch(self, epoch: int) -> None:
        """Set the current epoch ``e`` (the threshold becomes ``threshold · growth^e``)."""
        self.epoch.fill_(check_int("CurriculumLoss.set_epoch", "epoch", epoch, low=0))

    def current_threshold(self) -> float:
        """``λ(e)`` for the current epoch."""
        return self.threshold * self.growth ** int(self.epoch)

    def forward(self, *args: object, **kwargs: object) -> Tensor:
        fn = "CurriculumLoss"
        losses = check_tensor(fn, "base_loss output", self.base_loss(*args, **kwargs))
        if losses.dim() == 0:
            fail(fn, "base_loss output", "per-sample losses (use reduction='none')", "a scalar")
        limit = self.threshold * torch.pow(self.growth, self.epoch.to(losses))
        keep = losses.detach() <= limit
        masked = torch.where(keep, losses, torch.zeros_like(losses))
        return reduce(masked, self.reduction, fn=fn, denominator=keep.sum())
