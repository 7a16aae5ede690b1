"""experiments/plot_training_curves.py: labelled run groups on one axis, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "plot_training_curves.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def _episodes(folder: Path, seeds: int, weights: bool) -> None:
    for seed in range(seeds):
        rows = pd.DataFrame(
            {"episode": [0, 1, 2, 3], "phase": ["train"] * 3 + ["eval"],
             "avg_travel_time_s": [300.0 - 10 * k - seed for k in range(4)]}
        )  # fmt: skip
        if weights:
            rows["self_weight"] = 0.9 - 0.01 * rows["episode"]
        (folder / f"seed{seed}").mkdir(parents=True)
        rows.to_csv(folder / f"seed{seed}" / "episodes.csv", index=False)


def test_draws_labelled_groups_with_an_equals_sign_in_the_label(tmp_path: Path) -> None:
    _episodes(tmp_path / "a", seeds=2, weights=True)
    _episodes(tmp_path / "b", seeds=1, weights=False)
    out, kept = tmp_path / "curves.png", tmp_path / "curves.csv"
    done = _run("--group", f"ltos, hl_max_shift=0.03={tmp_path / 'a'}",
                "--group", f"dgn={tmp_path / 'b'}",
                "--out", str(out), "--csv", str(kept))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = pd.read_csv(kept)  # the training rows only, labelled, with the seed
    assert list(rows.columns[:3]) == ["label", "seed", "episode"]
    assert len(rows) == 9 and set(rows["label"]) == {"ltos, hl_max_shift=0.03", "dgn"}
    first = rows[(rows["label"] == "dgn") & (rows["episode"] == 0)]
    assert first["avg_travel_time_s"].tolist() == [300.0]
    assert rows["self_weight"].isna().sum() == 3  # dgn records no weights


def test_bad_groups_are_one_line_errors(tmp_path: Path) -> None:
    for group, says in (("no-equals-sign", "expected LABEL=DIR"),
                        (f"x={tmp_path / 'missing'}", "no seed*/episodes.csv")):  # fmt: skip
        done = _run("--group", group, "--out", str(tmp_path / "x.png"))
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], done.stderr
        assert not (tmp_path / "x.png").exists()
