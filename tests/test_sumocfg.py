""".sumocfg input, begin times and the empty-window error, on parsed files and real SUMO."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.envs.traffic import TrafficEnv
from ltos_traffic.errors import UserError
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.net.sumocfg import read_sumocfg
from ltos_traffic.scenario import (
    config_scenario,
    custom_scenario,
    load_scenario,
    scenario_from_dict,
)

from sumo_nets import build_irregular

CONFIG = """<configuration>
  <input>
    <net-file value="../net/n.net.xml"/>
    <route-files value="a.rou.xml, b.rou.xml"/>
    <additional-files value="t.add.xml"/>
  </input>
  <time>
    <begin value="{begin}"/>
    <end value="{end}"/>
  </time>
  <processing>
    <time-to-teleport value="300"/>
  </processing>
</configuration>
"""


def write_config(directory: Path, begin: str = "7:00:00", end: str = "28800") -> Path:
    (directory / "net").mkdir(parents=True, exist_ok=True)
    (directory / "cfg").mkdir(exist_ok=True)
    for name in ("net/n.net.xml", "cfg/a.rou.xml", "cfg/b.rou.xml", "cfg/t.add.xml"):
        (directory / name).write_text("<x/>")
    path = directory / "cfg" / "s.sumocfg"
    path.write_text(CONFIG.format(begin=begin, end=end))
    return path


def base():
    return load_scenario("grid2x2")


def test_sumocfg_files_are_resolved_against_its_folder_and_times_read(tmp_path: Path):
    config = read_sumocfg(write_config(tmp_path))
    assert config.net_file == (tmp_path / "net" / "n.net.xml").resolve()
    assert [p.name for p in config.route_files] == ["a.rou.xml", "b.rou.xml"]
    assert config.additional_files == ((tmp_path / "cfg" / "t.add.xml").resolve(),)
    assert config.begin_s == 25200.0 and config.end_s == 28800.0
    assert read_sumocfg(write_config(tmp_path, begin="100", end="-1")).end_s is None


@pytest.mark.parametrize(
    ("begin", "end", "message"),
    [("9", "5", "is not after begin"), ("soon", "100", "is not a time")],
)
def test_sumocfg_bad_times_are_one_line_errors(tmp_path: Path, begin, end, message):
    with pytest.raises(UserError, match=message):
        read_sumocfg(write_config(tmp_path, begin=begin, end=end))


def test_sumocfg_naming_a_missing_file_or_no_network_is_an_error(tmp_path: Path):
    path = write_config(tmp_path)
    (tmp_path / "cfg" / "t.add.xml").unlink()
    with pytest.raises(UserError, match=r"names t\.add\.xml, which does not exist"):
        read_sumocfg(path)
    path.write_text("<configuration><input/></configuration>")
    with pytest.raises(UserError, match="names no net-file"):
        read_sumocfg(path)


def test_config_scenario_takes_the_window_and_command_line_values_win(tmp_path: Path):
    path = str(write_config(tmp_path))
    scen = config_scenario(path, [], base())
    assert (scen.begin_s, scen.episode_seconds) == (25200.0, 3600.0)
    assert scen.network["additional"] == [str((tmp_path / "cfg" / "t.add.xml").resolve())]
    assert len(scen.network["routes"]) == 2 and scen.name == "custom_s"
    later = config_scenario(path, [], base(), begin=27000)
    assert (later.begin_s, later.episode_seconds) == (27000.0, 1800.0)  # the config's end stays
    short = config_scenario(path, [str(tmp_path / "cfg" / "a.rou.xml")], base(), seconds=60)
    assert (short.begin_s, short.episode_seconds) == (25200.0, 60.0)
    assert short.network["routes"] == [str((tmp_path / "cfg" / "a.rou.xml").resolve())]
    with pytest.raises(UserError, match="is not before the end"):
        config_scenario(path, [], base(), begin=28800)


def test_scenario_timing_begin_s():
    data = {"name": "x_v1", "network": {"source": "grid"}, "timing": {"begin_s": 100}}
    assert scenario_from_dict(data).begin_s == 100.0
    data["timing"] = {"begin_s": -1}
    with pytest.raises(UserError, match="begin_s must be a number of seconds >= 0"):
        scenario_from_dict(data)
    with pytest.raises(UserError, match="--begin"):
        base().with_timing(begin=float("nan"))


def late_network(tmp_path: Path) -> tuple[Path, Path]:
    """The irregular test network with its demand from 1,000 to 1,600 s."""
    return build_irregular(tmp_path / "net", begin_s=1000)


def test_begin_runs_late_demand_on_real_sumo(tmp_path: Path):
    net, rou = late_network(tmp_path)
    scen = custom_scenario(net, [rou], base()).with_timing(seconds=300, begin=1000)
    env = TrafficEnv(scen)
    try:
        ctl = make_controller("max_pressure", env.spec, 0)
        result = run_episode(env, ctl, seed=0, explore=False, learn=False)
    finally:
        env.close()
    m = result.metrics
    assert m.arrived > 20 and m.departed > m.arrived and m.sim_seconds == 300
    assert m.avg_delay_s > 0 and m.avg_travel_time_s > 0


@pytest.mark.parametrize(
    ("begin", "message"),
    [
        (0, "window 0-300 s: the first departure in the routes is at 1000 s; use --begin 1000"),
        (2000, "window 2000-2300 s: the demand runs from 1000 to 1600 s; use --begin 1000"),
    ],
)
def test_demand_outside_the_window_is_an_error_naming_the_first_departure(
    tmp_path: Path, begin: int, message: str
):
    net, rou = late_network(tmp_path)
    scen = custom_scenario(net, [rou], base()).with_timing(seconds=300, begin=begin)
    with pytest.raises(UserError, match=message):
        TrafficEnv(scen)


def test_an_episode_in_which_no_vehicle_departed_is_an_error(tmp_path: Path):
    net, _ = build_irregular(tmp_path)
    rou = tmp_path / "triggered.rou.xml"  # waits for a person who never comes
    rou.write_text(
        '<routes><route id="r" edges="W_J1 J1_U"/><vehicle id="v" depart="triggered" route="r">'
        '<stop lane="W_J1_0" duration="5" triggered="true"/></vehicle></routes>'
    )
    env = TrafficEnv(custom_scenario(net, [rou], base()).with_timing(seconds=30))
    try:
        ctl = make_controller("fixed_time", env.spec, 0)
        with pytest.raises(UserError, match="window 0-30 s, and the routes give no departure"):
            run_episode(env, ctl, seed=0, explore=False, learn=False)
    finally:
        env.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ltos_traffic.cli", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_cli_sumocfg_with_additional_file_and_the_empty_window_error(tmp_path: Path):
    net, rou = late_network(tmp_path)
    # the routes use a vehicle type that only the additional file defines
    (tmp_path / "types.add.xml").write_text(
        '<additional><vType id="slow" length="5" minGap="2.5" maxSpeed="10"/></additional>'
    )
    routes = tmp_path / "late.rou.xml"
    routes.write_text(rou.read_text().replace('<vType id="car"', '<vType id="unused"'))
    routes.write_text(routes.read_text().replace('type="car"', 'type="slow"'))
    config = tmp_path / "late.sumocfg"
    config.write_text(
        f'<configuration><input><net-file value="net/{net.name}"/>'
        '<route-files value="late.rou.xml"/><additional-files value="types.add.xml"/></input>'
        '<time><begin value="1000"/><end value="1240"/></time></configuration>'
    )
    out = cli("run", "--net", str(config), "--out", str(tmp_path / "runs"))
    assert out.returncode == 0, out.stderr
    run = tmp_path / "runs" / "custom_late" / "max_pressure" / "seed0"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["arrived"] > 0 and summary["avg_delay_s"] > 0
    scenario = json.loads((run / "config.json").read_text())["scenario"]
    assert scenario["begin_s"] == 1000 and scenario["episode_seconds"] == 240
    # the same routes as a plain net + routes, without --begin: nothing departs before 1,000 s
    out = cli("run", "--net", str(net), "--routes", str(rou), "--seconds", "300",
              "--out", str(tmp_path / "runs"))  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert "first departure in the routes is at 1000 s; use --begin 1000" in out.stderr


def test_user_network_takes_the_yellow_time_of_its_own_programs(tmp_path: Path):
    from ltos_traffic.scenario import resolve_scenario

    net, rou = build_irregular(tmp_path)  # netconvert's programs: 3 s of yellow
    assert resolve_scenario(str(net), (str(rou),), None).yellow_s == 3.0
    # a scenario file given with the network keeps its own timing
    assert resolve_scenario(str(net), (str(rou),), "grid2x2").yellow_s == base().yellow_s == 5.0
