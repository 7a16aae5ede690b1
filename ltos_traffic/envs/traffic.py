"""Traffic-signal control on SUMO as a :class:`~ltos_traffic.envs.base.NetworkedEnv`.

Agents are the signalised intersections of :mod:`ltos_traffic.sim.topology`. Every
``decision_interval_s`` each agent requests one of four green phases
(WE-through, NS-through, WE-left, NS-left; illegal ones masked). A request for
another phase than the current one, once the current green has lasted
``min_green_s``, inserts ``yellow_s`` of yellow and then the new green for the
rest of the interval; otherwise the current green is held.

Observation of agent i, ``D = 4 + 2 * L_max``:
    one-hot current green phase (4), then for each incoming lane (padded to
    ``L_max`` lanes): vehicles / lane capacity, halting vehicles / lane capacity,
    where capacity = lane length / 7.5 m.
Reward of agent i: minus the halting vehicles on its incoming lanes.
Global state: all observations concatenated, ``N * D``.
"""

from __future__ import annotations

import numpy as np

from ltos_traffic.errors import UserError
from ltos_traffic.net.files import NetFiles
from ltos_traffic.net.resolve import check_demand_window, no_departure_error, resolve_net_files
from ltos_traffic.scenario import Scenario
from ltos_traffic.sim.simulator import SumoSimulator
from ltos_traffic.sim.topology import N_PHASES, load_topology, yellow_state
from ltos_traffic.types import EnvSpec, EpisodeMetrics, LaneCounts, TimeStep


