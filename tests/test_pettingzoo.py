"""The PettingZoo adapter passes PettingZoo's own parallel API test on real SUMO and on prisoner."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pettingzoo")
from pettingzoo.test import parallel_api_test

from ltos_traffic.envs.factory import make_env
from ltos_traffic.envs.pettingzoo_env import ParallelTrafficEnv
from ltos_traffic.scenario import load_scenario


@pytest.mark.parametrize(("name", "seconds"), [("grid2x2", 100), ("prisoner", 10)])
def test_parallel_api(name: str, seconds: float) -> None:
    env = ParallelTrafficEnv(make_env(load_scenario(name).with_timing(seconds=seconds)))
    try:
        parallel_api_test(env, num_cycles=50)
    finally:
        env.close()


def test_masks_rewards_and_truncation_on_sumo() -> None:
    env = ParallelTrafficEnv(make_env(load_scenario("grid2x2").with_timing(seconds=30)))
    try:
        obs, infos = env.reset(seed=1)
        assert set(obs) == {"A0", "A1", "B0", "B1"}
        assert infos["A0"]["action_mask"].tolist() == [1, 1, 1, 1]
        assert env.state().shape == (env.env.spec.state_dim,)
        for _ in range(3):
            obs, rewards, terms, truncs, infos = env.step(dict.fromkeys(env.agents, 1))
            assert all(r <= 0 for r in rewards.values())
            assert not any(terms.values())
        assert all(truncs.values()) and env.agents == []
        assert all(np.isfinite(o).all() for o in obs.values())
    finally:
        env.close()


def test_the_factory_passes_the_api_test_beside_another_open_env() -> None:
    import ltos_traffic

    env = ltos_traffic.parallel_env(net="grid2x2", seconds=100)
    other = ltos_traffic.parallel_env(net="grid2x2", seconds=100)
    try:
        assert isinstance(env, ParallelTrafficEnv)
        other.reset(seed=3)  # holds this process's libsumo: env's SUMO runs in a worker
        parallel_api_test(env, num_cycles=50)
        assert env.env.sim._worker is not None  # type: ignore[attr-defined]
    finally:
        env.close()
        other.close()
