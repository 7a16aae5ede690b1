"""The RESCO benchmark maps, taken from the files that the optional ``sumo-rl`` package ships.

RESCO (Ault & Sharon, "Reinforcement Learning Benchmarks for Traffic Signal
Control", NeurIPS 2021 Datasets and Benchmarks) is the SUMO benchmark most
signal-control papers report on. Its eight maps (network, routes and a
``.sumocfg`` each) are installed with ``sumo-rl`` under
``sumo_rl/nets/RESCO/<map>/`` (extra ``ltos-traffic[resco]``). They keep their
own licences (TAPASCologne, InTAS Ingolstadt), so this project uses them where
the package put them and never copies them. The package is located, not
imported: importing ``sumo_rl`` demands ``SUMO_HOME``.

Each map's scenario (``scenarios/<map>_v1.toml``) holds RESCO's time window and
timing; the files come from the map's ``.sumocfg``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ltos_traffic.errors import UserError
from ltos_traffic.net.files import NetFiles
from ltos_traffic.net.sumocfg import read_sumocfg

MAPS = (
    "grid4x4",
    "arterial4x4",
    "cologne1",
    "cologne3",
    "cologne8",
    "ingolstadt1",
    "ingolstadt7",
    "ingolstadt21",
)
EXTRA = "pip install 'ltos-traffic[resco]'"


def resco_dir() -> Path | None:
    """``sumo_rl/nets/RESCO`` of the installed ``sumo-rl``; ``None`` when it is not installed."""
    spec = importlib.util.find_spec("sumo_rl")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "nets" / "RESCO"
    return folder if folder.is_dir() else None


def resco_files(name: str) -> NetFiles:
    """Network, routes and additional files of the RESCO map ``name``, from its ``.sumocfg``.

    Raises:
        UserError: unknown map, or ``sumo-rl`` (the extra) not installed.
    """
    if name not in MAPS:
        raise UserError(f"unknown RESCO map {name!r}; choose one of: {', '.join(MAPS)}")
    folder = resco_dir()
    config = folder / name / f"{name}.sumocfg" if folder is not None else None
    if config is None or not config.is_file():
        raise UserError(
            f"the RESCO map {name} comes with the optional extra resco (the sumo-rl package "
            f"ships the maps); install it with {EXTRA}"
        )
    files = read_sumocfg(config)
    return NetFiles(files.net_file, files.route_files, files.additional_files)
