"""Compare controllers: run directories in, tables, figures and a report out.

:func:`load_runs` reads finished run directories (``summary.json``,
``episodes.csv``, ``steps.csv``, ``agents.csv``, ``weights.csv``; see
:mod:`ltos_traffic.experiments.rundir`) into pandas DataFrames. :func:`build_report` writes,
under one output directory:

* ``tables/``: ``runs``, ``summary``, ``episodes``, ``steps``, ``agents`` and
  ``weights`` as CSV, and as Parquet when pyarrow imports;
* ``figures/``: PNGs per scenario (travel time by controller, learning curves,
  queue over time, a map of mean queue per intersection, and for controllers
  that learn to share, the self-weight per intersection and over training);
* ``report.md`` (figures linked) and ``report.html`` (figures embedded, no
  outside file needed).

This module only reads run directories; the ``compare`` command first runs what is
missing with :func:`ltos_traffic.experiments.compare.ensure_runs`.

Figures are drawn on :class:`matplotlib.figure.Figure` objects directly, so the
process-wide pyplot backend is never touched.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ltos_traffic import atomic
from ltos_traffic.errors import UserError
from ltos_traffic.experiments import rundir

KEYS = ["scenario", "controller", "seed"]  # identify a run in every table


@dataclass(frozen=True)
class Metric:
    """One column of the comparison table."""

    column: str  # name in summary.json / episodes.csv
    title: str
    unit: str
    better: str  # "lower" or "higher"

    @property
    def label(self) -> str:
        """Title with unit, for table headers and axes."""
        return f"{self.title} ({self.unit})"


METRICS = (
    Metric("avg_travel_time_s", "Average travel time", "s", "lower"),
    Metric("avg_travel_time_all_s", "Travel time incl. unfinished", "s", "lower"),
    Metric("avg_delay_s", "Average delay", "s", "lower"),
    Metric("avg_delay_all_s", "Delay incl. unfinished", "s", "lower"),
    Metric("avg_journey_time_s", "Journey time incl. waiting to enter", "s", "lower"),
    Metric("throughput", "Throughput", "veh/h", "higher"),
    Metric("mean_queue", "Mean queue", "veh per intersection", "lower"),
    Metric("mean_waiting_time_s", "Mean waiting time", "s", "lower"),
)
RETURN = Metric("episode_return", "Episode return", "reward", "higher")  # grid-worlds' table


def shown_metrics(summary: pd.DataFrame) -> tuple[Metric, ...]:
    """The traffic metrics, or the episode return where none is defined (grid-worlds)."""
    traffic = tuple(m for m in METRICS if summary[f"{m.column}_mean"].notna().any())
    return traffic or (RETURN,)


@dataclass(frozen=True)
class RunData:
    """Every table of a set of run directories; each has the ``KEYS`` columns.

    Attributes:
        runs: one row per run: keys, ``train_episodes``, evaluation metrics,
            ``run_dir``, ``net_file`` (may be missing).
        episodes: ``episodes.csv`` rows (``phase`` "train" or "eval").
        steps: ``steps.csv`` rows: ``sim_time_s``, ``queue`` of the evaluation.
        agents: ``agents.csv`` rows: ``agent``, ``x``, ``y``, ``mean_queue``.
        weights: ``weights.csv`` rows: ``agent``, ``slot``, ``neighbour``, ``weight``.
    """

    runs: pd.DataFrame
    episodes: pd.DataFrame
    steps: pd.DataFrame
    agents: pd.DataFrame
    weights: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        """Name -> table, in a fixed order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class Report:
    """What :func:`build_report` wrote."""

    markdown: Path
    html: Path
    figures: tuple[Path, ...]
    tables: tuple[Path, ...]
    summary: pd.DataFrame


# -- reading run directories -------------------------------------------------------------


def find_run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories under ``paths``: each is a run directory or a folder holding some.

    Raises:
        UserError: a path does not exist, or no finished run (``summary.json``) is found.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UserError(f"{path} does not exist; give run directories or a folder of runs")
        if (path / "summary.json").is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p.parent for p in path.rglob("summary.json"))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        shown = ", ".join(str(p) for p in paths)
        raise UserError(f"no finished runs (summary.json) under {shown}; run or compare first")
    return unique


