"""Measure the gradient LToS's high level follows, on the replay buffer of finished training runs.

Usage (run directories made by ``ltos-traffic run --controller ltos --episodes N``, which keep
``checkpoint.pt`` with the replay buffer):

    python experiments/ltos_sharing_signal.py --scenario grid6x6_congested \
        --runs results/grid6x6_congested_v1/ltos/seed0 ... --out docs/results/ltos_sharing_signal

Writes ``<out>.csv`` (one row per run: the :meth:`SharingSignal.summary` figures) and
``<out>.png`` (per run: j's critic against i's critic on each edge, and the per-minibatch
self-logit gradients the high level's optimiser receives).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ltos_traffic import atomic
from ltos_traffic.controllers.base import make_controller
from ltos_traffic.controllers.sharing_signal import sharing_signal
from ltos_traffic.envs.factory import make_env
from ltos_traffic.experiments.checkpoint import CHECKPOINT, load_checkpoint
from ltos_traffic.scenario import load_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--runs", nargs="+", required=True, type=Path)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    env = make_env(scenario)
    spec = env.spec
    env.close()
    rows = []
    fig, axes = plt.subplots(2, len(args.runs), figsize=(4.2 * len(args.runs), 7.5), squeeze=False)
    for col, run in enumerate(args.runs):
        name = json.loads((run / "config.json").read_text())["controller"]
        ctl = make_controller(name, spec, 0, scenario_hparams=scenario.hparams)
        load_checkpoint(run / CHECKPOINT, ctl)
        batches = ctl.minibatches(args.samples, ctl.config.hl_batch_size)
        obs = np.concatenate([b.obs for b in batches])
        mask = np.concatenate([b.mask for b in batches])
        signal = sharing_signal(ctl, obs, mask)
        summary = signal.summary(ctl.config.hl_batch_size)
        rows.append(
            {"controller": name, "seed": run.name, **{k: round(v, 6) for k, v in summary.items()}}
        )
        top = axes[0][col]
        pick = np.random.default_rng(0).choice(signal.to_receiver.size, 4000, replace=False)
        top.scatter(
            signal.to_keeper.ravel()[pick], signal.to_receiver.ravel()[pick], s=2, alpha=0.3
        )
        lo = min(signal.to_keeper.min(), signal.to_receiver.min())
        hi = max(signal.to_keeper.max(), signal.to_receiver.max())
        top.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        top.set_xlabel("i's critic: dv_i/dw_ii (keep)")
        top.set_ylabel("j's critic: dv_j/dw_ij (give)")
        top.set_title(f"{name} {run.name}: corr {summary['corr_receiver_keeper']:.2f}", fontsize=9)
        bottom = axes[1][col]
        grads = signal.self_logit_grad
        n = len(grads) // ctl.config.hl_batch_size * ctl.config.hl_batch_size
        mini = grads[:n].reshape(-1, ctl.config.hl_batch_size).mean(axis=1)
        bottom.hist(mini, bins=25)
        bottom.axvline(0, color="k", lw=0.8)
        bottom.axvline(grads.mean(), color="r", lw=1.2)
        bottom.set_xlabel("d(sum of values)/d(self-logit), per minibatch")
        bottom.set_title(
            f"sign agrees with mean in {summary['minibatch_sign_agreement']:.0%}", fontsize=9
        )
    fig.suptitle(f"LToS high-level gradient on {scenario.name} (replay samples, end of training)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic.atomic_write_bytes(args.out.with_suffix(".png"), buf.getvalue())
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic.atomic_write_bytes(args.out.with_suffix(".csv"), text.getvalue().encode())
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
