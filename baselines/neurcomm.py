"""NeurComm: A2C with LSTM and neural communication between neighbours.

Paper: T. Chu, S. Chinchali, S. Katti, "Multi-agent Reinforcement Learning for
Networked System Control", ICLR 2020. Authors' code: cts198859/deeprl_network.

Every agent ``i`` has its own networks (no parameter sharing). At each step its
LSTM input concatenates three encodings:

* its observation and its neighbours' observations,
* its neighbours' policy fingerprints (their action probabilities of the last step),
* its neighbours' messages (their LSTM hidden states of the last step).

Messages are not cut from the graph: the update replays the segment and the
gradient of agent ``i``'s loss flows into its neighbours' LSTMs through the
messages (differentiable communication). Rewards are spatially discounted,
``r~_i = sum_j alpha^d(i,j) r_j`` (Table 6: alpha 1 prisoner, 0.33 jungle,
0.1 traffic). The A2C update, segment store and per-agent layers are shared
with ConseNet in :mod:`baselines._a2c`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from baselines._a2c import LSTMA2C, A2CConfig, AgentLinear, Carry
from ltos_traffic.controllers.base import register


@dataclass(frozen=True)
class NeurCommConfig(A2CConfig):
    """NeurComm hyperparameters: the fields of :class:`A2CConfig` (Table 6, traffic defaults)."""


@register("neurcomm")
class NeurComm(LSTMA2C):
    """NeurComm controller: per-agent LSTM A2C reading neighbours' messages and fingerprints."""

    Config: ClassVar[type] = NeurCommConfig

    def _build_encoder(self, gen: torch.Generator) -> dict[str, nn.Module]:
        n, k = self.spec.n_agents, self.nbr_index.shape[1]
        d, a, hidden, g = self.spec.obs_dim, self.spec.n_actions, self.config.hidden, self.gain
        return {
            "enc_obs": AgentLinear(n, k * d, hidden, gen, g),  # own + neighbours' observations
            "enc_fp": AgentLinear(n, (k - 1) * a, hidden, gen, g),  # neighbours' fingerprints
            "enc_msg": AgentLinear(n, (k - 1) * hidden, hidden, gen, g),  # neighbours' messages
        }

    def _lstm_in_dim(self) -> int:
        return 3 * self.config.hidden

    def _lstm_input(self, obs: torch.Tensor, carry: Carry) -> torch.Tensor:
        return self.communicate(obs, carry)

    def communicate(self, obs: torch.Tensor, carry: Carry) -> torch.Tensor:
        """Message passing: each agent gathers its neighbours' observations, fingerprints and
        hidden states of the previous step, encodes each, and concatenates them.

        Args:
            obs: ``(N, D)`` observations of this step.
            carry: last step's ``(h, c, fingerprint)``; ``h`` is the message sent.

        Returns:
            ``(N, 3 * hidden)`` LSTM inputs.
        """
        h_prev, _, fingerprint = carry
        own_and_nbr_obs = torch.cat([obs, self.neighbour_features(obs)], dim=-1)
        parts = [
            self.net["enc_obs"](own_and_nbr_obs),
            self.net["enc_fp"](self.neighbour_features(fingerprint)),
            self.net["enc_msg"](self.neighbour_features(h_prev)),
        ]
        return torch.relu(torch.cat(parts, dim=-1))
