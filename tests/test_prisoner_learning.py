"""Learning on prisoner: reward sharing reaches mutual cooperation, independent DQN defects.

Setting: ``prisoner_v1`` as shipped (two agents, donation game, 20 steps per
episode, Table 4/5 prisoner hyperparameters: epsilon fixed at 0.8, selfishness
0.5). Training episodes use seeds ``0..E-1``; the greedy evaluation episode is
scored by ``fraction_of_optimum``, the mean reward per agent-step over the
cooperative optimum (1.0 here).
"""

from __future__ import annotations

import pytest

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.envs.factory import make_env
from ltos_traffic.runner import run_episode
from ltos_traffic.scenario import load_scenario

EPISODES = 30  # 600 steps, one update per step (Table 4: sample size 10, batch 10)
SEED = 1


def _train_and_score(name: str, episodes: int, seed: int, **overrides: str) -> float:
    scenario = load_scenario("prisoner_v1")
    env = make_env(scenario)
    ctrl = make_controller(
        name, env.spec, seed, scenario_hparams=scenario.hparams, overrides=overrides
    )
    for episode in range(episodes):
        run_episode(env, ctrl, seed=episode, explore=True, learn=True)
    result = run_episode(env, ctrl, seed=1_000_000, explore=False, learn=False)
    return result.metrics.extra["fraction_of_optimum"]


def test_fixed_ltos_cooperates_where_dqn_defects() -> None:
    # Selfishness 0.5 on two agents: each learns on the average reward, for which
    # cooperating is dominant; DQN learns on its own reward, for which defecting is.
    assert _train_and_score("fixed_ltos", EPISODES, SEED) >= 0.9
    assert _train_and_score("dqn", EPISODES, SEED) <= 0.1


@pytest.mark.slow
@pytest.mark.xfail(
    strict=False,
    reason=(
        "observed: the DDPG high level raises selfishness from 0.5 past 2/3, where "
        "defecting wins the shaped reward (seed 1: w_ii 0.5 -> 0.97 in 80 episodes), "
        "so greedy play turns to defection; see the issue-5 report"
    ),
)
def test_ltos_cooperates() -> None:
    # Table 5 prisoner settings except hl_sample_size (2,000 -> 64: two high-level
    # steps per decision instead of 62, to fit CI time).
    assert _train_and_score("ltos", 60, SEED, hl_sample_size="64") >= 0.9
