"""FlatOptimizer: the per-parameter optimiser's arithmetic bit for bit, its state dict layout."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ltos_traffic.learning.nn import FlatOptimizer, make_optimizer, mlp


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return mlp(5, (7, 6), 3)


def _steps(net: nn.Module, optim: FlatOptimizer | torch.optim.Optimizer, steps: int) -> None:
    data = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn((11, 5), generator=data)
        optim.zero_grad()
        (net(x) ** 2).mean().backward()
        optim.step()


def _trained_pair(
    name: str, steps: int
) -> tuple[nn.Module, FlatOptimizer, nn.Module, torch.optim.Optimizer]:
    """Equal networks, one under FlatOptimizer, one under the per-parameter optimiser."""
    flat_net, plain_net = _net(), _net()
    flat = FlatOptimizer(name, list(flat_net.parameters()), 1e-2)
    plain = make_optimizer(name, list(plain_net.parameters()), 1e-2)
    _steps(flat_net, flat, steps)
    _steps(plain_net, plain, steps)
    return flat_net, flat, plain_net, plain


@pytest.mark.parametrize("name", ["rmsprop", "adam", "sgd"])
def test_updates_equal_the_per_parameter_optimiser_bit_for_bit(name: str) -> None:
    flat_net, _, plain_net, _ = _trained_pair(name, 25)
    for a, b in zip(flat_net.parameters(), plain_net.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(flat_net.get_parameter("0.weight"), _net().get_parameter("0.weight"))


@pytest.mark.parametrize("name", ["rmsprop", "adam"])
def test_state_dicts_move_between_flat_and_per_parameter_optimisers(name: str) -> None:
    _, flat, plain_net, plain = _trained_pair(name, 5)
    saved_flat, saved_plain = flat.state_dict(), plain.state_dict()
    assert saved_flat["param_groups"] == saved_plain["param_groups"]
    assert saved_flat["state"].keys() == saved_plain["state"].keys()
    for i, entry in saved_plain["state"].items():
        for key, value in entry.items():
            assert torch.equal(saved_flat["state"][i][key], value), (i, key)
    # a per-parameter checkpoint resumes into the flat optimiser and continues identically
    resumed_net = copy.deepcopy(plain_net)
    resumed = FlatOptimizer(name, list(resumed_net.parameters()), 1e-2)
    resumed.load_state_dict(saved_plain)
    _steps(resumed_net, resumed, 3)
    _steps(plain_net, plain, 3)
    for a, b in zip(resumed_net.parameters(), plain_net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_fresh_optimiser_state_round_trips() -> None:
    net = _net()
    flat = FlatOptimizer("rmsprop", list(net.parameters()), 1e-3)
    other = FlatOptimizer("rmsprop", list(_net(1).parameters()), 1e-3)
    other.load_state_dict(flat.state_dict())  # no steps yet: empty state
    assert other.state_dict()["state"] == {}


def test_loading_another_networks_state_is_refused() -> None:
    flat = FlatOptimizer("rmsprop", list(_net().parameters()), 1e-3)
    small = mlp(5, (7,), 3)
    other = make_optimizer("rmsprop", list(small.parameters()), 1e-3)
    with pytest.raises(ValueError, match="optimiser state for 4 parameters"):
        flat.load_state_dict(other.state_dict())


def test_parameters_stay_views_through_load_state_dict_and_dropped_grads() -> None:
    """Loading weights into the module and a module-level zero_grad keep the flat link."""
    net = _net()
    flat = FlatOptimizer("sgd", list(net.parameters()), 0.5)
    net.load_state_dict(_net(3).state_dict())
    assert torch.equal(flat.flat[:35], net.get_parameter("0.weight").detach().reshape(-1))
    net.zero_grad(set_to_none=True)  # drops the gradient views
    before = [p.detach().clone() for p in net.parameters()]
    _steps(net, flat, 1)  # zero_grad re-attaches them, so the step sees the gradients
    assert all(not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True))
    assert flat.param_groups[0]["lr"] == 0.5


def test_mixed_parameters_are_refused() -> None:
    params = [nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2, dtype=torch.float64))]
    with pytest.raises(ValueError, match="one dtype and device"):
        FlatOptimizer("sgd", params, 0.1)
