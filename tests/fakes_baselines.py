"""A tiny networked environment for the baseline unit tests (no SUMO).

``N`` agents on a line graph. Each agent's observation carries a one-hot
"target" action plus noise; choosing the target pays ``+1``. Some actions are
masked out at every step (never the target), so masking bugs show up as
illegal actions. The global state is every observation concatenated.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.experiments.runner import EpisodeResult, run_episode
from ltos_traffic.types import EnvSpec, EpisodeMetrics, TimeStep


def line_adjacency(n: int) -> np.ndarray:
    """``(n, n)`` bool adjacency of a path graph 0 - 1 - ... - n-1."""
    adj = np.zeros((n, n), dtype=bool)
    idx = np.arange(n - 1)
    adj[idx, idx + 1] = True
    adj[idx + 1, idx] = True
    return adj


class TargetEnv:
    """Fake networked env: each agent should pick the action its observation names."""

    def __init__(
        self, n_agents: int = 4, n_actions: int = 3, noise_dims: int = 2, steps: int = 6
    ) -> None:
        self.n, self.a = n_agents, n_actions
        obs_dim = n_actions + noise_dims
        self._spec = EnvSpec(
            name="target_fake",
            agent_ids=tuple(f"a{i}" for i in range(n_agents)),
            obs_dim=obs_dim,
            state_dim=n_agents * obs_dim,
            n_actions=n_actions,
            adjacency=line_adjacency(n_agents),
            episode_steps=steps,
        )
        self.rng = np.random.default_rng(0)
        self.t = 0
        self.total = 0.0
        self.target = np.zeros(n_agents, dtype=np.int64)
        self.mask = np.ones((n_agents, n_actions), dtype=bool)

    @property
    def spec(self) -> EnvSpec:
        return self._spec

    def _timestep(self, reward: np.ndarray) -> TimeStep:
        self.target = self.rng.integers(0, self.a, size=self.n)
        self.mask = self.rng.random((self.n, self.a)) < 0.6
        self.mask[np.arange(self.n), self.target] = True
        obs = np.zeros((self.n, self._spec.obs_dim), dtype=np.float32)
        obs[np.arange(self.n), self.target] = 1.0
        obs[:, self.a :] = self.rng.normal(size=(self.n, self._spec.obs_dim - self.a))
        return TimeStep(
            obs=obs,
            state=obs.reshape(-1).copy(),
            action_mask=self.mask.copy(),
            reward=reward.astype(np.float32),
            done=self.t >= self._spec.episode_steps,
            t=self.t,
            sim_time_s=float(self.t),
        )

    def reset(self, seed: int) -> TimeStep:
        self.rng = np.random.default_rng(seed)
        self.t = 0
        self.total = 0.0
        return self._timestep(np.zeros(self.n))

    def step(self, actions: np.ndarray) -> TimeStep:
        actions = np.asarray(actions)
        assert actions.shape == (self.n,) and actions.dtype == np.int64
        assert self.mask[np.arange(self.n), actions].all(), "illegal action"
        reward = (actions == self.target).astype(np.float32)
        self.total += float(reward.sum())
        self.t += 1
        return self._timestep(reward)

    def episode_metrics(self) -> EpisodeMetrics:
        return EpisodeMetrics(episode_return=self.total)

    def close(self) -> None:
        return None


def greedy_return(env: TargetEnv, controller: Any, episodes: int = 5) -> float:
    """Mean return of ``episodes`` greedy episodes without learning (seeds 100, 101, ...)."""
    runs = [
        run_episode(env, controller, seed=100 + k, explore=False, learn=False)
        for k in range(episodes)
    ]
    return float(np.mean([r.metrics.episode_return for r in runs]))


def train(env: TargetEnv, controller: Any, episodes: int) -> EpisodeResult:
    """Run ``episodes`` exploring, learning episodes (seeds 0, 1, ...); the last result."""
    result = None
    for episode in range(episodes):
        result = run_episode(env, controller, seed=episode, explore=True, learn=True)
    assert result is not None
    return result


def checkpoint_bytes(controller: Any) -> bytes:
    """The controller's state dict as ``torch.save`` writes it."""
    buf = io.BytesIO()
    torch.save(controller.state_dict(), buf)
    return buf.getvalue()


def assert_resume_is_exact(name: str, overrides: dict[str, str], episodes: int = 3) -> None:
    """Training ``episodes`` in one go equals training 1, checkpointing (through
    ``torch.save`` / ``torch.load(weights_only=True)``) into a controller built
    with another seed, and training the rest: byte-identical checkpoints, same actions."""
    env = TargetEnv(n_agents=3, steps=6)
    straight = make_controller(name, env.spec, 0, overrides=overrides)
    train(env, straight, episodes)

    first = make_controller(name, env.spec, 0, overrides=overrides)
    train(env, first, 1)
    resumed = make_controller(name, env.spec, 99, overrides=overrides)
    state = torch.load(io.BytesIO(checkpoint_bytes(first)), weights_only=True)
    resumed.load_state_dict(state)
    for episode in range(1, episodes):
        run_episode(env, resumed, seed=episode, explore=True, learn=True)

    assert checkpoint_bytes(straight) == checkpoint_bytes(resumed)  # same learned state
    assert greedy_return(env, straight) == greedy_return(env, resumed)


def assert_learns(
    env: TargetEnv, controller: Any, episodes: int, losses: set[str], floor: float
) -> None:
    """Training lifts the greedy return by 5 at least, to ``floor`` or more, and reports
    the loss statistics ``losses`` (on 3 agents x 10 steps: 30 is perfect, chance ~14)."""
    before = greedy_return(env, controller)
    result = train(env, controller, episodes)
    assert set(result.losses) >= losses
    after = greedy_return(env, controller)
    assert after > before + 5 and after >= floor, (before, after)
