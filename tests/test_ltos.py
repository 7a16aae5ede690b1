"""LToS and fixed LToS: sharing weights, shaped rewards, DDPG through the neighbours' Q."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ltos_traffic.controllers.ltos import (
    DecomposedQNet,
    FixedLToS,
    LToS,
    received_from_slots,
    received_weights,
    reverse_slots,
    scatter_matrix,
    shaped_rewards,
    sharing_matrix,
)
from ltos_traffic.errors import UserError
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.learning.dgn import DGNNet
from ltos_traffic.types import neighbourhood

from fakes import RingEnv, make_learner, one_torch_thread, ring_adjacency

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def _dense(controller: LToS, weights: np.ndarray) -> np.ndarray:
    return sharing_matrix(torch.from_numpy(weights)[None], controller.scatter)[0].numpy()


def _randomise_phi(controller: LToS, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in controller.phi.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)


def _obs(env: RingEnv, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(env.spec.n_agents, env.spec.obs_dim)).astype(np.float32)


def test_weights_are_a_distribution_over_the_neighbourhood() -> None:
    env = RingEnv(n_agents=6, chord=True)  # degrees 2 and 3: padded slots exist
    ltos = make_learner("ltos", env)
    _randomise_phi(ltos, 1)
    adj = env.spec.adjacency
    for seed in range(5):
        w = ltos.sharing_weights(_obs(env, seed))
        dense = _dense(ltos, w)
        assert (w >= 0).all() and (dense >= 0).all()
        np.testing.assert_allclose(dense.sum(axis=1), 1.0, rtol=1e-5)
        outside = ~adj & ~np.eye(len(adj), dtype=bool)
        assert (dense[outside] == 0).all()
        _, mask = neighbourhood(adj)
        assert (w[~mask] == 0).all()
        # The weights do depend on the observations once phi has moved.
        assert not np.allclose(w, ltos.sharing_weights(_obs(env, seed + 100)))


@pytest.mark.parametrize("selfishness", [0.5, 0.8, 0.9])
def test_selfishness_initialiser_gives_the_configured_self_weight(selfishness: float) -> None:
    env = RingEnv(n_agents=6, chord=True)
    _, mask = neighbourhood(env.spec.adjacency)
    degree = mask.sum(axis=1) - 1
    for name in ("ltos", "fixed_ltos"):
        ctrl = make_learner(name, env, selfishness=selfishness)
        w = ctrl.sharing_weights(_obs(env, 3))
        np.testing.assert_allclose(w[:, 0], selfishness, rtol=1e-5)
        others = np.where(mask[:, 1:], (1 - selfishness) / degree[:, None], 0.0)
        np.testing.assert_allclose(w[:, 1:], others, rtol=1e-5, atol=1e-7)


def test_shaped_rewards_conserve_the_total_reward() -> None:
    adj = ring_adjacency(7, chord=True)
    index, mask = (torch.as_tensor(a) for a in neighbourhood(adj))
    scatter = scatter_matrix(index, mask, 7)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 7, index.shape[1], generator=gen).masked_fill(~mask, float("-inf"))
    matrix = sharing_matrix(torch.softmax(logits, -1), scatter)
    reward = torch.randn(4, 7, generator=gen)
    shaped = shaped_rewards(matrix, reward)
    torch.testing.assert_close(shaped.sum(dim=1), reward.sum(dim=1))
    # Agent i receives w_ji r_j from each neighbour j: check one entry by hand.
    i = 3
    expected = sum(float(matrix[0, j, i] * reward[0, j]) for j in range(7))
    assert float(shaped[0, i]) == pytest.approx(expected, abs=1e-5)
    # What i receives in slot k is what index[i, k] gives to i.
    received = received_weights(matrix, index, mask)
    for k in range(index.shape[1]):
        if mask[i, k]:
            assert received[0, i, k] == matrix[0, index[i, k], i]


def test_received_weights_from_slots_equal_the_dense_route_bit_for_bit() -> None:
    """The TD steps' shortcut reads w_ji straight from the per-slot weights."""
    adj = ring_adjacency(7, chord=True)
    one_way = adj.copy()
    one_way[0, 3] = True  # 0 lists 3, 3 does not list 0: 0 receives nothing from 3
    for adjacency in (adj, one_way):
        index, mask = (torch.as_tensor(a) for a in neighbourhood(adjacency))
        scatter = scatter_matrix(index, mask, 7)
        gen = torch.Generator().manual_seed(0)
        logits = torch.randn(5, 7, index.shape[1], generator=gen).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, -1)
        reverse, keep = reverse_slots(index, mask)
        dense_route = received_weights(sharing_matrix(weights, scatter), index, mask)
        assert torch.equal(received_from_slots(weights, reverse, keep), dense_route)
    slot = int((index[0] == 3).nonzero())
    assert keep[0, slot] == 0.0 and mask[0, slot]


