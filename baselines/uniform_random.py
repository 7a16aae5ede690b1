"""Random control: every light picks one of its legal green phases uniformly at every decision.

The sanity row of a comparison (RESCO's "stochastic" controller): a learned
policy that does not beat it has learned nothing. It is seeded by the run seed,
greedy and exploring actions are drawn alike, and its generator state is its
``state_dict``, so a resumed or reloaded run draws the same phases. (The file
is not called ``random.py``, which could shadow the standard library module.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ltos_traffic.controllers.base import NoConfig, StaticController, register
from ltos_traffic.learning.rng import restore_rng, rng_state
from ltos_traffic.types import EnvSpec, TimeStep


@register("random")
class Random(StaticController):
    """Uniform choice among each light's legal phases, at every decision."""

    def __init__(self, spec: EnvSpec, config: NoConfig, seed: int) -> None:
        super().__init__(spec, config, seed)
        self.rng = np.random.default_rng(seed)

    def act(self, step: TimeStep, *, explore: bool) -> np.ndarray:
        mask = step.action_mask  # (N, A) bool
        legal = np.maximum(mask.sum(axis=1), 1)
        k = self.rng.integers(legal)  # (N,): which legal phase, uniform in [0, legal)
        order = np.argsort(~mask, axis=1, kind="stable")  # legal phases first, in phase order
        return order[np.arange(mask.shape[0]), k].astype(np.int64)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        restore_rng(self.rng, state["rng"])
