"""QMIX: the mixer is monotonic in every agent's value; episode replay; GRU resets; learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.qmix import QMIX, EpisodeBuffer, MonotonicMixer, QMIXConfig

from fakes import one_torch_thread
from fakes_baselines import TargetEnv, assert_learns, assert_resume_is_exact

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def test_mixer_is_monotonic_in_every_agent_value() -> None:
    torch.manual_seed(0)
    mixer = MonotonicMixer(n_agents=5, state_dim=7, embed=16)
    with torch.no_grad():  # make every raw hypernetwork output negative: abs must still hold
        for layer in (mixer.hyper_w1, mixer.hyper_w2):
            layer.weight.copy_(-layer.weight.abs())
            layer.bias.fill_(-1.0)
    q = torch.randn(64, 5, requires_grad=True)
    state = torch.rand(64, 7)
    (grad,) = torch.autograd.grad(mixer(q, state).sum(), q)
    assert torch.all(grad >= 0) and grad.abs().sum() > 0
    # Raising one agent's value never lowers the team value, whatever the state.
    bumped = q.detach().clone()
    bumped[:, 2] += 1.0
    assert torch.all(mixer(bumped, state) >= mixer(q.detach(), state))
    # Hence per-agent greedy actions maximise Q_tot over joint actions (2 agents, 3 actions).
    small = MonotonicMixer(n_agents=2, state_dim=3, embed=4)
    q_agents = torch.randn(2, 3)
    s = torch.rand(1, 3)
    joint = torch.cartesian_prod(torch.arange(3), torch.arange(3))
    q_tot = small(q_agents[[0, 1], joint].reshape(-1, 2), s.expand(9, -1))
    best = joint[q_tot.argmax()]
    assert best.tolist() == q_agents.argmax(1).tolist()


def test_episode_buffer_pads_and_marks_real_steps() -> None:
    env = TargetEnv(n_agents=2, steps=4)
    buffer = EpisodeBuffer(episodes=3, spec=env.spec)
    short = {
        "obs": np.ones((3, 2, env.spec.obs_dim), np.float32),
        "state": np.ones((3, env.spec.state_dim), np.float32),
        "mask": np.ones((3, 2, env.spec.n_actions), bool),
        "actions": np.ones((2, 2), np.int64),
        "reward": np.full(2, 0.5, np.float32),
    }
    for _ in range(4):  # one more than fits: the oldest is overwritten
        buffer.add(short)
    assert len(buffer) == 3
    batch = buffer.sample(8, np.random.default_rng(0))
    assert batch["filled"].shape == (3, 4)
    assert batch["filled"][:, :2].all() and not batch["filled"][:, 2:].any()
    assert torch.all(batch["reward"][:, 2:] == 0) and torch.all(batch["obs"][:, 3] == 0)


def test_gru_state_resets_at_episode_start() -> None:
    env = TargetEnv(n_agents=3, steps=5)
    ctl = QMIX(env.spec, QMIXConfig(), seed=0)
    first = env.reset(0)
    ctl.act(first, explore=False)
    h_fresh = ctl.hidden.clone()
    step = first
    for _ in range(3):
        step = env.step(ctl.act(step, explore=False))
    assert not torch.allclose(ctl.hidden, h_fresh)
    ctl.act(first, explore=False)
    torch.testing.assert_close(ctl.hidden, h_fresh)


def test_qmix_learns_the_fake_task() -> None:
    env = TargetEnv(n_agents=3, steps=10)
    cfg = QMIXConfig(hidden=32, lr=5e-3, gamma=0.5, reward_scale=1.0, batch_size=8)
    ctl = QMIX(env.spec, cfg, seed=0)
    assert_learns(env, ctl, 80, {"td_loss", "q_tot", "epsilon"}, floor=24)
    assert ctl.updates == 80 and len(ctl.buffer) == 80


def test_resume_from_a_checkpoint_is_exact() -> None:
    assert_resume_is_exact("qmix", {"batch_size": "2"})
