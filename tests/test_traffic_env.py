"""TrafficEnv on real SUMO: contract, phase logic, metrics and determinism."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.envs.traffic import TrafficEnv
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.net.files import NetFiles
from ltos_traffic.scenario import custom_scenario, load_scenario
from ltos_traffic.sim.topology import yellow_state

from fakes import greedy_metrics
from sumo_nets import build_irregular


def short(name: str, seconds: float):
    return load_scenario(name).with_timing(seconds=seconds)


@pytest.fixture(scope="module")
def env2x2():
    env = TrafficEnv(short("grid2x2", 120))
    yield env
    env.close()


def test_timestep_matches_spec(env2x2):
    spec = env2x2.spec
    step = env2x2.reset(0)
    n, d, a = spec.n_agents, spec.obs_dim, spec.n_actions
    assert (n, d, a) == (4, 4 + 2 * 12, 4)
    assert step.obs.shape == (n, d) and step.obs.dtype == np.float32
    assert step.state.shape == (spec.state_dim,)
    assert step.action_mask.shape == (n, a) and step.action_mask.any(axis=1).all()
    assert step.reward.shape == (n,) and step.t == 0 and not step.done
    steps = 0
    while not step.done:
        step = env2x2.step(np.zeros(n, dtype=np.int64))
        steps += 1
        assert np.isfinite(step.obs).all() and (step.reward <= 0).all()
        assert step.obs[:, :4].sum(axis=1).tolist() == [1.0] * n  # one-hot phase
    assert steps == spec.episode_steps == 12
    assert env2x2.spec is spec  # same object across resets
    assert env2x2.episode_metrics().sim_seconds == 120


def test_reward_is_minus_halting_on_incoming_lanes(env2x2):
    step = env2x2.reset(3)
    for _ in range(6):
        step = env2x2.step(np.zeros(4, dtype=np.int64))  # starve N-S: queues grow
    assert step.lanes is not None
    incoming = env2x2.spec.traffic.incoming_lanes
    expected = [-step.lanes.halting[list(lanes)].sum() for lanes in incoming]
    np.testing.assert_allclose(step.reward, expected)
    assert step.reward.sum() < 0


def test_phase_change_inserts_yellow_then_green(env2x2):
    env2x2.reset(0)
    api = env2x2.sim._api  # test-only peek at SUMO's signal state
    x = env2x2.topology.intersections[0]
    assert api.trafficlight.getRedYellowGreenState(x.tls_id) == x.green_states[0]
    seen: list[tuple[float, str]] = []
    advance = env2x2.sim.advance_to

    def spy(time_s: float) -> None:
        seen.append((time_s, api.trafficlight.getRedYellowGreenState(x.tls_id)))
        advance(time_s)

    env2x2.sim.advance_to = spy  # type: ignore[method-assign]
    try:
        step = env2x2.step(np.array([1, 0, 0, 0]))
    finally:
        del env2x2.sim.advance_to
    yellow = yellow_state(x.green_states[0], x.green_states[1])
    assert "y" in yellow
    assert seen == [(5.0, yellow), (10.0, x.green_states[1])]
    assert step.obs[0, :4].tolist() == [0.0, 1.0, 0.0, 0.0]
    # holding the phase advances straight to the next decision, no yellow
    seen.clear()
    env2x2.sim.advance_to = spy  # type: ignore[method-assign]
    try:
        env2x2.step(np.array([1, 0, 0, 0]))
    finally:
        del env2x2.sim.advance_to
    assert seen == [(20.0, x.green_states[1])]


def test_min_green_holds_the_current_phase():
    scen = dataclasses.replace(short("grid2x2", 100), min_green_s=30.0)
    env = TrafficEnv(scen)
    try:
        step = env.reset(0)
        step = env.step(np.ones(4, dtype=np.int64))  # t=0: the first decision may switch
        assert step.obs[:, 1].tolist() == [1.0] * 4  # green since t=5 s
        step = env.step(np.zeros(4, dtype=np.int64))  # t=10: 5 s < 30 s of green: hold
        assert step.obs[:, 1].tolist() == [1.0] * 4
        step = env.step(np.zeros(4, dtype=np.int64))  # t=20: 15 s: hold
        step = env.step(np.zeros(4, dtype=np.int64))  # t=30: 25 s: hold
        assert step.obs[:, 1].tolist() == [1.0] * 4
        step = env.step(np.zeros(4, dtype=np.int64))  # t=40: 35 s: switch allowed
        assert step.obs[:, 0].tolist() == [1.0] * 4
    finally:
        env.close()


def test_masked_and_malformed_actions_are_rejected(tmp_path: Path):
    net, rou = build_irregular(tmp_path)
    scen = custom_scenario(str(net), [str(rou)], short("grid2x2", 60))
    env = TrafficEnv(scen)
    try:
        step = env.reset(0)
        assert step.action_mask[0].tolist() == [True, False, True, True]
        with pytest.raises(ValueError, match="masked"):
            env.step(np.array([1, 0]))
        with pytest.raises(ValueError, match="expected 2 actions"):
            env.step(np.array([0, 0, 0]))
    finally:
        env.close()


def test_irregular_network_runs_with_max_pressure(tmp_path: Path):
    net, rou = build_irregular(tmp_path)
    scen = custom_scenario(str(net), [str(rou)], short("grid2x2", 600))
    env = TrafficEnv(scen)
    try:
        ctl = make_controller("max_pressure", env.spec, 0)
        metrics = run_episode(env, ctl, seed=0, explore=False, learn=False).metrics
    finally:
        env.close()
    assert metrics.arrived > 100 and metrics.avg_travel_time_s > 0


def test_same_seed_same_metrics_and_different_seed_differs():
    scen = short("grid6x6", 600)
    env = TrafficEnv(scen)
    try:
        ctl = make_controller("max_pressure", env.spec, 0)
        a = run_episode(env, ctl, seed=7, explore=False, learn=False).metrics
        b = run_episode(env, ctl, seed=7, explore=False, learn=False).metrics
    finally:
        env.close()
    assert a == b
    assert a.arrived > 0 and a.departed > a.arrived


def test_grid6x6_max_pressure_beats_fixed_time_short_run():
    scen = short("grid6x6", 900)
    env = TrafficEnv(scen)
    try:
        out = greedy_metrics(env, ("fixed_time", "max_pressure"))
    finally:
        env.close()
    assert out["max_pressure"].mean_queue < out["fixed_time"].mean_queue
    assert out["max_pressure"].avg_travel_time_all_s < out["fixed_time"].avg_travel_time_all_s


def test_unfinished_vehicles_are_counted_in_all_vehicle_travel_time():
    env = TrafficEnv(short("grid6x6", 300))
    try:
        ctl = make_controller("fixed_time", env.spec, 0)
        m = run_episode(env, ctl, seed=0, explore=False, learn=False).metrics
    finally:
        env.close()
    assert m.running > 0  # 300 s: many vehicles still on their way
    assert m.departed == m.arrived + m.running
    assert m.throughput == pytest.approx(m.arrived * 12)


def test_traci_backend_gives_the_same_episode_as_libsumo():
    scen = short("grid2x2", 120)
    results = []
    for backend in ("libsumo", "traci"):
        env = TrafficEnv(scen, backend=backend)
        try:
            ctl = make_controller("max_pressure", env.spec, 0)
            results.append(run_episode(env, ctl, seed=1, explore=False, learn=False).metrics)
        finally:
            env.close()
    assert results[0] == results[1]


def test_net_files_override_is_used(tmp_path: Path):
    net, rou = build_irregular(tmp_path)
    env = TrafficEnv(short("grid2x2", 60), net_files=NetFiles(net, (rou,)))
    try:
        assert env.spec.agent_ids == ("J1", "J2")
    finally:
        env.close()
