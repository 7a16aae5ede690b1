"""Fingerprints of short DGN and LToS trainings on grid2x2: speed-ups must not change the maths.

Each case trains 5 episodes of 400 s (40 decisions each: 4 TD update rounds, and for LToS one
high-level round after episode 4 and TD rounds with its new target after it) with seed 0 and
compares the final networks and losses with values recorded before the learner was optimised
(issue 16). On the recording machine (x86-64, torch 2.13 CPU, one thread) the run is bit-identical;
the tolerance only absorbs float rounding of another BLAS or CPU. A failure after a torch upgrade
with no change to the learner means: re-record; after a learner change: the maths changed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ltos_traffic.controllers.ltos import LToS
from ltos_traffic.experiments.experiment import open_run
from ltos_traffic.experiments.runner import run_episode
from ltos_traffic.experiments.training import train
from ltos_traffic.scenario import load_scenario

from fakes import RingEnv, make_learner, one_torch_thread

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)

# The LToS schedule of the recording: a round every 4 episodes, no trust region (the traffic
# defaults since 2026-12-04 are every 20 episodes and hl_max_shift=0.03).
OLD_SCHEDULE = ("hl_update_every_episodes=4", "hl_max_shift=0")

# (controller, --set overrides) -> ({network: sum of |values| of its state}, losses of episode 4
# and of episode 5), recorded on main at 9962247 (before the learner changes of issue 16).
RECORDED: dict[tuple[str, tuple[str, ...]], tuple[dict[str, float], dict[str, float], float]] = {
    ("dgn", ()): (
        {"q_net": 514.8490598440294, "q_target": 477.5311594491004},
        {"q_loss": 0.059455957263708115},
        0.04251431599259377,
    ),
    ("ltos", OLD_SCHEDULE): (
        {
            "q_net": 502.44213405617666,
            "q_target": 465.6098970498647,
            "phi": 658.548093805156,
            "phi_target": 657.9615705254538,
        },
        {"q_loss": 0.03768966719508171, "hl_value": -0.4077001318335533},
        0.031430153734982015,
    ),
    ("ltos", (*OLD_SCHEDULE, "q_decomposed=true")): (
        {
            "q_net": 757.1007359225223,
            "q_target": 715.4093075500987,
            "phi": 680.6282892604709,
            "phi_target": 668.2540217678711,
        },
        {"q_loss": 0.08493065727608544, "hl_value": -0.38206366300582884},
        0.07069511190056801,
    ),
}


def _abs_sum(module: torch.nn.Module) -> float:
    return sum(t.double().abs().sum().item() for t in module.state_dict().values()
               if t.is_floating_point())  # fmt: skip


@pytest.mark.parametrize(("name", "sets"), list(RECORDED), ids=lambda v: str(v))
def test_short_training_matches_the_recorded_fingerprint(
    name: str, sets: tuple[str, ...], tmp_path: Path
) -> None:
    scenario = load_scenario("grid2x2").with_timing(seconds=400)
    out_dir, env, controller = open_run(scenario, name, seed=0, out_root=tmp_path, overrides=sets)
    try:
        results = train(env, controller, out_dir=out_dir, episodes=5, seed=0)
    finally:
        env.close()
    sums, losses_4, q_loss_5 = RECORDED[(name, sets)]
    for net, expected in sums.items():
        assert _abs_sum(getattr(controller, net)) == pytest.approx(expected, rel=1e-6), net
    recorded = {key: results[3].losses[key] for key in losses_4}  # later keys are diagnostics
    assert recorded == pytest.approx(losses_4, rel=1e-6)
    if "hl_value" in losses_4:  # the trust region is off: the round is untouched
        assert "hl_shift_scale" not in results[3].losses
    assert results[4].losses["q_loss"] == pytest.approx(q_loss_5, rel=1e-6)


def _check_cache(ltos: LToS, rows: np.ndarray) -> None:
    batch = ltos.buffer.gather(rows)
    next_obs = torch.from_numpy(batch.next_obs)
    with torch.no_grad():
        cached = ltos._target_logits(next_obs, batch.rows)
        assert torch.equal(cached, ltos.phi_target.logits(next_obs))


def test_cached_target_logits_follow_phi_target_and_rewritten_rows() -> None:
    """The TD steps' cached target logits always equal a fresh forward, bit for bit."""
    env = RingEnv(n_agents=5, episode_steps=8)
    ltos = make_learner("ltos", env, buffer_capacity=12, hl_update_every_episodes=0)
    run_episode(env, ltos, explore=True, learn=True, seed=0)  # 8 rows, TD steps fill the cache
    assert (ltos._target_cache_ids[:8] >= 0).any()
    _check_cache(ltos, np.arange(6))
    with torch.no_grad():  # phi_target moves: every cached row is stale
        for p in ltos.phi_target.parameters():
            p.add_(0.3)
    _check_cache(ltos, np.arange(6))
    run_episode(env, ltos, explore=True, learn=True, seed=1)  # the ring overwrites rows 0-3
    _check_cache(ltos, np.arange(12))
