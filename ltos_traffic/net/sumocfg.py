"""Read a SUMO configuration file (``.sumocfg``): the files and time window it names.

SUMO scenarios are shipped as a ``.sumocfg`` next to their network, routes and
additional files. Only what this project needs is read: ``net-file``,
``route-files``, ``additional-files`` (paths relative to the configuration, as
SUMO resolves them) and ``begin``/``end``. Other options are ignored; the
project sets its own outputs and seed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ltos_traffic.errors import UserError


@dataclass(frozen=True)
class SumoConfig:
    """What a ``.sumocfg`` names.

    Attributes:
        path: the configuration file.
        net_file: the ``.net.xml``.
        route_files: route files, in the given order.
        additional_files: additional files (signal programs, vehicle types, ...).
        begin_s: simulation begin, seconds (0 when not given).
        end_s: simulation end, seconds (``None`` when not given).
    """

    path: Path
    net_file: Path
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...]
    begin_s: float
    end_s: float | None


def read_sumocfg(path: str | Path) -> SumoConfig:
    """Parse ``path``.

    Raises:
        UserError: unreadable file, no ``net-file``, a named file that does not
            exist, or a bad time value.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}; give an existing .sumocfg")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise UserError(f"cannot read SUMO configuration {path}: {exc}") from None
    values = {el.tag: el.get("value", "") for el in root.iter() if el is not root}
    aliases = {"n": "net-file", "r": "route-files", "a": "additional-files", "b": "begin",
               "e": "end"}  # fmt: skip
    for short, long in aliases.items():
        if short in values:
            values.setdefault(long, values[short])
    base = path.parent
    net = _files(values.get("net-file", ""), base, path)
    if len(net) != 1:
        raise UserError(f"SUMO configuration {path} names no net-file; it needs one network")
    begin = _seconds(values.get("begin"), path, "begin")
    raw_end = values.get("end", "").strip()
    end = None if raw_end.startswith("-") else _seconds(raw_end, path, "end")  # SUMO: -1 = none
    if end is not None and end <= (begin or 0.0):
        raise UserError(f"SUMO configuration {path}: end ({end:g} s) is not after begin")
    return SumoConfig(
        path=path,
        net_file=net[0],
        route_files=_files(values.get("route-files", ""), base, path),
        additional_files=_files(values.get("additional-files", ""), base, path),
        begin_s=begin or 0.0,
        end_s=end,
    )


def _files(value: str, base: Path, config: Path) -> tuple[Path, ...]:
    """A comma-separated file list, resolved against the configuration's folder."""
    files = []
    for name in (n.strip() for n in value.split(",")):
        if not name:
            continue
        file = (base / name).resolve()
        if not file.is_file():
            raise UserError(f"SUMO configuration {config} names {name}, which does not exist")
        files.append(file)
    return tuple(files)


def _seconds(value: str | None, config: Path, what: str) -> float | None:
    """SUMO time: seconds (``25200``) or a clock ``[[D:]H:]M:S`` (``7:00:00``)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    parts = text.split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if not 1 <= len(numbers) <= 4 or not all(0 <= n < float("inf") for n in numbers):
        raise UserError(f"SUMO configuration {config}: {what} {text!r} is not a time >= 0 s")
    scales = (86400.0, 3600.0, 60.0, 1.0)[-len(numbers) :]
    return sum(n * k for n, k in zip(numbers, scales))
