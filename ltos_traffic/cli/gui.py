"""``ltos-traffic gui``: watch a controller drive sumo-gui."""

from __future__ import annotations

import click

from ltos_traffic.cli.options import ScenarioOptions, network_options
from ltos_traffic.errors import UserError


@click.command("gui")
@network_options
@click.option("--controller", default="max_pressure", show_default=True)
@click.option("--checkpoint", default=None, help="checkpoint.pt of a trained run to drive with.")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Run seed (SUMO uses the run's evaluation seed).",
)
@click.option(
    "--seconds",
    type=float,
    default=None,
    help="Stop after this many simulated seconds (default: the whole episode).",
)
@click.option(
    "--screenshot",
    default=None,
    metavar="FILE.png",
    help="Save the view after --seconds and exit (needs a display or xvfb-run).",
)
@click.option(
    "--delay",
    "delay_ms",
    type=int,
    default=100,
    show_default=True,
    help="sumo-gui delay per simulated second, ms.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a controller hyperparameter (repeatable).",
)
def gui_cmd(
    where: ScenarioOptions,
    controller: str,
    checkpoint: str | None,
    seed: int,
    seconds: float | None,
    screenshot: str | None,
    delay_ms: int,
    sets: tuple[str, ...],
) -> None:
    """Watch a controller drive sumo-gui; each signal shows its current phase by name."""
    from ltos_traffic.experiments.gui import watch

    if screenshot is not None and seconds is None:
        raise UserError("--screenshot needs --seconds (when to take it)")
    if delay_ms < 0:
        raise UserError(f"--delay must be >= 0, got {delay_ms}")
    scen = where.resolve()
    result = watch(
        scen,
        controller,
        checkpoint=checkpoint,
        seed=seed,
        seconds=seconds,
        screenshot=screenshot,
        delay_ms=delay_ms,
        overrides=sets,
        data_dir=where.data_dir,
    )
    click.echo(
        f"{controller} drove {result.sim_time_s:.0f} s ({result.decisions} decisions), "
        f"mean queue {result.mean_queue:.2f} veh per intersection"
    )
    if result.screenshot is not None:
        click.echo(f"screenshot: {result.screenshot}")
