"""The delay metric (SUMO tripinfo ``timeLoss``) against a hand-checked tripinfo file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.envs.traffic import TrafficEnv
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.scenario import load_scenario
from ltos_traffic.sim.simulator import parse_outputs

# Three arrived vehicles, one still running at the end, one never inserted.
# By hand: arrived delay (30.5 + 9.5 + 20.0) / 3 = 20.0 s; with the running one
# (60.0 + 40.0) / 4 = 25.0 s. Travel time 240 / 3 = 80.0 s and (240 + 70) / 4 = 77.5 s.
# Journey time counts the waits before insertion (departDelay 5 + 0 + 10 + 20) and the
# never-inserted vehicle's 30 s wait so far: (310 + 35 + 30) / 5 = 75.0 s.
TRIPINFO = """<tripinfos>
  <tripinfo id="a" depart="0.00" arrival="100.00" duration="100.00" waitingTime="12.00"
            departDelay="5.00"
            timeLoss="30.50"/>
  <tripinfo id="b" depart="10.00" arrival="70.00" duration="60.00" waitingTime="0.00"
            departDelay="0.00"
            timeLoss="9.50"/>
  <tripinfo id="c" depart="20.00" arrival="100.00" duration="80.00" waitingTime="6.00"
            departDelay="10.00"
            timeLoss="20.00"/>
  <tripinfo id="d" depart="50.00" arrival="-1.00" duration="70.00" waitingTime="25.00"
            departDelay="20.00"
            timeLoss="40.00"/>
  <tripinfo id="e" depart="-1.00" arrival="-1.00" duration="-1.00" waitingTime="0.00"
            timeLoss="0.00"/>
</tripinfos>
"""
STATISTICS = """<statistics>
  <vehicles loaded="5" inserted="4" running="1" waiting="1"/>
  <teleports total="0"/>
  <vehicleTripStatistics count="4" departDelay="8.75" departDelayWaiting="30.00"/>
</statistics>
"""


@pytest.fixture
def outputs(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "tripinfo.xml").write_text(TRIPINFO)
    (tmp_path / "statistics.xml").write_text(STATISTICS)
    return tmp_path / "tripinfo.xml", tmp_path / "statistics.xml"


def test_parse_outputs_reads_time_loss_of_arrived_and_running_vehicles(outputs):
    trips = parse_outputs(*outputs)
    np.testing.assert_allclose(trips.time_losses, [30.5, 9.5, 20.0])
    np.testing.assert_allclose(trips.unfinished_time_losses, [40.0])
    np.testing.assert_allclose(trips.durations, [100.0, 60.0, 80.0])
    assert trips.depart_delay_s == pytest.approx(35.0)
    assert trips.insert_wait_s == pytest.approx(30.0)


def test_episode_metrics_average_delay_as_checked_by_hand(outputs, monkeypatch):
    env = TrafficEnv(load_scenario("grid2x2").with_timing(seconds=30))
    try:

        def finish():  # the real episode ends, its metrics come from the hand-written files
            env.sim.close()
            return parse_outputs(*outputs)

        monkeypatch.setattr(env.sim, "finish", finish)
        ctl = make_controller("fixed_time", env.spec, 0)
        m = run_episode(env, ctl, seed=0, explore=False, learn=False).metrics
    finally:
        env.close()
    assert m.avg_delay_s == pytest.approx(20.0)
    assert m.avg_delay_all_s == pytest.approx(25.0)
    assert m.avg_travel_time_s == pytest.approx(80.0)
    assert m.avg_travel_time_all_s == pytest.approx(77.5)
    assert m.as_row()["avg_delay_s"] == pytest.approx(20.0)
    assert m.avg_journey_time_s == pytest.approx(75.0)


def test_real_episode_delay_is_within_travel_time():
    env = TrafficEnv(load_scenario("grid2x2").with_timing(seconds=300))
    try:
        ctl = make_controller("max_pressure", env.spec, 0)
        m = run_episode(env, ctl, seed=0, explore=False, learn=False).metrics
    finally:
        env.close()
    assert 0 < m.avg_delay_s < m.avg_travel_time_s
    assert 0 < m.avg_delay_all_s < m.avg_travel_time_all_s
    assert m.waiting_to_insert == 0  # then journeys are travel times plus insertion waits
    assert m.avg_journey_time_s >= m.avg_travel_time_all_s
