"""Replay buffer of joint transitions: every agent's experience of one timestep in one row.

Because a row holds all agents, a sampled minibatch is synchronised across agents
by construction: this is the appendix's "unified pseudo random number generator"
(every agent samples the same timesteps), done once for all agents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    """A minibatch of ``B`` joint transitions (numpy arrays).

    Attributes:
        obs: ``(B, N, D)`` float32 observations.
        mask: ``(B, N, A)`` bool, legal actions at ``obs``.
        actions: ``(B, N)`` int64 actions taken.
        reward: ``(B, N)`` float32 raw per-agent rewards.
        next_obs: ``(B, N, D)`` float32 next observations.
        next_mask: ``(B, N, A)`` bool, legal actions at ``next_obs``.
        done: ``(B,)`` bool, the transition ended an episode.
        extras: controller-specific arrays, e.g. LToS's ``"weights"`` ``(B, N, K)``.
        rows: ``(B,)`` the buffer rows the batch was read from (``None`` for a batch
            built by hand); with :meth:`ReplayBuffer.row_ids` they let a learner cache
            values computed from stored rows.
    """

    obs: np.ndarray
    mask: np.ndarray
    actions: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    next_mask: np.ndarray
    done: np.ndarray
    extras: dict[str, np.ndarray]
    rows: np.ndarray | None = None


class ReplayBuffer:
    """A preallocated ring of joint transitions; the oldest is overwritten when full."""

    def __init__(
        self,
        capacity: int,
        n_agents: int,
        obs_dim: int,
        n_actions: int,
        extras: Mapping[str, tuple[tuple[int, ...], np.dtype[Any] | type]] | None = None,
    ) -> None:
        """Allocate every array once.

        Args:
            capacity: joint transitions kept ``C`` (Table 4: 10,000 in traffic).
            n_agents: agents ``N``.
            obs_dim: observation size ``D``.
            n_actions: actions per agent ``A``.
            extras: name -> (per-row shape, dtype) of extra arrays to store.
        """
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        c, n = capacity, n_agents
        self._arrays: dict[str, np.ndarray] = {
            "obs": np.zeros((c, n, obs_dim), np.float32),
            "mask": np.zeros((c, n, n_actions), bool),
            "actions": np.zeros((c, n), np.int64),
            "reward": np.zeros((c, n), np.float32),
            "next_obs": np.zeros((c, n, obs_dim), np.float32),
            "next_mask": np.zeros((c, n, n_actions), bool),
            "done": np.zeros((c,), bool),
        }
        self._extra_names = tuple(extras or {})
        for name, (shape, dtype) in (extras or {}).items():
            if name in self._arrays:
                raise ValueError(f"extra array {name!r} clashes with a core field")
            self._arrays[name] = np.zeros((c, *shape), dtype)
        self._pos = 0
        self._size = 0
        self._ids = np.full(c, -1, np.int64)  # a new id each time a row is written
        self._next_id = 0

    def __len__(self) -> int:
        """Transitions currently stored."""
        return self._size

    def add(
        self,
        *,
        obs: np.ndarray,
        mask: np.ndarray,
        actions: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        next_mask: np.ndarray,
        done: bool,
        **extras: np.ndarray,
    ) -> None:
        """Store one joint transition (arrays for all agents of one timestep)."""
        if set(extras) != set(self._extra_names):
            raise ValueError(f"expected extras {self._extra_names}, got {tuple(extras)}")
        row = {
            "obs": obs,
            "mask": mask,
            "actions": actions,
            "reward": reward,
            "next_obs": next_obs,
            "next_mask": next_mask,
            "done": done,
            **extras,
        }
        for name, value in row.items():
            self._arrays[name][self._pos] = value
        self._ids[self._pos] = self._next_id
        self._next_id += 1
        self._pos = (self._pos + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def sample_indices(self, n: int, rng: np.random.Generator, *, replace: bool) -> np.ndarray:
        """``n`` row indices drawn from ``rng`` (``n`` is capped at ``len`` without replacement)."""
        if self._size == 0:
            raise ValueError("cannot sample from an empty buffer")
        if replace:
            return rng.integers(0, self._size, size=n)
        return rng.choice(self._size, size=min(n, self._size), replace=False)

    def gather(self, indices: np.ndarray) -> Batch:
        """The rows ``indices`` as a :class:`Batch` (copies)."""
        a = {name: arr[indices] for name, arr in self._arrays.items()}
        return Batch(
            obs=a["obs"],
            mask=a["mask"],
            actions=a["actions"],
            reward=a["reward"],
            next_obs=a["next_obs"],
            next_mask=a["next_mask"],
            done=a["done"],
            extras={name: a[name] for name in self._extra_names},
            rows=np.array(indices),
        )

    def row_ids(self, rows: np.ndarray) -> np.ndarray:
        """Ids of the transitions now in ``rows``: a row gets a new id whenever it is written.

        Equal ids mean equal contents, so a value computed from a row can be reused
        while the row keeps its id.
        """
        return self._ids[rows]

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """A minibatch of ``batch_size`` rows drawn uniformly with replacement from ``rng``."""
        return self.gather(self.sample_indices(batch_size, rng, replace=True))

    def state_dict(self) -> dict[str, Any]:
        """The stored rows (as tensors) and the write position; loads with ``weights_only``.

        Rows keep their slots, so a restored buffer samples exactly what the
        original would have sampled from the same generator state.
        """
        return {
            "capacity": self.capacity,
            "pos": self._pos,
            "arrays": {name: torch.from_numpy(a[: self._size]) for name, a in self._arrays.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`.

        Raises:
            ValueError: when the state does not fit this buffer (capacity, fields or shapes).
        """
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"buffer capacity {state['capacity']} differs from {self.capacity}")
        arrays = state["arrays"]
        if set(arrays) != set(self._arrays):
            raise ValueError(f"buffer fields {sorted(arrays)} differ from {sorted(self._arrays)}")
        size = int(arrays["done"].shape[0])
        for name, target in self._arrays.items():
            rows = arrays[name].numpy()
            if rows.shape != (size, *target.shape[1:]):
                raise ValueError(
                    f"buffer field {name!r} has shape {tuple(rows.shape)}, "
                    f"expected ({size}, *{target.shape[1:]})"
                )
            target[:size] = rows
        self._ids[:] = -1
        self._ids[:size] = np.arange(self._next_id, self._next_id + size)
        self._next_id += size
        self._size = size
        self._pos = int(state["pos"]) % self.capacity


