"""On-policy rollout store and n-step returns for the actor-critic baselines.

NeurComm, ConseNet and LIO learn from the steps they have just played. A
:class:`Rollout` keeps one segment of joint steps (all agents at once) until the
controller updates, then hands it over as stacked tensors ``(T, N, ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class RolloutBatch:
    """One segment of joint steps, time first.

    Attributes:
        obs: ``(T, N, D)`` float32 observations.
        action_mask: ``(T, N, A)`` bool legal actions.
        actions: ``(T, N)`` int64 actions taken.
        reward: ``(T, N)`` float32 raw rewards received after each action.
        next_obs: ``(N, D)`` observation after the last step (for bootstrapping).
        next_action_mask: ``(N, A)`` legal actions after the last step.
        done: ``True`` when the segment ends the episode (no bootstrap).
    """

    obs: torch.Tensor
    action_mask: torch.Tensor
    actions: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    next_action_mask: torch.Tensor
    done: bool

    @property
    def steps(self) -> int:
        """Number of steps ``T`` in the segment."""
        return int(self.actions.shape[0])


class Rollout:
    """Appends joint steps and stacks them into a :class:`RolloutBatch`."""

    def __init__(self) -> None:
        self._obs: list[np.ndarray] = []
        self._mask: list[np.ndarray] = []
        self._actions: list[np.ndarray] = []
        self._reward: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._actions)

    def add(
        self, obs: np.ndarray, action_mask: np.ndarray, actions: np.ndarray, reward: np.ndarray
    ) -> None:
        """Store one joint step: what was seen, what was legal, what was done, what it paid."""
        self._obs.append(np.asarray(obs, dtype=np.float32))
        self._mask.append(np.asarray(action_mask, dtype=bool))
        self._actions.append(np.asarray(actions, dtype=np.int64))
        self._reward.append(np.asarray(reward, dtype=np.float32))

    def take(self, next_obs: np.ndarray, next_action_mask: np.ndarray, done: bool) -> RolloutBatch:
        """Stack the stored steps into a batch and empty the store."""
        batch = RolloutBatch(
            obs=torch.from_numpy(np.stack(self._obs)),
            action_mask=torch.from_numpy(np.stack(self._mask)),
            actions=torch.from_numpy(np.stack(self._actions)),
            reward=torch.from_numpy(np.stack(self._reward)),
            next_obs=torch.from_numpy(np.asarray(next_obs, dtype=np.float32)),
            next_action_mask=torch.from_numpy(np.asarray(next_action_mask, dtype=bool)),
            done=bool(done),
        )
        self.clear()
        return batch

    def clear(self) -> None:
        """Forget every stored step."""
        self._obs.clear()
        self._mask.clear()
        self._actions.clear()
        self._reward.clear()


def discounted_returns(reward: torch.Tensor, bootstrap: torch.Tensor, gamma: float) -> torch.Tensor:
    """n-step returns ``R_t = r_t + gamma * R_{t+1}`` with ``R_T = bootstrap``.

    Args:
        reward: ``(T, N)`` rewards (may carry gradients, e.g. LIO's incentives).
        bootstrap: ``(N,)`` value after the last step (zeros at an episode end).
        gamma: discount per step.

    Returns:
        ``(T, N)`` returns, differentiable in ``reward`` and ``bootstrap``.
    """
    steps = reward.shape[0]
    # R_t = sum_k gamma^(k-t) r_k + gamma^(T-t) bootstrap, as one triangular matrix product.
    t = torch.arange(steps, dtype=reward.dtype)
    power = t[None, :] - t[:, None]
    weights = torch.where(power >= 0, gamma ** power.clamp(min=0), torch.zeros(()))
    tail = gamma ** (steps - t)
    return weights @ reward + tail[:, None] * bootstrap[None, :]
