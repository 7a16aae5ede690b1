"""Networked prisoner's dilemma: agents on a line or ring play the dilemma with every neighbour.

Every step each agent picks one action, cooperate (0) or defect (1), and plays
it against each of its graph neighbours. Its reward is the sum of its payoffs
over those games. Defecting is individually dominant; mutual cooperation
maximises the sum of rewards. The seed's prisoner setting has two agents, so
the default is a line of two, where an agent with selfishness 0.5 that keeps
half of its reward and receives half of its neighbour's optimises exactly the
average return.

Observation of agent ``i`` (``D = 4``, float32):

* ``obs[i, 0]``: 1 if ``i`` cooperated at the last step, else 0;
* ``obs[i, 1]``: fraction of ``i``'s neighbours that cooperated at the last step;
* ``obs[i, 2]``: 1 at the first step of an episode (no last step yet), else 0;
* ``obs[i, 3]``: ``t / episode_steps``, the elapsed fraction of the episode.

Global state (``S = N + 2``): every agent's last-step cooperation flag, then the
first-step flag and the elapsed fraction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ltos_traffic.errors import UserError
from ltos_traffic.scenario import Scenario, merged_params
from ltos_traffic.types import EnvSpec, EpisodeMetrics, TimeStep

COOPERATE = 0
DEFECT = 1

# Observation layout (indices into ``obs[i]``), declared to controllers as EnvSpec.obs_names.
OBS_OWN_COOPERATED = 0
OBS_NEIGHBOURS_COOPERATED = 1
OBS_FIRST_STEP = 2
OBS_ELAPSED = 3
OBS_DIM = 4
OBS_NAMES = ("own_cooperated", "neighbours_cooperated", "first_step", "elapsed")

TOPOLOGIES = ("line", "ring")

# Scenario [params] keys and their defaults: a donation game with benefit 2 and
# cost 1, so mutual cooperation pays 1 per game and mutual defection 0.
DEFAULT_PARAMS: dict[str, Any] = {
    "topology": "line",
    "n_agents": 2,
    "temptation": 2.0,
    "reward": 1.0,
    "punishment": 0.0,
    "sucker": -1.0,
}


def line_or_ring(n_agents: int, topology: str) -> np.ndarray:
    """``(N, N)`` bool adjacency of a line (path) or ring (cycle) of ``n_agents``."""
    adjacency = np.zeros((n_agents, n_agents), dtype=bool)
    idx = np.arange(n_agents - 1)
    adjacency[idx, idx + 1] = True
    if topology == "ring":
        adjacency[n_agents - 1, 0] = True
    return adjacency | adjacency.T


class PrisonerEnv:
    """The networked prisoner's dilemma as a :class:`~ltos_traffic.envs.base.NetworkedEnv`.

    Args:
        scenario: a scenario of kind ``"prisoner"``; ``scenario.params`` may set
            ``topology`` (``"line"`` or ``"ring"``), ``n_agents`` and the four
            payoffs ``temptation > reward > punishment > sucker`` (per game, for
            the row player), with ``2 * reward > temptation + sucker``.
            ``scenario.episode_seconds`` is the number of steps per episode.
    """

    def __init__(self, scenario: Scenario) -> None:
        params = _check_params(scenario.name, scenario.params)
        n = int(params["n_agents"])
        self.graph = str(params["topology"])  # "line" or "ring"
        self.adjacency = line_or_ring(n, self.graph)
        # payoff[a_i, a_j]: what agent i earns in one game.
        self.payoff = np.array(
            [[params["reward"], params["sucker"]], [params["temptation"], params["punishment"]]],
            dtype=np.float64,
        )
        self.degree = self.adjacency.sum(axis=1).astype(np.float64)
        self._spec = EnvSpec(
            name=scenario.name,
            agent_ids=tuple(f"agent{i}" for i in range(n)),
            obs_dim=OBS_DIM,
            state_dim=n + 2,
            n_actions=2,
            adjacency=self.adjacency.copy(),
            episode_steps=scenario.episode_steps,
            traffic=None,
            obs_names=OBS_NAMES,
        )
        self._t = 0
        self._last = np.zeros(n, dtype=np.int64)
        self._return = 0.0
        self._cooperations = 0

    @property
    def spec(self) -> EnvSpec:
        """The static description (the same object for the life of the env)."""
        return self._spec

    @property
    def cooperative_optimum(self) -> float:
        """Mean reward per agent and step when everyone cooperates."""
        return float(self.payoff[COOPERATE, COOPERATE] * self.degree.mean())

    def reset(self, seed: int) -> TimeStep:
        """Start an episode. The game is deterministic, so ``seed`` changes nothing."""
        del seed
        self._t = 0
        self._last = np.zeros(self._spec.n_agents, dtype=np.int64)
        self._return = 0.0
        self._cooperations = 0
        return self._timestep(np.zeros(self._spec.n_agents, dtype=np.float32))

    def step(self, actions: np.ndarray) -> TimeStep:
        """Play one round of every neighbour game.

        Args:
            actions: ``(N,)`` int, 0 = cooperate, 1 = defect.
        """
        if self._t >= self._spec.episode_steps:
            raise RuntimeError("episode is over; call reset() first")
        acts = np.asarray(actions, dtype=np.int64).reshape(-1)
        if acts.shape != (self._spec.n_agents,) or acts.min() < 0 or acts.max() > 1:
            raise ValueError(f"actions must be (N,) in {{0, 1}}, got {actions!r}")
        # games[i, j] = payoff of i against j; kept only where i and j are neighbours.
        games = self.payoff[acts[:, None], acts[None, :]]
        reward = np.where(self.adjacency, games, 0.0).sum(axis=1).astype(np.float32)
        self._t += 1
        self._last = acts
        self._return += float(reward.sum())
        self._cooperations += int((acts == COOPERATE).sum())
        return self._timestep(reward)

    def episode_metrics(self) -> EpisodeMetrics:
        """Return, cooperation rate and mean reward per agent-step of the episode."""
        agent_steps = max(self._t * self._spec.n_agents, 1)
        mean_reward = self._return / agent_steps
        return EpisodeMetrics(
            episode_return=self._return,
            sim_seconds=float(self._t),
            extra={
                "cooperation_rate": self._cooperations / agent_steps,
                "mean_reward_per_agent_step": mean_reward,
                "fraction_of_optimum": (
                    mean_reward / self.cooperative_optimum if self.cooperative_optimum else np.nan
                ),
            },
        )

    def close(self) -> None:
        """Nothing to free (pure numpy)."""

    def _timestep(self, reward: np.ndarray) -> TimeStep:
        n = self._spec.n_agents
        first = self._t == 0
        cooperated = np.where(first, 0.0, (self._last == COOPERATE).astype(np.float64))
        neighbours = (self.adjacency @ cooperated) / np.maximum(self.degree, 1.0)
        elapsed = self._t / self._spec.episode_steps
        obs = np.empty((n, OBS_DIM), dtype=np.float32)
        obs[:, OBS_OWN_COOPERATED] = cooperated
        obs[:, OBS_NEIGHBOURS_COOPERATED] = neighbours
        obs[:, OBS_FIRST_STEP] = float(first)
        obs[:, OBS_ELAPSED] = elapsed
        state = np.concatenate([cooperated, [float(first), elapsed]]).astype(np.float32)
        return TimeStep(
            obs=obs,
            state=state,
            action_mask=np.ones((n, 2), dtype=bool),
            reward=reward,
            done=self._t >= self._spec.episode_steps,
            t=self._t,
            sim_time_s=float(self._t),
        )


def _check_params(name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    params = merged_params(name, raw, DEFAULT_PARAMS)
    topology = params["topology"]
    if topology not in TOPOLOGIES:
        raise UserError(f"scenario {name}: topology must be one of {TOPOLOGIES}, got {topology!r}")
    n = params["n_agents"]
    least = 3 if topology == "ring" else 2
    if isinstance(n, bool) or not isinstance(n, int) or n < least:
        raise UserError(f"scenario {name}: a {topology} needs n_agents >= {least}, got {n!r}")
    for key in ("temptation", "reward", "punishment", "sucker"):
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"scenario {name}: params.{key} must be a number, got {value!r}")
    t, r, p, s = (float(params[k]) for k in ("temptation", "reward", "punishment", "sucker"))
    if not (t > r > p > s and 2 * r > t + s):
        raise UserError(
            f"scenario {name}: payoffs must satisfy temptation > reward > punishment > sucker "
            f"and 2*reward > temptation + sucker (a prisoner's dilemma); "
            f"got T={t} R={r} P={p} S={s}"
        )
    return params
