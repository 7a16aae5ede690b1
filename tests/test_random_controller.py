"""The random controller: uniform over legal phases, seeded, and in compare's defaults.

Its behaviour on real environments (mask, dtype, state round trip, same seed,
same episode) is checked by the contract and determinism tests like every other
controller's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from ltos_traffic.cli import cli
from ltos_traffic.cli.report import DEFAULT_CONTROLLERS, DEFAULT_GRIDWORLD_CONTROLLERS
from ltos_traffic.controllers.base import controller_class, make_controller
from ltos_traffic.errors import UserError
from ltos_traffic.experiments import experiment
from ltos_traffic.types import EnvSpec, TimeStep

MASK = np.array(
    [[1, 1, 1, 1],  # four legal phases
     [1, 0, 1, 0],  # two
     [0, 0, 0, 1]],  # one
    dtype=bool,
)  # fmt: skip


def spec() -> EnvSpec:
    return EnvSpec("unit", ("a", "b", "c"), 2, 6, 4, np.zeros((3, 3), bool), 10)


def step() -> TimeStep:
    zeros = np.zeros(3, np.float32)
    return TimeStep(
        np.zeros((3, 2), np.float32), np.zeros(6, np.float32), MASK, zeros, False, 0, 0.0
    )


def draws(seed: int, n: int = 4000, explore: bool = False) -> np.ndarray:
    ctl = make_controller("random", spec(), seed)
    return np.stack([ctl.act(step(), explore=explore) for _ in range(n)])  # (n, 3)


def test_uniform_over_the_legal_phases_only() -> None:
    actions = draws(seed=0)
    assert actions.dtype == np.int64
    for agent, row in enumerate(MASK):
        counts = np.bincount(actions[:, agent], minlength=4)
        assert (counts[~row] == 0).all()
        share = counts[row] / len(actions)
        assert share == pytest.approx(np.full(row.sum(), 1 / row.sum()), abs=0.03)


def test_seeded_and_the_same_whether_exploring_or_not() -> None:
    np.testing.assert_array_equal(draws(seed=3, n=200), draws(seed=3, n=200, explore=True))
    assert not np.array_equal(draws(seed=3, n=200), draws(seed=4, n=200))
    assert not getattr(controller_class("random"), "learns", True)


def test_compare_runs_random_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for names in (DEFAULT_CONTROLLERS, DEFAULT_GRIDWORLD_CONTROLLERS):
        assert names.split(",")[0] == "random"
        for name in names.split(","):
            controller_class(name)  # every default is a registered controller
    asked: list[str] = []

    def fake_run(scenario: Any, controller: str, **_: Any) -> dict[str, Any]:
        asked.append(controller)  # the runs themselves are other tests' business
        return {}

    monkeypatch.setattr(experiment, "run", fake_run)
    result = CliRunner().invoke(cli, ["compare", "--net", "grid2x2", "--out", str(tmp_path)])
    assert isinstance(result.exception, UserError)  # no run wrote a summary: nothing to report
    assert asked == DEFAULT_CONTROLLERS.split(",")
