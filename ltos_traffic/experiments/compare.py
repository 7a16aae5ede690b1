"""Comparisons: run every (controller, seed) that has no finished, matching run directory.

``ltos-traffic compare`` calls :func:`ensure_runs` and then builds the report from the
run directories (:mod:`ltos_traffic.report`, which only reads them). A run directory is
reused when its ``config.json`` and ``summary.json`` say it was made with exactly the
settings asked for (:func:`finished_run`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ltos_traffic.controllers.base import controller_class, resolve_config
from ltos_traffic.experiments import experiment, rundir
from ltos_traffic.experiments.checkpoint import shipped_path, shipped_record
from ltos_traffic.experiments.experiment import default_episodes
from ltos_traffic.scenario import Scenario


def planned_training(
    scenario: Scenario, controller: str, episodes: int | None
) -> tuple[int, str | None, str]:
    """What :func:`.experiment.run` will do before it evaluates, given ``--train-episodes``.

    Returns ``(training episodes, checkpoint, words for the log)``: a learning
    controller without ``episodes`` evaluates the checkpoint shipped for the
    scenario if there is one (0 episodes, its path), else trains the scenario's default.
    """
    from ltos_traffic.controllers.base import controller_class

    if not getattr(controller_class(controller), "learns", False):
        return 0, None, "no training"
    found = shipped_path(scenario.name, controller) if episodes is None else None
    if found is not None:
        trained = rundir.episodes_text(int(shipped_record(found)["episodes"]))
        return 0, str(found), f"the shipped checkpoint, trained {trained}"
    n = episodes if episodes is not None else default_episodes(scenario)
    return n, None, f"{n} training episodes"


def _plain(obj: Any) -> Any:
    """JSON round trip, so tuples and lists compare equal."""
    return json.loads(json.dumps(obj, default=str))


def finished_run(
    directory: Path,
    scenario: Scenario,
    controller: str,
    seed: int,
    train_episodes: int,
    checkpoint: str | None = None,
) -> bool:
    """Whether ``directory`` holds a finished run with exactly these settings."""
    try:
        summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    if config.get("checkpoint") != checkpoint:
        return False
    return (
        _plain(config.get("scenario")) == _plain(scenario.as_dict())
        and config.get("controller") == controller
        and config.get("seed") == seed
        and summary.get("train_episodes") == train_episodes
        and _plain(config.get("controller_config")) == _plain(_default_config(scenario, controller))
    )


def _default_config(scenario: Scenario, controller: str) -> Any:
    """The resolved controller config :func:`.experiment.run` would record (no ``--set``)."""
    cls = controller_class(controller)
    config_cls = getattr(cls, "Config", None)
    if config_cls is None:
        return {}
    config = resolve_config(config_cls, controller, scenario.hparams, {})
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return {}


RunFn = Callable[..., dict[str, Any]]


def ensure_runs(
    scenario: Scenario,
    controllers: Sequence[str],
    seeds: Sequence[int],
    out_root: Path,
    *,
    train_episodes: int | None = None,
    data_dir: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] = lambda _: None,
    run: RunFn | None = None,
) -> list[Path]:
    """Run every (controller, seed) that has no finished, matching run directory.

    Runs go one after the other in this process (libsumo allows one simulation
    at a time). Returns the run directories in (controller, seed) order.
    """
    for name in controllers:
        controller_class(name)  # unknown names fail before anything runs
    run = run or experiment.run  # looked up now: tests replace it
    dirs = []
    for controller in controllers:
        episodes, checkpoint, plan = planned_training(scenario, controller, train_episodes)
        for seed in seeds:
            directory = rundir.run_dir(out_root, scenario.name, controller, seed)
            if finished_run(directory, scenario, controller, seed, episodes, checkpoint):
                log(f"reuse {directory}")
            else:
                log(f"run   {controller} seed {seed} ({plan})")
                summary = run(
                    scenario,
                    controller,
                    seed=seed,
                    out_root=out_root,
                    data_dir=data_dir,
                    episodes=train_episodes,
                    progress=progress,
                )
                log(
                    f"      avg travel time {summary.get('avg_travel_time_s', math.nan):.1f} s, "
                    f"avg delay {summary.get('avg_delay_s', math.nan):.1f} s"
                )
            dirs.append(directory)
    return dirs
