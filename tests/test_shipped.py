"""Shipped checkpoints: small, safe to load, reproduce their recorded evaluation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.envs.factory import make_env
from ltos_traffic.errors import UserError
from ltos_traffic.experiments.checkpoint import SHIPPED_DIR, load_checkpoint, shipped_record
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.experiments.shipped import evaluate_checkpoint, export
from ltos_traffic.scenario import load_scenario

SHIPPED = sorted(SHIPPED_DIR.glob("*/*.pt"))
GRID = [p for p in SHIPPED if p.parent.name == "grid6x6_v1"]


def test_export_empties_the_buffer_and_keeps_the_policy(tmp_path: Path):
    scenario = load_scenario("grid2x2").with_timing(seconds=300)
    env = make_env(scenario)
    try:
        ctl = make_controller("dgn", env.spec, 0, scenario_hparams=scenario.hparams)
        run_episode(env, ctl, seed=0, explore=True, learn=True)
        assert len(ctl.buffer) > 0
        path = tmp_path / "dgn.pt"
        export(ctl, path, seed=0, episodes_done=1)
        other = make_controller("dgn", env.spec, 5, scenario_hparams=scenario.hparams)
        assert load_checkpoint(path, other) == 1
        assert len(other.buffer) == 0
        step = env.reset(3)
        assert (ctl.act(step, explore=False) == other.act(step, explore=False)).all()
    finally:
        env.close()


def test_grid6x6_checkpoints_ship_for_the_learning_core():
    names = {p.stem for p in GRID}
    assert {"ltos", "fixed_ltos", "dgn", "dqn"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_checkpoint_is_small_and_tensor_only(path: Path):
    assert path.stat().st_size < 2_000_000
    payload = torch.load(path, weights_only=True)
    assert payload["controller"] == path.stem
    record = shipped_record(path)
    assert record["episodes"] == payload["episodes_done"] > 0
    # records made before issue 17 name the maker by its old module path, ltos_traffic.shipped
    maker = ("python -m ltos_traffic.experiments.shipped ", "python -m ltos_traffic.shipped ")
    assert record["command"].startswith(maker)


@pytest.mark.parametrize("path", GRID, ids=lambda p: p.stem)
def test_grid6x6_checkpoint_reproduces_its_recorded_travel_time(path: Path):
    record = shipped_record(path)
    scenario = load_scenario(record["scenario"])
    metrics = evaluate_checkpoint(scenario, record["controller"], path, record["seed"])
    assert metrics.avg_travel_time_s == pytest.approx(record["eval"]["avg_travel_time_s"], rel=0.01)


def test_shipped_checkpoint_on_another_network_is_a_clear_error(tmp_path: Path):
    path = SHIPPED_DIR / "grid6x6_v1" / "dgn.pt"
    if not path.is_file():
        pytest.skip("no shipped grid6x6 DGN checkpoint")
    scenario = load_scenario("grid2x2")
    env = make_env(scenario)
    try:
        ctl = make_controller("dgn", env.spec, 0, scenario_hparams=scenario.hparams)
        with pytest.raises(UserError, match="does not fit"):
            load_checkpoint(path, ctl)
    finally:
        env.close()


def test_run_uses_the_shipped_checkpoint_and_says_so(tmp_path: Path):
    if not (SHIPPED_DIR / "grid6x6_v1" / "ltos.pt").is_file():
        pytest.skip("no shipped grid6x6 LToS checkpoint")
    out = subprocess.run(
        [sys.executable, "-m", "ltos_traffic.cli", "run", "--net", "grid6x6",
         "--controller", "ltos", "--seconds", "600", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "shipped checkpoint" in out.stdout
    assert "avg_travel_time_s" in out.stdout
