"""The network's own signal programs, run unchanged (what SUMO does with no controller).

RESCO's FIXED baseline and "what the city runs today": every traffic light
follows the program of the ``.net.xml`` (or of a ``.sumocfg``'s additional
files) with its own phases, durations and offsets. The episode still goes
through the same loop, observations, rewards and tripinfo metrics as every
other controller; its actions are placeholders that the environment does not
apply (see ``TrafficEnv.reset(programs=True)``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ltos_traffic.controllers.base import NoConfig, StaticController, register
from ltos_traffic.errors import UserError
from ltos_traffic.types import EnvSpec, TimeStep


@register("sumo_program")
class SumoProgram(StaticController):
    """Leave every light to its network program; act returns each light's first legal phase."""

    network_programs: ClassVar[bool] = True

    def __init__(self, spec: EnvSpec, config: NoConfig, seed: int) -> None:
        super().__init__(spec, config, seed)
        if spec.traffic is None:
            raise UserError(
                "sumo_program needs a traffic scenario (it runs SUMO's signal programs)"
            )

    def act(self, step: TimeStep, *, explore: bool) -> np.ndarray:
        return np.argmax(step.action_mask, axis=1).astype(np.int64)
