"""``ltos-traffic sweep``: every (controller, seed) job of one scenario, locally or on Ray."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import click

from ltos_traffic.cli.options import (
    SECONDS_OPTION,
    ScenarioOptions,
    network_options,
    parse_names,
    parse_seeds,
)
from ltos_traffic.errors import UserError


@click.command("sweep")
@network_options
@click.option(
    "--controllers", required=True, help="Comma-separated controllers, e.g. max_pressure,ltos."
)
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds.")
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: a process per job on this machine; ray: Ray tasks.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Jobs at once (local processes, or CPUs of a local Ray). Default: all cores.",
)
@click.option(
    "--address",
    default=None,
    help="Existing Ray cluster (e.g. ray://head:10001 or auto); default: local Ray.",
)
@click.option(
    "--episodes",
    type=int,
    default=None,
    help="Training episodes of learning controllers (default: the scenario's).",
)
@SECONDS_OPTION
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a hyperparameter of every controller (repeatable).",
)
@click.option("--out", default="runs", show_default=True, help="Root of run directories.")
def sweep_cmd(
    where: ScenarioOptions,
    controllers: str,
    seeds: str,
    backend: str,
    workers: int | None,
    address: str | None,
    episodes: int | None,
    seconds: float | None,
    sets: tuple[str, ...],
    out: str,
) -> None:
    """Run every controller with every seed; results go to OUT/<scenario>/<controller>/seed<k>/.

    `ltos-traffic report OUT/<scenario>/*/seed*` then compares them.
    """  # fmt: skip
    from ltos_traffic.cli.options import format_table
    from ltos_traffic.experiments.sweep import Job, job_grid, sweep

    if episodes is not None and episodes < 0:
        raise UserError(f"--episodes must be >= 0, got {episodes}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    scen = where.resolve(seconds)
    jobs = job_grid(
        scen, parse_names(controllers), parse_seeds(seeds), Path(out),
        overrides=sets, episodes=episodes, data_dir=where.data_dir,
    )  # fmt: skip
    click.echo(f"{len(jobs)} jobs on {backend} ({address or 'this machine'})", err=True)

    def done(job: Job, summary: dict[str, Any]) -> None:
        tt = summary.get("avg_travel_time_s", math.nan)
        delay = summary.get("avg_delay_s", math.nan)
        click.echo(
            f"done  {job.controller} seed {job.seed}: travel time {tt:.1f} s, delay {delay:.1f} s",
            err=True,
        )

    started = time.perf_counter()
    summaries = sweep(jobs, backend=backend, workers=workers, address=address, on_done=done)
    keys = ("controller", "seed", "avg_travel_time_s", "avg_delay_s", "throughput", "mean_queue",
            "wall_s")  # fmt: skip
    click.echo(format_table([{k: s.get(k, "") for k in keys} for s in summaries], list(keys)))
    click.echo(
        f"run directories under {Path(out) / scen.name}  ({time.perf_counter() - started:.1f} s)"
    )
