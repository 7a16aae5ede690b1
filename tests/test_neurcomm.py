"""NeurComm: spatial discount, message passing between neighbours, n-step returns, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines._a2c import spatial_discount
from baselines.neurcomm import NeurComm, NeurCommConfig
from ltos_traffic.controllers.base import controller_class, make_controller, resolve_config
from ltos_traffic.learning.rollout import Rollout, RolloutBatch, discounted_returns
from ltos_traffic.scenario import load_scenario

from fakes import one_torch_thread
from fakes_baselines import TargetEnv, assert_learns, assert_resume_is_exact, line_adjacency

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def test_spatial_discount_is_alpha_to_the_hop_distance() -> None:
    w = spatial_discount(line_adjacency(4), alpha=0.5)
    expected = 0.5 ** np.abs(np.arange(4)[:, None] - np.arange(4)[None, :])
    np.testing.assert_allclose(w, expected)
    assert np.all(spatial_discount(line_adjacency(4), alpha=1.0) == 1.0)  # prisoner: global reward
    two_islands = np.zeros((4, 4), dtype=bool)
    two_islands[0, 1] = two_islands[1, 0] = two_islands[2, 3] = two_islands[3, 2] = True
    w = spatial_discount(two_islands, alpha=0.1)
    assert w[0, 2] == 0.0 and w[0, 1] == pytest.approx(0.1) and w[2, 2] == 1.0


def test_discounted_returns_match_a_backward_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    reward = torch.randn(7, 3, generator=gen)
    bootstrap = torch.randn(3, generator=gen)
    expected = torch.empty_like(reward)
    running = bootstrap.clone()
    for t in reversed(range(7)):
        running = reward[t] + 0.9 * running
        expected[t] = running
    torch.testing.assert_close(discounted_returns(reward, bootstrap, 0.9), expected)


def _controller(n_agents: int = 5) -> tuple[NeurComm, TargetEnv]:
    env = TargetEnv(n_agents=n_agents)
    return NeurComm(env.spec, NeurCommConfig(hidden=8), seed=0), env


def test_message_passing_reads_neighbours_only() -> None:
    """Agent 0's LSTM input depends on agent 1's message and fingerprint, not on agent 2's."""
    ctl, env = _controller()
    n, a, hidden = env.spec.n_agents, env.spec.n_actions, 8
    obs = torch.randn(n, env.spec.obs_dim)
    h = torch.randn(n, hidden, requires_grad=True)
    fp = torch.softmax(torch.randn(n, a), -1).requires_grad_(True)
    x = ctl.communicate(obs, (h, torch.zeros(n, hidden), fp))
    assert x.shape == (n, 3 * hidden)
    grad_h, grad_fp = torch.autograd.grad(x[0].sum(), [h, fp])
    assert grad_h[1].abs().sum() > 0 and grad_fp[1].abs().sum() > 0  # neighbour
    assert torch.all(grad_h[2:] == 0) and torch.all(grad_fp[2:] == 0)  # two hops away
    assert torch.all(grad_h[0] == 0)  # own state enters through the LSTM, not as a message


def test_communication_is_differentiable_one_hop_per_step() -> None:
    """Agent 0's policy at step t depends on the weights of agents up to t hops away."""
    ctl, env = _controller()
    step = env.reset(0)
    mask = torch.from_numpy(step.action_mask)
    carry = ctl._initial_carry()
    for t in range(3):
        logits, _, carry = ctl._step(torch.from_numpy(step.obs), mask, carry)
        weight = ctl.net["lstm"].w_in.weight
        (grad,) = torch.autograd.grad(logits[0].sum(), weight, retain_graph=True)
        reach = grad.flatten(1).abs().sum(1) > 0
        assert reach.tolist() == [i <= t for i in range(env.spec.n_agents)]


def test_neurcomm_learns_the_fake_task() -> None:
    env = TargetEnv(n_agents=3, steps=10)
    cfg = NeurCommConfig(
        hidden=16, lr=1e-2, gamma=0.0, reward_scale=1.0, reward_norm=1.0, n_steps=10
    )
    ctl = NeurComm(env.spec, cfg, seed=0)
    assert_learns(env, ctl, 60, {"policy_loss", "value_loss", "entropy"}, floor=25)


@pytest.mark.parametrize("name", ["neurcomm", "consenet"])
def test_resume_from_a_checkpoint_is_exact(name: str) -> None:
    assert_resume_is_exact(name, {"n_steps": "4"})


