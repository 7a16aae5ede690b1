"""``make bench``: our episode loops against raw SUMO and sumo-rl, measured side by side.

Every measurement runs in a fresh child process (libsumo allows one simulation
per process, and sumo-rl chooses libsumo at import time), and repetitions are
interleaved (rep 1 of every case, then rep 2, ...) so that a change in machine
load hits every case alike. Each case reports wall seconds and CPU seconds
(this process plus its children, e.g. the ``sumo`` of the traci path); ratios
use CPU seconds, which stay meaningful on a shared, busy machine, and wall
seconds are printed beside them. Figures are medians over the repetitions.

Cases (see ``benchmarks/README.md`` for the targets and what they mean):

* P1: raw ``sumo`` (netconvert's static programs) vs a full max-pressure episode
  through ``TrafficEnv`` on ``grid6x6_bench_v1``, with libsumo and with traci.
* P1b: the same 3,600 s episode (decisions every 10 s, 5 s yellow, seeded
  random phases, since sumo-rl cannot express max-pressure) through sumo-rl
  1.4.5's ``SumoEnvironment`` with libsumo and through ``TrafficEnv``.
* P2: one LToS training episode on ``grid6x6_v1`` in steady state (the 4th, so
  the replay buffer is full enough for full update rounds) vs raw ``sumo`` on
  the same network, and vs the time SUMO itself spent in that episode. LToS's high-level
  round (every 20 episodes by default) is timed apart and its amortised share added.
* P3: episodes per hour with 1 and 2 worker processes (parallel rollouts), and
  time per simulated hour on generated grids 6x6, 10x10 and 20x20 with demand
  proportional to the side (3,000 veh/h per 6 rows).
* P4: 400 LToS training episodes on ``grid6x6_v1`` with ``train``'s default
  workers, projected in minutes from the wall time of steady-state rounds plus every
  high-level round of the run (timed apart, made in the learner's process).

Usage: ``python benchmarks/bench.py [--reps 3] [--only P1,P1b,P2,P3,P4] [--csv PATH]``.
Rows are appended to ``benchmarks/results.csv`` so runs can be compared over time.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import datetime
import functools
import importlib
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH_NET = "grid6x6_bench_v1"  # 6x6, 100 m blocks, 3,000 veh/h mixed demand
LTOS_NET = "grid6x6_v1"  # the LToS 6x6 grid and demand
SUMO_RL = "sumo-rl==1.4.5"
MARK = "BENCH "  # prefix of a child's result line on stdout
RAW_BENCH = f"raw sumo {BENCH_NET}, static lights"
RAW_LTOS = f"raw sumo {LTOS_NET}, static lights"
P4_EPISODES = 400  # the authors' budget on the 6x6 grid
P4_WARM_UP = 4  # episodes before the measured ones (the replay buffer fills, full update rounds)
P4_MEASURED = 4  # episodes measured; high-level rounds are timed apart and amortised
P4_LABEL = "LToS training, default workers"


# -- measuring ---------------------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Timer:
    """Wall and CPU seconds (this process and its waited-for children) of a ``with`` block."""

    wall_s: float = 0.0
    cpu_s: float = 0.0

    @contextmanager
    def measure(self) -> Iterator[Timer]:
        wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        yield self
        self.wall_s += time.perf_counter() - wall
        self.cpu_s += time.process_time() - cpu + _children_cpu() - children


def _sumo_time_meter(env: Any) -> Timer:
    """Wrap ``env.sim.advance_to`` so the returned timer counts time spent inside SUMO steps."""
    timer = Timer()
    advance = env.sim.advance_to

    def timed(time_s: float) -> None:
        with timer.measure():
            advance(time_s)

    env.sim.advance_to = timed
    return timer


def _scenario_files(name: str) -> Any:
    from ltos_traffic.net.resolve import resolve_net_files
    from ltos_traffic.scenario import load_scenario

    scenario = load_scenario(name)
    return scenario, resolve_net_files(scenario.network)


def _raw_sumo(
    net_file: Path, route_files: tuple[Path, ...], seconds: float, seed: int, concurrent: int = 1
) -> Timer:
    """The ``sumo`` binary alone: same network and demand, netconvert's static programs.

    ``concurrent`` copies run at once (P3's ceiling: what the machine's cores give plain SUMO).
    """
    from ltos_traffic.net.files import sumo_binary

    cmd = [
        sumo_binary("sumo"),
        "-n", str(net_file),
        "-r", ",".join(str(r) for r in route_files),
        "--begin", "0", "--end", str(seconds),
        "--seed", str(seed),
        "--no-step-log", "true", "--no-warnings", "true", "--duration-log.disable", "true",
    ]  # fmt: skip
    timer = Timer()
    with timer.measure():
        procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(concurrent)]
        if any(proc.wait() != 0 for proc in procs):
            raise RuntimeError(f"sumo failed: {' '.join(cmd)}")
    return timer


def _random_policy(seed: int) -> Callable[[Any], Any]:
    import numpy as np

    rng = np.random.default_rng(seed)

    def act(step: Any) -> Any:
        mask = step.action_mask
        return np.where(mask, rng.random(mask.shape), -1.0).argmax(axis=1)

    return act


# -- child cases: each prints one result line -----------------------------------------------------


def case_raw(args: argparse.Namespace) -> dict[str, Any]:
    """Raw ``sumo`` on a scenario's (or a generated grid's) files."""
    if args.grid:
        files = _grid_files(args.grid)
    else:
        files = _scenario_files(args.net)[1]
    timer = _raw_sumo(files.net_file, files.route_files, 3600.0, args.seed, args.workers)
    return {"wall_s": timer.wall_s, "cpu_s": timer.cpu_s}


def case_env(args: argparse.Namespace) -> dict[str, Any]:
    """One full episode through ``TrafficEnv`` (reset to tripinfo parsing)."""
    from ltos_traffic.controllers.base import make_controller
    from ltos_traffic.envs.traffic import TrafficEnv
    from ltos_traffic.scenario import load_scenario

    if args.grid:
        scenario = _grid_scenario(args.grid)
    else:
        scenario = load_scenario(args.net)
    env = TrafficEnv(scenario, backend=args.backend)
    # Loaded once per process, before the first episode, as sumo-rl loads it at import time.
    importlib.import_module(args.backend)
    act: Callable[[Any], Any] = _random_policy(args.seed)
    if args.policy == "max_pressure":
        controller = make_controller("max_pressure", env.spec, args.seed)
        act = functools.partial(controller.act, explore=False)
    in_sumo = _sumo_time_meter(env)
    timer = Timer()
    with timer.measure():
        step = env.reset(args.seed)
        while not step.done:
            step = env.step(act(step))
        metrics = env.episode_metrics()
    env.close()
    return {
        "wall_s": timer.wall_s,
        "cpu_s": timer.cpu_s,
        "sumo_cpu_s": in_sumo.cpu_s,
        "agents": env.spec.n_agents,
        "arrived": metrics.arrived,
        "avg_travel_time_s": metrics.avg_travel_time_s,
    }


def case_sumorl(args: argparse.Namespace) -> dict[str, Any]:
    """The same episode through sumo-rl's multi-agent ``SumoEnvironment`` on libsumo."""
    import numpy as np
    from sumo_rl import SumoEnvironment  # LIBSUMO_AS_TRACI is set by the parent

    files = _scenario_files(args.net)[1]
    env = SumoEnvironment(
        net_file=str(files.net_file),
        route_file=",".join(str(r) for r in files.route_files),
        num_seconds=3600,
        delta_time=10,
        yellow_time=5,
        min_green=5,
        time_to_teleport=300,  # SUMO's default, as in our runs (sumo-rl's default is -1)
        single_agent=False,
        reward_fn="queue",
        sumo_seed=args.seed,
        sumo_warnings=False,
    )
    rng = np.random.default_rng(args.seed)
    in_sumo = Timer()
    sumo_step = env._sumo_step  # sumo-rl advances SUMO one second per call of this method

    def timed_step() -> None:
        with in_sumo.measure():
            sumo_step()

    env._sumo_step = timed_step
    timer = Timer()
    with timer.measure():
        env.reset()
        done = False
        while not done:
            actions = {ts: int(rng.integers(env.action_spaces(ts).n)) for ts in env.ts_ids}
            _, _, dones, _ = env.step(actions)
            done = dones["__all__"]
        env.close()
    return {
        "wall_s": timer.wall_s,
        "cpu_s": timer.cpu_s,
        "sumo_cpu_s": in_sumo.cpu_s,
        "agents": len(env.ts_ids),
    }


