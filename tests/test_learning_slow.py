"""Learning runs that take minutes (``pytest -m slow``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.envs.factory import make_env
from ltos_traffic.experiments.training import evaluate, train
from ltos_traffic.scenario import load_scenario

from fakes import one_torch_thread

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures(one_torch_thread.__name__)]


def _trained_cooperation(name: str, tmp_path: Path) -> float:
    scenario = load_scenario("prisoner")
    env = make_env(scenario)
    try:
        ctrl = make_controller(name, env.spec, 0, scenario_hparams=scenario.hparams)
        train(env, ctrl, out_dir=tmp_path / name, episodes=200, seed=0)
        return evaluate(env, ctrl, seed=1_000_000).metrics.extra["cooperation_rate"]
    finally:
        env.close()


@pytest.mark.timeout(900)
def test_sharing_half_the_reward_makes_prisoners_cooperate(tmp_path: Path) -> None:
    # Appendix C: at selfishness 0.5 fixed LToS optimises the average return, whose
    # optimum is mutual cooperation; independent learners find the dominant defection.
    assert _trained_cooperation("fixed_ltos", tmp_path) >= 0.9
    assert _trained_cooperation("dqn", tmp_path) <= 0.1


@pytest.mark.timeout(900)
def test_ltos_trains_resumes_and_evaluates_on_sumo(tmp_path: Path) -> None:
    scenario = load_scenario("grid2x2").with_timing(seconds=600)
    env = make_env(scenario)
    try:
        settings = {"hl_update_every_episodes": "1"}
        ctrl = make_controller("ltos", env.spec, 0, scenario_hparams=scenario.hparams,
                               overrides=settings)  # fmt: skip
        first = train(env, ctrl, out_dir=tmp_path, episodes=2, seed=0)
        again = make_controller("ltos", env.spec, 0, scenario_hparams=scenario.hparams,
                                overrides=settings)  # fmt: skip
        rest = train(env, again, out_dir=tmp_path, episodes=3, seed=0, resume=True)
        assert len(first) == 2 and len(rest) == 1 and again.episode == 3
        assert "hl_value" in rest[0].losses and math.isfinite(rest[0].losses["q_loss"])
        result = evaluate(env, again, seed=1_000_000)
        assert result.metrics.arrived > 0 and math.isfinite(result.metrics.avg_travel_time_s)
    finally:
        env.close()


@pytest.mark.timeout(3600)
def test_ltos_on_grid6x6_learns_to_beat_fixed_time_and_near_max_pressure(tmp_path: Path) -> None:
    # Issue 4's learning check on the 6x6 grid with the LToS demand: 20 training episodes
    # (about 10 s each on one core). Seed 0; the README's results table gives three seeds.
    scenario = load_scenario("grid6x6")
    env = make_env(scenario)
    try:
        baseline = {}
        for name in ("fixed_time", "max_pressure"):
            ctrl = make_controller(name, env.spec, 0)
            baseline[name] = evaluate(env, ctrl, seed=1_000_000).metrics.avg_travel_time_s
        ctrl = make_controller("ltos", env.spec, 0, scenario_hparams=scenario.hparams)
        train(env, ctrl, out_dir=tmp_path, episodes=20, seed=0)
        ltos = evaluate(env, ctrl, seed=1_000_000).metrics
    finally:
        env.close()
    assert ltos.avg_travel_time_s < 0.6 * baseline["fixed_time"]
    assert ltos.avg_travel_time_s < 1.25 * baseline["max_pressure"]
    assert ltos.arrived > 0.95 * ltos.departed
