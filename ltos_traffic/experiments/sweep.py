"""Sweeps: the grid of (controller, seed) jobs on one scenario, run in parallel.

Every job is :func:`ltos_traffic.experiments.experiment.run` (train if the controller
learns, evaluate, write ``<out>/<scenario>/<controller>/seed<k>/``), so a sweep
leaves exactly the run directories that ``run`` and ``compare`` leave, and
``report`` reads them unchanged.

Two backends run the same job function:

* ``local``: a pool of processes on this machine, one fresh process per job
  (libsumo allows one simulation per process and keeps global state);
* ``ray``: one Ray task per job (``pip install 'ltos-traffic[ray]'``), on a
  local Ray instance started for the sweep or, with ``address``, on an existing
  cluster. Every node needs this package installed and the output root on a
  shared file system; the driver also receives each job's summary.

Each job runs with one torch thread, the same on both backends (so they give
identical numbers) and the right choice when several jobs share the cores.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ltos_traffic.errors import UserError
from ltos_traffic.scenario import Scenario

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class Job:
    """One (controller, seed) run of a sweep; the arguments of ``experiment.run``.

    Attributes:
        scenario: the scenario (shared by the whole sweep).
        controller: registered controller name.
        seed: run seed.
        out_root: root of the run directories (shared storage on a cluster).
        overrides: ``KEY=VALUE`` hyperparameter overrides.
        episodes: training episodes (``None``: the scenario's default).
        data_dir: CityFlow data directory (Shenzhen), if any.
        backend: SUMO backend, ``"libsumo"`` or ``"traci"``.
        torch_threads: torch threads of the job's process.
    """

    scenario: Scenario
    controller: str
    seed: int
    out_root: str
    overrides: tuple[str, ...] = ()
    episodes: int | None = None
    data_dir: str | None = None
    backend: str = "libsumo"
    torch_threads: int = 1


def job_grid(
    scenario: Scenario,
    controllers: Sequence[str],
    seeds: Sequence[int],
    out_root: Path,
    *,
    overrides: Sequence[str] = (),
    episodes: int | None = None,
    data_dir: str | None = None,
) -> list[Job]:
    """Jobs in (controller, seed) order.

    Unknown controllers and overrides a controller does not accept fail here,
    before anything runs.
    """
    from ltos_traffic.controllers.base import controller_class, parse_set_options, resolve_config

    sets = parse_set_options(list(overrides))
    for name in controllers:
        resolve_config(controller_class(name).Config, name, scenario.hparams, sets)
    return [
        Job(scenario, name, int(seed), str(out_root), tuple(overrides), episodes, data_dir)
        for name in controllers
        for seed in seeds
    ]


def run_job(job: Job) -> dict[str, Any]:
    """Run one job in this process; returns its summary (as ``summary.json``)."""
    import torch

    from ltos_traffic.experiments import experiment

    torch.set_num_threads(job.torch_threads)  # a job's own process (see the module docstring)
    return experiment.run(
        job.scenario,
        job.controller,
        seed=job.seed,
        out_root=Path(job.out_root),
        overrides=job.overrides,
        data_dir=job.data_dir,
        episodes=job.episodes,
        backend=job.backend,
    )


Done = Callable[[Job, dict[str, Any]], None]


def run_local(jobs: Sequence[Job], *, workers: int, on_done: Done | None = None) -> list[dict]:
    """Run ``jobs`` on ``workers`` local processes, one fresh process per job.

    Returns the summaries in job order.
    """
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        results = []
        for job, future in zip(jobs, futures):
            results.append(future.result())
            if on_done is not None:
                on_done(job, results[-1])
    return results


def run_ray(
    jobs: Sequence[Job],
    *,
    address: str | None = None,
    workers: int | None = None,
    on_done: Done | None = None,
) -> list[dict]:
    """Run ``jobs`` as Ray tasks (one CPU each, a fresh worker process per job).

    Args:
        jobs: the jobs.
        address: an existing cluster (``"ray://host:10001"``, ``"host:6379"`` or
            ``"auto"``); ``None`` starts a local Ray instance for this sweep.
        workers: CPUs of the local instance (``None``: all); ignored with ``address``.
        on_done: called with each job and its summary, in job order.

    Returns:
        The summaries in job order.
    """
    try:
        import ray
    except ImportError:
        raise UserError(
            "the ray backend needs Ray: pip install 'ltos-traffic[ray]' (or use --backend local)"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        if address is not None:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
    try:
        # max_calls=1: the worker process exits after its job, as libsumo needs
        remote = ray.remote(num_cpus=1, max_calls=1)(run_job)
        refs = [remote.remote(job) for job in jobs]
        results = []
        for job, ref in zip(jobs, refs):
            results.append(ray.get(ref))
            if on_done is not None:
                on_done(job, results[-1])
    finally:
        if started_here:
            ray.shutdown()
    return results


def sweep(
    jobs: Sequence[Job],
    *,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    on_done: Done | None = None,
) -> list[dict]:
    """Run the jobs on ``backend`` (``"local"`` or ``"ray"``); summaries in job order."""
    if backend not in BACKENDS:
        raise UserError(f"unknown sweep backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise UserError("--address is for --backend ray")
    if backend == "ray":
        return run_ray(jobs, address=address, workers=workers, on_done=on_done)
    return run_local(jobs, workers=workers or multiprocessing.cpu_count(), on_done=on_done)
