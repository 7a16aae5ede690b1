"""Several TrafficEnv in one process: the first runs libsumo in-process, later ones in workers.

libsumo holds one simulation per process, so a simulator started while another
holds it runs libsumo in a worker process of its own (``ltos_traffic/sim/simulator.py``).
Each environment must give exactly what it gives alone.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.envs.traffic import TrafficEnv
from ltos_traffic.errors import SimulationError
from ltos_traffic.scenario import load_scenario
from ltos_traffic.sim import simulator
from ltos_traffic.types import EpisodeMetrics

SCENARIO = load_scenario("grid2x2").with_timing(seconds=200)


def _solo(seed: int) -> tuple[EpisodeMetrics, list[np.ndarray]]:
    env = TrafficEnv(SCENARIO)
    try:
        controller = make_controller("max_pressure", env.spec, 0)
        step = env.reset(seed)
        obs = [step.obs]
        while not step.done:
            step = env.step(controller.act(step, explore=False))
            obs.append(step.obs)
        return env.episode_metrics(), obs
    finally:
        env.close()


def test_two_envs_stepped_alternately_each_give_their_solo_episode() -> None:
    solo = {seed: _solo(seed) for seed in (1, 2)}
    first, second = TrafficEnv(SCENARIO), TrafficEnv(SCENARIO)
    try:
        controller = make_controller("max_pressure", first.spec, 0)
        steps = {1: first.reset(1), 2: second.reset(2)}
        assert first.sim._worker is None and second.sim._worker is not None
        obs: dict[int, list[np.ndarray]] = {seed: [s.obs] for seed, s in steps.items()}
        while not (steps[1].done and steps[2].done):
            for seed, env in ((1, first), (2, second)):
                steps[seed] = env.step(controller.act(steps[seed], explore=False))
                obs[seed].append(steps[seed].obs)
        for seed, env in ((1, first), (2, second)):
            metrics, solo_obs = solo[seed]
            assert env.episode_metrics() == metrics
            assert len(obs[seed]) == len(solo_obs)
            for x, y in zip(obs[seed], solo_obs):
                np.testing.assert_array_equal(x, y)
        assert solo[1][0] != solo[2][0]  # the two seeds really are different episodes
    finally:
        first.close()
        second.close()
    assert not simulator._ACTIVE and second.sim._worker is None  # the worker is gone
    third = TrafficEnv(SCENARIO)  # libsumo is free again: in-process
    try:
        third.reset(0)
        assert third.sim._worker is None
    finally:
        third.close()


def test_a_dead_worker_is_a_sumo_failure_and_the_env_starts_again() -> None:
    holder, env = TrafficEnv(SCENARIO), TrafficEnv(SCENARIO)
    try:
        holder.reset(0)
        env.reset(0)
        worker = env.sim._worker
        assert worker is not None
        os.kill(worker._proc.pid, signal.SIGKILL)
        worker._proc.wait()
        zeros = np.zeros(env.spec.n_agents, dtype=np.int64)
        with pytest.raises(SimulationError, match=r"SUMO died at t=\d+ s: its worker process"):
            for _ in range(3):  # steps are not waited for: the failure shows at the next read
                env.step(zeros)
        assert not env.sim.running
        step = env.reset(0)  # a fresh worker
        assert env.sim._worker is not worker and not step.done
    finally:
        env.close()
        holder.close()


def test_a_worker_that_cannot_start_sumo_says_so(tmp_path: Path) -> None:
    holder = TrafficEnv(SCENARIO)
    try:
        holder.reset(0)
        files = holder.files
        sim = simulator.SumoSimulator(
            files.net_file, [tmp_path / "missing.rou.xml"], lanes=[], tls_ids=[]
        )
        with pytest.raises(SimulationError, match="SUMO failed to start"):
            sim.start(0)
        assert not sim.running
        sim.close()
    finally:
        holder.close()
