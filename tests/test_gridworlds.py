"""Rules of the two validation grid-worlds: payoffs, attacks, eating, determinism."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from ltos_traffic.envs.base import NetworkedEnv
from ltos_traffic.envs.factory import make_env
from ltos_traffic.envs.jungle import JungleEnv
from ltos_traffic.envs.prisoner import COOPERATE, DEFECT, PrisonerEnv
from ltos_traffic.errors import UserError
from ltos_traffic.scenario import Scenario, load_scenario


def _with(name: str, steps: int | None = None, **params: Any) -> Scenario:
    base = load_scenario(name)
    seconds = base.episode_seconds if steps is None else float(steps)
    return dataclasses.replace(base, params={**base.params, **params}, episode_seconds=seconds)


# ----------------------------------------------------------------------------- prisoner


def test_prisoner_two_agent_payoffs() -> None:
    env = make_env(load_scenario("prisoner"))
    assert isinstance(env, PrisonerEnv) and isinstance(env, NetworkedEnv)
    env.reset(0)
    cases = {
        (COOPERATE, COOPERATE): (1.0, 1.0),
        (COOPERATE, DEFECT): (-1.0, 2.0),
        (DEFECT, COOPERATE): (2.0, -1.0),
        (DEFECT, DEFECT): (0.0, 0.0),
    }
    for actions, expected in cases.items():
        step = env.step(np.array(actions))
        np.testing.assert_array_equal(step.reward, np.array(expected, dtype=np.float32))
    assert env.cooperative_optimum == 1.0


def test_prisoner_ring_reward_sums_games_with_both_neighbours() -> None:
    env = PrisonerEnv(_with("prisoner_v1", topology="ring", n_agents=4))
    assert env.spec.adjacency.sum(axis=1).tolist() == [2, 2, 2, 2]
    assert env.spec.adjacency[0, 3] and not env.spec.adjacency[0, 2]
    env.reset(0)
    step = env.step(np.array([COOPERATE, DEFECT, COOPERATE, COOPERATE]))
    # agent 0 plays 1 (D) and 3 (C): S + R; agent 1 plays 0 and 2 (both C): 2T.
    np.testing.assert_array_equal(step.reward, [-1 + 1, 2 + 2, -1 + 1, 1 + 1])
    # line of 3: ends have one game, the middle two
    line = PrisonerEnv(_with("prisoner_v1", topology="line", n_agents=3))
    line.reset(0)
    np.testing.assert_array_equal(line.step(np.zeros(3, dtype=np.int64)).reward, [1, 2, 1])
    assert line.cooperative_optimum == pytest.approx(4 / 3)


def test_prisoner_observation_episode_and_metrics() -> None:
    env = PrisonerEnv(_with("prisoner_v1", steps=4, topology="line", n_agents=3))
    step = env.reset(0)
    assert step.obs.shape == (3, 4) and step.obs.dtype == np.float32
    np.testing.assert_array_equal(step.obs[:, 2], 1.0)  # first-step flag
    assert step.state.shape == (env.spec.state_dim,) and step.action_mask.all()
    step = env.step(np.array([COOPERATE, DEFECT, COOPERATE]))
    np.testing.assert_array_equal(step.obs[:, 0], [1, 0, 1])  # own last action was C
    np.testing.assert_array_equal(step.obs[:, 1], [0, 1, 0])  # neighbours that cooperated
    np.testing.assert_array_equal(step.obs[:, 3], 0.25)
    for _ in range(3):
        assert not step.done
        step = env.step(np.zeros(3, dtype=np.int64))
    assert step.done and step.t == 4
    with pytest.raises(RuntimeError):
        env.step(np.zeros(3, dtype=np.int64))
    m = env.episode_metrics()
    assert m.extra["cooperation_rate"] == pytest.approx(11 / 12)
    assert m.episode_return == pytest.approx((-1 + 4 - 1) + 3 * (1 + 2 + 1))
    assert m.extra["mean_reward_per_agent_step"] == pytest.approx(m.episode_return / 12)


@pytest.mark.parametrize(
    "params",
    [
        {"topology": "star"},
        {"topology": "ring", "n_agents": 2},
        {"n_agents": 1},
        {"temptation": 0.5},  # no longer a dilemma
        {"temptation": 4.0},  # T + S > 2R: taking turns to defect beats cooperating
        {"colour": "red"},
    ],
)
def test_prisoner_rejects_bad_params(params: dict[str, Any]) -> None:
    with pytest.raises(UserError):
        PrisonerEnv(_with("prisoner_v1", **params))


# ----------------------------------------------------------------------------- jungle

STAY, NORTH, EAST, SOUTH, WEST = 0, 1, 2, 3, 4
ATTACK_EAST, ATTACK_WEST = 6, 8


def _pair(spacing: int = 3, **params: Any) -> JungleEnv:
    """Two agents side by side: homes (1, 1) and (1, 1 + spacing), territory radius 1."""
    scenario = _with(
        "jungle_v1",
        steps=10,
        home_rows=1,
        home_cols=2,
        home_spacing=spacing,
        territory_radius=1,
        n_food=1,
        view_radius=2,
        **params,
    )
    return JungleEnv(scenario)


def test_jungle_default_layout_is_a_king_graph() -> None:
    env = make_env(load_scenario("jungle"))
    spec = env.spec
    assert spec.n_agents == 20 and spec.n_actions == 9 and spec.obs_dim == 3 * 49 + 2
    assert (spec.adjacency == spec.adjacency.T).all() and not spec.adjacency.diagonal().any()
    degree = spec.adjacency.sum(axis=1).reshape(4, 5)
    assert degree[0, 0] == 3 and degree[0, 2] == 5 and degree[1, 1] == 8
    step = env.reset(3)
    assert step.obs.shape == (20, spec.obs_dim) and step.state.shape == (spec.state_dim,)
    assert step.action_mask.shape == (20, 9) and step.action_mask.all()


def test_jungle_attack_rewards_attacker_and_hurts_victim() -> None:
    env = _pair()
    assert env.spec.adjacency[0, 1]
    env.reset(0)
    env._food = np.array([[0, 0]])  # out of the way
    step = env.step(np.array([EAST, WEST]))  # to (1, 2) and (1, 3): now face to face
    np.testing.assert_array_equal(env._pos, [[1, 2], [1, 3]])
    np.testing.assert_array_equal(step.reward, [0, 0])
    step = env.step(np.array([ATTACK_EAST, STAY]))
    np.testing.assert_allclose(step.reward, [0.5, -2.0])
    step = env.step(np.array([ATTACK_EAST, ATTACK_WEST]))  # both hit each other
    np.testing.assert_allclose(step.reward, [-1.5, -1.5])
    step = env.step(np.array([ATTACK_WEST, STAY]))  # empty cell
    np.testing.assert_allclose(step.reward, [-0.01, 0.0])
    m = env.episode_metrics()
    assert m.extra["attacks"] == 3 and m.extra["attack_misses"] == 1
    assert m.episode_return == pytest.approx(-1.5 - 3.0 - 0.01)


def test_jungle_eating_gives_reward_and_food_reappears_elsewhere() -> None:
    env = _pair()
    env.reset(0)
    env._food = np.array([[0, 1]])  # north of agent 0
    step = env.step(np.array([NORTH, STAY]))
    np.testing.assert_allclose(step.reward, [1.0, 0.0])
    assert env._food.shape == (1, 2)
    assert not (env._food[0] == env._pos).all(axis=1).any()  # not under an agent
    assert env.episode_metrics().extra["food_eaten"] == 1


def test_jungle_moves_stay_in_territory_and_contested_cells_go_to_one_agent() -> None:
    env = _pair()
    env.reset(0)
    env._food = np.array([[2, 5]])
    env.step(np.array([WEST, STAY]))
    env.step(np.array([WEST, STAY]))  # (1, 0) is the territory edge
    np.testing.assert_array_equal(env._pos[0], [1, 0])
    # overlapping territories (spacing 2): both want (1, 2)
    winners = set()
    for seed in range(8):
        env = _pair(spacing=2)
        env.reset(seed)
        env._food = np.array([[0, 0]])
        env.step(np.array([EAST, WEST]))
        pos = env._pos.tolist()
        assert sorted(map(tuple, pos)) in ([(1, 1), (1, 2)], [(1, 2), (1, 3)])
        winners.add(0 if pos[0] == [1, 2] else 1)
    assert winners == {0, 1}  # the tie is broken at random, not by index


def test_jungle_observation_shows_food_and_neighbours() -> None:
    env = _pair()
    env.reset(0)
    env._food = np.array([[0, 2]])
    step = env.step(np.array([EAST, WEST]))  # agents at (1, 2) and (1, 3)
    side = 5
    planes = step.obs[0, : 3 * side * side].reshape(3, side, side)
    centre = 2
    assert planes[0, centre, centre + 1] == 1 and planes[0].sum() == 1  # the other agent east
    assert planes[1, centre - 1, centre] == 1 and planes[1].sum() == 1  # food north
    assert planes[2, centre, centre] == 0 and planes[2, centre, centre + 1] == 1  # beyond edge
    np.testing.assert_allclose(step.obs[0, -2:], [0.0, 1.0])  # one cell east of home


def _rollout(env: NetworkedEnv, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(123)
    step = env.reset(seed)
    out = [step.obs.copy(), step.state.copy()]
    while not step.done:
        step = env.step(rng.integers(0, env.spec.n_actions, env.spec.n_agents))
        out += [step.obs.copy(), step.state.copy(), step.reward.copy()]
    return out


@pytest.mark.parametrize("name", ["prisoner_v1", "jungle_v1"])
def test_same_seed_same_episode(name: str) -> None:
    env = make_env(load_scenario(name))
    first, again = _rollout(env, 5), _rollout(env, 5)
    assert len(first) == 2 + 3 * env.spec.episode_steps
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    if name == "jungle_v1":  # another seed places food elsewhere
        assert not np.array_equal(first[1], _rollout(env, 6)[1])


def test_factory_rejects_simulator_options_for_grid_worlds() -> None:
    with pytest.raises(UserError):
        make_env(load_scenario("prisoner"), gui=True)


def test_jungle_rejects_bad_params() -> None:
    with pytest.raises(UserError):
        JungleEnv(_with("jungle_v1", territory_radius=1))  # gaps between territories
    with pytest.raises(UserError):
        JungleEnv(_with("jungle_v1", n_food=10_000))
    with pytest.raises(UserError):
        JungleEnv(_with("jungle_v1", view_radius=1.5))
