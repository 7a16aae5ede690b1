"""DGN: graph convolutional Q-learning (Jiang et al., ICLR 2020), also LToS's low level.

The network and its training live in :mod:`ltos_traffic.learning.dgn`, where LToS
finds them too; this file registers the baseline: an MLP encoder, ``conv_layers``
relation blocks (attention over each agent's neighbourhood, itself included) and a
linear Q head, parameters shared by all agents, trained by joint-replay Q-learning
(no temporal relation regularisation).
"""

from __future__ import annotations

from ltos_traffic.controllers.base import register
from ltos_traffic.learning.dgn import DGNLearner


@register("dgn")
class DGN(DGNLearner):
    """DGN controller: the DGN network trained by joint-replay Q-learning."""
