"""Pieces shared by the command modules: the common options, the default controller, tables.

Kept apart from :mod:`ltos_traffic.cli` so that command modules can import them
while ``cli`` imports the command modules. ``--net``/``--routes``/``--scenario``/
``--begin``/``--seconds`` become a scenario in :func:`ltos_traffic.scenario.resolve_scenario`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any

import click

from ltos_traffic.errors import UserError
from ltos_traffic.scenario import Scenario, resolve_scenario


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


@dataclass(frozen=True)
class ScenarioOptions:
    """``--net``, ``--routes``, ``--begin``, ``--scenario``, ``--data-dir``: what a command runs on.

    Commands decorated with :func:`network_options` receive one of these as ``where``.
    """

    net: str
    routes: tuple[str, ...]
    begin: float | None
    scenario: str | None
    data_dir: str | None

    def resolve(self, seconds: float | None = None) -> Scenario:
        """The scenario these options name (``seconds``: the episode length, if given)."""
        return resolve_scenario(
            self.net, self.routes, self.scenario, begin=self.begin, seconds=seconds
        )


@dataclass(frozen=True)
class RunOptions(ScenarioOptions):
    """The options ``run`` and ``train`` share: the scenario plus ``--controller``,
    ``--seconds``, ``--seed``, ``--out`` and ``--set``.

    Commands decorated with :func:`common_options` receive one of these as ``opts``.
    """

    controller: str | None
    seconds: float | None
    seed: int
    out: str
    sets: tuple[str, ...]

    def resolve(self, seconds: float | None = None) -> Scenario:
        """The scenario, with ``--seconds`` unless ``seconds`` is given."""
        return super().resolve(self.seconds if seconds is None else seconds)


def _collected(cls: type, argument: str, options: list[Any]) -> Any:
    """A decorator adding ``options`` to a command and handing their values to it as one
    ``cls`` object, keyword ``argument`` (the other options stay keywords)."""
    keys = [f.name for f in fields(cls)]

    def decorate(fn: Any) -> Any:
        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            values = {key: kwargs.pop(key) for key in keys}
            return fn(**{argument: cls(**values)}, **kwargs)

        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def network_options(fn: Any) -> Any:
    """The options that choose the scenario, as ``where: ScenarioOptions``."""
    return _collected(ScenarioOptions, "where", list(NETWORK_OPTIONS))(fn)


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
    """Options shared by ``run`` and ``train``, as ``opts: RunOptions``."""
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
    return _collected(RunOptions, "opts", options)(fn)


def parse_names(text: str) -> list[str]:
    """``--controllers a,b``: the names, in order, without repeats."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError(
            "--controllers needs at least one name, e.g. --controllers max_pressure,ltos"
        )
    return list(dict.fromkeys(names))


def parse_seeds(text: str) -> list[int]:
    """``--seeds 0,1,2``: the seeds."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise UserError("--seeds needs at least one seed, e.g. --seeds 0,1,2")
    return list(dict.fromkeys(seeds))