def _read_csv(path: Path, keys: dict[str, Any]) -> pd.DataFrame:
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame()
    table = pd.read_csv(path)
    for k, (name, value) in enumerate(keys.items()):
        table.insert(k, name, value)
    return table


def load_runs(paths: Sequence[str | Path]) -> RunData:
    """Read every run directory under ``paths`` into :class:`RunData`."""
    runs, episodes, steps, agents, weights = [], [], [], [], []
    for directory in find_run_dirs(paths):
        try:
            summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read {directory / 'summary.json'}: {exc}") from None
        keys = {
            "scenario": str(summary.get("scenario", directory.parent.parent.name)),
            "controller": str(summary.get("controller", directory.parent.name)),
            "seed": int(summary.get("seed", 0)),
        }
        training = rundir.training_text(summary)
        runs.append({**summary, **keys, "training": training, "run_dir": str(directory)})
        episodes.append(_read_csv(directory / "episodes.csv", keys))
        steps.append(_read_csv(directory / "steps.csv", keys))
        agents.append(_read_csv(directory / "agents.csv", keys))
        weights.append(_read_csv(directory / "weights.csv", keys))

    def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
        frames = [f for f in frames if not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=KEYS)

    table = pd.DataFrame(runs)
    twice = table[table.duplicated(KEYS, keep=False)]
    if not twice.empty:
        dirs = ", ".join(twice["run_dir"])
        raise UserError(f"the same scenario, controller and seed appear twice ({dirs}); give one")
    front = [*KEYS, "training", "train_episodes", *(m.column for m in METRICS)]
    table = table[[c for c in front if c in table] + [c for c in table if c not in front]]
    return RunData(table, concat(episodes), concat(steps), concat(agents), concat(weights))


def summary_table(runs: pd.DataFrame, order: Sequence[str] = ()) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds of every metric.

    Args:
        runs: :attr:`RunData.runs`.
        order: controllers in the wanted order; others follow alphabetically.

    Returns:
        One row per (scenario, controller): ``seeds``, ``training`` (how the
        policies were trained, e.g. "10 episodes", "shipped: 30 episodes"),
        ``train_episodes`` and ``<metric>_mean`` / ``<metric>_std`` (std is NaN
        for a single seed).
    """
    rows = []
    for (scenario, controller), group in runs.groupby(["scenario", "controller"], sort=False):
        row: dict[str, Any] = {
            "scenario": scenario,
            "controller": controller,
            "seeds": int(group["seed"].nunique()),
            "training": ", ".join(dict.fromkeys(group.get("training", pd.Series([""])))),
            "train_episodes": int(group.get("train_episodes", pd.Series([0])).max()),
        }
        for metric in (*METRICS, RETURN):
            # runs written before a metric existed have no column for it
            column = group.get(metric.column, pd.Series(dtype=float))
            values = pd.to_numeric(column, errors="coerce").dropna()
            row[f"{metric.column}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric.column}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    rank = {name: k for k, name in enumerate(order)}
    key = table["controller"].map(lambda c: (rank.get(c, len(rank)), c))
    return table.assign(_key=key).sort_values(["scenario", "_key"]).drop(columns="_key")


def write_tables(tables: dict[str, pd.DataFrame], directory: Path) -> list[Path]:
    """Write each table as CSV, and as Parquet when pyarrow imports."""
    try:
        import pyarrow  # noqa: F401

        parquet = True
    except ImportError:
        parquet = False
    written = []
    for name, table in tables.items():
        path = directory / f"{name}.csv"
        atomic.atomic_write_text(path, table.to_csv(index=False))
        written.append(path)
        if parquet:
            path = directory / f"{name}.parquet"
            table.to_parquet(path, index=False)
            written.append(path)
    return written


# -- figures -------------------------------------------------------------------------------


def _colours(controllers: Sequence[str]) -> dict[str, Any]:
    """One stable colour per controller for every figure of a report."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {c: cmap(k % 10) for k, c in enumerate(controllers)}


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _band(ax: Axes, table: pd.DataFrame, x: str, y: str, colour: Any, label: str) -> None:
    """Mean over seeds as a line, min to max over seeds as a shaded band."""
    stats = table.groupby(x)[y].agg(["mean", "min", "max", "count"]).reset_index()
    ax.plot(stats[x], stats["mean"], color=colour, label=label, lw=1.8)
    if (stats["count"] > 1).any():
        ax.fill_between(stats[x], stats["min"], stats["max"], color=colour, alpha=0.18, lw=0)


