"""experiments/qmix_max_green.py: a trained QMIX replayed with a maximum green, on SUMO."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ltos_traffic.cli import cli

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "qmix_max_green.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_no_limit_reproduces_the_run_and_a_limit_of_one_changes_every_phase(
    tmp_path: Path,
) -> None:
    args = ["run", "--net", "grid2x2", "--controller", "qmix", "--episodes", "2", "--seed", "0",
            "--set", "gamma=0.8", "--out", str(tmp_path)]  # fmt: skip
    assert CliRunner().invoke(cli, args).exit_code == 0
    run = next(tmp_path.glob("*/qmix/seed0"))
    out = tmp_path / "max_green.csv"
    done = _run(str(run), "--max-repeat", "0,1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as fh:
        free, capped = list(csv.DictReader(fh))
    summary = json.loads((run / "summary.json").read_text())
    assert float(free["avg_travel_time_s"]) == summary["avg_travel_time_s"]  # the same episode
    assert int(free["teleports"]) == summary["teleports"]
    assert (free["max_repeat"], capped["max_repeat"], capped["trained_max_repeat"]) == (
        "0",
        "1",
        "0",
    )
    assert float(capped["longest_hold_steps"]) == 1.0 and float(capped["hold_rate"]) == 0.0
    assert float(free["longest_hold_steps"]) >= 1.0


def test_bad_limits_and_directories_are_one_line_errors(tmp_path: Path) -> None:
    for args in ([str(tmp_path)], [str(tmp_path), "--max-repeat", "a,b"],
                 [str(tmp_path), "--max-repeat", "-1"]):  # fmt: skip
        done = _run(*args)
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert done.stderr.strip().count("\n") == 0
