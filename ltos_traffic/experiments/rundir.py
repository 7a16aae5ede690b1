"""Run directories: their layout, CSV tables, ``config.json``, provenance.

Layout: ``<root>/<scenario>/<controller>/seed<k>/`` with

* ``config.json``: resolved scenario, controller config, seed, package versions, git SHA;
* ``episodes.csv``: one row per finished episode (training and evaluation);
* ``steps.csv``: per decision step queue of the last evaluation episode;
* ``summary.json``: the evaluation result;
* ``checkpoint.pt``: the latest training state (learning controllers).

Every file is written to a temporary file in the same directory and renamed
(:mod:`ltos_traffic.atomic`), so a crash never leaves a half-written result.
"""

from __future__ import annotations

import csv
import io
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from ltos_traffic.atomic import atomic_write_json, atomic_write_text
from ltos_traffic.errors import UserError

PACKAGES = ("ltos-traffic", "torch", "numpy", "pandas", "eclipse-sumo", "libsumo", "sumolib")


def run_dir(root: str | Path, scenario: str, controller: str, seed: int) -> Path:
    """The run directory for one (scenario, controller, seed)."""
    return Path(root) / scenario / controller / f"seed{seed}"


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` (and parents) or raise a one-line :class:`UserError`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe"):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot write to output directory {path}: {exc.strerror or exc}; choose another --out"
        ) from None
    return path


def write_csv(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Atomically (re)write ``path`` with ``rows``; columns are the union, in first-seen order."""
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file written by :func:`write_csv` (empty when absent)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def append_csv_row(path: Path, row: Mapping[str, Any]) -> None:
    """Add one row, rewriting the file atomically (no partial rows after a crash)."""
    write_csv(path, [*read_csv(path), dict(row)])


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide results."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_sha() -> str:
    """The git commit of the source tree, with ``-dirty`` when modified; ``unknown`` outside git."""
    repo = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not sha:
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def episodes_text(n: int) -> str:
    """``"1 episode"``, ``"30 episodes"``."""
    return f"{n} episode" if n == 1 else f"{n} episodes"


def training_text(summary: dict[str, Any]) -> str:
    """How the evaluated policy was trained, from a run's ``summary.json``.

    ``summary["training"]`` as :func:`ltos_traffic.experiments.experiment.run` writes it:
    ``"none"`` (classical), ``"N episodes"`` (trained in the run), ``"shipped: N
    episodes"`` (the shipped checkpoint, N from its JSON record) or ``"checkpoint:
    N episodes"``. Summaries written before that key existed: from
    ``train_episodes`` or the checkpoint.
    """
    if summary.get("training"):
        return str(summary["training"])
    if summary.get("checkpoint"):
        from ltos_traffic.experiments.checkpoint import SHIPPED_DIR, shipped_record

        path = Path(summary["checkpoint"])
        if path.parent.parent == SHIPPED_DIR and path.with_suffix(".json").is_file():
            return f"shipped: {episodes_text(int(shipped_record(path)['episodes']))}"
        return f"checkpoint {path}"
    from ltos_traffic.controllers.base import controller_class, controller_names

    name = str(summary.get("controller", ""))
    if name in controller_names() and not getattr(controller_class(name), "learns", False):
        return "none"
    return episodes_text(int(summary.get("train_episodes") or 0))


def write_config(
    directory: Path,
    *,
    scenario: Mapping[str, Any],
    controller: str,
    config: Any,
    seed: int,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write ``config.json``: everything needed to reproduce the run."""
    payload = {
        "scenario": dict(scenario),
        "controller": controller,
        "controller_config": config,
        "seed": seed,
        "versions": package_versions(),
        "git_sha": git_sha(),
        **(extra or {}),
    }
    atomic_write_json(directory / "config.json", payload)
