"""Typed records shared by environments, controllers and the runner.

Everything here is array-first: agents are integer indices ``0..N-1`` in the
fixed order of :attr:`EnvSpec.agent_ids`; SUMO's string ids stop at the
simulator boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


class LaneCounts(NamedTuple):
    """Raw lane state at one decision step (traffic only).

    Attributes:
        vehicles: ``(L,)`` float32, vehicles on each tracked lane.
        halting: ``(L,)`` float32, vehicles slower than 0.1 m/s on each lane.
    """

    vehicles: np.ndarray
    halting: np.ndarray


@dataclass(frozen=True)
class Movement:
    """One movement (a signal link) of an intersection, as lane indices.

    Attributes:
        in_lane: index into :class:`LaneCounts` of the incoming lane.
        out_lane: index into :class:`LaneCounts` of the outgoing lane.
    """

    in_lane: int
    out_lane: int


@dataclass(frozen=True)
class TrafficSpec:
    """What classical traffic controllers need to know about the network.

    Attributes:
        n_lanes: number of tracked lanes ``L`` (incoming and outgoing of all agents).
        phase_movements: per agent, per action (green phase), the movements that
            phase serves; an empty tuple for a padded (masked) action.
        phase_names: per agent, per action, a readable name ("WE-through", ...).
        incoming_lanes: per agent, its incoming lane indices (observation order).
        decision_interval_s: simulated seconds between two decisions.
        lane_capacity: per tracked lane, the vehicles that fit on it (length / 7.5 m);
            empty when unknown.
    """

    n_lanes: int
    phase_movements: tuple[tuple[tuple[Movement, ...], ...], ...]
    phase_names: tuple[tuple[str, ...], ...]
    incoming_lanes: tuple[tuple[int, ...], ...]
    decision_interval_s: float
    lane_capacity: tuple[float, ...] = ()


@dataclass(frozen=True, eq=False)
class EnvSpec:
    """Static description of a networked environment. The same object for a whole run.

    Attributes:
        name: scenario name, e.g. ``"grid6x6_v1"``.
        agent_ids: agent names in fixed order (SUMO traffic-light ids for traffic).
        obs_dim: per-agent observation size ``D`` (padded to the largest agent).
        state_dim: size ``S`` of the global state (for centralised methods such as QMIX).
        n_actions: actions per agent ``A`` (the largest; smaller sets are masked).
        adjacency: ``(N, N)`` bool, ``True`` where two agents are neighbours; the
            diagonal is ``False`` (use :func:`neighbourhood` for "incl. itself").
        episode_steps: decision steps in one episode.
        traffic: traffic-specific layout, ``None`` for the grid-world scenarios.
        obs_names: names of the ``D`` observation columns, where an environment
            declares them (prisoner: ``own_cooperated``, ``first_step``, ...) for
            controllers that read particular columns (tabular Coco-Q); empty otherwise.
    """

    name: str
    agent_ids: tuple[str, ...]
    obs_dim: int
    state_dim: int
    n_actions: int
    adjacency: np.ndarray
    episode_steps: int
    traffic: TrafficSpec | None = None
    obs_names: tuple[str, ...] = ()

    @property
    def n_agents(self) -> int:
        """Number of agents ``N``."""
        return len(self.agent_ids)


@dataclass(frozen=True, eq=False)
class TimeStep:
    """What every environment returns from ``reset`` and ``step``.

    Attributes:
        obs: ``(N, D)`` float32 observations.
        state: ``(S,)`` float32 global state.
        action_mask: ``(N, A)`` bool, legal actions; every row has one ``True`` at least.
        reward: ``(N,)`` float32 raw per-agent reward of the last step (zeros after reset).
        done: ``True`` on the last step of an episode.
        t: decision-step index within the episode (0 after reset).
        sim_time_s: simulated time, seconds.
        lanes: raw lane counts (traffic only).
    """

    obs: np.ndarray
    state: np.ndarray
    action_mask: np.ndarray
    reward: np.ndarray
    done: bool
    t: int
    sim_time_s: float
    lanes: LaneCounts | None = None


@dataclass(frozen=True, eq=False)
class Transition:
    """One joint transition, handed to ``Controller.observe``."""

    step: TimeStep
    actions: np.ndarray
    next_step: TimeStep


@dataclass(frozen=True)
class EpisodeMetrics:
    """Per-episode figures every environment reports (traffic fills all of them).

    Attributes:
        episode_return: sum over steps and agents of the raw reward.
        avg_travel_time_s: mean travel time of vehicles that arrived, seconds
            (SUMO tripinfo ``duration``: arrival minus departure).
        avg_travel_time_all_s: mean over every vehicle that departed, counting
            vehicles still in the network with their time so far (the CityFlow
            convention), seconds.
        avg_delay_s: mean delay of vehicles that arrived, seconds (SUMO tripinfo
            ``timeLoss``: the time lost against driving at the desired speed;
            the delay RESCO and most signal-control papers report).
        avg_delay_all_s: the same over every vehicle that departed, counting
            vehicles still in the network with their delay so far, seconds.
        avg_journey_time_s: mean over every vehicle due to depart in the
            episode of the time from its scheduled departure to its arrival or
            to the end: waiting to be inserted counts, so a controller cannot
            score by keeping vehicles out of a gridlocked network (the figure
            that ranks controllers under congestion), seconds.
        arrived: vehicles that reached their destination.
        departed: vehicles inserted into the network.
        running: vehicles still in the network at the end.
        waiting_to_insert: vehicles loaded but not yet inserted at the end.
        throughput: arrived vehicles per simulated hour.
        mean_queue: mean over decision steps and agents of halting vehicles on
            incoming lanes.
        mean_waiting_time_s: mean tripinfo ``waitingTime`` of arrived vehicles.
        teleports: SUMO teleports (jams resolved by teleporting).
        sim_seconds: simulated time of the episode.
        extra: scenario-specific extras (e.g. cooperation rate on prisoner).
    """

    episode_return: float
    avg_travel_time_s: float = float("nan")
    avg_travel_time_all_s: float = float("nan")
    avg_delay_s: float = float("nan")
    avg_delay_all_s: float = float("nan")
    avg_journey_time_s: float = float("nan")
    arrived: int = 0
    departed: int = 0
    running: int = 0
    waiting_to_insert: int = 0
    throughput: float = float("nan")
    mean_queue: float = float("nan")
    mean_waiting_time_s: float = float("nan")
    teleports: int = 0
    sim_seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def as_row(self) -> dict[str, float]:
        """Flat ``{name: value}`` row for CSV files (extras prefixed by nothing)."""
        row: dict[str, float] = {
            "episode_return": self.episode_return,
            "avg_travel_time_s": self.avg_travel_time_s,
            "avg_travel_time_all_s": self.avg_travel_time_all_s,
            "avg_delay_s": self.avg_delay_s,
            "avg_delay_all_s": self.avg_delay_all_s,
            "avg_journey_time_s": self.avg_journey_time_s,
            "arrived": self.arrived,
            "departed": self.departed,
            "running": self.running,
            "waiting_to_insert": self.waiting_to_insert,
            "throughput": self.throughput,
            "mean_queue": self.mean_queue,
            "mean_waiting_time_s": self.mean_waiting_time_s,
            "teleports": self.teleports,
            "sim_seconds": self.sim_seconds,
        }
        row.update(self.extra)
        return row


def neighbourhood(adjacency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Padded neighbourhood lists including the agent itself, self first.

    Args:
        adjacency: ``(N, N)`` bool adjacency (diagonal ignored).

    Returns:
        ``(index, mask)``, both ``(N, K)`` with ``K = 1 + max degree``:
        ``index[i, 0] == i``; then i's neighbours in increasing order; padded
        entries point at ``i`` itself and have ``mask`` ``False``.
    """
    adj = np.asarray(adjacency, dtype=bool).copy()
    np.fill_diagonal(adj, False)
    n = adj.shape[0]
    k = 1 + (int(adj.sum(axis=1).max()) if n else 0)
    index = np.repeat(np.arange(n)[:, None], k, axis=1)
    mask = np.zeros((n, k), dtype=bool)
    mask[:, 0] = True
    for i in range(n):
        nbrs = np.flatnonzero(adj[i])
        index[i, 1 : 1 + len(nbrs)] = nbrs
        mask[i, 1 : 1 + len(nbrs)] = True
    return index, mask
