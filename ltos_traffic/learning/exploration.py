"""Exploration: a per-episode epsilon schedule, masked epsilon-greedy, OU noise, a repeat limit.

Every random draw comes from a ``numpy.random.Generator`` the caller owns, so a
controller's exploration is reproducible from its seed and resumable from its
state dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class EpsilonSchedule:
    """``epsilon(k) = max(end, start · decay^k)`` for episode ``k`` (Table 4's ε schedule).

    Attributes:
        start: epsilon of the first episode.
        decay: factor applied once per finished episode.
        end: floor.
    """

    start: float
    decay: float
    end: float

    def value(self, episode: int) -> float:
        """Epsilon for episode ``episode`` (0-based)."""
        return max(self.end, self.start * self.decay**episode)


def epsilon_greedy(
    q: np.ndarray, mask: np.ndarray, epsilon: float, rng: np.random.Generator
) -> np.ndarray:
    """Masked epsilon-greedy actions for all agents at once.

    Args:
        q: ``(N, A)`` action values.
        mask: ``(N, A)`` bool, legal actions (at least one per row).
        epsilon: probability of a uniformly random legal action, per agent.
        rng: the caller's generator; untouched when ``epsilon`` is 0, so greedy
            evaluation leaves a learner's random stream as it was.

    Returns:
        ``(N,)`` int64 actions, always legal; ties go to the lowest index.
    """
    greedy = np.where(mask, q, -np.inf).argmax(axis=1).astype(np.int64)
    if epsilon <= 0.0:
        return greedy
    # A random legal action: argmax of uniform noise over the legal entries.
    noise = rng.random(mask.shape)
    random = np.where(mask, noise, -1.0).argmax(axis=1)
    explore = rng.random(mask.shape[0]) < epsilon
    return np.where(explore, random, greedy).astype(np.int64)


class RepeatLimit:
    """No agent may choose the same action more than ``max_repeat`` decisions in a row.

    In traffic a phase chosen ``max_repeat`` decisions in a row has had its maximum
    green (``max_repeat`` decision intervals): it is masked for the next decision,
    so the light must change, as an actuated controller's max green makes it. An
    agent whose only legal action is the repeated one keeps it. ``max_repeat = 0``
    means no limit.
    """

    def __init__(self, n_agents: int, max_repeat: int) -> None:
        self.max_repeat = max_repeat
        self.last = np.full(n_agents, -1, dtype=np.int64)  # -1: no action yet
        self.repeats = np.zeros(n_agents, dtype=np.int64)

    def reset(self) -> None:
        """Forget the history (an episode starts)."""
        self.last[:] = -1
        self.repeats[:] = 0

    def legal(self, mask: np.ndarray) -> np.ndarray:
        """``(N, A)`` bool: ``mask`` less every action that would exceed the limit."""
        if self.max_repeat <= 0:
            return np.asarray(mask, dtype=bool)
        out = np.array(mask, dtype=bool)
        rows = np.flatnonzero((self.repeats >= self.max_repeat) & (self.last >= 0))
        if rows.size:
            out[rows, self.last[rows]] = False
            alone = rows[~out[rows].any(axis=1)]
            out[alone, self.last[alone]] = True
        return out

    def record(self, actions: np.ndarray) -> None:
        """Count the ``(N,)`` actions just chosen."""
        actions = np.asarray(actions, dtype=np.int64)
        self.repeats = np.where(actions == self.last, self.repeats + 1, 1)
        self.last = actions.copy()


class OUNoise:
    """Ornstein-Uhlenbeck noise, ``x ← x + θ(μ - x) + σ·ε`` with ``ε ~ N(0, 1)`` (dt = 1).

    Used on the LToS high-level logits (Table 5: σ = 0.25 in traffic).
    """

    def __init__(
        self, shape: tuple[int, ...], sigma: float, theta: float = 0.15, mu: float = 0.0
    ) -> None:
        """Start at ``mu``.

        Args:
            shape: shape of one noise sample.
            sigma: scale of the Gaussian increments.
            theta: pull back towards ``mu`` per step.
            mu: long-run mean.
        """
        self.sigma = sigma
        self.theta = theta
        self.mu = np.full(shape, mu, dtype=np.float64)
        self.x = self.mu.copy()

    def reset(self, mu: np.ndarray | None = None) -> None:
        """Back to the mean (start of an episode), after setting a new mean ``mu`` if given."""
        if mu is not None:
            self.mu = np.broadcast_to(np.asarray(mu, dtype=np.float64), self.x.shape).copy()
        self.x[...] = self.mu

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Advance one step and return the new value (a copy)."""
        self.x += self.theta * (self.mu - self.x) + self.sigma * rng.standard_normal(self.x.shape)
        return self.x.copy()

    def state_dict(self) -> dict[str, Any]:
        """The process's current value and mean, as lists (for ``torch.save``)."""
        return {"x": self.x.tolist(), "mu": self.mu.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.x = np.asarray(state["x"], dtype=np.float64).reshape(self.x.shape)
        if "mu" in state:
            self.mu = np.asarray(state["mu"], dtype=np.float64).reshape(self.x.shape)
