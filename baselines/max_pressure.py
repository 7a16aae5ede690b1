"""Max-pressure control.

Varaiya (2013), "Max pressure control of a network of signalized intersections".

At every decision each light picks the green phase with the largest pressure,
the sum over the phase's movements of (vehicles on the incoming lane minus
vehicles on the outgoing lane). Ties go to the lowest phase index,
so the rule is deterministic. Needs the traffic layout (``spec.traffic``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ltos_traffic.controllers.base import StaticController, register
from ltos_traffic.errors import UserError
from ltos_traffic.types import EnvSpec, TimeStep


@dataclass(frozen=True)
class MaxPressureConfig:
    """Max-pressure options.

    Attributes:
        use_halting: measure queues as halting vehicles instead of all vehicles
            on the lane (Varaiya's queue is all vehicles: default False).
        capacity_aware: count each lane's vehicles as a fraction of what fits on it
            (Gregoire et al., "Capacity-aware backpressure traffic signal control", 2015), so
            a movement into a full lane has no positive pressure however long its queue.
    """

    use_halting: bool = False
    capacity_aware: bool = False


@register("max_pressure")
class MaxPressure(StaticController):
    """Choose the phase of largest pressure at every decision."""

    Config = MaxPressureConfig

    def __init__(self, spec: EnvSpec, config: MaxPressureConfig, seed: int) -> None:
        super().__init__(spec, config, seed)
        if spec.traffic is None:
            raise UserError("max_pressure needs a traffic scenario (it reads lane queues)")
        traffic = spec.traffic
        # Sparse phase-movement incidence as (row, in_lane, out_lane) triplets, rows = agent*A + a.
        rows, ins, outs = [], [], []
        for i, phases in enumerate(traffic.phase_movements):
            for a, moves in enumerate(phases):
                for m in moves:
                    rows.append(i * spec.n_actions + a)
                    ins.append(m.in_lane)
                    outs.append(m.out_lane)
        self._rows = np.asarray(rows, dtype=np.int64)
        self._ins = np.asarray(ins, dtype=np.int64)
        self._outs = np.asarray(outs, dtype=np.int64)
        self._shape = (spec.n_agents, spec.n_actions)
        self._per_vehicle = np.ones(traffic.n_lanes)
        if config.capacity_aware:
            if len(traffic.lane_capacity) != traffic.n_lanes:
                raise UserError("capacity_aware max-pressure needs the lanes' capacities")
            self._per_vehicle = 1.0 / np.asarray(traffic.lane_capacity, dtype=np.float64)

    def pressure(self, queue: np.ndarray) -> np.ndarray:
        """``(N, A)`` pressure of every phase given per-lane queues ``(L,)``."""
        load = queue * self._per_vehicle
        per_move = load[self._ins] - load[self._outs]
        total = np.bincount(self._rows, weights=per_move, minlength=self._shape[0] * self._shape[1])
        return total.reshape(self._shape)

    def act(self, step: TimeStep, *, explore: bool) -> np.ndarray:
        if step.lanes is None:
            raise UserError("max_pressure needs lane counts from a traffic environment")
        queue = step.lanes.halting if self.config.use_halting else step.lanes.vehicles
        p = np.where(step.action_mask, self.pressure(queue.astype(np.float64)), -np.inf)
        return np.argmax(p, axis=1).astype(np.int64)


@dataclass(frozen=True)
class CapacityPressureConfig(MaxPressureConfig):
    """Max-pressure options with ``capacity_aware`` on."""

    capacity_aware: bool = True


@register("max_pressure_capacity")
class CapacityAwareMaxPressure(MaxPressure):
    """Capacity-aware max-pressure (Gregoire et al. 2015): lane loads as fractions of capacity.

    Against textbook max-pressure on the RESCO maps (seed 0, travel time): ingolstadt21 255 s
    against 318 s (18 teleports against 152: textbook max-pressure gridlocks two adjacent lights
    joined by a short road), cologne8 87 against 93; worse on the oversaturated arterial4x4,
    484 against 375.
    """

    Config = CapacityPressureConfig
