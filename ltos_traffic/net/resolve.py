"""Resolve a traffic scenario's ``[network]`` table to SUMO files, and check routes."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ltos_traffic.errors import UserError
from ltos_traffic.net.files import NetFiles
from ltos_traffic.net.grid import GridOptions, build_grid
from ltos_traffic.net.resco import resco_files


def resolve_net_files(network: Mapping[str, Any], *, data_dir: str | None = None) -> NetFiles:
    """Build, import or locate the network and routes of a scenario's ``[network]`` table."""
    network = dict(network)
    source = network.get("source")
    if source == "grid":
        # the demand covers the scenario's standard horizon, whatever --seconds says
        return build_grid(GridOptions.from_mapping(network, seconds=3600.0))
    if source == "cityflow":
        from ltos_traffic.net.cityflow import resolve_dataset

        return resolve_dataset(str(network.get("dataset", "")), data_dir)
    if source == "resco":
        return resco_files(str(network.get("map", "")))
    if source == "file":
        files = NetFiles(
            Path(network["net"]),
            tuple(Path(r) for r in network.get("routes", [])),
            tuple(Path(a) for a in network.get("additional", [])),
        )
        check_route_files(files)
        return files
    raise UserError(f"unknown network source {source!r}; use grid, cityflow, file or resco")


def network_edges(net_file: Path) -> set[str]:
    """Edge ids of a ``.net.xml`` (non-internal), read with a streaming parser."""
    edges: set[str] = set()
    try:
        for _, el in ET.iterparse(net_file):
            if el.tag == "edge" and el.get("function") != "internal":
                edges.add(el.get("id", ""))
            el.clear()
    except ET.ParseError as exc:
        raise UserError(f"cannot read network {net_file}: {exc}; is it a SUMO .net.xml?") from None
    return edges


def check_route_files(files: NetFiles) -> None:
    """Every route file parses and only uses edges of the network.

    Raises:
        UserError: naming the file, the vehicle and the unknown edge.
    """
    if not files.net_file.is_file():
        raise UserError(f"network file not found: {files.net_file}; give an existing .net.xml")
    if not files.route_files:
        raise UserError("no route file given; pass --routes PATH to a SUMO .rou.xml")
    edges = network_edges(files.net_file)
    if not edges:
        raise UserError(f"network {files.net_file} has no edges; is it a SUMO .net.xml?")
    for route_file in files.route_files:
        if not route_file.is_file():
            raise UserError(f"route file not found: {route_file}; give an existing .rou.xml")
        try:
            root = ET.parse(route_file).getroot()
        except ET.ParseError as exc:
            raise UserError(f"cannot read route file {route_file}: {exc}") from None
        count = 0
        for parent in root.iter():
            for attr in ("edges", "from", "to", "via"):
                value = parent.get(attr)
                if value is None or parent.tag in ("vType",):
                    continue
                for edge in value.split():
                    if edge not in edges:
                        owner = parent.get("id") or _owner_id(root, parent)
                        raise UserError(
                            f"route file {route_file}: {parent.tag} {owner!r} uses edge "
                            f"{edge!r}, which is not in {files.net_file.name}; fix the routes "
                            "or give the matching network"
                        )
            if parent.tag in ("vehicle", "flow", "trip"):
                count += 1
        if count == 0:
            raise UserError(f"route file {route_file} defines no vehicle, trip or flow")


def _owner_id(root: ET.Element, child: ET.Element) -> str:
    for parent in root.iter():
        if child in list(parent):
            return parent.get("id", parent.tag)
    return child.tag


_DEPARTING = ("vehicle", "trip", "person", "container")  # one departure at ``depart``
_FLOWS = ("flow", "personFlow", "containerFlow")  # departures from ``begin`` to ``end``


def demand_span(route_files: tuple[Path, ...]) -> tuple[float, float] | None:
    """Earliest and latest departure time in ``route_files``, seconds.

    Vehicles, trips and persons count at ``depart``, flows from ``begin`` (default 0)
    to ``end`` (open when not given). Departures that are not a number of seconds
    (``triggered``) are skipped; ``None`` when no departure time is known.
    """
    first, last = math.inf, -math.inf
    for route_file in route_files:
        try:
            for _, el in ET.iterparse(route_file):
                if el.tag in _DEPARTING:
                    depart = _number(el.get("depart"))
                    if depart is not None:
                        first, last = min(first, depart), max(last, depart)
                elif el.tag in _FLOWS:
                    first = min(first, _number(el.get("begin")) or 0.0)
                    end = _number(el.get("end"))
                    last = max(last, math.inf if end is None else end)
                el.clear()
        except ET.ParseError as exc:
            raise UserError(f"cannot read route file {route_file}: {exc}") from None
    return (first, last) if first <= last else None


def check_demand_window(route_files: tuple[Path, ...], begin_s: float, seconds: float) -> None:
    """The demand of ``route_files`` overlaps the simulated window ``[begin_s, begin_s + seconds)``.

    Raises:
        UserError: :func:`no_departure_error` when it does not.
    """
    span = demand_span(route_files)
    if span is not None and (span[0] >= begin_s + seconds or span[1] < begin_s):
        raise no_departure_error(route_files, begin_s, seconds)


def no_departure_error(route_files: tuple[Path, ...], begin_s: float, seconds: float) -> UserError:
    """The error for a window in which no vehicle departs: the first departure, the option."""
    window = f"no vehicle departs in the simulated window {begin_s:g}-{begin_s + seconds:g} s"
    span = demand_span(route_files)
    if span is None:
        return UserError(f"{window}, and the routes give no departure time; check them")
    first, last = span
    if first < begin_s + seconds and last >= begin_s:  # in the window, yet none was inserted
        return UserError(
            f"{window}, although the routes depart from {first:g} s; check that their "
            "vehicles fit the network (departLane, departSpeed, vehicle types)"
        )
    demand = (
        f"the first departure in the routes is at {first:g} s"
        if first >= begin_s + seconds
        else f"the demand runs from {first:g} to {last:g} s"
    )
    return UserError(f"{window}: {demand}; use --begin {first:g} (or [timing] begin_s)")


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def program_yellow_s(net_file: Path) -> float | None:
    """The yellow time of a network's own signal programs, seconds.

    The most common duration of the programs' phases that show yellow (the longer
    one on a tie); ``None`` when the network has no program with a yellow phase.
    """
    durations: Counter[float] = Counter()
    try:
        for _, el in ET.iterparse(net_file):
            state, duration = el.get("state", ""), _number(el.get("duration"))
            if el.tag == "phase" and "y" in state and duration is not None and duration > 0:
                durations[duration] += 1
            el.clear()
    except (ET.ParseError, OSError):
        return None  # the network's own reader reports it
    if not durations:
        return None
    return max(durations, key=lambda d: (durations[d], d))
