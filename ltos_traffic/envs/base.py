"""The one environment protocol shared by traffic and the validation scenarios.

:class:`NetworkedEnv` is what every environment implements; :class:`OnRoadNetwork` is
the optional capability of environments on a SUMO road network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ltos_traffic.types import EnvSpec, EpisodeMetrics, TimeStep

if TYPE_CHECKING:
    from ltos_traffic.sim.topology import Topology


@runtime_checkable
class NetworkedEnv(Protocol):
    """A networked multi-agent environment, array-first.

    Contract (checked by ``tests/test_determinism.py``, ``tests/test_gridworlds.py`` and
    ``tests/test_traffic_env.py``):

    * ``spec`` is the same object for the life of the environment.
    * ``reset(seed)`` starts an episode; the same seed gives the same episode.
    * ``step(actions)`` takes ``(N,)`` int64 actions inside the last
      ``action_mask`` and returns the next :class:`TimeStep`; ``done`` becomes
      ``True`` on step ``spec.episode_steps``.
    * rewards are the raw per-agent rewards; algorithms do their own shaping.
    * ``TimeStep.lanes`` holds raw lane counts on traffic (max-pressure and the
      runner's per-agent queues read them) and is ``None`` on the grid-worlds.
    * ``episode_metrics()`` is valid after ``done``.
    * ``close()`` frees the simulator; it is safe to call twice.
    """

    @property
    def spec(self) -> EnvSpec: ...

    def reset(self, seed: int) -> TimeStep: ...

    def step(self, actions: np.ndarray) -> TimeStep: ...

    def episode_metrics(self) -> EpisodeMetrics: ...

    def close(self) -> None: ...


@runtime_checkable
class OnRoadNetwork(Protocol):
    """An environment on a SUMO road network (``TrafficEnv``).

    ``topology`` locates the agents: ``topology.net_file`` and ``topology.positions``
    (``(N, 2)`` m) go into ``summary.json`` and ``agents.csv`` for the report's maps.
    """

    @property
    def topology(self) -> Topology: ...
