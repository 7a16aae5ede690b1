"""Static network layout from a SUMO ``.net.xml``: the only module that imports sumolib.

Agents are the traffic lights that control at least one link, in sorted id
order. Each agent chooses among four green phases, always in this order:

0. ``WE-through``: straight movements of the approaches on the junction's
   first axis (the one closer to west-east);
1. ``NS-through``: straight movements on the other axis;
2. ``WE-left``: left turns (and U-turns) on the first axis;
3. ``NS-left``: left turns on the other axis.

Right turns are always allowed (``g``, yielding). A phase that serves no link at
a junction (3-way junctions, one-way streets) is masked. A lane shared by several
movements (straight and left on one lane, common in real networks and in
``netconvert``'s defaults) lets its other movements go, yielding (``g``), whenever
one of them has green, as the networks' own programs do: otherwise a vehicle
waiting to turn left would hold the straight traffic behind it. The project's
grids and imported CityFlow networks have one movement per lane, so their phases
are unaffected. The two axes of a
junction are found from the headings of its incoming edges: the dominant
orthogonal cross orientation ``alpha = arg(sum exp(4 i theta)) / 4``; an approach
belongs to the axis whose direction its heading is closer to (mod 180°). This
works for irregular real networks where roads are not aligned with x/y.

Junctions are mapped onto the four phases, not the other way round: the phases come from the
links' directions and axes, whatever the network's own program has (the RESCO maps' programs
have 2 to 8 green phases; a phase with no link to serve is masked, and ``sumo_program`` runs
the programs themselves). A light that controls several junctions (joined signals) is one
agent. Links with no vehicle connection, signalised pedestrian crossings above all, get the
state the network's own program gives them in a phase that lets the same movements go
(:func:`_add_unmodelled_links`); without that a network with crossings could not run at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ltos_traffic.errors import UserError
from ltos_traffic.types import Movement, TrafficSpec

PHASE_NAMES = ("WE-through", "NS-through", "WE-left", "NS-left")
N_PHASES = len(PHASE_NAMES)
VEHICLE_SPACE_M = 7.5  # lane capacity = length / (5 m car + 2.5 m gap)


@dataclass(frozen=True)
class Link:
    """One signal link of a traffic light."""

    index: int  # position in the TLS state string
    in_lane: str
    out_lane: str
    direction: str  # SUMO: s, l, r, t, L, R
    axis: int  # 0 = WE-like, 1 = NS-like


@dataclass(frozen=True)
class Intersection:
    """A signalised agent."""

    tls_id: str
    n_links: int
    links: tuple[Link, ...]
    green_states: tuple[str, ...]  # per phase in PHASE_NAMES order ('' when masked)
    incoming: tuple[str, ...]  # incoming lanes, observation order
    junctions: tuple[str, ...]  # SUMO junction ids controlled by this light

    @property
    def legal(self) -> tuple[bool, ...]:
        """Which of the four phases serve at least one link."""
        return tuple(bool(s) for s in self.green_states)


@dataclass(frozen=True)
class Topology:
    """Agents, lanes, phases and neighbours of a SUMO network.

    Attributes:
        net_file: the network read.
        intersections: agents in fixed (sorted id) order.
        lanes: every tracked lane (incoming and outgoing of all agents), ids.
        lane_capacity: ``(L,)`` vehicles that fit on each tracked lane.
        adjacency: ``(N, N)`` bool, agents linked by a road (through unsignalised
            junctions too), diagonal False.
        positions: ``(N, 2)`` junction coordinates, metres (for maps).
    """

    net_file: Path
    intersections: tuple[Intersection, ...]
    lanes: tuple[str, ...]
    lane_capacity: np.ndarray
    adjacency: np.ndarray
    positions: np.ndarray

    @property
    def agent_ids(self) -> tuple[str, ...]:
        """Traffic-light ids in agent order."""
        return tuple(x.tls_id for x in self.intersections)

    @property
    def max_incoming(self) -> int:
        """Largest number of incoming lanes over agents (observation padding)."""
        return max(len(x.incoming) for x in self.intersections)

    def lane_index(self) -> dict[str, int]:
        """Lane id -> index into :attr:`lanes`."""
        return {lane: k for k, lane in enumerate(self.lanes)}

    def traffic_spec(self, decision_interval_s: float) -> TrafficSpec:
        """The :class:`TrafficSpec` that classical controllers use."""
        index = self.lane_index()
        movements = []
        for x in self.intersections:
            per_phase = []
            for state in x.green_states:
                moves = tuple(
                    Movement(index[link.in_lane], index[link.out_lane])
                    for link in x.links
                    if state and _released(state[link.index], link)
                )
                per_phase.append(moves)
            movements.append(tuple(per_phase))
        return TrafficSpec(
            n_lanes=len(self.lanes),
            phase_movements=tuple(movements),
            phase_names=tuple(PHASE_NAMES for _ in self.intersections),
            incoming_lanes=tuple(
                tuple(index[lane] for lane in x.incoming) for x in self.intersections
            ),
            decision_interval_s=decision_interval_s,
            lane_capacity=tuple(float(c) for c in self.lane_capacity),
        )


def _released(signal: str, link: Link) -> bool:
    """Whether a phase serves ``link``: green, or yielding green on a shared lane (not a right
    turn, which every phase lets go)."""
    return signal == "G" or (signal == "g" and link.direction not in "rR")


def yellow_state(current: str, nxt: str) -> str:
    """The yellow state between two green states: links losing green turn yellow."""
    return "".join("y" if c in "Gg" and n not in "Gg" else c for c, n in zip(current, nxt))


def load_topology(net_file: str | Path) -> Topology:
    """Read ``net_file`` and derive agents, phases, lanes and adjacency.

    Raises:
        UserError: missing/garbled file, or a network without traffic lights.
    """
    path = Path(net_file)
    net = _read_net(path, programs=True)

    intersections = []
    for tls in sorted(net.getTrafficLights(), key=lambda t: t.getID()):
        x = _intersection(tls)
        if x is not None:
            intersections.append(x)
    if not intersections:
        raise UserError(
            f"network {path} has no traffic lights to control; add signalised junctions "
            "(e.g. netconvert --tls.guess) or choose another network"
        )

    lanes: list[str] = []
    seen: set[str] = set()
    for x in intersections:
        for lane in [*x.incoming, *(link.out_lane for link in x.links)]:
            if lane not in seen:
                seen.add(lane)
                lanes.append(lane)
    capacity = np.array(
        [max(1.0, net.getLane(lane).getLength() / VEHICLE_SPACE_M) for lane in lanes],
        dtype=np.float32,
    )
    adjacency = _adjacency(net, intersections)
    positions = np.array(
        [np.mean([net.getNode(j).getCoord() for j in x.junctions], axis=0) for x in intersections],
        dtype=np.float64,
    )
    return Topology(path, tuple(intersections), tuple(lanes), capacity, adjacency, positions)


def edge_shapes(net_file: str | Path) -> list[np.ndarray]:
    """Centre-line shapes of the network's edges, ``(P, 2)`` metres each (for maps).

    Raises:
        UserError: missing or unreadable network file.
    """
    net = _read_net(Path(net_file))
    return [np.asarray(e.getShape(), dtype=np.float64)[:, :2] for e in net.getEdges()]


def _read_net(path: Path, programs: bool = False) -> Any:
    """The sumolib network of ``path`` (no internal edges; the signal programs when
    ``programs``), or a one-line :class:`UserError`."""
    import sumolib  # the only sumolib import of the project

    if not path.is_file():
        raise UserError(f"network file not found: {path}; give an existing .net.xml")
    if path.stat().st_size == 0:
        raise UserError(f"network file {path} is empty; regenerate it or give another .net.xml")
    try:
        net = sumolib.net.readNet(str(path), withInternal=False, withPrograms=programs)
    except Exception as exc:  # sumolib raises SAX/ValueError/KeyError on garbage
        msg = " ".join(str(exc).split())[:200]
        raise UserError(f"cannot read network {path}: {msg}; is it a SUMO .net.xml?") from None
    if not net.getEdges():
        raise UserError(f"network {path} has no edges; is it a SUMO .net.xml?")
    return net


def _heading(edge: object) -> float:
    shape = edge.getShape()  # type: ignore[attr-defined]
    (x0, y0), (x1, y1) = shape[-2], shape[-1]
    return math.atan2(y1 - y0, x1 - x0)


def _axes(headings: dict[str, float]) -> dict[str, int]:
    """Assign each incoming edge to axis 0 (WE-like) or 1 (NS-like)."""
    z = sum(complex(math.cos(4 * t), math.sin(4 * t)) for t in headings.values())
    alpha = math.atan2(z.imag, z.real) / 4 if abs(z) > 1e-9 else 0.0
    # make axis 0 the one closer to west-east
    if abs(math.cos(alpha)) < abs(math.sin(alpha)):
        alpha += math.pi / 2
    return {e: 0 if math.cos(2 * (t - alpha)) >= 0 else 1 for e, t in headings.items()}


def _intersection(tls: object) -> Intersection | None:
    connections = tls.getConnections()  # type: ignore[attr-defined]  # [inLane, outLane, linkNo]
    if not connections:
        return None
    program = _program_states(tls)
    # The state string covers every link of the light: vehicle links and those sumolib lists
    # no vehicle connection for (signalised pedestrian crossings, unused indices).
    n_links = max(1 + max(int(c[2]) for c in connections), *(len(s) for s in program))
    in_edges = {c[0].getEdge().getID(): c[0].getEdge() for c in connections}
    axes = _axes({eid: _heading(e) for eid, e in in_edges.items()})
    links = []
    for in_lane, out_lane, link_no in connections:
        direction = "s"
        for conn in in_lane.getOutgoing():
            if conn.getToLane() is out_lane and conn.getTLLinkIndex() == link_no:
                direction = conn.getDirection()
                break
        links.append(
            Link(
                index=int(link_no),
                in_lane=in_lane.getID(),
                out_lane=out_lane.getID(),
                direction=direction,
                axis=axes[in_lane.getEdge().getID()],
            )
        )
    links.sort(key=lambda link: (link.index, link.in_lane, link.out_lane))
    greens = []
    for phase in range(N_PHASES):
        axis = phase % 2
        wants_left = phase >= 2
        state = ["r"] * n_links
        served = False
        for link in links:
            if link.direction in "rR":
                state[link.index] = "g"
            elif link.axis == axis and (link.direction in "lLt") == wants_left:
                state[link.index] = "G"
                served = True
        released = {link.in_lane for link in links if state[link.index] == "G"}
        for link in links:  # a shared lane: its other movements may go, yielding
            if link.in_lane in released and state[link.index] == "r":
                state[link.index] = "g"
        greens.append("".join(state) if served else "")
    if not any(greens):
        # only right turns: treat the junction as one always-green phase
        greens[0] = "".join("G" for _ in range(n_links))
    greens = _add_unmodelled_links(greens, links, n_links, program)
    lane_axis = {link.in_lane: link.axis for link in links}
    incoming = sorted(lane_axis, key=lambda lane: (lane_axis[lane], lane))
    junctions = sorted({c[0].getEdge().getToNode().getID() for c in connections})
    return Intersection(
        tls_id=tls.getID(),  # type: ignore[attr-defined]
        n_links=n_links,
        links=tuple(links),
        green_states=tuple(greens),
        incoming=tuple(incoming),
        junctions=tuple(junctions),
    )


def _program_states(tls: object) -> list[str]:
    """The phase states of the light's first program in the network file (none: ``[]``)."""
    programs = tls.getPrograms()  # type: ignore[attr-defined]
    if not programs:
        return []
    first = programs[sorted(programs)[0]]
    return [phase.state for phase in first.getPhases()]


