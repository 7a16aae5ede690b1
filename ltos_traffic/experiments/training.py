"""Training with a checkpoint after every episode, resuming, and greedy evaluation.

``train`` runs episodes ``k = start .. episodes-1`` with exploration and learning.
After each one it writes ``checkpoint.pt`` atomically (the controller's full
state, which includes its replay buffer, optimisers, counters and RNG states,
plus the number of finished episodes) and then appends the episode's row to
``episodes.csv``. Episode ``k``'s environment seed is ``seed * 10_000 + k``, so a
run killed at any moment and resumed with ``resume=True`` repeats the unfinished
episode from the same state and ends exactly where an uninterrupted run would.
If SUMO dies during an episode, training stops with a :class:`SimulationError`
(CLI exit code 1) and leaves the checkpoint of the last finished episode as it
was (``docs/reliability.md``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ltos_traffic.controllers.base import Explores
from ltos_traffic.envs.base import NetworkedEnv
from ltos_traffic.errors import SimulationError
from ltos_traffic.experiments import rundir
from ltos_traffic.experiments.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from ltos_traffic.experiments.runner import EpisodeResult, SharingMeter, run_episode
from ltos_traffic.experiments.seeds import episode_seed

EPISODES_CSV = "episodes.csv"


def exploration_rate(controller: Any) -> float:
    """The controller's exploration rate for the coming episode (NaN when it declares none)."""
    return float(controller.exploration_rate) if isinstance(controller, Explores) else float("nan")


def episode_row(
    episode: int,
    result: EpisodeResult,
    *,
    epsilon: float,
    wall_s: float,
    meter: SharingMeter,
    workers: int | None = None,
) -> dict[str, Any]:
    """The ``episodes.csv`` row of training episode ``episode``, for both training loops.

    Columns: ``episode``, ``phase`` (``train``), the episode metrics, the mean losses,
    ``epsilon`` (exploration rate the episode ran with), ``wall_s``, ``workers``
    (parallel training only) and the sharing meter's figures (LToS: ``self_weight``).
    """
    row: dict[str, Any] = {
        "episode": episode,
        "phase": "train",
        **result.metrics.as_row(),
        **result.losses,
        "epsilon": epsilon,
        "wall_s": round(wall_s, 3),
    }
    if workers is not None:
        row["workers"] = workers
    return {**row, **meter.stats()}


def start_run(out_dir: Path, controller: Any, *, seed: int, resume: bool) -> tuple[Path, Path, int]:
    """Prepare ``out_dir`` for training; return ``(checkpoint, episodes_csv, first_episode)``.

    With ``resume`` the checkpoint (if any) is loaded into ``controller``;
    without it an old checkpoint is removed. Either way, training rows of
    episodes the checkpoint does not hold (a kill between the two writes of an
    episode, or an abandoned run) are dropped from ``episodes.csv``.
    """
    out_dir = rundir.ensure_writable_dir(Path(out_dir))
    ckpt, csv_path = out_dir / CHECKPOINT, out_dir / EPISODES_CSV
    start = 0
    if resume and ckpt.is_file():
        start = load_checkpoint(ckpt, controller, seed=seed)
    elif not resume:
        ckpt.unlink(missing_ok=True)
    rows = rundir.read_csv(csv_path)
    kept = [r for r in rows if r.get("phase") != "train" or int(r["episode"]) < start]
    if len(kept) != len(rows):
        rundir.write_csv(csv_path, kept)
    return ckpt, csv_path, start


def train(
    env: NetworkedEnv,
    controller: Any,
    *,
    out_dir: Path,
    episodes: int,
    seed: int,
    resume: bool = False,
    progress: bool = False,
) -> list[EpisodeResult]:
    """Train ``controller`` on ``env`` until ``episodes`` episodes are finished.

    Args:
        env: the environment (not closed here).
        controller: a learning controller (``learns`` is True).
        out_dir: run directory for ``checkpoint.pt`` and ``episodes.csv``.
        episodes: total training episodes of the run (resumed ones included).
        seed: run seed; episode ``k`` uses env seed ``seed * 10_000 + k``.
        resume: continue from ``out_dir/checkpoint.pt``; without it an existing
            checkpoint and its training rows are discarded and training starts over.
        progress: show a tqdm bar with episode, return and travel time.

    Returns:
        The results of the episodes run by this call (none when already complete).
    """
    ckpt, csv_path, start = start_run(out_dir, controller, seed=seed, resume=resume)
    results: list[EpisodeResult] = []
    bar = tqdm(total=episodes, initial=start, desc="train", unit="ep", disable=not progress)
    try:
        for k in range(start, episodes):
            epsilon = exploration_rate(controller)
            t0 = time.perf_counter()
            meter = SharingMeter(controller)  # LToS: mean greedy self-weight of the episode
            try:
                result = run_episode(
                    env,
                    controller,
                    seed=episode_seed(seed, k),
                    explore=True,
                    learn=True,
                    on_step=meter,
                )
            except SimulationError as exc:  # policy: stop; the checkpoint holds episodes < k
                raise SimulationError(
                    f"{exc}; training stopped in episode {k}, {ckpt.name} holds the {k} "
                    "finished episodes: rerun `ltos-traffic train` with --resume to go on"
                ) from exc
            wall = time.perf_counter() - t0
            save_checkpoint(ckpt, controller, episodes_done=k + 1, seed=seed)
            row = episode_row(k, result, epsilon=epsilon, wall_s=wall, meter=meter)
            rundir.append_csv_row(csv_path, row)
            results.append(result)
            bar.update(1)
            bar.set_postfix(
                ep=k,
                ret=f"{result.metrics.episode_return:.1f}",
                tt=f"{result.metrics.avg_travel_time_s:.1f}s",
                delay=f"{result.metrics.avg_delay_s:.1f}s",
            )
    finally:
        bar.close()
    return results


def evaluate(env: NetworkedEnv, controller: Any, *, seed: int) -> EpisodeResult:
    """One greedy episode without learning (env seed ``seed``)."""
    return run_episode(env, controller, seed=seed, explore=False, learn=False)
