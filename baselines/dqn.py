"""Independent DQN: one Q-network per agent's own observation and reward.

Parameters are shared by all agents (one network, applied to every agent in
one batched forward), the usual choice for homogeneous intersections; agents
differ only through their observations. There is no communication: an agent's
Q-values depend on its own observation alone. Training is the joint-replay
Q-learning of :mod:`ltos_traffic.learning.qlearning` with Table 4's settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ltos_traffic.controllers.base import register
from ltos_traffic.learning.nn import mlp
from ltos_traffic.learning.qlearning import QConfig, QLearner


@dataclass(frozen=True)
class DQNConfig(QConfig):
    """Table 4 (Traffic-6x6 column); the MLP has ``hidden`` layers then the Q head."""


class QNet(nn.Module):
    """Per-agent MLP Q-network, ``(B, N, D) -> (B, N, A)``."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...]) -> None:
        """Build ``obs_dim -> hidden... -> n_actions`` with ReLUs between."""
        super().__init__()
        self.body = mlp(obs_dim, hidden, n_actions)

    def forward(self, obs: torch.Tensor, edges: torch.Tensor | None = None) -> torch.Tensor:
        """Q-values; ``edges`` is ignored (DQN sees no neighbours)."""
        return self.body(obs)


@register("dqn")
class DQN(QLearner):
    """Independent DQN with parameter sharing, masked epsilon-greedy, soft target updates."""

    Config: ClassVar[type] = DQNConfig

    def _make_q_net(self) -> nn.Module:
        return QNet(self.spec.obs_dim, self.spec.n_actions, self.config.hidden)