class TrafficEnv:
    """SUMO traffic environment.

    Args:
        scenario: a traffic :class:`~ltos_traffic.scenario.Scenario`.
        backend: ``"libsumo"`` (default, fastest) or ``"traci"``.
        gui: show ``sumo-gui`` (traci).
        net_files: use these files instead of resolving the scenario's network.
        data_dir: where CityFlow datasets live (Shenzhen), see :mod:`ltos_traffic.net.cityflow`.
        gui_args: extra ``sumo-gui`` options.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        backend: str = "libsumo",
        gui: bool = False,
        net_files: NetFiles | None = None,
        data_dir: str | None = None,
        gui_args: tuple[str, ...] = (),
    ) -> None:
        if scenario.kind != "traffic":
            raise UserError(f"scenario {scenario.name} is not a traffic scenario")
        self.scenario = scenario
        self.files = net_files or resolve_net_files(scenario.network, data_dir=data_dir)
        check_demand_window(self.files.route_files, scenario.begin_s, scenario.episode_seconds)
        self.topology = load_topology(self.files.net_file)
        topo = self.topology
        self._n = len(topo.intersections)
        self._lmax = topo.max_incoming
        n_lanes = len(topo.lanes)
        index = topo.lane_index()
        # (N, L_max) gather index into lane arrays extended by one always-zero slot
        self._incoming = np.full((self._n, self._lmax), n_lanes, dtype=np.int64)
        for i, x in enumerate(topo.intersections):
            self._incoming[i, : len(x.incoming)] = [index[lane] for lane in x.incoming]
        # (N, L_max) 1 / capacity of each agent's incoming lanes (0 on padding)
        inv_capacity = np.append(1.0 / topo.lane_capacity, 0.0).astype(np.float32)
        self._inv_incoming = inv_capacity[self._incoming]
        self._legal = np.array([x.legal for x in topo.intersections], dtype=bool)
        self._greens = [x.green_states for x in topo.intersections]
        # yellow state string of every (agent, from phase, to phase), built once
        self._yellows = [
            [[yellow_state(g, h) if g and h else "" for h in greens] for g in greens]
            for greens in self._greens
        ]
        self._agents = np.arange(self._n)
        obs_dim = N_PHASES + 2 * self._lmax
        self._spec = EnvSpec(
            name=scenario.name,
            agent_ids=topo.agent_ids,
            obs_dim=obs_dim,
            state_dim=self._n * obs_dim,
            n_actions=N_PHASES,
            adjacency=topo.adjacency,
            episode_steps=scenario.episode_steps,
            traffic=topo.traffic_spec(scenario.decision_interval_s),
        )
        self.sim = SumoSimulator(
            self.files.net_file,
            self.files.route_files,
            lanes=topo.lanes,
            tls_ids=topo.agent_ids,
            begin_s=scenario.begin_s,
            additional_files=self.files.additional_files,
            backend=backend,
            gui=gui,
            sumo_args=scenario.sumo_args,
            gui_args=gui_args,
        )
        self._phase = np.zeros(self._n, dtype=np.int64)
        self._green_since = np.zeros(self._n, dtype=np.float64)
        self._t = 0
        self._programs = False  # this episode runs the network's own programs (reset)
        self._queue_sum = 0.0
        self._return = 0.0
        self._metrics: EpisodeMetrics | None = None

    @property
    def spec(self) -> EnvSpec:
        """The environment's static description (same object for the env's life)."""
        return self._spec

    # ------------------------------------------------------------------ API

    def reset(self, seed: int, *, programs: bool = False) -> TimeStep:
        """Start a new SUMO episode seeded with ``seed``; every light on its first legal phase.

        With ``programs=True`` the episode leaves every light to the network's own
        signal program, unchanged: actions are checked but not applied (the
        ``sumo_program`` controller); observations, rewards and metrics are as usual.
        """
        self.sim.start(seed)
        self._programs = programs
        self._phase = np.argmax(self._legal, axis=1)
        self._green_since[:] = -self.scenario.min_green_s  # the first decision may switch
        if not programs:
            self.sim.set_states(range(self._n), [g[p] for g, p in zip(self._greens, self._phase)])
        self._t = 0
        self._queue_sum = 0.0
        self._return = 0.0
        self._metrics = None
        lanes = self.sim.read()
        return self._timestep(lanes, np.zeros(self._n, dtype=np.float32), done=False)

    def step(self, actions: np.ndarray) -> TimeStep:
        """Apply one decision for every agent and simulate one decision interval."""
        if not self.sim.running:
            raise RuntimeError("call reset(seed) before step()")
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        if actions.shape != (self._n,):
            raise ValueError(f"expected {self._n} actions, got shape {actions.shape}")
        if (actions < 0).any() or (actions >= N_PHASES).any():
            raise ValueError(f"actions must lie in [0, {N_PHASES}), got {actions}")
        if not self._legal[self._agents, actions].all():
            bad = int(np.flatnonzero(~self._legal[self._agents, actions])[0])
            agent = self._spec.agent_ids[bad]
            raise ValueError(f"action {actions[bad]} is masked for agent {agent}")
        sc = self.scenario
        now = self._t * sc.decision_interval_s
        change = (actions != self._phase) & (now - self._green_since >= sc.min_green_s)
        switching = [] if self._programs else np.flatnonzero(change).tolist()
        new_phase = actions.tolist()
        if switching and sc.yellow_s > 0:
            old_phase = self._phase.tolist()
            yellows = [self._yellows[i][old_phase[i]][new_phase[i]] for i in switching]
            self.sim.set_states(switching, yellows)
            self.sim.advance_to(sc.begin_s + now + sc.yellow_s)
        if switching:
            self.sim.set_states(switching, [self._greens[i][new_phase[i]] for i in switching])
            self._phase[switching] = actions[switching]
            self._green_since[switching] = now + sc.yellow_s
        self.sim.advance_to(sc.begin_s + now + sc.decision_interval_s)
        self._t += 1
        lanes = self.sim.read()
        halting_in = np.append(lanes.halting, 0.0)[self._incoming]
        halting = halting_in.sum(axis=1)
        reward = (-halting).astype(np.float32)
        self._queue_sum += float(halting.mean())
        self._return += float(reward.sum())
        done = self._t >= self._spec.episode_steps
        step = self._timestep(lanes, reward, done=done, halting_in=halting_in)
        if done:
            self._metrics = self._finish()
        return step

    def episode_metrics(self) -> EpisodeMetrics:
        """Metrics of the finished episode (travel times from SUMO's tripinfo)."""
        if self._metrics is None:
            raise RuntimeError("episode_metrics() is available once an episode is done")
        return self._metrics

    def close(self) -> None:
        """Stop SUMO; safe to call more than once."""
        self.sim.close()

    def __enter__(self) -> TrafficEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- helpers

    def _timestep(
        self,
        lanes: LaneCounts,
        reward: np.ndarray,
        *,
        done: bool,
        halting_in: np.ndarray | None = None,
    ) -> TimeStep:
        """Build the TimeStep; ``halting_in`` is the ``(N, L_max)`` halting gather if done."""
        if halting_in is None:
            halting_in = np.append(lanes.halting, 0.0)[self._incoming]
        veh = np.append(lanes.vehicles, 0.0)[self._incoming] * self._inv_incoming
        halt = halting_in * self._inv_incoming
        obs = np.empty((self._n, self._spec.obs_dim), dtype=np.float32)
        obs[:, :N_PHASES] = 0.0
        obs[self._agents, self._phase] = 1.0
        obs[:, N_PHASES::2] = veh
        obs[:, N_PHASES + 1 :: 2] = halt
        return TimeStep(
            obs=obs,
            state=obs.reshape(-1),
            action_mask=self._legal,
            reward=reward,
            done=done,
            t=self._t,
            sim_time_s=self._t * self.scenario.decision_interval_s,
            lanes=lanes,
        )

    def _finish(self) -> EpisodeMetrics:
        trips = self.sim.finish()
        seconds = self._t * self.scenario.decision_interval_s
        tripinfos = trips.durations.size + trips.unfinished.size  # every one of them departed
        if max(trips.departed, tripinfos) == 0:  # an empty network is not a result
            raise no_departure_error(self.files.route_files, self.scenario.begin_s, seconds)
        arrived = int(trips.durations.size)
        all_times = np.concatenate([trips.durations, trips.unfinished])
        all_losses = np.concatenate([trips.time_losses, trips.unfinished_time_losses])
        journeys = all_times.size + trips.waiting_to_insert
        journey_s = float(all_times.sum()) + trips.depart_delay_s + trips.insert_wait_s
        return EpisodeMetrics(
            episode_return=self._return,
            avg_travel_time_s=_mean(trips.durations),
            avg_travel_time_all_s=_mean(all_times),
            avg_delay_s=_mean(trips.time_losses),
            avg_delay_all_s=_mean(all_losses),
            avg_journey_time_s=journey_s / journeys if journeys else float("nan"),
            arrived=arrived,
            departed=trips.departed,
            running=int(trips.unfinished.size),
            waiting_to_insert=trips.waiting_to_insert,
            throughput=arrived * 3600.0 / seconds if seconds else float("nan"),
            mean_queue=self._queue_sum / max(self._t, 1),
            mean_waiting_time_s=_mean(trips.waiting_times),
            teleports=trips.teleports,
            sim_seconds=seconds,
        )


def _mean(values: np.ndarray) -> float:
    """Mean of ``values``; NaN when empty (no vehicle to average over)."""
    return float(values.mean()) if values.size else float("nan")
