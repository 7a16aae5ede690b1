"""LIO: each agent learns to give incentive rewards to its neighbours.

Paper: J. Yang, A. Li, M. Farajtabar, P. Sunehag, E. Hughes, H. Zha, "Learning to
Incentivize Other Learning Agents", NeurIPS 2020. Authors' code: 011235813/lio.

Every agent ``i`` has its own policy ``pi_i(a | o_i; theta_i)`` and incentive
function ``eta_i(o_i, a_{N_i \\ i}; phi_i)`` that pays each neighbour an extra
reward in ``[0, R_max]`` for what it just did. The loop, per on-policy segment
``tau_k`` (all agents batched, per-agent weights in ``(N, ...)`` tensors):

1. Incentive step (from the second segment on). Replay the policy step that
   turned ``theta_{k-1}`` into ``theta_k`` on ``tau_{k-1}``, as a function of
   ``phi``: recipient ``j``'s step is linear in the incentives it received, so
   for every (giver ``i``, recipient ``j``) pair we rebuild ``theta'_j`` with
   only ``i``'s incentives left differentiable. Giver ``i`` then ascends its own
   extrinsic return on ``tau_k`` (collected with ``theta_k``) through
   ``theta'_j`` (a second-order policy gradient), minus ``alpha_theta`` times
   the incentives it paid on ``tau_{k-1}``. See :meth:`LIO.incentive_loss`.
2. Critic and policy step on ``tau_k``: one Adam step of each agent's critic
   on TD(0) targets of ``r_j + sum of incentives received`` (the authors'
   actor-critic LIO, ``alg/lio_ac.py``), then a policy-gradient step with the TD
   error as advantage and an entropy bonus, one RMSProp step. The lookahead of
   step 1 models this step with RMSProp's denominator held at its value after
   the step, so the rebuilt ``theta'`` equals the real ``theta_k``.

Exploration: with probability epsilon (Table 6 schedule, per episode) an agent
takes a uniformly random legal action instead of sampling its policy.

Reading of Table 6: ``alpha_theta`` is the weight of the incentive cost (the
``alpha`` of the paper's incentive objective, as the project notes say); ``R_max``
is in units of the scaled reward (``reward_scale`` times the raw reward). Caveat,
measured on prisoner: with ``alpha_theta = 1`` the cost outweighs the
second-order gain, incentives fall to zero and both agents defect; with 1e-4
they stay near 1.2 and cooperation reaches about 0.7 in 300 episodes. The
authors' own prisoner's-dilemma config uses no incentive cost at all.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from baselines._a2c import AgentLinear, critic_fit, evaluation_actions, masked_logits
from ltos_traffic.controllers.base import register
from ltos_traffic.learning.exploration import EpsilonSchedule
from ltos_traffic.learning.rng import restore_rng, rng_state
from ltos_traffic.learning.rollout import Rollout, RolloutBatch, discounted_returns
from ltos_traffic.types import EnvSpec, TimeStep, Transition, neighbourhood


@dataclass(frozen=True)
class LIOConfig:
    """LIO hyperparameters (defaults: Table 6, Traffic-6x6 column)."""

    lr: float = 5e-4  # RMSProp learning rate of policies; Table 6: 5e-3 / 5e-5 / 5e-4 / 5e-4
    lr_incentive: float = 5e-4  # RMSProp learning rate of incentive functions; Table 6 (same)
    hidden: int = 16  # MLP units of policy and incentive networks; Table 6: 20 / 512 / 16 / 16
    eps_start: float = 0.2  # exploration epsilon, first episode; Table 6: 0.8 / 0.6 / 0.2 / 0.2
    eps_decay: float = 0.9  # epsilon factor per episode; Table 6: 0.99 / 0.996 / 0.9 / 0.9
    eps_end: float = 0.01  # epsilon floor; Table 6: 0.01 in every column
    alpha_theta: float = 1e-4  # weight of the incentive cost; Table 6: 1 / 1e-4 / 1e-4 / 1e-4
    r_max: float = 0.1  # largest incentive per recipient and step; Table 6: 2 / 3 / 0.1 / 0.1
    gamma: float = 0.99  # discount per decision step; LIO's code: 0.99
    n_steps: int = 120  # steps per on-policy segment; as NeurComm (Chu et al.: 120)
    entropy_coef: float = 0.01  # policy entropy bonus; LIO's code: 0.01
    rms_alpha: float = 0.99  # RMSProp smoothing constant
    rms_eps: float = 1e-5  # RMSProp epsilon
    reward_scale: float = 0.1  # raw reward multiplier (not in the paper)
    eval_sample: bool = True  # greedy episodes sample the policy (LIO's code: alg/evaluate.py)
    # Advantage. True: the authors' actor-critic variant (011235813/lio, alg/lio_ac.py, used by
    # their largest setting, config_ssd_lio.py: use_actor_critic = True): a per-agent critic V
    # trained on r + incentives received with TD(0) targets from a soft-updated target copy,
    # and the TD error ``r + gamma V(s') - V(s)`` as advantage (bootstrapped at the time limit,
    # as theirs). False: reward-to-go within the segment minus its mean (their policy-gradient
    # variant, lio_agent.py, with a mean baseline), which on a 60-step traffic episode is a
    # clock: -20 at the start, 0 at the end, whatever the actions (issue 14).
    critic: bool = True
    lr_value: float = 1e-3  # Adam learning rate of the critic; LIO's code (ssd): lr_v = 1e-3
    tau: float = 0.01  # soft update of the target critic per update; LIO's code: tau = 0.01


PolicyParams = dict[str, torch.Tensor]


def policy_logits(params: Mapping[str, torch.Tensor], obs: torch.Tensor) -> torch.Tensor:
    """Per-agent two-layer policy, functional so it can run on updated copies of its weights.

    Args:
        params: ``w1 (M, D, H)``, ``b1 (M, H)``, ``w2 (M, H, A)``, ``b2 (M, A)``.
        obs: ``(T, M, D)`` observations, one row per parameter set.

    Returns:
        ``(T, M, A)`` unmasked logits.
    """
    h = torch.relu(torch.einsum("tmd,mdh->tmh", obs, params["w1"]) + params["b1"])
    return torch.einsum("tmh,mha->tma", h, params["w2"]) + params["b2"]


@register("lio")
class LIO:
    """LIO controller: per-agent policies plus incentive functions learned through them."""

    Config: ClassVar[type] = LIOConfig
    learns: ClassVar[bool] = True

    def __init__(self, spec: EnvSpec, config: LIOConfig, seed: int) -> None:
        self.spec, self.config, self.seed = spec, config, seed
        n, d, a, hidden = spec.n_agents, spec.obs_dim, spec.n_actions, config.hidden
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        index, mask = neighbourhood(spec.adjacency)
        self.recipient = torch.from_numpy(index[:, 1:])  # (N, K-1): who i can pay
        self.slot_mask = torch.from_numpy(mask[:, 1:]).float()  # (N, K-1)
        slots = self.recipient.shape[1]
        layer1, layer2 = AgentLinear(n, d, hidden, self.gen), AgentLinear(n, hidden, a, self.gen)
        self.policy = nn.ParameterDict(
            {"w1": layer1.weight, "b1": layer1.bias, "w2": layer2.weight, "b2": layer2.bias}
        )
        self.incentive = nn.Sequential(
            AgentLinear(n, d + slots * a, hidden, self.gen),
            nn.ReLU(),
            AgentLinear(n, hidden, slots, self.gen),
        )
        self.policy_optim = torch.optim.RMSprop(
            self.policy.parameters(), lr=config.lr, alpha=config.rms_alpha, eps=config.rms_eps
        )
        self.incentive_optim = torch.optim.RMSprop(
            self.incentive.parameters(),
            lr=config.lr_incentive,
            alpha=config.rms_alpha,
            eps=config.rms_eps,
        )
        self.critic = nn.Sequential(
            AgentLinear(n, d, hidden, self.gen), nn.ReLU(), AgentLinear(n, hidden, 1, self.gen)
        )
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=config.lr_value)
        self.schedule = EpsilonSchedule(config.eps_start, config.eps_decay, config.eps_end)
        self.rollout = Rollout()
        self.episodes = 0
        self.updates = 0
        # The last policy step, replayed by the next incentive step.
        self._prev_batch: RolloutBatch | None = None
        self._prev_params: PolicyParams = {}
        self._prev_step_size: PolicyParams = {}
        self._prev_offset = torch.zeros(0)  # its gamma V(s') - V(s) (critic advantage)
        self.eval_gen = torch.Generator()  # evaluation draws; reseeded at every episode start
        self.eval_seed = seed  # kept in the state dict, so a resumed run evaluates alike

    # --- incentives -------------------------------------------------------------------------

    def incentives(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """What every agent pays each neighbour slot, in ``[0, R_max]``.

        Args:
            obs: ``(T, N, D)`` observations of the givers.
            actions: ``(T, N)`` actions of all agents at the same steps.

        Returns:
            ``(T, N, K-1)``; padded slots pay 0.
        """
        onehot = F.one_hot(actions, self.spec.n_actions).float()  # (T, N, A)
        nbr_actions = onehot[:, self.recipient] * self.slot_mask[None, :, :, None]
        x = torch.cat([obs, nbr_actions.flatten(2)], dim=-1)
        return torch.sigmoid(self.incentive(x)) * self.config.r_max * self.slot_mask

    def received(self, paid: torch.Tensor) -> torch.Tensor:
        """``(T, N, K-1)`` payments -> ``(T, N)`` total each agent receives."""
        t = paid.shape[0]
        out = torch.zeros(t, self.spec.n_agents, dtype=paid.dtype)
        return out.index_add(1, self.recipient.flatten(), paid.flatten(1))

    # --- policy gradient pieces -------------------------------------------------------------

    def _advantage(self, reward: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """``(T, M)`` advantages, linear in ``reward`` (the lookahead differentiates through it).

        With the critic: the TD error ``reward + offset``, ``offset = gamma V(s') - V(s)``
        (:meth:`critic_offset`). Without: reward-to-go within the segment minus its mean
        (``offset`` unused).
        """
        if self.config.critic:
            return reward + offset
        returns = discounted_returns(reward, torch.zeros(reward.shape[1]), self.config.gamma)
        return returns - returns.mean(0, keepdim=True)

    def _values(self, net: nn.Module, batch: RolloutBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """``V(s_t)`` and ``V(s_{t+1})``, each ``(T, N)``, of ``net`` on a segment."""
        after = torch.cat([batch.obs[1:], batch.next_obs[None]])
        return net(batch.obs).squeeze(-1), net(after).squeeze(-1)

    @torch.no_grad()
    def critic_offset(self, batch: RolloutBatch) -> torch.Tensor:
        """``(T, N)`` ``gamma V(s') - V(s)``; the time limit bootstraps from ``V(s_T)``."""
        if not self.config.critic:
            return torch.zeros(batch.steps, self.spec.n_agents)
        value, value_next = self._values(self.critic, batch)
        return self.config.gamma * value_next - value

    def _update_critic(self, batch: RolloutBatch, total: torch.Tensor) -> dict[str, float]:
        """One Adam step of every critic on TD(0) targets ``r + gamma V_target(s')``.

        As LIO's ``lio_ac.py``: the critic values the reward the agent learns from
        (extrinsic plus incentives received); the target copy follows by ``tau``.
        """
        with torch.no_grad():
            _, target_next = self._values(self.critic_target, batch)
            target = total + self.config.gamma * target_next
        value = self.critic(batch.obs).squeeze(-1)
        loss = (target - value).pow(2).mean(0).sum()
        self.critic_optim.zero_grad()
        loss.backward()
        self.critic_optim.step()
        with torch.no_grad():
            for p, q in zip(self.critic.parameters(), self.critic_target.parameters()):
                q.lerp_(p, self.config.tau)
        n = self.spec.n_agents
        return {"value_loss": loss.item() / n, **critic_fit(target, value.detach())}

    def _surrogate(
        self,
        params: Mapping[str, torch.Tensor],
        obs: torch.Tensor,
        mask: torch.Tensor,
        actions: torch.Tensor,
        advantage: torch.Tensor,
    ) -> torch.Tensor:
        """Per parameter set ``m``: ``mean_t log pi(a_t) A_t + c_H * entropy``, shape ``(M,)``."""
        log_probs = torch.log_softmax(masked_logits(policy_logits(params, obs), mask), -1)
        log_pi = log_probs.gather(-1, actions[..., None]).squeeze(-1)
        entropy = -(log_probs.exp() * log_probs.masked_fill(~mask, 0.0)).sum(-1)
        return (log_pi * advantage + self.config.entropy_coef * entropy).mean(0)

    def _step_size(self) -> PolicyParams:
        """RMSProp's per-weight step ``lr / (sqrt(v) + eps)`` after the last policy step."""
        cfg = self.config
        out = {}
        for name, p in self.policy.items():
            v = self.policy_optim.state[p]["square_avg"]
            out[name] = cfg.lr / (v.sqrt() + cfg.rms_eps)
        return out

    # --- controller protocol ----------------------------------------------------------------

    @property
    def exploration_rate(self) -> float:
        """Epsilon of the current training episode."""
        return self.schedule.value(self.episodes)

    def act(self, step: TimeStep, *, explore: bool) -> np.ndarray:
        """Sample the policies with epsilon-random legal actions (explore), else evaluate.

        Evaluation (epsilon 0) samples the policies as LIO's authors do, or takes
        their argmax with ``eval_sample = false`` (:func:`evaluation_actions`).
        """
        mask = torch.from_numpy(np.asarray(step.action_mask, bool))
        with torch.no_grad():
            obs = torch.from_numpy(step.obs).float()[None]
            logits = masked_logits(policy_logits(dict(self.policy), obs)[0], mask)
        if not explore:
            if step.t == 0:
                self.eval_gen.manual_seed(self.eval_seed)
            return evaluation_actions(
                logits, sample=self.config.eval_sample, generator=self.eval_gen
            )
        sampled = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.gen)[:, 0]
        uniform = np.where(step.action_mask, self.rng.random(mask.shape), -1.0).argmax(-1)
        random_pick = self.rng.random(self.spec.n_agents) < self.exploration_rate
        return np.where(random_pick, uniform, sampled.numpy()).astype(np.int64)

    def observe(self, transition: Transition) -> dict[str, float]:
        """Store the step; at a segment or episode end run the incentive then the policy step."""
        step, nxt = transition.step, transition.next_step
        self.rollout.add(step.obs, step.action_mask, transition.actions, nxt.reward)
        if nxt.done:
            self.episodes += 1
        if len(self.rollout) < self.config.n_steps and not nxt.done:
            return {}
        batch = self.rollout.take(nxt.obs, nxt.action_mask, nxt.done)
        stats = self._update_incentives(batch) if self._prev_batch is not None else {}
        stats.update(self._update_policies(batch))
        stats["epsilon"] = self.exploration_rate
        return stats

    def _update_policies(self, batch: RolloutBatch) -> dict[str, float]:
        """One RMSProp policy-gradient step on ``r + incentives received``."""
        with torch.no_grad():
            paid = self.incentives(batch.obs, batch.actions)
            total = batch.reward * self.config.reward_scale + self.received(paid)
        stats = self._update_critic(batch, total) if self.config.critic else {}
        self._prev_offset = self.critic_offset(batch)
        advantage = self._advantage(total, self._prev_offset)
        self._prev_params = {k: p.detach().clone() for k, p in self.policy.items()}
        surrogate = self._surrogate(
            dict(self.policy), batch.obs, batch.action_mask, batch.actions, advantage
        )
        self.policy_optim.zero_grad()
        (-surrogate.sum()).backward()
        self.policy_optim.step()
        self._prev_step_size = self._step_size()
        self._prev_batch = batch
        self.updates += 1
        return {
            "policy_objective": surrogate.mean().item(),
            "incentive_paid": paid.sum(-1).mean().item(),
            **stats,
        }

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(giver, recipient) pairs, one per neighbour slot: ``giver``, ``recipient``, ``mask``.

        All ``(N (K-1),)``; pair ``m = i (K-1) + s`` is giver ``i``'s slot ``s``.
        """
        n, slots = self.recipient.shape
        giver = torch.arange(n).repeat_interleave(slots)
        return giver, self.recipient.flatten(), self.slot_mask.flatten()

    def lookahead(self, old: RolloutBatch) -> tuple[PolicyParams, torch.Tensor]:
        """Replay the last policy step once per (giver, recipient) pair, differentiably.

        Pair ``m = (i, j)`` gets its own copy of ``theta_j`` (from before the last
        step), updated on ``old`` with ``j``'s full reward as value but only
        ``i``'s payment to ``j`` carrying gradient. The copies' values equal the
        real updated ``theta_j``.

        Returns:
            ``({name: (M, ...)} updated copies, (T, N, K-1) payments on old)``.
        """
        _, rec, _ = self.pairs()
        paid = self.incentives(old.obs, old.actions)  # differentiable in phi
        received = self.received(paid.detach())
        own = paid.flatten(1)  # (T, M): what giver i paid recipient j
        extrinsic = old.reward * self.config.reward_scale
        total = extrinsic[:, rec] + received[:, rec] + (own - own.detach())
        advantage = self._advantage(total, self._prev_offset[:, rec])
        copies = {k: v[rec].clone().requires_grad_(True) for k, v in self._prev_params.items()}
        inner = self._surrogate(
            copies, old.obs[:, rec], old.action_mask[:, rec], old.actions[:, rec], advantage
        )
        grads = torch.autograd.grad(inner.sum(), list(copies.values()), create_graph=True)
        updated = {k: copies[k] + self._prev_step_size[k][rec] * g for k, g in zip(copies, grads)}
        return updated, paid

    def incentive_loss(self, old: RolloutBatch, new: RolloutBatch) -> torch.Tensor:
        """LIO's incentive objective (negated), differentiable in the incentive parameters.

        Every giver ``i`` scores its recipients' ``new`` actions under their
        looked-ahead policies (:meth:`lookahead`) with its own extrinsic return
        on ``new``, and pays ``alpha_theta`` per unit of incentive given on ``old``.

        Args:
            old: the segment the last policy step learned from (``tau_{k-1}``).
            new: the segment played with the updated policies (``tau_k``).
        """
        cfg = self.config
        giver, rec, pair_mask = self.pairs()
        updated, paid = self.lookahead(old)
        extrinsic = new.reward * cfg.reward_scale
        giver_advantage = self._advantage(extrinsic, self.critic_offset(new))[:, giver]  # (T, M)
        logits = masked_logits(policy_logits(updated, new.obs[:, rec]), new.action_mask[:, rec])
        log_pi = torch.log_softmax(logits, -1).gather(-1, new.actions[:, rec, None]).squeeze(-1)
        objective = ((log_pi * giver_advantage).mean(0) * pair_mask).sum()
        cost = paid.sum(-1).mean(0).sum()
        return -objective + cfg.alpha_theta * cost

    def _update_incentives(self, new: RolloutBatch) -> dict[str, float]:
        """One RMSProp step of every incentive function on :meth:`incentive_loss`."""
        assert self._prev_batch is not None
        loss = self.incentive_loss(self._prev_batch, new)
        self.incentive_optim.zero_grad()
        loss.backward()
        self.incentive_optim.step()
        return {"incentive_loss": loss.item()}

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimisers, the last policy step (for the incentive step), counters, RNGs."""
        prev = self._prev_batch
        return {
            "policy": self.policy.state_dict(),
            "incentive": self.incentive.state_dict(),
            "policy_optim": self.policy_optim.state_dict(),
            "incentive_optim": self.incentive_optim.state_dict(),
            "prev_batch": None
            if prev is None
            else {
                "obs": prev.obs,
                "action_mask": prev.action_mask,
                "actions": prev.actions,
                "reward": prev.reward,
                "next_obs": prev.next_obs,
                "next_action_mask": prev.next_action_mask,
                "done": prev.done,
            },
            "prev_params": dict(self._prev_params),
            "prev_step_size": dict(self._prev_step_size),
            "prev_offset": self._prev_offset,
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "critic_optim": self.critic_optim.state_dict(),
            "episodes": self.episodes,
            "updates": self.updates,
            "torch_rng": self.gen.get_state(),
            "eval_seed": self.eval_seed,
            "np_rng": rng_state(self.rng),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; an unfinished segment is dropped."""
        self.policy.load_state_dict(state["policy"])
        self.incentive.load_state_dict(state["incentive"])
        self.policy_optim.load_state_dict(state["policy_optim"])
        self.incentive_optim.load_state_dict(state["incentive_optim"])
        prev = state["prev_batch"]
        self._prev_batch = None if prev is None else RolloutBatch(**prev)
        self._prev_params = dict(state["prev_params"])
        self._prev_step_size = dict(state["prev_step_size"])
        self._prev_offset = state["prev_offset"]
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.critic_optim.load_state_dict(state["critic_optim"])
        self.episodes = int(state["episodes"])
        self.updates = int(state["updates"])
        self.gen.set_state(state["torch_rng"])
        self.eval_seed = int(state.get("eval_seed", self.seed))
        restore_rng(self.rng, state["np_rng"])
        self.rollout.clear()
