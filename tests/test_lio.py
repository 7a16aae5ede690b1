"""LIO: incentive bounds, the lookahead policy step, and the incentive gradient itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines._a2c import masked_logits
from baselines.lio import LIO, LIOConfig, policy_logits
from ltos_traffic.learning.rollout import Rollout, RolloutBatch
from ltos_traffic.types import Transition

from fakes import one_torch_thread
from fakes_baselines import TargetEnv, assert_resume_is_exact

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def _setup(n_agents: int = 3, steps: int = 6) -> tuple[LIO, TargetEnv]:
    env = TargetEnv(n_agents=n_agents, steps=steps)
    cfg = LIOConfig(hidden=8, r_max=2.0, reward_scale=1.0, lr=1e-2, alpha_theta=0.1, n_steps=100)
    return LIO(env.spec, cfg, seed=0), env


def _play(ctl: LIO, env: TargetEnv, seed: int) -> RolloutBatch:
    rollout = Rollout()
    step = env.reset(seed)
    while not step.done:
        actions = ctl.act(step, explore=True)
        nxt = env.step(actions)
        rollout.add(step.obs, step.action_mask, actions, nxt.reward)
        step = nxt
    return rollout.take(step.obs, step.action_mask, True)


def test_incentives_are_bounded_and_reach_the_right_agents() -> None:
    ctl, env = _setup(n_agents=4)
    batch = _play(ctl, env, seed=0)
    paid = ctl.incentives(batch.obs, batch.actions)  # (T, N, K-1), K-1 = 2 on a line
    assert paid.shape == (batch.steps, 4, 2)
    assert torch.all(paid >= 0) and torch.all(paid <= 2.0)
    assert torch.all(paid[:, 0, 1] == 0) and torch.all(paid[:, 3, 1] == 0)  # ends: one neighbour
    received = ctl.received(paid)
    torch.testing.assert_close(received[:, 0], paid[:, 1, 0])  # 0 is paid by 1 only
    torch.testing.assert_close(received[:, 1], paid[:, 0, 0] + paid[:, 2, 0])
    torch.testing.assert_close(received.sum(1), paid.sum((1, 2)))


def test_lookahead_reproduces_the_real_policy_step() -> None:
    ctl, env = _setup()
    batch = _play(ctl, env, seed=0)
    before = {k: p.detach().clone() for k, p in ctl.policy.items()}
    ctl._update_policies(batch)
    updated, _ = ctl.lookahead(batch)
    _, rec, pair_mask = ctl.pairs()
    for name, param in ctl.policy.items():
        assert not torch.allclose(param, before[name])  # the step did move the policy
        real = param.detach()[rec][pair_mask.bool()]
        torch.testing.assert_close(updated[name].detach()[pair_mask.bool()], real)


def test_incentive_gradient_is_each_givers_own_second_order_gradient() -> None:
    """The batched pair construction equals, giver by giver, differentiating that giver's
    return on the new segment through every recipient's policy step, with the other givers'
    payments held fixed."""
    ctl, env = _setup()
    old = _play(ctl, env, seed=0)
    ctl._update_policies(old)
    new = _play(ctl, env, seed=1)
    params = list(ctl.incentive.parameters())
    batched = torch.autograd.grad(ctl.incentive_loss(old, new), params)

    cfg, n = ctl.config, env.spec.n_agents
    brute = [torch.zeros_like(p) for p in params]
    for i in range(n):
        paid = ctl.incentives(old.obs, old.actions)
        keep = torch.zeros(n, 1)
        keep[i] = 1.0
        paid_i = paid * keep + paid.detach() * (1 - keep)  # only giver i differentiable
        total = old.reward * cfg.reward_scale + ctl.received(paid_i)
        theta = {k: v.clone().requires_grad_(True) for k, v in ctl._prev_params.items()}
        advantage = ctl._advantage(total, ctl._prev_offset)
        inner = ctl._surrogate(theta, old.obs, old.action_mask, old.actions, advantage)
        grads = torch.autograd.grad(inner.sum(), list(theta.values()), create_graph=True)
        theta_new = {k: theta[k] + ctl._prev_step_size[k] * g for k, g in zip(theta, grads)}
        logits = masked_logits(policy_logits(theta_new, new.obs), new.action_mask)
        log_pi = torch.log_softmax(logits, -1).gather(-1, new.actions[..., None]).squeeze(-1)
        own_return = ctl._advantage(new.reward * cfg.reward_scale, ctl.critic_offset(new))[:, i]
        recipients = ctl.recipient[i][ctl.slot_mask[i].bool()]
        objective = (log_pi[:, recipients] * own_return[:, None]).mean(0).sum()
        loss_i = -objective + cfg.alpha_theta * paid[:, i].sum(-1).mean()
        for acc, g in zip(brute, torch.autograd.grad(loss_i, params, allow_unused=True)):
            if g is not None:
                acc += g
    for b, g in zip(batched, brute):
        torch.testing.assert_close(b, g, rtol=1e-4, atol=1e-6)
    assert sum(float(g.abs().sum()) for g in batched) > 0


def test_two_segments_run_both_steps_with_finite_stats() -> None:
    env = TargetEnv(n_agents=3, steps=6)
    ctl = LIO(env.spec, LIOConfig(hidden=8, n_steps=3), seed=0)
    stats = []
    step = env.reset(0)
    while not step.done:
        actions = ctl.act(step, explore=True)
        nxt = env.step(actions)
        stats.append(ctl.observe(Transition(step, actions, nxt)))
        step = nxt
    policy = {"policy_objective", "incentive_paid", "epsilon", "value_loss"}
    policy |= {"return_mean", "value_mean", "explained_variance"}  # the critic's fit
    assert stats[2].keys() == policy
    assert stats[5].keys() == policy | {"incentive_loss"}
    assert all(np.isfinite(v) for s in stats for v in s.values())
    assert ctl.episodes == 1 and ctl.updates == 2


def test_resume_from_a_checkpoint_is_exact() -> None:
    assert_resume_is_exact("lio", {"n_steps": "4"})  # the pending incentive step survives


@pytest.mark.parametrize("critic", [True, False])
def test_the_advantage_is_not_a_clock(critic: bool) -> None:
    """Issue 14: with the same reward at every step and a critic at its fixed point
    ``r / (1 - gamma)``, the TD error (bootstrapped at the time limit) is 0 at every step.
    The critic-free reward-to-go minus its mean instead falls with the time left in the
    segment, whatever the actions: on 60-step traffic episodes that clock drowned the signal."""
    env = TargetEnv(n_agents=3, steps=8)
    cfg = LIOConfig(hidden=8, reward_scale=1.0, gamma=0.9, critic=critic)
    ctl = LIO(env.spec, cfg, seed=0)
    with torch.no_grad():
        ctl.critic[2].weight.zero_()
        ctl.critic[2].bias.fill_(-0.5 / (1 - 0.9))
    batch = _play(ctl, env, seed=0)
    reward = torch.full((batch.steps, 3), -0.5)
    advantage = ctl._advantage(reward, ctl.critic_offset(batch))
    if critic:
        torch.testing.assert_close(advantage, torch.zeros_like(advantage))
    else:
        assert torch.all(advantage[1:] > advantage[:-1])  # a clock


def test_a_critic_step_moves_values_toward_td_targets() -> None:
    env = TargetEnv(n_agents=3, steps=6)
    ctl = LIO(env.spec, LIOConfig(hidden=8, lr_value=1e-2), seed=0)
    batch = _play(ctl, env, seed=0)
    total = batch.reward * ctl.config.reward_scale
    losses = [ctl._update_critic(batch, total)["value_loss"] for _ in range(20)]
    assert losses[-1] < 0.5 * losses[0]
