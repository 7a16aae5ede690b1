"""Topology from real SUMO networks: the 2x2 and 6x6 grids and an irregular network."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from ltos_traffic.envs.traffic import TrafficEnv
from ltos_traffic.errors import UserError
from ltos_traffic.net.resolve import resolve_net_files
from ltos_traffic.scenario import load_scenario, resolve_scenario
from ltos_traffic.sim.topology import PHASE_NAMES, load_topology, yellow_state

from fakes import greedy_metrics
from sumo_nets import build_irregular


@pytest.fixture(scope="module")
def grid2x2():
    return load_topology(resolve_net_files(load_scenario("grid2x2").network).net_file)


def test_grid2x2_agents_and_adjacency(grid2x2):
    assert grid2x2.agent_ids == ("A0", "A1", "B0", "B1")
    adj = grid2x2.adjacency
    assert (adj == adj.T).all() and not adj.diagonal().any()
    assert adj.sum(axis=1).tolist() == [2, 2, 2, 2]  # corners of a 2x2 grid
    assert not adj[0, 3] and adj[0, 1] and adj[0, 2]


def test_grid2x2_dedicated_lanes_give_one_movement_type_per_lane(grid2x2):
    for x in grid2x2.intersections:
        assert all(x.legal)  # four green phases on every 4-arm junction
        assert len(x.incoming) == 12
        by_lane: dict[str, set[str]] = {}
        for link in x.links:
            by_lane.setdefault(link.in_lane, set()).add(link.direction)
        assert all(len(d) == 1 for d in by_lane.values())
        assert {lane.rsplit("_", 1)[1]: d.pop() for lane, d in by_lane.items()} == {
            "0": "r", "1": "s", "2": "l"
        }  # fmt: skip


def test_phases_serve_the_right_movements(grid2x2):
    x = grid2x2.intersections[0]
    for phase, state in enumerate(x.green_states):
        green = [link for link in x.links if state[link.index] == "G"]
        assert green, PHASE_NAMES[phase]
        assert {link.axis for link in green} == {phase % 2}
        assert all((link.direction == "l") == (phase >= 2) for link in green)
        # right turns are always permitted, yielding
        assert all(state[link.index] == "g" for link in x.links if link.direction == "r")


def test_traffic_spec_movements_index_tracked_lanes(grid2x2):
    spec = grid2x2.traffic_spec(10.0)
    assert spec.n_lanes == len(grid2x2.lanes)
    for phases in spec.phase_movements:
        assert len(phases) == 4
        for moves in phases:
            assert moves and all(0 <= m.in_lane < spec.n_lanes for m in moves)


def test_grid6x6_has_36_agents_with_degrees_2_to_4():
    topo = load_topology(resolve_net_files(load_scenario("grid6x6").network).net_file)
    assert len(topo.intersections) == 36
    degrees = topo.adjacency.sum(axis=1)
    assert sorted(set(degrees.tolist())) == [2, 3, 4]
    assert (degrees == 2).sum() == 4 and (degrees == 4).sum() == 16


def test_irregular_network_t_junction_masks_missing_phase(tmp_path: Path):
    net, _ = build_irregular(tmp_path)
    topo = load_topology(net)
    assert topo.agent_ids == ("J1", "J2")
    t_junction, cross = topo.intersections
    assert t_junction.legal == (True, False, True, True)  # no N-S through on a T junction
    assert all(cross.legal)
    assert len(t_junction.incoming) != len(cross.incoming)  # padding needed
    # neighbours through the unsignalised junction U
    assert topo.adjacency[0, 1] and topo.adjacency[1, 0]


def test_shared_lane_lets_its_other_movements_go_yielding(tmp_path: Path):
    """A lane for straight and left (netconvert's default on two-lane roads) must not hold its
    straight traffic behind a vehicle waiting to turn left, nor the other way round."""
    net, _ = build_irregular(tmp_path)
    topo = load_topology(net)
    cross = topo.intersections[1]  # J2: E_J2_1 serves straight (link 5) and left (link 6)
    links = {(link.in_lane, link.direction): link.index for link in cross.links}
    straight, left = links[("E_J2_1", "s")], links[("E_J2_1", "l")]
    we_through, we_left = cross.green_states[0], cross.green_states[2]
    assert (we_through[straight], we_through[left]) == ("G", "g")
    assert (we_left[straight], we_left[left]) == ("g", "G")
    dedicated = links[("E_J2_0", "s")]  # its lane has no left turn: red in the left phase
    assert we_left[dedicated] == "r"
    # max-pressure counts what a phase lets go: the through phase serves the shared left too
    spec = topo.traffic_spec(10.0)
    index = topo.lane_index()
    served = {(m.in_lane, m.out_lane) for m in spec.phase_movements[1][0]}
    assert (index["E_J2_1"], index["J2_S2_0"]) in served


def test_grids_have_no_shared_lanes_so_their_phases_are_unchanged(grid2x2):
    for x in grid2x2.intersections:
        for state in x.green_states:
            yielding = [link for link in x.links if state and state[link.index] == "g"]
            assert all(link.direction in "rR" for link in yielding)


def test_yellow_state_turns_lost_greens_yellow():
    assert yellow_state("GGrg", "rrGg") == "yyrg"
    assert yellow_state("rrGg", "rrGg") == "rrGg"


def test_network_without_traffic_lights_is_a_clear_error(tmp_path: Path):
    import subprocess

    from ltos_traffic.net.files import sumo_binary

    net = tmp_path / "plain.net.xml"
    subprocess.run(
        [sumo_binary("netgenerate"), "--grid", "--grid.number", "2", "-o", str(net)],
        check=True, capture_output=True,
    )  # fmt: skip
    with pytest.raises(UserError, match="no traffic lights"):
        load_topology(net)


@pytest.mark.parametrize("content", ["", "this is not xml", "<net><edge id='a'/></net"])
def test_garbled_network_is_a_clear_error(tmp_path: Path, content: str):
    net = tmp_path / "bad.net.xml"
    net.write_text(content)
    with pytest.raises(UserError):
        load_topology(net)


def test_missing_network_is_a_clear_error(tmp_path: Path):
    with pytest.raises(UserError, match="not found"):
        load_topology(tmp_path / "absent.net.xml")


def test_positions_are_junction_coordinates(grid2x2):
    assert grid2x2.positions.shape == (4, 2)
    assert np.isfinite(grid2x2.positions).all()


def test_signalised_pedestrian_crossings_follow_the_networks_own_program(tmp_path: Path):
    """Crossing links (no vehicle connection) sit in the state string after the vehicles'; each
    goes green beside the movements the network's own program shows it with, and a network
    with them runs (it used to die at t=0: "Mismatching phase size")."""
    net, routes = build_irregular(tmp_path, crossings=True)
    programs = {
        tls.get("id"): [phase.get("state") for phase in tls.iter("phase")]
        for tls in ET.parse(net).getroot().iter("tlLogic")
    }
    topo = load_topology(net)
    for x in topo.intersections:
        program = programs[x.tls_id]
        assert x.n_links == len(program[0]) > 1 + max(link.index for link in x.links)
        crossings = sorted(set(range(x.n_links)) - {link.index for link in x.links})
        legal = [state for state in x.green_states if state]
        assert all(len(state) == x.n_links for state in legal)
        for i in crossings:  # served somewhere, and only where the program serves it so
            assert any(state[i] == "G" for state in legal), (x.tls_id, i)
        for state in legal:
            moving = [k.index for k in x.links if k.direction not in "rR" and state[k.index] != "r"]
            for i in crossings:
                if state[i] == "G":
                    assert any(p[i] == "G" and all(p[k] in "Gg" for k in moving) for p in program)
    scenario = resolve_scenario(str(net), (str(routes),), None, seconds=600)
    env = TrafficEnv(scenario)
    try:
        results = greedy_metrics(env, ("sumo_program", "max_pressure"))
    finally:
        env.close()
    assert results["max_pressure"].arrived >= results["sumo_program"].arrived > 150
    assert results["max_pressure"].teleports == 0
