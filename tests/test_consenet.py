"""ConseNet: the consensus step averages critic parameters over neighbourhoods only."""

from __future__ import annotations

import pytest
import torch

from baselines.consenet import ConseNet, ConseNetConfig, consensus_matrix
from ltos_traffic.experiments.runner import run_episode

from fakes import one_torch_thread
from fakes_baselines import TargetEnv

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def _controller(n_agents: int = 4) -> ConseNet:
    env = TargetEnv(n_agents=n_agents)
    return ConseNet(env.spec, ConseNetConfig(hidden=8), seed=0)


def test_consensus_matrix_averages_each_closed_neighbourhood() -> None:
    ctl = _controller()
    expected = torch.tensor(
        [
            [1 / 2, 1 / 2, 0, 0],
            [1 / 3, 1 / 3, 1 / 3, 0],
            [0, 1 / 3, 1 / 3, 1 / 3],
            [0, 0, 1 / 2, 1 / 2],
        ]
    )
    torch.testing.assert_close(consensus_matrix(ctl.nbr_index, ctl.nbr_mask), expected)


def test_consensus_step_mixes_critics_and_leaves_actors_alone() -> None:
    ctl = _controller()
    with torch.no_grad():
        for p in ctl.critic_parameters():  # agent i's critic = the constant i
            p.copy_(torch.arange(4.0).view(4, *([1] * (p.dim() - 1))).expand_as(p))
    actor_before = ctl.net["actor"].weight.detach().clone()
    encoder_before = ctl.net["enc_obs"].weight.detach().clone()
    gap = ctl.consensus_step()
    expected = torch.tensor([0.5, 1.0, 2.0, 2.5])  # neighbourhood means of 0, 1, 2, 3
    for p in ctl.critic_parameters():
        rows = p.detach().flatten(1)
        torch.testing.assert_close(rows, expected[:, None].expand_as(rows))
    assert gap == pytest.approx((0.5 + 0 + 0 + 0.5) / 4)
    torch.testing.assert_close(ctl.net["actor"].weight, actor_before)
    torch.testing.assert_close(ctl.net["enc_obs"].weight, encoder_before)
    spread = [float(ctl.consensus_step()) for _ in range(60)]
    assert spread[-1] < 1e-3 * spread[0]  # repeated steps reach agreement on a connected graph


def test_every_update_ends_with_a_consensus_step() -> None:
    env = TargetEnv(n_agents=4, steps=6)
    ctl = ConseNet(env.spec, ConseNetConfig(hidden=8, n_steps=3), seed=1)
    result = run_episode(env, ctl, seed=0, explore=True, learn=True)
    assert ctl.updates == 2
    assert result.losses["consensus_gap"] > 0
    # Right after a consensus step, another one changes far less than the first did.
    assert ctl.consensus_step() < result.losses["consensus_gap"]
