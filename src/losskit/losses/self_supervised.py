"""Self-supervised losses on two views: Barlow Twins, VICReg, negative cosine (BYOL/SimSiam), DCL.

Each takes the embeddings of two augmented views of the same ``B`` images, row ``i`` of ``z1``
and of ``z2`` being the same image. Half-precision inputs are computed in float32 and the
result is cast back to the input's dtype.

**Distributed training** (``gather_distributed=True``, a no-op without a process group): the
losses whose value depends on the other samples of the batch (``barlow_twins``, ``vicreg``,
``dcl``) gather both views from every rank (autograd-aware, uneven rows allowed) and return the
loss of the **global** batch on every rank. In backward the gather hands each rank, for its own
rows, the sum over ranks of their gradients, i.e. ``W`` times the global-loss gradient; DDP then
averages the parameter gradients over the ``W`` ranks, which cancels that factor. One optimiser
step on ``W`` ranks therefore equals one single-process step on the concatenated batch, with no
scaling of the loss by the user.

Registry names: ``barlow_twins`` (:class:`BarlowTwinsLoss`), ``vicreg`` (:class:`VICRegLoss`),
``negative_cosine`` (:class:`NegativeCosineLoss`) and ``dcl`` (:class:`DCLLoss`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losskit._checks import check_bool, check_floating, check_ndim, check_number, check_same_shape
from losskit._reduce import Reduction, check_reduction, reduce, upcast
from losskit._scaled import l2_normalize, pow2_scale
from losskit.distributed import all_gather
from losskit.registry import register

__all__ = [
    "BarlowTwinsLoss",
    "DCLLoss",
    "NegativeCosineLoss",
    "VICRegLoss",
    "barlow_twins",
    "dcl",
    "negative_cosine",
    "vicreg",
]

# Added to the per-feature variance before the square root (as BatchNorm and VICReg do).
_BN_EPS = 1e-5
_VICREG_EPS = 1e-4


def _views(
    fn: str, z1: object, z2: object, gather: object, *, min_rows: int = 1
) -> tuple[Tensor, Tensor]:
    """Validate two ``(B, D)`` views, upcast them and gather them when asked."""
    a = check_ndim(fn, "z1", check_floating(fn, "z1", z1), 2, "(B, D)")
    b = check_floating(fn, "z2", z2)
    check_same_shape(fn, "z2", b, "z1", a)
    if check_bool(fn, "gather_distributed", gather):
        a, b = all_gather(a), all_gather(b)
    if a.shape[0] < min_rows:
        raise ValueError(
            f"{fn}: expected `z1` with at least {min_rows} rows (the batch statistics need them), "
            f"got {a.shape[0]}"
        )
    return upcast(a), upcast(b).to(upcast(a).dtype)


def _off_diagonal(m: Tensor) -> Tensor:
    """The off-diagonal entries ``(n, n − 1)`` of a square ``(n, n)`` matrix, row by row.

    A view, so the shape never depends on the values: the flat matrix without its last entry,
    read in rows of ``n + 1``, starts each row with a diagonal entry.
    """
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].reshape(n, n - 1)


def barlow_twins(
    z1: Tensor, z2: Tensor, lambda_: float = 5e-3, *, gather_distributed: bool = False
) -> Tensor:
    """Barlow Twins: drive the cross-correlation of two views' features to the identity.

    Each feature is standardised over the batch (mean 0, biased std, ``eps = 1e-5`` in the
    variance, as BatchNorm without affine); with ``C = ẑ1ᵀ ẑ2 / B`` (``D × D``)::

        L = Σ_i (1 − C_ii)² + λ · Σ_{i≠j} C_ij²

    Args:
        z1 (Tensor[B, D]): embeddings of the first view.
        z2 (Tensor[B, D]): embeddings of the second view, row ``i`` the same image.
        lambda_: weight ``λ >= 0`` of the redundancy-reduction (off-diagonal) term.
        gather_distributed: compute the loss over the batch of every rank (see the module
            docstring); a no-op without a process group.

    Returns:
        Tensor: a scalar, in ``z1``'s dtype.

    Raises:
        TypeError: non-float views, a non-bool ``gather_distributed``.
        ValueError: views not ``(B, D)`` of the same shape, ``B < 2``, ``lambda_ < 0``.

    Reference:
        Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy Reduction",
        ICML 2021.

    Example:
        >>> import torch
        >>> z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
        >>> round(float(barlow_twins(z, z)), 4)  # identical views, uncorrelated features
        0.0
    """
    fn = "barlow_twins"
    lam = check_number(fn, "lambda_", lambda_, low=0.0)
    a, b = _views(fn, z1, z2, gather_distributed, min_rows=2)

    def standardise(z: Tensor) -> Tensor:
        # Per feature, divided by a power of two first (exact; the squares cannot overflow).
        centred = z - z.mean(0)
        s = pow2_scale(centred, dim=0)
        y = centred / s
        return y / torch.sqrt(y.square().mean(0) + _BN_EPS / s / s)

    c = standardise(a).T @ standardise(b) / a.shape[0]
    loss = (1.0 - torch.diagonal(c)).square().sum() + lam * _off_diagonal(c).square().sum()
    return loss.to(z1.dtype)


def _variance_term(z: Tensor) -> Tensor:
    """Mean hinge ``relu(1 − std)`` of each feature's (unbiased) standard deviation."""
    return F.relu(1.0 - torch.sqrt(z.var(dim=0) + _VICREG_EPS)).mean()


