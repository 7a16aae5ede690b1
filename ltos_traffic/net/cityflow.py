"""Import CityFlow road networks and flows into SUMO.

CityFlow (the simulator of CoLight and of the LToS release) describes a network
as JSON: ``intersections`` (a point, ``virtual`` for boundary nodes, and
``roadLinks`` whose ``laneLinks`` join one incoming lane to one outgoing lane)
and ``roads`` (a polyline from one intersection to another, with ``lanes``).
A flow file is a list of entries, each a vehicle type, a route of road ids and
departures from ``startTime`` to ``endTime`` every ``interval`` seconds.

The conversion goes through netconvert's plain XML:

* nodes: virtual intersections become unsignalised ``priority`` nodes, the
  others ``traffic_light`` nodes (an intersection without lane links cannot be
  signalised and becomes ``priority`` too);
* edges: one per road, with its polyline as shape, its lanes and their speed
  limits and widths; CityFlow numbers lanes from the inside (lane 0 = left),
  SUMO from the outside, so CityFlow lane ``i`` of ``n`` is SUMO lane ``n-1-i``;
* connections: exactly one per CityFlow lane link, and no U-turns added;
* signal programs: netconvert's static guess. It is a placeholder: the
  environment builds green phases from movements (``ltos_traffic.sim.topology``),
  never from CityFlow's ``lightphases``, which are wrong for the Shenzhen data.

Routes become one ``<vehicle>`` per departure, sorted by departure time, with a
vehicle type per distinct CityFlow vehicle. The result is checked: every
route's consecutive edges must be connected in the SUMO network.

The LToS datasets themselves are third-party files that the project never
commits: :data:`DATASETS` pins each file of the authors' release (path, commit,
SHA-256), :mod:`ltos_traffic.net.fetch` downloads them, and
:func:`resolve_dataset` finds them on disk and imports them once into the cache.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltos_traffic.errors import UserError
from ltos_traffic.net.files import NetFiles, build_cached, cache_root, sumo_binary

IMPORTER_VERSION = 2  # bump when the files written for the same inputs change

# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class LaneLink:
    """One CityFlow lane link: a movement from one lane to another (CityFlow lane indices)."""

    from_road: str
    from_lane: int
    to_road: str
    to_lane: int


@dataclass(frozen=True)
class Intersection:
    """A CityFlow intersection.

    Attributes:
        id: intersection id (becomes the SUMO node and traffic-light id).
        x: position, metres.
        y: position, metres.
        virtual: ``True`` for boundary nodes where vehicles enter and leave.
        lane_links: every lane-to-lane movement through the intersection.
    """

    id: str
    x: float
    y: float
    virtual: bool
    lane_links: tuple[LaneLink, ...]


@dataclass(frozen=True)
class Road:
    """A CityFlow road: one direction of a street.

    Attributes:
        id: road id (becomes the SUMO edge id).
        start: id of the upstream intersection.
        end: id of the downstream intersection.
        shape: polyline ``((x, y), ...)``, metres, from start to end.
        lane_speeds: speed limit per CityFlow lane (0 = innermost), m/s.
        lane_widths: width per CityFlow lane, metres.
    """

    id: str
    start: str
    end: str
    shape: tuple[tuple[float, float], ...]
    lane_speeds: tuple[float, ...]
    lane_widths: tuple[float, ...]


@dataclass(frozen=True)
class RoadNet:
    """A parsed and cross-checked CityFlow roadnet file."""

    intersections: tuple[Intersection, ...]
    roads: tuple[Road, ...]


@dataclass(frozen=True)
class VehicleType:
    """CityFlow vehicle parameters, in SUMO's terms.

    Attributes:
        length: vehicle length, metres.
        width: vehicle width, metres.
        accel: usual acceleration (CityFlow ``usualPosAcc``), m/s².
        decel: usual deceleration (``usualNegAcc``), m/s².
        emergency_decel: the most it can brake (``maxNegAcc``), m/s².
        min_gap: standstill gap to the leader (``minGap``), metres.
        max_speed: vehicle top speed (``maxSpeed``), m/s.
        tau: desired time headway (``headwayTime``), seconds.
    """

    length: float
    width: float
    accel: float
    decel: float
    emergency_decel: float
    min_gap: float
    max_speed: float
    tau: float


@dataclass(frozen=True)
class Trip:
    """One vehicle of the demand.

    Attributes:
        id: ``flow_<entry>_<k>``, CityFlow's own naming (entry index, k-th departure).
        depart: departure time, seconds.
        vtype: its vehicle parameters.
        route: road ids, in driving order.
    """

    id: str
    depart: float
    vtype: VehicleType
    route: tuple[str, ...]


@dataclass(frozen=True)
class NetSummary:
    """What a converted SUMO network contains (non-internal elements only).

    Attributes:
        junctions: SUMO junctions.
        traffic_lights: traffic-light programs (``tlLogic`` ids).
        edges: SUMO edges.
        links: ``(from_edge, to_edge)`` pairs joined by at least one connection.
    """

    junctions: int
    traffic_lights: tuple[str, ...]
    edges: frozenset[str]
    links: frozenset[tuple[str, str]]


# ---------------------------------------------------------------- reading JSON


class _Json:
    """Typed access to one parsed JSON file; every failure names the file and the place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.root: Any = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: not a CityFlow JSON file ({exc})") from None

    def fail(self, message: str) -> UserError:
        return UserError(f"{self.path}: {message}")

    def get(self, obj: Any, key: str, where: str) -> Any:
        if not isinstance(obj, dict):
            raise self.fail(f"{where} must be a JSON object, got {type(obj).__name__}")
        if key not in obj:
            raise self.fail(f"missing key {key!r} in {where}")
        return obj[key]

    def items(self, obj: Any, key: str, where: str) -> list[Any]:
        value = self.get(obj, key, where)
        if not isinstance(value, list):
            raise self.fail(f"{where}.{key} must be a list, got {type(value).__name__}")
        return value

    def number(self, obj: Any, key: str, where: str) -> float:
        value = self.get(obj, key, where)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{where}.{key} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise self.fail(f"{where}.{key} must be a number, got {value!r}")
        return float(value)

    def point(self, obj: Any, where: str) -> tuple[float, float]:
        return self.number(obj, "x", where), self.number(obj, "y", where)

    def text(self, obj: Any, key: str, where: str) -> str:
        value = self.get(obj, key, where)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}.{key} must be a non-empty string, got {value!r}")
        return value