def _add_unmodelled_links(
    greens: list[str], links: list[Link], n_links: int, program: list[str]
) -> list[str]:
    """The phases with the links that have no vehicle connection (signalised pedestrian
    crossings) green where the network's own program shows them beside the same movements.

    First beside our movements as they are; a link still never green (a crossing the program
    serves only beside a yielding turn) then also where a movement must yield to it.
    """
    unmodelled = sorted(set(range(n_links)) - {link.index for link in links})
    if not unmodelled or not program:
        return greens
    greens = [_with_program_links(g, links, unmodelled, program, False) for g in greens]
    lit = {i for g in greens for i in unmodelled if g and g[i] != "r"}
    unlit = [i for i in unmodelled if i not in lit]
    if unlit:
        greens = [_with_program_links(g, links, unlit, program, True) for g in greens]
    return greens


def _with_program_links(
    state: str, links: list[Link], unmodelled: list[int], program: list[str], may_yield: bool
) -> str:
    """``state`` with the links it does not model (pedestrian crossings) set as the network's
    own program sets them in a phase that lets the same vehicle movements go.

    A program phase fits when every link ``state`` releases (right turns aside: they always
    yield here) is green in it, with priority (``G``) where ``state`` gives priority unless
    ``may_yield``. Of the fitting phases, the one with most ``unmodelled`` links green gives
    theirs, and with ``may_yield`` a movement that phase lets go only yielding (``g``, a turn
    across a crossing) yields here too. No fitting phase: they stay as they are (red).
    """
    if not state:
        return state
    moving = [x.index for x in links if x.direction not in "rR" and state[x.index] != "r"]
    best, best_count = "", 0
    for phase in program:
        if len(phase) != len(state):
            continue
        if any(phase[i] not in ("Gg" if may_yield or state[i] == "g" else "G") for i in moving):
            continue
        count = sum(phase[i] in "Gg" for i in unmodelled)
        if count > best_count:
            best, best_count = phase, count
    if not best:
        return state
    out = list(state)
    for i in unmodelled:
        if best[i] in "Gg":
            out[i] = best[i]
    for i in moving:
        if best[i] == "g":
            out[i] = "g"
    return "".join(out)


