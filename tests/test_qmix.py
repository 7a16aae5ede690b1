"""QMIX: the mixer is monotonic in every agent's value; episode replay; GRU resets; learning."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from baselines.qmix import QMIX, EpisodeBuffer, MonotonicMixer, QMIXConfig
from ltos_traffic.cli import cli
from ltos_traffic.experiments.checkpoint import load_checkpoint
from ltos_traffic.experiments.experiment import make_run
from ltos_traffic.learning.exploration import RepeatLimit
from ltos_traffic.scenario import load_scenario
from ltos_traffic.types import TimeStep

from fakes import one_torch_thread
from fakes_baselines import TargetEnv, assert_learns, assert_resume_is_exact, train

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
    cfg = QMIXConfig(hidden=32, lr=5e-3, gamma=0.5, reward_scale=1.0, batch_size=8,
                     updates_per_episode=2, train_steps=5, burn_in_steps=2)  # fmt: skip
    ctl = QMIX(env.spec, cfg, seed=0)
    assert_learns(env, ctl, 40, {"td_loss", "q_tot", "epsilon"}, floor=24)
    assert ctl.updates == 2 * 40 and len(ctl.buffer) == 40


def test_every_episode_makes_updates_per_episode_gradient_steps() -> None:
    """Issue 14: one step per 360-step episode left QMIX's Q at its initial values."""
    env = TargetEnv(n_agents=2, steps=6)
    ctl = QMIX(env.spec, QMIXConfig(updates_per_episode=3, batch_size=2), seed=0)
    before = [p.detach().clone() for p in ctl.agent.parameters()]
    train(env, ctl, 2)
    assert ctl.updates == 6 and ctl.episodes == 2
    assert any(not torch.equal(a, b) for a, b in zip(before, ctl.agent.parameters()))


def _stored(buffer: EpisodeBuffer, steps: int, n: int, spec: object) -> None:
    """Store one episode whose step ``t`` has obs, action and reward ``t``."""
    d, a, s = spec.obs_dim, spec.n_actions, spec.state_dim  # type: ignore[attr-defined]
    t = np.arange(steps + 1, dtype=np.float32)
    buffer.add({
        "obs": np.broadcast_to(t[:, None, None], (steps + 1, n, d)).copy(),
        "state": np.broadcast_to(t[:, None], (steps + 1, s)).copy(),
        "mask": np.ones((steps + 1, n, a), bool),
        "actions": np.broadcast_to((np.arange(steps) % a)[:, None], (steps, n)).copy(),
        "reward": t[:steps].copy(),
    })  # fmt: skip


def test_windows_are_consecutive_steps_with_burn_in_and_the_previous_action() -> None:
    env = TargetEnv(n_agents=2, n_actions=3, steps=12)
    buffer = EpisodeBuffer(episodes=2, spec=env.spec)
    _stored(buffer, 12, 2, env.spec)
    batch = buffer.sample_windows(64, train_steps=4, burn_in=3, rng=np.random.default_rng(0))
    obs_t = batch["obs"][:, :, 0, 0]  # (B, 8): the step index of each window position
    assert batch["obs"].shape[1] == 3 + 4 + 1 and batch["actions"].shape[1] == 7
    assert torch.all(obs_t[:, 1:] - obs_t[:, :-1] == 1)  # consecutive, next obs included
    torch.testing.assert_close(batch["reward"], obs_t[:, :-1])
    starts = obs_t[:, 0].long()
    prev = batch["prev_action"][:, 0]
    assert torch.all(prev[starts == 0] == -1)
    assert torch.all(prev[starts > 0] == (starts[starts > 0] - 1) % 3)
    # Exactly the 4 trained steps carry loss, after up to 3 burn-in steps.
    assert torch.all(batch["train"].sum(1) == 4)
    burn_in = batch["train"].float().argmax(1)  # window position of the first trained step
    assert torch.all(burn_in == torch.clamp(starts + burn_in, max=3))
    assert set(starts.tolist()) > {0}  # windows start inside episodes too


def test_the_time_limit_is_not_terminal() -> None:
    """The last real step bootstraps from the final state (PyMARL: episode_limit is not done)."""
    env = TargetEnv(n_agents=2, steps=3)
    ctl = QMIX(env.spec, QMIXConfig(gamma=0.5), seed=0)
    _stored(ctl.buffer, 3, 2, env.spec)
    with torch.no_grad():
        ctl.target_mixer.hyper_b2[2].bias.fill_(10.0)  # Q_tot' well away from 0
    batch = ctl.buffer.sample_windows(4, train_steps=3, burn_in=0, rng=np.random.default_rng(0))
    _, y, train_mask = ctl.td_terms(batch)
    assert torch.all(train_mask[:, 2])  # the episode's last step carries loss ...
    assert torch.all((y - batch["reward"])[:, 2].abs() > 1.0)  # ... and bootstraps


