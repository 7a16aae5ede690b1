"""The command line, run as a user runs it (a subprocess of the real entry point)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ltos_traffic.experiments.rundir import read_csv

REQUIRED = {
    "avg_travel_time_s",
    "avg_delay_s",
    "arrived",
    "throughput",
    "mean_queue",
    "controller",
    "net",
    "seed",
}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ltos_traffic.cli", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300,
    )  # fmt: skip


def test_list_shows_controllers_networks_and_scenarios():
    out = cli("list")
    assert out.returncode == 0, out.stderr
    for word in ("max_pressure", "fixed_time", "grid6x6", "grid2x2_v1", "shenzhen"):
        assert word in out.stdout


@pytest.mark.parametrize("controller", ["max_pressure", "fixed_time"])
def test_run_writes_run_directory_and_prints_summary(tmp_path: Path, controller: str):
    out = cli("run", "--net", "grid2x2", "--controller", controller, "--seconds", "120",
              "--seed", "3", "--out", str(tmp_path))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "avg_travel_time_s" in out.stdout and controller in out.stdout
    run = tmp_path / "grid2x2_v1" / controller / "seed3"
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary) >= REQUIRED
    assert summary["controller"] == controller and summary["seed"] == 3
    assert summary["arrived"] > 0 and summary["avg_travel_time_s"] > 0
    config = json.loads((run / "config.json").read_text())
    assert config["scenario"]["name"] == "grid2x2_v1"
    assert config["scenario"]["episode_seconds"] == 120
    assert config["versions"]["eclipse-sumo"] == "1.28.0"
    assert config["git_sha"]
    rows = read_csv(run / "episodes.csv")
    assert rows[-1]["phase"] == "eval"
    assert float(rows[-1]["avg_travel_time_s"]) == pytest.approx(summary["avg_travel_time_s"])
    assert len(read_csv(run / "steps.csv")) == 12


def test_same_seed_same_summary_through_the_cli(tmp_path: Path):
    runs = []
    for k in range(2):
        out = cli("run", "--net", "grid2x2", "--seconds", "200", "--seed", "5",
                  "--out", str(tmp_path / str(k)))  # fmt: skip
        assert out.returncode == 0, out.stderr
        summary = json.loads(
            (
                tmp_path / str(k) / "grid2x2_v1" / "max_pressure" / "seed5" / "summary.json"
            ).read_text()
        )
        runs.append({k: v for k, v in summary.items() if k not in ("wall_s", "run_dir")})
    assert runs[0] == runs[1]


def test_user_network_with_routes(tmp_path: Path):
    from sumo_nets import build_irregular

    net, rou = build_irregular(tmp_path / "net")
    out = cli("run", "--net", str(net), "--routes", str(rou), "--seconds", "300",
              "--out", str(tmp_path / "runs"))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "runs" / "custom_n" / "max_pressure" / "seed0" / "summary.json").is_file()