def test_controller_trains_on_conserved_shaped_rewards() -> None:
    env = RingEnv()
    ltos = make_learner("ltos", env)
    _randomise_phi(ltos, 2)
    run_episode(env, ltos, seed=0, explore=True, learn=True)
    batch = ltos.buffer.sample(8, np.random.default_rng(0))
    reward, edges, next_edges = ltos._learning_inputs(batch)
    torch.testing.assert_close(reward.sum(dim=1), torch.from_numpy(batch.reward).sum(dim=1))
    assert edges is not None and next_edges is not None
    assert edges.shape == (8, env.spec.n_agents, ltos.nbr_index.shape[1], 1)


def test_ddpg_gradient_reaches_phi_and_spares_the_critic() -> None:
    env = RingEnv()
    ltos = make_learner("ltos", env, hl_lr=0.1)
    for ep in range(2):
        run_episode(env, ltos, seed=ep, explore=True, learn=True)
    phi_before = {k: v.clone() for k, v in ltos.phi.state_dict().items()}
    q_before = {k: v.clone() for k, v in ltos.q_net.state_dict().items()}
    batch = ltos.buffer.sample(8, np.random.default_rng(1))
    value = ltos._ddpg_step(batch)
    assert np.isfinite(value)
    # The gradient of the neighbours' values reached phi's output layer and its self bias.
    last = ltos.phi.pair[-1]
    assert last.weight.grad is not None and last.weight.grad.abs().sum() > 0
    assert ltos.phi.self_logit.grad is not None and ltos.phi.self_logit.grad != 0
    changed = [k for k, v in ltos.phi.state_dict().items() if not torch.equal(v, phi_before[k])]
    assert "self_logit" in changed and "pair.2.weight" in changed
    for k, v in ltos.q_net.state_dict().items():
        assert torch.equal(v, q_before[k]), f"DDPG step changed the critic's {k}"


@pytest.mark.parametrize("q_weights", ["edges", "input"])
def test_ddpg_ascends_the_summed_neighbour_value(q_weights: str) -> None:
    env = RingEnv()
    ltos = make_learner("ltos", env, hl_lr=0.5, hl_optimizer="sgd", q_weights=q_weights)
    for ep in range(3):
        run_episode(env, ltos, seed=ep, explore=True, learn=True)
    # A critic whose values clearly depend on the weights its agents receive.
    gen = torch.Generator().manual_seed(0)
    assert isinstance(ltos.q_net, DGNNet)
    with torch.no_grad():
        if q_weights == "edges":
            for relation in ltos.q_net.relations:
                assert relation.edge_value is not None
                relation.edge_value.weight.copy_(
                    torch.randn(relation.edge_value.weight.shape, generator=gen)
                )
        else:  # the received weights are the last K inputs of the encoder
            first = ltos.q_net.encoder[0]
            assert isinstance(first, torch.nn.Linear)
            k = ltos.nbr_index.shape[1]
            first.weight[:, -k:] = torch.randn((first.weight.shape[0], k), generator=gen) * 3
    batch = ltos.buffer.gather(np.arange(8))
    first_value = ltos._ddpg_step(batch)
    for _ in range(20):
        last = ltos._ddpg_step(batch)
    assert last > first_value


def test_received_weights_enter_the_q_input_as_released() -> None:
    env = RingEnv()
    ltos = make_learner("ltos", env)
    assert isinstance(ltos.q_net, DGNNet)
    k = ltos.nbr_index.shape[1]
    assert ltos.q_net.input_edges == k and ltos.q_net.edge_dim == 0
    obs = torch.from_numpy(_obs(env, 0))[None]
    edges = torch.rand((1, env.spec.n_agents, k, 1), requires_grad=True)
    ltos.q_net(obs, edges).sum().backward()
    assert edges.grad is not None and edges.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="edge values at its input"):
        ltos.q_net(obs, None)


