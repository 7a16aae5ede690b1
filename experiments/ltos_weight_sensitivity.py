"""How much a trained LToS low level depends on the sharing weights it receives.

Usage:

    python experiments/ltos_weight_sensitivity.py --scenario shenzhen_v1 \
        --checkpoint runs/shenzhen_v1/ltos/seed0/checkpoint.pt --seed 0 \
        --shifts 0,-0.5,-1,-2,-3 --out docs/results/ltos_weight_sensitivity_shenzhen.csv

Loads one finished LToS checkpoint, adds each shift to the high level's self-slot logit (every
agent then keeps less of its reward: the mean self-weight falls), and replays the run's greedy
evaluation episode with the low level unchanged. A low level that only ever saw weights near
its initial ones and breaks down under shifted weights explains why large high-level rounds
hurt; one that is indifferent says the weights carry little. Appends one CSV row per shift.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ltos_traffic.experiments import rundir
from ltos_traffic.experiments.checkpoint import load_checkpoint
from ltos_traffic.experiments.experiment import make_run
from ltos_traffic.experiments.runner import SharingMeter, run_episode
from ltos_traffic.experiments.seeds import eval_seed
from ltos_traffic.scenario import load_scenario

FIELDS = ("scenario", "seed", "self_logit_shift", "self_weight", "avg_travel_time_s",
          "avg_journey_time_s", "teleports")  # fmt: skip


def evaluate_shift(scenario: str, checkpoint: Path, seed: int, shift: float) -> dict[str, float]:
    """The run's evaluation episode with the self-slot logit moved by ``shift``."""
    env, ctl = make_run(load_scenario(scenario), "ltos", seed=seed)
    try:
        load_checkpoint(checkpoint, ctl)
        with torch.no_grad():
            ctl.phi.self_logit.add_(shift)
        meter = SharingMeter(ctl)
        metrics = run_episode(
            env, ctl, seed=eval_seed(seed), explore=False, learn=False, on_step=meter
        ).metrics
    finally:
        env.close()
    return {
        "self_weight": meter.self_weight(),
        "avg_travel_time_s": metrics.avg_travel_time_s,
        "avg_journey_time_s": metrics.avg_journey_time_s,
        "teleports": float(metrics.teleports),
    }


def main(argv: list[str] | None = None) -> None:
    """Replay the evaluation episode once per shift and write the CSV."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shifts", default="0,-0.5,-1,-2,-3")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        raise SystemExit(f"error: checkpoint not found: {args.checkpoint}")
    torch.set_num_threads(1)
    rows = []
    for shift in (float(s) for s in args.shifts.split(",")):
        row = {"scenario": args.scenario, "seed": args.seed, "self_logit_shift": shift}
        row.update(evaluate_shift(args.scenario, args.checkpoint, args.seed, shift))
        rows.append(row)
        print(", ".join(f"{k} {row[k]:.3f}" if isinstance(row[k], float) else f"{k} {row[k]}"
                        for k in FIELDS), flush=True)  # fmt: skip
    rundir.write_csv(args.out, [*rundir.read_csv(args.out), *rows])


if __name__ == "__main__":
    main()
