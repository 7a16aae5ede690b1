"""Small hand-written SUMO networks for tests, built with netconvert."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ltos_traffic.net.files import sumo_binary

# A signalised T junction (J1, 3 arms: west, east, south), a signalised 4-arm
# junction (J2) with a one-lane side street, and an unsignalised junction (U)
# between them, so J1 and J2 are neighbours through U.
NODES = """<nodes>
  <node id="W" x="-200" y="0" type="priority"/>
  <node id="J1" x="0" y="0" type="traffic_light"/>
  <node id="S1" x="0" y="-200" type="priority"/>
  <node id="U" x="150" y="10" type="priority"/>
  <node id="J2" x="300" y="0" type="traffic_light"/>
  <node id="N2" x="300" y="200" type="priority"/>
  <node id="S2" x="300" y="-200" type="priority"/>
  <node id="E" x="500" y="0" type="priority"/>
</nodes>
"""
EDGES = """<edges>
  <edge id="W_J1" from="W" to="J1" numLanes="2" speed="13.9"/>
  <edge id="J1_W" from="J1" to="W" numLanes="2" speed="13.9"/>
  <edge id="S1_J1" from="S1" to="J1" numLanes="1" speed="13.9"/>
  <edge id="J1_S1" from="J1" to="S1" numLanes="1" speed="13.9"/>
  <edge id="J1_U" from="J1" to="U" numLanes="2" speed="13.9"/>
  <edge id="U_J1" from="U" to="J1" numLanes="2" speed="13.9"/>
  <edge id="U_J2" from="U" to="J2" numLanes="2" speed="13.9"/>
  <edge id="J2_U" from="J2" to="U" numLanes="2" speed="13.9"/>
  <edge id="N2_J2" from="N2" to="J2" numLanes="1" speed="13.9"/>
  <edge id="J2_N2" from="J2" to="N2" numLanes="1" speed="13.9"/>
  <edge id="S2_J2" from="S2" to="J2" numLanes="1" speed="13.9"/>
  <edge id="J2_S2" from="J2" to="S2" numLanes="1" speed="13.9"/>
  <edge id="J2_E" from="J2" to="E" numLanes="2" speed="13.9"/>
  <edge id="E_J2" from="E" to="J2" numLanes="2" speed="13.9"/>
</edges>
"""
ROUTES = """<routes>
  <vType id="car" length="5" minGap="2.5" sigma="0"/>
  <route id="r_we" edges="W_J1 J1_U U_J2 J2_E"/>
  <route id="r_ew" edges="E_J2 J2_U U_J1 J1_W"/>
  <route id="r_s1" edges="S1_J1 J1_U U_J2 J2_N2"/>
  <route id="r_n2" edges="N2_J2 J2_S2"/>
  <flow id="we" type="car" begin="0" end="600" period="6" route="r_we"/>
  <flow id="ew" type="car" begin="0" end="600" period="8" route="r_ew"/>
  <flow id="sn" type="car" begin="0" end="600" period="20" route="r_s1"/>
  <flow id="ns" type="car" begin="0" end="600" period="20" route="r_n2"/>
</routes>
"""


# Pedestrians for the network with crossings: along the main road and across J2.
PEDESTRIANS = """  <personFlow id="walk_we" begin="0" end="600" period="40">
    <walk from="W_J1" to="J2_E"/>
  </personFlow>
  <personFlow id="walk_ns" begin="0" end="600" period="40">
    <walk from="N2_J2" to="J2_S2"/>
  </personFlow>
</routes>
"""


def build_irregular(
    directory: Path, begin_s: int = 0, crossings: bool = False
) -> tuple[Path, Path]:
    """Write and build the irregular test network; returns (net, routes).

    The demand runs from ``begin_s`` to ``begin_s + 600`` s. With ``crossings`` the roads get
    sidewalks, the lights signalised pedestrian crossings (netconvert's guesses: link indices
    after the vehicles', green in the programs beside the parallel traffic) and the demand two
    flows of pedestrians.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "n.nod.xml").write_text(NODES)
    # netconvert guesses sidewalks only on roads up to 13.89 m/s
    (directory / "n.edg.xml").write_text(EDGES.replace('"13.9"', '"13.0"') if crossings else EDGES)
    window = f'begin="{begin_s}" end="{begin_s + 600}"'
    routes = ROUTES.replace('begin="0" end="600"', window)
    if crossings:
        routes = routes.replace("</routes>\n", PEDESTRIANS)
    (directory / "n.rou.xml").write_text(routes)
    net = directory / "n.net.xml"
    walking = ["--sidewalks.guess", "true", "--crossings.guess", "true"] if crossings else []
    subprocess.run(
        [
            sumo_binary("netconvert"),
            "--node-files", str(directory / "n.nod.xml"),
            "--edge-files", str(directory / "n.edg.xml"),
            "--no-turnarounds", "true", *walking,
            "-o", str(net),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return net, directory / "n.rou.xml"


def build_random(directory: Path, seed: int, period_s: float = 1.5) -> tuple[Path, Path]:
    """A random irregular network (netgenerate ``--rand``: 3-5 arm junctions at odd angles, 1-3
    lanes per edge, every junction signalised with SUMO's own programs) and heavy random demand
    (randomTrips, one vehicle every ``period_s`` seconds for 900 s between fringe edges, routed
    by duarouter); returns (net, routes)."""
    directory.mkdir(parents=True, exist_ok=True)
    net, routes = directory / "r.net.xml", directory / "r.rou.xml"
    subprocess.run(
        [
            sumo_binary("netgenerate"), "--rand", "--rand.iterations", "12",
            "--rand.max-distance", "250", "--rand.min-distance", "120",
            "--rand.min-angle", "45", "--rand.random-lanenumber", "--default.lanenumber", "2",
            "-j", "traffic_light", "--no-turnarounds", "true", "--seed", str(seed),
            "-o", str(net),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    home = Path(sumo_binary("sumo")).parent.parent
    subprocess.run(
        [
            sys.executable, str(home / "tools" / "randomTrips.py"), "-n", str(net),
            "-r", str(routes), "-o", str(directory / "r.trips.xml"), "--seed", str(seed),
            "-p", str(period_s), "-e", "900", "--fringe-factor", "10", "--min-distance", "300",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "SUMO_HOME": str(home)},
    )  # fmt: skip
    return net, routes
