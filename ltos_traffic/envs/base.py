"""The one environment protocol shared by traffic and the validation scenarios."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ltos_traffic.types import EnvSpec, EpisodeMetrics, TimeStep


@runtime_checkable
class NetworkedEnv(Protocol):
    """A networked multi-agent environment, array-first.

    Contract (checked by ``tests/test_env_contract.py``):

    * ``spec`` is the same object for the life of the environment.
    * ``reset(seed)`` starts an episode; the same seed gives the same episode.
    * ``step(actions)`` takes ``(N,)`` int64 actions inside the last
      ``action_mask`` and returns the next :class:`TimeStep`; ``done`` becomes
      ``True`` on step ``spec.episode_steps``.
    * rewards are the raw per-agent rewards; algorithms do their own shaping.
    * ``episode_metrics()`` is valid after ``done``.
    * ``close()`` frees the simulator; it is safe to call twice.
    """

    @property
    def spec(self) -> EnvSpec: ...

    def reset(self, seed: int) -> TimeStep: ...

    def step(self, actions: np.ndarray) -> TimeStep: ...

    def episode_metrics(self) -> EpisodeMetrics: ...

    def close(self) -> None: ...
