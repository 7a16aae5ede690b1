"""experiments/ltos_weight_sensitivity.py: a trained LToS replayed with shifted sharing weights."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ltos_traffic.cli import cli

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "ltos_weight_sensitivity.py"


def test_a_lower_self_logit_shares_more_and_rows_are_appended(tmp_path: Path) -> None:
    args = ["train", "--net", "grid2x2", "--controller", "ltos", "--episodes", "1",
            "--seconds", "120", "--workers", "1", "--out", str(tmp_path)]  # fmt: skip
    assert CliRunner().invoke(cli, args).exit_code == 0
    checkpoint = tmp_path / "grid2x2_v1" / "ltos" / "seed0" / "checkpoint.pt"
    out = tmp_path / "sensitivity.csv"
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--scenario", "grid2x2_v1", "--checkpoint",
             str(checkpoint), "--shifts", "0,-2", "--out", str(out)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["self_logit_shift"]) for r in rows] == [0.0, -2.0, 0.0, -2.0]
    assert float(rows[1]["self_weight"]) < float(rows[0]["self_weight"]) - 0.2
    assert rows[0] == rows[2]  # the same evaluation episode: deterministic
    missing = subprocess.run(
        [sys.executable, str(SCRIPT), "--scenario", "grid2x2_v1", "--checkpoint",
         str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.csv")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert missing.returncode != 0 and "checkpoint not found" in missing.stderr