def _covariance_term(z: Tensor) -> Tensor:
    """Sum of the squared off-diagonal covariances, divided by the dimension ``D``."""
    centred = z - z.mean(0)
    cov = centred.T @ centred / (z.shape[0] - 1)
    return _off_diagonal(cov).square().sum() / z.shape[1]


def vicreg(
    z1: Tensor,
    z2: Tensor,
    sim_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
    *,
    gather_distributed: bool = False,
) -> Tensor:
    """VICReg: invariance, variance and covariance regularisation of two views.

    Formula (``std`` and ``Cov`` unbiased over the batch, ``ε = 1e-4``)::

        s(z1, z2) = 1/(B·D) Σ ‖z1_b − z2_b‖²                       (invariance, MSE)
        v(z)      = 1/D Σ_j max(0, 1 − sqrt(Var(z_j) + ε))          (variance hinge)
        c(z)      = 1/D Σ_{i≠j} Cov(z)_ij²                           (covariance)
        L = sim_weight·s + var_weight·(v(z1) + v(z2))/2 + cov_weight·(c(z1) + c(z2))

    (the variance term averaged over the two views and the covariance term summed, as lightly's
    ``VICRegLoss``). With ``gather_distributed`` all three terms use the global batch.

    Args:
        z1 (Tensor[B, D]): embeddings of the first view.
        z2 (Tensor[B, D]): embeddings of the second view.
        sim_weight, var_weight, cov_weight: the weights (>= 0) of the three terms.
        gather_distributed: compute the loss over the batch of every rank (module docstring).

    Returns:
        Tensor: a scalar, in ``z1``'s dtype.

    Raises:
        TypeError: non-float views, a non-bool ``gather_distributed``.
        ValueError: views not ``(B, D)`` of the same shape, ``B < 2``, a negative weight.

    Reference:
        Bardes, Ponce and LeCun, "VICReg: Variance-Invariance-Covariance Regularization for
        Self-Supervised Learning", ICLR 2022.

    Example:
        >>> import torch
        >>> z = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
        >>> round(float(vicreg(z, z)), 4)  # same views, std > 1, uncorrelated features
        0.0
    """
    fn = "vicreg"
    ws = check_number(fn, "sim_weight", sim_weight, low=0.0)
    wv = check_number(fn, "var_weight", var_weight, low=0.0)
    wc = check_number(fn, "cov_weight", cov_weight, low=0.0)
    a, b = _views(fn, z1, z2, gather_distributed, min_rows=2)
    invariance = F.mse_loss(a, b)
    variance = 0.5 * (_variance_term(a) + _variance_term(b))
    covariance = _covariance_term(a) + _covariance_term(b)
    return (ws * invariance + wv * variance + wc * covariance).to(z1.dtype)


