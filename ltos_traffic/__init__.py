"""ltos-traffic: adaptive traffic-signal control on SUMO with LToS and baselines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ltos_traffic.version import __version__

if TYPE_CHECKING:  # imported on use: PettingZoo is an optional extra
    from ltos_traffic.envs.pettingzoo_env import ParallelTrafficEnv


__all__ = ["__version__", "parallel_env"]


def parallel_env(net: str = "grid6x6", **options: Any) -> ParallelTrafficEnv:
    """A PettingZoo ``ParallelEnv`` on ``net`` (extra ``pettingzoo``).

    See :func:`ltos_traffic.envs.pettingzoo_env.parallel_env` for the options.
    """
    from ltos_traffic.envs.pettingzoo_env import parallel_env as make

    return make(net, **options)
