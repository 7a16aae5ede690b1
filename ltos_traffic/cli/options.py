"""Pieces shared by the command modules: scenario resolution, options, tables.

Kept apart from :mod:`ltos_traffic.cli` so that command modules can import them
while ``cli`` imports the command modules.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from ltos_traffic.errors import UserError
from ltos_traffic.net.resolve import program_yellow_s
from ltos_traffic.scenario import (
    NET_ALIASES,
    Scenario,
    config_scenario,
    custom_scenario,
    load_scenario,
)

USER_FILES = (".xml", ".sumocfg")  # --net PATH: a network, or a SUMO configuration


def resolve_scenario(
    net: str,
    routes: tuple[str, ...],
    scenario: str | None,
    *,
    begin: float | None = None,
    seconds: float | None = None,
) -> Scenario:
    """``--net`` (alias, ``.net.xml`` or ``.sumocfg`` path), ``--scenario``, ``--begin`` and
    ``--seconds`` to a :class:`Scenario`; command-line values win over the files'."""
    if scenario is not None:
        base = load_scenario(scenario)
    elif net in NET_ALIASES or not net.endswith(USER_FILES):
        base = load_scenario(net) if net in NET_ALIASES else _unknown_net(net)
    else:
        base = load_scenario("grid6x6_v1")
    if net.endswith(".sumocfg"):
        user = config_scenario(net, routes, base, begin=begin, seconds=seconds)
    elif net.endswith(".xml"):
        user = custom_scenario(net, routes, base).with_timing(seconds=seconds, begin=begin)
    elif routes:
        raise UserError(
            "--routes is only for --net PATH.net.xml or PATH.sumocfg "
            "(named networks ship their demand)"
        )
    else:
        return base.with_timing(seconds=seconds, begin=begin)
    return user if scenario is not None else with_program_yellow(user)


def with_program_yellow(scenario: Scenario) -> Scenario:
    """A user network without a scenario file changes phases with its own programs' yellow time
    (when it has one shorter than a decision interval), not the grids' 5 s."""
    yellow = program_yellow_s(Path(scenario.network["net"]))
    if yellow is None or yellow >= scenario.decision_interval_s:
        return scenario
    return dataclasses.replace(scenario, yellow_s=yellow)


def _unknown_net(net: str) -> Scenario:
    names = ", ".join(sorted(NET_ALIASES))
    raise UserError(
        f"unknown network {net!r}; use one of {names} or a path to a .net.xml or .sumocfg file"
    )


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain text table."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3g}"
        return str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


NETWORK_OPTIONS = (
    click.option("--net", default="grid6x6", show_default=True,
                 help="Network name (see `list`), or a path to a SUMO .net.xml or .sumocfg."),
    click.option("--routes", multiple=True,
                 help="SUMO .rou.xml for --net PATH (repeatable; replaces a .sumocfg's routes)."),
    click.option("--begin", type=float, default=None,
                 help="SUMO time at which episodes begin, s (default: the scenario's or "
                      ".sumocfg's, else 0)."),
    click.option("--scenario", default=None, help="Scenario name or TOML path (overrides --net)."),
    click.option("--data-dir", default=None,
                 help="CityFlow data directory for shenzhen/ltos6x6 (or env LTOS_DATA)."),
)  # fmt: skip
SECONDS_OPTION = click.option(
    "--seconds", type=float, default=None,
    help="Simulated seconds per episode (default: the scenario's).",
)  # fmt: skip


def network_options(fn: Any) -> Any:
    """The options that choose the scenario (every command that runs one)."""
    for option in reversed(NETWORK_OPTIONS):
        fn = option(fn)
    return fn


def default_controller(controller: str | None, scenario: Scenario, *, training: bool) -> str:
    """The controller a command runs when ``--controller`` is not given.

    LToS, the project's method, wherever it can run as asked: always for ``train``,
    and for ``run`` on a scenario that ships an LToS checkpoint; otherwise
    max-pressure, which needs no training.
    """
    if controller is not None:
        return controller
    from ltos_traffic.experiments.checkpoint import shipped_path

    if training or shipped_path(scenario.name, "ltos") is not None:
        return "ltos"
    return "max_pressure" if scenario.kind == "traffic" else "ltos"


def common_options(fn: Any) -> Any:
    """Options shared by ``run`` and ``train``: the scenario, controller, seed, output."""
    options = [
        *NETWORK_OPTIONS,
        click.option("--controller", default=None,
                     help="Controller (see `list`). Default: ltos, the project's method "
                     "(run: from its shipped checkpoint; max_pressure on a network without one)."),
        SECONDS_OPTION,
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--out", default="runs", show_default=True, help="Root of run directories."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override a controller hyperparameter (repeatable)."),
    ]  # fmt: skip
    for option in reversed(options):
        fn = option(fn)
    return fn
