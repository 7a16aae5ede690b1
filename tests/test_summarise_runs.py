"""experiments/summarise_runs.py: the training column of trained, checkpoint and classical runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "summarise_runs.py"


def _summary(root: Path, controller: str, seed: int, tt: float, **extra: object) -> None:
    run = root / "grid_v1" / controller / f"seed{seed}"
    run.mkdir(parents=True)
    row = {"avg_travel_time_s": tt, "avg_journey_time_s": tt, "teleports": 0, **extra}
    (run / "summary.json").write_text(json.dumps(row))


def test_training_column_says_what_each_run_was_trained_on(tmp_path: Path) -> None:
    for seed in (0, 1):
        _summary(tmp_path, "dqn", seed, 110.0 + seed, train_episodes=100, training="100 episodes")
        _summary(tmp_path, "qmix", seed, 120.0 + seed, train_episodes=0,
                 training="checkpoint: 200 episodes")  # fmt: skip
        _summary(tmp_path, "fixed_time", seed, 321.0, train_episodes=0, training="none")
    out = tmp_path / "summary"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--scenario", "grid_v1", "--roots", str(tmp_path),
         "--out", str(out)], capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in
            out.with_suffix(".md").read_text().splitlines()[2:]}  # fmt: skip
    assert rows["dqn"][2] == "100 episodes" and rows["dqn"][4] == "110.5 ± 0.7"
    assert rows["qmix"][2] == "checkpoint: 200 episodes"
    assert rows["fixed_time"][2] == "none"
