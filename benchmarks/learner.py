"""The learner alone: CPU seconds per steady-state training episode of LToS or DGN on grid6x6.

No SUMO: the controller acts on random observations and rewards of ``grid6x6_v1``'s shape
(36 agents, 360 decisions an episode), so the figure is the learning cost of issue 16
(update rounds, the high-level round, storing) without the simulation. Three episodes fill
the replay buffer untimed; the next ``--episodes`` (default 4, which for LToS hold exactly
one high-level round) are timed and averaged.

Usage: ``python benchmarks/learner.py [--controller ltos|dgn|fixed_ltos] [--episodes 4]
[--profile out.prof]`` (``--profile``: cProfile over the timed episodes, CPU time).
Run it with ``OMP_NUM_THREADS=1`` as the training does.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import time

import numpy as np
import torch

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.envs.traffic import TrafficEnv
from ltos_traffic.scenario import load_scenario
from ltos_traffic.types import TimeStep, Transition

FILL_EPISODES = 3


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--controller", default="ltos")
    parser.add_argument("--net", default="grid6x6_v1")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--profile", default="", help="write a cProfile (CPU time) here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scenario = load_scenario(args.net)
    env = TrafficEnv(scenario)
    spec = env.spec
    env.close()
    controller = make_controller(args.controller, spec, 0, scenario_hparams=scenario.hparams)
    rng = np.random.default_rng(1)
    n, steps = spec.n_agents, spec.episode_steps
    mask = np.ones((n, spec.n_actions), bool)

    def timestep(t: int, reward: np.ndarray) -> TimeStep:
        obs = rng.random((n, spec.obs_dim), dtype=np.float32)
        return TimeStep(
            obs=obs,
            state=obs.reshape(-1),
            action_mask=mask,
            reward=reward,
            done=t == steps,
            t=t,
            sim_time_s=10.0 * t,
        )

    def episode() -> None:
        step = timestep(0, np.zeros(n, np.float32))
        for t in range(1, steps + 1):
            actions = controller.act(step, explore=True)
            nxt = timestep(t, -rng.random(n, dtype=np.float32))
            controller.observe(Transition(step, actions, nxt))
            step = nxt

    for _ in range(FILL_EPISODES):
        episode()
    updates = controller.update_count
    hl_updates = getattr(controller, "hl_update_count", 0)
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    start = _cpu_s()
    if profiler is not None:
        profiler.enable()
    for _ in range(args.episodes):
        episode()
    if profiler is not None:
        profiler.disable()
    cpu = (_cpu_s() - start) / args.episodes
    print(
        f"{args.controller}: {cpu:.2f} CPU s per episode (acting on random observations "
        f"and learning), {(controller.update_count - updates) / args.episodes:.0f} TD steps "
        f"and {(getattr(controller, 'hl_update_count', 0) - hl_updates) / args.episodes:.1f} "
        "high-level steps an episode"
    )
    if profiler is not None:
        profiler.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
