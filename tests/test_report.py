"""Reports from real short runs on the 2x2 grid: table values, figures, reuse, CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from ltos_traffic import report
from ltos_traffic.cli import cli
from ltos_traffic.errors import UserError
from ltos_traffic.experiments import compare
from ltos_traffic.scenario import Scenario, load_scenario

SECONDS = 150.0  # simulated seconds per episode: short, but vehicles finish trips
CONTROLLERS = ["max_pressure", "ltos"]
SEEDS = [0, 1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def scenario() -> Scenario:
    return load_scenario("grid2x2").with_timing(seconds=SECONDS)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Max-pressure on two seeds and LToS (one training episode) on one seed."""
    root = tmp_path_factory.mktemp("runs")
    compare.ensure_runs(scenario(), ["max_pressure"], SEEDS, root)
    compare.ensure_runs(scenario(), ["ltos"], [0], root, train_episodes=1)
    return root


@pytest.fixture(scope="module")
def built(runs_root: Path, tmp_path_factory: pytest.TempPathFactory) -> report.Report:
    out = tmp_path_factory.mktemp("report")
    return report.build_report(report.load_runs([runs_root]), out, order=CONTROLLERS)


def summaries(root: Path, controller: str) -> list[dict[str, Any]]:
    files = sorted((root / "grid2x2_v1" / controller).glob("seed*/summary.json"))
    return [json.loads(f.read_text()) for f in files]


def test_table_values_are_the_runs_summaries(runs_root: Path, built: report.Report) -> None:
    table = built.summary.set_index("controller")
    assert list(built.summary["controller"]) == CONTROLLERS  # report order
    saved = pd.read_csv(built.markdown.parent / "tables" / "summary.csv").set_index("controller")
    text = built.markdown.read_text()
    for controller, n_seeds in (("max_pressure", 2), ("ltos", 1)):
        runs = summaries(runs_root, controller)
        assert len(runs) == n_seeds
        assert table.loc[controller, "seeds"] == n_seeds
        for metric in report.METRICS:
            values = np.array([r[metric.column] for r in runs], dtype=float)
            mean = table.loc[controller, f"{metric.column}_mean"]
            std = table.loc[controller, f"{metric.column}_std"]
            assert mean == pytest.approx(values.mean())
            assert saved.loc[controller, f"{metric.column}_mean"] == pytest.approx(values.mean())
            if n_seeds > 1:
                assert std == pytest.approx(values.std(ddof=1))
            else:
                assert math.isnan(std)
            # the number a reader sees in the Markdown table
            assert report.format_cell(mean, std, metric.unit) in text
    assert table.loc["ltos", "train_episodes"] == 1
    assert table.loc["max_pressure", "train_episodes"] == 0


def test_every_figure_is_a_valid_png(built: report.Report) -> None:
    names = {p.name for p in built.figures}
    kinds = ("metrics", "learning", "queue", "delay_map", "sharing_map", "sharing_training")
    assert names == {f"grid2x2_v1_{k}.png" for k in kinds}
    for path in built.figures:
        assert path.is_file()
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
        assert min(pixels.shape[:2]) > 200
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # drawn, not blank


def test_html_is_self_contained_and_markdown_links_figures(built: report.Report) -> None:
    page = built.html.read_text()
    assert page.count('src="data:image/png;base64,') == len(built.figures)
    assert 'src="figures/' not in page
    assert "<table>" in page and "max_pressure" in page
    text = built.markdown.read_text()
    for path in built.figures:
        assert f"](figures/{path.name})" in text


def test_tables_are_written_as_csv_and_parquet(built: report.Report) -> None:
    tables = built.markdown.parent / "tables"
    for name in ("runs", "summary", "episodes", "steps", "agents", "weights"):
        csv = pd.read_csv(tables / f"{name}.csv")
        parquet = pd.read_parquet(tables / f"{name}.parquet")
        assert len(csv) == len(parquet) > 0
        assert list(csv.columns) == list(parquet.columns)
    steps = pd.read_csv(tables / "steps.csv")
    # one queue point per decision step of every evaluation episode
    assert len(steps) == 3 * int(SECONDS / 10)