def _high_level_round(controller: Any) -> tuple[float, int]:
    """CPU s of one LToS high-level round, and the training episodes between two rounds.

    A round comes every ``hl_update_every_episodes`` episodes (20 by default on traffic), so a
    few steady-state episodes may hold none: the figures add its amortised share instead.
    """
    every = int(getattr(controller.config, "hl_update_every_episodes", 0))
    if every <= 0:
        return 0.0, 0
    timer = Timer()
    with timer.measure():
        controller._update_sharing()
    return timer.cpu_s, every


def case_ltos(args: argparse.Namespace) -> dict[str, Any]:
    """A steady-state LToS training episode (the last of ``--episodes``), with checkpointing."""
    import torch

    from ltos_traffic.controllers.base import make_controller
    from ltos_traffic.envs.traffic import TrafficEnv
    from ltos_traffic.experiments import training
    from ltos_traffic.scenario import load_scenario

    torch.set_num_threads(args.threads)
    scenario = load_scenario(args.net)
    env = TrafficEnv(scenario)
    controller = make_controller("ltos", env.spec, args.seed, scenario_hparams=scenario.hparams)
    out = Path(tempfile.mkdtemp(prefix="ltos-bench-"))
    training.train(env, controller, out_dir=out, episodes=args.episodes - 1, seed=args.seed)
    in_sumo = _sumo_time_meter(env)
    updates, rounds = controller.update_count, controller.hl_round_count
    timer = Timer()
    with timer.measure():
        training.train(
            env, controller, out_dir=out, episodes=args.episodes, seed=args.seed, resume=True
        )
    env.close()
    rounds = controller.hl_round_count - rounds  # before the round timed apart below
    round_cpu, every = _high_level_round(controller)
    return {
        "wall_s": timer.wall_s,
        "cpu_s": timer.cpu_s,
        "sumo_cpu_s": in_sumo.cpu_s,
        "gradient_steps": controller.update_count - updates,
        "torch_threads": args.threads,
        "hl_rounds_in_episode": rounds,
        "hl_round_cpu_s": round_cpu,
        "hl_every_episodes": every,
    }


