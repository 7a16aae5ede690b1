"""One experiment, (scenario, controller, seed): train if needed, evaluate, write the run dir."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ltos_traffic import atomic
from ltos_traffic.controllers.base import SharesRewards, make_controller, parse_set_options
from ltos_traffic.envs.base import OnRoadNetwork
from ltos_traffic.envs.factory import make_env
from ltos_traffic.experiments import rundir, training
from ltos_traffic.experiments.checkpoint import load_checkpoint, shipped_path, shipped_record
from ltos_traffic.experiments.runner import EpisodeResult, SharingMeter, run_episode
from ltos_traffic.experiments.seeds import eval_seed, seed_everything
from ltos_traffic.scenario import Scenario


def env_options(scenario: Scenario, traffic_options: dict[str, Any] | None) -> dict[str, Any]:
    """``make_env`` options: ``traffic_options`` for traffic, none for the grid-worlds."""
    return dict(traffic_options or {}) if scenario.kind == "traffic" else {}


def open_run(
    scenario: Scenario,
    controller_name: str,
    *,
    seed: int,
    out_root: Path,
    overrides: Sequence[str] = (),
    traffic_options: dict[str, Any] | None = None,
) -> tuple[Path, Any, Any]:
    """Seed, make the run directory, the environment and the controller of one run.

    ``traffic_options`` are ``TrafficEnv`` keyword arguments (data dir, backend,
    GUI), used only for traffic scenarios. Returns ``(out_dir, env, controller)``;
    the caller closes ``env``.
    """
    parse_set_options(list(overrides))  # a malformed --set fails before the directory is made
    out_dir = rundir.ensure_writable_dir(
        rundir.run_dir(out_root, scenario.name, controller_name, seed)
    )
    env, controller = make_run(
        scenario, controller_name, seed=seed, overrides=overrides, traffic_options=traffic_options
    )
    return out_dir, env, controller


def make_run(
    scenario: Scenario,
    controller_name: str,
    *,
    seed: int,
    overrides: Sequence[str] = (),
    traffic_options: dict[str, Any] | None = None,
) -> tuple[Any, Any]:
    """Seed, then make the environment and the controller of one run: ``(env, controller)``.

    The common set-up of :func:`open_run`, shipped-checkpoint evaluations and the GUI;
    the environment is closed again when the controller cannot be made.
    """
    seed_everything(seed)
    sets = parse_set_options(list(overrides))
    env = make_env(scenario, **env_options(scenario, traffic_options))
    try:
        controller = make_controller(
            controller_name, env.spec, seed, scenario_hparams=scenario.hparams, overrides=sets
        )
    except BaseException:
        env.close()
        raise
    return env, controller


def run(
    scenario: Scenario,
    controller_name: str,
    *,
    seed: int,
    out_root: Path,
    overrides: Sequence[str] = (),
    data_dir: str | None = None,
    episodes: int | None = None,
    checkpoint: str | None = None,
    gui: bool = False,
    backend: str = "libsumo",
    progress: bool = False,
    resume: bool = False,
    train: bool = False,
    on_note: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train (learning controllers, unless ``checkpoint``) then evaluate; returns the summary.

    ``on_note`` receives the controller's note on its training schedule, if it has one
    (LToS: a run too short for a high-level round), before training starts.

    A learning controller with neither ``checkpoint`` nor ``episodes`` nor
    ``train`` nor hyperparameter ``overrides`` (which the shipped policy was not
    trained with) uses the checkpoint shipped for its scenario when there is one
    (:func:`~ltos_traffic.experiments.checkpoint.shipped_path`); the summary says so under
    ``"checkpoint"``.

    Writes ``config.json``, ``episodes.csv``, ``steps.csv`` and ``summary.json``
    into ``out_root/<scenario>/<controller>/seed<seed>/``.
    """
    out_dir, env, controller = open_run(
        scenario, controller_name, seed=seed, out_root=out_root, overrides=overrides,
        traffic_options={"data_dir": data_dir, "gui": gui, "backend": backend},
    )  # fmt: skip
    started = time.perf_counter()
    try:
        learns = getattr(controller, "learns", False)
        shipped_episodes = None
        if learns and checkpoint is None and episodes is None and not train and not overrides:
            found = shipped_path(scenario.name, controller_name)
            if found is not None:
                checkpoint = str(found)
                shipped_episodes = int(shipped_record(found)["episodes"])
        checkpoint_episodes = 0
        if learns and checkpoint is not None:  # a bad checkpoint must not touch config.json
            checkpoint_episodes = load_checkpoint(Path(checkpoint), controller)
        rundir.write_config(
            out_dir,
            scenario=scenario.as_dict(),
            controller=controller_name,
            config=dataclasses.asdict(controller.config) if hasattr(controller, "config") else {},
            seed=seed,
            extra={"episodes": episodes, "checkpoint": checkpoint},
        )
        trained = 0
        if learns and checkpoint is None:
            trained = episodes if episodes is not None else default_episodes(scenario)
            note = schedule_note(controller, trained)
            if note is not None and on_note is not None:
                on_note(note)
            training.train(
                env, controller, out_dir=out_dir, episodes=trained, seed=seed,
                resume=resume, progress=progress,
            )  # fmt: skip
        meter = SharingMeter(controller)
        result = run_episode(
            env, controller, seed=eval_seed(seed), explore=False, learn=False, on_step=meter
        )
    finally:
        env.close()
    wall = time.perf_counter() - started
    extra = write_agent_tables(out_dir, env, controller, result, meter)
    extra["checkpoint"] = checkpoint if learns else None
    if not learns:
        extra["training"] = "none"
    elif shipped_episodes is not None:
        extra["training"] = f"shipped: {rundir.episodes_text(shipped_episodes)}"
    elif checkpoint is not None:
        extra["training"] = f"checkpoint: {rundir.episodes_text(checkpoint_episodes)}"
    else:
        extra["training"] = rundir.episodes_text(trained)
    return write_evaluation(
        out_dir, scenario, controller_name, seed, result, wall, trained, extra=extra
    )


