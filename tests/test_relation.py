"""DGN's relation block: the dense all-pairs evaluation is the gathered-slot one up to rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ltos_traffic.learning import nn as lnn
from ltos_traffic.learning.nn import Relation, attention_bias, init_normal_
from ltos_traffic.types import neighbourhood

from fakes import RingEnv, make_learner, ring_adjacency


def _grid_adjacency(side: int) -> np.ndarray:
    n = side * side
    adj = np.zeros((n, n), bool)
    for i in range(n):
        r, c = divmod(i, side)
        for dr, dc in ((0, 1), (1, 0)):
            if r + dr < side and c + dc < side:
                j = (r + dr) * side + c + dc
                adj[i, j] = adj[j, i] = True
    return adj


def _both(block: Relation, x: torch.Tensor, adjacency: np.ndarray) -> tuple[torch.Tensor, ...]:
    """Outputs and input/parameter gradients of one random loss, gathered then dense."""
    index_np, mask_np = neighbourhood(adjacency)
    index, mask = torch.as_tensor(index_np), torch.as_tensor(mask_np)
    bias = attention_bias(index, mask)
    assert bias is not None
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    results = []
    for dense in (None, bias):
        x_in = x.clone().requires_grad_(True)
        block.zero_grad()
        out = block(x_in, index, mask, bias=dense)
        (out * weights).sum().backward()
        assert x_in.grad is not None
        grads = [p.grad.clone() for p in block.parameters() if p.grad is not None]
        results.append((out.detach(), x_in.grad, *grads))
    return tuple(zip(*results, strict=True))  # type: ignore[return-value]


@pytest.mark.parametrize("heads", [1, 4])
@pytest.mark.parametrize(
    "adjacency", [_grid_adjacency(6), ring_adjacency(7, chord=True)], ids=["grid6x6", "ring"]
)
def test_dense_and_gathered_attention_agree_forward_and_backward(
    heads: int, adjacency: np.ndarray
) -> None:
    block = Relation(32, heads)
    init_normal_(block, torch.Generator().manual_seed(0), std=0.3)
    x = torch.randn((20, adjacency.shape[0], 32), generator=torch.Generator().manual_seed(2))
    for gathered, dense in _both(block, x, adjacency):
        assert gathered.shape == dense.shape
        scale = float(gathered.abs().max())  # float32 rounding, relative to the values' size
        torch.testing.assert_close(dense, gathered, rtol=1e-4, atol=1e-6 * scale)
        assert not torch.equal(gathered, torch.zeros_like(gathered))


def test_padded_slots_and_non_neighbours_get_no_attention() -> None:
    """Changing an agent outside i's neighbourhood leaves i's output alone (dense path)."""
    adjacency = _grid_adjacency(3)  # corners have 2 neighbours, padded to K = 5
    index, mask = (torch.as_tensor(a) for a in neighbourhood(adjacency))
    bias = attention_bias(index, mask)
    block = Relation(8, 2)
    init_normal_(block, torch.Generator().manual_seed(0), std=0.5)
    x = torch.randn((3, 9, 8), generator=torch.Generator().manual_seed(3))
    moved = x.clone()
    moved[:, 8] += 5.0  # agent 8, the far corner from agent 0
    with torch.no_grad():
        before = block(x, index, mask, bias=bias)
        after = block(moved, index, mask, bias=bias)
    assert torch.equal(before[:, 0], after[:, 0])
    assert not torch.equal(before[:, 5], after[:, 5])  # 5 neighbours 8


def test_attention_bias_opens_real_slots_only() -> None:
    index, mask = (torch.as_tensor(a) for a in neighbourhood(_grid_adjacency(3)))
    bias = attention_bias(index, mask)
    assert bias is not None
    allowed = bias == 0
    assert allowed.sum() == mask.sum()
    assert allowed[0].nonzero().flatten().tolist() == [0, 1, 3]
    assert torch.equal(bias, bias.T)
    assert torch.isneginf(bias[~allowed]).all()


def test_duplicate_real_slots_are_refused() -> None:
    index = torch.tensor([[0, 1, 1], [1, 0, 1]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    with pytest.raises(ValueError, match="same agent in two real slots"):
        attention_bias(index, mask)


def test_large_networks_use_gathered_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lnn, "DENSE_ATTENTION_MAX_AGENTS", 8)
    index, mask = (torch.as_tensor(a) for a in neighbourhood(_grid_adjacency(3)))
    assert attention_bias(index, mask) is None


@pytest.mark.parametrize("name", ["dgn", "ltos"])
def test_the_attention_setting_picks_the_evaluation_of_every_relation_block(name: str) -> None:
    env = RingEnv(n_agents=6)
    modules = {"dgn": ("q_net", "q_target"), "ltos": ("q_net", "q_target", "phi", "phi_target")}
    for attention, dense in (("dense", True), ("gathered", False)):
        learner = make_learner(name, env, attention=attention)
        for module in modules[name]:
            bias = getattr(learner, module).attention_bias
            assert (bias is not None) == dense, (attention, module)
