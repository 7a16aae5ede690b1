"""What the tool prints says which controller is which and how each policy was trained.

``list`` gives every controller its own line; run tables, compare and reports
show "none", "N episodes" or "shipped: N episodes" (from the checkpoint's JSON
record) instead of a bare, and for shipped checkpoints wrong, episode count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ltos_traffic import report
from ltos_traffic.cli import cli
from ltos_traffic.experiments import compare
from ltos_traffic.experiments.checkpoint import SHIPPED_DIR, shipped_record
from ltos_traffic.experiments.rundir import training_text
from ltos_traffic.scenario import load_scenario

# DQN: a shipped checkpoint whose controller code changes least often
SHIPPED_DQN = SHIPPED_DIR / "grid6x6_v1" / "dqn.pt"


def test_list_describes_every_controller_by_its_own_line() -> None:
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0, result.output
    block = result.output.split("controllers:\n")[1].split("\nnetworks (--net):")[0]
    lines = {line.split()[0]: line.split(maxsplit=2)[2] for line in block.strip().splitlines()}
    assert {"ltos", "fixed_ltos", "random", "max_pressure"} <= set(lines)
    assert len(set(lines.values())) == len(lines), lines
    assert lines["fixed_ltos"].startswith("Fixed LToS")


def test_training_text_of_summaries_old_and_new() -> None:
    assert training_text({"training": "shipped: 30 episodes"}) == "shipped: 30 episodes"
    # summaries written before the key existed
    assert training_text({"controller": "max_pressure", "train_episodes": 0}) == "none"
    assert training_text({"controller": "dgn", "train_episodes": 1}) == "1 episode"
    if SHIPPED_DQN.is_file():
        episodes = shipped_record(SHIPPED_DQN)["episodes"]
        old = {"controller": "dqn", "train_episodes": 0, "checkpoint": str(SHIPPED_DQN)}
        assert training_text(old) == f"shipped: {episodes} episodes"
    assert training_text({"controller": "dqn", "checkpoint": "x/checkpoint.pt"}) == (
        "checkpoint x/checkpoint.pt"
    )


def test_run_table_shows_the_training(tmp_path: Path) -> None:
    args = ["run", "--net", "grid2x2", "--seconds", "60", "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, [*args, "--controller", "max_pressure"])
    assert result.exit_code == 0, result.output
    header, _, row = result.output.splitlines()[:3]
    assert header.split()[3] == "training" and row.split()[3] == "none"
    result = CliRunner().invoke(cli, [*args, "--controller", "dqn", "--episodes", "1"])
    assert result.exit_code == 0, result.output
    assert "1 episode " in result.output


@pytest.mark.skipif(not SHIPPED_DQN.is_file(), reason="no shipped grid6x6 DQN checkpoint")
def test_report_of_a_shipped_checkpoint_shows_its_training(tmp_path: Path) -> None:
    episodes = shipped_record(SHIPPED_DQN)["episodes"]
    scenario = load_scenario("grid6x6").with_timing(seconds=200)
    planned = compare.planned_training(scenario, "dqn", None)
    assert planned == (0, str(SHIPPED_DQN), f"the shipped checkpoint, trained {episodes} episodes")
    assert compare.planned_training(scenario, "dqn", 5) == (5, None, "5 training episodes")
    assert compare.planned_training(scenario, "max_pressure", None) == (0, None, "no training")

    logged: list[str] = []
    dirs = compare.ensure_runs(scenario, ["max_pressure", "dqn"], [0], tmp_path, log=logged.append)
    assert f"(the shipped checkpoint, trained {episodes} episodes)" in logged[-2]
    built = report.build_report(report.load_runs(dirs), tmp_path / "report")
    table = built.summary.set_index("controller")
    assert table.loc["dqn", "training"] == f"shipped: {episodes} episodes"
    assert table.loc["max_pressure", "training"] == "none"
    assert f"| dqn | 1 | shipped: {episodes} episodes |" in built.markdown.read_text()

    def no_rerun(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("a finished shipped-checkpoint run should be reused")

    compare.ensure_runs(scenario, ["max_pressure", "dqn"], [0], tmp_path, run=no_rerun)
