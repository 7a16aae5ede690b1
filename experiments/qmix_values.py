"""QMIX's team value against the returns it earns, episode by episode (issue 14's QMIX diagnosis).

Every traffic reward is minus a queue, so the true team value is negative; with the time limit
bootstrapped, a policy whose mean team reward per step stays at ``r`` is worth ``r / (1 - gamma)``.
For each run this reads ``episodes.csv`` (the training episodes' travel time, return and the
learner's mean ``q_tot``, ``td_loss`` and ``grad_norm`` over the episode's updates) and puts the
learned ``Q_tot`` beside that ``implied_value`` of the episode's own mean team reward (the return
over decisions and agents, times ``reward_scale``). A learner that tracks its returns keeps
``Q_tot`` near ``implied_value``; one that diverges sees ``Q_tot`` climb while its returns fall,
up to positive values no episode can earn.

Usage:
    python experiments/qmix_values.py --run "grid seed 2=runs/grid6x6_v1/qmix/seed2" \\
        --run "grid seed 0=runs/grid6x6_v1/qmix/seed0" \\
        --out docs/results/qmix_values.png --csv docs/results/qmix_values.csv

Each ``--run`` is ``LABEL=RUN_DIR`` (split at the last ``=``); ``RUN_DIR`` is a QMIX run folder
with ``config.json``, ``episodes.csv`` and ``checkpoint.pt`` (whose replay gives the number of
agents), finished or stopped during training.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import torch

from ltos_traffic import atomic


def load_run(label: str, run: Path) -> pd.DataFrame:
    """Training rows of one QMIX run with its ``implied_value`` column."""
    for name in ("config.json", "episodes.csv", "checkpoint.pt"):
        if not (run / name).is_file():
            raise SystemExit(f"{run}: no {name}; pass a finished QMIX run folder")
    config = json.loads((run / "config.json").read_text())
    if config["controller"] != "qmix":
        raise SystemExit(f"{run} is a {config['controller']} run; this reads QMIX runs")
    cfg, scenario = config["controller_config"], config["scenario"]
    decisions = round(scenario["episode_seconds"] / scenario["decision_interval_s"])
    state = torch.load(run / "checkpoint.pt", weights_only=True)["state"]
    agents = state["buffer"]["arrays"]["actions"].shape[-1]  # stored actions: (E, T, N)
    rows = pd.read_csv(run / "episodes.csv")
    rows = rows[rows["phase"] == "train"]
    team_reward = rows["episode_return"] / (decisions * agents) * cfg["reward_scale"]
    return pd.DataFrame(
        {
            "label": label,
            "seed": config["seed"],
            "episode": rows["episode"],
            "avg_travel_time_s": rows["avg_travel_time_s"],
            "team_reward": team_reward,
            "implied_value": team_reward / (1.0 - cfg["gamma"]),
            "q_tot": rows["q_tot"],
            "td_loss": rows["td_loss"],
            "grad_norm": rows["grad_norm"],
        }
    )


def plot(frame: pd.DataFrame, title: str) -> bytes:
    """Three panels over training episodes: travel time, Q_tot against implied value, TD loss."""
    fig, axes = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, run) in enumerate(frame.groupby("label", sort=False)):
        colour = colours[k % len(colours)]
        axes[0].plot(run["episode"], run["avg_travel_time_s"], color=colour, label=label)
        axes[1].plot(run["episode"], run["q_tot"], color=colour, label=f"{label}: Q_tot")
        axes[1].plot(run["episode"], run["implied_value"], color=colour, linestyle="--")
        axes[2].plot(run["episode"], run["td_loss"], color=colour)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("training travel time (s)")
    axes[1].axhline(0.0, color="grey", linewidth=0.8)
    axes[1].set_ylabel("Q_tot (solid), r / (1 - gamma) (dashed)")
    axes[2].set_yscale("log")
    axes[2].set_ylabel("TD loss")
    axes[2].set_xlabel("training episode")
    axes[0].legend(fontsize="small")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", action="append", required=True, help="LABEL=RUN_DIR (repeat; split at the last =)"
    )
    parser.add_argument("--title", default="")
    parser.add_argument("--out", required=True, type=Path, help="the figure (PNG)")
    parser.add_argument("--csv", type=Path, help="also write the plotted rows here")
    args = parser.parse_args()
    frames = []
    for item in args.run:
        label, sep, directory = item.rpartition("=")
        if not sep or not label:
            raise SystemExit(f"--run takes LABEL=RUN_DIR, got {item!r}")
        frames.append(load_run(label, Path(directory)))
    frame = pd.concat(frames, ignore_index=True)
    atomic.atomic_write_bytes(args.out, plot(frame, args.title))
    if args.csv is not None:
        atomic.atomic_write_text(args.csv, frame.to_csv(index=False))
    for label, run in frame.groupby("label", sort=False):
        last = run.iloc[-1]
        travel = last["avg_travel_time_s"]
        print(
            f"{label}: episode {int(last['episode'])}, travel time {travel:.1f} s,"
            f" Q_tot {last['q_tot']:.2f}, implied {last['implied_value']:.2f},"
            f" highest Q_tot {run['q_tot'].max():.2f}"
        )


if __name__ == "__main__":
    main()
