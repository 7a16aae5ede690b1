"""What LToS's high level learns from: the critic's gradient with respect to each sharing weight.

LToS moves agent i's sharing weights ``w_ij`` along ``dv_j/dw_ij``, the
change of neighbour j's value when j receives more of i's reward (Algorithm 1,
lines 18-21). The weights sit on a simplex, so what moves them is the *shift*
gradient: handing a little of i's reward to j instead of keeping it changes
the agents' summed value by

    shift_ij = dv_j/dw_ij - dv_i/dw_ii.

Both terms are critics' estimates of the same quantity to first order: the
discounted future of i's reward, once seen by j's critic and once by i's
own. Shaped rewards sum to the raw total whatever the weights, so if both
critics were exact the two would cancel except for how the low-level policies
respond to the weights. That remainder is the signal LToS needs; each term is
a full return. This module measures the two terms and their difference on the
replay samples a high-level round draws, so a user can see whether the
gradient the high level follows is signal or the critics' disagreement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ltos_traffic.controllers.ltos import LToS, received_weights, sharing_matrix
from ltos_traffic.learning.nn import masked_max


@dataclass(frozen=True)
class SharingSignal:
    """Critic gradients per sample and directed edge ``i -> j`` (``j`` a neighbour of ``i``).

    Attributes:
        giver: ``(E,)`` agent i of each edge.
        receiver: ``(E,)`` agent j of each edge.
        to_receiver: ``(S, E)`` ``dv_j/dw_ij``, j's critic on receiving i's reward.
        to_keeper: ``(S, E)`` ``dv_i/dw_ii``, i's own critic on keeping it.
        self_logit_grad: ``(S,)`` gradient of the summed value per sample with
            respect to the shared self-logit (the parameter that sets every
            agent's selfishness), positive = towards keeping more.
    """

    giver: np.ndarray
    receiver: np.ndarray
    to_receiver: np.ndarray
    to_keeper: np.ndarray
    self_logit_grad: np.ndarray

    @property
    def shift(self) -> np.ndarray:
        """``(S, E)``: gain in summed value per unit of i's reward handed to j."""
        return self.to_receiver - self.to_keeper

    def summary(self, batch_size: int) -> dict[str, float]:
        """Sizes of the two terms, of their difference, and how consistent its sign is.

        ``batch_size`` groups consecutive samples into the high level's
        minibatches: ``minibatch_sign_agreement`` is the share of minibatches
        whose self-logit gradient has the sign of the whole sample's, 0.5 for
        pure noise and 1.0 for a clear signal.
        """
        shift = self.shift
        per_edge = shift.mean(axis=0)
        grads = self.self_logit_grad
        n = len(grads) // batch_size * batch_size
        mini = grads[:n].reshape(-1, batch_size).mean(axis=1) if n else grads[:1]
        overall = float(np.sign(grads.mean()))
        return {
            "samples": float(shift.shape[0]),
            "edges": float(shift.shape[1]),
            "mean_to_receiver": float(self.to_receiver.mean()),
            "mean_to_keeper": float(self.to_keeper.mean()),
            "mean_abs_to_receiver": float(np.abs(self.to_receiver).mean()),
            "mean_abs_to_keeper": float(np.abs(self.to_keeper).mean()),
            "corr_receiver_keeper": float(
                np.corrcoef(self.to_receiver.ravel(), self.to_keeper.ravel())[0, 1]
            ),
            "mean_abs_shift": float(np.abs(shift).mean()),
            "shift_mean": float(shift.mean()),
            "shift_edge_mean_std": float(per_edge.std()),
            "shift_sample_std": float(shift.std()),
            "self_logit_grad_mean": float(grads.mean()),
            "self_logit_grad_std": float(grads.std()),
            "minibatch_sign_agreement": float(np.mean(np.sign(mini) == overall)),
        }


def sharing_signal(controller: LToS, obs: np.ndarray, mask: np.ndarray) -> SharingSignal:
    """Measure the high level's gradient on observations ``(S, N, D)`` and action masks.

    Uses the controller's greedy sharing weights and its low-level q as the
    critic, as :meth:`LToS._ddpg_step` does; nothing is updated.
    """
    index, nbr_mask = controller.nbr_index, controller.nbr_mask
    obs_t = torch.as_tensor(obs, dtype=torch.float32)
    mask_t = torch.as_tensor(mask, dtype=torch.bool)
    per_sample_self: list[float] = []
    with torch.no_grad():
        base = sharing_matrix(controller.phi(obs_t), controller.scatter)
    matrix = base.clone().requires_grad_(True)
    edges = received_weights(matrix, index, nbr_mask)[..., None]
    value = masked_max(controller.q_net(obs_t, edges), mask_t)  # (S, N)
    (grad,) = torch.autograd.grad(value.sum(), matrix)  # grad[s, i, j] = dv_j/dw_ij
    for s in range(obs_t.shape[0]):  # per-sample gradients of the one shared parameter
        controller.phi.zero_grad()
        weights = controller.phi(obs_t[s : s + 1])
        m = sharing_matrix(weights, controller.scatter)
        e = received_weights(m, index, nbr_mask)[..., None]
        v = masked_max(controller.q_net(obs_t[s : s + 1], e), mask_t[s : s + 1]).sum()
        (g,) = torch.autograd.grad(v, controller.phi.self_logit)
        per_sample_self.append(float(g))
    real = nbr_mask.clone()
    real[:, 0] = False  # slot 0 is i itself
    giver, slot = torch.nonzero(real, as_tuple=True)
    receiver = index[giver, slot]
    g = grad.detach()
    return SharingSignal(
        giver=giver.numpy(),
        receiver=receiver.numpy(),
        to_receiver=g[:, giver, receiver].numpy(),
        to_keeper=g[:, giver, giver].numpy(),
        self_logit_grad=np.asarray(per_sample_self),
    )
