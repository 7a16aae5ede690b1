"""Fixed-time control: every light cycles through its legal green phases.

The classical pre-timed plan: each green phase in turn for ``green_s``
seconds (rounded to whole decision intervals), in the order WE-through,
NS-through, WE-left, NS-left, skipping phases a junction does not have. The
environment inserts the yellow time on every change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ltos_traffic.controllers.base import StaticController, register
from ltos_traffic.errors import UserError
from ltos_traffic.types import EnvSpec, TimeStep


@dataclass(frozen=True)
class FixedTimeConfig:
    """Fixed-time plan.

    Attributes:
        green_s: green time of every phase per cycle, seconds (incl. the yellow
            that precedes it); rounded to whole decision intervals, at least one.
        offset_s: shift of every light's cycle, seconds per agent index
            (0 = all lights start together).
    """

    green_s: float = 30.0
    offset_s: float = 0.0


@register("fixed_time")
class FixedTime(StaticController):
    """Pre-timed cycle over each light's legal green phases."""

    Config = FixedTimeConfig

    def __init__(self, spec: EnvSpec, config: FixedTimeConfig, seed: int) -> None:
        super().__init__(spec, config, seed)
        if config.green_s <= 0:
            raise UserError(f"fixed_time green_s must be positive, got {config.green_s}")
        interval = spec.traffic.decision_interval_s if spec.traffic else 1.0
        self._hold = max(1, round(config.green_s / interval))
        self._shift = np.round(np.arange(spec.n_agents) * config.offset_s / interval).astype(int)

    def act(self, step: TimeStep, *, explore: bool) -> np.ndarray:
        mask = step.action_mask
        order = np.argsort(~mask, axis=1, kind="stable")  # legal phases first, in phase order
        slot = (step.t + self._shift) // self._hold
        k = slot % mask.sum(axis=1)
        return order[np.arange(mask.shape[0]), k].astype(np.int64)
