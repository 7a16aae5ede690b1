"""Joint-replay Q-learning shared by DQN, DGN and LToS's low level.

One class holds what the three have in common: masked epsilon-greedy acting
with one batched forward for all agents, a joint replay buffer, TD updates with
a soft-updated target network, and a state dict that resumes exactly. Each
method supplies its Q-network (``_make_q_net``); LToS also reshapes the reward
and conditions the network on the sharing weights (``_learning_inputs``).

Table 4's "sample size" is read as in Wei et al. (2019), whose traffic setting
the appendix adopts: every ``update_every_steps`` decisions, ``sample_size``
joint transitions are drawn without replacement and cut into minibatches of
``batch_size``, one gradient step each (1,000 / 20 = 50 steps per round in
traffic; 10 / 10 = one step per round in the grid-worlds).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ltos_traffic.learning.buffer import Batch, ReplayBuffer
from ltos_traffic.learning.exploration import EpsilonSchedule, epsilon_greedy
from ltos_traffic.learning.nn import FlatOptimizer, Polyak, init_normal_, masked_max
from ltos_traffic.learning.rng import restore_rng, rng_state
from ltos_traffic.types import EnvSpec, TimeStep, Transition, neighbourhood

OPTIMIZERS = ("rmsprop", "adam", "sgd")


@dataclass(frozen=True)
class QConfig:
    """Low-level hyperparameters; defaults are Table 4's Traffic-6x6 column."""

    gamma: float = 0.8  # discount per decision step (Table 4: 0.99 / 0.96 / 0.8 / 0.8)
    lr: float = 1e-3  # learning rate (Table 4: 1e-3 / 1e-4 / 1e-3 / 1e-3)
    optimizer: str = "rmsprop"  # "rmsprop" | "adam" | "sgd" (Table 4: Adam toys, RMSProp traffic)
    batch_size: int = 20  # joint transitions per gradient step (Table 4: 10 / 10 / 20 / 20)
    sample_size: int = 1000  # joint transitions per update round (Table 4: 10 / 10 / 1,000)
    update_every_steps: int = 50  # decisions between update rounds (ours: ~1 step per decision)
    buffer_capacity: int = 10_000  # joint transitions kept (Table 4: 200,000 toys, 10,000 traffic)
    tau: float = 0.1  # soft target update per gradient step (Table 4: 0.1 / 0.01 / 0.1 / 0.1)
    eps_start: float = 0.4  # epsilon of episode 0 (Table 4: 0.8 / 0.6 / 0.4 / 0.4)
    eps_decay: float = 0.9  # epsilon factor per episode (Table 4: 1 / 0.996 / 0.9 / 0.9)
    eps_end: float = 0.05  # epsilon floor (Table 4: 0.8 / 0.01 / 0.05 / 0.05)
    episodes_per_round: int = 1  # episodes per exploration round: epsilon decays once a round
    # (Table 4 literally: 1, per episode; the LToS release: 4 parallel generator episodes a round)
    hidden: tuple[int, ...] = (32, 32)  # encoder MLP units (Table 4: 32&32 / 512&128 / 32&32)
    init_std: float = 0.05  # std of the random-normal initialiser (Table 4: "random normal")
    reward_scale: float = 1.0  # factor on raw rewards before learning (scenario sets it)
    terminal_on_done: bool = False  # False: episode ends are time limits, so bootstrap through

    def __post_init__(self) -> None:
        """Reject values no run can use (``--set`` turns this into a one-line error)."""
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for key in (
            "batch_size",
            "sample_size",
            "update_every_steps",
            "buffer_capacity",
            "episodes_per_round",
        ):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be at least 1")
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 < self.tau <= 1.0:
            raise ValueError("gamma must lie in [0, 1] and tau in (0, 1]")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError("hidden needs at least one positive layer size")