def _play_segment(ctl: NeurComm, env: TargetEnv) -> RolloutBatch:
    """One whole episode of ``env`` as a single segment (nothing learned)."""
    rollout = Rollout()
    step = env.reset(0)
    while not step.done:
        actions = ctl.act(step, explore=True)
        nxt = env.step(actions)
        rollout.add(step.obs, step.action_mask, actions, nxt.reward)
        step = nxt
    return rollout.take(step.obs, step.action_mask, step.done)


@pytest.mark.parametrize("bootstrap", [True, False])
def test_the_time_limit_bootstraps_from_the_critic(bootstrap: bool) -> None:
    """Issue 14: every episode here ends by a time limit, so the return of the last segment
    ends in ``gamma^k V(s_T)``, not 0 (Chu et al.'s terminal end, ``bootstrap_time_limit =
    false``). With 60-step grid2x2 episodes a zero there made the return a clock."""
    env = TargetEnv(n_agents=3, steps=5)
    cfg = NeurCommConfig(hidden=8, gamma=0.9, reward_scale=1.0, bootstrap_time_limit=bootstrap)
    ctl = NeurComm(env.spec, cfg, seed=0)
    with torch.no_grad():  # V = 7 everywhere
        ctl.net["critic"].weight.zero_()
        ctl.net["critic"].bias.fill_(7.0)
    batch = _play_segment(ctl, env)
    assert batch.done
    stats = ctl._update(batch, ctl._initial_carry(), ctl.carry)
    shaped = batch.reward * (1.0 / cfg.reward_norm) @ ctl.spatial.T
    tail = torch.full((3,), 7.0 if bootstrap else 0.0)
    expected = discounted_returns(shaped, tail, 0.9).mean().item()
    assert stats["return_mean"] == pytest.approx(expected, rel=1e-5)
    assert stats["value_mean"] == pytest.approx(7.0)


@pytest.mark.parametrize("name", ["neurcomm", "consenet"])
def test_authors_init_is_theirs(name: str) -> None:
    """Issue 14: ``authors_init = true`` is Chu et al.'s init: every weight matrix orthogonal
    with gain sqrt(2) (the actor and critic heads too), every bias 0 (the LSTM's too). It is
    not the default: its peaked first policy learned later on grid2x2."""
    env = TargetEnv(n_agents=3)
    ctl = make_controller(name, env.spec, 0, overrides={"hidden": "8", "authors_init": "true"})
    for key, layer in ctl.net.items():
        linears = [layer.w_in, layer.w_rec] if key == "lstm" else [layer]
        for lin in linears:
            assert torch.all(lin.bias == 0), key
            for w in lin.weight.detach():  # (in, out) per agent
                gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
                torch.testing.assert_close(gram, 2.0 * torch.eye(gram.shape[0]))


@pytest.mark.parametrize("name", ["neurcomm", "consenet"])
def test_traffic_critics_learn_on_a_hundredth_per_halting_vehicle(name: str) -> None:
    """Issue 14: on every traffic scenario the A2C family learns on 0.01 x the halting vehicles
    (Chu et al.'s reward_norm = 100), not the scenarios' common 0.1, whose bootstrapped values
    a freshly initialised critic cannot reach in a few hundred updates. The grid-worlds keep
    their rewards."""
    for scenario, factor in [("grid2x2", 0.01), ("grid6x6", 0.01), ("shenzhen", 0.01),
                             ("prisoner", 0.1), ("jungle", 0.1)]:  # fmt: skip
        hparams = load_scenario(scenario).hparams
        cfg = resolve_config(controller_class(name).Config, name, hparams, {})
        assert cfg.reward_scale / cfg.reward_norm == pytest.approx(factor), scenario


def test_the_default_first_policy_is_near_uniform() -> None:
    """Issue 14: the default actor head starts at gain 0.01, so the first episode is played
    by a near-uniform policy rather than an arbitrary peaked one."""
    env = TargetEnv(n_agents=3)
    ctl = make_controller("neurcomm", env.spec, 0, overrides={"hidden": "8"})
    step = env.reset(0)
    obs, mask = torch.from_numpy(step.obs), torch.ones(3, env.spec.n_actions, dtype=torch.bool)
    logits, _, _ = ctl._step(obs, mask, ctl._initial_carry())
    assert float(logits.abs().max()) < 0.05
