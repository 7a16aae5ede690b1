"""Replay trained QMIX policies with a maximum green (issue 14's QMIX diagnosis).

For each run directory (``ltos-traffic run --controller qmix``) and each ``--max-repeat``
value ``N``, the trained controller (the run's own settings and checkpoint, no learning)
plays the run's evaluation episode again with QMIX's repeat limit (``max_repeat``) applied
at evaluation only: no light may hold one phase for more than ``N`` decisions, a maximum
green of ``N`` decision intervals. ``N = 0`` is the policy as trained and scores what the
run's ``summary.json`` says (the rows show it). This tells whether long phase holds are what
makes a policy fail, or only part of it: if capping them brings a collapsed policy back to
the working runs' level, the holds were the failure.

Rows: ``run``, ``scenario``, ``seed``, ``trained_max_repeat`` (the setting the run was
trained with), ``max_repeat`` (at this evaluation), ``avg_travel_time_s``, ``teleports``,
``waiting_to_insert`` and, over the evaluation episode, ``hold_rate`` (share of decisions at
which an agent repeats its previous phase) and ``longest_hold_steps`` (an agent's longest run
of one phase, in decisions, mean over agents).

Usage:
    python experiments/qmix_max_green.py RUN_DIR [RUN_DIR ...] --max-repeat 0,6,4,3 \\
        --out docs/results/qmix_max_green.csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from qmix_credit import phase_holds  # this folder's script (first on the path when run)

from ltos_traffic.experiments import rundir
from ltos_traffic.experiments.checkpoint import load_checkpoint
from ltos_traffic.experiments.experiment import make_run
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.scenario import load_scenario
from ltos_traffic.types import TimeStep


def replay(run: Path, max_repeat: int) -> dict[str, Any]:
    """The evaluation episode of ``run`` with ``max_repeat`` at evaluation, as one row."""
    config = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    if config["controller"] != "qmix":
        raise SystemExit(f"{run} is a {config['controller']} run; this replays QMIX runs")
    trained = dict(config["controller_config"])
    settings = [f"{k}={v}" for k, v in trained.items() if k != "max_repeat"]
    settings.append(f"max_repeat={max_repeat}")
    env, ctl = make_run(
        load_scenario(config["scenario"]["name"]), "qmix", seed=config["seed"], overrides=settings
    )
    chosen: list[np.ndarray] = []
    legal: list[np.ndarray] = []

    def record(step: TimeStep, actions: np.ndarray) -> None:
        chosen.append(np.array(actions))
        legal.append(np.asarray(step.action_mask, dtype=bool))

    try:
        load_checkpoint(run / "checkpoint.pt", ctl)
        result = run_episode(
            env, ctl, seed=summary["eval_seed"], explore=False, learn=False, on_step=record
        )
    finally:
        env.close()
    actions = np.stack(chosen)[None]  # one episode, (1, T, N)
    masks = np.stack([*legal, legal[-1]])[None]  # (1, T + 1, N, A)
    holds = phase_holds(actions, np.ones(actions.shape[:2], dtype=bool), masks)
    m = result.metrics
    return {
        "run": str(run),
        "scenario": config["scenario"]["name"],
        "seed": config["seed"],
        "trained_max_repeat": int(trained.get("max_repeat", 0)),
        "max_repeat": max_repeat,
        "avg_travel_time_s": m.avg_travel_time_s,
        "teleports": m.teleports,
        "waiting_to_insert": m.waiting_to_insert,
        "hold_rate": holds["hold_rate"],
        "longest_hold_steps": holds["longest_hold_steps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished QMIX run directories")
    parser.add_argument(
        "--max-repeat", default="0,6", help="comma-separated limits; 0 = none (default 0,6)"
    )
    parser.add_argument("--out", type=Path, help="write the rows here as CSV")
    args = parser.parse_args()
    bad = f"--max-repeat takes integers >= 0 like 0,6; got {args.max_repeat!r}"
    try:
        limits = [int(x) for x in args.max_repeat.split(",")]
    except ValueError:
        raise SystemExit(bad) from None
    if any(n < 0 for n in limits):
        raise SystemExit(bad)
    for run in args.runs:
        if not (run / "checkpoint.pt").is_file() or not (run / "summary.json").is_file():
            raise SystemExit(f"no checkpoint.pt and summary.json in {run}; pass a finished run")
    torch.set_num_threads(1)
    rows = []
    for run in args.runs:
        for n in limits:
            rows.append(replay(run, n))
            row = rows[-1]
            print(
                f"{run} max_repeat {n}: {row['avg_travel_time_s']:.1f} s, "
                f"{row['teleports']} teleports, longest hold {row['longest_hold_steps']:.1f}",
                flush=True,
            )
    if args.out is not None:
        rundir.write_csv(args.out, rows)


if __name__ == "__main__":
    main()
