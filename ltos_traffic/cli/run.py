"""``ltos-traffic list`` and ``run``: what there is, and one evaluated run."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import click

from ltos_traffic.cli.options import (
    RunOptions,
    common_options,
    default_controller,
    format_table,
)
from ltos_traffic.errors import UserError
from ltos_traffic.scenario import NET_ALIASES, load_scenario, scenario_names
from ltos_traffic.types import EpisodeMetrics

SUMMARY_KEYS = (
    "avg_travel_time_s",
    "avg_travel_time_all_s",
    "avg_delay_s",
    "avg_delay_all_s",
    "avg_journey_time_s",
    "arrived",
    "departed",
    "throughput",
    "mean_queue",
    "mean_waiting_time_s",
    "teleports",
    "episode_return",
    "self_weight",
)


@click.command("list")
def list_cmd() -> None:
    """List controllers, networks and scenarios."""
    from ltos_traffic.controllers.base import controller_class, controller_names

    click.echo("controllers:")
    classes = [controller_class(name) for name in controller_names()]
    for cls in classes:
        kind = "learns" if getattr(cls, "learns", False) else "classical"
        click.echo(f"  {cls.name:<14} {kind:<9} {_describe(cls, classes)}")
    click.echo("networks (--net):")
    for alias, scen in sorted(NET_ALIASES.items()):
        click.echo(f"  {alias:<14} -> {scen}")
    click.echo("  PATH.net.xml   your own network, with --routes PATH.rou.xml")
    click.echo("  PATH.sumocfg   SUMO configuration: network, routes, additional files, begin/end")
    click.echo("scenarios (--scenario):")
    for name in scenario_names():
        click.echo(f"  {name:<20} {load_scenario(name).description}")


def _describe(cls: type, classes: list[type]) -> str:
    """First line of the controller module's docstring (it names the paper), or of the class's
    own docstring when its module holds several controllers (ltos and fixed_ltos)."""
    shared = sum(c.__module__ == cls.__module__ for c in classes) > 1
    doc = cls.__doc__ if shared else sys.modules[cls.__module__].__doc__
    lines = (doc or "").strip().splitlines()
    return lines[0] if lines else ""


@click.command("run")
@common_options
@click.option(
    "--episodes",
    type=int,
    default=None,
    help="Training episodes before evaluation (learning controllers).",
)
@click.option("--checkpoint", default=None, help="Evaluate this checkpoint, no training.")
@click.option(
    "--train",
    "train",
    is_flag=True,
    help="Train from scratch even when a checkpoint ships for this scenario.",
)
@click.option("--gui", is_flag=True, help="Watch in sumo-gui (traci).")
@click.option(
    "--backend", type=click.Choice(["libsumo", "traci"]), default="libsumo", show_default=True
)
def run_cmd(
    opts: RunOptions,
    episodes: int | None,
    checkpoint: str | None,
    train: bool,
    gui: bool,
    backend: str,
) -> None:
    """Run a controller and report the evaluation.

    A learning controller uses the checkpoint shipped for the scenario when there
    is one; --train or --episodes N trains it first, --checkpoint PATH evaluates PATH.
    """
    from ltos_traffic.experiments import experiment

    if episodes is not None and episodes < 0:
        raise UserError(f"--episodes must be >= 0, got {episodes}")
    scen = opts.resolve()
    controller = default_controller(opts.controller, scen, training=False)
    seed = opts.seed
    started = time.perf_counter()
    summary = experiment.run(
        scen,
        controller,
        seed=seed,
        out_root=Path(opts.out),
        overrides=opts.sets,
        data_dir=opts.data_dir,
        episodes=episodes,
        checkpoint=checkpoint,
        gui=gui,
        backend=backend,
        progress=sys.stderr.isatty(),
        train=train,
        on_note=lambda note: click.echo(note, err=True),
    )
    if summary.get("checkpoint") and checkpoint is None:
        click.echo(f"using the shipped checkpoint {summary['checkpoint']} (--train retrains)")
    row = {"controller": controller, "net": scen.name, "seed": seed,
           "training": summary.get("training", "")}  # fmt: skip
    if scen.kind == "traffic":
        row.update({k: summary[k] for k in SUMMARY_KEYS if k in summary})
    else:  # grid-worlds: the return and the scenario's own figures (cooperation rate, ...)
        standard = {f.name for f in dataclasses.fields(EpisodeMetrics)}
        meta = {"controller", "net", "scenario", "seed", "eval_seed", "train_episodes", "wall_s",
                "run_dir", "checkpoint", "net_file", "training"}  # fmt: skip
        row["episode_return"] = summary["episode_return"]
        row.update({k: v for k, v in summary.items() if k not in standard | meta})
    click.echo(format_table([row], list(row)))
    click.echo(f"run directory: {summary['run_dir']}  ({time.perf_counter() - started:.1f} s)")
