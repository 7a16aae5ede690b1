"""The learners' networks run on a GPU when there is one: every tensor they make inside follows
the model's device, and a forward and a high-level gradient give the CPU's numbers.

Skipped without CUDA (CI and most machines); run on a GPU machine with
``pytest tests/test_models_on_gpu.py``. All five passed on an NVIDIA H200 with torch
2.11.0+cu130 on 2026-12-04.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ltos_traffic.controllers.ltos import (
    LToS,
    received_weights,
    shaped_rewards,
    sharing_matrix,
)

from fakes import RingEnv, make_learner

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")


def _learner(**overrides: object) -> LToS:
    ltos = make_learner("ltos", RingEnv(n_agents=6, chord=True), **overrides)
    assert isinstance(ltos, LToS)
    with torch.no_grad():  # a pair head that is not zero, so the weights differ by agent
        gen = torch.Generator().manual_seed(0)
        for p in ltos.phi.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)
    return ltos


def _obs(ltos: LToS, batch: int = 5) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.rand((batch, ltos.spec.n_agents, ltos.spec.obs_dim), generator=gen)


@pytest.mark.parametrize("q_weights", ["input", "edges", "both"])
def test_sharing_policy_and_critic_give_the_cpu_numbers_on_cuda(q_weights: str) -> None:
    ltos = _learner(q_weights=q_weights)
    obs = _obs(ltos)
    phi_gpu, q_gpu = copy.deepcopy(ltos.phi).to(CUDA), copy.deepcopy(ltos.q_net).to(CUDA)
    scatter = ltos.scatter
    with torch.no_grad():
        w = ltos.phi(obs)
        w_in = received_weights(sharing_matrix(w, scatter), ltos.nbr_index, ltos.nbr_mask)
        w_in = w_in[..., None]
        q = ltos.q_net(obs, w_in)
        w_gpu = phi_gpu(obs.to(CUDA))
        matrix_gpu = sharing_matrix(w_gpu, scatter.to(CUDA))
        index, mask = ltos.nbr_index.to(CUDA), ltos.nbr_mask.to(CUDA)
        w_in_gpu = received_weights(matrix_gpu, index, mask)[..., None]  # (B, N, K, 1) edges
        q_out_gpu = q_gpu(obs.to(CUDA), w_in_gpu)
    assert w_gpu.device.type == "cuda" and q_out_gpu.device.type == "cuda"
    torch.testing.assert_close(w_gpu.cpu(), w, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(w_in_gpu.cpu(), w_in, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(q_out_gpu.cpu(), q, atol=1e-4, rtol=1e-4)


def test_decomposed_critic_runs_on_cuda() -> None:
    ltos = _learner(q_decomposed=True)
    obs = _obs(ltos)
    q_gpu = copy.deepcopy(ltos.q_net).to(CUDA)
    with torch.no_grad():
        matrix = sharing_matrix(ltos.phi(obs), ltos.scatter)
        w_in = received_weights(matrix, ltos.nbr_index, ltos.nbr_mask)[..., None]
        expected = ltos.q_net(obs, w_in)
        got = q_gpu(obs.to(CUDA), w_in.to(CUDA))
    torch.testing.assert_close(got.cpu(), expected, atol=1e-4, rtol=1e-4)


def test_the_high_level_gradient_through_the_critic_matches_on_cuda() -> None:
    """d sum_j v_j / d theta of phi, the DDPG ascent direction, on both devices."""
    ltos = _learner()
    obs = _obs(ltos)
    reward = torch.from_numpy(np.linspace(-1.0, 0.0, 5 * ltos.spec.n_agents, dtype=np.float32))
    reward = reward.reshape(5, ltos.spec.n_agents)

    def gradient(device: torch.device) -> list[torch.Tensor]:
        phi = copy.deepcopy(ltos.phi).to(device)
        q_net = copy.deepcopy(ltos.q_net).to(device).requires_grad_(False)
        index, mask = ltos.nbr_index.to(device), ltos.nbr_mask.to(device)
        matrix = sharing_matrix(phi(obs.to(device)), ltos.scatter.to(device))
        edges = received_weights(matrix, index, mask)[..., None]
        value = q_net(obs.to(device), edges).max(dim=-1).values
        objective = value.sum() + shaped_rewards(matrix, reward.to(device)).sum()
        objective.backward()
        return [p.grad.detach().cpu() for p in phi.parameters() if p.grad is not None]

    on_cpu, on_gpu = gradient(torch.device("cpu")), gradient(CUDA)
    assert len(on_cpu) == len(on_gpu) > 0
    for a, b in zip(on_cpu, on_gpu, strict=True):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-3)
