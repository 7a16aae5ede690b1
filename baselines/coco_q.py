"""Tabular Coco-Q (Sodomka, Hilliard, Littman & Greenwald, ICML 2013), on the prisoner graph.

Coco-Q is Q-learning for two-player general-sum games with side payments. Each
pair keeps both players' joint-action values ``Q_1(s, a_1, a_2)`` and
``Q_2(s, a_1, a_2)`` and backs up the *coco value* of the next state's bimatrix
game ``(A, B) = (Q_1(s'), Q_2(s'))``: the cooperative part ``maxmax (A + B) / 2``
(both play the joint action with the largest total) plus or minus the
competitive part, the minimax value of the zero-sum game ``(A - B) / 2``::

    coco_1 = maxmax((A + B) / 2) + minimax((A - B) / 2)
    coco_2 = maxmax((A + B) / 2) - minimax((A - B) / 2)
    Q_k(s, a) <- Q_k(s, a) + alpha (r_k + gamma coco_k(s') - Q_k(s, a))

On the networked prisoner's dilemma every graph edge is one such pair. The
state of an edge is the pair's joint action at the last step (4 states) or
"first step" (1 state), read from the prisoner observation. Choices made here,
since the paper covers two players only:

* the reward of agent ``i`` in the game of edge ``(i, j)`` is ``r_i / deg(i)``:
  exact for the default two-agent line. On larger graphs it is an even split
  that credits each pair table with only ``1 / deg`` of the benefit a
  cooperator gives its partner, so (for example) the default donation game on
  a ring (benefit 2 = cost 1 x degree 2) looks neutral to the pair tables and
  Coco-Q does not reliably cooperate there; the method is a two-player one;
* agent ``i`` plays the action that maximises, summed over its edges, the best
  total ``(Q_1 + Q_2)`` reachable with that action (the coordinated action of
  coco play; ties go to cooperate), with epsilon-greedy exploration;
* episode ends are time limits, so the backup bootstraps through them.

Only the prisoner scenario fits (two actions and its observation layout); the
constructor raises :class:`~ltos_traffic.errors.UserError` elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ltos_traffic.controllers.base import register
from ltos_traffic.errors import UserError
from ltos_traffic.learning.exploration import EpsilonSchedule, epsilon_greedy
from ltos_traffic.learning.rng import restore_rng, rng_state
from ltos_traffic.types import EnvSpec, TimeStep, Transition

N_STATES = 5  # first step, then last joint action (CC, CD, DC, DD) of the pair
READS = ("own_cooperated", "first_step")  # observation columns read (EnvSpec.obs_names)


@dataclass(frozen=True)
class CocoQConfig:
    """Coco-Q hyperparameters (prisoner column of the seed where it has one).

    Attributes:
        step_size: learning rate alpha of the tabular update (seed appendix D: 0.5).
        gamma: discount per step (Table 4, prisoner: 0.99).
        eps_start: exploration rate of episode 0 (Table 4, prisoner: 0.8).
        eps_decay: factor on epsilon per episode (Table 4, prisoner: 1, i.e. fixed).
        eps_end: exploration floor (Table 4, prisoner: 0.8).
    """

    step_size: float = 0.5
    gamma: float = 0.99
    eps_start: float = 0.8
    eps_decay: float = 1.0
    eps_end: float = 0.8


def coco_values(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coco values of many 2x2 bimatrix games at once.

    Args:
        a: ``(..., 2, 2)`` row player's payoffs, ``a[..., row, col]``.
        b: ``(..., 2, 2)`` column player's payoffs, same layout.

    Returns:
        ``(coco_row, coco_col)``, each ``(...)``.
    """
    cooperative = ((a + b) / 2).max(axis=(-2, -1))
    competitive = zero_sum_value((a - b) / 2)
    return cooperative + competitive, cooperative - competitive


def zero_sum_value(m: np.ndarray) -> np.ndarray:
    """Value of 2x2 zero-sum games ``m[..., row, col]`` (row maximises; mixed strategies)."""
    lower = m.min(axis=-1).max(axis=-1)  # maximin over pure rows
    upper = m.max(axis=-2).min(axis=-1)  # minimax over pure columns
    # Without a saddle point both players mix; the classic 2x2 formula then applies
    # (its denominator is non-zero exactly when no saddle point exists).
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    denom = a + d - b - c
    safe = np.where(np.isclose(denom, 0.0), 1.0, denom)
    mixed = (a * d - b * c) / safe
    return np.where(np.isclose(lower, upper), lower, mixed)