def test_per_agent_tables_agree_with_the_episode(runs_root: Path) -> None:
    for controller in CONTROLLERS:
        run = runs_root / "grid2x2_v1" / controller / "seed0"
        summary = json.loads((run / "summary.json").read_text())
        agents = pd.read_csv(run / "agents.csv")
        assert len(agents) == 4 and agents[["x", "y"]].notna().all().all()
        assert agents["mean_queue"].mean() == pytest.approx(summary["mean_queue"])
    ltos = runs_root / "grid2x2_v1" / "ltos" / "seed0"
    weights = pd.read_csv(ltos / "weights.csv")
    assert weights.groupby("agent")["weight"].sum().to_numpy() == pytest.approx(1.0, abs=1e-5)
    own = weights[weights["slot"] == 0]
    assert (own["agent"] == own["neighbour"]).all()
    assert json.loads((ltos / "summary.json").read_text())["self_weight"] == pytest.approx(
        own["weight"].mean()
    )
    episodes = pd.read_csv(ltos / "episodes.csv")
    train = episodes[episodes["phase"] == "train"]
    assert train["self_weight"].between(0.0, 1.0).all()
    assert not (runs_root / "grid2x2_v1" / "max_pressure" / "seed0" / "weights.csv").exists()


def test_compare_reuses_only_matching_runs(runs_root: Path) -> None:
    calls: list[tuple[str, int]] = []

    def fake_run(scen: Scenario, controller: str, *, seed: int, **_: Any) -> dict[str, Any]:
        calls.append((controller, seed))
        return {}

    compare.ensure_runs(scenario(), ["max_pressure"], SEEDS, runs_root, run=fake_run)
    compare.ensure_runs(scenario(), ["ltos"], [0], runs_root, train_episodes=1, run=fake_run)
    assert calls == []
    # another episode length, training length or seed is a different run
    longer = load_scenario("grid2x2").with_timing(seconds=SECONDS + 10)
    compare.ensure_runs(longer, ["max_pressure"], [0], runs_root, run=fake_run)
    compare.ensure_runs(scenario(), ["ltos"], [0], runs_root, train_episodes=2, run=fake_run)
    compare.ensure_runs(scenario(), ["max_pressure"], [7], runs_root, run=fake_run)
    assert calls == [("max_pressure", 0), ("ltos", 0), ("max_pressure", 7)]


def test_report_command_rebuilds_without_running(runs_root: Path, tmp_path: Path) -> None:
    one = runs_root / "grid2x2_v1" / "max_pressure" / "seed0"
    result = CliRunner().invoke(
        cli, ["report", str(one), str(runs_root / "grid2x2_v1" / "ltos"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "max_pressure" in result.output and "ltos" in result.output
    runs = pd.read_csv(tmp_path / "tables" / "runs.csv")
    assert sorted(zip(runs["controller"], runs["seed"])) == [("ltos", 0), ("max_pressure", 0)]
    assert (tmp_path / "report.html").is_file()


def test_report_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no finished runs"):
        report.find_run_dirs([tmp_path])
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "missing")])
    assert isinstance(result.exception, UserError)
    result = CliRunner().invoke(
        cli, ["compare", "--net", "grid2x2", "--controllers", "nope", "--out", str(tmp_path)]
    )
    assert isinstance(result.exception, UserError)
    assert "unknown controller" in str(result.exception)


def test_the_same_run_twice_is_refused(runs_root: Path, tmp_path: Path) -> None:
    run = runs_root / "grid2x2_v1" / "max_pressure" / "seed0"
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    with pytest.raises(UserError, match="appear twice"):
        report.load_runs([run, copy])


def test_runs_written_before_a_metric_existed_still_report(runs_root: Path, tmp_path: Path) -> None:
    """Older run directories lack newer summary keys: the report shows NaN, not a traceback."""
    old = tmp_path / "old" / "grid2x2_v1" / "max_pressure" / "seed0"
    shutil.copytree(runs_root / "grid2x2_v1" / "max_pressure" / "seed0", old)
    summary = json.loads((old / "summary.json").read_text())
    travel = summary["avg_travel_time_s"]
    del summary["avg_journey_time_s"]
    (old / "summary.json").write_text(json.dumps(summary))
    built = report.build_report(report.load_runs([old]), tmp_path / "report", order=CONTROLLERS)
    row = built.summary.set_index("controller").loc["max_pressure"]
    assert math.isnan(row["avg_journey_time_s_mean"])
    assert row["avg_travel_time_s_mean"] == pytest.approx(travel)
