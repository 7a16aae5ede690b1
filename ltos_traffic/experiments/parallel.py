"""Parallel rollouts: environments in worker processes feeding one learner.

libsumo runs one simulation per process, so parallel episodes need processes.
Training proceeds in rounds of ``workers`` episodes:

1. the learner serialises its controller's state (without the replay buffer,
   which acting does not need) and sends it with each episode of the round;
2. each worker process owns one environment and one replica of the controller;
   it loads the state, reseeds the replica's exploration generators from
   ``(run seed, episode seed)``, runs the episode with exploration and returns
   its transitions;
3. the learner feeds the transitions to ``controller.observe`` episode by
   episode in seed order, whatever worker finished first, then writes one
   checkpoint for the round.

An episode's outcome depends only on the broadcast state and its seeds, never
on which worker ran it, so the same run seed and worker count give the same
result. ``workers`` is the round size: a run with 2 workers and one with 1
differ (the second learns between every episode), as they should.

A controller whose ``observe`` reads state left behind by ``act`` (LToS: the
sharing weights acted with) is a :class:`~ltos_traffic.controllers.base.KeepsActingState`:
workers record ``acting_state()`` after every ``act`` and the learner restores it with
``load_acting_state(state)`` before the matching ``observe``. Other controllers must
declare ``parallel_rollouts = True`` (``observe`` needs only the transition) or are
refused (see :func:`check_parallel`).

Worker processes use one torch thread each: their networks are tiny and
several processes with a full thread pool each fight over the same cores.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ltos_traffic.controllers.base import KeepsActingState
from ltos_traffic.envs.base import NetworkedEnv
from ltos_traffic.errors import UserError
from ltos_traffic.experiments import rundir, training
from ltos_traffic.experiments.checkpoint import save_checkpoint
from ltos_traffic.experiments.runner import EpisodeResult, SharingMeter, queue_point
from ltos_traffic.experiments.seeds import episode_seed
from ltos_traffic.scenario import Scenario
from ltos_traffic.types import EnvSpec, EpisodeMetrics, Transition

LEARNER_ONLY_KEYS = ("buffer",)  # state_dict entries a replica keeps its own (empty) copy of
# Cap of the default worker count: a round of W episodes is acted with the state of the
# round before, so many workers mean a policy that lags further behind the learner.
MAX_DEFAULT_WORKERS = 8


@dataclass(frozen=True)
class EnvRecipe:
    """How a worker builds its environment: ``make_env(scenario, **env_kwargs)``.

    Attributes:
        scenario: the scenario (picklable).
        env_kwargs: keyword options of :func:`~ltos_traffic.envs.factory.make_env`
            (traffic: ``backend``, ``data_dir``), as sorted ``(name, value)`` pairs.
    """

    scenario: Scenario
    env_kwargs: tuple[tuple[str, Any], ...] = ()

    @staticmethod
    def of(scenario: Scenario, **env_kwargs: Any) -> EnvRecipe:
        """A recipe from keyword options."""
        return EnvRecipe(scenario, tuple(sorted(env_kwargs.items())))

    def build(self) -> NetworkedEnv:
        """Make the environment."""
        from ltos_traffic.envs.factory import make_env

        return make_env(self.scenario, **dict(self.env_kwargs))


@dataclass
class Rollout:
    """One episode run by a worker.

    Attributes:
        env_seed: the episode's environment seed.
        transitions: every decision step, in order.
        acting: per transition, the controller's acting state (``None`` when it has none).
        metrics: the environment's episode metrics.
        queue_curve: per step, mean halting vehicles per agent (traffic) or mean reward.
        wall_s: seconds the worker spent on the episode.
        cpu_s: CPU seconds the worker spent on it (SUMO included: libsumo runs in-process).
    """

    env_seed: int
    transitions: list[Transition]
    acting: list[Any]
    metrics: EpisodeMetrics
    queue_curve: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0


def check_parallel(controller: Any) -> None:
    """Refuse controllers whose ``observe`` depends on ``act`` but that cannot export it.

    Controllers that declare ``parallel_rollouts`` (the Q-learners, whose ``observe``
    stores nothing beyond the transition) and any :class:`KeepsActingState`
    controller are accepted.

    Raises:
        UserError: for any other learning controller.
    """
    if isinstance(controller, KeepsActingState) or getattr(controller, "parallel_rollouts", False):
        return
    name = getattr(controller, "name", type(controller).__name__)
    raise UserError(
        f"controller {name!r} does not support parallel rollouts (its updates use state "
        "kept while acting); train it with --workers 1"
    )


def supports_parallel(controller: Any) -> bool:
    """Whether :func:`check_parallel` accepts ``controller``."""
    try:
        check_parallel(controller)
    except UserError:
        return False
    return True


def available_cores() -> int:
    """CPU cores this process may run on (``os.sched_getaffinity``; ``os.cpu_count`` elsewhere)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def default_workers(scenario: Scenario, controller: Any, episodes: int) -> int:
    """Worker processes of ``train`` when ``--workers`` is not given.

    One per available core, at most :data:`MAX_DEFAULT_WORKERS` and ``episodes``,
    for a traffic scenario and a controller that supports parallel rollouts;
    otherwise 1 (in-process training): a grid-world episode takes milliseconds,
    so starting worker processes would cost more than it saves.
    """
    if scenario.kind != "traffic" or not supports_parallel(controller):
        return 1
    return max(1, min(available_cores(), MAX_DEFAULT_WORKERS, episodes))


