"""experiments/qmix_credit.py: where a trained QMIX's team value sits, read from a real run."""

from __future__ import annotations

import csv
import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    assert 0 <= values["hold_rate"] <= 1 and values["longest_hold_steps"] >= 1
    assert 0 <= values["unused_phases"] <= 4


def test_phase_holds_counts_repeats_runs_and_unused_phases() -> None:
    """Two agents, one episode of 5 real steps (and one padded): the counts by hand."""
    spec = importlib.util.spec_from_file_location("qmix_credit", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    actions = np.array([[[0, 1], [0, 2], [0, 1], [1, 2], [1, 1], [3, 3]]])  # (E=1, T=6, N=2)
    filled = np.array([[True] * 5 + [False]])
    mask = np.ones((1, 7, 2, 4), bool)
    mask[:, :, 1, 3] = False  # agent 1 has three legal phases
    holds = module.phase_holds(actions, filled, mask)
    # repeats: agent 0 at steps 1, 2, 4; agent 1 none -> 3 of 8 decisions
    assert holds["hold_rate"] == 3 / 8
    assert holds["longest_hold_steps"] == (3 + 1) / 2  # agent 0 holds phase 0 for 3 steps
    assert holds["unused_phases"] == (2 + 1) / 2  # agent 0 never picks 2, 3; agent 1 never 0


def test_a_directory_without_checkpoint_is_a_one_line_error(tmp_path: Path) -> None:
    done = _run(str(tmp_path))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "checkpoint.pt" in done.stderr
