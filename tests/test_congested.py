"""The congested scenarios: listed, documented demand, and a short real SUMO episode each."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.max_pressure import MaxPressure
from ltos_traffic.envs.factory import make_env
from ltos_traffic.errors import UserError
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.net.cityflow import find_dataset
from ltos_traffic.scenario import NET_ALIASES, load_scenario


def _short_max_pressure_episode(name: str, seconds: float) -> tuple[int, int]:
    scenario = load_scenario(name).with_timing(seconds=seconds)
    env = make_env(scenario)
    try:
        controller = MaxPressure(env.spec, MaxPressure.Config(), 0)
        metrics = run_episode(env, controller, seed=0, explore=False, learn=False).metrics
    finally:
        env.close()
    return metrics.departed, metrics.arrived


def test_congested_scenarios_are_named() -> None:
    assert NET_ALIASES["grid6x6_congested"] == "grid6x6_congested_v1"
    assert NET_ALIASES["shenzhen_congested"] == "shenzhen_congested_v1"
    grid = load_scenario("grid6x6_congested")
    assert grid.network["rate"] == 5000 and grid.network["demand"] == "mixed"
    shenzhen = load_scenario("shenzhen_congested")
    assert tuple(shenzhen.sumo_args) == ("--scale", "1.5")
    assert shenzhen.hparams == load_scenario("shenzhen").hparams


def test_congested_grid_runs_a_short_episode() -> None:
    departed, arrived = _short_max_pressure_episode("grid6x6_congested", 300)
    # 5,000 veh/h: about 417 vehicles in 300 s, far more than grid6x6_v1's early demand.
    assert departed > 300 and arrived > 0


def test_congested_shenzhen_scales_the_real_demand() -> None:
    try:
        find_dataset("shenzhen")
    except UserError as exc:
        pytest.skip(f"LToS CityFlow data not available: {exc}")
    base, _ = _short_max_pressure_episode("shenzhen", 600)
    scaled, _ = _short_max_pressure_episode("shenzhen_congested", 600)
    assert 1.3 * base < scaled < 1.7 * base


def test_journey_time_counts_vehicles_kept_out_of_a_jammed_network() -> None:
    """Holding one phase everywhere jams the entries: the waits to enter enter the score."""
    scenario = load_scenario("grid6x6_congested").with_timing(seconds=600)
    env = make_env(scenario)
    try:
        step = env.reset(0)
        while not step.done:
            step = env.step(np.zeros(env.spec.n_agents, np.int64))
        held = env.episode_metrics()
        controller = MaxPressure(env.spec, MaxPressure.Config(), 0)
        pressure = run_episode(env, controller, seed=0, explore=False, learn=False).metrics
    finally:
        env.close()
    assert held.waiting_to_insert > 0 and pressure.waiting_to_insert == 0
    # With nobody waiting outside, journeys are travel times plus the (short) insertion waits.
    assert pressure.avg_journey_time_s >= pressure.avg_travel_time_all_s
    assert held.avg_journey_time_s > 1.5 * pressure.avg_journey_time_s