def read_roadnet(path: Path) -> RoadNet:
    """Parse and cross-check a CityFlow roadnet file.

    Raises:
        UserError: not JSON, a missing or mistyped key, or inconsistent
            references (unknown road or intersection, lane index out of range).
    """
    doc = _Json(path)
    roads: list[Road] = []
    for k, raw in enumerate(doc.items(doc.root, "roads", "the roadnet")):
        where = f"roads[{k}]"
        points = doc.items(raw, "points", where)
        lanes = doc.items(raw, "lanes", where)
        if len(points) < 2 or not lanes:
            raise doc.fail(f"{where} needs two points and one lane at least")
        roads.append(
            Road(
                id=doc.text(raw, "id", where),
                start=doc.text(raw, "startIntersection", where),
                end=doc.text(raw, "endIntersection", where),
                shape=tuple(doc.point(p, f"{where}.points[{i}]") for i, p in enumerate(points)),
                lane_speeds=tuple(
                    doc.number(lane, "maxSpeed", f"{where}.lanes[{i}]")
                    for i, lane in enumerate(lanes)
                ),
                lane_widths=tuple(
                    doc.number(lane, "width", f"{where}.lanes[{i}]") for i, lane in enumerate(lanes)
                ),
            )
        )
    intersections: list[Intersection] = []
    for k, raw in enumerate(doc.items(doc.root, "intersections", "the roadnet")):
        where = f"intersections[{k}]"
        virtual = doc.get(raw, "virtual", where)
        if not isinstance(virtual, bool):
            raise doc.fail(f"{where}.virtual must be true or false, got {virtual!r}")
        # CityFlow allows virtual intersections without roadLinks.
        raw_links = doc.items(raw, "roadLinks", where) if not virtual or "roadLinks" in raw else []
        links: list[LaneLink] = []
        for j, road_link in enumerate(raw_links):
            at = f"{where}.roadLinks[{j}]"
            start, end = doc.text(road_link, "startRoad", at), doc.text(road_link, "endRoad", at)
            for m, lane_link in enumerate(doc.items(road_link, "laneLinks", at)):
                lat = f"{at}.laneLinks[{m}]"
                links.append(
                    LaneLink(
                        start,
                        _index(doc, lane_link, "startLaneIndex", lat),
                        end,
                        _index(doc, lane_link, "endLaneIndex", lat),
                    )
                )
        x, y = doc.point(doc.get(raw, "point", where), f"{where}.point")
        intersections.append(
            Intersection(
                id=doc.text(raw, "id", where),
                x=x,
                y=y,
                virtual=virtual,
                lane_links=tuple(links),
            )
        )
    net = RoadNet(tuple(intersections), tuple(roads))
    _cross_check(doc, net)
    return net