def case_rollouts(args: argparse.Namespace) -> dict[str, Any]:
    """Max-pressure episodes on ``--workers`` processes (ltos_traffic.experiments.parallel)."""
    from ltos_traffic.controllers.base import make_controller
    from ltos_traffic.envs.traffic import TrafficEnv
    from ltos_traffic.experiments.parallel import EnvRecipe, RolloutPool
    from ltos_traffic.scenario import load_scenario

    scenario = load_scenario(args.net)
    spec = TrafficEnv(scenario).spec
    controller = make_controller("max_pressure", spec, args.seed)
    recipe = EnvRecipe.of(scenario, backend="libsumo")
    seeds = list(range(args.episodes))
    timer = Timer()
    with (
        timer.measure(),
        RolloutPool(recipe, controller, spec, seed=0, workers=args.workers) as pool,
    ):
        rollouts = pool.run(controller, seeds, explore=False)
    per_episode = statistics.median(r.wall_s for r in rollouts)
    return {
        "wall_s": timer.wall_s,
        "cpu_s": timer.cpu_s,
        "episodes": len(rollouts),
        "episodes_per_hour": len(rollouts) * 3600.0 / timer.wall_s,
        "steady_episodes_per_hour": args.workers * 3600.0 / per_episode,
    }


def case_ltos_workers(args: argparse.Namespace) -> dict[str, Any]:
    """P4: LToS training rounds with ``train``'s default workers, after a warm-up.

    The round loop of :func:`ltos_traffic.experiments.parallel.train_parallel` (rollouts in the
    workers, learning and checkpoint in this process). Worker start-up, paid once
    per run, is outside the measured rounds. Besides the wall time, a round's time
    on an otherwise idle machine with a core per worker is estimated from CPU
    times: the slowest rollout of the round plus the learner's CPU (the learner
    waits for the rollouts, the workers for the learner).
    """
    import torch

    from ltos_traffic.controllers.base import make_controller
    from ltos_traffic.envs.traffic import TrafficEnv
    from ltos_traffic.experiments import checkpoint
    from ltos_traffic.experiments.parallel import (
        EnvRecipe,
        RolloutPool,
        default_workers,
        learn_from,
    )
    from ltos_traffic.experiments.seeds import episode_seed
    from ltos_traffic.scenario import load_scenario

    torch.set_num_threads(1)
    scenario = load_scenario(args.net)
    spec = TrafficEnv(scenario).spec
    controller = make_controller("ltos", spec, args.seed, scenario_hparams=scenario.hparams)
    workers = default_workers(scenario, controller, P4_EPISODES)
    ckpt = Path(tempfile.mkdtemp(prefix="ltos-bench-")) / checkpoint.CHECKPOINT
    timer, idle_s, episodes, rounds = Timer(), 0.0, 0, 0
    recipe = EnvRecipe.of(scenario, backend="libsumo")
    with RolloutPool(recipe, controller, spec, seed=args.seed, workers=workers) as pool:
        for first in range(0, P4_WARM_UP + P4_MEASURED, workers):
            seeds = [episode_seed(args.seed, k) for k in range(first, first + workers)]
            learner, before = Timer(), controller.hl_round_count
            with timer.measure() if first >= P4_WARM_UP else contextlib.nullcontext():
                rollouts = pool.run(controller, seeds, explore=True)
                with learner.measure():
                    for rollout in rollouts:
                        learn_from(controller, rollout)
                    checkpoint.save_checkpoint(ckpt, controller, episodes_done=first + 1, seed=0)
            if first >= P4_WARM_UP:
                idle_s += max(r.cpu_s for r in rollouts) + learner.cpu_s
                episodes += len(rollouts)
                rounds += controller.hl_round_count - before
    round_cpu, every = _high_level_round(controller)
    # the measured episodes' time without the rounds they held, plus every round of the run
    # (the learner makes them in this process while the workers wait)
    total_rounds = P4_EPISODES // every if every else 0
    wall = P4_EPISODES * (timer.wall_s - rounds * round_cpu) / episodes
    idle = P4_EPISODES * (idle_s - rounds * round_cpu) / episodes
    return {
        "wall_s": timer.wall_s,
        "cpu_s": timer.cpu_s,  # the learner only: the workers are not waited for
        "workers": workers,
        "hl_round_cpu_s": round_cpu,
        "hl_rounds_measured": rounds,
        "projected_minutes": (wall + total_rounds * round_cpu) / 60.0,
        "projected_idle_minutes": (idle + total_rounds * round_cpu) / 60.0,
    }


