"""experiments/qmix_credit.py: where a trained QMIX's team value sits, read from a real run."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ltos_traffic.cli import cli

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "qmix_credit.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_reads_a_sumo_trained_qmix_run_with_its_own_settings(tmp_path: Path) -> None:
    """A 2-episode grid2x2 run (SUMO) with a --set value: the figures are finite and consistent."""
    args = ["run", "--net", "grid2x2", "--controller", "qmix", "--episodes", "2", "--seed", "0",
            "--set", "gamma=0.8", "--out", str(tmp_path)]  # fmt: skip
    assert CliRunner().invoke(cli, args).exit_code == 0
    run = next(tmp_path.glob("*/qmix/seed0"))
    out = tmp_path / "credit.csv"
    done = _run(str(run), "--out", str(out))
    assert done.returncode == 0, done.stderr
    with out.open(newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert float(row["gamma"]) == 0.8  # the controller is rebuilt as it was trained
    assert int(row["train_episodes"]) == 2
    values = {k: float(v) for k, v in row.items() if k not in ("run", "scenario")}
    assert all(math.isfinite(v) for v in values.values())
    assert values["q_i_spread"] >= 0 and values["dqtot_dqi"] >= 0  # monotonic mixer
    assert math.isclose(values["v_part"] + values["agents_part"], values["q_tot"], rel_tol=1e-4)


def test_a_directory_without_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    done = _run(str(tmp_path))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "checkpoint.pt" in done.stderr
