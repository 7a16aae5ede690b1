"""Jungle: agents forage on a grid and may attack each other (after the DGN paper, in numpy).

The DGN paper's jungle is a moral dilemma: eating food pays, attacking a
neighbour pays the attacker a little and costs the victim more, so selfish
agents attack while the group does best without attacks. This is a rebuild
from those rules (no MAgent), with one change so that the neighbour graph is
static, as :class:`~ltos_traffic.types.EnvSpec` requires: every agent has a
home on a ``home_rows x home_cols`` lattice and may only move inside its
territory, the square of half-width ``territory_radius`` around its home.
Territories of lattice neighbours overlap, so those agents compete for the
same food and can meet and attack; two agents are graph neighbours exactly
when their territories let them stand on 4-adjacent cells.

Rules of one step (all agents act at once):

1. Actions: 0 stay, 1-4 move north/east/south/west, 5-8 attack the cell to the
   north/east/south/west.
2. Attacks use positions at the start of the step. Hitting an agent gives the
   attacker ``attack_reward`` and the victim ``attacked_reward`` (per hit);
   attacking an empty cell gives ``attack_miss_reward``.
3. A move succeeds when the target cell is inside the mover's territory and
   was free at the start of the step; when several agents move to the same
   cell, a random one (the env's seeded generator) gets it.
4. An agent that ends the step on food eats it (``eat_reward``); the food
   reappears on a random cell holding neither agent nor food.

Agents start at their homes; food starts on random free cells (from the seed).

Observation of an agent (``D = 3 (2v+1)^2 + 2``, ``v = view_radius``): three
``(2v+1) x (2v+1)`` planes centred on it, flattened in that order: other agents,
food, cells it cannot enter (off-grid or outside its territory); then its
offset from home divided by ``territory_radius`` (row, column).

Global state (``S = 2N + 2L``): agent positions, then food positions, each as
(row, column) divided by the grid size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ltos_traffic.errors import UserError
from ltos_traffic.scenario import Scenario, merged_params
from ltos_traffic.types import EnvSpec, EpisodeMetrics, TimeStep

N_ACTIONS = 9
# (row, column) step of actions 0..8: stay, 4 moves, 4 attacks (same directions).
_DIRECTIONS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)
_MOVE = np.concatenate([np.zeros((1, 2), dtype=np.int64), _DIRECTIONS, _DIRECTIONS * 0])
_ATTACK = np.concatenate([np.zeros((5, 2), dtype=np.int64), _DIRECTIONS])

# Scenario [params] keys and their defaults (20 agents and 12 foods, as in the DGN paper).
DEFAULT_PARAMS: dict[str, Any] = {
    "home_rows": 4,
    "home_cols": 5,
    "home_spacing": 5,
    "territory_radius": 3,
    "n_food": 12,
    "view_radius": 3,
    "eat_reward": 1.0,
    "attack_reward": 0.5,
    "attacked_reward": -2.0,
    "attack_miss_reward": -0.01,
}
_POSITIVE_INTS = ("home_rows", "home_cols", "home_spacing", "territory_radius", "n_food")


class JungleEnv:
    """The jungle grid-world as a :class:`~ltos_traffic.envs.base.NetworkedEnv`.

    Args:
        scenario: a scenario of kind ``"jungle"``; ``scenario.params`` may set
            any key of :data:`DEFAULT_PARAMS` (cells for sizes, reward units for
            rewards); ``scenario.episode_seconds`` is the number of steps per
            episode.
    """

    def __init__(self, scenario: Scenario) -> None:
        p = _check_params(scenario.name, scenario.params)
        self.radius = int(p["territory_radius"])
        self.view = int(p["view_radius"])
        self.n_food = int(p["n_food"])
        self.eat_reward = float(p["eat_reward"])
        self.attack_reward = float(p["attack_reward"])
        self.attacked_reward = float(p["attacked_reward"])
        self.attack_miss_reward = float(p["attack_miss_reward"])
        rows, cols, spacing = int(p["home_rows"]), int(p["home_cols"]), int(p["home_spacing"])
        self.shape = (
            (rows - 1) * spacing + 2 * self.radius + 1,
            (cols - 1) * spacing + 2 * self.radius + 1,
        )
        r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        self.home = self.radius + spacing * np.stack([r.ravel(), c.ravel()], axis=1)  # (N, 2)
        n = len(self.home)
        free_cells = self.shape[0] * self.shape[1] - n
        if self.n_food > free_cells:
            raise UserError(
                f"scenario {scenario.name}: n_food ({self.n_food}) exceeds the {free_cells} "
                "cells left free by the agents"
            )
        # Neighbours: territories whose squares come within one step of each other.
        gap = np.maximum(np.abs(self.home[:, None] - self.home[None]) - 2 * self.radius, 0)
        adjacency = gap.sum(axis=2) <= 1
        np.fill_diagonal(adjacency, False)
        side = 2 * self.view + 1
        self._window = np.arange(-self.view, self.view + 1)
        self._spec = EnvSpec(
            name=scenario.name,
            agent_ids=tuple(f"agent{i}" for i in range(n)),
            obs_dim=3 * side * side + 2,
            state_dim=2 * n + 2 * self.n_food,
            n_actions=N_ACTIONS,
            adjacency=adjacency,
            episode_steps=scenario.episode_steps,
            traffic=None,
        )
        self._rng = np.random.default_rng(0)
        self._pos = self.home.copy()
        self._food = np.zeros((self.n_food, 2), dtype=np.int64)
        self._t = 0
        self._return = 0.0
        self._eaten = 0
        self._hits = 0
        self._misses = 0

    @property
    def spec(self) -> EnvSpec:
        """The static description (the same object for the life of the env)."""
        return self._spec

    def reset(self, seed: int) -> TimeStep:
        """Put agents at their homes and food on random free cells drawn from ``seed``."""
        self._rng = np.random.default_rng(seed)
        self._pos = self.home.copy()
        self._food = np.zeros((0, 2), dtype=np.int64)
        self._food = self._free_cells(self.n_food)
        self._t = 0
        self._return = 0.0
        self._eaten = 0
        self._hits = 0
        self._misses = 0
        return self._timestep(np.zeros(self._spec.n_agents, dtype=np.float32))

    def step(self, actions: np.ndarray) -> TimeStep:
        """Apply attacks, then moves, then eating; see the module docstring.

        Args:
            actions: ``(N,)`` int in ``0..8``.
        """
        if self._t >= self._spec.episode_steps:
            raise RuntimeError("episode is over; call reset() first")
        n = self._spec.n_agents
        acts = np.asarray(actions, dtype=np.int64).reshape(-1)
        if acts.shape != (n,) or acts.min() < 0 or acts.max() >= N_ACTIONS:
            raise ValueError(f"actions must be (N,) in 0..{N_ACTIONS - 1}, got {actions!r}")
        reward = np.zeros(n, dtype=np.float64)
        occupant = self._occupancy()

        # Attacks, on start-of-step positions.
        attacking = acts >= 5
        target = self._pos + _ATTACK[acts]
        victim = np.full(n, -1, dtype=np.int64)
        inside = attacking & self._on_grid(target)
        victim[inside] = occupant[target[inside, 0], target[inside, 1]]
        hit = victim >= 0
        reward += np.where(hit, self.attack_reward, 0.0)
        reward += np.where(attacking & ~hit, self.attack_miss_reward, 0.0)
        np.add.at(reward, victim[hit], self.attacked_reward)
        self._hits += int(hit.sum())
        self._misses += int((attacking & ~hit).sum())

        # Moves into cells free at the start of the step; random winner per contested cell.
        dest = self._pos + _MOVE[acts]
        moving = (acts >= 1) & (acts <= 4) & (np.abs(dest - self.home) <= self.radius).all(axis=1)
        moving[moving] = occupant[dest[moving, 0], dest[moving, 1]] < 0
        movers = np.flatnonzero(moving)
        if movers.size:
            priority = self._rng.permutation(movers.size)
            cell = dest[movers, 0] * self.shape[1] + dest[movers, 1]
            order = np.lexsort((priority, cell))
            first = np.ones(order.size, dtype=bool)
            first[1:] = cell[order][1:] != cell[order][:-1]
            winners = movers[order[first]]
            self._pos[winners] = dest[winners]

        # Eating; eaten food reappears on free cells.
        food_index = np.full(self.shape, -1, dtype=np.int64)
        food_index[self._food[:, 0], self._food[:, 1]] = np.arange(len(self._food))
        eaten_by = food_index[self._pos[:, 0], self._pos[:, 1]]
        eaters = eaten_by >= 0
        reward += np.where(eaters, self.eat_reward, 0.0)
        if eaters.any():
            keep = np.ones(len(self._food), dtype=bool)
            keep[eaten_by[eaters]] = False
            self._food = self._food[keep]
            self._food = np.concatenate([self._food, self._free_cells(int(eaters.sum()))])
            self._eaten += int(eaters.sum())

        self._t += 1
        self._return += float(reward.sum())
        return self._timestep(reward.astype(np.float32))

    def episode_metrics(self) -> EpisodeMetrics:
        """Return, food eaten, attacks (hits and misses) and mean reward per agent-step."""
        agent_steps = max(self._t * self._spec.n_agents, 1)
        return EpisodeMetrics(
            episode_return=self._return,
            sim_seconds=float(self._t),
            extra={
                "food_eaten": float(self._eaten),
                "attacks": float(self._hits),
                "attack_misses": float(self._misses),
                "mean_reward_per_agent_step": self._return / agent_steps,
            },
        )

    def close(self) -> None:
        """Nothing to free (pure numpy)."""

    # ----------------------------------------------------------------- helpers

    def _on_grid(self, cells: np.ndarray) -> np.ndarray:
        rows, cols = self.shape
        return (cells[:, 0] >= 0) & (cells[:, 0] < rows) & (cells[:, 1] >= 0) & (cells[:, 1] < cols)

    def _occupancy(self) -> np.ndarray:
        """``(H, W)`` int: index of the agent on each cell, -1 where empty."""
        occupant = np.full(self.shape, -1, dtype=np.int64)
        occupant[self._pos[:, 0], self._pos[:, 1]] = np.arange(len(self._pos))
        return occupant

    def _free_cells(self, k: int) -> np.ndarray:
        """``(k, 2)`` distinct random cells holding neither an agent nor food."""
        taken = np.zeros(self.shape, dtype=bool)
        taken[self._pos[:, 0], self._pos[:, 1]] = True
        taken[self._food[:, 0], self._food[:, 1]] = True
        flat = self._rng.choice(np.flatnonzero(~taken.ravel()), size=k, replace=False)
        return np.stack(np.divmod(flat, self.shape[1]), axis=1).astype(np.int64)

    def _timestep(self, reward: np.ndarray) -> TimeStep:
        n = self._spec.n_agents
        rows, cols = self.shape
        v = self.view
        agents = np.zeros((rows + 2 * v, cols + 2 * v), dtype=np.float32)
        food = np.zeros_like(agents)
        agents[self._pos[:, 0] + v, self._pos[:, 1] + v] = 1.0
        food[self._food[:, 0] + v, self._food[:, 1] + v] = 1.0
        # Window cells of every agent in padded coordinates: (N, side, side).
        wr = (self._pos[:, 0, None] + self._window)[:, :, None] + v
        wc = (self._pos[:, 1, None] + self._window)[:, None, :] + v
        others = agents[wr, wc]
        others[:, v, v] = 0.0
        seen_food = food[wr, wc]
        # Blocked: outside the agent's own territory (which lies inside the grid).
        off_r = np.abs(self._pos[:, 0, None] + self._window - self.home[:, 0, None]) > self.radius
        off_c = np.abs(self._pos[:, 1, None] + self._window - self.home[:, 1, None]) > self.radius
        blocked = (off_r[:, :, None] | off_c[:, None, :]).astype(np.float32)
        offset = (self._pos - self.home) / self.radius
        obs = np.concatenate(
            [others.reshape(n, -1), seen_food.reshape(n, -1), blocked.reshape(n, -1), offset],
            axis=1,
        ).astype(np.float32)
        scale = np.array([rows, cols], dtype=np.float64)
        state = np.concatenate([(self._pos / scale).ravel(), (self._food / scale).ravel()])
        return TimeStep(
            obs=obs,
            state=state.astype(np.float32),
            action_mask=np.ones((n, N_ACTIONS), dtype=bool),
            reward=reward,
            done=self._t >= self._spec.episode_steps,
            t=self._t,
            sim_time_s=float(self._t),
        )


def _check_params(name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    params = merged_params(name, raw, DEFAULT_PARAMS)
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"scenario {name}: params.{key} must be a number, got {value!r}")
        least = 1 if key in _POSITIVE_INTS else 0
        whole = key in (*_POSITIVE_INTS, "view_radius")
        if whole and (not isinstance(value, int) or value < least):
            raise UserError(f"scenario {name}: params.{key} must be a whole number >= {least}")
    if params["home_rows"] * params["home_cols"] < 2:
        raise UserError(f"scenario {name}: jungle needs two agents at least")
    if 2 * params["territory_radius"] + 1 < params["home_spacing"]:
        raise UserError(
            f"scenario {name}: territories leave gaps (2*territory_radius + 1 < home_spacing); "
            "raise territory_radius or lower home_spacing"
        )
    return params
