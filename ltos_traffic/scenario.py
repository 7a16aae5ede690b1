"""Scenarios: versioned TOML files in ``scenarios/``, validated into :class:`Scenario`.

A scenario pairs a network and its demand with timing, reward and per-method
hyperparameters. Its name carries a version (``grid6x6_v1``) that is bumped
whenever the network, the demand or the reward changes, so results stay
comparable.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ltos_traffic.errors import UserError
from ltos_traffic.net.resco import MAPS as RESCO_MAPS
from ltos_traffic.net.resolve import program_yellow_s
from ltos_traffic.net.sumocfg import read_sumocfg

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
KINDS = ("traffic", "prisoner", "jungle")
NETWORK_SOURCES = ("grid", "cityflow", "file", "resco")

# ``--net NAME`` picks this scenario for NAME.
NET_ALIASES: dict[str, str] = {
    "grid6x6": "grid6x6_v1",
    "grid6x6_colight": "grid6x6_colight_v1",
    "grid2x2": "grid2x2_v1",
    "shenzhen": "shenzhen_v1",
    "grid6x6_congested": "grid6x6_congested_v1",
    "shenzhen_congested": "shenzhen_congested_v1",
    "ltos6x6": "ltos6x6_v1",
    "prisoner": "prisoner_v1",
    "jungle": "jungle_v1",
    # the RESCO benchmark maps (extra ltos-traffic[resco]; ltos_traffic/net/resco.py)
    **{name: f"{name}_v1" for name in RESCO_MAPS},
}


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A validated scenario.

    Attributes:
        name: versioned name, e.g. ``"grid6x6_v1"``.
        kind: ``"traffic"``, ``"prisoner"`` or ``"jungle"``.
        description: one line for ``ltos-traffic list``.
        network: how to obtain the network (traffic only): ``source`` is
            ``"grid"`` (generated), ``"cityflow"`` (imported dataset),
            ``"file"`` (user ``.net.xml`` + routes, optional ``additional``
            files) or ``"resco"`` (a RESCO map, ``map = "cologne8"``), plus
            source options.
        episode_seconds: simulated seconds per episode (traffic) or steps
            per episode (grid-worlds).
        begin_s: SUMO time at which an episode begins, seconds (traffic): the
            episode simulates ``[begin_s, begin_s + episode_seconds]``. Real
            scenarios often start their demand later than 0 (a morning peak).
        decision_interval_s: simulated seconds between decisions.
        yellow_s: yellow time on a phase change, seconds.
        min_green_s: minimum green time before a change, seconds.
        sumo_args: extra SUMO command-line options.
        params: scenario-specific parameters (grid-worlds).
        hparams: per-controller hyperparameters, ``{"common": {...}, "dgn": {...}}``.
    """

    name: str
    kind: str
    description: str = ""
    network: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    episode_seconds: float = 3600.0
    begin_s: float = 0.0
    decision_interval_s: float = 10.0
    yellow_s: float = 5.0
    min_green_s: float = 5.0
    sumo_args: tuple[str, ...] = ()
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    hparams: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def episode_steps(self) -> int:
        """Decisions per episode."""
        return round(self.episode_seconds / self.decision_interval_s)

    def with_timing(self, *, seconds: float | None = None, begin: float | None = None) -> Scenario:
        """A copy with another episode length and/or begin time (validated)."""
        out = self
        if seconds is not None:
            check_positive("--seconds", seconds)
            out = dataclasses.replace(out, episode_seconds=float(seconds))
        if begin is not None:
            check_begin("--begin", begin)
            out = dataclasses.replace(out, begin_s=float(begin))
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view for ``config.json``."""
        out = dataclasses.asdict(self)
        out["network"] = dict(self.network)
        out["params"] = dict(self.params)
        out["hparams"] = {k: dict(v) for k, v in self.hparams.items()}
        return out


def check_positive(what: str, value: float) -> None:
    """Raise a :class:`UserError` unless ``value`` is a positive number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise UserError(f"{what} must be a positive number of seconds, got {value!r}")