@register("coco_q")
class CocoQ:
    """Pairwise tabular Coco-Q on the prisoner graph (see the module docstring)."""

    Config: ClassVar[type] = CocoQConfig
    learns: ClassVar[bool] = True

    def __init__(self, spec: EnvSpec, config: CocoQConfig, seed: int) -> None:
        """Zero tables for every edge; raises :class:`UserError` off the prisoner scenario."""
        if spec.traffic is not None or spec.n_actions != 2 or not set(READS) <= set(spec.obs_names):
            raise UserError(
                f"coco_q is tabular and only fits the prisoner scenario (2 actions, its "
                f"observation); {spec.name} has {spec.n_actions} actions and "
                f"{spec.obs_dim} observation values"
            )
        if not 0.0 < config.step_size <= 1.0 or not 0.0 <= config.gamma < 1.0:
            raise UserError("coco_q needs step_size in (0, 1] and gamma in [0, 1)")
        self.spec = spec
        self.config = config
        self.seed = seed
        self.own_col, self.first_step_col = (spec.obs_names.index(name) for name in READS)
        self.rng = np.random.default_rng(seed)
        first, second = np.nonzero(np.triu(spec.adjacency, k=1))
        self.first = first.astype(np.int64)  # (E,) lower-index agent of each edge
        self.second = second.astype(np.int64)  # (E,) higher-index agent
        self.degree = spec.adjacency.sum(axis=1).astype(np.float64)  # (N,)
        # q[e, s, a_first, a_second, k]: value for player k (0 = first, 1 = second).
        self.q = np.zeros((len(first), N_STATES, 2, 2, 2), dtype=np.float64)
        self.epsilon = EpsilonSchedule(config.eps_start, config.eps_decay, config.eps_end)
        self.episode = 0
        self.update_count = 0

    def edge_states(self, obs: np.ndarray) -> np.ndarray:
        """``(E,)`` state index of every edge from prisoner observations ``(N, D)``."""
        defected = obs[:, self.own_col] < 0.5
        joint = 1 + 2 * defected[self.first] + defected[self.second]
        return np.where(obs[self.first, self.first_step_col] > 0.5, 0, joint).astype(np.int64)

    def action_scores(self, obs: np.ndarray) -> np.ndarray:
        """``(N, 2)``: per agent and own action, the summed best edge totals ``Q_1 + Q_2``."""
        edges = np.arange(len(self.first))
        total = self.q[edges, self.edge_states(obs)].sum(axis=-1)  # (E, 2, 2)
        scores = np.zeros((self.spec.n_agents, 2))
        np.add.at(scores, self.first, total.max(axis=2))  # first player's row, best column
        np.add.at(scores, self.second, total.max(axis=1))  # second player's column, best row
        return scores

    def act(self, step: TimeStep, *, explore: bool) -> np.ndarray:
        """Coordinated (coco) actions ``(N,)``, epsilon-greedy when exploring."""
        epsilon = self.epsilon.value(self.episode) if explore else 0.0
        return epsilon_greedy(self.action_scores(step.obs), step.action_mask, epsilon, self.rng)

    def observe(self, transition: Transition) -> dict[str, float]:
        """One tabular Coco-Q backup on every edge; returns the mean absolute TD error."""
        step, nxt = transition.step, transition.next_step
        edges = np.arange(len(self.first))
        s = self.edge_states(step.obs)
        s_next = self.edge_states(nxt.obs)
        a1 = transition.actions[self.first]
        a2 = transition.actions[self.second]
        share = nxt.reward / np.maximum(self.degree, 1.0)  # (N,) reward per game
        reward = np.stack([share[self.first], share[self.second]], axis=1)  # (E, 2)
        nq = self.q[edges, s_next]  # (E, 2, 2, 2)
        coco = np.stack(coco_values(nq[..., 0], nq[..., 1]), axis=1)  # (E, 2)
        td = reward + self.config.gamma * coco - self.q[edges, s, a1, a2]
        self.q[edges, s, a1, a2] += self.config.step_size * td
        self.update_count += 1
        if nxt.done:
            self.episode += 1
        return {"td_error": float(np.abs(td).mean()) if td.size else 0.0}

    def state_dict(self) -> dict[str, Any]:
        """Tables, counters and the RNG state (``weights_only``-loadable)."""
        return {
            "q": torch.from_numpy(self.q.copy()),
            "rng": rng_state(self.rng),
            "episode": self.episode,
            "update_count": self.update_count,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`.

        Raises:
            ValueError: when the tables do not fit this graph.
        """
        q = state["q"].numpy()
        if q.shape != self.q.shape:
            raise ValueError(f"coco_q table shape {q.shape} does not fit {self.q.shape}")
        self.q = q.astype(np.float64).copy()
        restore_rng(self.rng, state["rng"])
        self.episode = int(state["episode"])
        self.update_count = int(state["update_count"])