def plot_metric_bars(
    summary: pd.DataFrame, scenario: str, colours: dict[str, Any], path: Path
) -> Path:
    """Bars of every table metric per controller, error bars = std over seeds."""
    rows = summary[summary["scenario"] == scenario]
    metrics = shown_metrics(rows)
    fig = Figure(figsize=(2.8 * len(metrics) + 0.5, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, metric in zip(axes, metrics):
        means = rows[f"{metric.column}_mean"].to_numpy(dtype=float)
        stds = np.nan_to_num(rows[f"{metric.column}_std"].to_numpy(dtype=float))
        names = list(rows["controller"])
        spread = stds if rows[f"{metric.column}_std"].notna().any() else None
        ax.bar(names, means, yerr=spread, capsize=3, color=[colours[c] for c in names])
        ax.set_title(f"{metric.title}\n({metric.better} is better)", fontsize=9.5)
        ax.set_ylabel(metric.unit)
        ax.tick_params(axis="x", labelrotation=55, labelsize=8.5)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
    fig.suptitle(f"{scenario}: evaluation episode, mean over seeds (bars: std)")
    return _save(fig, path)


def exploration_column(train: pd.DataFrame) -> pd.Series:
    """Per training row, how much the policy explored.

    ``epsilon`` for epsilon-greedy learners, else the mean policy ``entropy``
    (nats) the actor-critic learners report; NaN where a row has neither.
    """
    out = pd.Series(np.nan, index=train.index, dtype=float)
    for column in ("entropy", "epsilon"):  # epsilon wins where both are present
        if column in train:
            values = pd.to_numeric(train[column], errors="coerce")
            out = values.where(values.notna(), out)
    return out


def needs_log_scale(values: pd.Series, ratio: float = 10.0) -> bool:
    """Whether positive ``values`` span more than ``ratio`` times (then a log axis reads better)."""
    positive = values[values > 0]
    return not positive.empty and float(positive.max()) > ratio * float(positive.min())


def plot_learning_curves(
    episodes: pd.DataFrame, scenario: str, colours: dict[str, Any], path: Path
) -> Path | None:
    """Travel time, return and exploration per training episode; all learned controllers.

    Every learned controller shares one axis per panel, so a reader sees which
    converged and where. The travel-time axis is logarithmic when the curves span
    more than ten times (a jammed grid next to a working one). Exploration is
    epsilon, or policy entropy for learners without epsilon. Controllers that do
    not learn appear as dashed lines at their evaluation value.
    """
    if episodes.empty or "phase" not in episodes:
        return None
    rows = episodes[episodes["scenario"] == scenario]
    train = rows[rows["phase"] == "train"].copy()
    if train.empty:
        return None
    train["exploration"] = exploration_column(train)
    fixed = rows[(rows["phase"] == "eval") & ~rows["controller"].isin(set(train["controller"]))]
    panels: list[tuple[str, str]] = [
        ("avg_travel_time_s", "Average travel time (s)"),
        ("episode_return", "Episode return (reward)"),
    ]
    if train["avg_travel_time_s"].isna().all():  # grid-worlds
        panels = panels[1:]
    if train["exploration"].notna().any():
        panels.append(("exploration", "Exploration (epsilon or entropy)"))
    fig = Figure(figsize=(4.6 * len(panels), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (column, label) in zip(axes, panels):
        for controller, group in train.groupby("controller", sort=False):
            if group[column].notna().any():
                _band(ax, group, "episode", column, colours[str(controller)], str(controller))
        if column in fixed:
            for controller, group in fixed.groupby("controller", sort=False):
                ax.axhline(
                    group[column].mean(),
                    color=colours[str(controller)],
                    ls="--",
                    lw=1.2,
                    label=f"{controller} (no learning)",
                )
        if column == "avg_travel_time_s" and needs_log_scale(
            pd.concat([train[column], fixed[column]])
        ):
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("training episode")
        ax.set_ylabel(label)
        ax.set_title(label.split(" (")[0] + " during training")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8.5)
    fig.suptitle(f"{scenario}: learning curves (line: mean over seeds, band: min to max)")
    return _save(fig, path)


def plot_queue_over_time(
    steps: pd.DataFrame, scenario: str, colours: dict[str, Any], path: Path, *, traffic: bool
) -> Path | None:
    """Mean halting vehicles per intersection over the evaluation episode, per controller.

    For grid-worlds (``traffic`` False) ``steps.csv`` holds the mean reward per agent.
    """
    rows = steps[steps["scenario"] == scenario] if not steps.empty else steps
    if rows.empty or "queue" not in rows:
        return None
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.subplots()
    for controller, group in rows.groupby("controller", sort=False):
        _band(ax, group, "sim_time_s", "queue", colours[str(controller)], str(controller))
    ax.set_xlabel("simulated time (s)" if traffic else "step")
    ax.set_ylabel("halting vehicles per intersection" if traffic else "mean reward per agent")
    what = "queue" if traffic else "reward"
    ax.set_title(f"{scenario}: {what} over the evaluation episode (band: min to max over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5)
    return _save(fig, path)


def _roads(net_file: str | None) -> list[np.ndarray]:
    """Edge shapes for map backgrounds; none when the network file is gone."""
    if not net_file or not Path(net_file).is_file():
        return []
    from ltos_traffic.sim.topology import edge_shapes

    try:
        return edge_shapes(net_file)
    except UserError:
        return []


def plot_map(
    values: pd.DataFrame,
    column: str,
    *,
    roads: list[np.ndarray],
    title: str,
    colour_label: str,
    cmap: str,
    path: Path,
    fmt: str = "{:.1f}",
    min_span: float = 1.0,
) -> Path | None:
    """One map panel per controller: intersections coloured by ``values[column]``.

    Args:
        values: rows with ``controller``, ``x``, ``y`` and ``column`` (one per intersection).
        column: the value to colour by.
        roads: edge shapes drawn in grey underneath.
        title: figure title.
        colour_label: colour bar label, with unit.
        cmap: matplotlib colour map name.
        path: PNG to write.
        fmt: format of the value written next to each intersection.
        min_span: the colour range covers at least this much around the data, so
            differences below it do not look large.
    """
    if values.empty or values[["x", "y"]].isna().all().all():
        return None
    controllers = list(dict.fromkeys(values["controller"]))
    ncols = min(len(controllers), 3)
    nrows = math.ceil(len(controllers) / ncols)
    xy = values[["x", "y"]].to_numpy(dtype=float)
    span = np.ptp(xy, axis=0) + 1.0
    aspect = float(np.clip(span[1] / span[0], 0.4, 2.5))
    width = 4.4 * ncols
    fig = Figure(figsize=(width + 1.2, 4.4 * aspect * nrows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    lo, hi = float(values[column].min()), float(values[column].max())
    if hi - lo < min_span:
        middle = (hi + lo) / 2.0
        lo, hi = middle - min_span / 2.0, middle + min_span / 2.0
        if lo < 0.0 <= float(values[column].min()):  # counts and shares stay >= 0
            lo, hi = 0.0, hi - lo
    n_points = len(values) / len(controllers)
    marker = float(np.clip(9000.0 / n_points, 60.0, 900.0))
    text_size = float(np.clip(60.0 / math.sqrt(n_points), 5.5, 10.0))
    # values as text only where they do not collide (regular grids); colour says it otherwise
    points = np.unique(xy, axis=0)
    gaps = np.linalg.norm(points[:, None] - points[None], axis=-1) + np.eye(len(points)) * 1e12
    labelled = len(points) < 2 or float(gaps.min()) > 0.07 * float(span.max())
    scatter = None
    for ax, controller in zip(axes, controllers):
        rows = values[values["controller"] == controller]
        for shape in roads:
            ax.plot(shape[:, 0], shape[:, 1], color="0.75", lw=0.8, zorder=1)
        scatter = ax.scatter(
            rows["x"],
            rows["y"],
            c=rows[column],
            cmap=cmap,
            vmin=lo,
            vmax=hi,
            s=marker,
            edgecolors="0.2",
            linewidths=0.6,
            zorder=2,
        )
        for x, y, v in zip(rows["x"], rows["y"], rows[column]) if labelled else ():
            ax.annotate(
                fmt.format(v),
                (x, y),
                xytext=(0, -0.55 * math.sqrt(marker) - 2),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=text_size,
                zorder=3,
            )
        ax.set_title(controller)
        ax.set_aspect("equal")
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
        ax.margins(0.08)
    for ax in axes[len(controllers) :]:
        ax.set_visible(False)
    assert scatter is not None
    bar = fig.colorbar(
        scatter, ax=axes[: len(controllers)].tolist(), label=colour_label, shrink=0.85
    )
    bar.formatter.set_useOffset(False)  # type: ignore[attr-defined]
    fig.suptitle(title)
    return _save(fig, path)


def plot_sharing_over_training(
    episodes: pd.DataFrame, scenario: str, colours: dict[str, Any], path: Path
) -> Path | None:
    """Mean self-weight ``w_ii`` per training episode (needs ``self_weight`` in episodes.csv).

    The band spans the seeds; dashed and dotted lines give the lowest and highest
    intersection's self-weight (``self_weight_min`` / ``_max``) where recorded.
    """
    if episodes.empty or "self_weight" not in episodes:
        return None
    train = episodes[(episodes["scenario"] == scenario) & (episodes["phase"] == "train")]
    train = train.dropna(subset=["self_weight"])
    if train.empty:
        return None
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.subplots()
    for controller, group in train.groupby("controller", sort=False):
        colour = colours[str(controller)]
        _band(ax, group, "episode", "self_weight", colour, str(controller))
        # The spread over intersections: each episode's min and max over agents, mean over seeds.
        for column, style in (("self_weight_min", "--"), ("self_weight_max", ":")):
            if column in group and group[column].notna().any():
                spread = group.groupby("episode")[column].mean()
                which = column.rsplit("_", 1)[1]
                label = f"{controller}: {which} over intersections"
                ax.plot(spread.index, spread.to_numpy(), color=colour, ls=style, lw=1, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("training episode")
    ax.set_ylabel("mean self-weight $w_{ii}$ (share kept)")
    ax.set_ylim(0.0, 1.02)
    ax.set_title(f"{scenario}: how much reward each intersection keeps, during training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5)
    return _save(fig, path)


# -- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A piece of the report: a heading, a paragraph, a table or a figure."""

    kind: str  # "h1" | "h2" | "p" | "table" | "figure"
    text: str = ""  # heading / paragraph / caption
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    figure: Path | None = None


def _number(value: float, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:,.1f}" if abs(value) >= 10 or unit in ("s", "veh/h") else f"{value:.2f}"


def format_cell(mean: float, std: float, unit: str = "") -> str:
    """``mean ± std`` as printed in the report (just the mean for one seed)."""
    if std is None or not math.isfinite(std):
        return _number(mean, unit)
    return f"{_number(mean, unit)} ± {_number(std, unit)}"


def _summary_block(summary: pd.DataFrame) -> Block:
    metrics = shown_metrics(summary)
    header = ("controller", "seeds", "training", *(m.label for m in metrics))
    rows = []
    for _, r in summary.iterrows():
        cells = [format_cell(r[f"{m.column}_mean"], r[f"{m.column}_std"], m.unit) for m in metrics]
        rows.append((str(r["controller"]), str(r["seeds"]), str(r["training"]), *cells))
    return Block("table", header=header, rows=tuple(rows))


def _runs_block(runs: pd.DataFrame, metrics: Sequence[Metric]) -> Block:
    header = ("scenario", "controller", "seed", "training", *(m.label for m in metrics),
              "run directory")  # fmt: skip
    rows = [
        (
            str(r["scenario"]),
            str(r["controller"]),
            str(r["seed"]),
            str(r["training"]),
            *(_number(float(r.get(m.column, math.nan)), m.unit) for m in metrics),
            str(r["run_dir"]),
        )
        for _, r in runs.iterrows()
    ]
    return Block("table", header=header, rows=tuple(rows))


def _best_sentence(summary: pd.DataFrame) -> str:
    """Which controller has the lowest travel time and delay, on arrived and on all vehicles."""
    parts = []
    for column, what in (
        ("avg_travel_time_s_mean", "Lowest average travel time"),
        ("avg_travel_time_all_s_mean", "counting vehicles still in the network"),
        ("avg_delay_s_mean", "lowest average delay"),
        ("avg_delay_all_s_mean", "counting vehicles still in the network"),
        ("avg_journey_time_s_mean", "journey time counting waits to enter"),
    ):
        valid = summary.dropna(subset=[column])
        if not valid.empty:
            best = valid.loc[valid[column].idxmin()]
            parts.append(f"{what}: **{best['controller']}** ({best[column]:.1f} s)")
    if not parts:
        return "No vehicle finished its trip in the evaluation episodes."
    return "; ".join(parts) + "."


def _scenario_blocks(
    data: RunData, summary: pd.DataFrame, scenario: str, figures_dir: Path
) -> list[Block]:
    """Table and figures of one scenario."""
    rows = summary[summary["scenario"] == scenario]
    controllers = list(rows["controller"])
    colours = _colours(controllers)
    runs = data.runs[data.runs["scenario"] == scenario]
    net_file = next((str(f) for f in runs.get("net_file", []) if isinstance(f, str)), None)
    roads = _roads(net_file)
    stem = figures_dir / scenario
    traffic = shown_metrics(rows) != (RETURN,)

    blocks = [
        Block("h2", scenario),
        Block(
            "p",
            "Evaluation episode (greedy, no learning), mean ± sample std over seeds. "
            + _best_sentence(rows),
        ),
        _summary_block(rows),
    ]

    def figure(path: Path | None, caption: str) -> None:
        if path is not None:
            blocks.append(Block("figure", caption, figure=path))

    figure(
        plot_metric_bars(summary, scenario, colours, Path(f"{stem}_metrics.png")),
        "Table metrics per controller.",
    )
    figure(
        plot_learning_curves(data.episodes, scenario, colours, Path(f"{stem}_learning.png")),
        "Learning curves of the learned controllers (training episodes explore).",
    )
    figure(
        plot_queue_over_time(
            data.steps, scenario, colours, Path(f"{stem}_queue.png"), traffic=traffic
        ),
        "Queue over the evaluation episode." if traffic else "Reward over the evaluation episode.",
    )
    agents = _per_controller_mean(data.agents, scenario, "mean_queue", controllers)
    figure(
        plot_map(
            agents,
            "mean_queue",
            roads=roads,
            cmap="YlOrRd",
            title=f"{scenario}: mean queue per intersection (evaluation, mean over seeds)",
            colour_label="halting vehicles on incoming lanes (veh)",
            path=Path(f"{stem}_delay_map.png"),
        ),
        "Where the delay is: mean halting vehicles on each intersection's incoming lanes.",
    )
    weights = data.weights
    if not weights.empty and "slot" in weights and "agent" in data.agents:
        own = weights[(weights["scenario"] == scenario) & (weights["slot"] == 0)]
        own = own.rename(columns={"weight": "self_weight"})
        own = own.merge(data.agents, on=[*KEYS, "agent"], how="left")
        sharing = [c for c in controllers if c in set(own["controller"])]
        own = _per_controller_mean(own, scenario, "self_weight", sharing)
        figure(
            plot_map(
                own,
                "self_weight",
                roads=roads,
                cmap="viridis",
                fmt="{:.2f}",
                min_span=0.1,
                title=f"{scenario}: learned self-weight $w_{{ii}}$ per intersection",
                colour_label="share of its own reward an intersection keeps",
                path=Path(f"{stem}_sharing_map.png"),
            ),
            "Sharing weights learned (evaluation, mean over steps and seeds): 1 keeps all of its "
            "reward, lower values hand more to the neighbours.",
        )
    figure(
        plot_sharing_over_training(
            data.episodes, scenario, colours, Path(f"{stem}_sharing_training.png")
        ),
        "Mean self-weight over training.",
    )
    return blocks


def _per_controller_mean(
    table: pd.DataFrame, scenario: str, column: str, controllers: Sequence[str]
) -> pd.DataFrame:
    """Mean over seeds per (controller, agent), controllers in report order."""
    if table.empty or column not in table:
        return pd.DataFrame(columns=["controller", "agent", "x", "y", column])
    rows = table[(table["scenario"] == scenario) & table["controller"].isin(controllers)]
    mean = rows.groupby(["controller", "agent"], sort=False)[["x", "y", column]].mean()
    mean = mean.reset_index()
    rank = {c: k for k, c in enumerate(controllers)}
    return mean.sort_values("controller", key=lambda s: s.map(rank), kind="stable")


def render_markdown(blocks: Sequence[Block], base: Path) -> str:
    """Markdown with figures linked relative to ``base``."""
    out: list[str] = []
    for b in blocks:
        if b.kind == "h1":
            out.append(f"# {b.text}\n")
        elif b.kind == "h2":
            out.append(f"## {b.text}\n")
        elif b.kind == "p":
            out.append(f"{b.text}\n")
        elif b.kind == "table":
            out.append("| " + " | ".join(b.header) + " |")
            out.append("|" + "|".join("---" for _ in b.header) + "|")
            out += ["| " + " | ".join(row) + " |" for row in b.rows]
            out.append("")
        elif b.kind == "figure" and b.figure is not None:
            out.append(f"![{b.figure.stem}]({b.figure.relative_to(base).as_posix()})\n")
            out.append(f"*{b.text}*\n")
    return "\n".join(out)


CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222;
       padding: 0 1em; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; }
figcaption { color: #555; font-size: 0.92em; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _inline_md(text: str) -> str:
    """HTML of a paragraph with ``**bold**`` and ```code``` only."""
    parts = html.escape(text).split("**")
    text = "".join(f"<strong>{p}</strong>" if k % 2 else p for k, p in enumerate(parts))
    parts = text.split("`")
    return "".join(f"<code>{p}</code>" if k % 2 else p for k, p in enumerate(parts))


def render_html(blocks: Sequence[Block], title: str) -> str:
    """One self-contained HTML page: the figures are base64 data URIs."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
    ]
    for b in blocks:
        if b.kind in ("h1", "h2"):
            out.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{_inline_md(b.text)}</p>")
        elif b.kind == "table":
            out.append("<table><thead><tr>")
            out += [f"<th>{html.escape(h)}</th>" for h in b.header]
            out.append("</tr></thead><tbody>")
            for row in b.rows:
                out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
            out.append("</tbody></table>")
        elif b.kind == "figure" and b.figure is not None:
            data = base64.b64encode(b.figure.read_bytes()).decode("ascii")
            out.append(
                f'<figure><img alt="{html.escape(b.text)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(b.text)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def build_report(
    data: RunData, out_dir: str | Path, *, order: Sequence[str] = (), title: str | None = None
) -> Report:
    """Write tables, figures, ``report.md`` and ``report.html`` under ``out_dir``.

    Args:
        data: the runs, from :func:`load_runs`.
        out_dir: output directory (created).
        order: controllers in the order to show them.
        title: report title (default names the scenarios).
    """
    out = rundir.ensure_writable_dir(Path(out_dir))
    summary = summary_table(data.runs, order)
    tables = write_tables({**data.tables(), "summary": summary}, out / "tables")
    scenarios = list(dict.fromkeys(summary["scenario"]))
    title = title or "Controller comparison: " + ", ".join(scenarios)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    seeds = sorted({int(s) for s in data.runs["seed"]})
    blocks = [
        Block("h1", title),
        Block(
            "p",
            f"{len(data.runs)} runs, seeds {', '.join(map(str, seeds))}; built {stamp}. "
            "Tables (CSV, Parquet) are in `tables/`, figures in `figures/`.",
        ),
    ]
    for scenario in scenarios:
        blocks += _scenario_blocks(data, summary, scenario, out / "figures")
    rank = {c: k for k, c in enumerate(order)}
    runs = data.runs.sort_values(
        ["scenario", "controller", "seed"],
        key=lambda col: (
            col.map(lambda c: (rank.get(c, len(rank)), c)) if col.name == "controller" else col
        ),
    )
    metrics = shown_metrics(summary)
    blocks += [Block("h2", "Runs"), _runs_block(runs, metrics)]
    md_path, html_path = out / "report.md", out / "report.html"
    atomic.atomic_write_text(md_path, render_markdown(blocks, out))
    atomic.atomic_write_text(html_path, render_html(blocks, title))
    figures = tuple(b.figure for b in blocks if b.figure is not None)
    return Report(md_path, html_path, figures, tuple(tables), summary)
