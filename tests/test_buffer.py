"""The joint replay buffer: ring semantics, synchronised sampling, state round trip."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from ltos_traffic.learning.buffer import Batch, ReplayBuffer, RowCache

N, D, A, K = 3, 4, 2, 2


def _buffer(capacity: int = 5) -> ReplayBuffer:
    return ReplayBuffer(capacity, N, D, A, extras={"weights": ((N, K), np.float32)})


def _add(buf: ReplayBuffer, t: int) -> None:
    # Every field of row t carries t, so a sampled row shows where it came from.
    buf.add(
        obs=np.full((N, D), t, np.float32),
        mask=np.ones((N, A), bool),
        actions=np.full(N, t % A),
        reward=np.arange(N, dtype=np.float32) + 10 * t,
        next_obs=np.full((N, D), t + 1, np.float32),
        next_mask=np.ones((N, A), bool),
        done=t % 4 == 3,
        weights=np.full((N, K), t, np.float32),
    )


def test_length_and_wraparound() -> None:
    buf = _buffer(5)
    assert len(buf) == 0
    for t in range(3):
        _add(buf, t)
    assert len(buf) == 3
    for t in range(3, 12):
        _add(buf, t)
    assert len(buf) == 5
    # Only the five newest rows (7..11) remain.
    batch = buf.gather(np.arange(5))
    assert sorted(batch.obs[:, 0, 0].tolist()) == [7, 8, 9, 10, 11]


def test_sample_shapes_dtypes_and_synchronised_rows() -> None:
    buf = _buffer(50)
    for t in range(20):
        _add(buf, t)
    batch = buf.sample(16, np.random.default_rng(0))
    assert batch.obs.shape == (16, N, D) and batch.obs.dtype == np.float32
    assert batch.actions.shape == (16, N) and batch.actions.dtype == np.int64
    assert batch.mask.dtype == bool and batch.next_mask.shape == (16, N, A)
    assert batch.done.shape == (16,)
    assert batch.extras["weights"].shape == (16, N, K)
    # One row holds every agent of the same timestep: all fields agree on t.
    ts = batch.obs[:, 0, 0]
    assert (batch.obs == ts[:, None, None]).all()
    assert (batch.next_obs == ts[:, None, None] + 1).all()
    assert (batch.reward == np.arange(N) + 10 * ts[:, None]).all()
    assert (batch.extras["weights"] == ts[:, None, None]).all()
    assert ((ts >= 0) & (ts < 20)).all()


def test_same_generator_state_gives_same_sample() -> None:
    buf = _buffer(50)
    for t in range(30):
        _add(buf, t)
    a = buf.sample(8, np.random.default_rng(7))
    b = buf.sample(8, np.random.default_rng(7))
    assert np.array_equal(a.obs, b.obs)
    rows = buf.sample_indices(100, np.random.default_rng(1), replace=False)
    assert len(rows) == 30 and len(set(rows.tolist())) == 30


def test_extras_must_match() -> None:
    buf = _buffer()
    with pytest.raises(ValueError, match="extras"):
        buf.add(
            obs=np.zeros((N, D)),
            mask=np.ones((N, A), bool),
            actions=np.zeros(N, int),
            reward=np.zeros(N),
            next_obs=np.zeros((N, D)),
            next_mask=np.ones((N, A), bool),
            done=False,
        )


def test_state_round_trip_with_weights_only_and_shape_check() -> None:
    buf = _buffer(6)
    for t in range(9):  # wrapped
        _add(buf, t)
    data = io.BytesIO()
    torch.save(buf.state_dict(), data)
    data.seek(0)
    state = torch.load(data, weights_only=True)
    copy = _buffer(6)
    copy.load_state_dict(state)
    assert len(copy) == len(buf)
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    assert np.array_equal(buf.sample(10, rng_a).obs, copy.sample(10, rng_b).obs)
    # After the round trip the ring continues where it was.
    _add(buf, 9)
    _add(copy, 9)
    assert np.array_equal(buf.gather(np.arange(6)).obs, copy.gather(np.arange(6)).obs)
    with pytest.raises(ValueError):
        ReplayBuffer(6, N, D + 1, A, extras={"weights": ((N, K), np.float32)}).load_state_dict(
            state
        )
    with pytest.raises(ValueError):
        ReplayBuffer(7, N, D, A, extras={"weights": ((N, K), np.float32)}).load_state_dict(state)


def test_row_cache_computes_each_row_once_until_it_is_rewritten() -> None:
    buf = _buffer(5)
    for t in range(5):
        _add(buf, t)
    cache = RowCache(5, (N,))
    computed: list[list[int]] = []

    def rewards(batch: Batch) -> Callable[[Any], torch.Tensor]:
        def compute(positions: Any) -> torch.Tensor:
            computed.append(np.asarray(batch.rows)[positions].tolist())
            return torch.from_numpy(batch.reward[positions])

        return compute

    first = buf.gather(np.array([1, 3]))
    assert torch.equal(
        cache.lookup(first.rows, buf, rewards(first)), torch.from_numpy(first.reward)
    )
    again = buf.gather(np.array([3, 1, 4]))
    assert torch.equal(
        cache.lookup(again.rows, buf, rewards(again)), torch.from_numpy(again.reward)
    )
    assert computed == [[1, 3], [4]]  # rows 1 and 3 were kept
    _add(buf, 5)  # the ring overwrites row 0 ...
    _add(buf, 6)  # ... and row 1
    later = buf.gather(np.array([1, 3]))
    assert torch.equal(
        cache.lookup(later.rows, buf, rewards(later)), torch.from_numpy(later.reward)
    )
    assert computed[-1] == [1]
    cache.clear()
    cache.lookup(later.rows, buf, rewards(later))
    assert computed[-1] == [1, 3]
    outside = buf.gather(np.array([2]))._replace(rows=None)  # not from the buffer: nothing kept
    assert torch.equal(cache.lookup(None, buf, lambda pos: torch.from_numpy(outside.reward[pos])),
                       torch.from_numpy(outside.reward))  # fmt: skip