def _adjacency(net: object, intersections: list[Intersection]) -> np.ndarray:
    """Agents linked by a road; unsignalised junctions in between are walked through."""
    owner: dict[str, int] = {}
    for i, x in enumerate(intersections):
        for j in x.junctions:
            owner[j] = i
    n = len(intersections)
    adj = np.zeros((n, n), dtype=bool)
    for i, x in enumerate(intersections):
        for jid in x.junctions:
            node = net.getNode(jid)  # type: ignore[attr-defined]
            for edge in node.getOutgoing():
                target = _walk_to_signal(edge.getToNode(), jid, owner, set())
                if target is not None and target != i:
                    adj[i, target] = adj[target, i] = True
    return adj


def _walk_to_signal(
    node: object, came_from: str, owner: dict[str, int], seen: set[str], depth: int = 0
) -> int | None:
    """Follow a road through unsignalised, non-branching nodes to the next signal."""
    nid = node.getID()  # type: ignore[attr-defined]
    if nid in owner:
        return owner[nid]
    if nid in seen or depth > 5:
        return None
    seen.add(nid)
    onward = [
        e
        for e in node.getOutgoing()  # type: ignore[attr-defined]
        if e.getToNode().getID() != came_from
    ]
    if len(onward) != 1:  # stop at branching unsignalised junctions and dead ends
        return None
    return _walk_to_signal(onward[0].getToNode(), nid, owner, seen, depth + 1)
