"""Evaluate finished runs on many evaluation episodes: a steadier figure than the one greedy
evaluation episode ``ltos-traffic run`` scores, for scenarios whose episodes are short and
noisy (jungle: 100 steps, random food).

Usage:

    python experiments/evaluate_runs.py --root runs --scenario jungle_v1 \
        --controllers random,dgn,ltos,dqn --episodes 20 --out docs/results/jungle_eval

Each run directory ``ROOT/<scenario>/<controller>/seed<k>/`` of a learning controller must hold
its ``checkpoint.pt``; a controller that does not learn is rebuilt with the run's seed. Every run
plays the same ``--episodes`` evaluation episodes (seeds ``eval_seed(k) + 1 .. + E``, none of
them a training seed), greedily. Writes ``OUT.csv`` (one row per run: mean and std of the return
over the episodes, and the scenario's own figures) and prints a markdown table of the mean over
runs ± std over runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ltos_traffic.errors import UserError
from ltos_traffic.experiments import rundir
from ltos_traffic.experiments.checkpoint import load_checkpoint
from ltos_traffic.experiments.experiment import make_run
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.experiments.seeds import eval_seed
from ltos_traffic.scenario import load_scenario


def evaluate_run(
    scenario_name: str, controller: str, seed: int, run_dir: Path, episodes: int
) -> dict[str, Any]:
    """Mean figures of ``episodes`` greedy evaluation episodes of one run."""
    env, ctl = make_run(load_scenario(scenario_name), controller, seed=seed)
    try:
        if getattr(ctl, "learns", False):
            checkpoint = run_dir / "checkpoint.pt"
            if not checkpoint.is_file():
                raise UserError(f"{run_dir} has no checkpoint.pt; train it first")
            load_checkpoint(checkpoint, ctl)
        returns, extras = [], []
        for k in range(1, episodes + 1):
            result = run_episode(env, ctl, seed=eval_seed(seed) + k, explore=False, learn=False)
            returns.append(result.metrics.episode_return)
            extras.append(result.metrics.extra)
    finally:
        env.close()
    row: dict[str, Any] = {
        "controller": controller,
        "seed": seed,
        "episodes": episodes,
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
    }
    for key in sorted({k for e in extras for k in e}):
        values = [float(e[key]) for e in extras if key in e]
        row[f"{key}_mean"] = float(np.mean(values))
    return row


def main(argv: list[str] | None = None) -> None:
    """Evaluate every run found and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--controllers", required=True)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.episodes < 1:
        raise SystemExit("error: --episodes must be at least 1")
    rows = []
    for controller in args.controllers.split(","):
        dirs = sorted((args.root / args.scenario / controller).glob("seed*"))
        if not dirs:
            raise SystemExit(f"error: no runs of {controller} under {args.root / args.scenario}")
        for run_dir in dirs:
            seed = int(run_dir.name.removeprefix("seed"))
            try:
                rows.append(evaluate_run(args.scenario, controller, seed, run_dir, args.episodes))
            except UserError as exc:
                raise SystemExit(f"error: {exc}") from None
    rundir.write_csv(args.out.with_suffix(".csv"), rows)
    title = f"return, mean of {args.episodes} episodes (mean ± std over seeds)"
    print(f"| controller | seeds | {title} | per seed |")
    print("|---|---|---|---|")
    for controller in args.controllers.split(","):
        mine = [r for r in rows if r["controller"] == controller]
        means = np.array([r["return_mean"] for r in mine])
        per_seed = " / ".join(f"{m:.1f}" for m in means)
        seeds = ",".join(str(r["seed"]) for r in mine)
        std = means.std(ddof=1) if len(means) > 1 else 0.0
        print(f"| {controller} | {seeds} | {means.mean():.1f} ± {std:.1f} | {per_seed} |")


if __name__ == "__main__":
    main()
