"""The training objective chosen by ``loss_type``, and the prediction rule that goes with it.

=============  ==============================================  ===================================
``loss_type``  loss                                            prediction
=============  ==============================================  ===================================
``CE``         ``CE(logits)``                                  ``argmax logits``
``focal``      ``focal(logits)``                               ``argmax logits``
``proxy``      ``Proxy(features)``                             nearest proxy (cosine)
``combined``   ``λ·CE(logits) + (1−λ)·Proxy(features)``        ``argmax λ·logits + (1−λ)·cos``
=============  ==============================================  ===================================

The proxy loss (``proxy_type``) owns the proxies; this module owns the proxy loss, so the proxies
are saved with it and get their own learning rate (``proxy_lr_multiplier``) in the optimiser.
With ``shard_proxies`` under ``torchrun`` each process holds its block of classes; scores and
checkpoints use all the proxies, gathered from the processes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

import losskit
from losskit import distributed
from losskit import functional as LF
from losskit.train.config import TrainConfig

__all__ = ["LossParts", "Objective", "build_proxy_loss", "class_similarity", "proxy_rows"]

_PROXIES_KEY = "proxy_loss.proxies"


@dataclass(frozen=True)
class LossParts:
    """One step's loss: ``total`` (what is minimised) and its unweighted parts.

    ``ce`` is the classification-head part (cross-entropy, or focal for ``loss_type="focal"``),
    ``proxy`` the proxy-loss part; a part the objective does not use is a zero tensor.
    """

    total: Tensor
    ce: Tensor
    proxy: Tensor


_PROXY_LOSSES: dict[str, Callable[..., nn.Module]] = {
    "ProxyAnchorLoss": lambda c, n, d, **k: losskit.ProxyAnchorLoss(
        n, d, alpha=c.proxy_alpha, delta=c.proxy_delta, **k
    ),
    "FocalStyleProxyAnchorLoss": lambda c, n, d, **k: losskit.FocalStyleProxyAnchorLoss(
        n,
        d,
        alpha=c.proxy_alpha,
        delta=c.proxy_delta,
        pos_gamma=c.proxy_pos_gamma,
        neg_gamma=c.proxy_neg_gamma,
        **k,
    ),
    "MultiProxyAnchorLoss": lambda c, n, d, **k: losskit.MultiProxyAnchorLoss(
        n,
        d,
        proxies_per_class=c.proxies_per_class,
        alpha=c.proxy_alpha,
        delta=c.proxy_delta,
        **k,
    ),
    "ArcFaceLoss": lambda c, n, d, **k: losskit.ArcFaceLoss(n, d, **k),
    "CosFaceLoss": lambda c, n, d, **k: losskit.CosFaceLoss(n, d, **k),
    "SubCenterArcFaceLoss": lambda c, n, d, **k: losskit.SubCenterArcFaceLoss(
        n, d, sub_centers=c.proxies_per_class, **k
    ),
    "ProxyNCALoss": lambda c, n, d, **k: losskit.ProxyNCALoss(n, d, **k),
}


def build_proxy_loss(config: TrainConfig, num_classes: int, embedding_dim: int) -> nn.Module:
    """The proxy loss named by ``config.proxy_type``, with its hyper-parameters from ``config``.

    Under a process group it gathers the batch of every process (``gather_distributed``), so
    one step equals the single-process step on the global batch and the proxies stay equal.
    With ``config.shard_proxies`` each process holds only its block of classes; the block starts
    as the same rows of the replicated proxies would (drawn whole once, from the same seed), so
    a sharded run computes what the replicated run does.
    """
    kwargs: dict[str, bool] = {}
    if distributed.is_distributed():
        kwargs["gather_distributed"] = True
        if config.shard_proxies:
            kwargs["shard_proxies"] = True
    loss = _PROXY_LOSSES[config.proxy_type](config, num_classes, embedding_dim, **kwargs)
    rows = proxy_rows(loss)
    if rows is not None:
        per_class = cast(int, loss.proxies_per_class)
        whole = torch.empty(num_classes * per_class, embedding_dim)
        nn.init.kaiming_normal_(whole, mode="fan_out")  # what the replicated loss draws
        with torch.no_grad():
            cast(Tensor, loss.proxies).copy_(whole[rows])
    return loss


def proxy_rows(proxy_loss: nn.Module | None) -> slice | None:
    """The rows of all the proxies that this process holds when they are sharded, else
    ``None``."""
    block = getattr(proxy_loss, "block", None)
    if proxy_loss is None or block is None:
        return None
    start = block.offset * cast(int, proxy_loss.proxies_per_class)
    return slice(start, start + cast(Tensor, proxy_loss.proxies).shape[0])


def class_similarity(features: Tensor, proxies: Tensor, num_classes: int) -> Tensor:
    """Cosine similarity of each sample to each class, ``(B, C)``.

    With several proxies per class (``proxies`` of ``C·K`` rows, class-major, or ``(C, K, D)``)
    a class's similarity is that of its most similar proxy.
    """
    flat = proxies.reshape(-1, proxies.shape[-1])
    sims = LF.proxy_similarity(features, flat)
    if sims.shape[1] == num_classes:
        return sims
    return sims.reshape(sims.shape[0], num_classes, -1).amax(dim=-1)


class Objective(nn.Module):
    """``loss_type``'s objective over ``(features, logits, labels)``, and its prediction rule.

    Args:
        config: supplies ``loss_type``, ``proxy_type`` and their hyper-parameters.
        num_classes: ``C``, the number of training classes.
        embedding_dim: ``D``, the size of the features.
        class_weight: optional ``(C,)`` per-class weights for the classification part.
    """

    def __init__(
        self,
        config: TrainConfig,
        num_classes: int,
        embedding_dim: int,
        class_weight: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.loss_type = config.loss_type
        self.focal_gamma = config.focal_gamma
        self.num_classes = num_classes
        lam = config.lambda_combined
        weights = {"CE": (1.0, 0.0), "focal": (1.0, 0.0), "proxy": (0.0, 1.0)}
        self.ce_weight, self.proxy_weight = weights.get(config.loss_type, (lam, 1.0 - lam))
        self.proxy_loss = (
            build_proxy_loss(config, num_classes, embedding_dim) if config.uses_proxies else None
        )
        self.class_weight: Tensor | None
        self.register_buffer("class_weight", class_weight)

    @property
    def proxies(self) -> Tensor | None:
        """The proxy loss's proxies, or ``None`` without a proxy loss."""
        if self.proxy_loss is None:
            return None
        return cast(Tensor, self.proxy_loss.proxies)

    @property
    def sharded_rows(self) -> slice | None:
        """The rows of all the proxies this process holds when they are sharded, else ``None``."""
        return proxy_rows(self.proxy_loss)

    @torch.no_grad()
    def all_proxies(self) -> Tensor | None:
        """All the proxies, ``(C·K, D)``; sharded ones are gathered from every process (each
        must call it)."""
        if self.proxies is None or self.sharded_rows is None:
            return self.proxies
        return distributed.all_gather(self.proxies.detach())

    def whole_state_dict(self) -> dict[str, Tensor]:
        """``state_dict()`` with all the proxies (gathered when sharded: every process must call
        it), so that a checkpoint loads in any number of processes."""
        state = self.state_dict()
        if self.sharded_rows is not None:
            state[_PROXIES_KEY] = cast(Tensor, self.all_proxies())
        return state

    def load_whole_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load a :meth:`whole_state_dict`; with sharded proxies this process keeps its rows."""
        rows = self.sharded_rows
        if rows is not None and _PROXIES_KEY in state:
            state = {**state, _PROXIES_KEY: state[_PROXIES_KEY][rows]}
        self.load_state_dict(state)

    def forward(self, features: Tensor, logits: Tensor, labels: Tensor) -> LossParts:
        """The weighted total and its parts for one batch."""
        zero = features.new_zeros(())
        ce = proxy = zero
        if self.ce_weight:
            logits = logits.float()
            if self.loss_type == "focal":
                ce = LF.focal(logits, labels, alpha=self.class_weight, gamma=self.focal_gamma)
            else:
                ce = LF.cross_entropy(logits, labels, weight=self.class_weight)
        if self.proxy_loss is not None and self.proxy_weight:
            proxy = self.proxy_loss(features.float(), labels)
        total = self.ce_weight * ce + self.proxy_weight * proxy
        return LossParts(total=total, ce=ce.detach(), proxy=proxy.detach())

    @torch.no_grad()
    def scores(self, features: Tensor, logits: Tensor) -> Tensor:
        """Class scores ``(B, C)`` whose argmax is the prediction (see the module table)."""
        if self.proxies is None:
            return logits.float()
        proxies = cast(Tensor, self.all_proxies())
        cos = class_similarity(features.float(), proxies.float(), self.num_classes)
        if self.loss_type == "proxy":
            return cos
        return self.ce_weight * logits.float() + self.proxy_weight * cos
