"""How much of a trained QMIX's team value its agents carry (issue 14's QMIX diagnosis).

For each run directory (``ltos-traffic run --controller qmix``), the checkpoint's own replay
is cut into training windows as the learner samples them, and on their loss-carrying steps
this prints and writes:

* ``q_i_mean`` and ``q_i_spread``: the agents' utilities ``Q_i`` of the taken action and
  ``max_a Q_i - min_a Q_i`` over legal actions (how much an agent's own choice matters to it);
* ``dqtot_dqi``: the mixer's slope ``dQ_tot / dQ_i`` at the taken actions, per agent;
* ``q_tot``, ``v_part`` and ``agents_part``: the team value, its state-only term ``V(s)`` and
  the rest (hypernetwork biases and agent utilities through the monotonic layer);
* ``action_effect``: ``q_i_spread * dqtot_dqi``, about how far one agent's greedy choice can
  move ``Q_tot``; ``team_reward``: the mean team reward of a step, for scale;
* from every stored episode of the replay (the last training episodes, epsilon at its floor):
  ``hold_rate``, the share of decisions at which an agent repeats its previous phase,
  ``longest_hold_steps``, an agent's longest run of one phase in an episode (decisions; mean
  over agents and episodes), and ``unused_phases``, the legal phases an agent never picks in
  an episode (mean), which say whether the policy serves every approach.

Usage:
    python experiments/qmix_credit.py RUN_DIR [RUN_DIR ...] --out docs/results/qmix_credit.csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ltos_traffic.experiments import rundir
from ltos_traffic.experiments.checkpoint import load_checkpoint
from ltos_traffic.experiments.experiment import make_run
from ltos_traffic.scenario import load_scenario

WINDOWS = 64  # sampled training windows per run


def credit(run: Path, windows: int = WINDOWS) -> dict[str, float | str]:
    """The figures above for one finished QMIX run directory."""
    config = json.loads((run / "config.json").read_text())
    if config["controller"] != "qmix":
        raise SystemExit(f"{run} is a {config['controller']} run; this reads QMIX runs")
    settings = [f"{k}={v}" for k, v in config["controller_config"].items()]  # as trained
    scenario = load_scenario(config["scenario"]["name"])
    env, ctl = make_run(scenario, "qmix", seed=config["seed"], overrides=settings)
    env.close()
    load_checkpoint(run / "checkpoint.pt", ctl)
    cfg = ctl.config
    batch = ctl.buffer.sample_windows(
        windows, cfg.train_steps, cfg.burn_in_steps, np.random.default_rng(0)
    )
    with torch.no_grad():
        q_all = ctl._unroll(ctl.agent, batch["obs"], batch["actions"], batch["prev_action"])
        q_all, legal = q_all[:, :-1], batch["mask"][:, :-1]
        spread = q_all.masked_fill(~legal, -np.inf).amax(-1) - q_all.masked_fill(
            ~legal, np.inf
        ).amin(-1)
        q = q_all.gather(-1, batch["actions"][..., None]).squeeze(-1)
        b, steps, n = q.shape
        q, spread = q.reshape(b * steps, n), spread.reshape(b * steps, n)
        state = batch["state"][:, :-1].reshape(b * steps, -1)
        v = ctl.mixer.state_value(state)  # the mixer's state-only term (VDN's sum: none)
    with torch.enable_grad():  # the trained mixer itself, and its slope in each agent's value
        q = q.requires_grad_(True)
        q_tot = ctl.mixer(q, state)
        (slope,) = torch.autograd.grad(q_tot.sum(), q)
    q, q_tot = q.detach(), q_tot.detach()
    train = batch["train"].reshape(-1).bool()
    arrays = ctl.buffer.arrays
    stored = len(ctl.buffer)
    holds = phase_holds(
        arrays["actions"][:stored], arrays["filled"][:stored], arrays["mask"][:stored]
    )
    return {
        "run": str(run),
        "scenario": config["scenario"]["name"],
        "seed": config["seed"],
        "gamma": cfg.gamma,
        "train_episodes": ctl.episodes,
        "q_i_mean": float(q[train].mean()),
        "q_i_spread": float(spread[train].mean()),
        "dqtot_dqi": float(slope[train].mean()),
        "q_tot": float(q_tot[train].mean()),
        "v_part": float(v[train].mean()),
        "agents_part": float((q_tot - v)[train].mean()),
        "action_effect": float((spread * slope)[train].mean()),
        "team_reward": float(batch["reward"].reshape(-1)[train].mean()),
        **holds,
    }


def phase_holds(actions: np.ndarray, filled: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """How the stored episodes use the phases.

    Args:
        actions: ``(E, T, N)`` phases chosen.
        filled: ``(E, T)`` real steps.
        mask: ``(E, T + 1, N, A)`` legal phases; an agent's unused phases are counted
            against its legal set at the episode's first step (a junction's phases do not
            change within an episode).

    Returns:
        ``hold_rate``, ``longest_hold_steps`` and ``unused_phases`` (see the module text).
    """
    same, longest, unused = [], [], []
    for acts, real, legal in zip(actions, filled, mask):
        acts = acts[real]  # (T', N)
        same.append(acts[1:] == acts[:-1])
        for agent in range(acts.shape[1]):
            column = acts[:, agent]
            cuts = np.flatnonzero(np.diff(column)) + 1
            runs = np.diff(np.concatenate([[0], cuts, [len(column)]]))
            longest.append(runs.max())
            unused.append(legal[0, agent].sum() - len(np.unique(column)))
    return {
        "hold_rate": float(np.concatenate(same).mean()),
        "longest_hold_steps": float(np.mean(longest)),
        "unused_phases": float(np.mean(unused)),
    }


def _text(key: str, value: float | str) -> str:
    return f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished QMIX run directories")
    parser.add_argument("--out", type=Path, help="write the rows here as CSV")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for run in args.runs:
        if not (run / "checkpoint.pt").is_file():
            raise SystemExit(f"no checkpoint.pt in {run}; pass a finished run directory")
    rows = [credit(run) for run in args.runs]
    for row in rows:
        print(", ".join(_text(k, v) for k, v in row.items()))
    if args.out is not None:
        rundir.write_csv(args.out, rows)


if __name__ == "__main__":
    main()