class RowCache:
    """Values computed from replay rows, kept until their row is rewritten.

    Keyed by :meth:`ReplayBuffer.row_ids`, so a row's value is recomputed only
    after the row holds a new transition (or after :meth:`clear`, for values that
    also depend on something else, such as a target network's parameters).
    """

    def __init__(self, capacity: int, shape: tuple[int, ...]) -> None:
        """Room for one ``shape`` float32 value per buffer row."""
        self.values = torch.zeros((capacity, *shape))
        self.ids = np.full(capacity, -1, np.int64)

    def clear(self) -> None:
        """Forget every value."""
        self.ids[:] = -1

    def lookup(
        self,
        rows: np.ndarray | None,
        buffer: ReplayBuffer,
        compute: Callable[[Any], torch.Tensor],
    ) -> torch.Tensor:
        """``(B, *shape)`` values of a batch's ``rows``, computing only those not kept.

        Args:
            rows: the batch's buffer rows, or ``None`` (a batch not from ``buffer``:
                everything is computed, nothing kept).
            buffer: the buffer the rows belong to.
            compute: given the batch positions to compute (an index array, or
                ``slice(None)`` for all), returns their values; a row's value must not
                depend on the other rows computed with it.
        """
        if rows is None:
            return compute(slice(None))
        ids = buffer.row_ids(rows)
        stale = self.ids[rows] != ids
        if stale.any():
            fresh = np.flatnonzero(stale)
            self.values[torch.from_numpy(rows[fresh])] = compute(fresh)
            self.ids[rows[fresh]] = ids[fresh]
        return self.values.index_select(0, torch.from_numpy(rows))
