"""The RESCO benchmark maps as named scenarios (files from the optional sumo-rl package)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ltos_traffic.envs.traffic import TrafficEnv
from ltos_traffic.errors import UserError
from ltos_traffic.net import resco
from ltos_traffic.scenario import NET_ALIASES, load_scenario

# RESCO's resco_benchmark/config/map_config.py: window start, decision interval, yellow
WINDOWS = {
    "grid4x4": (0, 10, 3),
    "arterial4x4": (0, 5, 2),
    "cologne1": (25200, 10, 3),
    "cologne3": (25200, 10, 3),
    "cologne8": (25200, 10, 3),
    "ingolstadt1": (57600, 10, 3),
    "ingolstadt7": (57600, 10, 3),
    "ingolstadt21": (57600, 10, 3),
}
needs_extra = pytest.mark.skipif(
    resco.resco_dir() is None,
    reason="the RESCO maps need the optional extra: pip install 'ltos-traffic[resco]'",
)


@pytest.mark.parametrize("name", resco.MAPS)
def test_each_map_is_a_scenario_with_rescos_window_and_timing(name: str):
    assert NET_ALIASES[name] == f"{name}_v1"
    scen = load_scenario(name)
    begin, decision, yellow = WINDOWS[name]
    assert (scen.begin_s, scen.episode_seconds) == (begin, 3600)
    assert (scen.decision_interval_s, scen.yellow_s) == (decision, yellow)


def test_without_the_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(resco, "resco_dir", lambda: None)
    with pytest.raises(UserError, match=r"install it with pip install 'ltos-traffic\[resco\]'"):
        TrafficEnv(load_scenario("cologne8"))


@needs_extra
def test_map_files_come_from_the_installed_package():
    files = resco.resco_files("ingolstadt7")
    assert files.net_file.name == "ingolstadt7.net.xml" and files.net_file.is_file()
    assert [r.name for r in files.route_files] == ["ingolstadt7.rou.xml"]


@needs_extra
def test_cologne1_end_to_end_with_the_networks_own_program(tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-m", "ltos_traffic.cli", "compare", "--net", "cologne1",
         "--controllers", "sumo_program,max_pressure", "--seeds", "0", "--seconds", "600",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Average delay (s)" in out.stdout
    assert (tmp_path / "report.md").is_file() and (tmp_path / "report.html").is_file()
    run = tmp_path / "cologne1_v1" / "sumo_program" / "seed0"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["arrived"] > 200 and 0 < summary["avg_delay_s"] < summary["avg_travel_time_s"]
    scenario = json.loads((run / "config.json").read_text())["scenario"]
    assert scenario["begin_s"] == 25200 and scenario["episode_seconds"] == 600
    # max-pressure is no worse than the city's own program (its shared lanes let left turns
    # yield with the straight traffic, as the program does)
    pressure = json.loads(
        (run.parent.parent / "max_pressure" / "seed0" / "summary.json").read_text()
    )
    assert pressure["avg_delay_s"] <= summary["avg_delay_s"]


@needs_extra
def test_one_compare_runs_every_resco_map(tmp_path: Path):
    """`compare --net resco`: the eight maps in one command and one report."""
    from click.testing import CliRunner

    from ltos_traffic.cli import cli

    args = ["compare", "--net", "resco", "--controllers", "max_pressure,sumo_program",
            "--seconds", "30", "--out", str(tmp_path)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summaries = sorted(tmp_path.glob("*/*/seed0/summary.json"))
    scenarios = {json.loads(p.read_text())["scenario"] for p in summaries}
    assert scenarios == {f"{name}_v1" for name in resco.MAPS} and len(summaries) == 16
    report = (tmp_path / "report.md").read_text()
    assert all(f"{name}_v1" in report for name in resco.MAPS)
