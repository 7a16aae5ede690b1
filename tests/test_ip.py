"""IP: intentions propagate one hop per round; masked policy; soft actor-critic learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.ip import IP, IPConfig, neighbour_mean

from fakes import one_torch_thread
from fakes_baselines import TargetEnv, assert_learns, assert_resume_is_exact

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def _reach(rounds: int, n_agents: int = 6) -> list[bool]:
    """Which agents' observations agent 0's policy depends on, on a line graph."""
    env = TargetEnv(n_agents=n_agents)
    ctl = IP(env.spec, IPConfig(rounds=rounds), seed=0)
    with torch.no_grad():  # lift the small random-normal init so no ReLU is dead
        for p in ctl.actor.parameters():
            p.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    obs = torch.randn(1, n_agents, env.spec.obs_dim, requires_grad=True)
    (grad,) = torch.autograd.grad(ctl.actor(obs)[0, 0].sum(), obs)
    return (grad[0].abs().sum(-1) > 0).tolist()


@pytest.mark.parametrize("rounds", [0, 1, 2, 3])
def test_intentions_propagate_one_hop_per_round(rounds: int) -> None:
    assert _reach(rounds) == [i <= rounds for i in range(6)]


def test_neighbour_mean_excludes_self_and_padding() -> None:
    env = TargetEnv(n_agents=3)
    ctl = IP(env.spec, IPConfig(), seed=0)
    x = torch.tensor([[[1.0], [10.0], [100.0]]])
    out = neighbour_mean(x, ctl.nbr_index, ctl.nbr_mask)
    torch.testing.assert_close(out, torch.tensor([[[10.0], [50.5], [10.0]]]))


def test_policy_gives_no_mass_to_illegal_actions() -> None:
    env = TargetEnv(n_agents=4)
    ctl = IP(env.spec, IPConfig(), seed=0)
    step = env.reset(3)
    mask = torch.from_numpy(step.action_mask)[None]
    probs, log_probs = ctl.policy(torch.from_numpy(step.obs)[None], mask)
    assert torch.all(probs[~mask] == 0) and torch.all(log_probs[~mask] == 0)
    torch.testing.assert_close(probs.sum(-1), torch.ones(1, 4))
    for _ in range(20):
        actions = ctl.act(step, explore=True)
        assert step.action_mask[np.arange(4), actions].all()


def test_ip_learns_the_fake_task() -> None:
    env = TargetEnv(n_agents=3, steps=10)
    cfg = IPConfig(
        gamma=0.0,
        lr=3e-3,
        optimizer="adam",
        batch_size=16,
        sample_size=32,
        update_every_steps=5,
        eps_start=0.1,
        entropy_reg=0.05,
        neighbourhood_reward=False,  # the fake task pays each agent for its own choice
    )
    ctl = IP(env.spec, cfg, seed=0)
    assert_learns(env, ctl, 40, {"q_loss", "actor_loss", "entropy"}, floor=24)


def test_resume_from_a_checkpoint_is_exact() -> None:
    assert_resume_is_exact("ip", {"batch_size": "4", "sample_size": "8", "update_every_steps": "2"})