def _index(doc: _Json, obj: Any, key: str, where: str) -> int:
    value = doc.number(obj, key, where)
    if value != int(value) or value < 0:
        raise doc.fail(f"{where}.{key} must be a lane index (0, 1, ...), got {value!r}")
    return int(value)


def _cross_check(doc: _Json, net: RoadNet) -> None:
    node_ids = [n.id for n in net.intersections]
    road_ids = [r.id for r in net.roads]
    for kind, ids in (("intersection", node_ids), ("road", road_ids)):
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise doc.fail(f"duplicate {kind} id {dup!r}")
    nodes = set(node_ids)
    roads = {r.id: r for r in net.roads}
    for road in net.roads:
        for end in (road.start, road.end):
            if end not in nodes:
                raise doc.fail(f"road {road.id!r} refers to unknown intersection {end!r}")
    for node in net.intersections:
        for link in node.lane_links:
            ends = ((link.from_road, link.from_lane, "end"), (link.to_road, link.to_lane, "start"))
            for road_id, lane, side in ends:
                if road_id not in roads:
                    raise doc.fail(f"intersection {node.id!r} links unknown road {road_id!r}")
                road = roads[road_id]
                if getattr(road, side) != node.id:
                    raise doc.fail(
                        f"intersection {node.id!r} links road {road_id!r}, "
                        f"which does not {side} there"
                    )
                if lane >= len(road.lane_speeds):
                    raise doc.fail(
                        f"intersection {node.id!r} links lane {lane} of road {road_id!r}, "
                        f"which has {len(road.lane_speeds)} lanes"
                    )


def read_flow(path: Path) -> list[Trip]:
    """Parse a CityFlow flow file into trips sorted by departure (ties keep file order).

    Raises:
        UserError: not JSON, a missing or mistyped key, or a bad departure range.
    """
    doc = _Json(path)
    if not isinstance(doc.root, list):
        raise doc.fail(f"a flow file must be a JSON list of flows, got {type(doc.root).__name__}")
    types: dict[VehicleType, VehicleType] = {}  # interning: one object per distinct type
    trips: list[Trip] = []
    for k, raw in enumerate(doc.root):
        where = f"flow[{k}]"
        route = doc.items(raw, "route", where)
        if not route or not all(isinstance(r, str) for r in route):
            raise doc.fail(f"{where}.route must be a non-empty list of road ids")
        vtype = _vehicle_type(doc, doc.get(raw, "vehicle", where), f"{where}.vehicle")
        vtype = types.setdefault(vtype, vtype)
        for n, depart in enumerate(_departures(doc, raw, where)):
            trips.append(Trip(f"flow_{k}_{n}", depart, vtype, tuple(route)))
    trips.sort(key=lambda t: t.depart)
    return trips


