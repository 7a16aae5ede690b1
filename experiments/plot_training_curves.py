"""Training curves of labelled groups of runs on one axis (variants of one controller included).

Usage:

    python experiments/plot_training_curves.py --title "congested Shenzhen, 100 episodes" \
        --group "ltos=results/shenzhen_congested_v1/ltos" \
        --group "ltos, hl_max_shift 0.03=trust/shenzhen_congested_v1/ltos" \
        --group "fixed_ltos=results/shenzhen_congested_v1/fixed_ltos" \
        --out docs/results/shenzhen_congested_100ep_learning.png

Each group is ``LABEL=DIR`` where ``DIR`` holds ``seed<k>/episodes.csv``. ``--csv PATH`` also
keeps the plotted training rows (label, seed, episode and the figures in ``KEPT``), so the
curves outlive the run directories. ``ltos-traffic
report`` groups runs by controller name, so two settings of one controller share a line there;
this draws one line per label (mean over seeds of the training episodes' travel time of arrived
vehicles, band min to max) and, where the runs record it, the mean self-weight below.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from ltos_traffic import atomic

KEPT = ("avg_travel_time_s", "episode_return", "teleports", "epsilon", "self_weight", "wall_s")


def load_group(directory: Path) -> pd.DataFrame:
    """Training rows of every ``seed*/episodes.csv`` under ``directory``, with a seed column."""
    frames = []
    for path in sorted(directory.glob("seed*/episodes.csv")):
        frame = pd.read_csv(path)
        frame = frame[frame["phase"] == "train"].assign(seed=int(path.parent.name[4:]))
        frames.append(frame)
    if not frames:
        raise SystemExit(f"{directory}: no seed*/episodes.csv; pass a controller's run folder")
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--group", action="append", required=True, help="LABEL=DIR (repeat; split at the last =)"
    )
    parser.add_argument("--title", default="")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--csv", type=Path, help="also write the plotted training rows here")
    args = parser.parse_args()
    groups = {}
    for item in args.group:
        label, sep, directory = item.rpartition("=")
        if not sep:
            raise SystemExit(f"--group {item!r}: expected LABEL=DIR")
        groups[label] = load_group(Path(directory))
    with_weights = [
        g for g in groups.values() if "self_weight" in g and g["self_weight"].notna().any()
    ]
    rows = 2 if with_weights else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 3.6 * rows), sharex=True, squeeze=False)
    for label, frame in groups.items():
        stats = frame.groupby("episode")["avg_travel_time_s"].agg(["mean", "min", "max"])
        seeds = frame["seed"].nunique()
        (line,) = axes[0][0].plot(stats.index, stats["mean"], label=f"{label} ({seeds} seeds)")
        axes[0][0].fill_between(stats.index, stats["min"], stats["max"], alpha=0.15,
                                color=line.get_color())  # fmt: skip
        if rows == 2 and "self_weight" in frame and frame["self_weight"].notna().any():
            weights = frame.groupby("episode")["self_weight"].agg(["mean", "min", "max"])
            axes[1][0].plot(weights.index, weights["mean"], color=line.get_color(), label=label)
            axes[1][0].fill_between(weights.index, weights["min"], weights["max"], alpha=0.15,
                                    color=line.get_color())  # fmt: skip
    axes[0][0].set_ylabel("training travel time (s)")
    axes[0][0].set_yscale("log")
    axes[0][0].legend(fontsize=8)
    axes[0][0].grid(alpha=0.3)
    if rows == 2:
        axes[1][0].set_ylabel("mean self-weight")
        axes[1][0].grid(alpha=0.3)
        axes[1][0].legend(fontsize=8)
    axes[-1][0].set_xlabel("training episode")
    fig.suptitle(f"{args.title} (line: mean over seeds, band: min to max)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic.atomic_write_bytes(args.out, buf.getvalue())
    if args.csv:
        frames = []
        for label, frame in groups.items():
            columns = ["seed", "episode", *(c for c in KEPT if c in frame)]
            frames.append(frame[columns].assign(label=label))
        kept = pd.concat(frames, ignore_index=True)
        kept = kept[["label", *(c for c in kept.columns if c != "label")]]
        atomic.atomic_write_bytes(args.csv, kept.to_csv(index=False).encode())


if __name__ == "__main__":
    main()
