"""IP: intention propagation, an entropy-regularised actor-critic whose policies talk.

Paper: C. Qu, H. Li, C. Liu, J. Xiong, J. Zhang, W. Chu, W. Wang, Y. Qi, L. Song,
"Intention Propagation for Multi-agent Reinforcement Learning", 2020
(arXiv:2004.08883).

The joint policy is approximated by a mean-field (variational) factorisation
over the agent graph, computed as message passing of "intentions" (policy
embeddings), all agents in one batched call (see :class:`IntentionNet`):

* ``e_i = MLP(o_i)`` (Table 4 encoder, 32 & 32 units in traffic);
* ``mu_i^(0) = ReLU(W_self e_i)``; for ``k = 1..rounds``:
  ``mu_i^(k) = ReLU(W_self e_i + W_nbr mean_{j in N_i, j != i} mu_j^(k-1))``;
* ``pi_i(. | o) = softmax(head(mu_i^(rounds)))`` over the legal actions.

Training is discrete soft actor-critic on the joint replay of
:mod:`ltos_traffic.learning.qlearning` (Table 4: buffer, sample and batch sizes, tau,
optimiser, learning rate, gamma). The regulariser factor 0.2 (seed appendix) is
the entropy temperature ``alpha``. Each agent's twin critics ``Q_i(o_i,
mean_j o_j, .)`` read its own and its neighbours' mean observation and learn the
reward of its closed neighbourhood, ``sum_{j in N_i} r_j`` (IP optimises the team
reward; this is its local share on a graph; ``neighbourhood_reward = false``
gives the agent's own reward). Critics and the intention network are shared by
all agents.
Exploration samples the policy, with Table 4's epsilon of uniformly random
legal actions on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from baselines._a2c import masked_logits
from ltos_traffic.controllers.base import register
from ltos_traffic.learning.buffer import Batch
from ltos_traffic.learning.nn import init_normal_, make_optimizer, mlp
from ltos_traffic.learning.qlearning import QConfig, QLearner
from ltos_traffic.types import EnvSpec, TimeStep


@dataclass(frozen=True)
class IPConfig(QConfig):
    """Table 4 (Traffic-6x6 column) plus IP's own settings.

    Inherited: gamma 0.8, lr 1e-3, optimizer rmsprop, batch_size 20,
    sample_size 1,000, buffer_capacity 10,000, tau 0.1, epsilon 0.4 / 0.9 /
    0.05, hidden (32, 32), random-normal init.
    """

    entropy_reg: float = 0.2  # entropy temperature alpha; seed appendix: regularizer factor 0.2
    neighbourhood_reward: bool = True  # critics learn sum_{j in N_i} r_j (cooperative); else r_i
    rounds: int = 2  # intention-propagation rounds (graph hops); Qu et al. use a few rounds


def neighbour_mean(x: torch.Tensor, index: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over each agent's neighbours (itself excluded) of ``x`` ``(B, N, E)``.

    Args:
        x: per-agent features.
        index: ``(N, K)`` neighbourhood indices, self first.
        mask: ``(N, K)`` bool, real slots.

    Returns:
        ``(B, N, E)``; agents without neighbours get zeros.
    """
    weights = mask[:, 1:].float()
    weights = weights / weights.sum(1, keepdim=True).clamp(min=1.0)
    return torch.einsum("bnke,nk->bne", x[:, index[:, 1:]], weights)


class IntentionNet(nn.Module):
    """Policy by intention propagation: ``(B, N, D)`` observations -> ``(B, N, A)`` logits."""

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        hidden: tuple[int, ...],
        rounds: int,
        index: torch.Tensor,
        mask: torch.Tensor,
    ) -> None:
        super().__init__()
        width = hidden[-1]
        self.rounds = rounds
        self.encoder = mlp(obs_dim, hidden)
        self.w_self = nn.Linear(width, width)
        self.w_nbr = nn.Linear(width, width, bias=False)
        self.head = nn.Linear(width, n_actions)
        self.index, self.mask = index, mask  # graph, not learned

    def intentions(self, obs: torch.Tensor) -> list[torch.Tensor]:
        """Every round's intentions ``mu^(0..rounds)``, each ``(B, N, E)``.

        ``mu^(k)_i`` depends on the observations of agents up to ``k`` hops away.
        """
        own = self.w_self(self.encoder(obs))
        mus = [torch.relu(own)]
        for _ in range(self.rounds):  # rounds over the graph; agents are batched
            mus.append(torch.relu(own + self.w_nbr(neighbour_mean(mus[-1], self.index, self.mask))))
        return mus

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.intentions(obs)[-1])


