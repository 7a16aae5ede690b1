"""experiments/evaluate_runs.py: finished runs evaluated on many greedy episodes."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ltos_traffic.cli import cli

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "evaluate_runs.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_learned_and_static_runs_on_the_same_evaluation_episodes(tmp_path: Path) -> None:
    for seed in ("0", "1"):
        args = ["run", "--scenario", "prisoner_v1", "--controller", "dqn", "--episodes", "1",
                "--seed", seed, "--out", str(tmp_path)]  # fmt: skip
        assert CliRunner().invoke(cli, args).exit_code == 0
    args = ["run", "--scenario", "prisoner_v1", "--controller", "random", "--out", str(tmp_path)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    out = tmp_path / "eval"
    done = _run("--root", str(tmp_path), "--scenario", "prisoner_v1", "--controllers",
                "random,dqn", "--episodes", "3", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    with out.with_suffix(".csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["controller"], r["seed"], r["episodes"]) for r in rows] == [
        ("random", "0", "3"), ("dqn", "0", "3"), ("dqn", "1", "3")]  # fmt: skip
    assert all(float(r["return_std"]) >= 0 for r in rows)
    assert "| dqn | 0,1 |" in done.stdout and "| random | 0 |" in done.stdout


def test_a_learning_run_without_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "prisoner_v1" / "dqn" / "seed0").mkdir(parents=True)
    done = _run("--root", str(tmp_path), "--scenario", "prisoner_v1", "--controllers", "dqn",
                "--out", str(tmp_path / "eval"))  # fmt: skip
    assert done.returncode != 0 and done.stderr.strip().startswith("error:")
    assert "checkpoint" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "eval.csv").exists()
