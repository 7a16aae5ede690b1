"""PettingZoo ``ParallelEnv`` adapter over any :class:`NetworkedEnv`.

Lets other MARL libraries use our scenarios. Requires the optional extra
``ltos-traffic[pettingzoo]``. Observations are dicts of ``(D,)`` float32 arrays,
actions ``Discrete(A)``; each agent's legal actions are in
``infos[agent]["action_mask"]`` (int8). Episodes end by truncation at the
scenario's horizon.

Example:
    >>> import ltos_traffic
    >>> env = ltos_traffic.parallel_env(net="grid2x2", seconds=600)
    >>> obs, infos = env.reset(seed=0)
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np

from ltos_traffic.envs.base import NetworkedEnv
from ltos_traffic.envs.factory import make_env
from ltos_traffic.errors import UserError

try:
    from gymnasium import spaces
    from pettingzoo import ParallelEnv
except ImportError as exc:  # pragma: no cover - optional extra
    raise UserError(
        "the PettingZoo adapter needs the optional extra: pip install 'ltos-traffic[pettingzoo]'"
    ) from exc


def parallel_env(net: str = "grid6x6", **options: Any) -> ParallelTrafficEnv:
    """A PettingZoo ``ParallelEnv`` on a network, the factory convention of PettingZoo and sumo-rl.

    Args:
        net: a network of ``ltos-traffic list`` (``grid6x6``, ``grid2x2``,
            ``shenzhen``, ``prisoner``, ...) or a path to a SUMO ``.net.xml``.
        **options: ``scenario`` (name or TOML path, instead of ``net``),
            ``routes`` (``.rou.xml`` files for a ``.net.xml`` path), ``seconds``
            (episode length) and ``begin`` (SUMO begin time, seconds); the rest
            go to :class:`~ltos_traffic.envs.traffic.TrafficEnv` (``backend``,
            ``gui``, ``data_dir``).

    Several environments may be open at once (later ones run SUMO in worker processes).
    """
    from ltos_traffic.scenario import resolve_scenario

    routes = options.pop("routes", ())
    routes = (routes,) if isinstance(routes, str) else tuple(str(r) for r in routes)
    scenario = resolve_scenario(net, routes, options.pop("scenario", None))
    timing = {key: options.pop(key) for key in ("seconds", "begin") if key in options}
    return ParallelTrafficEnv(make_env(scenario.with_timing(**timing), **options))


class ParallelTrafficEnv(ParallelEnv):
    """A PettingZoo parallel view of a :class:`NetworkedEnv`."""

    metadata: ClassVar[dict[str, Any]] = {"name": "ltos_traffic_v1", "render_modes": []}

    def __init__(self, env: NetworkedEnv) -> None:
        self.env = env
        spec = env.spec
        self.possible_agents = list(spec.agent_ids)
        self.agents: list[str] = []
        self._seed = 0
        self._last_mask: np.ndarray | None = None
        self._state: np.ndarray = np.zeros(spec.state_dim, dtype=np.float32)

    @functools.cache  # noqa: B019 - PettingZoo wants the same space object
    def observation_space(self, agent: str) -> spaces.Box:
        return spaces.Box(-np.inf, np.inf, shape=(self.env.spec.obs_dim,), dtype=np.float32)

    @functools.cache  # noqa: B019 - PettingZoo wants the same space object
    def action_space(self, agent: str) -> spaces.Discrete:
        return spaces.Discrete(self.env.spec.n_actions)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        if seed is not None:
            self._seed = int(seed)
        else:
            self._seed += 1
        step = self.env.reset(self._seed)
        self.agents = list(self.possible_agents)
        self._last_mask = step.action_mask
        self._state = step.state
        return self._obs(step.obs), self._infos(step.action_mask)

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[
        dict[str, np.ndarray],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        if not self.agents:
            raise RuntimeError("step() after the episode ended: call reset()")
        assert self._last_mask is not None
        joint = np.zeros(len(self.possible_agents), dtype=np.int64)
        for k, agent in enumerate(self.possible_agents):
            a = int(actions.get(agent, -1))
            if a < 0 or not self._last_mask[k, a]:
                a = int(np.argmax(self._last_mask[k]))  # missing or masked action: first legal
            joint[k] = a
        step = self.env.step(joint)
        self._last_mask = step.action_mask
        self._state = step.state
        obs = self._obs(step.obs)
        rewards = {a: float(r) for a, r in zip(self.possible_agents, step.reward)}
        terminations = dict.fromkeys(self.possible_agents, False)
        truncations = {a: bool(step.done) for a in self.possible_agents}
        infos = self._infos(step.action_mask)
        if step.done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """Global state for centralised training (e.g. QMIX)."""
        return self._state

    def close(self) -> None:
        self.env.close()

    def _obs(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {a: obs[k] for k, a in enumerate(self.possible_agents)}

    def _infos(self, mask: np.ndarray) -> dict[str, dict[str, Any]]:
        return {
            a: {"action_mask": mask[k].astype(np.int8)} for k, a in enumerate(self.possible_agents)
        }
