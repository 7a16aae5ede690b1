"""How the checkpoints shipped in the package are made (:mod:`.checkpoint` finds them).

``ltos_traffic/checkpoints/<scenario>/<controller>.pt`` holds a policy trained
by this project's own code; ``<controller>.json`` beside it records how: the
command, seed, training episodes, code version (git SHA) and the evaluation
result that :func:`evaluate_checkpoint` reproduces. Shipped files keep the networks,
optimisers and counters but an empty replay buffer, so they stay small.

Make or refresh one::

    python -m ltos_traffic.experiments.shipped --net grid6x6 --controller ltos \
        --episodes 30 --seed 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from ltos_traffic import atomic
from ltos_traffic.experiments import rundir, training
from ltos_traffic.experiments.checkpoint import (
    SHIPPED_DIR,
    load_checkpoint,
    save_checkpoint,
    shipped_record,
)
from ltos_traffic.experiments.experiment import make_run, open_run
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.experiments.seeds import eval_seed
from ltos_traffic.scenario import Scenario, load_scenario


def export(controller: Any, path: Path, *, seed: int, episodes_done: int) -> None:
    """Write ``controller``'s state as a checkpoint with its replay buffer emptied."""
    state = controller.state_dict()
    buffer = state.get("buffer")
    if isinstance(buffer, dict) and "arrays" in buffer:
        state["buffer"] = {
            **buffer,
            "pos": 0,
            "arrays": {k: v[:0].clone() for k, v in buffer["arrays"].items()},
        }
    save_checkpoint(path, controller, episodes_done=episodes_done, seed=seed, state=state)


def evaluate_checkpoint(scenario: Scenario, controller_name: str, path: Path, seed: int) -> Any:
    """Greedy evaluation of a checkpoint on the run's evaluation seed; the episode metrics."""
    env, ctl = make_run(scenario, controller_name, seed=seed)
    try:
        load_checkpoint(path, ctl)
        return run_episode(env, ctl, seed=eval_seed(seed), explore=False, learn=False).metrics
    finally:
        env.close()


def make_shipped(net: str, controller_name: str, *, episodes: int, seed: int, work: Path) -> Path:
    """Train, export and record one shipped checkpoint; returns its path."""
    scenario = load_scenario(net)
    out_dir, env, ctl = open_run(scenario, controller_name, seed=seed, out_root=work)
    started = time.perf_counter()
    try:
        training.train(env, ctl, out_dir=out_dir, episodes=episodes, seed=seed, resume=True,
                       progress=False)  # fmt: skip
    finally:
        env.close()
    train_s = _training_wall_s(out_dir) or time.perf_counter() - started
    target = SHIPPED_DIR / scenario.name / f"{controller_name}.pt"
    export(ctl, target, seed=seed, episodes_done=episodes)
    metrics = evaluate_checkpoint(scenario, controller_name, target, seed)
    record = {
        "scenario": scenario.name,
        "controller": controller_name,
        "seed": seed,
        "episodes": episodes,
        "command": f"python -m ltos_traffic.experiments.shipped --net {net} "
        f"--controller {controller_name} --episodes {episodes} --seed {seed}",
        "git_sha": rundir.git_sha(),
        "versions": rundir.package_versions(),
        "train_wall_s": round(train_s, 1),
        "updates": {
            key: int(getattr(ctl, key))
            for key in ("update_count", "hl_update_count", "hl_round_count")
            if hasattr(ctl, key)
        },
        "eval_seed": eval_seed(seed),
        "eval": metrics.as_row(),
    }
    atomic.atomic_write_json(target.with_suffix(".json"), record)
    return target


def _training_wall_s(out_dir: Path) -> float:
    """Wall seconds of all training episodes in ``out_dir/episodes.csv`` (0 without any).

    Counts episodes trained by an earlier call too (``--work`` pointing at a
    finished run exports it without training again).
    """
    rows = rundir.read_csv(out_dir / training.EPISODES_CSV)
    return sum(float(r.get("wall_s") or 0.0) for r in rows if r.get("phase") == "train")


def main(argv: list[str] | None = None) -> None:
    """``python -m ltos_traffic.experiments.shipped``: make shipped checkpoints."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--net", required=True)
    parser.add_argument("--controller", required=True)
    parser.add_argument("--episodes", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--work",
        default="runs/shipped",
        help="Root of training run directories; a finished run there is exported, not retrained.",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    path = make_shipped(
        args.net, args.controller, episodes=args.episodes, seed=args.seed, work=Path(args.work)
    )
    record = shipped_record(path)
    print(f"{path}: avg travel time {record['eval']['avg_travel_time_s']:.1f} s "
          f"after {args.episodes} episodes ({record['train_wall_s']} s)")  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    main()