def negative_cosine(
    p: Tensor, z: Tensor, *, reduction: Reduction = "mean", gather_distributed: bool = False
) -> Tensor:
    """Negative cosine similarity with a stop-gradient on the target branch (BYOL, SimSiam).

    ``ℓ_b = −cos(p_b, stopgrad(z_b))``: no gradient flows into ``z``. The symmetric SimSiam loss
    is ``(negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2``.

    Args:
        p (Tensor[B, D]): predictor outputs of one view.
        z (Tensor[B, D]): projections (or target-network outputs) of the other view.
        reduction: ``"mean"`` over the batch, ``"sum"`` or ``"none"`` (``(B,)``).
        gather_distributed: the loss of the global batch (every rank's rows, in rank order) on
            every rank: its ``"mean"`` is over all rows, also when ranks hold different numbers
            of rows (the mean of per-rank means is not); a no-op without a process group.

    Returns:
        Tensor: the reduced loss in ``[−1, 1]`` per sample, in ``p``'s dtype.

    Raises:
        TypeError: non-float inputs.
        ValueError: inputs not ``(B, D)`` of the same shape, an unknown ``reduction``.

    Reference:
        Chen and He, "Exploring Simple Siamese Representation Learning", CVPR 2021; Grill et al.,
        "Bootstrap Your Own Latent", NeurIPS 2020.

    Example:
        >>> import torch
        >>> negative_cosine(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]]))
        tensor(-1.)
    """
    fn = "negative_cosine"
    check_reduction(fn, reduction)
    a = check_ndim(fn, "p", check_floating(fn, "p", p), 2, "(B, D)")
    b = check_floating(fn, "z", z)
    check_same_shape(fn, "z", b, "p", a)
    if check_bool(fn, "gather_distributed", gather_distributed):
        a, b = all_gather(a), all_gather(b.detach())
    x = upcast(a)
    unit_z = l2_normalize(b.detach().to(x.dtype), dim=1, eps=1e-8)
    loss = -(l2_normalize(x, dim=1, eps=1e-8) * unit_z).sum(dim=1)
    return reduce(loss, reduction, fn=fn, dtype=p.dtype)


def _dcl_direction(u: Tensor, v: Tensor, temperature: float) -> Tensor:
    """Per-anchor DCL of ``u`` against its positive in ``v`` and the negatives of both views."""
    sim_uu = u @ u.T / temperature
    sim_uv = u @ v.T / temperature
    negatives = torch.cat([_off_diagonal(sim_uu), _off_diagonal(sim_uv)], 1)
    return -torch.diagonal(sim_uv) + torch.logsumexp(negatives, dim=1)


def dcl(
    z1: Tensor, z2: Tensor, temperature: float = 0.1, *, gather_distributed: bool = False
) -> Tensor:
    """Decoupled contrastive learning: InfoNCE without the positive in the denominator.

    With ``u = z1/‖z1‖``, ``v = z2/‖z2‖`` and ``s(a, b) = aᵀb/τ``, for anchor ``i`` of view 1::

        ℓ_i = −s(u_i, v_i) + log Σ_{j≠i} [exp s(u_i, u_j) + exp s(u_i, v_j)]

    and symmetrically for view 2; ``L`` is the mean of both directions over the batch. This is
    the paper's Eq. 6 (one log over both negative sets, as in the authors' code); lightly's
    ``DCLLoss`` instead adds two separate log-sums, one per negative set.

    Args:
        z1 (Tensor[B, D]): embeddings of the first view.
        z2 (Tensor[B, D]): embeddings of the second view.
        temperature: ``τ > 0``.
        gather_distributed: compute the loss over the batch of every rank (module docstring).

    Returns:
        Tensor: a scalar, in ``z1``'s dtype.

    Raises:
        TypeError: non-float views, a non-bool ``gather_distributed``.
        ValueError: views not ``(B, D)`` of the same shape, ``B < 2``, ``temperature <= 0``.

    Reference:
        Yeh et al., "Decoupled Contrastive Learning", ECCV 2022.

    Example:
        >>> import torch
        >>> z = torch.eye(3)
        >>> float(dcl(z, z, temperature=1.0)) < float(dcl(z, z.roll(1, 0), temperature=1.0))
        True
    """
    fn = "dcl"
    t = check_number(fn, "temperature", temperature, low=0.0, low_open=True)
    a, b = _views(fn, z1, z2, gather_distributed, min_rows=2)
    u, v = l2_normalize(a, dim=1), l2_normalize(b, dim=1)
    loss = 0.5 * (_dcl_direction(u, v, t).mean() + _dcl_direction(v, u, t).mean())
    return loss.to(z1.dtype)


