"""experiments/map_table.py: the README's maps-by-controllers table from report summaries."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "map_table.py"
FIELDS = [
    "scenario", "controller", "seeds", "training", "train_episodes",
    "avg_delay_s_mean", "avg_delay_s_std", "avg_travel_time_s_mean", "avg_journey_time_s_mean",
]  # fmt: skip


def _summary(path: Path, rows: list[tuple[str, str, int, float, float]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        for scenario, controller, episodes, delay, std in rows:
            writer.writerow(
                {"scenario": scenario, "controller": controller, "seeds": 3,
                 "training": "trained" if episodes else "none", "train_episodes": episodes,
                 "avg_delay_s_mean": delay, "avg_delay_s_std": std,
                 "avg_travel_time_s_mean": delay + 100, "avg_journey_time_s_mean": delay + 110}
            )  # fmt: skip
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_merges_summaries_bolds_the_best_delay_and_states_budgets(tmp_path: Path) -> None:
    static = _summary(
        tmp_path / "a.csv",
        [
            ("cologne1_v1", "max_pressure", 0, 17.0, 0.1),
            ("grid4x4_v1", "max_pressure", 0, 49.3, 0.8),
        ],
    )
    learned = _summary(
        tmp_path / "b.csv",
        [("cologne1_v1", "dqn", 30, 15.25, 0.5), ("cologne1_v1", "max_pressure", 0, 16.0, 0.2)],
    )
    out = tmp_path / "table.md"
    done = _run(str(static), str(learned), "--controllers", "max_pressure,dqn", "--out", str(out))
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "| map | max_pressure | dqn |"
    # the later summary's max_pressure row replaces the earlier one; dqn's delay is lowest
    assert lines[2] == "| cologne1 | 16.0 ± 0.2 / 116.0 / 126.0 | **15.2 ± 0.5** / 115.2 / 125.2 |"
    assert lines[3] == "| grid4x4 | **49.3 ± 0.8** / 149.3 / 159.3 | - |"
    assert "Training: dqn: 30 training episodes." in out.read_text()


def test_a_missing_summary_is_a_one_line_error(tmp_path: Path) -> None:
    done = _run(str(tmp_path / "none.csv"), "--controllers", "dqn")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "ltos-traffic report" in done.stderr