def check_begin(what: str, value: float) -> None:
    """Raise a :class:`UserError` unless ``value`` is a finite number of seconds >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise UserError(f"{what} must be a number of seconds >= 0, got {value!r}")


def merged_params(name: str, raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """A grid-world's ``[params]``: ``defaults`` overridden by ``raw``; unknown keys are an error.

    ``train_episodes`` is allowed too (the runner reads it) and left out of the result.
    """
    unknown = set(raw) - set(defaults) - {"train_episodes"}
    if unknown:
        raise UserError(
            f"scenario {name}: unknown [params] keys {sorted(unknown)}; allowed: {sorted(defaults)}"
        )
    return {**defaults, **{k: v for k, v in raw.items() if k in defaults}}


def scenario_names() -> list[str]:
    """Names of the scenarios shipped in ``scenarios/``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(name_or_path: str) -> Scenario:
    """Load and validate a scenario by name (``grid6x6_v1``), net alias or TOML path.

    Raises:
        UserError: unknown name, unreadable file or invalid content.
    """
    name = NET_ALIASES.get(name_or_path, name_or_path)
    path = Path(name)
    if path.suffix != ".toml":
        path = SCENARIO_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(scenario_names())
        raise UserError(f"unknown scenario {name_or_path!r}; choose one of: {known}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"scenario file {path} is not valid TOML: {exc}") from None
    return scenario_from_dict(data, source=str(path))


_TIMING = ("episode_seconds", "begin_s", "decision_interval_s", "yellow_s", "min_green_s")


def scenario_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> Scenario:
    """Validate a parsed TOML mapping into a :class:`Scenario`."""
    known = {"name", "kind", "description", "network", "timing", "sumo", "params", "hparams"}
    unknown = set(data) - known
    if unknown:
        raise UserError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise UserError(f"{source}: 'name' must be a non-empty string")
    kind = data.get("kind", "traffic")
    if kind not in KINDS:
        raise UserError(f"{source}: kind must be one of {KINDS}, got {kind!r}")
    timing = dict(data.get("timing", {}))
    bad = set(timing) - set(_TIMING)
    if bad:
        raise UserError(f"{source}: unknown [timing] keys {sorted(bad)}; allowed: {_TIMING}")
    for key, value in timing.items():
        if key == "begin_s" or (key == "yellow_s" and value == 0):
            check_begin(f"{source}: timing.{key}", value)
            continue
        check_positive(f"{source}: timing.{key}", value)
    network = dict(data.get("network", {}))
    if kind == "traffic" and network.get("source") not in NETWORK_SOURCES:
        raise UserError(f"{source}: [network] source must be one of {NETWORK_SOURCES}")
    sumo = dict(data.get("sumo", {}))
    args = sumo.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise UserError(f"{source}: [sumo] args must be a list of strings")
    hparams = data.get("hparams", {})
    if not isinstance(hparams, dict) or not all(isinstance(v, dict) for v in hparams.values()):
        raise UserError(f"{source}: [hparams.<controller>] must be tables")
    scenario = Scenario(
        name=name,
        kind=kind,
        description=str(data.get("description", "")),
        network=network,
        sumo_args=tuple(args),
        params=dict(data.get("params", {})),
        hparams={k: dict(v) for k, v in hparams.items()},
        **{k: float(v) for k, v in timing.items()},
    )
    if scenario.decision_interval_s <= scenario.yellow_s and kind == "traffic":
        raise UserError(
            f"{source}: decision_interval_s ({scenario.decision_interval_s}) must exceed "
            f"yellow_s ({scenario.yellow_s})"
        )
    return scenario


def custom_scenario(
    net_file: str | Path,
    route_files: Sequence[str | Path],
    base: Scenario,
    *,
    additional_files: Sequence[str | Path] = (),
    name: str | None = None,
) -> Scenario:
    """A scenario for a user network: ``base``'s timing with the user's files."""
    for f in [net_file, *route_files, *additional_files]:
        if not Path(f).is_file():
            raise UserError(f"file not found: {f}; give an existing path")
    if not route_files:
        raise UserError(f"--net {net_file} needs --routes PATH (a SUMO .rou.xml with the demand)")
    stem = name or Path(net_file).name.removesuffix(".xml").removesuffix(".net")
    network: dict[str, Any] = {
        "source": "file",
        "net": str(Path(net_file).resolve()),
        "routes": [str(Path(r).resolve()) for r in route_files],
    }
    if additional_files:
        network["additional"] = [str(Path(a).resolve()) for a in additional_files]
    return dataclasses.replace(
        base, name=f"custom_{stem}", description=f"user network {net_file}", network=network
    )


def config_scenario(
    config_file: str,
    route_files: Sequence[str],
    base: Scenario,
    *,
    begin: float | None = None,
    seconds: float | None = None,
) -> Scenario:
    """A scenario for a SUMO ``.sumocfg``: its network, routes, additional files and window.

    Command-line values win over the configuration's: ``route_files`` (when
    given) replace its routes, ``begin`` its begin, ``seconds`` the episode
    length. Otherwise the episode runs from the configuration's ``begin`` to its
    ``end``, or for ``base``'s episode length when it names no end.
    """
    config = read_sumocfg(config_file)
    start = config.begin_s if begin is None else begin
    check_begin("--begin", start)
    if seconds is None and config.end_s is not None:
        seconds = config.end_s - start
        if seconds <= 0:
            raise UserError(
                f"--begin {start:g} is not before the end of {config_file} ({config.end_s:g} s); "
                "give --seconds as well"
            )
    routes: list[str | Path] = [*route_files] or [*config.route_files]
    if not routes:
        raise UserError(f"{config_file} names no route-files; pass --routes PATH.rou.xml")
    scenario = custom_scenario(
        config.net_file,
        routes,
        base,
        additional_files=config.additional_files,
        name=Path(config_file).name.removesuffix(".sumocfg"),
    )
    scenario = dataclasses.replace(scenario, description=f"user configuration {config_file}")
    return scenario.with_timing(seconds=seconds, begin=start)


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