class _TwoViewLoss(nn.Module):
    """Stores ``gather_distributed``; subclasses add their hyper-parameters."""

    def __init__(self, *, gather_distributed: bool = False) -> None:
        super().__init__()
        self.gather_distributed = check_bool(
            type(self).__name__, "gather_distributed", gather_distributed
        )

    def extra_repr(self) -> str:
        return f"gather_distributed={self.gather_distributed}"


@register(barlow_twins)
class BarlowTwinsLoss(_TwoViewLoss):
    """Barlow Twins loss; see :func:`barlow_twins`.

    Example:
        >>> import torch
        >>> round(float(BarlowTwinsLoss(lambda_=0.0)(torch.eye(2), torch.eye(2))), 4)
        0.0
    """

    def __init__(self, *, lambda_: float = 5e-3, gather_distributed: bool = False) -> None:
        super().__init__(gather_distributed=gather_distributed)
        self.lambda_ = check_number(type(self).__name__, "lambda_", lambda_, low=0.0)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_}, {super().extra_repr()}"

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return barlow_twins(z1, z2, self.lambda_, gather_distributed=self.gather_distributed)


@register(vicreg)
class VICRegLoss(_TwoViewLoss):
    """VICReg loss; see :func:`vicreg`."""

    def __init__(
        self,
        *,
        sim_weight: float = 25.0,
        var_weight: float = 25.0,
        cov_weight: float = 1.0,
        gather_distributed: bool = False,
    ) -> None:
        super().__init__(gather_distributed=gather_distributed)
        name = type(self).__name__
        self.sim_weight = check_number(name, "sim_weight", sim_weight, low=0.0)
        self.var_weight = check_number(name, "var_weight", var_weight, low=0.0)
        self.cov_weight = check_number(name, "cov_weight", cov_weight, low=0.0)

    def extra_repr(self) -> str:
        weights = f"sim_weight={self.sim_weight}, var_weight={self.var_weight}"
        return f"{weights}, cov_weight={self.cov_weight}, {super().extra_repr()}"

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return vicreg(
            z1,
            z2,
            self.sim_weight,
            self.var_weight,
            self.cov_weight,
            gather_distributed=self.gather_distributed,
        )


@register(negative_cosine)
class NegativeCosineLoss(_TwoViewLoss):
    """Negative cosine similarity with stop-gradient; see :func:`negative_cosine`."""

    def __init__(self, *, reduction: Reduction = "mean", gather_distributed: bool = False) -> None:
        super().__init__(gather_distributed=gather_distributed)
        self.reduction: Reduction = check_reduction(type(self).__name__, reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, {super().extra_repr()}"

    def forward(self, p: Tensor, z: Tensor) -> Tensor:
        return negative_cosine(
            p, z, reduction=self.reduction, gather_distributed=self.gather_distributed
        )


@register(dcl)
class DCLLoss(_TwoViewLoss):
    """Decoupled contrastive loss; see :func:`dcl`."""

    def __init__(self, *, temperature: float = 0.1, gather_distributed: bool = False) -> None:
        super().__init__(gather_distributed=gather_distributed)
        self.temperature = check_number(
            type(self).__name__, "temperature", temperature, low=0.0, low_open=True
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, {super().extra_repr()}"

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return dcl(z1, z2, self.temperature, gather_distributed=self.gather_distributed)
