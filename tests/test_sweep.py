"""Sweeps: the (controller, seed) grid, local and on Ray (ltos_traffic/experiments/sweep.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ltos_traffic.cli import cli
from ltos_traffic.errors import UserError
from ltos_traffic.experiments import rundir
from ltos_traffic.experiments.sweep import job_grid, sweep
from ltos_traffic.scenario import load_scenario

CONTROLLERS = ("max_pressure", "dqn")
SEEDS = (0, 1)
RUN_FILES = ("config.json", "episodes.csv", "steps.csv", "summary.json")


def _tiny_jobs(out: Path) -> list:
    scenario = load_scenario("grid2x2_v1").with_timing(seconds=120)
    return job_grid(scenario, CONTROLLERS, SEEDS, out, episodes=1)


def _without_timing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]


def test_ray_sweep_gives_the_local_backends_results(tmp_path: Path):
    pytest.importorskip("ray")
    local = sweep(_tiny_jobs(tmp_path / "local"), backend="local", workers=2)
    remote = sweep(_tiny_jobs(tmp_path / "ray"), backend="ray", workers=2)

    assert [(s["controller"], s["seed"]) for s in local] == [
        (c, s) for c in CONTROLLERS for s in SEEDS
    ]
    for a, b in zip(local, remote):
        assert set(a) == set(b)
        for key in set(a) - {"wall_s", "run_dir"}:
            assert a[key] == b[key] or (a[key] != a[key] and b[key] != b[key]), key  # nan too
        assert a["arrived"] > 0
    # the same run directories, with the same contents, under each root
    for controller in CONTROLLERS:
        for seed in SEEDS:
            dirs = [
                rundir.run_dir(tmp_path / root, "grid2x2_v1", controller, seed)
                for root in ("local", "ray")
            ]
            for d in dirs:
                assert all((d / name).is_file() for name in RUN_FILES), d
            episodes = [_without_timing(rundir.read_csv(d / "episodes.csv")) for d in dirs]
            assert episodes[0] == episodes[1]
            phases = [r["phase"] for r in episodes[0]]
            assert phases == (["train", "eval"] if controller == "dqn" else ["eval"])
            steps = [(d / "steps.csv").read_text() for d in dirs]
            assert steps[0] == steps[1]
    # report reads sweep output unchanged
    from ltos_traffic.report import load_runs

    runs = load_runs(sorted((tmp_path / "ray" / "grid2x2_v1").glob("*/seed*")))
    assert runs is not None


def test_bad_sweeps_fail_before_running_anything(tmp_path: Path):
    scenario = load_scenario("grid2x2_v1")
    with pytest.raises(UserError):
        job_grid(scenario, ["max_pressure", "no_such_controller"], [0], tmp_path)
    with pytest.raises(UserError, match="lr"):
        job_grid(scenario, ["dqn"], [0], tmp_path, overrides=["lr=fast"])
    jobs = job_grid(scenario, ["max_pressure"], [0], tmp_path)
    with pytest.raises(UserError, match="backend"):
        sweep(jobs, backend="slurm")
    with pytest.raises(UserError, match="address"):
        sweep(jobs, backend="local", address="auto")
    assert not any(tmp_path.iterdir())


def test_sweep_command_is_registered_and_checks_its_options(tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(cli, ["sweep", "--help"])
    assert result.exit_code == 0
    assert "--backend [local|ray]" in result.output and "--address" in result.output
    result = runner.invoke(
        cli, ["sweep", "--net", "grid2x2", "--controllers", "max_pressure", "--workers", "0",
              "--out", str(tmp_path)],
    )  # fmt: skip
    assert isinstance(result.exception, UserError)
    assert "--workers" in str(result.exception)
