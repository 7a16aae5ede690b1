"""``ltos-traffic train``: train a learning controller, checkpointing every episode."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from ltos_traffic.cli.options import RunOptions, common_options, default_controller
from ltos_traffic.errors import UserError
from ltos_traffic.experiments import rundir
from ltos_traffic.experiments.checkpoint import CHECKPOINT


@click.command("train")
@common_options
@click.option(
    "--episodes",
    type=int,
    default=None,
    help="Total training episodes (default: the scenario's train_episodes).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue from the run directory's checkpoint.pt after an interruption.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Worker processes running episodes in parallel for one learner (episodes per round; "
    "the same seed and count give the same run). Default: one per available core, at most 8, "
    "for traffic and a controller that supports it, else 1; --resume keeps the run's count.",
)
def train_cmd(
    opts: RunOptions,
    episodes: int | None,
    resume: bool,
    workers: int | None,
) -> None:
    """Train a learning controller; the run directory gets checkpoint.pt and episodes.csv."""
    from ltos_traffic.experiments import experiment, training
    from ltos_traffic.experiments.parallel import default_workers

    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if episodes is not None and episodes < 1:
        raise UserError(f"--episodes must be at least 1, got {episodes}")
    scen = opts.resolve()
    controller = default_controller(opts.controller, scen, training=True)
    seed = opts.seed
    n = episodes if episodes is not None else experiment.default_episodes(scen)
    traffic_options: dict[str, Any] = {"data_dir": opts.data_dir, "backend": "libsumo"}
    out_dir, env, ctrl = experiment.open_run(
        scen, controller, seed=seed, out_root=Path(opts.out), overrides=opts.sets,
        traffic_options=traffic_options,
    )  # fmt: skip
    started = time.perf_counter()
    try:
        if not getattr(ctrl, "learns", False):
            raise UserError(f"controller {controller!r} does not learn; use `ltos-traffic run`")
        resuming = resume and (out_dir / CHECKPOINT).is_file()
        note = experiment.schedule_note(ctrl, n)
        if note is not None:
            click.echo(note, err=True)
        if workers is None:
            workers = _recorded_workers(out_dir) if resuming else default_workers(scen, ctrl, n)
            if workers > 1:
                click.echo(f"{workers} worker processes (--workers 1: train in this process)",
                           err=True)  # fmt: skip
        if not resuming:
            rundir.write_config(
                out_dir,
                scenario=scen.as_dict(),
                controller=controller,
                config=dataclasses.asdict(ctrl.config),
                seed=seed,
                extra={"episodes": n, "workers": workers},
            )
        if workers > 1:
            from ltos_traffic.experiments.parallel import EnvRecipe, train_parallel

            results = train_parallel(
                EnvRecipe.of(scen, **experiment.env_options(scen, traffic_options)), ctrl,
                env.spec, out_dir=out_dir, episodes=n, seed=seed, workers=workers,
                resume=resume, progress=sys.stderr.isatty(),
            )  # fmt: skip
        else:
            results = training.train(
                env, ctrl, out_dir=out_dir, episodes=n, seed=seed, resume=resume,
                progress=sys.stderr.isatty(),
            )  # fmt: skip
    finally:
        env.close()
    if results:
        m = results[-1].metrics
        click.echo(
            f"episode {n - 1}: return {m.episode_return:.1f}, "
            f"travel time {m.avg_travel_time_s:.1f} s, delay {m.avg_delay_s:.1f} s"
        )
    else:
        click.echo(f"already trained {n} episodes; nothing to do")
    click.echo(f"run directory: {out_dir}  ({time.perf_counter() - started:.1f} s)")


def _recorded_workers(out_dir: Path) -> int:
    """The worker count in a run's ``config.json`` (1 for runs from before it was recorded)."""
    try:
        return int(json.loads((out_dir / "config.json").read_text()).get("workers", 1))
    except (OSError, ValueError, AttributeError):
        return 1
