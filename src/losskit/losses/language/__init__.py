"""Language-model losses: next-token cross-entropy, the linear head without its logits,
preference optimisation and distillation (plus the guide's reward-model and diffusion losses).

Submodules: :mod:`~losskit.losses.language.core` (next-token CE, perplexity, Bradley–Terry,
diffusion), :mod:`~losskit.losses.language.linear` (linear cross-entropy and log-probabilities),
:mod:`~losskit.losses.language.preference` (DPO, SimPO, ORPO, KTO) and
:mod:`~losskit.losses.language.distillation` (KL divergence, JSD).
"""

from losskit.losses.language import core, distillation, linear, preference
from losskit.losses.language.core import *  # noqa: F403
from losskit.losses.language.distillation import *  # noqa: F403
from losskit.losses.language.linear import *  # noqa: F403
from losskit.losses.language.preference import *  # noqa: F403

__all__ = [*core.__all__, *distillation.__all__, *linear.__all__, *preference.__all__]
