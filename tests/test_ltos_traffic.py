"""LToS on real SUMO traffic: the default high level trains, its weights move and are recorded."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ltos_traffic.cli import cli
from ltos_traffic.controllers.ltos import LToS
from ltos_traffic.controllers.sharing_signal import sharing_signal
from ltos_traffic.experiments.experiment import open_run
from ltos_traffic.experiments.runner import SharingMeter
from ltos_traffic.experiments.training import train
from ltos_traffic.scenario import load_scenario

from fakes import RingEnv, make_learner, one_torch_thread

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def test_default_ltos_updates_its_high_level_on_a_short_traffic_run(tmp_path: Path) -> None:
    """Scenario defaults only: 20 episodes give one high-level round, and it moves w within
    the trust region."""
    scenario = load_scenario("grid2x2").with_timing(seconds=200)
    out_dir, env, ltos = open_run(scenario, "ltos", seed=0, out_root=tmp_path)
    assert isinstance(ltos, LToS)
    cfg = ltos.config
    assert cfg.hl_optimizer == "adam" and cfg.hl_update_every_episodes == 20
    assert cfg.hl_max_shift == pytest.approx(0.03)
    assert ltos.schedule_note(19) is not None and ltos.schedule_note(20) is None
    assert cfg.episodes_per_round == 4 and cfg.q_weights == "input"
    obs = np.random.default_rng(0).random((env.spec.n_agents, env.spec.obs_dim), np.float32)
    before = ltos.sharing_weights(obs)
    try:
        train(env, ltos, out_dir=out_dir, episodes=20, seed=0)
    finally:
        env.close()
    assert ltos.hl_round_count == 1
    batches = -(-min(cfg.hl_sample_size, len(ltos.buffer)) // cfg.hl_batch_size)
    assert ltos.hl_update_count >= cfg.hl_epochs * (batches - 1) > 0
    after = ltos.sharing_weights(obs)
    assert np.abs(after - before).max() > 1e-3  # visibly, not the 2e-4 of one SGD round
    # Exploration decays per 4-episode round: the first four episodes explored at eps_start.
    with (out_dir / "episodes.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    eps = [float(r["epsilon"]) for r in rows]
    assert eps[:4] == [cfg.eps_start] * 4 and eps[4] < eps[3] and eps[4:8] == [eps[4]] * 4
    assert [r["hl_shift"] != "" for r in rows] == [False] * 19 + [True]
    assert 0.0 < float(rows[-1]["hl_shift"]) <= cfg.hl_max_shift * 1.01
    for row in rows:
        low, mean, high = (float(row[k]) for k in ("self_weight_min", "self_weight",
                                                   "self_weight_max"))  # fmt: skip
        assert 0.0 < low <= mean <= high < 1.0 and float(row["self_weight_std"]) >= 0.0
    assert rows[-1]["hl_value"] != ""
    # The gradient the round followed can be measured on the replay samples it draws.
    sample = ltos.buffer.gather(np.arange(min(len(ltos.buffer), 60)))
    signal = sharing_signal(ltos, sample.obs, sample.mask)
    assert signal.to_receiver.shape == signal.to_keeper.shape == (60, len(signal.giver))
    summary = signal.summary(cfg.hl_batch_size)
    assert summary["mean_abs_to_receiver"] > 0 and np.isfinite(summary["self_logit_grad_mean"])


def test_sharing_meter_reports_the_spread_over_agents() -> None:
    env = RingEnv(n_agents=4)
    ltos = make_learner("ltos", env, hl_action_interval=1)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # agents with different weights
        for p in ltos.phi.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)
    meter = SharingMeter(ltos)
    step = env.reset(0)
    meter(step, np.zeros(env.spec.n_agents, np.int64))
    own = ltos.sharing_weights(step.obs)[:, 0].astype(np.float64)
    assert own.std() > 1e-3
    stats = meter.stats()
    assert stats["self_weight"] == pytest.approx(own.mean())
    assert stats["self_weight_std"] == pytest.approx(own.std())
    assert stats["self_weight_min"] == pytest.approx(own.min())
    assert stats["self_weight_max"] == pytest.approx(own.max())
    assert SharingMeter(make_learner("dgn", env)).stats() == {}


def test_table5_literal_reading_stays_selectable(tmp_path: Path) -> None:
    scenario = load_scenario("grid2x2")
    overrides = ("hl_optimizer=sgd", "hl_epochs=1", "hl_lr_decay=1.0",
                 "hl_update_every_episodes=20", "q_weights=edges", "hl_target_noise=0",
                 "hl_ou_random_mean=false", "episodes_per_round=1")  # fmt: skip
    _, env, ltos = open_run(scenario, "ltos", seed=0, out_root=tmp_path, overrides=overrides)
    env.close()
    cfg = ltos.config
    assert (cfg.hl_optimizer, cfg.hl_epochs, cfg.q_weights) == ("sgd", 1, "edges")
    assert ltos.q_net.input_edges == 0 and ltos.q_net.edge_dim == 1


def test_run_without_controller_is_max_pressure_where_no_ltos_ships(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["run", "--net", "grid2x2", "--seconds", "60", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "max_pressure" in result.output


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("q_weights", "nowhere", "q_weights must be one of"),
        ("hl_epochs", "0", "hl_epochs must be >= 1"),
        ("hl_lr_decay", "1.5", "hl_lr_decay in (0, 1]"),
        ("episodes_per_round", "0", "episodes_per_round must be at least 1"),
    ],
)
def test_bad_high_level_settings_are_one_line_errors(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    result = CliRunner().invoke(
        cli,
        ["train", "--net", "grid2x2", "--controller", "ltos", "--episodes", "1",
         "--set", f"{key}={value}", "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code != 0
    assert message in str(result.exception) or message in result.output


def test_a_run_too_short_for_a_high_level_round_says_so(tmp_path: Path) -> None:
    args = ["--net", "grid2x2", "--controller", "ltos", "--seconds", "60", "--out", str(tmp_path)]
    short = CliRunner().invoke(cli, ["run", *args, "--episodes", "1"])
    assert short.exit_code == 0, short.output
    assert "updates its sharing weights every 20 training episodes, so 1 leave" in short.output
    assert "fixed LToS" in short.output
    cadence = ["--set", "hl_update_every_episodes=1", "--workers", "1"]
    trained = CliRunner().invoke(cli, ["train", *args, "--episodes", "1", *cadence])
    assert trained.exit_code == 0, trained.output
    assert "sharing weights every" not in trained.output
