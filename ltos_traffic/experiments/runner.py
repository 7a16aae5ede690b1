"""The episode loop, visible in one place: reset, act, step, observe."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ltos_traffic.controllers.base import SharesRewards
from ltos_traffic.envs.base import NetworkedEnv
from ltos_traffic.types import EpisodeMetrics, TimeStep, Transition


@dataclass
class EpisodeResult:
    """What one episode produced.

    Attributes:
        metrics: the environment's episode metrics.
        losses: mean of each loss statistic the controller returned.
        queue_curve: per decision step, mean halting vehicles per agent
            (traffic) or mean reward per agent (grid-worlds).
        agent_queue: ``(N,)`` mean over decision steps of each agent's halting
            vehicles on its incoming lanes (traffic only, else ``None``).
    """

    metrics: EpisodeMetrics
    losses: dict[str, float] = field(default_factory=dict)
    queue_curve: list[float] = field(default_factory=list)
    agent_queue: np.ndarray | None = None


StepHook = Callable[[TimeStep, np.ndarray], None]


def run_episode(
    env: NetworkedEnv,
    controller: Any,
    *,
    seed: int,
    explore: bool,
    learn: bool,
    on_step: StepHook | None = None,
) -> EpisodeResult:
    """Run one episode.

    Args:
        env: the environment.
        controller: a :class:`~ltos_traffic.controllers.base.Controller`.
        seed: episode seed (SUMO's ``--seed`` for traffic).
        explore: pass ``explore`` to ``act`` (training) or act greedily.
        learn: call ``controller.observe`` on every transition.
        on_step: optional hook called with each step and the actions taken.
    """
    step = reset(env, controller, seed)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    curve: list[float] = []
    agent_queue: np.ndarray | None = None
    while not step.done:
        actions = controller.act(step, explore=explore)
        if on_step is not None:
            on_step(step, actions)
        next_step = env.step(actions)
        curve.append(queue_point(next_step))
        if next_step.lanes is not None:
            halting = -next_step.reward.astype(np.float64)
            agent_queue = halting if agent_queue is None else agent_queue + halting
        if learn:
            stats = controller.observe(Transition(step, actions, next_step))
            for key, value in stats.items():
                if math.isfinite(value):
                    sums[key] = sums.get(key, 0.0) + float(value)
                    counts[key] = counts.get(key, 0) + 1
        step = next_step
    losses = {k: sums[k] / counts[k] for k in sums}
    if agent_queue is not None:
        agent_queue = agent_queue / max(len(curve), 1)
    return EpisodeResult(env.episode_metrics(), losses, curve, agent_queue)


def reset(env: NetworkedEnv, controller: Any, seed: int) -> TimeStep:
    """Start an episode for ``controller``.

    A controller with ``network_programs = True`` (``sumo_program``) leaves the
    signals to the network's own programs, so the traffic environment is reset
    not to set them.
    """
    if getattr(controller, "network_programs", False):
        traffic_reset: Any = env.reset  # TrafficEnv.reset; the grid-worlds have no programs
        step: TimeStep = traffic_reset(seed, programs=True)
        return step
    return env.reset(seed)


class SharingMeter:
    """Mean greedy sharing weights of a controller that learns to share, over one episode.

    Use as ``run_episode``'s ``on_step`` hook. Controllers that share rewards
    (:class:`~ltos_traffic.controllers.base.SharesRewards`, LToS) give
    ``sharing_weights(obs) -> (N, K)`` over each neighbourhood (slot 0 is the agent
    itself); for any other controller the meter records nothing and :attr:`active`
    is ``False``.
    """

    def __init__(self, controller: Any) -> None:
        """Attach to ``controller``.

        The weights are read at the steps where the controller's high level acts
        (every ``config.hl_action_interval`` decisions, the weights then held), not at
        every step: the same figure for a fraction of the forward passes.
        """
        self._weights_of: Callable[[np.ndarray], np.ndarray] | None = (
            controller.sharing_weights if isinstance(controller, SharesRewards) else None
        )
        self._every = max(1, int(getattr(getattr(controller, "config", None),
                                         "hl_action_interval", 1)))  # fmt: skip
        self._sum: np.ndarray | None = None
        self._count = 0

    @property
    def active(self) -> bool:
        """Whether the controller exposes sharing weights."""
        return self._weights_of is not None

    def __call__(self, step: TimeStep, actions: np.ndarray) -> None:
        """Add the greedy weights for this step's observations."""
        if self._weights_of is None or step.t % self._every:
            return
        w = np.asarray(self._weights_of(step.obs), dtype=np.float64)
        self._sum = w if self._sum is None else self._sum + w
        self._count += 1

    def mean(self) -> np.ndarray | None:
        """``(N, K)`` mean weights so far (``None`` when nothing was recorded)."""
        return None if self._sum is None else self._sum / self._count

    def self_weight(self) -> float:
        """Mean over agents and steps of the self-weight ``w_ii`` (NaN when inactive)."""
        return self.stats().get("self_weight", float("nan"))

    def stats(self) -> dict[str, float]:
        """The episode's self-weights over agents: mean, std, min and max.

        Keys ``self_weight``, ``self_weight_std``, ``self_weight_min``,
        ``self_weight_max``.

        Each agent's self-weight is first averaged over the episode's steps.
        Empty when the controller does not share or nothing was recorded.
        """
        w = self.mean()
        if w is None:
            return {}
        own = w[:, 0]
        return {
            "self_weight": float(own.mean()),
            "self_weight_std": float(own.std()),
            "self_weight_min": float(own.min()),
            "self_weight_max": float(own.max()),
        }


def queue_point(step: TimeStep) -> float:
    if step.lanes is not None:
        return float(-step.reward.mean()) if step.reward.size else 0.0
    return float(step.reward.mean()) if step.reward.size else 0.0
