"""ConseNet: independent LSTM actor-critics with a consensus update of the critic.

Paper: T. Chu, S. Chinchali, S. Katti, "Multi-agent Reinforcement Learning for
Networked System Control", ICLR 2020 (the consensus baseline there, after Zhang
et al. 2018, "Fully decentralized multi-agent RL with networked agents").

Every agent ``i`` has its own encoder of its and its neighbours' observations,
LSTM, actor head and critic head (no messages, no fingerprints). Rewards are
spatially discounted as in NeurComm (Table 6 alpha). After every optimiser
step, each agent replaces its critic-side parameters (LSTM and critic head,
which is where the authors' code applies consensus) by the mean of its own and
its neighbours' copies: ``theta_i <- mean_{j in N_i} theta_j``. The actor head
and the observation encoder stay local.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from baselines._a2c import LSTMA2C, A2CConfig, AgentLinear, Carry
from ltos_traffic.controllers.base import register
from ltos_traffic.types import EnvSpec


@dataclass(frozen=True)
class ConseNetConfig(A2CConfig):
    """ConseNet hyperparameters: the fields of :class:`A2CConfig` (Table 6, traffic defaults)."""


def consensus_matrix(nbr_index: torch.Tensor, nbr_mask: torch.Tensor) -> torch.Tensor:
    """``(N, N)`` row-stochastic averaging matrix: ``M[i, j] = 1/|N_i|`` for ``j in N_i``."""
    n = nbr_index.shape[0]
    m = torch.zeros(n, n)
    rows = torch.arange(n)[:, None].expand_as(nbr_index)
    m[rows[nbr_mask], nbr_index[nbr_mask]] = 1.0
    return m / m.sum(dim=1, keepdim=True)


@register("consenet")
class ConseNet(LSTMA2C):
    """ConseNet controller: local LSTM A2C whose critics agree with their neighbours'."""

    Config: ClassVar[type] = ConseNetConfig

    def __init__(self, spec: EnvSpec, config: A2CConfig, seed: int) -> None:
        super().__init__(spec, config, seed)
        self.mixing = consensus_matrix(self.nbr_index, self.nbr_mask)

    def _build_encoder(self, gen: torch.Generator) -> dict[str, nn.Module]:
        n, k, d = self.spec.n_agents, self.nbr_index.shape[1], self.spec.obs_dim
        return {"enc_obs": AgentLinear(n, k * d, self.config.hidden, gen, gain=self.gain)}

    def _lstm_in_dim(self) -> int:
        return self.config.hidden

    def _lstm_input(self, obs: torch.Tensor, carry: Carry) -> torch.Tensor:
        own_and_nbr_obs = torch.cat([obs, self.neighbour_features(obs)], dim=-1)
        return torch.relu(self.net["enc_obs"](own_and_nbr_obs))

    def critic_parameters(self) -> list[nn.Parameter]:
        """The parameters that take part in consensus, each ``(N, ...)``."""
        return [*self.net["lstm"].parameters(), *self.net["critic"].parameters()]

    def _after_step(self) -> dict[str, float]:
        return {"consensus_gap": self.consensus_step()}

    @torch.no_grad()
    def consensus_step(self) -> float:
        """Average every critic parameter over each agent's neighbourhood, in place.

        Returns:
            The mean absolute change of the parameters (how far agents disagreed).
        """
        change, count = 0.0, 0
        for param in self.critic_parameters():
            mixed = torch.einsum("ij,j...->i...", self.mixing, param)
            change += float((mixed - param).abs().sum())
            count += param.numel()
            param.copy_(mixed)
        return change / max(count, 1)
