"""The LToS high-level gradient diagnostic: the two critic terms and the self-logit gradient."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from ltos_traffic.controllers.ltos import (
    DecomposedQNet,
    LToS,
    received_weights,
    sharing_matrix,
)
from ltos_traffic.controllers.sharing_signal import SharingSignal, sharing_signal
from ltos_traffic.learning.nn import masked_max

from fakes import RingEnv, make_learner, one_torch_thread

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def _perturbed(seed: int, **overrides: Any) -> tuple[RingEnv, LToS]:
    env = RingEnv(n_agents=6, chord=True)  # degrees 2 and 3: padded slots exist
    ltos = make_learner("ltos", env, **overrides)
    assert isinstance(ltos, LToS)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in [*ltos.phi.parameters(), *ltos.q_net.parameters()]:
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)
    return env, ltos


def _samples(env: RingEnv, count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(count, env.spec.n_agents, env.spec.obs_dim)).astype(np.float32)
    mask = np.ones((count, env.spec.n_agents, env.spec.n_actions), bool)
    return obs, mask


def test_decomposed_critic_terms_are_the_components_of_the_sender() -> None:
    """With a q linear in the weights, j's term is j's component for i, i's its own."""
    env, ltos = _perturbed(0, q_decomposed="true")
    net = ltos.q_net
    assert isinstance(net, DecomposedQNet)
    obs, mask = _samples(env, 5)
    signal = sharing_signal(ltos, obs, mask)
    obs_t = torch.from_numpy(obs)
    with torch.no_grad():
        matrix = sharing_matrix(ltos.phi(obs_t), ltos.scatter)
        edges = received_weights(matrix, ltos.nbr_index, ltos.nbr_mask)[..., None]
        parts = net.components(obs_t)  # (S, N, K, A)
        best = net(obs_t, edges).argmax(dim=-1)  # (S, N)
    index = ltos.nbr_index.numpy()
    for e, (i, j) in enumerate(zip(signal.giver, signal.receiver, strict=True)):
        slot = int(np.flatnonzero(index[j] == i)[0])  # where i sits in j's neighbourhood
        for s in range(5):
            want_j = float(parts[s, j, slot, best[s, j]])
            want_i = float(parts[s, i, 0, best[s, i]])
            assert signal.to_receiver[s, e] == pytest.approx(want_j, abs=1e-5)
            assert signal.to_keeper[s, e] == pytest.approx(want_i, abs=1e-5)
    np.testing.assert_allclose(signal.shift, signal.to_receiver - signal.to_keeper)


def test_self_logit_gradient_is_the_ddpg_objectives_per_sample() -> None:
    env, ltos = _perturbed(1)
    obs, mask = _samples(env, 6)
    signal = sharing_signal(ltos, obs, mask)
    obs_t, mask_t = torch.from_numpy(obs), torch.from_numpy(mask)
    ltos.phi.zero_grad()
    matrix = sharing_matrix(ltos.phi(obs_t), ltos.scatter)
    edges = received_weights(matrix, ltos.nbr_index, ltos.nbr_mask)[..., None]
    objective = masked_max(ltos.q_net(obs_t, edges), mask_t).sum(dim=1).mean()
    (grad,) = torch.autograd.grad(objective, ltos.phi.self_logit)
    assert signal.self_logit_grad.mean() == pytest.approx(float(grad), rel=1e-4, abs=1e-6)
    assert np.abs(signal.self_logit_grad).max() > 0
    assert all(p.grad is None or not p.grad.abs().sum() for p in ltos.q_net.parameters())


def test_summary_separates_a_consistent_gradient_from_noise() -> None:
    rng = np.random.default_rng(0)
    shape = (400, 3)
    base = rng.normal(size=shape)

    def signal(grads: np.ndarray) -> SharingSignal:
        edges = np.arange(3)
        return SharingSignal(edges, edges, base + 1.0, base, grads)

    clear = signal(0.5 + 0.1 * rng.normal(size=400)).summary(batch_size=20)
    noise = signal(rng.normal(size=400)).summary(batch_size=20)
    assert clear["minibatch_sign_agreement"] == 1.0
    assert noise["minibatch_sign_agreement"] < 0.9
    assert clear["shift_mean"] == pytest.approx(1.0)
    assert clear["corr_receiver_keeper"] == pytest.approx(1.0)