class TwinCritic(nn.Module):
    """Two Q-heads on ``[o_i, mean_j o_j]``: ``(B, N, D) -> (B, N, 2, A)``."""

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        hidden: tuple[int, ...],
        index: torch.Tensor,
        mask: torch.Tensor,
    ) -> None:
        super().__init__()
        self.q1 = mlp(2 * obs_dim, hidden, n_actions)
        self.q2 = mlp(2 * obs_dim, hidden, n_actions)
        self.index, self.mask = index, mask  # graph, not learned

    def forward(self, obs: torch.Tensor, edges: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.cat([obs, neighbour_mean(obs, self.index, self.mask)], dim=-1)
        return torch.stack([self.q1(x), self.q2(x)], dim=-2)


@register("ip")
class IP(QLearner):
    """Intention propagation: message-passing stochastic policies trained by soft actor-critic."""

    Config: ClassVar[type] = IPConfig
    config: IPConfig

    def __init__(self, spec: EnvSpec, config: IPConfig, seed: int) -> None:
        super().__init__(spec, config, seed)
        self.actor = IntentionNet(
            spec.obs_dim,
            spec.n_actions,
            config.hidden,
            config.rounds,
            self.nbr_index,
            self.nbr_mask,
        )
        init_normal_(self.actor, self.generator, config.init_std)
        self.actor_optim = make_optimizer(
            config.optimizer, list(self.actor.parameters()), config.lr
        )
        self._actor_stats: list[tuple[float, float]] = []
        closed = np.asarray(spec.adjacency, bool) | np.eye(spec.n_agents, dtype=bool)
        if not config.neighbourhood_reward:
            closed = np.eye(spec.n_agents, dtype=bool)
        self.reward_mixing = torch.from_numpy(closed.astype(np.float32))  # (N, N)

    def _make_q_net(self) -> nn.Module:
        cfg, spec = self.config, self.spec
        return TwinCritic(spec.obs_dim, spec.n_actions, cfg.hidden, self.nbr_index, self.nbr_mask)

    def policy(self, obs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities and log-probabilities ``(B, N, A)``; illegal actions get 0 / 0."""
        log_probs = torch.log_softmax(masked_logits(self.actor(obs), mask), dim=-1)
        return log_probs.exp(), log_probs.masked_fill(~mask, 0.0)

    def act(self, step: TimeStep, *, explore: bool) -> np.ndarray:
        """Sample the propagated policies (plus epsilon-random legal actions) or take the mode."""
        mask = torch.from_numpy(np.asarray(step.action_mask, bool))[None]
        with torch.no_grad():
            probs, _ = self.policy(torch.from_numpy(step.obs).float()[None], mask)
        probs = probs[0]
        if not explore:
            return probs.argmax(-1).numpy().astype(np.int64)
        sampled = torch.multinomial(probs, 1, generator=self.generator)[:, 0].numpy()
        uniform = np.where(step.action_mask, self.rng.random(mask.shape[1:]), -1.0).argmax(-1)
        random_pick = self.rng.random(self.spec.n_agents) < self.exploration_rate
        return np.where(random_pick, uniform, sampled).astype(np.int64)

    def _update(self) -> dict[str, float]:
        self._actor_stats.clear()
        stats = super()._update()
        actor_loss, entropy = np.mean(self._actor_stats, axis=0)
        return {**stats, "actor_loss": float(actor_loss), "entropy": float(entropy)}

    def _td_step(self, batch: Batch) -> float:
        """One soft actor-critic step: twin critics to the soft target, then the actor."""
        cfg = self.config
        alpha = cfg.entropy_reg
        obs, next_obs = torch.from_numpy(batch.obs), torch.from_numpy(batch.next_obs)
        mask, next_mask = torch.from_numpy(batch.mask), torch.from_numpy(batch.next_mask)
        actions = torch.from_numpy(batch.actions)
        reward = torch.from_numpy(batch.reward) * cfg.reward_scale @ self.reward_mixing.T
        with torch.no_grad():
            next_probs, next_log_probs = self.policy(next_obs, next_mask)
            next_q = self.q_target(next_obs).min(dim=-2).values
            soft_value = (next_probs * (next_q - alpha * next_log_probs)).sum(-1)
            if cfg.terminal_on_done:
                soft_value = soft_value * (~torch.from_numpy(batch.done)).float()[:, None]
            target = reward + cfg.gamma * soft_value
        q = self.q_net(obs)  # (B, N, 2, A)
        q_taken = q.gather(-1, actions[:, :, None, None].expand(-1, -1, 2, 1)).squeeze(-1)
        critic_loss = (q_taken - target[..., None]).pow(2).mean()
        self.q_optim.zero_grad()
        critic_loss.backward()
        self.q_optim.step()

        probs, log_probs = self.policy(obs, mask)
        q_min = q.detach().min(dim=-2).values
        actor_loss = (probs * (alpha * log_probs - q_min)).sum(-1).mean()
        self.actor_optim.zero_grad()
        actor_loss.backward()
        self.actor_optim.step()
        self.q_polyak(cfg.tau)
        entropy = -(probs * log_probs).sum(-1).mean()
        self._actor_stats.append((actor_loss.item(), entropy.item()))
        self.update_count += 1
        return critic_loss.item()

    def state_dict(self) -> dict[str, Any]:
        """Critics, buffer, counters and RNGs (from :class:`QLearner`) plus the actor."""
        return {
            **super().state_dict(),
            "actor": self.actor.state_dict(),
            "actor_optim": self.actor_optim.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        super().load_state_dict(state)
        self.actor.load_state_dict(state["actor"])
        self.actor_optim.load_state_dict(state["actor_optim"])
