"""The episode loop, visible in one place: reset, act, step, observe."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
    """

    metrics: EpisodeMetrics
    losses: dict[str, float] = field(default_factory=dict)
    queue_curve: list[float] = field(default_factory=list)


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
    step = env.reset(seed)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    curve: list[float] = []
    while not step.done:
        actions = controller.act(step, explore=explore)
        if on_step is not None:
            on_step(step, actions)
        next_step = env.step(actions)
        curve.append(_queue_point(next_step))
        if learn:
            stats = controller.observe(Transition(step, actions, next_step))
            for key, value in stats.items():
                if math.isfinite(value):
                    sums[key] = sums.get(key, 0.0) + float(value)
                    counts[key] = counts.get(key, 0) + 1
        step = next_step
    losses = {k: sums[k] / counts[k] for k in sums}
    return EpisodeResult(env.episode_metrics(), losses, curve)


def _queue_point(step: TimeStep) -> float:
    if step.lanes is not None:
        return float(-step.reward.mean()) if step.reward.size else 0.0
    return float(step.reward.mean()) if step.reward.size else 0.0