class QLearner:
    """Independent-or-graph Q-learning over joint transitions (see the module docstring).

    Subclasses set ``Config`` and implement :meth:`_make_q_net`, a module mapping
    ``(obs (B, N, D), edges (B, N, K, F) or None)`` to Q-values ``(B, N, A)``.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type] = QConfig
    learns: ClassVar[bool] = True
    # observe() stores the transition and nothing act() left behind, so episodes may be
    # acted in worker processes; a subclass whose _step_extras read such state must say
    # False or provide acting_state/load_acting_state (LToS does)
    parallel_rollouts: ClassVar[bool] = True

    def __init__(self, spec: EnvSpec, config: QConfig, seed: int) -> None:
        """Build networks, optimiser and buffer, all seeded from ``seed``."""
        self.spec = spec
        self.config = config
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        index, mask = neighbourhood(spec.adjacency)
        self.nbr_index = torch.as_tensor(index, dtype=torch.long)  # (N, K), self first
        self.nbr_mask = torch.as_tensor(mask)  # (N, K)
        self.q_net = self._make_q_net()
        init_normal_(self.q_net, self.generator, config.init_std)
        self.q_target = copy.deepcopy(self.q_net).requires_grad_(False)
        self.q_polyak = Polyak(self.q_target, self.q_net)
        self.q_optim = FlatOptimizer(config.optimizer, list(self.q_net.parameters()), config.lr)
        self.epsilon = EpsilonSchedule(config.eps_start, config.eps_decay, config.eps_end)
        self.buffer = ReplayBuffer(
            config.buffer_capacity,
            spec.n_agents,
            spec.obs_dim,
            spec.n_actions,
            extras=self._buffer_extras(),
        )
        self.episode = 0  # finished training episodes
        self.step_count = 0  # transitions observed
        self.update_count = 0  # gradient steps on the Q-network

    # -- hooks for subclasses ------------------------------------------------------------

    def _make_q_net(self) -> nn.Module:
        raise NotImplementedError

    def _buffer_extras(self) -> dict[str, tuple[tuple[int, ...], type]]:
        """Extra per-row arrays the buffer keeps (none for plain Q-learning)."""
        return {}

    def _step_extras(self, transition: Transition) -> dict[str, np.ndarray]:
        """Values of the extra arrays for one transition."""
        return {}

    def _act_edges(self, step: TimeStep, explore: bool) -> torch.Tensor | None:
        """Edge features for acting at ``step`` (``(1, N, K, F)``), ``None`` for none."""
        return None

    def _learning_inputs(
        self, batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Training reward ``(B, N)`` and edge features at ``obs`` and ``next_obs``."""
        reward = torch.from_numpy(batch.reward) * self.config.reward_scale
        return reward, None, None

    # -- the controller protocol ---------------------------------------------------------

    @property
    def training_round(self) -> int:
        """Index of the current exploration round (``episodes_per_round`` episodes each)."""
        return self.episode // self.config.episodes_per_round

    @property
    def exploration_rate(self) -> float:
        """Epsilon of the current training episode (it decays once per round)."""
        return self.epsilon.value(self.training_round)

    def act(self, step: TimeStep, *, explore: bool) -> np.ndarray:
        """Masked epsilon-greedy actions ``(N,)`` for all agents (greedy when not exploring)."""
        obs = torch.as_tensor(step.obs, dtype=torch.float32)[None]
        with torch.no_grad():
            q = self.q_net(obs, self._act_edges(step, explore))[0].numpy()
        epsilon = self.exploration_rate if explore else 0.0
        return epsilon_greedy(q, step.action_mask, epsilon, self.rng)

    def observe(self, transition: Transition) -> dict[str, float]:
        """Store the joint transition; run an update round when one is due."""
        step, nxt = transition.step, transition.next_step
        self.buffer.add(
            obs=step.obs,
            mask=step.action_mask,
            actions=transition.actions,
            reward=nxt.reward,
            next_obs=nxt.obs,
            next_mask=nxt.action_mask,
            done=nxt.done,
            **self._step_extras(transition),
        )
        self.step_count += 1
        stats: dict[str, float] = {}
        cfg = self.config
        if self.step_count % cfg.update_every_steps == 0 and len(self.buffer) >= cfg.batch_size:
            stats = self._update()
        if nxt.done:
            self.episode += 1
        return stats

    # -- learning ------------------------------------------------------------------------

    def minibatches(self, sample_size: int, batch_size: int) -> list[Batch]:
        """One round's minibatches: ``sample_size`` rows (at least one batch) without replacement.

        Empty while the buffer holds fewer than ``batch_size`` transitions.
        """
        wanted = max(sample_size, batch_size)
        rows = self.buffer.sample_indices(wanted, self.rng, replace=False)
        cuts = range(0, len(rows) - batch_size + 1, batch_size)
        return [self.buffer.gather(rows[i : i + batch_size]) for i in cuts]

    def _update(self) -> dict[str, float]:
        cfg = self.config
        losses = [self._td_step(b) for b in self.minibatches(cfg.sample_size, cfg.batch_size)]
        return {"q_loss": float(np.mean(losses))} if losses else {}

    def _td_step(self, batch: Batch) -> float:
        """One gradient step on ``(r + γ max_a' q'(o', a') - q(o, a))²`` over agents and batch."""
        cfg = self.config
        obs = torch.from_numpy(batch.obs)
        next_obs = torch.from_numpy(batch.next_obs)
        actions = torch.from_numpy(batch.actions)
        reward, edges, next_edges = self._learning_inputs(batch)
        q = self.q_net(obs, edges).gather(-1, actions[..., None]).squeeze(-1)  # (B, N)
        with torch.no_grad():
            next_mask = torch.from_numpy(batch.next_mask)
            next_q = masked_max(self.q_target(next_obs, next_edges), next_mask)
            if cfg.terminal_on_done:
                next_q = next_q * (~torch.from_numpy(batch.done)).float()[:, None]
            target = reward + cfg.gamma * next_q
        loss = F.mse_loss(q, target)
        self.q_optim.zero_grad()
        loss.backward()
        self.q_optim.step()
        self.q_polyak(cfg.tau)
        self.update_count += 1
        return float(loss.item())

    # -- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimiser, buffer, counters and RNG states (``weights_only``-loadable)."""
        return {
            "q_net": self.q_net.state_dict(),
            "q_target": self.q_target.state_dict(),
            "q_optim": self.q_optim.state_dict(),
            "buffer": self.buffer.state_dict(),
            "rng": rng_state(self.rng),
            "generator": self.generator.get_state(),
            "episode": self.episode,
            "step_count": self.step_count,
            "update_count": self.update_count,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`.

        Raises:
            KeyError, RuntimeError, ValueError: when the state belongs to another
                controller or its shapes do not fit (the training code turns these
                into a one-line user error).
        """
        self.q_net.load_state_dict(state["q_net"])
        self.q_target.load_state_dict(state["q_target"])
        self.q_optim.load_state_dict(state["q_optim"])
        self.buffer.load_state_dict(state["buffer"])
        restore_rng(self.rng, state["rng"])
        self.generator.set_state(state["generator"])
        self.episode = int(state["episode"])
        self.step_count = int(state["step_count"])
        self.update_count = int(state["update_count"])
