"""Parallel rollouts: worker processes feeding one learner (experiments/parallel.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ltos_traffic.controllers.base import StaticController, make_controller
from ltos_traffic.envs.factory import make_env
from ltos_traffic.errors import UserError
from ltos_traffic.experiments import rundir
from ltos_traffic.experiments.parallel import (
    MAX_DEFAULT_WORKERS,
    EnvRecipe,
    RolloutPool,
    available_cores,
    check_parallel,
    default_workers,
    train_parallel,
)
from ltos_traffic.scenario import load_scenario


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    # The learner's tiny networks gain nothing from threads, and on a busy 2-core
    # machine a thread pool per process makes them many times slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _ltos(seed: int) -> tuple[Any, Any]:
    scenario = load_scenario("prisoner_v1")
    env = make_env(scenario)
    light = {"hl_sample_size": "64", "hl_update_every_steps": "5"}  # keep the test fast
    controller = make_controller(
        "ltos", env.spec, seed, scenario_hparams=scenario.hparams, overrides=light
    )
    return scenario, controller


def _train_rows(out: Path) -> list[dict[str, str]]:
    rows = rundir.read_csv(out / "episodes.csv")
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


def test_same_seed_and_workers_give_the_same_run_and_resume_ends_there(tmp_path: Path):
    scenario, straight = _ltos(seed=5)
    spec = make_env(scenario).spec
    recipe = EnvRecipe.of(scenario)
    train_parallel(recipe, straight, spec, out_dir=tmp_path / "a", episodes=4, seed=5, workers=2)

    _, resumed = _ltos(seed=5)
    first = train_parallel(
        recipe, resumed, spec, out_dir=tmp_path / "b", episodes=2, seed=5, workers=2
    )
    assert len(first) == 2
    _, resumed = _ltos(seed=5)  # a fresh process would start like this
    rest = train_parallel(
        recipe, resumed, spec, out_dir=tmp_path / "b", episodes=4, seed=5, workers=2, resume=True
    )
    assert len(rest) == 2

    # every worker transition reached the learner, in order
    steps = scenario.episode_steps
    assert straight.step_count == resumed.step_count == 4 * steps
    assert len(straight.buffer) == 4 * steps
    assert straight.episode == 4
    assert straight.update_count > 0
    # identical learner state and episode rows
    a, b = straight.state_dict(), resumed.state_dict()
    for key in ("q_net", "phi"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), (key, name)
    assert _train_rows(tmp_path / "a") == _train_rows(tmp_path / "b")
    # the sharing weights stored with each transition are those the worker acted with
    # (exploration noise makes them differ step to step), not the learner's last ones
    stored = straight.buffer.state_dict()
    weights = stored["arrays"]["weights"].numpy()[: 4 * steps]
    assert len(np.unique(weights.round(6), axis=0)) > steps


def test_an_episode_does_not_depend_on_the_worker_that_runs_it():
    scenario = load_scenario("grid2x2_v1").with_timing(seconds=120)
    recipe = EnvRecipe.of(scenario, backend="libsumo")
    env = make_env(scenario, backend="libsumo")
    spec = env.spec
    env.close()
    controller = make_controller("dgn", spec, 1, scenario_hparams=scenario.hparams)
    with RolloutPool(recipe, controller, spec, seed=1, workers=2) as pool:
        forward = pool.run(controller, [11, 12, 11], explore=True)
        backward = pool.run(controller, [12, 11], explore=True)
    assert [r.env_seed for r in forward] == [11, 12, 11]
    for x, y in ((forward[0], backward[1]), (forward[1], backward[0]), (forward[0], forward[2])):
        assert x.metrics == y.metrics
        assert len(x.transitions) == spec.episode_steps == 12
        for s, t in zip(x.transitions, y.transitions):
            np.testing.assert_array_equal(s.actions, t.actions)
            np.testing.assert_array_equal(s.next_step.obs, t.next_step.obs)
    # different seeds: different traffic
    assert forward[0].metrics != forward[1].metrics


class _Remembers(StaticController):
    """A controller whose observe would need what act saw, without exporting it."""

    learns = True

    def act(self, step: Any, *, explore: bool) -> np.ndarray:
        return np.zeros(self.spec.n_agents, dtype=np.int64)


def test_controllers_with_hidden_acting_state_are_refused():
    scenario = load_scenario("prisoner_v1")
    spec = make_env(scenario).spec
    with pytest.raises(UserError, match="parallel rollouts"):
        check_parallel(_Remembers(spec, None, 0))
    check_parallel(make_controller("dqn", spec, 0, scenario_hparams=scenario.hparams))
    check_parallel(make_controller("ltos", spec, 0, scenario_hparams=scenario.hparams))


def test_default_workers_follow_the_available_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    traffic = load_scenario("grid2x2_v1")
    spec = make_env(traffic).spec
    dqn = make_controller("dqn", spec, 0, scenario_hparams=traffic.hparams)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert available_cores() == 3
    assert default_workers(traffic, dqn, episodes=20) == 3
    assert default_workers(traffic, dqn, episodes=2) == 2  # no idle worker
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert default_workers(traffic, dqn, episodes=400) == MAX_DEFAULT_WORKERS
    assert default_workers(traffic, _Remembers(spec, None, 0), episodes=20) == 1
    prisoner = load_scenario("prisoner_v1")  # millisecond episodes: in-process
    ltos = make_controller("ltos", make_env(prisoner).spec, 0, scenario_hparams=prisoner.hparams)
    assert default_workers(prisoner, ltos, episodes=20) == 1


def test_train_cli_uses_the_default_workers_and_records_them(tmp_path: Path) -> None:
    fast = ("--set", "batch_size=4", "--set", "sample_size=8", "--set", "update_every_steps=5")
    out = subprocess.run(
        [sys.executable, "-m", "ltos_traffic.cli", "train", "--net", "grid2x2", "--controller",
         "dqn", "--seconds", "60", "--episodes", "2", "--out", str(tmp_path), *fast],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    expected = min(available_cores(), MAX_DEFAULT_WORKERS, 2)
    run = tmp_path / "grid2x2_v1" / "dqn" / "seed0"
    assert json.loads((run / "config.json").read_text())["workers"] == expected
    rows = rundir.read_csv(run / "episodes.csv")
    assert len(rows) == 2
    if expected > 1:
        assert f"{expected} worker processes" in out.stderr
        assert {r["workers"] for r in rows} == {str(expected)}
