"""Evaluation of the stochastic-policy baselines samples the policy (issue 14).

NeurComm/ConseNet's authors (cts198859/deeprl_network, ``Trainer.perform``) and
LIO's (011235813/lio, ``alg/evaluate.py``) evaluate by sampling their policies;
the argmax of a near-uniform policy held one phase per junction and jammed the
grid (2,251 s on grid6x6).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines._a2c import evaluation_actions
from ltos_traffic.controllers.base import make_controller

from fakes import one_torch_thread
from fakes_baselines import TargetEnv

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


def _evaluation(ctl: object, env: TargetEnv) -> np.ndarray:
    step = env.reset(123)
    actions = []
    while not step.done:
        chosen = ctl.act(step, explore=False)  # type: ignore[attr-defined]
        actions.append(chosen)
        step = env.step(chosen)
    return np.stack(actions)


@pytest.mark.parametrize("name", ["neurcomm", "consenet", "lio"])
def test_evaluation_samples_the_policy_reproducibly(name: str) -> None:
    env = TargetEnv(n_agents=4, n_actions=3, steps=30)
    ctl = make_controller(name, env.spec, seed=0)
    assert ctl.config.eval_sample  # the authors' rule is the default
    training_stream = ctl.gen.get_state().clone()
    first = _evaluation(ctl, env)
    np.testing.assert_array_equal(first, _evaluation(ctl, env))  # same seed, same episode
    assert torch.equal(ctl.gen.get_state(), training_stream)  # training draws untouched
    # A fresh policy is near-uniform: sampled, every agent keeps switching phase.
    assert all(len(np.unique(first[:, i])) == 3 for i in range(4))


def test_evaluation_actions_sample_legal_actions_or_take_the_argmax() -> None:
    logits = torch.tensor([[0.0, 0.1, -1e9], [2.0, 0.0, 0.0]])
    gen = torch.Generator().manual_seed(0)
    np.testing.assert_array_equal(evaluation_actions(logits, sample=False, generator=gen), [1, 0])
    drawn = np.stack([evaluation_actions(logits, sample=True, generator=gen) for _ in range(200)])
    assert set(drawn[:, 0]) == {0, 1} and set(drawn[:, 1]) == {0, 1, 2}