def test_weights_learn_in_ltos_and_stay_fixed_in_fixed_ltos() -> None:
    env = RingEnv()
    obs = _obs(env, 0)
    for cls, name in ((LToS, "ltos"), (FixedLToS, "fixed_ltos")):
        ctrl = make_learner(name, env, hl_lr=0.5)
        assert isinstance(ctrl, cls)
        before = ctrl.sharing_weights(obs)
        stats: dict[str, float] = {}
        for ep in range(4):
            stats |= run_episode(env, ctrl, seed=ep, explore=True, learn=True).losses
        after = ctrl.sharing_weights(obs)
        if name == "ltos":
            assert "hl_value" in stats and ctrl.hl_update_count > 0
            assert np.abs(before - after).max() > 1e-4
        else:
            assert "hl_value" not in stats and ctrl.hl_update_count == 0
            np.testing.assert_array_equal(before, after)


def test_high_level_acts_every_action_interval() -> None:
    env = RingEnv(episode_steps=8)
    ltos = make_learner("ltos", env, hl_action_interval=3, hl_noise_sigma=5.0)
    step = env.reset(0)
    seen = []
    while not step.done:
        actions = ltos.act(step, explore=True)
        seen.append(ltos.weights.copy())
        step = env.step(actions)
    for t in range(1, 8):
        same = np.array_equal(seen[t], seen[t - 1])
        assert same == (t % 3 != 0), t


@pytest.mark.parametrize("decomposed", ["false", "true"])
def test_neighbour_order_does_not_matter(decomposed: str) -> None:
    env = RingEnv(n_agents=6, chord=True)
    ltos = make_learner("ltos", env, q_decomposed=decomposed)
    _randomise_phi(ltos, 4)
    perm = np.array([3, 0, 5, 1, 4, 2])  # new agent a is old agent perm[a]
    relabelled = RingEnv(n_agents=6, chord=True)
    adj = env.spec.adjacency[np.ix_(perm, perm)]
    object.__setattr__(relabelled.spec, "adjacency", adj)
    other = make_learner("ltos", relabelled, q_decomposed=decomposed)
    skip = ("index", "mask", "log_degree")
    for src, dst in ((ltos.phi, other.phi), (ltos.q_net, other.q_net)):
        state = {k: v for k, v in src.state_dict().items() if not k.endswith(skip)}
        dst.load_state_dict(state, strict=False)
    obs = _obs(env, 5)
    dense = _dense(ltos, ltos.sharing_weights(obs))
    dense_other = _dense(other, other.sharing_weights(obs[perm]))
    np.testing.assert_allclose(dense_other, dense[np.ix_(perm, perm)], atol=1e-4)
    edges = received_weights(torch.from_numpy(dense)[None], ltos.nbr_index, ltos.nbr_mask)
    edges_other = received_weights(
        torch.from_numpy(dense_other)[None], other.nbr_index, other.nbr_mask
    )
    with torch.no_grad():
        q = ltos.q_net(torch.from_numpy(obs)[None], edges[..., None])[0]
        q_other = other.q_net(torch.from_numpy(obs[perm])[None], edges_other[..., None])[0]
    torch.testing.assert_close(q_other, q[perm], rtol=1e-4, atol=1e-4)


def test_decomposed_q_is_linear_in_the_received_weights() -> None:
    env = RingEnv(n_agents=6, chord=True)  # padded slots exist
    assert isinstance(make_learner("ltos", env).q_net, DGNNet)  # default: today's network
    ltos = make_learner("ltos", env, q_decomposed="true")
    net = ltos.q_net
    assert isinstance(net, DecomposedQNet)
    _randomise_phi(ltos, 3)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)
    obs = torch.from_numpy(np.stack([_obs(env, s) for s in range(4)]))
    matrix = sharing_matrix(ltos.phi(obs).detach(), ltos.scatter)
    edges = received_weights(matrix, ltos.nbr_index, ltos.nbr_mask)[..., None]
    parts = net.components(obs).detach()  # (B, N, K, A)
    assert (parts[:, ~ltos.nbr_mask] == 0).all()
    q = net(obs, edges)
    torch.testing.assert_close(q, (edges * parts).sum(dim=2))
    # Envelope theorem: d max_a q / d w_ki is component k at the greedy action.
    edges = edges.clone().requires_grad_(True)
    net(obs, edges).max(dim=-1).values.sum().backward()
    assert edges.grad is not None
    best = net(obs, edges).argmax(dim=-1)
    expected = parts.gather(-1, best[:, :, None, None].expand(*parts.shape[:3], 1))
    torch.testing.assert_close(edges.grad, expected * ltos.nbr_mask[..., None].float())