def _grid_options(size: int) -> Any:
    from ltos_traffic.net.grid import GridOptions

    return GridOptions(rows=size, cols=size, block_m=100.0, demand="mixed", rate=3000.0 * size / 6)


def _grid_files(size: int) -> Any:
    from ltos_traffic.net.grid import build_grid

    return build_grid(_grid_options(size))


def _grid_scenario(size: int) -> Any:
    from ltos_traffic.scenario import load_scenario

    opts = _grid_options(size)
    base = load_scenario(BENCH_NET)
    network = {**base.network, "rows": size, "cols": size, "rate": opts.rate}
    return dataclasses.replace(base, name=f"grid{size}x{size}_bench", network=network)


CASES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "raw": case_raw,
    "env": case_env,
    "sumorl": case_sumorl,
    "ltos": case_ltos,
    "rollouts": case_rollouts,
    "ltos_workers": case_ltos_workers,
}


# -- the parent: plan, run children, summarise ---------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One measured configuration: the child's arguments and a label."""

    group: str
    label: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    reps: int | None = None  # None: the run's --reps


def plan(groups: set[str], sumo_rl: bool) -> list[Case]:
    """The cases of the selected groups."""
    cases: list[Case] = []
    if "P1" in groups or "P1b" in groups:
        cases.append(Case("P1", RAW_BENCH, ("raw", "--net", BENCH_NET)))
    if "P1" in groups:
        cases += [
            Case("P1", "TrafficEnv libsumo, max-pressure", ("env", "--net", BENCH_NET)),
            Case(
                "P1",
                "TrafficEnv traci, max-pressure",
                ("env", "--net", BENCH_NET, "--backend", "traci"),
            ),
        ]
    if "P1b" in groups:
        cases.append(
            Case(
                "P1b",
                "TrafficEnv libsumo, random",
                ("env", "--net", BENCH_NET, "--policy", "random"),
            )
        )
        if sumo_rl:
            cases.append(
                Case(
                    "P1b",
                    "sumo-rl 1.4.5 libsumo, random",
                    ("sumorl", "--net", BENCH_NET),
                    env=(("LIBSUMO_AS_TRACI", "1"),),
                )
            )
    if "P2" in groups:
        cases += [
            Case("P2", RAW_LTOS, ("raw", "--net", LTOS_NET)),
            Case(
                "P2",
                "LToS training episode",
                ("ltos", "--net", LTOS_NET, "--episodes", "4"),
                reps=2,
            ),
        ]
    if "P3" in groups:
        for workers in (1, 2):
            argv = ("rollouts", "--net", BENCH_NET, "--workers", str(workers), "--episodes", "4")
            cases.append(Case("P3", f"rollouts, {workers} worker(s)", argv, reps=1))
            raw = ("raw", "--net", BENCH_NET, "--workers", str(workers))
            cases.append(Case("P3", f"raw sumo, {workers} at once", raw, reps=1))
        for size in (6, 10, 20):
            cases.append(
                Case("P3", f"grid {size}x{size} raw sumo", ("raw", "--grid", str(size)), reps=1)
            )
            cases.append(
                Case("P3", f"grid {size}x{size} max-pressure", ("env", "--grid", str(size)), reps=1)
            )
    if "P4" in groups:
        cases.append(Case("P4", P4_LABEL, ("ltos_workers", "--net", LTOS_NET), reps=1))
    return cases


