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

import io
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ltos_traffic import atomic
from ltos_traffic.envs.base import NetworkedEnv
from ltos_traffic.errors import SimulationError, UserError
from ltos_traffic.experiments import rundir
from ltos_traffic.experiments.runner import EpisodeResult, SharingMeter, run_episode

CHECKPOINT = "checkpoint.pt"
EPISODES_CSV = "episodes.csv"
FORMAT = "ltos-traffic-checkpoint/1"


def episode_seed(seed: int, episode: int) -> int:
    """The environment seed of training episode ``episode`` in run ``seed``."""
    return seed * 10_000 + episode


def save_checkpoint(path: Path, controller: Any, *, episodes_done: int, seed: int) -> None:
    """Write the controller's state and the episode count to ``path`` atomically."""
    payload = {
        "format": FORMAT,
        "controller": getattr(controller, "name", type(controller).__name__),
        "seed": seed,
        "episodes_done": episodes_done,
        "next_env_seed": episode_seed(seed, episodes_done),
        "state": controller.state_dict(),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic.atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path, controller: Any, *, seed: int | None = None) -> int:
    """Load ``path`` into ``controller``; return the number of finished training episodes.

    Raises:
        UserError: missing, corrupt or foreign file, another controller or seed,
            or networks whose shapes do not fit this scenario.
    """
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; train first or give another path")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles on stderr
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # garbage makes the unpickler fail in many ways (IndexError too)
        why = _torch_reason(exc)
        if "GLOBAL" in why:  # weights_only refused to import a function or class
            raise UserError(
                f"checkpoint {path} is refused: it holds Python objects, not only tensors "
                f"({why}); checkpoints are loaded with weights_only=True and never run code"
            ) from None
        raise UserError(f"checkpoint {path} is corrupt or not a checkpoint ({why})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"checkpoint {path} was not written by ltos-traffic train")
    name = getattr(controller, "name", type(controller).__name__)
    if payload["controller"] != name:
        raise UserError(
            f"checkpoint {path} holds controller {payload['controller']!r}, not {name!r}"
        )
    if seed is not None and payload["seed"] != seed:
        raise UserError(f"checkpoint {path} is from seed {payload['seed']}, not seed {seed}")
    try:
        controller.load_state_dict(payload["state"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise UserError(
            f"checkpoint {path} does not fit this scenario or config ({_torch_reason(exc)}); "
            "use the scenario and --set values it was trained with"
        ) from None
    return int(payload["episodes_done"])


def _torch_reason(exc: BaseException) -> str:
    """The informative line of a torch loading error (its first line is often generic)."""
    generic = ("Weights only load failed", "Please file an issue", "Check the documentation",
               "Error(s) in loading state_dict")  # fmt: skip
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(generic)]
    return ((useful or lines or [type(exc).__name__])[0])[:200]


def load_checkpoint_into(controller: Any, path: Path) -> int:
    """Evaluation entry point (``run --checkpoint PATH``): :func:`load_checkpoint`, any seed."""
    return load_checkpoint(Path(path), controller)


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
            epsilon = float(getattr(controller, "exploration_rate", float("nan")))
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
            row = {
                "episode": k,
                "phase": "train",
                **result.metrics.as_row(),
                **result.losses,
                "epsilon": epsilon,
                "wall_s": round(wall, 3),
                **meter.stats(),
            }
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