def state_bytes(controller: Any) -> bytes:
    """The controller's state without the learner-only entries, serialised with torch."""
    state = {k: v for k, v in controller.state_dict().items() if k not in LEARNER_ONLY_KEYS}
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def episode_rng_seed(run_seed: int, env_seed: int) -> int:
    """Seed of a replica's exploration generators for one episode."""
    return int(np.random.SeedSequence([run_seed, env_seed]).generate_state(1)[0])


# -- worker side: one environment and one replica per process ------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(recipe: EnvRecipe, cls: type, spec: EnvSpec, config: Any, seed: int) -> None:
    torch.set_num_threads(1)
    _WORKER["env"] = recipe.build()
    _WORKER["controller"] = cls(spec, config, seed)


def _run_one(payload: bytes, run_seed: int, env_seed: int, explore: bool) -> Rollout:
    env: NetworkedEnv = _WORKER["env"]
    replica = _WORKER["controller"]
    state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    replica.load_state_dict({**replica.state_dict(), **state})
    reseed = episode_rng_seed(run_seed, env_seed)
    if isinstance(getattr(replica, "rng", None), np.random.Generator):
        replica.rng = np.random.default_rng(reseed)
    if isinstance(getattr(replica, "generator", None), torch.Generator):
        replica.generator.manual_seed(reseed)
    export = replica.acting_state if isinstance(replica, KeepsActingState) else None
    started, cpu = time.perf_counter(), time.process_time()
    step = env.reset(env_seed)
    transitions: list[Transition] = []
    acting: list[Any] = []
    curve: list[float] = []
    while not step.done:
        actions = replica.act(step, explore=explore)
        acting.append(export() if export is not None else None)
        nxt = env.step(actions)
        transitions.append(Transition(step, actions, nxt))
        curve.append(queue_point(nxt))
        step = nxt
    metrics = env.episode_metrics()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Rollout(env_seed, transitions, acting, metrics, curve, wall, cpu)


# -- learner side ----------------------------------------------------------------------------


