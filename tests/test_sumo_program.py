"""sumo_program: the network's own signal programs, unchanged, through the same loop and metrics."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.envs.traffic import TrafficEnv
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.net.files import sumo_binary
from ltos_traffic.scenario import custom_scenario, load_scenario
from ltos_traffic.sim.simulator import parse_outputs

from sumo_nets import build_irregular


def plain_sumo(net: Path, rou: Path, seed: int, begin: int, end: int, out: Path):
    """The same network and demand in plain SUMO, no controller: its tripinfo."""
    subprocess.run(
        [sumo_binary("sumo"), "-n", str(net), "-r", str(rou), "--seed", str(seed),
         "--begin", str(begin), "--end", str(end), "--no-step-log", "true",
         "--tripinfo-output", str(out / "tripinfo.xml"),
         "--tripinfo-output.write-unfinished", "true",
         "--statistic-output", str(out / "statistics.xml")],
        check=True, capture_output=True,
    )  # fmt: skip
    return parse_outputs(out / "tripinfo.xml", out / "statistics.xml")


@pytest.mark.parametrize("begin", [0, 1000])
def test_sumo_program_episode_is_plain_sumo(tmp_path: Path, begin: int):
    net, rou = build_irregular(tmp_path / "net", begin_s=begin)
    scen = custom_scenario(net, [rou], load_scenario("grid2x2"))
    scen = scen.with_timing(seconds=400, begin=begin)
    env = TrafficEnv(scen)
    try:
        ctl = make_controller("sumo_program", env.spec, 0)
        m = run_episode(env, ctl, seed=3, explore=False, learn=False).metrics
        # the same env then driven by another controller sets the lights again
        other = run_episode(env, make_controller("max_pressure", env.spec, 0), seed=3,
                            explore=False, learn=False).metrics  # fmt: skip
    finally:
        env.close()
    trips = plain_sumo(net, rou, 3, begin, begin + 400, tmp_path)
    assert m.arrived == trips.durations.size > 50
    assert m.avg_travel_time_s == pytest.approx(float(np.mean(trips.durations)))
    assert m.avg_delay_s == pytest.approx(float(np.mean(trips.time_losses)))
    assert m.departed == trips.departed
    assert other.avg_travel_time_s != pytest.approx(m.avg_travel_time_s)
