"""Tabular Coco-Q: coco values, learning mutual cooperation on prisoner, state, applicability."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch

from baselines.coco_q import CocoQ, coco_values, zero_sum_value
from ltos_traffic.controllers.base import make_controller
from ltos_traffic.envs.factory import make_env
from ltos_traffic.errors import UserError
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.scenario import load_scenario


def test_zero_sum_value_pure_and_mixed() -> None:
    games = np.array(
        [
            [[1.0, -1.0], [-1.0, 1.0]],  # matching pennies: 0
            [[3.0, 1.0], [4.0, 2.0]],  # saddle point at (1, 1): 2
            [[2.0, -1.0], [-1.0, 1.0]],  # mixed: (2*1 - 1) / (2 + 1 + 1 + 1) = 0.2
        ]
    )
    np.testing.assert_allclose(zero_sum_value(games), [0.0, 2.0, 0.2])


def test_coco_value_of_prisoners_dilemma_and_of_a_chicken_like_game() -> None:
    # Prisoner's dilemma T/R/P/S = 2/1/0/-1: both get the cooperative value R = 1.
    a = np.array([[1.0, -1.0], [2.0, 0.0]])
    row, col = coco_values(a, a.T)
    assert row == pytest.approx(1.0) and col == pytest.approx(1.0)
    # Asymmetric game: the row player holds the threat, so it gets the side payment.
    a = np.array([[3.0, 0.0], [0.0, 1.0]])
    b = np.array([[1.0, 0.0], [0.0, 3.0]])
    row, col = coco_values(a, b)
    # maxmax of the sum / 2 = 2; zero-sum part (a - b) / 2 = [[1, 0], [0, -1]] has value 0.
    assert (row, col) == (pytest.approx(2.0), pytest.approx(2.0))
    a = np.array([[4.0, 4.0], [0.0, 0.0]])
    b = np.zeros((2, 2))
    row, col = coco_values(a, b)
    assert (row, col) == (pytest.approx(4.0), pytest.approx(0.0))


def _train(scenario_name: str, episodes: int, seed: int, **overrides: str) -> tuple[CocoQ, float]:
    scenario = load_scenario(scenario_name)
    env = make_env(scenario)
    ctrl = make_controller(
        "coco_q", env.spec, seed, scenario_hparams=scenario.hparams, overrides=overrides
    )
    for episode in range(episodes):
        run_episode(env, ctrl, seed=episode, explore=True, learn=True)
    result = run_episode(env, ctrl, seed=10_000, explore=False, learn=False)
    return ctrl, result.metrics.extra["fraction_of_optimum"]


def test_coco_q_learns_payoffs_with_gamma_zero() -> None:
    ctrl, fraction = _train("prisoner_v1", episodes=30, seed=0, gamma="0")
    assert fraction == pytest.approx(1.0)
    # After many visits with step size 0.5 each table entry is its one-step payoff.
    visited = ctrl.q[0, 1:]  # the four "last joint action" states of the only edge
    np.testing.assert_allclose(visited[..., 0], [[[1, -1], [2, 0]]] * 4, atol=1e-6)
    np.testing.assert_allclose(visited[..., 1], [[[1, 2], [-1, 0]]] * 4, atol=1e-6)


def test_coco_q_cooperates_on_prisoner_from_exploration_at_epsilon_08() -> None:
    ctrl, fraction = _train("prisoner_v1", episodes=400, seed=0)
    assert ctrl.epsilon.value(ctrl.episode) == pytest.approx(0.8)  # Table 4: fixed 0.8
    assert fraction == pytest.approx(1.0)
    # Mutual cooperation has the largest total in every state, by a clear margin.
    total = ctrl.q[0].sum(axis=-1).reshape(5, 4)
    assert (total.argmax(axis=1) == 0).all()
    assert (total[:, 0] - total[:, 1:].max(axis=1) > 0.5).all()


def test_coco_q_runs_one_table_per_edge_on_a_ring() -> None:
    scenario = load_scenario("prisoner_v1")
    params = {**scenario.params, "topology": "ring", "n_agents": 5}
    env = make_env(dataclasses.replace(scenario, params=params))
    ctrl = make_controller("coco_q", env.spec, 0, scenario_hparams=scenario.hparams)
    assert ctrl.q.shape == (5, 5, 2, 2, 2)
    np.testing.assert_array_equal(ctrl.first, [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(ctrl.second, [1, 4, 2, 3, 4])
    result = run_episode(env, ctrl, seed=0, explore=True, learn=True)
    assert np.isfinite(result.losses["td_error"]) and (ctrl.q != 0).any(axis=(1, 2, 3, 4)).all()


def test_coco_q_state_dict_round_trip() -> None:
    ctrl, _ = _train("prisoner_v1", episodes=3, seed=2)
    buffer = io.BytesIO()
    torch.save(ctrl.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    env = make_env(load_scenario("prisoner_v1"))
    other = make_controller("coco_q", env.spec, 99)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.q, ctrl.q)
    assert other.episode == ctrl.episode
    step = env.reset(0)
    np.testing.assert_array_equal(
        other.act(step, explore=True), ctrl.act(step, explore=True)
    )  # same RNG stream too


def test_coco_q_is_not_applicable_to_jungle() -> None:
    env = make_env(load_scenario("jungle_v1"))
    with pytest.raises(UserError, match="prisoner"):
        make_controller("coco_q", env.spec, 0)