def _vehicle_type(doc: _Json, raw: Any, where: str) -> VehicleType:
    def num(key: str) -> float:
        return doc.number(raw, key, where)

    decel = num("usualNegAcc")
    return VehicleType(
        length=num("length"),
        width=num("width"),
        accel=num("usualPosAcc"),
        decel=decel,
        emergency_decel=max(num("maxNegAcc"), decel),
        min_gap=num("minGap"),
        max_speed=num("maxSpeed"),
        tau=num("headwayTime"),
    )


def _departures(doc: _Json, raw: Any, where: str) -> list[float]:
    """``startTime``, then every ``interval`` up to ``endTime`` (one vehicle when equal)."""
    start = doc.number(raw, "startTime", where)
    end = doc.number(raw, "endTime", where) if "endTime" in raw else start
    if end < start or start < 0:
        raise doc.fail(f"{where}: need 0 <= startTime <= endTime, got {start} and {end}")
    if end == start:
        return [start]
    interval = doc.number(raw, "interval", where)
    if interval <= 0:
        raise doc.fail(f"{where}.interval must be positive when endTime > startTime")
    count = math.floor((end - start) / interval + 1e-9) + 1
    return [start + n * interval for n in range(count)]


# ---------------------------------------------------------------- writing SUMO files


def _fmt(value: float) -> str:
    """Millimetre (or 0.001 unit) precision, trailing zeros dropped."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _write_xml(root: ET.Element, path: Path) -> None:
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="unicode", xml_declaration=True)


def _write_plain(net: RoadNet, prefix: Path) -> None:
    """Write ``<prefix>.nod.xml``, ``.edg.xml`` and ``.con.xml`` for netconvert."""
    nodes = ET.Element("nodes")
    for node in net.intersections:
        signalised = not node.virtual and bool(node.lane_links)
        ET.SubElement(
            nodes,
            "node",
            {
                "id": node.id,
                "x": _fmt(node.x),
                "y": _fmt(node.y),
                "type": "traffic_light" if signalised else "priority",
            },
        )
    _write_xml(nodes, prefix.with_suffix(".nod.xml"))

    edges = ET.Element("edges")
    for road in net.roads:
        n = len(road.lane_speeds)
        edge = ET.SubElement(
            edges,
            "edge",
            {
                "id": road.id,
                "from": road.start,
                "to": road.end,
                "numLanes": str(n),
                "speed": _fmt(max(road.lane_speeds)),
                "shape": " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in road.shape),
            },
        )
        for i in range(n):
            ET.SubElement(
                edge,
                "lane",
                {
                    "index": str(n - 1 - i),
                    "speed": _fmt(road.lane_speeds[i]),
                    "width": _fmt(road.lane_widths[i]),
                },
            )
    _write_xml(edges, prefix.with_suffix(".edg.xml"))

    lanes = {road.id: len(road.lane_speeds) for road in net.roads}
    connections = ET.Element("connections")
    for node in net.intersections:
        for link in node.lane_links:
            ET.SubElement(
                connections,
                "connection",
                {
                    "from": link.from_road,
                    "to": link.to_road,
                    "fromLane": str(lanes[link.from_road] - 1 - link.from_lane),
                    "toLane": str(lanes[link.to_road] - 1 - link.to_lane),
                },
            )
    # netconvert guesses connections for an edge the file does not mention (e.g. one
    # entering a virtual node that others leave); CityFlow has no movement there.
    linked = {link.from_road for node in net.intersections for link in node.lane_links}
    leaving: dict[str, list[Road]] = {}
    for road in net.roads:
        leaving.setdefault(road.start, []).append(road)
    for road in net.roads:
        if road.id in linked:
            continue
        for other in leaving.get(road.end, []):
            if other.end != road.start:  # U-turns: --no-turnarounds
                ET.SubElement(connections, "delete", {"from": road.id, "to": other.id})
    _write_xml(connections, prefix.with_suffix(".con.xml"))


def _netconvert(prefix: Path, net_file: Path, source: Path) -> None:
    cmd = [
        sumo_binary("netconvert"),
        "--node-files", str(prefix.with_suffix(".nod.xml")),
        "--edge-files", str(prefix.with_suffix(".edg.xml")),
        "--connection-files", str(prefix.with_suffix(".con.xml")),
        # CityFlow has no U-turn unless a lane link says so; the connection file has them all.
        "--no-turnarounds", "true",
        "--tls.default-type", "static",
        # Keep CityFlow's coordinates, so positions in SUMO match the source file.
        "--offset.disable-normalization", "true",
        "--output-file", str(net_file),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
        detail = errors[0] if errors else proc.stderr.strip()[-300:]
        raise UserError(f"netconvert could not build a network from {source}: {detail}")


def _write_routes(trips: list[Trip], path: Path) -> None:
    root = ET.Element("routes")
    type_ids: dict[VehicleType, str] = {}
    for trip in trips:
        if trip.vtype in type_ids:
            continue
        type_ids[trip.vtype] = f"cityflow{len(type_ids)}"
        v = trip.vtype
        ET.SubElement(
            root,
            "vType",
            {
                "id": type_ids[v],
                "length": _fmt(v.length),
                "width": _fmt(v.width),
                "accel": _fmt(v.accel),
                "decel": _fmt(v.decel),
                "emergencyDecel": _fmt(v.emergency_decel),
                "minGap": _fmt(v.min_gap),
                "maxSpeed": _fmt(v.max_speed),
                "tau": _fmt(v.tau),
                # CityFlow drivers neither dawdle nor exceed the limit: no randomness.
                "sigma": "0",
                "speedFactor": "1",
                "speedDev": "0",
            },
        )
    for trip in trips:
        vehicle = ET.SubElement(
            root,
            "vehicle",
            {
                "id": trip.id,
                "type": type_ids[trip.vtype],
                "depart": f"{trip.depart:.2f}",
                "departLane": "best",
                "departSpeed": "max",
            },
        )
        ET.SubElement(vehicle, "route", {"edges": " ".join(trip.route)})
    _write_xml(root, path)


# ---------------------------------------------------------------- checking the result


def read_net_summary(net_file: Path) -> NetSummary:
    """Count junctions, traffic lights and edges of a SUMO network and list its edge links."""
    root = ET.parse(net_file).getroot()
    junctions = sum(1 for j in root.iter("junction") if j.get("type") != "internal")
    tls = tuple(t.get("id", "") for t in root.iter("tlLogic"))
    edges = frozenset(e.get("id", "") for e in root.iter("edge") if e.get("function") != "internal")
    links = frozenset(
        (c.get("from", ""), c.get("to", ""))
        for c in root.iter("connection")
        if c.get("from") in edges and c.get("to") in edges
    )
    return NetSummary(junctions, tls, edges, links)


def count_vehicles(route_file: Path) -> tuple[int, float, float]:
    """Vehicles in a route file and the first and last departure, seconds."""
    departs = [float(v.get("depart", 0)) for v in ET.parse(route_file).getroot().iter("vehicle")]
    return len(departs), min(departs, default=0.0), max(departs, default=0.0)


def check_routes(trips: list[Trip], summary: NetSummary, flow: Path) -> None:
    """Raise a :class:`UserError` naming the first trip whose route SUMO cannot drive."""
    for trip in trips:
        unknown = [e for e in trip.route if e not in summary.edges]
        if unknown:
            raise UserError(
                f"{flow}: vehicle {trip.id} uses road {unknown[0]!r}, absent from the roadnet"
            )
        for a, b in zip(trip.route, trip.route[1:]):
            if (a, b) not in summary.links:
                raise UserError(
                    f"{flow}: vehicle {trip.id} drives from road {a!r} to {b!r}, "
                    "but the roadnet has no lane link between them"
                )


# ---------------------------------------------------------------- the importer


def import_cityflow(roadnet: Path, flow: Path, name: str, out_dir: Path) -> NetFiles:
    """Convert a CityFlow roadnet and flow into a SUMO network and route file.

    Writes ``<name>.net.xml`` and ``<name>.rou.xml`` into ``out_dir``, beside the
    plain XML given to netconvert (``<name>.nod.xml``, ``.edg.xml``, ``.con.xml``).

    Args:
        roadnet: CityFlow roadnet JSON.
        flow: CityFlow flow JSON.
        name: stem of the files written (letters, digits, ``-``, ``_``, ``.``).
        out_dir: output folder, created if needed.

    Raises:
        UserError: a wrong schema, a network netconvert rejects, or a route
            that is not connected in the converted network.
    """
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise UserError(f"--name must be letters, digits, '-', '_' or '.', got {name!r}")
    net = read_roadnet(roadnet)
    trips = read_flow(flow)
    if not trips:
        raise UserError(f"{flow}: the flow file has no vehicles")
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / name
    net_file = out_dir / f"{name}.net.xml"
    route_file = out_dir / f"{name}.rou.xml"
    _write_plain(net, prefix)
    _netconvert(prefix, net_file, roadnet)
    check_routes(trips, read_net_summary(net_file), flow)
    _write_routes(trips, route_file)
    return NetFiles(net_file, (route_file,))


# ---------------------------------------------------------------- the LToS datasets

# The authors' public release: github.com/zhuliwen/RoadnetSZ, folder code/LToS/data/. It has
# no licence, so the project fetches it (``ltos-traffic data fetch``) and never ships it.
UPSTREAM_REPO = "zhuliwen/RoadnetSZ"
UPSTREAM_COMMIT = "80a2785961b9439b6b92637e5cecd42ab5733052"  # 2024-05-08, its HEAD
UPSTREAM_URL = f"https://raw.githubusercontent.com/{UPSTREAM_REPO}/{UPSTREAM_COMMIT}"


@dataclass(frozen=True)
class Upstream:
    """One file of the authors' release, pinned.

    Attributes:
        path: path inside the upstream repository at :data:`UPSTREAM_COMMIT`.
        sha256: SHA-256 of its bytes, hex.
        size: its size, bytes.
    """

    path: str
    sha256: str
    size: int

    def url(self, base_url: str = UPSTREAM_URL) -> str:
        """Download address under ``base_url`` (default: GitHub's raw files at the commit)."""
        return f"{base_url.rstrip('/')}/{self.path}"


@dataclass(frozen=True)
class Dataset:
    """Where one LToS CityFlow dataset lives inside the data folder, and where it comes from.

    Attributes:
        folder: sub-folder of the data folder.
        roadnet: roadnet file name.
        flow: flow file name.
        roadnet_upstream: the roadnet in the authors' release.
        flow_upstream: the flow in the authors' release (its upstream name differs).
    """

    folder: str
    roadnet: str
    flow: str
    roadnet_upstream: Upstream
    flow_upstream: Upstream

    def files(self) -> tuple[tuple[str, Upstream], ...]:
        """``(file name in the data folder, upstream file)`` for the roadnet and the flow."""
        return ((self.roadnet, self.roadnet_upstream), (self.flow, self.flow_upstream))


_RELEASE = "code/LToS/data"
DATASETS: dict[str, Dataset] = {
    # "Fuhua", Futian CBD: 33 signalised intersections, 1,775 vehicles in 3,600 s.
    "shenzhen": Dataset(
        "shenzhen", "roadnet_1_33.json", "flow_fuhua_real_1775.json",
        Upstream(f"{_RELEASE}/Fuhua/1_33/roadnet_1_33.json",
                 "f8a25bea1df184e2e7627204d9508252afd39f74eda40f324427370c9ff7bb32", 671_333),
        Upstream(f"{_RELEASE}/Fuhua/1_33/anon_1_33_fuhua_0.4x24hto1h.json",
                 "f72891a22dd624229eb8c937706f5b97b0a07f980c13f315a5bf94efc6ea7151", 837_800),
    ),
    # The LToS 6x6 grid: 100 m blocks, 2,570 vehicles in 3,600 s.
    "ltos6x6": Dataset(
        "grid6x6", "roadnet_6_6.json", "flow_6_6_small_2570_bi.json",
        Upstream(f"{_RELEASE}/Small/6_6/roadnet_6_6.json",
                 "c604fa997c57bb4a9548f66d6f10802d12ef7035967828e6532fbce51e6801b3", 2_007_068),
        Upstream(f"{_RELEASE}/Small/6_6/anon_6_6_small_2570_bi.json",
                 "fb1bef33ee74b35d08d78f007ab2128ecb348b7adc9e2d1b4d4a92ba53642a6d", 1_258_107),
    ),
}  # fmt: skip


def default_data_dir() -> Path:
    """``../shared/data/ltos-cityflow`` next to the checkout."""
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "ltos-cityflow"


def dataset(name: str) -> Dataset:
    """The dataset called ``name``.

    Raises:
        UserError: an unknown name, listing the known ones.
    """
    if name not in DATASETS:
        raise UserError(f"unknown CityFlow dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


def data_root(data_dir: str | None = None) -> tuple[Path, str]:
    """The data folder and what chose it (for messages).

    ``data_dir`` if given (``--data-dir``), else ``$LTOS_DATA`` if set, else
    :func:`default_data_dir`. Finding and fetching the data both use this rule.
    """
    if data_dir:
        return Path(data_dir).expanduser(), "--data-dir"
    if os.environ.get("LTOS_DATA"):
        return Path(os.environ["LTOS_DATA"]).expanduser(), "LTOS_DATA"
    return default_data_dir(), "the default location"


def manual_route(name: str, root: Path) -> str:
    """How to get a dataset by hand: each upstream file's URL and where to put it."""
    ds = dataset(name)
    return " and ".join(f"{up.url()} as {root / ds.folder / file}" for file, up in ds.files())


def find_dataset(name: str, data_dir: str | None = None) -> tuple[Path, Path]:
    """The roadnet and flow files of a named dataset.

    The data folder is chosen by :func:`data_root`. The files are looked for in
    ``<folder>/<dataset folder>/`` and then directly in ``<folder>``.

    Raises:
        UserError: unknown name, or the files are not there (the message names
            the fetch command and the manual route).
    """
    ds = dataset(name)
    root, origin = data_root(data_dir)
    for folder in (root / ds.folder, root):
        roadnet, flow = folder / ds.roadnet, folder / ds.flow
        if roadnet.is_file() and flow.is_file():
            return roadnet, flow
    same_dir = f" --data-dir {data_dir}" if data_dir else ""
    raise UserError(
        f"the {name!r} data (the LToS authors' CityFlow release) is not in {root} ({origin}): "
        f"run `ltos-traffic data fetch {name}{same_dir}`, or download by hand "
        f"{manual_route(name, root)}, or point --data-dir or LTOS_DATA at a folder that holds "
        f"{ds.folder}/{ds.roadnet} and {ds.folder}/{ds.flow}"
    )


def dataset_key(roadnet: Path, flow: Path) -> str:
    """Cache key: sha256 over the importer version and both input files, 16 hex digits."""
    digest = hashlib.sha256(f"cityflow-importer-v{IMPORTER_VERSION}".encode())
    for path in (roadnet, flow):
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def resolve_dataset(name: str, data_dir: str | None = None) -> NetFiles:
    """Find a named LToS dataset and import it once into the cache.

    The cache folder is ``cache_root()/cityflow/<name>-<key>/`` (see
    :func:`dataset_key`). It is built in a temporary folder and renamed into
    place, so a killed import or two processes importing at once never leave a
    half-written cache.

    Args:
        name: ``"shenzhen"`` or ``"ltos6x6"``.
        data_dir: folder holding the data (``--data-dir``); ``None`` to use
            ``$LTOS_DATA`` or ``../shared/data/ltos-cityflow``.
    """
    roadnet, flow = find_dataset(name, data_dir)
    final = cache_root() / "cityflow" / f"{name}-{dataset_key(roadnet, flow)}"
    files = NetFiles(final / f"{name}.net.xml", (final / f"{name}.rou.xml",))
    build_cached(final, lambda tmp: import_cityflow(roadnet, flow, name, tmp))
    return files