def schedule_note(controller: object, episodes: int) -> str | None:
    """The controller's note on training ``episodes`` episodes (``schedule_note``), or None."""
    note = getattr(controller, "schedule_note", None)
    return note(episodes) if callable(note) else None


def default_episodes(scenario: Scenario) -> int:
    """Training episodes when ``--episodes`` is not given (scenario ``[params] train_episodes``)."""
    return int(scenario.params.get("train_episodes", 10))


def write_evaluation(
    out_dir: Path,
    scenario: Scenario,
    controller_name: str,
    seed: int,
    result: EpisodeResult,
    wall_s: float,
    trained_episodes: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Append the evaluation row, write ``steps.csv`` and ``summary.json`` (plus ``extra``)."""
    row = {"episode": trained_episodes, "phase": "eval", **result.metrics.as_row()}
    rundir.append_csv_row(out_dir / "episodes.csv", row)
    interval = scenario.decision_interval_s
    rundir.write_csv(
        out_dir / "steps.csv",
        [
            {"step": k + 1, "sim_time_s": (k + 1) * interval, "queue": q}
            for k, q in enumerate(result.queue_curve)
        ],
    )
    summary: dict[str, Any] = {
        "controller": controller_name,
        "net": scenario.name,
        "scenario": scenario.name,
        "seed": seed,
        "eval_seed": eval_seed(seed),
        "train_episodes": trained_episodes,
        "wall_s": wall_s,
        **result.metrics.as_row(),
        "run_dir": str(out_dir),
        **(extra or {}),
    }
    atomic.atomic_write_json(out_dir / "summary.json", summary)
    return summary


def write_agent_tables(
    out_dir: Path, env: Any, controller: Any, result: EpisodeResult, meter: SharingMeter
) -> dict[str, Any]:
    """Per-intersection tables of the evaluation episode, for the report's maps.

    ``agents.csv``: agent id, position (m) and mean queue (halting vehicles on
    incoming lanes); ``weights.csv`` (controllers that share rewards): the mean
    greedy sharing weight ``w_ij`` from agent i to each neighbour j, slot 0 = i itself.
    Returns summary extras (``net_file``, ``self_weight``).
    """
    extra: dict[str, Any] = {}
    ids = env.spec.agent_ids
    on_map = isinstance(env, OnRoadNetwork)
    net_file = env.topology.net_file if on_map else None
    positions = env.topology.positions if on_map else None
    if net_file is not None:
        extra["net_file"] = str(net_file)
    if result.agent_queue is not None:
        xy = positions if positions is not None else np.full((len(ids), 2), np.nan)
        rundir.write_csv(
            out_dir / "agents.csv",
            [
                {"agent": a, "x": float(x), "y": float(y), "mean_queue": float(q)}
                for a, (x, y), q in zip(ids, xy, result.agent_queue)
            ],
        )
    weights = meter.mean()
    if weights is not None and isinstance(controller, SharesRewards):
        index = np.asarray(controller.nbr_index)
        mask = np.asarray(controller.nbr_mask)
        rundir.write_csv(
            out_dir / "weights.csv",
            [
                {"agent": ids[i], "slot": k, "neighbour": ids[int(index[i, k])], "weight": w}
                for i in range(len(ids))
                for k, w in enumerate(weights[i].tolist())
                if mask[i, k]
            ],
        )
        extra["self_weight"] = meter.self_weight()
    return extra
