"""DQN, DGN (and the LToS variants where the test is shared): acting, learning, state."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch

from baselines.dgn import DGN
from baselines.dqn import DQN
from ltos_traffic.errors import UserError
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.learning.dgn import DGNNet
from ltos_traffic.learning.exploration import EpsilonSchedule, OUNoise, epsilon_greedy
from ltos_traffic.learning.nn import Polyak
from ltos_traffic.types import Transition, neighbourhood

from fakes import RingEnv, make_learner, one_torch_thread

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)

LEARNERS = ("dqn", "dgn", "ltos", "fixed_ltos")


def _round_trip(state: dict[str, Any]) -> dict[str, Any]:
    data = io.BytesIO()
    torch.save(state, data)
    data.seek(0)
    loaded: dict[str, Any] = torch.load(data, weights_only=True)
    return loaded


def test_registry_classes() -> None:
    env = RingEnv()
    assert isinstance(make_learner("dqn", env), DQN)
    assert isinstance(make_learner("dgn", env), DGN)


@pytest.mark.parametrize("name", LEARNERS)
def test_actions_are_legal_int64_and_stats_finite(name: str) -> None:
    env = RingEnv()
    ctrl = make_learner(name, env, eps_start=1.0, eps_decay=1.0, eps_end=1.0)
    step = env.reset(0)
    picked = np.zeros((env.spec.n_agents, env.spec.n_actions), bool)
    while not step.done:
        for explore in [True] * 10 + [False]:
            actions = ctrl.act(step, explore=explore)
            assert actions.dtype == np.int64 and actions.shape == (env.spec.n_agents,)
            assert step.action_mask[np.arange(env.spec.n_agents), actions].all()
            picked[np.arange(env.spec.n_agents), actions] = True
        nxt = env.step(actions)
        stats = ctrl.observe(Transition(step, actions, nxt))
        assert all(np.isfinite(v) for v in stats.values())
        step = nxt
    assert not picked[0, 2]  # agent 0's masked action was never chosen
    assert picked[1:].all()  # epsilon 1 reaches every legal action of the others


@pytest.mark.parametrize("name", ["dqn", "dgn", "ltos", "fixed_ltos"])
def test_learns_the_ring_task(name: str) -> None:
    env = RingEnv()
    ctrl = make_learner(name, env)
    first = run_episode(env, ctrl, seed=0, explore=False, learn=False).metrics.episode_return
    for ep in range(40):
        run_episode(env, ctrl, seed=ep, explore=True, learn=True)
    best = env.spec.n_agents * env.spec.episode_steps
    final = run_episode(env, ctrl, seed=999, explore=False, learn=False).metrics.episode_return
    assert final >= 0.9 * best > first


@pytest.mark.parametrize("name", LEARNERS)
def test_checkpoint_round_trip_keeps_greedy_actions_and_future(name: str) -> None:
    env = RingEnv()
    ctrl = make_learner(name, env, seed=3)
    for ep in range(3):
        run_episode(env, ctrl, seed=ep, explore=True, learn=True)
    state = _round_trip(ctrl.state_dict())
    copy = make_learner(name, env, seed=42)  # another seed: everything must come from state
    copy.load_state_dict(state)
    step = env.reset(7)
    while not step.done:
        greedy = ctrl.act(step, explore=False)
        np.testing.assert_array_equal(copy.act(step, explore=False), greedy)
        step = env.step(greedy)
    # Training on from the copy gives the same result as from the original.
    a = run_episode(env, ctrl, seed=5, explore=True, learn=True)
    b = run_episode(env, copy, seed=5, explore=True, learn=True)
    assert a.metrics.episode_return == b.metrics.episode_return
    assert a.losses == b.losses
    for (ka, va), (kb, vb) in zip(ctrl.q_net.state_dict().items(), copy.q_net.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_same_seed_same_run_whatever_the_global_rng() -> None:
    env = RingEnv()
    results = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        np.random.seed(global_seed)
        ctrl = make_learner("dgn", env, seed=11)
        results.append(
            [run_episode(env, ctrl, seed=e, explore=True, learn=True).losses for e in range(3)]
        )
    assert results[0] == results[1]


def test_dgn_is_equivariant_to_agent_relabelling() -> None:
    env = RingEnv(n_agents=6, chord=True)
    dgn = make_learner("dgn", env)
    perm = np.array([2, 5, 0, 4, 1, 3])
    adj = env.spec.adjacency[np.ix_(perm, perm)]
    index, mask = (torch.as_tensor(a) for a in neighbourhood(adj))
    other = DGNNet(env.spec.obs_dim, env.spec.n_actions, dgn.config, index, mask)
    state = {k: v for k, v in dgn.q_net.state_dict().items() if k not in ("index", "mask")}
    other.load_state_dict(state, strict=False)
    obs = torch.randn(2, 6, env.spec.obs_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(other(obs[:, perm]), dgn.q_net(obs)[:, perm])


def test_dgn_uses_neighbours_and_dqn_does_not() -> None:
    env = RingEnv(n_agents=6, chord=False)
    obs = torch.zeros(1, 6, env.spec.obs_dim)
    changed = obs.clone()
    changed[0, 3] = 1.0  # agent 3 is a neighbour of 2 and 4, two hops from 1 and 5, far from 0
    for name, reach in (("dqn", {3}), ("dgn", {1, 2, 3, 4, 5})):
        net = make_learner(name, env).q_net
        with torch.no_grad():
            diff = (net(changed) - net(obs)).abs().sum(-1)[0]
        assert {int(i) for i in torch.nonzero(diff > 1e-9)} == reach, name


def test_config_errors_are_user_errors() -> None:
    env = RingEnv()
    with pytest.raises(UserError, match="optimizer"):
        make_learner("dgn", env, optimizer="lbfgs")
    with pytest.raises(UserError, match="unknown hyperparameter"):
        make_learner("dqn", env, heads=2)
    with pytest.raises(UserError, match="selfishness"):
        make_learner("ltos", env, selfishness=1.5)


def test_exploration_helpers() -> None:
    sched = EpsilonSchedule(0.4, 0.9, 0.05)
    assert sched.value(0) == 0.4 and sched.value(1) == pytest.approx(0.36)
    assert sched.value(100) == 0.05
    q = np.array([[0.0, 5.0, 1.0], [3.0, 2.0, 9.0]])
    mask = np.array([[True, False, True], [True, True, True]])
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    np.testing.assert_array_equal(epsilon_greedy(q, mask, 0.0, rng), [2, 2])
    assert rng.bit_generator.state == state  # greedy draws nothing
    draws = np.stack([epsilon_greedy(q, mask, 1.0, rng) for _ in range(300)])
    assert set(draws[:, 0].tolist()) == {0, 2} and set(draws[:, 1].tolist()) == {0, 1, 2}
    a, b = OUNoise((2, 3), 0.3), OUNoise((2, 3), 0.3)
    xs = [a.sample(np.random.default_rng(1)) for _ in range(1)]
    ys = [b.sample(np.random.default_rng(1)) for _ in range(1)]
    np.testing.assert_array_equal(xs[0], ys[0])
    a.reset()
    assert (a.x == 0).all()


def test_polyak_pair_follows_its_source_after_a_load() -> None:
    """The parameter lists taken once stay the networks' own across ``load_state_dict``."""
    source, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    polyak = Polyak(target, source)
    fresh = torch.nn.Linear(3, 2)
    source.load_state_dict(fresh.state_dict())
    before = target.weight.detach().clone()
    polyak(0.25)
    expected = 0.75 * before + 0.25 * fresh.weight.detach()
    assert torch.allclose(target.weight, expected)
    polyak(1.0)
    assert torch.equal(target.weight, source.weight)
    with pytest.raises(ValueError, match="differ"):
        Polyak(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2))
