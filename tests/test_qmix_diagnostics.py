"""experiments/qmix_max_green.py and qmix_values.py on a trained QMIX run (grid2x2, SUMO)."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ltos_traffic.cli import cli

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(EXPERIMENTS / script), *args]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.fixture(scope="module")
def qmix_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-episode QMIX run on grid2x2 (SUMO) with a non-default discount."""
    out = tmp_path_factory.mktemp("qmix_runs")
    args = ["run", "--net", "grid2x2", "--controller", "qmix", "--episodes", "2", "--seed", "0",
            "--set", "gamma=0.8", "--out", str(out)]  # fmt: skip
    assert CliRunner().invoke(cli, args).exit_code == 0
    return next(out.glob("*/qmix/seed0"))


def test_no_limit_reproduces_the_run_and_a_limit_of_one_changes_every_phase(
    qmix_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "max_green.csv"
    done = _run("qmix_max_green.py", str(qmix_run), "--max-repeat", "0,1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as fh:
        free, capped = list(csv.DictReader(fh))
    summary = json.loads((qmix_run / "summary.json").read_text())
    assert float(free["avg_travel_time_s"]) == summary["avg_travel_time_s"]  # the same episode
    assert int(free["teleports"]) == summary["teleports"]
    assert (free["max_repeat"], capped["max_repeat"], capped["trained_max_repeat"]) == (
        "0",
        "1",
        "0",
    )
    assert float(capped["longest_hold_steps"]) == 1.0 and float(capped["hold_rate"]) == 0.0
    assert float(free["longest_hold_steps"]) >= 1.0


def test_values_put_q_tot_beside_the_value_of_each_episodes_own_reward(
    qmix_run: Path, tmp_path: Path
) -> None:
    figure, table = tmp_path / "values.png", tmp_path / "values.csv"
    done = _run("qmix_values.py", "--run", f"seed 0, gamma=0.8={qmix_run}", "--out", str(figure),
                "--csv", str(table))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert figure.read_bytes()[:4] == b"\x89PNG"
    with table.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    with (qmix_run / "episodes.csv").open(newline="") as fh:
        trained = [r for r in csv.DictReader(fh) if r["phase"] == "train"]
    assert len(rows) == len(trained) == 2
    scenario = json.loads((qmix_run / "config.json").read_text())["scenario"]
    decisions = scenario["episode_seconds"] / scenario["decision_interval_s"]
    for row, episode in zip(rows, trained):
        assert row["label"] == "seed 0, gamma=0.8"  # split at the last "="
        team = float(episode["episode_return"]) / (decisions * 4) * 0.1  # grid2x2: 4 lights
        assert math.isclose(float(row["team_reward"]), team, rel_tol=1e-9)
        assert math.isclose(float(row["implied_value"]), team / (1 - 0.8), rel_tol=1e-9)
        assert float(row["q_tot"]) == float(episode["q_tot"])
        assert float(row["implied_value"]) < 0  # every reward is minus a queue


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("qmix_max_green.py", ["{tmp}"]),
        ("qmix_max_green.py", ["{tmp}", "--max-repeat", "a,b"]),
        ("qmix_max_green.py", ["{tmp}", "--max-repeat", "-1"]),
        ("qmix_values.py", ["--run", "x={tmp}", "--out", "{tmp}/v.png"]),
        ("qmix_values.py", ["--run", "{tmp}", "--out", "{tmp}/v.png"]),
    ],
)
def test_bad_input_is_a_one_line_error(script: str, args: list[str], tmp_path: Path) -> None:
    done = _run(script, *(a.format(tmp=tmp_path) for a in args))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
