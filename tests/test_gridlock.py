"""A jammed network is still scored: teleports reported, unfinished vehicles counted.

Scoring convention (``EpisodeMetrics``, ``docs/reliability.md``):

* ``avg_travel_time_s``: arrived vehicles only (SUMO tripinfo ``duration``);
* ``avg_travel_time_all_s``: every vehicle that entered the network; one still
  driving (or stuck) at the end counts with its time so far, end minus
  departure (tripinfo ``write-unfinished``), as CityFlow's average travel time does;
* ``running`` and ``waiting_to_insert``: vehicles in the network, and vehicles
  due but not yet inserted, at the end (the latter are not in either mean);
* ``teleports``: SUMO's teleport count (a stuck vehicle jumps ahead after
  ``--time-to-teleport`` seconds; its trip then goes on and its time counts).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ltos_traffic.envs.traffic import TrafficEnv
from ltos_traffic.experiments import rundir
from ltos_traffic.scenario import load_scenario
from ltos_traffic.sim.simulator import parse_outputs

REPO = Path(__file__).resolve().parent.parent

# The 2x2 grid at eight times its demand; a teleport after 60 s stuck.
JAM_TOML = """
name = "grid2x2_jam_v1"
kind = "traffic"
description = "2x2 grid at 7,200 veh/h: jams (tests)"

[network]
source = "grid"
rows = 2
cols = 2
block_m = 100.0
speed = 11.111
demand = "mixed"
rate = 7200
seed = 0

[timing]
episode_seconds = 300
decision_interval_s = 10
yellow_s = 5
min_green_s = 5

[sumo]
args = ["--time-to-teleport", "60"]
"""

TRIPINFO = """<tripinfos>
    <tripinfo id="a" depart="0.00" arrival="100.00" duration="100.00" waitingTime="10.00"/>
    <tripinfo id="b" depart="50.00" arrival="250.00" duration="200.00" waitingTime="30.00"/>
    <tripinfo id="c" depart="250.00" arrival="-1.00" duration="50.00" waitingTime="40.00"/>
    <tripinfo id="d" depart="-1.00" arrival="-1.00" duration="-1.00" waitingTime="0.00"/>
</tripinfos>
"""
STATISTICS = """<statistics>
    <vehicles loaded="5" inserted="3" running="1" waiting="2"/>
    <teleports total="4" jam="3" yield="1" wrongLane="0"/>
</statistics>
"""


def test_unfinished_vehicles_count_with_their_time_so_far(tmp_path: Path) -> None:
    (tmp_path / "tripinfo.xml").write_text(TRIPINFO)
    (tmp_path / "statistics.xml").write_text(STATISTICS)
    trips = parse_outputs(tmp_path / "tripinfo.xml", tmp_path / "statistics.xml")
    assert trips.durations.tolist() == [100.0, 200.0]
    assert trips.unfinished.tolist() == [50.0]  # "d" never entered the network
    assert (trips.teleports, trips.waiting_to_insert, trips.departed) == (4, 2, 3)

    env = TrafficEnv(load_scenario("grid2x2").with_timing(seconds=300))
    env.sim.finish = lambda: trips  # type: ignore[method-assign]
    env._t = 30
    metrics = env._finish()
    assert metrics.avg_travel_time_s == 150.0
    assert metrics.avg_travel_time_all_s == pytest.approx((100 + 200 + 50) / 3)
    assert (metrics.arrived, metrics.running, metrics.teleports) == (2, 1, 4)
    assert metrics.waiting_to_insert == 2


def test_a_jam_where_nothing_arrives_is_still_scored(tmp_path: Path) -> None:
    (tmp_path / "tripinfo.xml").write_text(
        '<tripinfos><tripinfo id="c" depart="10.00" arrival="-1.00" duration="290.00"/>'
        '<tripinfo id="e" depart="20.00" arrival="-1.00" duration="280.00"/></tripinfos>'
    )
    trips = parse_outputs(tmp_path / "tripinfo.xml", tmp_path / "missing.xml")
    env = TrafficEnv(load_scenario("grid2x2").with_timing(seconds=300))
    env.sim.finish = lambda: trips  # type: ignore[method-assign]
    env._t = 30
    metrics = env._finish()
    assert math.isnan(metrics.avg_travel_time_s) and metrics.arrived == 0
    assert metrics.avg_travel_time_all_s == 285.0 and metrics.running == 2
    assert metrics.throughput == 0.0


def test_jammed_grid_through_the_cli_reports_teleports_and_unfinished(tmp_path: Path) -> None:
    scenario = tmp_path / "jam.toml"
    scenario.write_text(JAM_TOML)
    # fixed_time with an endless first green: N-S and left turns never get green
    proc = subprocess.run(
        [sys.executable, "-m", "ltos_traffic.cli", "run", "--scenario", str(scenario),
         "--controller", "fixed_time", "--set", "green_s=100000", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "teleports" in proc.stdout
    run_dir = tmp_path / "grid2x2_jam_v1" / "fixed_time" / "seed0"
    summary = json.loads((run_dir / "summary.json").read_text())
    (row,) = rundir.read_csv(run_dir / "episodes.csv")
    assert int(row["teleports"]) == summary["teleports"] > 0
    arrived, running = summary["arrived"], summary["running"]
    assert running > 0 and summary["waiting_to_insert"] > 0  # the network is full
    assert arrived + running == summary["departed"]
    mean_all, mean_arrived = summary["avg_travel_time_all_s"], summary["avg_travel_time_s"]
    assert np.isfinite(mean_all)
    # what the unfinished vehicles add: their times so far, each within the episode
    unfinished_total = mean_all * (arrived + running) - mean_arrived * arrived
    assert 0 < unfinished_total <= running * 300 + 1e-6
    assert mean_all != pytest.approx(mean_arrived)
