"""LToS, "learning to share" (Yi et al.), and fixed LToS.

Two levels per agent (seed appendix, Algorithm 1):

* High level ``phi_i``: from the observations of i's neighbourhood, a softmax over
  ``N_i`` (i itself first) gives the sharing weights ``w_ij >= 0``,
  ``sum_j w_ij = 1``: the share of i's reward that i hands to j. It acts every
  ``hl_action_interval`` decisions and explores with noise on its logits.
* Low level ``pi_i``: a DGN Q-network conditioned on the weights i *receives*,
  ``w_i^in = (w_ji for j in N_i)``, fed to every relation block as the edge
  feature of slot j. It learns by TD on the shaped reward
  ``r~_i = sum_j w_ji r_j``; the shaped rewards of all agents sum to the raw
  total, so the global objective is unchanged.

The high level learns by DDPG with the low-level Q as critic: ``w_ij`` enters
j's value ``v_j = max_a q_j(o_j, a; w_j^in)``, so i ascends
``sum_{j in N_i} dv_j/dw_ij · dw_ij/dtheta_i`` (Algorithm 1, lines 18-21). One
autograd pass through the dense sharing matrix ``W[i, j] = w_ij`` computes every
agent's "gradient exchanged back" at once.

Choices the appendix leaves open, stated here:

* Parameters of phi (and of the DGN) are shared by all agents, as in DGN; an
  agent's weights still depend on its own neighbourhood's observations.
* Unordered output: the logit of slot j is an MLP of the pair
  ``(z_i, z_j)`` of relation-block features plus a bias on the self slot, so
  permuting the neighbours permutes the weights the same way.
* Selfishness initialiser: the pair MLP's last layer starts at zero and the self
  slot's logit is ``log(s/(1-s)) + log(deg_i)`` (a learned scalar plus a constant),
  so every agent, whatever its degree, starts with ``w_ii = s`` and the rest
  spread evenly over its neighbours.
* Next weights in the TD target come from the target high-level network on
  ``o'`` (Algorithm 1, line 15); stored weights are the ones acted with.
* Table 5's noise parameter ``σ = 0.25ε`` is read as: OU scale is
  ``hl_noise_sigma`` times the low level's current epsilon
  (``hl_sigma_times_eps``).
* Fixed LToS keeps the initial weights forever (no noise, no high-level updates).
* ``hl_max_shift`` (ours, on for traffic: 0.03): a trust region per high-level round. The
  round's change of the greedy sharing weights, ``1/2 sum_j |w_ij - w_ij(before)|``
  averaged over the round's observations and agents, is held to the bound by moving
  phi (and its target) back along the round's parameter step (bisection). Large
  rounds change every agent's shaped reward at once and the low level, trained on the
  old rewards, can break down (measured on congested Shenzhen; README).
* ``q_decomposed`` (ours, off by default): the shaped reward is linear in the
  received weights, so the low level may be too. :class:`DecomposedQNet` gives
  one component ``Q_i^(k)(o_i, a)`` per neighbourhood slot, each learned by TD on
  the raw reward of the sender in slot k (the next action maximises the
  combined target q), and ``q_i = sum_k w_ki Q_i^(k)``. Then
  ``dv_i/dw_ki = Q_i^(k)(o_i, a*)`` exactly, the DDPG signal the high level
  needs; with weights as edge features inside attention the network sees
  little more than their total and the gradient is mostly noise (measured on
  prisoner). The components treat the weights as constant over the return, the
  slow-time-scale assumption of "Different Time Scales".
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ltos_traffic.controllers.base import register
from ltos_traffic.learning.buffer import Batch, RowCache
from ltos_traffic.learning.dgn import DGNConfig, DGNLearner, DGNNet, relation_bias
from ltos_traffic.learning.exploration import OUNoise
from ltos_traffic.learning.nn import (
    Polyak,
    Relation,
    gather_neighbours,
    init_normal_,
    make_optimizer,
    masked_max,
    mlp,
)
from ltos_traffic.learning.qlearning import OPTIMIZERS
from ltos_traffic.types import EnvSpec, TimeStep, Transition

NOISES = ("ou", "eps_gaussian", "none")
Q_WEIGHTS = ("input", "edges", "both")


@dataclass(frozen=True)
class LToSConfig(DGNConfig):
    """Low level: Table 4 (see :class:`~.DGNConfig`); high level: Table 5, 6x6."""

    # Where Table 5 and the authors' release (zhuliwen/RoadnetSZ, code/LToS) disagree, the
    # default follows the release, the code that made the paper's traffic numbers; the
    # comment gives Table 5's literal value, still selectable with --set.
    hl_update_every_episodes: int = 20  # high-level round after every k episodes, 0 = off
    # (release: every UPDATE_W_FREQ rounds of 4 generator episodes, ~20 rounds in a 400-episode
    # run, i.e. one per 20 episodes; Table 5: 1 step / 100 / 20 / 50 ep. A round every 4
    # episodes, our earlier default, broke LToS down on 2 of 3 seeds of congested Shenzhen at
    # 100 episodes; README, "Results".)
    hl_update_every_steps: int = 0  # high-level round every k decisions, 0 = off (prisoner: 1)
    hl_action_interval: int = 15  # decisions between high-level actions (Table 5: 1 / 1 / 15 / 15)
    hl_sample_size: int = 1000  # transitions per high-level round (Table 5: 2,000 / 5,000 / 1,000)
    hl_batch_size: int = 20  # transitions per high-level gradient step (Table 5: 32 / 32 / 20)
    hl_epochs: int = 5  # passes over a round's sample (release: W_EPOCHS = 5; Table 5: 1)
    hl_lr: float = 1e-3  # high-level learning rate (Table 5: 1e-1 / 1e-4 / 1e-3 / 1e-3)
    hl_lr_decay: float = 0.95  # lr factor per training round (release: 0.95; Table 5: none, 1.0)
    hl_optimizer: str = "adam"  # high-level optimiser (release: Adam; Table 5: SGD everywhere)
    hl_max_shift: float = 0.03  # trust region per round, 0 = off (ours; neither Table 5 nor
    # the release has one): the mean share of an agent's reward that changes hands,
    # 1/2 sum_j |w_ij(after) - w_ij(before)| over the round's observations, is held to at most
    # this by pulling phi back towards its pre-round parameters; when on, episodes.csv gets
    # hl_shift and hl_shift_scale per round. 0.03: congested Shenzhen, 100 episodes, 3 seeds,
    # 222.8 +- 8.8 s journey time against 520.8 +- 397.5 without (README)
    hl_tau: float = 0.1  # soft update of the target high level per step (ours: Table 4's tau)
    hl_noise: str = "ou"  # "ou" | "eps_gaussian" | "none" (Table 5: ε+Gaussian prisoner, else OU)
    hl_noise_sigma: float = 0.25  # noise scale on the logits (Table 5: 1 / 0.025 / 0.25 / 0.25)
    hl_sigma_times_eps: bool = True  # scale sigma by the current epsilon ("σ = 0.25ε")
    hl_ou_random_mean: bool = True  # OU around a random mean drawn per episode, N(0, σ²)
    # per agent and slot (release: mu = sigma * normal, x0 = mu; Table 5: mean 0)
    hl_target_noise: float = 0.1  # Gaussian noise on the target high level's logits in TD
    # targets (release: 0.1, "TD3 add noise"; Table 5: none, 0)
    hl_eps: float = 0.0  # eps_gaussian: chance per agent of Gaussian noise (Table 5 prisoner: 0.8)
    hl_ou_theta: float = 0.15  # OU mean reversion per high-level action (ours)
    selfishness: float = 0.8  # initial self-weight w_ii (Table 5: 0.5 / 0.5 / 0.8 / 0.9)
    q_weights: str = "input"  # where the low-level q reads the received weights: "input"
    # (concatenated to the observation, the release), "edges" (attention edge features,
    # the appendix's DGN reading) or "both"
    q_decomposed: bool = False  # low-level q linear in the received weights (ours; see above)

    def __post_init__(self) -> None:
        """Check the high-level fields too."""
        super().__post_init__()
        if self.hl_optimizer not in OPTIMIZERS:
            raise ValueError(f"hl_optimizer must be one of {OPTIMIZERS}")
        if self.hl_noise not in NOISES:
            raise ValueError(f"hl_noise must be one of {NOISES}")
        if self.q_weights not in Q_WEIGHTS:
            raise ValueError(f"q_weights must be one of {Q_WEIGHTS}")
        if self.hl_epochs < 1 or not 0.0 < self.hl_lr_decay <= 1.0 or self.hl_target_noise < 0:
            raise ValueError("hl_epochs must be >= 1, hl_lr_decay in (0, 1], hl_target_noise >= 0")
        if not 0.0 <= self.hl_max_shift <= 1.0:
            raise ValueError("hl_max_shift must lie in [0, 1] (0 turns the trust region off)")
        if not 0.0 < self.selfishness <= 1.0:
            raise ValueError("selfishness must lie in (0, 1]")
        if min(self.hl_action_interval, self.hl_sample_size, self.hl_batch_size) < 1:
            raise ValueError("hl_action_interval, hl_sample_size, hl_batch_size must be >= 1")
        if min(self.hl_update_every_episodes, self.hl_update_every_steps) < 0:
            raise ValueError("hl_update_every_* must be >= 0 (0 turns it off)")


# -- sharing weights: scatter, receive, shape ----------------------------------------------


def scatter_matrix(index: torch.Tensor, mask: torch.Tensor, n_agents: int) -> torch.Tensor:
    """``(N, K, N)`` one-hot map from i's neighbourhood slot k to agent ``index[i, k]``.

    Padded slots map to nothing (all zeros).
    """
    one_hot = torch.nn.functional.one_hot(index, n_agents).float()
    return one_hot * mask[..., None].float()


def sharing_matrix(weights: torch.Tensor, scatter: torch.Tensor) -> torch.Tensor:
    """Dense ``W[b, i, j] = w_ij`` from per-slot weights ``(B, N, K)``; zero outside ``N_i``."""
    return torch.einsum("bik,ikj->bij", weights, scatter)


def received_weights(matrix: torch.Tensor, index: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, N, K)``: ``out[b, i, k] = w_ji`` for ``j = index[i, k]``, what j gives to i."""
    n = index.shape[0]
    flat = index * n + torch.arange(n, device=index.device)[:, None]  # entry (j, i) of N x N
    # index_select is the advanced index matrix[:, index, i] bit for bit, and cheaper.
    senders_to_i = matrix.flatten(1).index_select(1, flat.reshape(-1)).unflatten(1, index.shape)
    return senders_to_i * mask.float()