class RolloutPool:
    """``workers`` processes, each with an environment and a replica of ``controller``.

    Args:
        recipe: how each worker builds its environment.
        controller: the learner's controller; replicas are built as
            ``type(controller)(spec, controller.config, seed)``.
        spec: the environment spec the controller was built for.
        seed: run seed (replica construction and exploration reseeding).
        workers: number of processes (at least 1).
    """

    def __init__(
        self, recipe: EnvRecipe, controller: Any, spec: EnvSpec, *, seed: int, workers: int
    ) -> None:
        if workers < 1:
            raise UserError(f"workers must be at least 1, got {workers}")
        self.seed = seed
        self.workers = workers
        # spawn: a fresh interpreter per worker (libsumo and torch threads do not survive fork)
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(recipe, type(controller), spec, controller.config, seed),
        )

    def run(self, controller: Any, env_seeds: Sequence[int], *, explore: bool) -> list[Rollout]:
        """One episode per seed with the controller's current state; results in seed order."""
        payload = state_bytes(controller)
        futures = [
            self._pool.submit(_run_one, payload, self.seed, int(s), explore) for s in env_seeds
        ]
        return [f.result() for f in futures]

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> RolloutPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def learn_from(
    controller: Any, rollout: Rollout, meter: SharingMeter | None = None
) -> EpisodeResult:
    """Feed one rollout's transitions to ``controller.observe`` in order.

    A ``meter`` sees each step before the controller learns from it, so it reads
    the sharing weights the serial loop would have read during the episode.
    """
    restore = controller.load_acting_state if isinstance(controller, KeepsActingState) else None
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for transition, acting in zip(rollout.transitions, rollout.acting):
        if meter is not None:
            meter(transition.step, transition.actions)
        if restore is not None and acting is not None:
            restore(acting)
        for key, value in controller.observe(transition).items():
            if np.isfinite(value):
                sums[key] = sums.get(key, 0.0) + float(value)
                counts[key] = counts.get(key, 0) + 1
    losses = {k: sums[k] / counts[k] for k in sums}
    return EpisodeResult(rollout.metrics, losses, rollout.queue_curve)


def train_parallel(
    recipe: EnvRecipe,
    controller: Any,
    spec: EnvSpec,
    *,
    out_dir: Path,
    episodes: int,
    seed: int,
    workers: int,
    resume: bool = False,
    progress: bool = False,
) -> list[EpisodeResult]:
    """:func:`ltos_traffic.experiments.training.train` with episodes run by ``workers`` processes.

    Same run directory layout (``checkpoint.pt`` after every round, one
    ``episodes.csv`` row per episode) and the same episode seeds
    (``seed * 10_000 + k``). A killed run resumes from the last finished round.

    Args:
        recipe: how workers build the environment.
        controller: the learning controller (its state is the learner's).
        spec: the environment spec the controller was built for.
        out_dir: run directory.
        episodes: total training episodes of the run (resumed ones included).
        seed: run seed.
        workers: worker processes, which is also the number of episodes per round.
        resume: continue from ``out_dir/checkpoint.pt``.
        progress: show a tqdm bar.

    Returns:
        The results of the episodes run by this call.
    """
    check_parallel(controller)
    ckpt, csv_path, start = training.start_run(out_dir, controller, seed=seed, resume=resume)
    results: list[EpisodeResult] = []
    bar = tqdm(total=episodes, initial=start, desc="train", unit="ep", disable=not progress)
    try:
        with RolloutPool(recipe, controller, spec, seed=seed, workers=workers) as pool:
            for first in range(start, episodes, workers):
                ks = list(range(first, min(first + workers, episodes)))
                epsilon = training.exploration_rate(controller)
                rollouts = pool.run(controller, [episode_seed(seed, k) for k in ks], explore=True)
                meters = [SharingMeter(controller) for _ in rollouts]
                done = [learn_from(controller, r, m) for r, m in zip(rollouts, meters)]
                save_checkpoint(ckpt, controller, episodes_done=ks[-1] + 1, seed=seed)
                for k, rollout, result, meter in zip(ks, rollouts, done, meters):
                    row = training.episode_row(
                        k, result, epsilon=epsilon, wall_s=rollout.wall_s, meter=meter,
                        workers=workers,
                    )  # fmt: skip
                    rundir.append_csv_row(csv_path, row)
                    bar.update(1)
                results += done
    finally:
        bar.close()
    return results
