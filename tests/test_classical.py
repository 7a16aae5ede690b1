"""Fixed-time and max-pressure on hand-built inputs (unit) and on SUMO (real)."""

from __future__ import annotations

import numpy as np
import pytest

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.errors import UserError
from ltos_traffic.types import EnvSpec, LaneCounts, Movement, TimeStep, TrafficSpec


def two_agent_spec(capacity: tuple[float, ...] = ()) -> EnvSpec:
    # lanes: 0..3 incoming of agent 0, 4..7 incoming of agent 1, 8 an exit lane
    m = Movement
    traffic = TrafficSpec(
        n_lanes=9,
        phase_movements=(
            ((m(0, 4),), (m(1, 8),), (m(2, 8),), (m(3, 8),)),
            ((m(4, 8),), (m(5, 8),), (), (m(7, 0),)),  # agent 1 has no WE-left
        ),
        phase_names=(("a", "b", "c", "d"), ("a", "b", "c", "d")),
        incoming_lanes=((0, 1, 2, 3), (4, 5, 6, 7)),
        decision_interval_s=10.0,
        lane_capacity=capacity,
    )
    return EnvSpec("unit", ("x", "y"), 4, 8, 4, np.array([[0, 1], [1, 0]], bool), 10, traffic)


def step_with(vehicles: list[float], t: int = 0) -> TimeStep:
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 1]], dtype=bool)
    v = np.asarray(vehicles, dtype=np.float32)
    return TimeStep(
        np.zeros((2, 4), np.float32), np.zeros(8, np.float32), mask, np.zeros(2, np.float32),
        False, t, 10.0 * t, LaneCounts(v, v),
    )  # fmt: skip


def test_max_pressure_picks_largest_incoming_minus_outgoing():
    ctl = make_controller("max_pressure", two_agent_spec(), 0)
    # agent 0: phase 0 pressure 5 - 9 = -4, phase 1: 3 - 0 = 3 -> 1
    # agent 1: phase 0 pressure 9, phase 3: 6 - 5 = 1, phase 2 masked -> 0
    vehicles = [5, 3, 1, 0, 9, 0, 50, 6, 0]
    actions = ctl.act(step_with(vehicles), explore=False)
    assert actions.tolist() == [1, 0]
    vehicles[4] = 0  # now agent 1's best is phase 3 (pressure 1), agent 0's phase 0 (5)
    assert ctl.act(step_with(vehicles), explore=False).tolist() == [0, 3]
    p = ctl.pressure(np.asarray(vehicles, float))
    assert p[0].tolist() == [5, 3, 1, 0]


def test_max_pressure_ties_break_to_lowest_phase():
    ctl = make_controller("max_pressure", two_agent_spec(), 0)
    assert ctl.act(step_with([0] * 9), explore=True).tolist() == [0, 0]


def test_max_pressure_needs_traffic():
    spec = two_agent_spec()
    bare = EnvSpec("toy", spec.agent_ids, 4, 8, 4, spec.adjacency, 10, None)
    with pytest.raises(UserError, match="traffic"):
        make_controller("max_pressure", bare, 0)


def test_fixed_time_cycles_legal_phases_with_hold():
    ctl = make_controller("fixed_time", two_agent_spec(), 0, overrides={"green_s": "20"})
    seq = [ctl.act(step_with([0] * 9, t), explore=False).tolist() for t in range(8)]
    assert [s[0] for s in seq] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [s[1] for s in seq] == [0, 0, 1, 1, 3, 3, 0, 0]  # skips masked phase 2


def test_fixed_time_rejects_non_positive_green():
    with pytest.raises(UserError, match="positive"):
        make_controller("fixed_time", two_agent_spec(), 0, overrides={"green_s": "0"})


def test_capacity_aware_max_pressure_does_not_feed_a_full_lane():
    """Agent 0's phase 0 feeds lane 4, a short lane that is full (4 of 4): textbook pressure
    12 - 4 = 8 beats phase 1 (3 - 0); as fractions of capacity 12/40 - 4/4 < 0 loses to it."""
    capacity = (40.0, 40.0, 40.0, 40.0, 4.0, 40.0, 40.0, 40.0, 100.0)
    vehicles = [12, 3, 0, 0, 4, 0, 0, 0, 0]
    textbook = make_controller("max_pressure", two_agent_spec(capacity), 0)
    aware = make_controller("max_pressure_capacity", two_agent_spec(capacity), 0)
    assert textbook.act(step_with(vehicles), explore=False)[0] == 0
    assert aware.act(step_with(vehicles), explore=False)[0] == 1
    np.testing.assert_allclose(aware.pressure(np.asarray(vehicles, float))[0, :2],
                               [12 / 40 - 1.0, 3 / 40])  # fmt: skip
    with pytest.raises(UserError, match="capacities"):
        make_controller("max_pressure_capacity", two_agent_spec(), 0)
