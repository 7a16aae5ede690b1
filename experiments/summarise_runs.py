"""Mean ± std over seeds of finished run directories, as a markdown table and a CSV.

Usage:

    python experiments/summarise_runs.py --scenario grid6x6_congested_v1 \
        --roots results reeval --out docs/results/grid6x6_congested_summary

Each root holds ``<scenario>/<controller>/seed<k>/summary.json`` (``ltos-traffic run`` and
``compare`` write them). A figure missing from a run's summary is taken from the same run in a
later root: re-evaluating a finished run's checkpoint with ``ltos-traffic run --checkpoint`` adds
metrics that older code did not write, and must reproduce the travel time it already had
(checked here).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from ltos_traffic import atomic

COLUMNS = (
    ("avg_journey_time_s", "journey time, all due vehicles (s)"),
    ("avg_travel_time_s", "travel time, arrived (s)"),
    ("avg_travel_time_all_s", "counting vehicles inside (s)"),
    ("waiting_to_insert", "never inserted"),
    ("teleports", "teleports"),
    ("self_weight", "mean self-weight"),
)


def _load(roots: list[Path], scenario: str) -> dict[str, dict[int, dict[str, float]]]:
    runs: dict[str, dict[int, dict[str, float]]] = {}
    for root in roots:
        for path in sorted((root / scenario).glob("*/seed*/summary.json")):
            summary = json.loads(path.read_text())
            controller, seed = path.parent.parent.name, int(path.parent.name[4:])
            row = runs.setdefault(controller, {}).setdefault(seed, {})
            if not row:
                row.update(summary)
                continue
            same = summary.get("avg_travel_time_s"), row.get("avg_travel_time_s")
            if not math.isclose(*same, rel_tol=1e-9):
                raise SystemExit(f"{path}: travel time {same[0]} differs from the run's {same[1]}")
            for key, value in summary.items():
                row.setdefault(key, value)
    return runs


def _cell(values: list[float], key: str) -> str:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return "-"
    if key in ("waiting_to_insert", "teleports"):
        lo, hi = int(min(vals)), int(max(vals))
        return f"{lo}" if lo == hi else f"{lo}-{hi}"
    if key == "self_weight":
        return " / ".join(f"{v:.2f}" for v in vals)
    spread = np.std(vals, ddof=1) if len(vals) > 1 else 0.0  # sample std, as the reports
    return f"{np.mean(vals):.1f} ± {spread:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--roots", nargs="+", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    runs = _load(args.roots, args.scenario)
    order = sorted(
        runs,
        key=lambda c: np.mean(
            [r["avg_journey_time_s"] for r in runs[c].values() if "avg_journey_time_s" in r]
            or [math.inf]
        ),
    )
    lines = [
        "| controller | seeds | training | " + " | ".join(t for _, t in COLUMNS) + " |",
        "|---" * (3 + len(COLUMNS)) + "|",
    ]
    csv_rows = ["controller,seed," + ",".join(k for k, _ in COLUMNS)]
    for controller in order:
        seeds = sorted(runs[controller])
        rows = [runs[controller][s] for s in seeds]
        episodes = int(rows[0].get("train_episodes") or 0)
        # a checkpoint's evaluation (`run --checkpoint`) trains nothing itself; its summary
        # says what the checkpoint holds ("checkpoint: 200 episodes")
        training = f"{episodes} episodes" if episodes else str(rows[0].get("training") or "none")
        cells = [_cell([r.get(k) for r in rows], k) for k, _ in COLUMNS]
        seed_text = ",".join(map(str, seeds))
        lines.append(f"| {controller} | {seed_text} | {training} | " + " | ".join(cells) + " |")
        for s, r in zip(seeds, rows, strict=True):
            csv_rows.append(f"{controller},{s}," + ",".join(str(r.get(k, "")) for k, _ in COLUMNS))
    table = "\n".join(lines) + "\n"
    atomic.atomic_write_bytes(args.out.with_suffix(".md"), table.encode())
    atomic.atomic_write_bytes(args.out.with_suffix(".csv"), ("\n".join(csv_rows) + "\n").encode())
    print(table)


if __name__ == "__main__":
    main()
