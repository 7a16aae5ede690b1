"""A tiny deterministic networked environment for learning-core tests.

``RingEnv``: ``N`` agents on a ring (agent ``i`` neighbours ``i ± 1``), plus an
optional chord so that degrees differ. Every agent sees a "signal"
``c_i(t) = (i + t + seed) mod 3`` (agent 0's signal only takes values 0 and 1,
and its action 2 is masked). Observation (6 values): one-hot of ``c_i``, the
step fraction ``t / T``, the agent's last reward and the mean last reward of its
neighbours. Reward: 1 when ``a_i == c_i``, else 0, minus 0.5 when a neighbour
also missed its signal (so neighbours' rewards interact a little). The greedy
optimum scores 1 per agent per step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.types import EnvSpec, EpisodeMetrics, TimeStep

OBS_DIM = 6
N_ACTIONS = 3


def ring_adjacency(n_agents: int, chord: bool) -> np.ndarray:
    """``(N, N)`` bool ring, plus the chord 0-2 when ``chord`` (diagonal False)."""
    adj = np.zeros((n_agents, n_agents), dtype=bool)
    for i in range(n_agents):
        adj[i, (i + 1) % n_agents] = adj[(i + 1) % n_agents, i] = True
    if chord and n_agents > 3:
        adj[0, 2] = adj[2, 0] = True
    return adj


class RingEnv:
    """Deterministic toy ``NetworkedEnv`` (see the module docstring)."""

    def __init__(self, n_agents: int = 5, episode_steps: int = 8, chord: bool = True) -> None:
        self._spec = EnvSpec(
            name="ring_test",
            agent_ids=tuple(f"a{i}" for i in range(n_agents)),
            obs_dim=OBS_DIM,
            state_dim=OBS_DIM * n_agents,
            n_actions=N_ACTIONS,
            adjacency=ring_adjacency(n_agents, chord),
            episode_steps=episode_steps,
        )
        self._mask = np.ones((n_agents, N_ACTIONS), dtype=bool)
        self._mask[0, 2] = False
        self._t = 0
        self._offset = 0
        self._last = np.zeros(n_agents, np.float32)
        self._return = 0.0
        self.closed = 0

    @property
    def spec(self) -> EnvSpec:
        return self._spec

    def _signal(self) -> np.ndarray:
        n = self._spec.n_agents
        c = (np.arange(n) + self._t + self._offset) % 3
        c[0] = (self._t + self._offset) % 2
        return c

    def _timestep(self, reward: np.ndarray) -> TimeStep:
        n = self._spec.n_agents
        obs = np.zeros((n, OBS_DIM), np.float32)
        obs[np.arange(n), self._signal()] = 1.0
        obs[:, 3] = self._t / self._spec.episode_steps
        obs[:, 4] = reward
        adj = self._spec.adjacency
        obs[:, 5] = (adj @ reward) / adj.sum(axis=1)
        return TimeStep(
            obs=obs,
            state=obs.reshape(-1).copy(),
            action_mask=self._mask.copy(),
            reward=reward.astype(np.float32),
            done=self._t >= self._spec.episode_steps,
            t=self._t,
            sim_time_s=float(self._t),
        )

    def reset(self, seed: int) -> TimeStep:
        self._t = 0
        self._offset = seed % 3
        self._return = 0.0
        self._last = np.zeros(self._spec.n_agents, np.float32)
        return self._timestep(self._last)

    def step(self, actions: np.ndarray) -> TimeStep:
        actions = np.asarray(actions)
        assert actions.shape == (self._spec.n_agents,)
        assert self._mask[np.arange(len(actions)), actions].all(), "masked action taken"
        hit = (actions == self._signal()).astype(np.float32)
        missed_nbr = (self._spec.adjacency.astype(np.float32) @ (1.0 - hit)) > 0
        reward = hit - 0.5 * missed_nbr.astype(np.float32)
        self._t += 1
        self._return += float(reward.sum())
        self._last = reward
        return self._timestep(reward)

    def episode_metrics(self) -> EpisodeMetrics:
        return EpisodeMetrics(
            episode_return=self._return,
            avg_travel_time_s=-self._return,
            sim_seconds=float(self._t),
        )

    def close(self) -> None:
        self.closed += 1


def make_learner(name: str, env: RingEnv, seed: int = 0, **overrides: object) -> Any:
    """A learning controller sized for :class:`RingEnv`: small batches, one update per step."""
    settings: dict[str, str] = {
        "update_every_steps": "1",
        "sample_size": "8",
        "batch_size": "8",
        "buffer_capacity": "500",
        "eps_decay": "0.8",
        "lr": "1e-2",
        "optimizer": "adam",
    }
    if name in ("ltos", "fixed_ltos"):
        settings |= {
            "hl_update_every_episodes": "2",
            "hl_action_interval": "2",
            "hl_sample_size": "8",
            "hl_batch_size": "8",
        }
    settings |= {k: str(v) for k, v in overrides.items()}
    return make_controller(name, env.spec, seed, overrides=settings)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny networks run ~100x faster on one thread when the machine is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def greedy_metrics(env: Any, names: Iterable[str], seed: int = 0) -> dict[str, EpisodeMetrics]:
    """Each named controller (built with seed 0) for one greedy episode on ``env``, in turn,
    every one on the same episode seed; the env stays open."""
    out = {}
    for name in names:
        ctl = make_controller(name, env.spec, 0)
        out[name] = run_episode(env, ctl, seed=seed, explore=False, learn=False).metrics
    return out
