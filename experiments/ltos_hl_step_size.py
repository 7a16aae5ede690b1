"""How far one LToS high-level round moves the sharing weights, per optimiser and step size.

Usage (run directories of ``fixed_ltos`` or ``ltos`` with ``checkpoint.pt``: a trained critic
and its replay buffer):

    python experiments/ltos_hl_step_size.py --scenario shenzhen_congested \
        --runs results/shenzhen_congested_v1/fixed_ltos/seed0 ... \
        --out docs/results/ltos_hl_step_size

For every run the high level is reset to the selfishness initialiser (the state of the first
round), then one round (the scenario's ``hl_epochs`` passes over ``hl_sample_size`` replay rows)
is made with each optimiser and learning rate, on the critic's objective as it is and scaled
by 0.1: the scaled objective is the same evidence, ten times weaker. The figure is the change
of the mean greedy self-weight over the round's samples. An optimiser whose move does not
shrink with the scaled objective steps by its learning rate whatever the critic says.

Writes ``<out>.csv`` (one row per run, optimiser, learning rate and scale) and ``<out>.png``;
``--replot`` redraws the figure from the CSV.
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from ltos_traffic import atomic
from ltos_traffic.controllers.base import make_controller
from ltos_traffic.controllers.ltos import LToS
from ltos_traffic.envs.factory import make_env
from ltos_traffic.experiments.checkpoint import load_checkpoint
from ltos_traffic.learning.nn import make_optimizer
from ltos_traffic.scenario import load_scenario

SETTINGS = (("adam", 1e-3), ("adam", 2e-4), ("sgd", 1e-3), ("sgd", 1e-2), ("sgd", 1e-1))
SCALES = (1.0, 0.1)


def mean_self_weight(ctl: LToS, obs: np.ndarray) -> float:
    """Mean greedy ``w_ii`` over the given observations (rows, agents)."""
    with torch.no_grad():
        return float(np.mean([ctl.sharing_weights(o)[:, 0].mean() for o in obs]))


def one_round(ctl: LToS, optimizer: str, lr: float, scale: float, seed: int) -> float:
    """Self-weight change of one round from the initialiser, on a copy of ``ctl``."""
    probe = copy.deepcopy(ctl)
    probe.phi.reset_selfish()
    probe.hl_optim = make_optimizer(optimizer, list(probe.phi.parameters()), lr)
    rng = np.random.default_rng(seed)
    batches = probe.minibatches(probe.config.hl_sample_size, probe.config.hl_batch_size)
    obs = np.concatenate([b.obs for b in batches])
    sample = obs[rng.choice(len(obs), min(200, len(obs)), replace=False)]
    before = mean_self_weight(probe, sample)
    original = probe.hl_optim.step

    def scaled_step() -> None:  # scale the gradient the optimiser sees
        for p in probe.phi.parameters():
            if p.grad is not None:
                p.grad.mul_(scale)
        original()

    probe.hl_optim.step = scaled_step  # type: ignore[method-assign]
    for _ in range(probe.config.hl_epochs):
        for batch in batches:
            probe._ddpg_step(batch)
    return mean_self_weight(probe, sample) - before


def plot(rows: list[dict[str, Any]], scenario: str, path: Path) -> None:
    """Signed self-weight change per setting, one panel per run (symlog: signs and decades)."""
    labels = [f"{o} {lr:g}" for o, lr in SETTINGS]
    runs = list(dict.fromkeys(str(r["run"]) for r in rows))
    fig, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs), 3.9), squeeze=False)
    for ax, run in zip(axes[0], runs):
        x = np.arange(len(SETTINGS))
        for k, scale in enumerate(SCALES):
            ys = [float(r["self_weight_change"]) for r in rows
                  if r["run"] == run and float(r["objective_scale"]) == scale]  # fmt: skip
            ax.bar(x + (k - 0.5) * 0.38, ys, 0.38, label=f"critic's gradient x{scale:g}")
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_xticks(x, labels, rotation=30, fontsize=8)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_ylabel("change of mean self-weight (+ keeps more)", fontsize=8)
        ax.set_title(run, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"One LToS high-level round from the initialiser ({scenario})")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic.atomic_write_bytes(path, buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--runs", nargs="+", type=Path, default=[])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--replot", action="store_true", help="redraw <out>.png from <out>.csv")
    args = parser.parse_args()
    if args.replot:
        with args.out.with_suffix(".csv").open() as f:
            plot(
                list(csv.DictReader(f)),
                load_scenario(args.scenario).name,
                args.out.with_suffix(".png"),
            )
        return
    if not args.runs:
        parser.error("--runs is required unless --replot")
    scenario = load_scenario(args.scenario)
    env = make_env(scenario)
    spec = env.spec
    env.close()
    rows = []
    for run in args.runs:
        name = json.loads((run / "config.json").read_text())["controller"]
        ctl = make_controller(name, spec, 0, scenario_hparams=scenario.hparams)
        load_checkpoint(run / "checkpoint.pt", ctl)
        assert isinstance(ctl, LToS)
        torch.manual_seed(0)
        for optimizer, lr in SETTINGS:
            for scale in SCALES:
                moved = one_round(ctl, optimizer, lr, scale, seed=0)
                rows.append(
                    {"run": f"{name} {run.name}", "optimizer": optimizer, "lr": lr,
                     "objective_scale": scale, "self_weight_change": round(moved, 6)}
                )  # fmt: skip
                print(rows[-1], flush=True)
    plot(rows, scenario.name, args.out.with_suffix(".png"))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic.atomic_write_bytes(args.out.with_suffix(".csv"), text.getvalue().encode())


if __name__ == "__main__":
    main()