def run_child(case: Case, seed: int) -> dict[str, Any]:
    """Run one case in a fresh interpreter; its result line as a dict."""
    env = {**os.environ, **dict(case.env), "PYTHONPATH": str(REPO)}
    if any(k == "LIBSUMO_AS_TRACI" for k, _ in case.env):
        from sumo import SUMO_HOME  # sumo-rl refuses to import without SUMO_HOME

        env.setdefault("SUMO_HOME", str(SUMO_HOME))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", *case.argv, "--seed", str(seed)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            result: dict[str, Any] = json.loads(line[len(MARK) :])
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    raise RuntimeError(f"case {case.label!r} failed:\n" + "\n".join(tail))


def ensure_sumo_rl() -> bool:
    """Install sumo-rl 1.4.5 into this interpreter's environment for P1b if it is missing."""
    if importlib.util.find_spec("sumo_rl") is not None:
        return True
    print(f"installing {SUMO_RL} for P1b (benchmark only, not a project dependency)")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", SUMO_RL], capture_output=True, text=True
    )
    if proc.returncode != 0:
        print(f"could not install {SUMO_RL}; P1b skipped: {proc.stderr.strip()[-300:]}")
        return False
    return True


def median(results: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in results if key in r]
    return float(statistics.median(values)) if values else float("nan")


