"""Every loss as a function, like :mod:`torch.nn.functional`.

>>> import torch, losskit.functional as LF
>>> float(LF.mse(torch.zeros(3), torch.ones(3)))
1.0
"""

from losskit.losses.classification import *  # noqa: F403
from losskit.losses.detection import *  # noqa: F403
from losskit.losses.generative import *  # noqa: F403
from losskit.losses.image import *  # noqa: F403
from losskit.losses.language import *  # noqa: F403
from losskit.losses.metric.contrastive import *  # noqa: F403
from losskit.losses.metric.distances import *  # noqa: F403
from losskit.losses.metric.label_pairs import *  # noqa: F403
from losskit.losses.metric.margins import *  # noqa: F403
from losskit.losses.metric.miners import *  # noqa: F403
from losskit.losses.metric.pairs import *  # noqa: F403
from losskit.losses.metric.proxies import *  # noqa: F403
from losskit.losses.regression import *  # noqa: F403
from losskit.losses.segmentation import *  # noqa: F403
from losskit.losses.segmentation_overlap import *  # noqa: F403
from losskit.losses.self_supervised import *  # noqa: F403
from losskit.losses.weighting import *  # noqa: F403