def test_resume_from_a_checkpoint_is_exact() -> None:
    assert_resume_is_exact("qmix", {"batch_size": "2", "updates_per_episode": "2"})


def test_vdn_mixer_sums_the_agents_and_trains_without_state_terms() -> None:
    env = TargetEnv(n_agents=3, steps=10)
    ctl = QMIX(env.spec, QMIXConfig(mixer="vdn"), seed=0)
    q = torch.randn(4, 3)
    torch.testing.assert_close(ctl.mixer(q, torch.rand(4, env.spec.state_dim)), q.sum(-1))
    assert not list(ctl.mixer.parameters())  # nothing but the agents' network learns
    sizes = {"batch_size": 8, "updates_per_episode": 2, "train_steps": 5, "burn_in_steps": 2}
    cfg = QMIXConfig(hidden=32, lr=5e-3, gamma=0.5, reward_scale=1.0, mixer="vdn", **sizes)
    assert_learns(env, QMIX(env.spec, cfg, seed=0), 40, {"td_loss", "q_tot", "epsilon"}, floor=24)
    with pytest.raises(ValueError, match="mixer must be one of"):
        QMIXConfig(mixer="sum")


def test_hard_target_updates_copy_every_interval_and_hold_between() -> None:
    """PyMARL's target rule: the targets stay put between copies, then equal the online nets."""
    env = TargetEnv(n_agents=2, steps=6)
    cfg = QMIXConfig(updates_per_episode=1, batch_size=2, target_update_interval=3)
    ctl = QMIX(env.spec, cfg, seed=0)
    start = [p.detach().clone() for p in ctl.target_agent.parameters()]
    train(env, ctl, 2)  # two updates: no copy yet, whatever tau says
    assert all(torch.equal(a, b) for a, b in zip(start, ctl.target_agent.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(start, ctl.agent.parameters()))
    train(env, ctl, 1)  # the third update copies the online networks
    assert ctl.updates == 3
    for target, online in ((ctl.target_agent, ctl.agent), (ctl.target_mixer, ctl.mixer)):
        assert all(torch.equal(a, b) for a, b in zip(target.parameters(), online.parameters()))
    with pytest.raises(ValueError, match="target_update_interval must be 0"):
        QMIXConfig(target_update_interval=-1)


def _longest_run(actions: np.ndarray) -> int:
    """Longest run of one action in a row, over the agents of ``(T, N)`` actions."""
    best = 0
    for column in np.asarray(actions).T:
        cuts = np.flatnonzero(np.diff(column)) + 1
        best = max(best, int(np.diff(np.concatenate([[0], cuts, [len(column)]])).max()))
    return best


class _AllLegal(TargetEnv):
    """TargetEnv whose every action is always legal (so the limit alone masks)."""

    def _timestep(self, reward: np.ndarray) -> TimeStep:
        step = super()._timestep(reward)
        self.mask[:] = True
        return dataclasses.replace(step, action_mask=self.mask.copy())


def test_repeat_limit_masks_an_action_chosen_max_repeat_times_in_a_row() -> None:
    limit = RepeatLimit(3, max_repeat=2)
    mask = np.ones((3, 3), bool)
    mask[2] = [False, True, False]  # agent 2 has one legal action: it keeps it
    np.testing.assert_array_equal(limit.legal(mask), mask)  # nothing chosen yet
    limit.record(np.array([0, 1, 1]))
    np.testing.assert_array_equal(limit.legal(mask), mask)  # once in a row: still allowed
    limit.record(np.array([0, 2, 1]))
    legal = limit.legal(mask)
    assert legal[0].tolist() == [False, True, True]  # agent 0 chose 0 twice in a row
    assert legal[1].tolist() == [True, True, True]  # agent 1 changed
    assert legal[2].tolist() == [False, True, False]  # its only action stays legal
    assert mask.all(axis=1)[:2].all()  # the caller's mask is not touched
    limit.record(np.array([1, 2, 1]))
    assert limit.legal(mask)[0].all() and not limit.legal(mask)[1, 2]
    limit.reset()
    np.testing.assert_array_equal(limit.legal(mask), mask)
    unlimited = RepeatLimit(3, max_repeat=0)
    for _ in range(5):
        unlimited.record(np.array([0, 1, 1]))
    np.testing.assert_array_equal(unlimited.legal(mask), mask)


def test_max_repeat_bounds_every_run_in_acting_and_in_the_stored_masks() -> None:
    """The limit is part of the policy: in exploring and greedy acting, and in the replayed
    legal sets the double-Q target maximises over."""
    env = _AllLegal(n_agents=3, n_actions=3, steps=12)
    cfg = QMIXConfig(batch_size=2, updates_per_episode=1, max_repeat=2, eps_start=0.0, eps_end=0.0)
    ctl = QMIX(env.spec, cfg, seed=0)
    # An untrained greedy policy repeats itself: bias the agents' network towards action 0.
    with torch.no_grad():
        ctl.agent.fc_out.bias.copy_(torch.tensor([5.0, 0.0, 0.0]))
    train(env, ctl, 3)
    arrays = ctl.buffer.arrays
    for episode in range(len(ctl.buffer)):
        actions, mask = arrays["actions"][episode], arrays["mask"][episode]
        assert _longest_run(actions) <= 2
        for t in range(2, actions.shape[0] + 1):  # chosen at t - 2 and t - 1: masked at t
            twice = actions[t - 2] == actions[t - 1]
            agents = np.flatnonzero(twice)
            assert not mask[t, agents, actions[t - 1, agents]].any()
    step, chosen = env.reset(7), []
    while not step.done:  # greedy evaluation keeps the limit too
        chosen.append(ctl.act(step, explore=False))
        step = env.step(chosen[-1])
    assert _longest_run(np.stack(chosen)) <= 2
    free = QMIX(env.spec, QMIXConfig(eps_start=0.0, eps_end=0.0), seed=0)
    with torch.no_grad():
        free.agent.fc_out.bias.copy_(torch.tensor([5.0, 0.0, 0.0]))
    step, chosen = env.reset(7), []
    while not step.done:  # without the limit the same bias holds action 0 where legal
        chosen.append(free.act(step, explore=False))
        step = env.step(chosen[-1])
    assert _longest_run(np.stack(chosen)) > 2
    with pytest.raises(ValueError, match="max_repeat must be 0"):
        QMIXConfig(max_repeat=-1)


def test_max_repeat_caps_the_green_of_every_light_on_sumo(tmp_path: Path) -> None:
    """grid2x2 on SUMO, 2 episodes with ``--set max_repeat=2``: no light holds a phase for
    more than 2 decisions in the stored training episodes or in the greedy evaluation."""
    args = ["run", "--net", "grid2x2", "--controller", "qmix", "--episodes", "2", "--seed", "0",
            "--set", "max_repeat=2", "--set", "eps_start=0.0", "--set", "eps_end=0.0",
            "--out", str(tmp_path)]  # fmt: skip
    assert CliRunner().invoke(cli, args).exit_code == 0
    run = next(tmp_path.glob("*/qmix/seed0"))
    env, ctl = make_run(load_scenario("grid2x2"), "qmix", seed=0, overrides=["max_repeat=2"])
    try:
        load_checkpoint(run / "checkpoint.pt", ctl)
        arrays = ctl.buffer.arrays
        assert len(ctl.buffer) == 2
        for episode in range(2):
            assert _longest_run(arrays["actions"][episode][arrays["filled"][episode]]) <= 2
        step, chosen = env.reset(5), []
        while not step.done:
            chosen.append(ctl.act(step, explore=False))
            step = env.step(chosen[-1])
    finally:
        env.close()
    assert _longest_run(np.stack(chosen)) <= 2


def test_default_targets_are_pymarls_hard_copies_every_200_updates() -> None:
    """Issue 14: soft tau 0.1 per update let the targets follow the online networks within an
    episode, and the team value diverged on grid6x6 (Q_tot above zero with negative rewards).
    The default is PyMARL's rule: the targets hold still for 200 updates, then copy."""
    assert QMIXConfig().target_update_interval == 200
    env = TargetEnv(n_agents=2, steps=6)
    ctl = QMIX(env.spec, QMIXConfig(batch_size=2, updates_per_episode=25), seed=0)
    start = [p.detach().clone() for p in ctl.target_mixer.parameters()]
    train(env, ctl, 7)  # 175 updates: the targets have not moved
    assert all(torch.equal(a, b) for a, b in zip(start, ctl.target_mixer.parameters()))
    train(env, ctl, 1)  # the 200th update copies the online networks
    assert ctl.updates == 200
    for target, online in ((ctl.target_agent, ctl.agent), (ctl.target_mixer, ctl.mixer)):
        assert all(torch.equal(a, b) for a, b in zip(target.parameters(), online.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(start, ctl.target_mixer.parameters()))