@dataclass(frozen=True)
class Figure:
    """One line of the summary: a value, its target and how it compares."""

    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None


def figures(results: dict[str, list[dict[str, Any]]]) -> list[Figure]:
    """Ratios and rates from the medians (missing cases give no figure)."""
    out: list[Figure] = []

    def cpu(label: str) -> float:
        return median(results.get(label, []), "cpu_s")

    raw = cpu(RAW_BENCH)
    for label, target in (
        ("TrafficEnv libsumo, max-pressure", 1.10),
        ("TrafficEnv traci, max-pressure", 4.0),
    ):
        if label in results and raw == raw:
            ratio = cpu(label) / raw
            out.append(
                Figure(f"P1 {label} / raw sumo", ratio, "x", f"<= {target}", ratio <= target)
            )

    def outside_sumo(label: str) -> float:
        return median([{"x": r["cpu_s"] - r["sumo_cpu_s"]} for r in results[label]], "x")

    if "TrafficEnv libsumo, max-pressure" in results:
        extra = outside_sumo("TrafficEnv libsumo, max-pressure")
        out.append(Figure("P1 TrafficEnv libsumo: CPU outside SUMO steps", extra, "s"))
    ours, theirs = "TrafficEnv libsumo, random", "sumo-rl 1.4.5 libsumo, random"
    if theirs in results:
        speedup = cpu(theirs) / cpu(ours)
        out.append(Figure("P1b our speed / sumo-rl's", speedup, "x", ">= 1.2", speedup >= 1.2))
        out.append(Figure("P1b CPU outside SUMO steps, ours", outside_sumo(ours), "s"))
        out.append(Figure("P1b CPU outside SUMO steps, sumo-rl's", outside_sumo(theirs), "s"))
    if "LToS training episode" in results:
        ltos = results["LToS training episode"]
        raw2 = cpu(RAW_LTOS)
        # an episode's share of the high-level rounds, whether or not the measured one held one
        round_cpu, every = median(ltos, "hl_round_cpu_s"), median(ltos, "hl_every_episodes")
        held = median(ltos, "hl_rounds_in_episode") * round_cpu
        episode = cpu("LToS training episode") - held + (round_cpu / every if every else 0.0)
        ratio = episode / raw2
        out.append(Figure("P2 LToS episode / raw sumo", ratio, "x", "<= 2", ratio <= 2.0))
        own = episode / median(ltos, "sumo_cpu_s")
        out.append(Figure("P2 LToS episode / SUMO time inside it", own, "x"))
        out.append(Figure("P2 one high-level round (amortised in P2 and P4)", round_cpu, "s"))
    for workers in (1, 2):
        label = f"rollouts, {workers} worker(s)"
        if label in results:
            eph = median(results[label], "episodes_per_hour")
            steady = median(results[label], "steady_episodes_per_hour")
            out.append(
                Figure(f"P3 episodes/hour, {workers} worker(s), incl. start-up", eph, "ep/h")
            )
            out.append(Figure(f"P3 episodes/hour, {workers} worker(s), steady", steady, "ep/h"))
    if "raw sumo, 2 at once" in results:
        one = median(results["raw sumo, 1 at once"], "wall_s")
        two = median(results["raw sumo, 2 at once"], "wall_s")
        out.append(
            Figure("P3 machine ceiling: raw sumo throughput, 2 at once / 1", 2 * one / two, "x")
        )
    for size in (6, 10, 20):
        label = f"grid {size}x{size} max-pressure"
        if label in results:
            seconds = median(results[label], "wall_s")
            per_agent = 1000.0 * cpu(label) / median(results[label], "agents")
            ratio = cpu(label) / cpu(f"grid {size}x{size} raw sumo")
            out.append(Figure(f"P3 grid {size}x{size}: wall s per simulated hour", seconds, "s"))
            out.append(
                Figure(f"P3 grid {size}x{size}: CPU ms per intersection-hour", per_agent, "ms")
            )
            out.append(Figure(f"P3 grid {size}x{size}: max-pressure / raw sumo", ratio, "x"))
    if P4_LABEL in results:
        p4 = results[P4_LABEL]
        workers = int(median(p4, "workers"))
        name = f"P4 400 LToS episodes on grid6x6, {workers} workers, projected"
        minutes = median(p4, "projected_minutes")
        out.append(Figure(f"{name} (wall)", minutes, "min", "<= 30", minutes <= 30.0))
        idle = median(p4, "projected_idle_minutes")
        out.append(Figure(f"{name} (idle machine, from CPU)", idle, "min", "<= 30", idle <= 30.0))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per case (median)")
    parser.add_argument("--only", default="P1,P1b,P2,P3,P4", help="comma-separated groups")
    parser.add_argument("--csv", default=str(REPO / "benchmarks" / "results.csv"))
    parser.add_argument("--seed", type=int, default=0)
    # child-only options
    parser.add_argument("--case", nargs=1, choices=sorted(CASES), default=None)
    parser.add_argument("--net", default=BENCH_NET)
    parser.add_argument("--grid", type=int, default=0)
    parser.add_argument("--backend", default="libsumo")
    parser.add_argument("--policy", default="max_pressure")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the LToS case")
    args, rest = parser.parse_known_args()
    if args.case is not None:
        print(MARK + json.dumps(CASES[args.case[0]](args)), flush=True)
        return
    if rest:
        parser.error(f"unknown arguments {rest}")
    run_parent(args)


