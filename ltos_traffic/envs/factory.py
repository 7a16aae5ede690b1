"""Build the environment a scenario describes."""

from __future__ import annotations

from typing import Any

from ltos_traffic.envs.base import NetworkedEnv
from ltos_traffic.envs.jungle import JungleEnv
from ltos_traffic.envs.prisoner import PrisonerEnv
from ltos_traffic.errors import UserError
from ltos_traffic.scenario import Scenario


def make_env(scenario: Scenario, **kwargs: Any) -> NetworkedEnv:
    """The environment for ``scenario.kind``.

    Args:
        scenario: a loaded scenario.
        **kwargs: traffic options passed to ``TrafficEnv`` (e.g. the SUMO
            backend); the grid-worlds take none.

    Raises:
        UserError: for an unknown kind, or options given to a grid-world.
    """
    if scenario.kind == "traffic":
        # Imported lazily: the grid-worlds must not need SUMO.
        from ltos_traffic.envs.traffic import TrafficEnv

        env: NetworkedEnv = TrafficEnv(scenario, **kwargs)
        return env
    if scenario.kind not in ("prisoner", "jungle"):
        raise UserError(f"scenario {scenario.name}: unknown kind {scenario.kind!r}")
    if kwargs:
        raise UserError(
            f"scenario {scenario.name} ({scenario.kind}) takes no simulator options, "
            f"got {sorted(kwargs)}"
        )
    if scenario.kind == "prisoner":
        return PrisonerEnv(scenario)
    return JungleEnv(scenario)
