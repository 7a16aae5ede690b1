"""``ltos-traffic compare`` and ``report``: run what is missing, compare controllers."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ltos_traffic.cli.options import (
    SECONDS_OPTION,
    ScenarioOptions,
    format_table,
    network_options,
    parse_names,
    parse_seeds,
)
from ltos_traffic.errors import UserError

if TYPE_CHECKING:
    from ltos_traffic.report import Report

# compare without --controllers: the sanity row (random), the classical references and the
# controllers with shipped checkpoints; max-pressure and fixed-time need traffic
DEFAULT_CONTROLLERS = "random,fixed_time,max_pressure,ltos,fixed_ltos,dgn,dqn"
DEFAULT_GRIDWORLD_CONTROLLERS = "random,ltos,fixed_ltos,dgn,dqn"


def _print_summary(report: Report) -> None:
    from ltos_traffic.report import format_cell, shown_metrics

    metrics = shown_metrics(report.summary)
    rows = [
        {
            "scenario": r["scenario"],
            "controller": r["controller"],
            "seeds": r["seeds"],
            "training": r["training"],
            **{
                m.label: format_cell(r[f"{m.column}_mean"], r[f"{m.column}_std"], m.unit)
                for m in metrics
            },
        }
        for _, r in report.summary.iterrows()
    ]
    click.echo(format_table(rows, list(rows[0])))
    click.echo(f"report: {report.markdown}  {report.html}  ({len(report.figures)} figures)")


@click.command("compare")
@network_options
@click.option(
    "--controllers",
    default=None,
    help=f"Comma-separated controllers (default: {DEFAULT_CONTROLLERS}; "
    f"on grid-worlds {DEFAULT_GRIDWORLD_CONTROLLERS}).",
)
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds.")
@click.option(
    "--train-episodes",
    type=int,
    default=None,
    help="Training episodes of learning controllers (default: the scenario's).",
)
@SECONDS_OPTION
@click.option("--out", required=True, help="Root of the run directories; the report goes here too.")
def compare_cmd(
    where: ScenarioOptions,
    controllers: str | None,
    seeds: str,
    train_episodes: int | None,
    seconds: float | None,
    out: str,
) -> None:
    """Run every controller and seed (reusing finished runs), then write a report.

    --net takes several named networks, comma-separated, or `resco` for the eight RESCO maps:
    one report then covers them all. Runs go to OUT/<scenario>/<controller>/seed<k>/; a run
    is reused when its summary.json exists and its config.json has the same scenario,
    controller, seed, training episodes and hyperparameters. The report (report.md,
    report.html, figures/, tables/) is written to OUT.
    """
    from ltos_traffic.experiments.compare import ensure_runs
    from ltos_traffic.report import build_report, load_runs

    if train_episodes is not None and train_episodes < 0:
        raise UserError(f"--train-episodes must be >= 0, got {train_episodes}")
    scenarios = [w.resolve(seconds) for w in compared_networks(where)]
    if controllers is None:
        traffic = all(scen.kind == "traffic" for scen in scenarios)
        controllers = DEFAULT_CONTROLLERS if traffic else DEFAULT_GRIDWORLD_CONTROLLERS
    names, seed_list = parse_names(controllers), parse_seeds(seeds)
    started = time.perf_counter()
    dirs = []
    for scen in scenarios:
        dirs += ensure_runs(
            scen,
            names,
            seed_list,
            Path(out),
            train_episodes=train_episodes,
            data_dir=where.data_dir,
            progress=sys.stderr.isatty(),
            log=lambda line: click.echo(line, err=True),
        )
    report = build_report(load_runs(dirs), Path(out), order=names)
    _print_summary(report)
    click.echo(f"{len(dirs)} runs in {time.perf_counter() - started:.1f} s")


def compared_networks(where: ScenarioOptions) -> list[ScenarioOptions]:
    """``--net a,b,c`` (named networks) or ``--net resco`` as one option set per network."""
    from ltos_traffic.net.resco import MAPS

    if where.scenario is not None or ("," not in where.net and where.net != "resco"):
        return [where]
    nets = list(MAPS) if where.net == "resco" else [n.strip() for n in where.net.split(",")]
    if where.routes or "" in nets:
        raise UserError(
            f"--net {where.net!r}: several networks are named networks separated by commas "
            "(no empty names, no --routes); compare your own files one --net at a time"
        )
    return [dataclasses.replace(where, net=net) for net in dict.fromkeys(nets)]


@click.command("report")
@click.argument("run_dirs", nargs=-1, required=True)
@click.option("--out", default="report", show_default=True, help="Where to write the report.")
@click.option("--controllers", default=None, help="Comma-separated display order of controllers.")
def report_cmd(run_dirs: tuple[str, ...], out: str, controllers: str | None) -> None:
    """Rebuild the report from existing run directories (or folders of them); nothing runs."""
    from ltos_traffic.report import build_report, load_runs

    order = parse_names(controllers) if controllers else ()
    report = build_report(load_runs(list(run_dirs)), Path(out), order=order)
    _print_summary(report)