def run_parent(args: argparse.Namespace) -> None:
    """Run the plan with interleaved repetitions, print the table, append the CSV."""
    groups = {g.strip() for g in args.only.split(",") if g.strip()}
    sumo_rl = "P1b" in groups and ensure_sumo_rl()
    cases = plan(groups, sumo_rl)
    started = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {}
    for rep in range(args.reps):
        for case in cases:
            if rep >= (case.reps or args.reps):
                continue
            key = case.label
            t0 = time.perf_counter()
            result = run_child(case, args.seed)
            results.setdefault(key, []).append(result)
            print(
                f"[{time.perf_counter() - started:6.0f} s] rep {rep + 1} {case.group:<3} "
                f"{case.label:<36} cpu {result['cpu_s']:7.2f} s  wall {result['wall_s']:7.2f} s"
                f"  (child {time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    print()
    print(f"{'case':<44} {'cpu s':>8} {'wall s':>8}  (medians)")
    for key, rows in results.items():
        print(f"{key:<44} {median(rows, 'cpu_s'):8.2f} {median(rows, 'wall_s'):8.2f}")
    print()
    summary = figures(results)
    for f in summary:
        verdict = "" if f.ok is None else ("  OK" if f.ok else "  MISSED")
        target = f"  target {f.target}" if f.target else ""
        print(f"{f.name:<60} {f.value:9.2f} {f.unit}{target}{verdict}")
    print(f"\nbench took {time.perf_counter() - started:.0f} s; rows appended to {args.csv}")
    write_csv(Path(args.csv), results, summary, args.reps)


def write_csv(
    path: Path, results: dict[str, list[dict[str, Any]]], summary: list[Figure], reps: int
) -> None:
    """Append one row per case median and per figure, stamped with time, commit and host."""
    from ltos_traffic.experiments.rundir import git_sha

    stamp = {
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_sha": git_sha(),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 2),
        "reps": reps,
    }
    rows = [
        {**stamp, "kind": "case", "name": key, "value": median(r, "cpu_s"), "unit": "cpu_s",
         "wall_s": median(r, "wall_s"), "target": "", "ok": ""}
        for key, r in results.items()
    ]  # fmt: skip
    rows += [
        {**stamp, "kind": "figure", "name": f.name, "value": f.value, "unit": f.unit,
         "wall_s": "", "target": f.target, "ok": "" if f.ok is None else f.ok}
        for f in summary
    ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file()
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
