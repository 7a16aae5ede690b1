"""Where network files live: the :class:`NetFiles` record, the cache, SUMO binaries."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NetFiles:
    """A SUMO network and its demand.

    Attributes:
        net_file: the ``.net.xml``.
        route_files: one or more ``.rou.xml`` files.
        additional_files: SUMO additional files (signal programs, vehicle types, ...).
    """

    net_file: Path
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...] = ()


def cache_root() -> Path:
    """Cache for generated and imported networks: ``$LTOS_CACHE`` or ``~/.cache/ltos-traffic``."""
    env = os.environ.get("LTOS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "ltos-traffic"


def build_cached(final: Path, build: Callable[[Path], object]) -> None:
    """Make the cache folder ``final`` with ``build(tmp)`` unless it already exists.

    ``build`` fills a temporary sibling folder, which is then renamed into place:
    a killed build or two processes building at once never leave a half-written
    cache (the loser of a race discards its copy).
    """
    if final.is_dir():
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-build-"))
    try:
        build(tmp)
        try:
            os.replace(tmp, final)
        except OSError:  # another process put a complete copy there first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def sumo_binary(name: str) -> str:
    """Path of a SUMO tool (``sumo``, ``sumo-gui``, ``netconvert``, ...) from the SUMO wheel.

    Falls back to ``PATH``; never needs ``SUMO_HOME`` to be set by hand.
    """
    try:
        from sumo import SUMO_HOME  # the eclipse-sumo wheel

        candidate = Path(SUMO_HOME) / "bin" / name
        if candidate.is_file():
            return str(candidate)
    except ImportError:  # pragma: no cover - wheel missing
        pass
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"SUMO tool {name!r} not found; install the eclipse-sumo wheel")
    return found
