"""QMIX: per-agent GRU Q-networks mixed monotonically into a team value.

Paper: T. Rashid, M. Samvelyan, C. Schroeder de Witt, G. Farquhar, J. Foerster,
S. Whiteson, "QMIX: Monotonic Value Function Factorisation for Deep Multi-Agent
Reinforcement Learning", ICML 2018.

* Agent network (parameters shared by all agents, as in the paper): input is the
  observation, the agent's last action (one-hot) and its id (one-hot); then
  ``Linear -> ReLU -> GRUCell -> Linear`` gives ``Q_i(tau_i, .)``.
* Mixer: hypernetworks read the global state ``s`` (``step.state``) and emit the
  weights of a two-layer network ``Q_tot = w2 . elu(W1^T q + b1) + b2``; the
  weights pass through ``abs`` so ``dQ_tot / dQ_i >= 0`` (monotonic), hence the
  greedy joint action is every agent's own greedy action.
* Trained end to end by one-step TD on the team reward (mean raw reward over
  agents, scaled), double-Q targets from a target copy refreshed every 200 updates, on
  sequences sampled from an episode replay. An episode ending at the time limit
  is not terminal (PyMARL's runner marks ``episode_limit`` as not terminated):
  the last step bootstraps from the state after it, as the other learners here.

Updates: after every episode, ``updates_per_episode`` gradient steps, each on
``batch_size`` windows of ``burn_in_steps + train_steps`` consecutive steps cut
from stored episodes. The GRU starts from zero at the window start and the first
``burn_in_steps`` steps only warm it up (no loss), as R2D2's burn-in does. PyMARL
instead makes one step per episode on whole episodes, which suits its short
episodes and millions of steps; with 360-step traffic episodes and a budget of
tens of episodes that is tens of gradient steps in a run, too few to move the
agents' Q away from their initial values (measured on grid6x6: training travel
time rose from 941 s to 2,066 s as epsilon fell, since the greedy policy of an
untrained network holds one phase). 24 steps of 16 windows of 20 trained steps
replay each stored transition about as often as Table 4's DQN/DGN rounds do
(1,000 / 20 = 50 steps of 20 transitions per 50 decisions).

Choices not fixed by Table 6 (stated here): gamma 0.99, RMSProp constants,
gradient clip 10 and batch of 16 follow the authors' PyMARL defaults;
the epsilon schedule and buffer size are Table 4's traffic values (Table 4 is DQN's, DGN's
and IP's; Table 6 gives QMIX none); the target networks are hard copies of the online ones
every 200 updates, PyMARL's ``target_update_interval`` (Table 4's soft tau 0.1 per update,
the default until issue 14's sixth session, let the targets follow the online networks within
an episode, and QMIX's team value then diverged on one grid6x6 seed in five: ``Q_tot`` rose
above zero while every reward is negative, and the policy collapsed). The price is a slow
start: the team value moves about one bootstrap step per copy (every 8.3 episodes), and some
seeds stay jammed for 60-90 episodes before they learn, so QMIX's budget is 200 episodes
(measured: grid6x6 and Shenzhen, 3 seeds each, issue 14's results); the
mixing-weight hypernetworks start at a tenth of the orthogonal scale (ours, see
``hyper_init_gain``); the update cadence above is ours. ``mixer = "vdn"`` swaps the
mixer for VDN's plain sum (no state terms, no parameters), a diagnostic of whether the
agents' utilities learn when the state cannot carry the team value. ``max_repeat = N``
(default 0, off) bounds how long an agent may repeat one action, a maximum green in traffic;
it applies in acting and in the legal sets of the stored episodes (so the double-Q target
maximises over the actions the policy could take), a diagnostic of issue 14's collapsed runs,
which hold phases for minutes.
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

from ltos_traffic.controllers.base import register
from ltos_traffic.learning.exploration import EpsilonSchedule, RepeatLimit, epsilon_greedy
from ltos_traffic.learning.nn import Polyak
from ltos_traffic.learning.rng import restore_rng, rng_state
from ltos_traffic.types import EnvSpec, TimeStep, Transition

MIXERS = ("qmix", "vdn")


@dataclass(frozen=True)
class QMIXConfig:
    """QMIX hyperparameters (defaults: Table 6, Traffic-6x6 column)."""

    lr: float = 5e-4  # RMSProp learning rate; Table 6: 5e-3 / 5e-5 / 5e-4 / 5e-4
    hidden: int = 16  # MLP and GRU hidden units; Table 6: 20 / 512 / 16 / 16
    mixing_embed: int = 16  # mixer hidden units (hypernet layer 1 is N x this, layer 2 this);
    # Table 6: 20 / 512 / 16 / 16
    gamma: float = 0.99  # discount per decision step; PyMARL default (Table 6 gives none)
    batch_size: int = 16  # sequences per update; PyMARL uses 32 episodes (Table 6 gives none)
    updates_per_episode: int = 24  # gradient steps after each training episode (ours)
    train_steps: int = 20  # steps of a sampled sequence that carry loss (ours)
    burn_in_steps: int = 10  # GRU warm-up steps before them, no loss (ours, after R2D2)
    buffer_capacity: int = 10_000  # transitions kept, as whole episodes; Table 4 traffic 10,000
    tau: float = 0.1  # soft target-update rate per update (target_update_interval = 0 only);
    # Table 4 traffic 0.1 (DQN's, DGN's and IP's)
    target_update_interval: int = 200  # N > 0: copy the online networks into the targets every
    # N updates (PyMARL: every 200 episodes at one update per episode, i.e. 200 updates);
    # 0: soft update with tau after every update (Table 4's rule; the default until issue 14)
    eps_start: float = 0.4  # epsilon of the first episode; Table 4 traffic 0.4
    eps_decay: float = 0.9  # epsilon factor per episode; Table 4 traffic 0.9
    eps_end: float = 0.05  # epsilon floor; Table 4 traffic 0.05
    max_grad_norm: float = 10.0  # gradient-norm clip; PyMARL default 10
    reward_scale: float = 0.1  # multiplier on the team reward (not in the paper)
    hyper_init_gain: float = 0.1  # orthogonal gain of the mixing-weight hypernets (ours)
    mixer: str = "qmix"  # "qmix": the monotonic hypernetwork mixer; "vdn": Q_tot = sum of Q_i
    # (Sunehag et al. 2018, no state), a diagnostic: can the agents learn without the state terms?
    max_repeat: int = 0  # 0: no limit; N > 0: no agent chooses one action more than N decisions
    # in a row (traffic: a max green of N decision intervals), in acting and in the double-Q
    # target's legal actions (ours, not the paper's; see RepeatLimit)

    def __post_init__(self) -> None:
        """Reject settings no run can use (``--set`` turns these into a one-line error)."""
        if self.mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {self.mixer!r}")
        if self.max_repeat < 0:
            raise ValueError(
                f"max_repeat must be 0 (no limit) or a positive number of decisions, got"
                f" {self.max_repeat}"
            )
        if self.target_update_interval < 0:
            raise ValueError(
                "target_update_interval must be 0 (soft updates) or a positive number of updates,"
                f" got {self.target_update_interval}"
            )


class AgentRNN(nn.Module):
    """Shared per-agent recurrent Q-network: ``(obs, last action, id) -> Q(., a)``."""

    def __init__(self, in_dim: int, hidden: int, n_actions: int) -> None:
        super().__init__()
        self.fc_in = nn.Linear(in_dim, hidden)
        self.gru = nn.GRUCell(hidden, hidden)
        self.fc_out = nn.Linear(hidden, n_actions)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(M, in)``, ``h`` ``(M, hidden)`` -> Q-values ``(M, A)`` and new ``h``."""
        h = self.gru(torch.relu(self.fc_in(x)), h)
        return self.fc_out(h), h