def test_decomposed_td_fits_each_component_to_its_senders_raw_reward() -> None:
    env = RingEnv(n_agents=6, chord=True)
    # lr 3e-3: at the helper's 1e-2 Adam fits this one fixed batch and then spikes now and
    # then, so the step at which the test looks decided it (measured in both attention paths)
    ltos = make_learner("ltos", env, q_decomposed="true", gamma=0.0, lr=3e-3)
    _randomise_phi(ltos, 2)
    run_episode(env, ltos, seed=0, explore=True, learn=True)
    batch = ltos.buffer.gather(np.arange(len(ltos.buffer)))
    reward = torch.from_numpy(batch.reward)
    assert (reward != 0).any()
    sender = reward[:, ltos.nbr_index]  # (B, N, K): r_j for j in slot k
    actions = torch.from_numpy(batch.actions)[:, :, None, None].expand(*sender.shape, 1)
    real = ltos.nbr_mask.expand_as(sender)

    def error() -> float:
        with torch.no_grad():
            q = ltos.q_net.components(torch.from_numpy(batch.obs)).gather(-1, actions)
        return float((q.squeeze(-1) - sender)[real].abs().mean())

    before = error()
    for _ in range(300):
        ltos._td_step(batch)
    assert error() < 0.1 * before
    # The combined q at the stored weights then fits the shaped reward r~_i = sum_j w_ji r_j.
    matrix = sharing_matrix(torch.from_numpy(batch.extras["weights"]), ltos.scatter)
    edges = received_weights(matrix, ltos.nbr_index, ltos.nbr_mask)[..., None]
    with torch.no_grad():
        q = ltos.q_net(torch.from_numpy(batch.obs), edges).gather(-1, actions[:, :, 0])
    shaped = shaped_rewards(matrix, reward)
    assert float((q.squeeze(-1) - shaped).abs().mean()) < 0.1 * float(shaped.abs().mean())


def test_trust_region_holds_a_round_to_the_bound_and_0_turns_it_off() -> None:
    """``hl_max_shift`` pulls a big round back to the bound; 0 leaves the round untouched."""

    def one_round(**overrides: object) -> tuple[LToS, dict[str, float], np.ndarray]:
        env = RingEnv()
        ctrl = make_learner("ltos", env, hl_lr=0.5, hl_optimizer="sgd", **overrides)
        for ep in range(3):
            run_episode(env, ctrl, seed=ep, explore=True, learn=True)
        with torch.no_grad():  # a critic that clearly depends on the received weights
            first = ctrl.q_net.encoder[0]
            assert isinstance(first, torch.nn.Linear)
            k = ctrl.nbr_index.shape[1]
            gen = torch.Generator().manual_seed(0)
            first.weight[:, -k:] = torch.randn((first.weight.shape[0], k), generator=gen) * 3
        torch.manual_seed(1)
        np.random.seed(1)
        ctrl.rng = np.random.default_rng(1)
        stats = ctrl._update_sharing()
        return ctrl, stats, ctrl.sharing_weights(_obs(env, 0))

    _, off, off_weights = one_round(hl_max_shift=0.0)
    assert "hl_shift" not in off and "hl_shift_scale" not in off  # no trust-region work
    _, free, free_weights = one_round(hl_max_shift=1.0)  # measures, never binds
    assert free["hl_shift_scale"] == 1.0 and free["hl_shift"] > 0.05
    np.testing.assert_array_equal(free_weights, off_weights)
    bound = free["hl_shift"] / 4
    _, stats, held_weights = one_round(hl_max_shift=bound)
    assert 0.0 < stats["hl_shift_scale"] < 1.0
    assert stats["hl_shift"] <= bound + 1e-6 and stats["hl_shift"] > 0.8 * bound
    assert np.abs(held_weights - free_weights).max() > 1e-3
    with pytest.raises(UserError, match="hl_max_shift"):
        make_learner("ltos", RingEnv(), hl_max_shift=1.5)
