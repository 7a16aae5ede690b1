"""One markdown table, maps by controllers, from the ``summary.csv`` of ``ltos-traffic report``.

Usage:
    ltos-traffic report resco rresco30 --out resco_report
    python experiments/map_table.py resco_report/tables/summary.csv \
        --controllers sumo_program,fixed_time,max_pressure,dqn,dgn,ltos \
        --out docs/results/resco_summary.md

Each cell: average delay (mean ± std over seeds, s) / average travel time of arrived vehicles /
journey time counting the wait to enter, the README's RESCO format; the lowest mean delay of a
map is in bold. A header line per controller says its training budget. Maps keep the order of
the first summary in which they appear.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ltos_traffic import atomic
from ltos_traffic.experiments import rundir

DELAY, TRAVEL, JOURNEY = "avg_delay_s", "avg_travel_time_s", "avg_journey_time_s"


def _number(row: dict[str, str], key: str) -> float:
    text = row.get(key, "")
    return float(text) if text not in ("", "nan") else math.nan


def read_summaries(paths: list[Path]) -> dict[str, dict[str, dict[str, str]]]:
    """``{scenario: {controller: row}}``; a later file's row replaces an earlier one's."""
    table: dict[str, dict[str, dict[str, str]]] = {}
    for path in paths:
        for row in rundir.read_csv(path):
            table.setdefault(row["scenario"], {})[row["controller"]] = row
    return table


def cell(row: dict[str, str] | None, best: bool) -> str:
    """``delay ± std / travel / journey`` of one summary row, ``-`` when missing."""
    if row is None or math.isnan(_number(row, f"{DELAY}_mean")):
        return "-"
    delay = f"{_number(row, f'{DELAY}_mean'):.1f} ± {_number(row, f'{DELAY}_std'):.1f}"
    if best:
        delay = f"**{delay}**"
    rest = (f"{_number(row, f'{key}_mean'):.1f}" for key in (TRAVEL, JOURNEY))
    return " / ".join([delay, *rest])


def markdown(table: dict[str, dict[str, dict[str, str]]], controllers: list[str]) -> str:
    """The maps-by-controllers table (scenario names without their ``_v1`` suffix)."""
    lines = [
        "| map | " + " | ".join(controllers) + " |",
        "|---" * (1 + len(controllers)) + "|",
    ]
    for scenario, rows in table.items():
        delays = {c: _number(rows[c], f"{DELAY}_mean") for c in controllers if c in rows}
        finite = {c: d for c, d in delays.items() if not math.isnan(d)}
        best = min(finite, key=finite.__getitem__) if finite else None
        cells = [cell(rows.get(c), c == best) for c in controllers]
        lines.append(f"| {scenario.removesuffix('_v1')} | " + " | ".join(cells) + " |")
    budgets = []
    for c in controllers:
        episodes = {rows[c].get("train_episodes", "") for rows in table.values() if c in rows}
        episodes -= {"", "0"}  # untrained controllers state no budget
        if episodes:
            budgets.append(f"{c}: {', '.join(sorted(episodes))} training episodes")
    note = f"\nTraining: {'; '.join(budgets)}.\n" if budgets else ""
    return "\n".join(lines) + "\n" + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summaries", nargs="+", type=Path, help="report summary.csv files")
    parser.add_argument("--controllers", required=True, help="comma-separated column order")
    parser.add_argument("--out", type=Path, help="write the table here too")
    args = parser.parse_args()
    for path in args.summaries:
        if not path.is_file():
            raise SystemExit(f"no summary at {path}; make one with `ltos-traffic report RUNS`")
    text = markdown(read_summaries(args.summaries), args.controllers.split(","))
    if args.out is not None:
        atomic.atomic_write_bytes(args.out, text.encode())
    print(text)


if __name__ == "__main__":
    main()