def reverse_slots(index: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where ``w_ji`` (j = ``index[i, k]``) lies in the flattened per-slot weights ``(N·K)``.

    Returns ``(reverse, keep)``, both ``(N, K)``: ``reverse[i, k] = j·K + k'`` with
    ``index[j, k'] == i``, and ``keep`` 1.0 there; 0 / 0.0 on padded slots and where
    j does not list i (then i receives nothing from j).
    """
    n, k = index.shape
    reverse = torch.zeros((n, k), dtype=torch.long)
    keep = torch.zeros((n, k))
    for i in range(n):
        for slot in range(k):
            if mask[i, slot]:
                j = int(index[i, slot])
                back = ((index[j] == i) & mask[j]).nonzero().flatten()
                if back.numel():
                    reverse[i, slot] = j * k + int(back[0])
                    keep[i, slot] = 1.0
    return reverse.to(index.device), keep.to(index.device)


def received_from_slots(
    weights: torch.Tensor, reverse: torch.Tensor, keep: torch.Tensor
) -> torch.Tensor:
    """``(B, N, K)`` received weights straight from per-slot weights ``(B, N, K)``.

    ``reverse, keep``: :func:`reverse_slots`. The same values as
    :func:`received_weights` of :func:`sharing_matrix` (each entry of that one-hot
    sum has one non-zero term), without the dense ``(B, N, N)`` matrix.
    """
    flat = weights.flatten(1).index_select(1, reverse.reshape(-1)).view(weights.shape)
    return flat * keep


def shaped_rewards(matrix: torch.Tensor, reward: torch.Tensor) -> torch.Tensor:
    """``r~_i = sum_j w_ji r_j`` for ``(B, N, N)`` weights and ``(B, N)`` raw rewards."""
    return torch.einsum("bji,bj->bi", matrix, reward)


# -- the high-level network ------------------------------------------------------------------


def dgn_body(obs_dim: int, config: DGNConfig) -> tuple[nn.Module, nn.ModuleList, int]:
    """Encoder MLP and relation blocks (no edge features) of the two pairwise heads.

    Returns ``(encoder, relations, width)``, ``width`` being the size of the
    concatenated features :func:`slot_pairs` pairs up.
    """
    dim = config.hidden[-1]
    encoder = mlp(obs_dim, config.hidden)
    relations = nn.ModuleList(Relation(dim, config.heads) for _ in range(config.conv_layers))
    return encoder, relations, dim * (1 + config.conv_layers)


def slot_pairs(
    obs: torch.Tensor,
    encoder: nn.Module,
    relations: nn.ModuleList,
    index: torch.Tensor,
    mask: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DGN body features paired per neighbourhood slot: ``(z_i, z_j)``, each ``(B, N, K, Z)``.

    ``z`` concatenates the encoder output and every relation block's output;
    ``z_j`` is the feature of the agent in slot k, so heads on the pair follow
    the neighbour order. ``bias``: the :func:`attention_bias` for the
    relation blocks' dense evaluation, or ``None``.
    """
    h = encoder(obs)
    features = [h]
    for relation in relations:
        h = relation(h, index, mask, bias=bias)
        features.append(h)
    z = torch.cat(features, dim=-1)  # (B, N, Z)
    z_j = gather_neighbours(z, index)
    return z[:, :, None].expand_as(z_j), z_j


class SharingPolicy(nn.Module):
    """phi: observations ``(B, N, D)`` -> sharing weights ``(B, N, K)`` over each neighbourhood."""

    def __init__(
        self, obs_dim: int, config: LToSConfig, index: torch.Tensor, mask: torch.Tensor
    ) -> None:
        """DGN-style body (encoder + relation blocks), pairwise logit head, selfish bias."""
        super().__init__()
        dim = config.hidden[-1]
        self.encoder, self.relations, width = dgn_body(obs_dim, config)
        self.pair = mlp(2 * width, (dim,), 1)
        s = min(config.selfishness, 1.0 - 1e-6)
        self.self_logit = nn.Parameter(torch.tensor(math.log(s / (1.0 - s))))
        degree = mask.sum(dim=1).float() - 1.0
        self.index: torch.Tensor
        self.mask: torch.Tensor
        self.log_degree: torch.Tensor
        self.register_buffer("index", index.clone())
        self.register_buffer("mask", mask.clone())
        self.attention_bias: torch.Tensor | None
        self.register_buffer("attention_bias", relation_bias(config, index, mask), persistent=False)
        self.register_buffer("log_degree", torch.log(degree.clamp(min=1.0)))

    def reset_selfish(self) -> None:
        """Zero the pair head's last layer: initial weights are exactly the selfishness init."""
        last = self.pair[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, N, K)`` logits, ``-inf`` on padded slots."""
        z_i, z_j = slot_pairs(
            obs, self.encoder, self.relations, self.index, self.mask, self.attention_bias
        )
        logits = self.pair(torch.cat([z_i, z_j], dim=-1)).squeeze(-1)
        is_self = torch.zeros(logits.shape[-1], device=logits.device)
        is_self[0] = 1.0
        logits = logits + (self.self_logit + self.log_degree)[:, None] * is_self
        return logits.masked_fill(~self.mask, float("-inf"))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Sharing weights ``(B, N, K)``: non-negative, summing to 1 over each neighbourhood."""
        return torch.softmax(self.logits(obs), dim=-1)


# -- the decomposed low level ---------------------------------------------------------------


class DecomposedQNet(nn.Module):
    """Low-level q linear in the received weights: one component per neighbourhood slot.

    A DGN body without edge features gives features ``z``; the component of
    agent i for slot k (sender ``j = index[i, k]``) is an MLP of
    ``(z_i, z_j, [k is self])``, so permuting the neighbours permutes the
    components the same way.
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        config: DGNConfig,
        index: torch.Tensor,
        mask: torch.Tensor,
    ) -> None:
        """DGN encoder and relation blocks, pairwise component head."""
        super().__init__()
        dim = config.hidden[-1]
        self.encoder, self.relations, width = dgn_body(obs_dim, config)
        self.pair = mlp(2 * width + 1, (dim,), n_actions)
        self.index: torch.Tensor
        self.mask: torch.Tensor
        self.register_buffer("index", index.clone())
        self.register_buffer("mask", mask.clone())
        self.attention_bias: torch.Tensor | None
        self.register_buffer("attention_bias", relation_bias(config, index, mask), persistent=False)

    def components(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, N, K, A)``: ``Q_i^(k)(o, a)``, zero on padded slots."""
        z_i, z_j = slot_pairs(
            obs, self.encoder, self.relations, self.index, self.mask, self.attention_bias
        )
        is_self = torch.zeros((*z_j.shape[:-1], 1), device=z_j.device)
        is_self[:, :, 0] = 1.0
        out = self.pair(torch.cat([z_i, z_j, is_self], dim=-1))
        return out * self.mask[..., None].float()

    def forward(self, obs: torch.Tensor, edges: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, N, A)``: ``q_i = sum_k w_ki Q_i^(k)`` for received weights ``(B, N, K, 1)``."""
        if edges is None:
            raise ValueError("the decomposed q needs the received weights")
        return (edges * self.components(obs)).sum(dim=2)


# -- the controller --------------------------------------------------------------------------


@register("ltos")
class LToS(DGNLearner):
    """LToS: learned reward sharing (high level, DDPG) over a DGN low level."""

    Config: ClassVar[type] = LToSConfig
    config: LToSConfig
    learns_sharing: ClassVar[bool] = True

    def __init__(self, spec: EnvSpec, config: LToSConfig, seed: int) -> None:
        """Build both levels; the high level starts at the selfishness initialiser."""
        super().__init__(spec, config, seed)
        self.scatter = scatter_matrix(self.nbr_index, self.nbr_mask, spec.n_agents)
        self.phi = SharingPolicy(spec.obs_dim, config, self.nbr_index, self.nbr_mask)
        init_normal_(self.phi, self.generator, config.init_std)
        self.phi.reset_selfish()
        self.phi_target = copy.deepcopy(self.phi).requires_grad_(False)
        self.phi_polyak = Polyak(self.phi_target, self.phi)
        self.hl_optim = make_optimizer(
            config.hl_optimizer, list(self.phi.parameters()), config.hl_lr
        )
        self.ou = OUNoise(self.nbr_index.shape, config.hl_noise_sigma, config.hl_ou_theta)
        self.weights = self._greedy_weights(np.zeros((spec.n_agents, spec.obs_dim), np.float32))
        self.hl_update_count = 0  # gradient steps of the high level
        self.hl_round_count = 0  # high-level update rounds
        self.reverse_slot, self.reverse_keep = reverse_slots(self.nbr_index, self.nbr_mask)
        # The target high level's logits at o' of buffer rows, kept while phi_target and the
        # row are unchanged: between high-level rounds every TD step would recompute them.
        k = self.nbr_index.shape[1]
        self._target_cache = RowCache(config.buffer_capacity, (spec.n_agents, k))
        self._target_cache_version: tuple[int, ...] = ()
        # each row's shaped reward and received weights (fixed once the row is stored)
        self._shaped_cache = RowCache(config.buffer_capacity, (spec.n_agents, 1 + k))
        self._acting_edges_of: np.ndarray | None = None  # the weights _acting_edges belong to
        self._acting_edges = torch.zeros(0)

    # -- acting ----------------------------------------------------------------------------

    def _make_q_net(self) -> nn.Module:
        spec, cfg = self.spec, self.config
        if cfg.q_decomposed:
            return DecomposedQNet(spec.obs_dim, spec.n_actions, cfg, self.nbr_index, self.nbr_mask)
        return DGNNet(
            spec.obs_dim,
            spec.n_actions,
            cfg,
            self.nbr_index,
            self.nbr_mask,
            edge_dim=1 if cfg.q_weights in ("edges", "both") else 0,
            input_edges=self.nbr_index.shape[1] if cfg.q_weights in ("input", "both") else 0,
        )

    def _greedy_weights(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.phi(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()

    def _high_level_act(self, step: TimeStep, explore: bool) -> np.ndarray:
        """``(N, K)`` sharing weights for the next ``hl_action_interval`` decisions."""
        cfg = self.config
        with torch.no_grad():
            logits = self.phi.logits(torch.as_tensor(step.obs, dtype=torch.float32)[None])[0]
        if explore and self.learns_sharing:
            sigma = cfg.hl_noise_sigma * (self.exploration_rate if cfg.hl_sigma_times_eps else 1.0)
            if cfg.hl_noise == "ou":
                if step.t == 0:  # a new episode: draw its mean only when the config asks
                    random_mean = cfg.hl_ou_random_mean
                    self.ou.reset(
                        self.rng.standard_normal(logits.shape) * sigma if random_mean else None
                    )
                self.ou.sigma = sigma
                logits = logits + torch.from_numpy(self.ou.sample(self.rng)).float()
            elif cfg.hl_noise == "eps_gaussian":
                noise = self.rng.standard_normal(logits.shape) * sigma
                hit = self.rng.random(logits.shape[0]) < cfg.hl_eps
                logits = logits + torch.from_numpy(noise * hit[:, None]).float()
        return torch.softmax(logits, dim=-1).numpy()

    def _act_edges(self, step: TimeStep, explore: bool) -> torch.Tensor:
        if step.t % self.config.hl_action_interval == 0:
            self.weights = self._high_level_act(step, explore)
        if self._acting_edges_of is not self.weights:  # new weights every hl_action_interval steps
            weights = torch.from_numpy(self.weights)[None]
            self._acting_edges = received_from_slots(weights, self.reverse_slot, self.reverse_keep)[
                ..., None
            ]
            self._acting_edges_of = self.weights
        return self._acting_edges

    def sharing_weights(self, obs: np.ndarray) -> np.ndarray:
        """Greedy sharing weights ``(N, K)`` for observations ``(N, D)`` (for tests and plots)."""
        return self._greedy_weights(obs)

    # -- storing and learning ----------------------------------------------------------------

    def _buffer_extras(self) -> dict[str, tuple[tuple[int, ...], type]]:
        return {"weights": (tuple(self.nbr_index.shape), np.float32)}

    def _step_extras(self, transition: Transition) -> dict[str, np.ndarray]:
        return {"weights": self.weights}

    def acting_state(self) -> np.ndarray:
        """The sharing weights acted with (parallel training carries them to its workers)."""
        return self.weights.copy()

    def load_acting_state(self, state: np.ndarray) -> None:
        """Restore :meth:`acting_state` before observing a worker's transition."""
        self.weights = np.asarray(state, dtype=np.float32)

    def _learning_inputs(
        self, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        def shaped(rows: slice | np.ndarray) -> torch.Tensor:
            """``(B, N, 1 + K)``: each row's shaped reward, then the weights each agent receives."""
            weights = torch.from_numpy(batch.extras["weights"][rows])
            reward = torch.from_numpy(batch.reward[rows]) * self.config.reward_scale
            matrix = sharing_matrix(weights, self.scatter)
            edges = received_from_slots(weights, self.reverse_slot, self.reverse_keep)
            return torch.cat([shaped_rewards(matrix, reward)[..., None], edges], dim=-1)

        # stored weights and rewards never change, so per row this is computed once
        inputs = self._shaped_cache.lookup(batch.rows, self.buffer, shaped)
        next_edges = self._target_edges(torch.from_numpy(batch.next_obs), batch.rows)
        return inputs[..., 0], inputs[..., 1:, None], next_edges

    def _target_edges(self, next_obs: torch.Tensor, rows: np.ndarray | None) -> torch.Tensor:
        """Received weights ``(B, N, K, 1)`` of the target high level at ``o'`` (Alg. 1 l. 15).

        With ``hl_target_noise`` the target logits get Gaussian noise, smoothing
        the target over nearby weights (the release's "TD3" noise).
        """
        with torch.no_grad():
            logits = self._target_logits(next_obs, rows)
            if self.config.hl_target_noise > 0:
                noise = torch.randn(logits.shape, generator=self.generator)
                logits = logits + self.config.hl_target_noise * noise
            weights = torch.softmax(logits, dim=-1)
            return received_from_slots(weights, self.reverse_slot, self.reverse_keep)[..., None]

    def _target_logits(self, next_obs: torch.Tensor, rows: np.ndarray | None) -> torch.Tensor:
        """``phi_target.logits(next_obs)``, reusing the logits of buffer ``rows`` seen before.

        A cached row is reused while its buffer id (a new one when the row is
        written) and phi_target's parameters (their in-place version counters) are
        unchanged. Each row's logits come out of the forward the same whatever
        else is in its batch, so the reuse changes no bit of the result.
        """
        version = tuple(p._version for p in self.phi_polyak.target)
        if version != self._target_cache_version:
            self._target_cache.clear()
            self._target_cache_version = version
        return self._target_cache.lookup(
            rows, self.buffer, lambda fresh: self.phi_target.logits(next_obs[fresh])
        )

    def _td_step(self, batch: Batch) -> float:
        """Plain TD on the shaped reward, or per component when ``q_decomposed``.

        Component k of agent i regresses on ``r_j + γ Q'_i^(k)(o', a*)`` for the
        sender ``j = index[i, k]``, where ``a*`` maximises the combined target
        ``sum_k w'_ki Q'_i^(k)(o', ·)`` under the target high level's weights.
        """
        if not self.config.q_decomposed:
            return super()._td_step(batch)
        cfg = self.config
        assert isinstance(self.q_net, DecomposedQNet)
        assert isinstance(self.q_target, DecomposedQNet)
        raw = torch.from_numpy(batch.reward) * cfg.reward_scale  # (B, N)
        sender_reward = raw[:, self.nbr_index] * self.nbr_mask.float()  # (B, N, K)
        actions = torch.from_numpy(batch.actions)[:, :, None, None]
        actions = actions.expand(-1, -1, self.nbr_index.shape[1], 1)
        q = self.q_net.components(torch.from_numpy(batch.obs)).gather(-1, actions).squeeze(-1)
        with torch.no_grad():
            next_obs = torch.from_numpy(batch.next_obs)
            next_edges = self._target_edges(next_obs, batch.rows)
            next_parts = self.q_target.components(next_obs)  # (B, N, K, A)
            combined = (next_edges * next_parts).sum(dim=2)
            combined = combined.masked_fill(~torch.from_numpy(batch.next_mask), float("-inf"))
            best = combined.argmax(dim=-1)[:, :, None, None].expand_as(actions)
            next_q = next_parts.gather(-1, best).squeeze(-1)  # (B, N, K)
            if cfg.terminal_on_done:
                next_q = next_q * (~torch.from_numpy(batch.done)).float()[:, None, None]
            target = sender_reward + cfg.gamma * next_q
        real = self.nbr_mask.float().expand_as(q)
        loss = ((q - target) ** 2 * real).sum() / real.sum()
        self.q_optim.zero_grad()
        loss.backward()
        self.q_optim.step()
        self.q_polyak(cfg.tau)
        self.update_count += 1
        return float(loss.item())

    def observe(self, transition: Transition) -> dict[str, float]:
        """Low-level storing and updates, then a high-level round when one is due."""
        stats = super().observe(transition)
        cfg = self.config
        by_step = cfg.hl_update_every_steps > 0 and self.step_count % cfg.hl_update_every_steps == 0
        by_episode = (
            transition.next_step.done
            and cfg.hl_update_every_episodes > 0
            and self.episode % cfg.hl_update_every_episodes == 0
        )
        enough = len(self.buffer) >= cfg.hl_batch_size
        if self.learns_sharing and (by_step or by_episode) and enough:
            stats.update(self._update_sharing())
        return stats

    def schedule_note(self, episodes: int) -> str | None:
        """A one-line note when training ``episodes`` episodes would never update the high level.

        With the episode cadence (``hl_update_every_episodes = k``) a run shorter than k
        episodes keeps the initial weights: it is fixed LToS, and the user should know.
        """
        cfg = self.config
        k = cfg.hl_update_every_episodes
        if not self.learns_sharing or cfg.hl_update_every_steps > 0 or k == 0 or episodes >= k:
            return None
        return (
            f"note: ltos updates its sharing weights every {k} training episodes, so {episodes} "
            f"leave them at their initial values (fixed LToS); train --episodes {k} or more, "
            f"or --set hl_update_every_episodes=K"
        )

    def _update_sharing(self) -> dict[str, float]:
        """One high-level round: ``hl_epochs`` passes over one sample of the joint buffer.

        The learning rate is ``hl_lr * hl_lr_decay ** round`` (rounds of
        ``episodes_per_round`` training episodes, as the release decays it).
        """
        cfg = self.config
        for group in self.hl_optim.param_groups:
            group["lr"] = cfg.hl_lr * cfg.hl_lr_decay**self.training_round
        batches = self.minibatches(cfg.hl_sample_size, cfg.hl_batch_size)
        if not batches:
            return {}
        bounded = cfg.hl_max_shift > 0.0  # the trust region's work only when it is on
        if bounded:
            obs = torch.from_numpy(np.concatenate([b.obs for b in batches]))
            before = [p.detach().clone() for p in self._hl_params()]
            with torch.no_grad():
                weights_before = self.phi(obs)
        values = [self._ddpg_step(b) for _ in range(cfg.hl_epochs) for b in batches]
        self.hl_round_count += 1
        stats = {"hl_value": float(np.mean(values))}
        if bounded:
            shift, scale = self._limit_shift(obs, weights_before, before)
            stats |= {"hl_shift": shift, "hl_shift_scale": scale}
        return stats

    def _hl_params(self) -> list[torch.Tensor]:
        return [*self.phi_polyak.source, *self.phi_polyak.target]

    def _shift(self, obs: torch.Tensor, weights_before: torch.Tensor) -> float:
        """Mean over observations and agents of ``1/2 sum_j |w_ij - w_ij(before)|``."""
        with torch.no_grad():
            moved = (self.phi(obs) - weights_before).abs().sum(dim=-1) / 2
        return float(moved.mean())

    def _limit_shift(
        self, obs: torch.Tensor, weights_before: torch.Tensor, before: list[torch.Tensor]
    ) -> tuple[float, float]:
        """Hold the round's shift to ``hl_max_shift`` (``(shift, scale)``; scale 1: untouched).

        Parameters (phi and its target) are set to ``before + a (after - before)`` with
        the largest ``a`` in [0, 1] found by bisection whose shift is within the bound.
        """
        limit = self.config.hl_max_shift
        shift = self._shift(obs, weights_before)
        if shift <= limit:
            return shift, 1.0
        params = self._hl_params()
        after = [p.detach().clone() for p in params]

        def place(a: float) -> float:
            with torch.no_grad():
                for p, old, new in zip(params, before, after, strict=True):
                    p.copy_(old + a * (new - old))
            return self._shift(obs, weights_before)

        low, high = 0.0, 1.0
        for _ in range(20):
            mid = (low + high) / 2
            if place(mid) <= limit:
                low = mid
            else:
                high = mid
        return place(low), low

    def _ddpg_step(self, batch: Batch) -> float:
        """One ascent step of phi on ``sum_j max_a q_j(o_j, a; w_j^in(phi))`` (Alg. 1, l. 18-21).

        Only phi's parameters receive gradients; the Q-network is the fixed critic.
        """
        obs = torch.from_numpy(batch.obs)
        matrix = sharing_matrix(self.phi(obs), self.scatter)
        edges = received_weights(matrix, self.nbr_index, self.nbr_mask)[..., None]
        if isinstance(self.q_net, DecomposedQNet):
            with torch.no_grad():  # the components do not depend on phi: same gradient, cheaper
                parts = self.q_net.components(obs)
            q = (edges * parts).sum(dim=2)
        else:
            q = self.q_net(obs, edges)
        value = masked_max(q, torch.from_numpy(batch.mask))  # (B, N)
        objective = value.sum(dim=1).mean()
        self.hl_optim.zero_grad()
        (-objective).backward(inputs=self.phi_polyak.source)
        self.hl_optim.step()
        self.phi_polyak(self.config.hl_tau)
        self.hl_update_count += 1
        return float(objective.item()) / self.spec.n_agents

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Both levels, optimisers, buffer, OU state, counters and RNG states."""
        return {
            **super().state_dict(),
            "phi": self.phi.state_dict(),
            "phi_target": self.phi_target.state_dict(),
            "hl_optim": self.hl_optim.state_dict(),
            "ou": self.ou.state_dict(),
            "weights": torch.from_numpy(self.weights.copy()),
            "hl_update_count": self.hl_update_count,
            "hl_round_count": self.hl_round_count,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        super().load_state_dict(state)
        self.phi.load_state_dict(state["phi"])
        self.phi_target.load_state_dict(state["phi_target"])
        self.hl_optim.load_state_dict(state["hl_optim"])
        self.ou.load_state_dict(state["ou"])
        weights = state["weights"].numpy()
        if weights.shape != self.weights.shape:
            raise ValueError(f"weights of shape {weights.shape}, expected {self.weights.shape}")
        self.weights = weights.astype(np.float32)
        self.hl_update_count = int(state["hl_update_count"])
        self.hl_round_count = int(state.get("hl_round_count", 0))


@register("fixed_ltos")
class FixedLToS(LToS):
    """Fixed LToS: the sharing weights stay at the selfishness initialiser throughout."""

    learns_sharing: ClassVar[bool] = False
