"""Shared plumbing of the A2C-LSTM baselines NeurComm and ConseNet (Chu et al., ICLR 2020).

Not registered (underscore module). It holds:

* per-agent layers (:class:`AgentLinear`, :class:`AgentLSTMCell`): every agent has
  its own weights, stored as one ``(N, ...)`` tensor so all agents run in one
  batched matrix product;
* :func:`spatial_discount`: the ``alpha ** distance`` matrix of the spatially
  discounted reward;
* :class:`LSTMA2C`: act / observe / n-step A2C update / state dict. Subclasses
  say only what enters each agent's LSTM (:meth:`LSTMA2C._lstm_input`) and
  what happens after an optimiser step (:meth:`LSTMA2C._after_step`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ltos_traffic.learning.rollout import Rollout, RolloutBatch, discounted_returns
from ltos_traffic.types import EnvSpec, TimeStep, Transition, neighbourhood


@dataclass(frozen=True)
class A2CConfig:
    """Hyperparameters shared by NeurComm and ConseNet (Table 6, Traffic-6x6 column)."""

    lr: float = 5e-4  # RMSProp learning rate; Table 6: 5e-3 / 5e-5 / 5e-4 / 5e-4
    hidden: int = 16  # MLP, cell-state and hidden-state units; Table 6: 20 / 512 / 16 / 16
    alpha: float = 0.1  # spatial discount factor; Table 6: prisoner 1, jungle 0.33, traffic 0.1
    gamma: float = 0.99  # temporal discount per decision step; Chu et al.'s code: 0.99
    n_steps: int = 120  # steps per on-policy segment (n of the n-step return); Chu et al.: 120
    entropy_coef: float = 0.01  # weight of the policy entropy bonus; Chu et al.: 0.01
    value_coef: float = 0.5  # weight of the critic loss; Chu et al.: 0.5
    max_grad_norm: float = 40.0  # global gradient-norm clip; Chu et al.: 40
    rms_alpha: float = 0.99  # RMSProp smoothing constant; Chu et al.: 0.99
    rms_eps: float = 1e-5  # RMSProp epsilon; Chu et al.: 1e-5
    # Raw reward multiplier (not in the paper); the scenarios' [hparams.common] set 0.1.
    reward_scale: float = 0.1
    # Further divisor of the scaled reward, A2C family only (not in the paper): the critic
    # learns on raw x reward_scale / reward_norm = 0.01 per halting vehicle, the factor of Chu
    # et al.'s traffic configs (config_ia2c_cu_grid.ini: reward_norm = 100 on the queue,
    # reward_clip = -1; their NeurComm divides the 25-agent global queue by 2,000, 0.0125 per
    # agent). At 0.1 per vehicle the bootstrapped values (~ -44 on grid2x2) are out of reach of a
    # critic head that moves ~lr per update: explained variance stayed ~0 (issue 14).
    reward_norm: float = 10.0
    eval_sample: bool = True  # greedy episodes sample the policy, as Chu et al.'s traffic tests do
    # Bootstrap from V at the episode end: every environment here ends an episode by a time
    # limit (traffic keeps flowing), so the end is a truncation, not a terminal state. Chu et
    # al.'s code zeroes the return there (R = 0 when done), harmless in their 720-step episodes
    # but not in grid2x2's 60 steps, where the return then falls from ~-20 to 0 with a clock the
    # LSTM cannot see (issue 14). False restores their terminal end.
    bootstrap_time_limit: bool = True
    # Weight init. True: Chu et al.'s (agents/utils.py: ortho_init with DEFAULT_SCALE = sqrt(2)
    # in fc, lstm and lstm_comm, every bias 0), the actor and critic heads included. False
    # (default): orthogonal gain 1, actor head 0.01 (a near-uniform first policy), LSTM
    # forget-gate bias 1. Measured on grid2x2 (issue 14): the gain-sqrt(2) actor head starts
    # from an arbitrary peaked policy (134 s vs 100 s in episode 0) that the first updates
    # sharpen further before the critic is any use; it learns later, not better.
    authors_init: bool = False


def critic_fit(returns: torch.Tensor, values: torch.Tensor) -> dict[str, float]:
    """How well the critic tracks its targets on one segment (learning-curve diagnostics).

    Returns ``return_mean`` and ``value_mean`` (per agent and step) and
    ``explained_variance = 1 - Var(R - V) / Var(R)``: 1 for a perfect critic, 0 for
    one no better than a constant, negative when it lags the returns' scale.
    """
    var = float(returns.var()) if returns.numel() > 1 else 0.0
    explained = 1.0 - float((returns - values).var()) / var if var > 0 else float("nan")
    return {
        "return_mean": float(returns.mean()),
        "value_mean": float(values.mean()),
        "explained_variance": explained,
    }


def spatial_discount(adjacency: np.ndarray, alpha: float) -> np.ndarray:
    """``W[i, j] = alpha ** d(i, j)`` with ``d`` the hop distance on the graph.

    Agent ``i`` learns from ``sum_j W[i, j] * r_j``. Unreachable pairs get 0; with
    ``alpha = 1`` every agent of a connected graph learns the global reward.
    """
    adj = np.asarray(adjacency, dtype=bool).copy()
    np.fill_diagonal(adj, False)
    n = adj.shape[0]
    dist = np.full((n, n), -1, dtype=np.int64)
    np.fill_diagonal(dist, 0)
    frontier = np.eye(n, dtype=bool)
    reached = frontier.copy()
    hops = 0
    while frontier.any():
        hops += 1
        frontier = (frontier.astype(np.int64) @ adj.astype(np.int64) > 0) & ~reached
        dist[frontier] = hops
        reached |= frontier
    weights = np.where(dist >= 0, float(alpha) ** np.maximum(dist, 0), 0.0)
    return weights.astype(np.float32)


class AgentLinear(nn.Module):
    """``N`` independent linear layers applied in one batched product.

    Input ``(..., N, in)``, output ``(..., N, out)``. Weights are orthogonal per
    agent (Table 6 initializer), biases zero.
    """

    def __init__(
        self, n_agents: int, in_dim: int, out_dim: int, gen: torch.Generator, gain: float = 1.0
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_agents, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(n_agents, out_dim))
        with torch.no_grad():
            # One QR for all agents (it dominates construction with Table 6's 512 units);
            # each agent permutes its rows and flips column signs: still orthogonal.
            base = nn.init.orthogonal_(torch.empty(in_dim, out_dim), gain=gain, generator=gen)
            perms = torch.argsort(torch.rand(n_agents, in_dim, generator=gen), dim=1)
            signs = torch.randint(0, 2, (n_agents, 1, out_dim), generator=gen) * 2 - 1
            self.weight.copy_(base[perms] * signs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...ni,nio->...no", x, self.weight) + self.bias


class AgentLSTMCell(nn.Module):
    """``N`` independent LSTM cells stepped together; state ``(h, c)`` each ``(N, H)``."""

    def __init__(
        self,
        n_agents: int,
        in_dim: int,
        hidden: int,
        gen: torch.Generator,
        gain: float = 1.0,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.w_in = AgentLinear(n_agents, in_dim, 4 * hidden, gen, gain=gain)
        self.w_rec = AgentLinear(n_agents, hidden, 4 * hidden, gen, gain=gain)
        with torch.no_grad():
            self.w_rec.bias.zero_()
            self.w_in.bias[:, hidden : 2 * hidden] = forget_bias

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        gates = self.w_in(x) + self.w_rec(h)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


# The recurrent carry of one step: LSTM (h, c) plus the policy fingerprint
# (last action probabilities), each (N, ...). NeurComm reads all three.
Carry = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def masked_logits(logits: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
    """Illegal actions get a logit of ``-1e9`` (probability 0 after softmax)."""
    return logits.masked_fill(~action_mask, -1e9)


def evaluation_actions(
    logits: torch.Tensor, *, sample: bool, generator: torch.Generator
) -> np.ndarray:
    """Actions of an evaluation (``explore=False``) step of a stochastic policy.

    ``sample=True`` draws from the policy, as the authors of NeurComm/ConseNet
    (cts198859/deeprl_network, ``utils.py`` ``Trainer.perform``: "in on-policy
    learning, test policy has to be stochastic", used for every traffic env) and
    of LIO (011235813/lio, ``alg/evaluate.py`` runs ``run_actor``, which samples)
    evaluate. The argmax of a policy that is still near-uniform is an arbitrary
    phase that hardly depends on the observation, so every junction holds one
    phase and the grid jams (measured: 2,251 s on grid6x6, issue 14).
    ``generator`` is the caller's evaluation generator, so evaluation never
    moves the training random stream.

    Args:
        logits: ``(N, A)`` masked logits.
        sample: draw from ``softmax(logits)``; ``False`` takes the argmax.
        generator: source of the draws.

    Returns:
        ``(N,)`` int64 legal actions.
    """
    if not sample:
        return logits.argmax(dim=-1).numpy().astype(np.int64)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0].numpy().astype(np.int64)


class LSTMA2C:
    """Advantage actor-critic with one LSTM per agent and spatially discounted rewards.

    Each agent ``i`` runs ``x_i -> LSTM -> (pi_i, V_i)``, where ``x_i`` is built
    by the subclass from the observations (and, for NeurComm, the neighbours'
    messages). Agent ``i`` is trained on ``r~_i = sum_j alpha^d(i,j) r_j``
    with n-step returns, bootstrapped from ``V_i`` unless the episode ended
    (an episode end counts as terminal, as in Chu et al.'s code). Segments of
    ``n_steps`` never cross an episode end; the update replays the segment's
    LSTMs from the carry they started with (truncated backpropagation through
    time, messages included).
    The critic reads ``h_i`` only (Chu et al. also feed neighbours' actions; we
    leave them out so the bootstrap needs no future actions).
    """

    learns: ClassVar[bool] = True
    name: ClassVar[str] = ""
    Config: ClassVar[type] = A2CConfig

    def __init__(self, spec: EnvSpec, config: A2CConfig, seed: int) -> None:
        self.spec = spec
        self.config = config
        self.seed = seed
        n, hidden, n_actions = spec.n_agents, config.hidden, spec.n_actions
        self.gen = torch.Generator().manual_seed(seed)
        index, mask = neighbourhood(spec.adjacency)
        self.nbr_index = torch.from_numpy(index)  # (N, K), self first
        self.nbr_mask = torch.from_numpy(mask)
        self.spatial = torch.from_numpy(spatial_discount(spec.adjacency, config.alpha))
        gain = math.sqrt(2.0) if config.authors_init else 1.0
        self.gain = gain  # of every hidden layer; encoders read it in _build_encoder
        self.net = nn.ModuleDict(self._build_encoder(self.gen))
        self.net["lstm"] = AgentLSTMCell(
            n, self._lstm_in_dim(), hidden, self.gen, gain=gain,
            forget_bias=0.0 if config.authors_init else 1.0,
        )  # fmt: skip
        actor_gain = gain if config.authors_init else 0.01
        self.net["actor"] = AgentLinear(n, hidden, n_actions, self.gen, gain=actor_gain)
        self.net["critic"] = AgentLinear(n, hidden, 1, self.gen, gain=gain)
        self.optim = torch.optim.RMSprop(
            self.net.parameters(), lr=config.lr, alpha=config.rms_alpha, eps=config.rms_eps
        )
        self.rollout = Rollout()
        self.carry = self._initial_carry()
        self._segment_carry = self.carry  # carry at the start of the stored segment
        self._carry_before_act = self.carry
        self.updates = 0
        self.eval_gen = torch.Generator()  # evaluation draws; reseeded at every episode start
        self.eval_seed = seed  # kept in the state dict, so a resumed run evaluates alike

    # --- what subclasses define -------------------------------------------------------------

    def _build_encoder(self, gen: torch.Generator) -> dict[str, nn.Module]:
        """Layers that turn observations (and messages) into the LSTM input."""
        raise NotImplementedError

    def _lstm_in_dim(self) -> int:
        """Width of the LSTM input built by :meth:`_lstm_input`."""
        raise NotImplementedError

    def _lstm_input(self, obs: torch.Tensor, carry: Carry) -> torch.Tensor:
        """``(N, in)`` LSTM input from ``(N, D)`` observations and last step's carry."""
        raise NotImplementedError

    def _after_step(self) -> dict[str, float]:
        """Hook run after each optimiser step (ConseNet's consensus); returns stats."""
        return {}

    # --- helpers -----------------------------------------------------------------------------

    def _initial_carry(self) -> Carry:
        n, hidden, a = self.spec.n_agents, self.config.hidden, self.spec.n_actions
        zeros = torch.zeros(n, hidden)
        return zeros, zeros.clone(), torch.full((n, a), 1.0 / a)

    def neighbour_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, F)`` per-agent rows -> ``(N, (K-1) * F)`` neighbours' rows, zero-padded."""
        rows = x[self.nbr_index[:, 1:]] * self.nbr_mask[:, 1:, None]
        return rows.flatten(1)

    def _step(
        self, obs: torch.Tensor, action_mask: torch.Tensor, carry: Carry
    ) -> tuple[torch.Tensor, torch.Tensor, Carry]:
        """One decision step of all agents: masked logits, ``h`` and the next carry."""
        h, c = self.net["lstm"](self._lstm_input(obs, carry), carry[0], carry[1])
        logits = masked_logits(self.net["actor"](h), action_mask)
        return logits, h, (h, c, torch.softmax(logits, dim=-1))

    # --- controller protocol -----------------------------------------------------------------

    def act(self, step: TimeStep, *, explore: bool) -> np.ndarray:
        """Sample the policy (explore), else act as :func:`evaluation_actions` says; all agents."""
        if step.t == 0:
            self.carry = self._initial_carry()
            if not explore:
                self.eval_gen.manual_seed(self.eval_seed)
        self._carry_before_act = self.carry
        mask = torch.from_numpy(np.asarray(step.action_mask, dtype=bool))
        with torch.no_grad():
            logits, _, self.carry = self._step(torch.from_numpy(step.obs).float(), mask, self.carry)
        if explore:
            actions = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.gen)[:, 0]
            return actions.numpy().astype(np.int64)
        return evaluation_actions(logits, sample=self.config.eval_sample, generator=self.eval_gen)

    def observe(self, transition: Transition) -> dict[str, float]:
        """Store the step; update at the end of a segment or of the episode."""
        if len(self.rollout) == 0:
            self._segment_carry = self._carry_before_act
        step, nxt = transition.step, transition.next_step
        self.rollout.add(step.obs, step.action_mask, transition.actions, nxt.reward)
        if len(self.rollout) < self.config.n_steps and not nxt.done:
            return {}
        batch = self.rollout.take(nxt.obs, nxt.action_mask, nxt.done)
        return self._update(batch, self._segment_carry, self.carry)

    def _update(self, batch: RolloutBatch, start: Carry, end: Carry) -> dict[str, float]:
        """One A2C step on a segment, replaying the LSTMs from the segment's first carry.

        Args:
            batch: the segment.
            start: carry before the segment's first action (detached).
            end: carry after its last action (for the bootstrap value).
        """
        cfg = self.config
        carry: Carry = tuple(t.detach() for t in start)  # type: ignore[assignment]
        logits_t, h_t = [], []
        for t in range(batch.steps):  # time is sequential; agents are batched
            logits, h, carry = self._step(batch.obs[t], batch.action_mask[t], carry)
            logits_t.append(logits)
            h_t.append(h)
        logits_all = torch.stack(logits_t)  # (T, N, A)
        values = self.net["critic"](torch.stack(h_t)).squeeze(-1)  # (T, N)
        log_probs = torch.log_softmax(logits_all, dim=-1)
        probs = log_probs.exp()
        log_pi = log_probs.gather(-1, batch.actions[..., None]).squeeze(-1)
        entropy = -(probs * log_probs.masked_fill(~batch.action_mask, 0.0)).sum(-1)

        scaled = batch.reward * (cfg.reward_scale / cfg.reward_norm)
        shaped = scaled @ self.spatial.T  # r~_i = sum_j W_ij r_j
        with torch.no_grad():
            if batch.done and not cfg.bootstrap_time_limit:
                bootstrap = torch.zeros(self.spec.n_agents)
            else:
                _, h_next, _ = self._step(batch.next_obs, batch.next_action_mask, end)
                bootstrap = self.net["critic"](h_next).squeeze(-1)
        returns = discounted_returns(shaped, bootstrap, cfg.gamma)
        advantage = (returns - values).detach()

        # Sum over agents (each agent's gradient does not shrink with N), mean over time.
        policy_loss = -(log_pi * advantage).mean(0).sum()
        value_loss = 0.5 * (returns - values).pow(2).mean(0).sum()
        entropy_mean = entropy.mean(0).sum()
        loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy_mean
        self.optim.zero_grad()
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm)
        self.optim.step()
        self.updates += 1
        n = self.spec.n_agents
        stats = {
            "policy_loss": policy_loss.item() / n,
            "value_loss": value_loss.item() / n,
            "entropy": entropy_mean.item() / n,
            "grad_norm": float(grad_norm),
            **critic_fit(returns.detach(), values.detach()),
        }
        stats.update(self._after_step())
        return {k: v for k, v in stats.items() if math.isfinite(v)}

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimiser, counters and RNG states (``weights_only``-loadable)."""
        return {
            "net": self.net.state_dict(),
            "optim": self.optim.state_dict(),
            "updates": self.updates,
            "torch_rng": self.gen.get_state(),
            "eval_seed": self.eval_seed,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved; the recurrent state starts afresh."""
        self.net.load_state_dict(state["net"])
        self.optim.load_state_dict(state["optim"])
        self.updates = int(state["updates"])
        self.gen.set_state(state["torch_rng"])
        self.eval_seed = int(state.get("eval_seed", self.seed))
        self.rollout.clear()
        self.carry = self._initial_carry()
