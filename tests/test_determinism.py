"""Every registered controller: the same seed gives the same episodes, bit for bit.

For each controller, on the 2x2 SUMO grid (40 simulated seconds) and on
prisoner (10 steps), two fresh controllers with the same seed each run one
training episode (exploring and learning) and one greedy episode. The global
``random``/numpy/torch generators are set to *different* states before each
run, so a controller that draws from them instead of its own seeded generators
fails. Compared: every action taken, the episode metrics, the loss statistics
and the learned state. Hyperparameters are shrunk so that learners update
within the short episode.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from ltos_traffic.controllers.base import controller_class, controller_names, resolve_config
from ltos_traffic.envs.base import NetworkedEnv
from ltos_traffic.envs.factory import make_env
from ltos_traffic.errors import UserError
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.scenario import Scenario, load_scenario
from ltos_traffic.types import TimeStep

SCENARIOS = {"grid2x2": 40.0, "prisoner": 10.0}
SEED = 11
# Applied to every controller whose Config has the key: updates happen in a short episode.
SMALL = {
    "batch_size": 4, "sample_size": 8, "update_every_steps": 2, "buffer_capacity": 256,
    "n_steps": 4, "hl_update_every_steps": 2, "hl_update_every_episodes": 0,
    "hl_action_interval": 2, "hl_sample_size": 8, "hl_batch_size": 4,
}  # fmt: skip


@pytest.fixture(scope="module", params=list(SCENARIOS))
def scenario_env(request: pytest.FixtureRequest) -> Iterator[tuple[Scenario, NetworkedEnv]]:
    scenario = load_scenario(request.param).with_timing(seconds=SCENARIOS[request.param])
    env = make_env(scenario)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield scenario, env
    torch.set_num_threads(before)
    env.close()


def _build(name: str, scenario: Scenario, env: NetworkedEnv) -> Any:
    cls = controller_class(name)
    hparams = {k: dict(v) for k, v in scenario.hparams.items()}
    hparams["common"] = {**hparams.get("common", {}), **SMALL}
    try:
        config = resolve_config(cls.Config, name, hparams, {})
        return cls(env.spec, config, SEED)
    except UserError as exc:
        pytest.skip(f"{name} does not apply to {scenario.name}: {exc}")


def _flatten(state: Any, prefix: str = "") -> dict[str, Any]:
    """Nested state_dict to ``{path: leaf}`` with tensors as numpy arrays."""
    if isinstance(state, dict):
        out: dict[str, Any] = {}
        for key, value in state.items():
            out.update(_flatten(value, f"{prefix}/{key}"))
        return out
    if isinstance(state, list | tuple):
        out = {}
        for k, value in enumerate(state):
            out.update(_flatten(value, f"{prefix}/{k}"))
        return out
    if isinstance(state, torch.Tensor):
        return {prefix: state.detach().cpu().numpy().copy()}
    return {prefix: state}


def _one_run(name: str, scenario: Scenario, env: NetworkedEnv, global_seed: int) -> dict[str, Any]:
    random.seed(global_seed)
    np.random.seed(global_seed)
    torch.manual_seed(global_seed)
    ctl = _build(name, scenario, env)
    actions: list[np.ndarray] = []

    def record(step: TimeStep, taken: np.ndarray) -> None:
        actions.append(np.array(taken, copy=True))

    learner = getattr(ctl, "learns", False)
    train = run_episode(env, ctl, seed=3, explore=learner, learn=learner, on_step=record)
    greedy = run_episode(env, ctl, seed=4, explore=False, learn=False, on_step=record)
    return {
        "actions": np.stack(actions),
        "train": train.metrics.as_row(),
        "losses": train.losses,
        "greedy": greedy.metrics.as_row(),
        "state": _flatten(ctl.state_dict()),
    }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        nan_ok = a.dtype.kind == "f"
        return isinstance(b, np.ndarray) and np.array_equal(a, b, equal_nan=nan_ok)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


@pytest.mark.parametrize("name", controller_names())
def test_same_seed_gives_identical_episodes(
    name: str, scenario_env: tuple[Scenario, NetworkedEnv]
) -> None:
    scenario, env = scenario_env
    first = _one_run(name, scenario, env, global_seed=1)
    second = _one_run(name, scenario, env, global_seed=2)
    np.testing.assert_array_equal(first["actions"], second["actions"])
    for part in ("train", "losses", "greedy"):
        assert first[part].keys() == second[part].keys(), part
        diff = [k for k in first[part] if not _same(first[part][k], second[part][k])]
        assert not diff, f"{part} differs in {diff}"
    assert first["state"].keys() == second["state"].keys()
    diff = [k for k in first["state"] if not _same(first["state"][k], second["state"][k])]
    assert not diff, f"learned state differs in {diff[:5]}"
    if getattr(controller_class(name), "learns", False):
        assert first["losses"], f"{name} learned nothing in the training episode"