class MonotonicMixer(nn.Module):
    """QMIX mixer: ``Q_tot(q, s)`` non-decreasing in every ``q_i`` for any state ``s``."""

    def __init__(self, n_agents: int, state_dim: int, embed: int) -> None:
        super().__init__()
        self.n_agents, self.embed = n_agents, embed
        self.hyper_w1 = nn.Linear(state_dim, n_agents * embed)
        self.hyper_b1 = nn.Linear(state_dim, embed)
        self.hyper_w2 = nn.Linear(state_dim, embed)
        self.hyper_b2 = nn.Sequential(nn.Linear(state_dim, embed), nn.ReLU(), nn.Linear(embed, 1))

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Mix agent values.

        Args:
            q: ``(B, N)`` chosen-action values of every agent.
            state: ``(B, S)`` global states.

        Returns:
            ``(B,)`` team values.
        """
        w1 = self.hyper_w1(state).abs().view(-1, self.n_agents, self.embed)
        b1 = self.hyper_b1(state)
        hidden = F.elu(torch.einsum("bn,bne->be", q, w1) + b1)
        w2 = self.hyper_w2(state).abs()
        return (hidden * w2).sum(-1) + self.state_value(state)

    def state_value(self, state: torch.Tensor) -> torch.Tensor:
        """``(B,)`` the term that reads the state alone, ``V(s)`` (PyMARL's last hypernet)."""
        return self.hyper_b2(state).squeeze(-1)


class SumMixer(nn.Module):
    """VDN's mixer: ``Q_tot = sum_i Q_i``, whatever the state (monotonic, no parameters)."""

    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` agent values and ``(B, S)`` states -> ``(B,)`` team values."""
        return q.sum(-1)

    def state_value(self, state: torch.Tensor) -> torch.Tensor:
        """``(B,)`` zeros: the sum has no state-only term."""
        return state.new_zeros(len(state))


class EpisodeBuffer:
    """Ring of whole episodes, padded to the episode length ``T``; ``filled`` marks real steps.

    Per episode: ``obs``/``state``/``mask`` for ``T + 1`` steps (the last is the
    final next step), ``actions``/``reward``/``filled`` for ``T`` steps.
    """

    FIELDS = ("obs", "state", "mask", "actions", "reward", "filled")

    def __init__(self, episodes: int, spec: EnvSpec) -> None:
        t, n = spec.episode_steps, spec.n_agents
        self.capacity = episodes
        self.arrays: dict[str, np.ndarray] = {
            "obs": np.zeros((episodes, t + 1, n, spec.obs_dim), np.float32),
            "state": np.zeros((episodes, t + 1, spec.state_dim), np.float32),
            "mask": np.ones((episodes, t + 1, n, spec.n_actions), bool),
            "actions": np.zeros((episodes, t, n), np.int64),
            "reward": np.zeros((episodes, t), np.float32),
            "filled": np.zeros((episodes, t), bool),
        }
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, episode: Mapping[str, np.ndarray]) -> None:
        """Store one episode, ``{field: array}`` for every field but ``filled``."""
        steps = len(episode["actions"])
        for name, target in self.arrays.items():
            target[self.pos] = 0 if name != "mask" else True
            if name != "filled":
                rows = episode[name]
                target[self.pos, : len(rows)] = rows
        self.arrays["filled"][self.pos, :steps] = True
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """``batch`` distinct episodes (fewer if fewer are stored), as tensors."""
        idx = rng.choice(self.size, size=min(batch, self.size), replace=False)
        return {name: torch.from_numpy(a[idx]) for name, a in self.arrays.items()}

    def sample_windows(
        self, batch: int, train_steps: int, burn_in: int, rng: np.random.Generator
    ) -> dict[str, torch.Tensor]:
        """``batch`` windows of ``L = burn_in + train_steps`` consecutive steps.

        Each window picks a stored episode, then its first trained step ``s``
        (uniform, so that ``train_steps`` real steps follow when the episode has
        them), and starts ``min(s, burn_in)`` steps earlier.

        Returns:
            ``obs``/``state``/``mask`` for ``L + 1`` steps, ``actions``/``reward``
            for ``L``, ``prev_action`` ``(B, N)`` (the action before the window,
            ``-1`` at an episode start) and ``train`` ``(B, L)``: the real steps
            at or after ``s``, which carry loss.
        """
        length = burn_in + train_steps
        horizon = self.arrays["actions"].shape[1]
        episodes = rng.integers(0, self.size, size=batch)
        steps = self.arrays["filled"][episodes].sum(1)  # real steps per episode
        first = (rng.random(batch) * np.maximum(steps - train_steps + 1, 1)).astype(np.int64)
        start = first - np.minimum(first, burn_in)
        t = start[:, None] + np.arange(length + 1)[None, :]  # (B, L + 1)
        rows, a = episodes[:, None], self.arrays
        t_act = np.minimum(t[:, :-1], horizon - 1)
        out = {
            "obs": a["obs"][rows, np.minimum(t, horizon)],
            "state": a["state"][rows, np.minimum(t, horizon)],
            "mask": a["mask"][rows, np.minimum(t, horizon)],
            "actions": a["actions"][rows, t_act],
            "reward": a["reward"][rows, t_act],
            "prev_action": np.where(
                (start > 0)[:, None], a["actions"][episodes, np.maximum(start - 1, 0)], -1
            ),
            "train": (t[:, :-1] >= first[:, None])
            & (t[:, :-1] < np.minimum(first + train_steps, steps)[:, None]),
        }
        return {name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in out.items()}

    def state_dict(self) -> dict[str, Any]:
        """Stored episodes and write position."""
        rows = {name: torch.from_numpy(a[: self.size].copy()) for name, a in self.arrays.items()}
        return {"pos": self.pos, "size": self.size, "arrays": rows}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.size = min(int(state["size"]), self.capacity)
        self.pos = int(state["pos"]) % self.capacity
        for name, target in self.arrays.items():
            target[: self.size] = state["arrays"][name].numpy()[: self.size]


@register("qmix")
class QMIX:
    """QMIX controller: decentralised GRU agents, centralised monotonic mixing in training."""

    Config: ClassVar[type] = QMIXConfig
    learns: ClassVar[bool] = True

    def __init__(self, spec: EnvSpec, config: QMIXConfig, seed: int) -> None:
        self.spec, self.config, self.seed = spec, config, seed
        n, a = spec.n_agents, spec.n_actions
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.agent = AgentRNN(spec.obs_dim + a + n, config.hidden, a)
        self.mixer: MonotonicMixer | SumMixer = (
            MonotonicMixer(n, spec.state_dim, config.mixing_embed)
            if config.mixer == "qmix"
            else SumMixer()
        )
        for module in (self.agent, self.mixer):  # Table 6: orthogonal initializer
            for p in module.parameters():
                if p.dim() == 2:
                    nn.init.orthogonal_(p, generator=self.gen)
                else:
                    nn.init.zeros_(p)
        with torch.no_grad():
            # Small mixing weights at the start: with a wide state (36 x 28 values in the
            # 6x6 grid) gain-1 hypernetworks make |W1|, |w2| large, Q_tot starts far from
            # the returns and the first RMSProp steps blow the TD error up (measured).
            if isinstance(self.mixer, MonotonicMixer):
                for layer in (self.mixer.hyper_w1, self.mixer.hyper_w2):
                    layer.weight.mul_(config.hyper_init_gain)
        self.target_agent = copy.deepcopy(self.agent)
        self.target_mixer = copy.deepcopy(self.mixer)
        self.polyak = (Polyak(self.target_agent, self.agent), Polyak(self.target_mixer, self.mixer))
        self.params = [*self.agent.parameters(), *self.mixer.parameters()]
        self.optim = torch.optim.RMSprop(self.params, lr=config.lr, alpha=0.99, eps=1e-5)
        self.schedule = EpsilonSchedule(config.eps_start, config.eps_decay, config.eps_end)
        self.buffer = EpisodeBuffer(max(1, config.buffer_capacity // spec.episode_steps), spec)
        self.agent_ids = torch.eye(n)
        self.episodes = 0
        self.updates = 0
        self.hidden = torch.zeros(n, config.hidden)
        self.last_action = torch.zeros(n, a)
        # the repeat limit as acting applies it, and as the stored episode replays it
        self.act_limit = RepeatLimit(n, config.max_repeat)
        self.replay_limit = RepeatLimit(n, config.max_repeat)
        self._episode: dict[str, list[np.ndarray]] = {name: [] for name in EpisodeBuffer.FIELDS}

    def _inputs(self, obs: torch.Tensor, last_action: torch.Tensor) -> torch.Tensor:
        """Agent-network input ``(..., N, D + A + N)``."""
        ids = self.agent_ids.expand(*obs.shape[:-1], -1)
        return torch.cat([obs, last_action, ids], dim=-1)

    @property
    def exploration_rate(self) -> float:
        """Epsilon of the current training episode."""
        return self.schedule.value(self.episodes)

    def act(self, step: TimeStep, *, explore: bool) -> np.ndarray:
        """Epsilon-greedy (explore) or greedy legal actions from the agents' GRU Q-values.

        Legal: allowed by ``step.action_mask`` and by the repeat limit (``max_repeat``).
        """
        if step.t == 0:
            self.hidden = torch.zeros_like(self.hidden)
            self.last_action = torch.zeros_like(self.last_action)
            self.act_limit.reset()
        with torch.no_grad():
            x = self._inputs(torch.from_numpy(step.obs).float(), self.last_action)
            q, self.hidden = self.agent(x, self.hidden)
        eps = self.exploration_rate if explore else 0.0
        actions = epsilon_greedy(q.numpy(), self.act_limit.legal(step.action_mask), eps, self.rng)
        self.act_limit.record(actions)
        self.last_action = F.one_hot(torch.from_numpy(actions), self.spec.n_actions).float()
        return actions

    def observe(self, transition: Transition) -> dict[str, float]:
        """Append to the running episode; at its end store it, decay epsilon and update."""
        step, nxt = transition.step, transition.next_step
        ep = self._episode
        if step.t == 0:
            for rows in ep.values():
                rows.clear()
            self.replay_limit.reset()
        ep["obs"].append(step.obs)
        ep["state"].append(step.state)
        ep["mask"].append(self.replay_limit.legal(step.action_mask))
        ep["actions"].append(np.asarray(transition.actions, np.int64))
        self.replay_limit.record(transition.actions)
        ep["reward"].append(np.asarray(nxt.reward.mean() * self.config.reward_scale, np.float32))
        if not nxt.done:
            return {}
        episode = {name: np.stack(rows) for name, rows in ep.items() if name != "filled"}
        episode["obs"] = np.concatenate([episode["obs"], nxt.obs[None]])
        episode["state"] = np.concatenate([episode["state"], nxt.state[None]])
        episode["mask"] = np.concatenate(
            [episode["mask"], self.replay_limit.legal(nxt.action_mask)[None]]
        )
        self.buffer.add(episode)
        for rows in ep.values():
            rows.clear()
        self.episodes += 1
        runs = [self._update() for _ in range(self.config.updates_per_episode)]
        stats = {key: float(np.mean([r[key] for r in runs])) for key in runs[0]} if runs else {}
        stats["epsilon"] = self.exploration_rate
        return stats

    def _unroll(
        self, agent: AgentRNN, obs: torch.Tensor, actions: torch.Tensor, prev: torch.Tensor
    ) -> torch.Tensor:
        """Q-values of every step of a batch of sequences, GRU from zero at the first step.

        Args:
            agent: online or target agent network.
            obs: ``(B, L + 1, N, D)``.
            actions: ``(B, L, N)`` (the last-action input of step ``t + 1``).
            prev: ``(B, N)`` the last-action input of step 0 (``-1``: none).

        Returns:
            ``(B, L + 1, N, A)`` Q-values.
        """
        b, steps, n, _ = obs.shape
        a = self.spec.n_actions
        onehot = F.one_hot(actions, a).float()
        first = F.one_hot(prev.clamp(min=0), a).float() * (prev >= 0)[..., None]
        last = torch.cat([first[:, None], onehot], dim=1)  # (B, L + 1, N, A)
        x = self._inputs(obs, last).reshape(b, steps, n, -1)
        h = torch.zeros(b * n, self.config.hidden)
        out = []
        for t in range(steps):  # time is sequential; sequences and agents are one batch
            q, h = agent(x[:, t].reshape(b * n, -1), h)
            out.append(q.view(b, n, -1))
        return torch.stack(out, dim=1)

    def td_terms(
        self, batch: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``Q_tot``, its TD target ``y = r + gamma * Q_tot'(s', argmax Q)`` and the loss mask.

        Args:
            batch: windows from :meth:`EpisodeBuffer.sample_windows`.

        Returns:
            ``(B, L)`` each: ``Q_tot`` (differentiable), ``y`` and ``train`` as float.
        """
        cfg = self.config
        obs, state, mask = batch["obs"], batch["state"], batch["mask"]
        actions, prev = batch["actions"], batch["prev_action"]
        q_all = self._unroll(self.agent, obs, actions, prev)  # (B, L + 1, N, A)
        q_taken = q_all[:, :-1].gather(-1, actions[..., None]).squeeze(-1)  # (B, L, N)
        b, steps = actions.shape[:2]
        q_tot = self.mixer(q_taken.reshape(b * steps, -1), state[:, :-1].reshape(b * steps, -1))
        with torch.no_grad():
            q_next_online = q_all[:, 1:].masked_fill(~mask[:, 1:], float("-inf"))
            next_actions = q_next_online.argmax(-1, keepdim=True)  # double Q
            q_target = self._unroll(self.target_agent, obs, actions, prev)
            q_next = q_target[:, 1:].gather(-1, next_actions).squeeze(-1)
            target_tot = self.target_mixer(
                q_next.reshape(b * steps, -1), state[:, 1:].reshape(b * steps, -1)
            ).view(b, steps)
            # The time limit is not terminal: every real step bootstraps. Burn-in steps
            # and steps past the episode end carry no loss.
            y = batch["reward"] + cfg.gamma * target_tot
        return q_tot.view(b, steps), y, batch["train"].float()

    def _update(self) -> dict[str, float]:
        """One TD step on ``batch_size`` sampled sequences."""
        cfg = self.config
        batch = self.buffer.sample_windows(
            cfg.batch_size, cfg.train_steps, cfg.burn_in_steps, self.rng
        )
        q_tot, y, train = self.td_terms(batch)
        count = train.sum().clamp(min=1.0)
        loss = ((q_tot - y) * train).pow(2).sum() / count
        self.optim.zero_grad()
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
        self.optim.step()
        self.updates += 1
        interval = cfg.target_update_interval
        if not interval or self.updates % interval == 0:
            for polyak in self.polyak:
                polyak(cfg.tau if not interval else 1.0)  # lerp with weight 1 copies exactly
        q_mean = (q_tot.detach() * train).sum() / count
        return {"td_loss": loss.item(), "q_tot": q_mean.item(), "grad_norm": float(grad_norm)}

    def state_dict(self) -> dict[str, Any]:
        """Networks, targets, optimiser, episode replay, counters and RNG states."""
        return {
            "agent": self.agent.state_dict(),
            "mixer": self.mixer.state_dict(),
            "target_agent": self.target_agent.state_dict(),
            "target_mixer": self.target_mixer.state_dict(),
            "optim": self.optim.state_dict(),
            "buffer": self.buffer.state_dict(),
            "episodes": self.episodes,
            "updates": self.updates,
            "torch_rng": self.gen.get_state(),
            "np_rng": rng_state(self.rng),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; the running episode starts afresh."""
        self.agent.load_state_dict(state["agent"])
        self.mixer.load_state_dict(state["mixer"])
        self.target_agent.load_state_dict(state["target_agent"])
        self.target_mixer.load_state_dict(state["target_mixer"])
        self.optim.load_state_dict(state["optim"])
        self.buffer.load_state_dict(state["buffer"])
        self.episodes = int(state["episodes"])
        self.updates = int(state["updates"])
        self.gen.set_state(state["torch_rng"])
        restore_rng(self.rng, state["np_rng"])
        for rows in self._episode.values():
            rows.clear()
