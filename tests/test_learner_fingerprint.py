"""Fingerprints of short DGN and LToS trainings on grid2x2: speed-ups must not change the maths.

Each case trains 5 episodes of 400 s (40 decisions each: 4 TD update rounds, and for LToS one
high-level round after episode 4 and TD rounds with its new target after it) with seed 0 and
compares the final networks and losses with recorded values. On the recording machine (x86-64,
torch 2.13 CPU, one thread) the run is bit-identical; the tolerance only absorbs float rounding
of another BLAS or CPU. A failure after a torch upgrade with no change to the learner means:
re-record; after a learner change: the maths changed.

Two recordings. With the relation blocks attending over gathered slots (``attention=gathered``,
the only evaluation before 2026-12-05) the run still gives the values recorded before the
learner was optimised (issue 16): every other speed-up (flat optimiser, cached per-row inputs,
received weights without the dense matrix, one sort) keeps every bit.
The default dense evaluation computes the same attention with other float sums
(tests/test_relation.py bounds the difference per call); its training has its own recording.
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

Fingerprint = tuple[dict[str, float], dict[str, float], float]

# (controller, --set overrides) -> ({network: sum of |values| of its state}, losses of episode 4
# and of episode 5), recorded on main at 9962247 (before the learner changes of issue 16).
GATHERED: dict[tuple[str, tuple[str, ...]], Fingerprint] = {
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

# The same runs with the default dense attention, recorded on main on 2026-12-05 (issue 16).
DENSE: dict[tuple[str, tuple[str, ...]], Fingerprint] = {
    ("dgn", ()): (
        {"q_net": 514.849051758607, "q_target": 477.5311540164803},
        {"q_loss": 0.059455953006233485},
        0.042514318600296974,
    ),
    ("ltos", OLD_SCHEDULE): (
        {
            "q_net": 502.4420186214611,
            "q_target": 465.60988423055005,
            "phi": 658.5154701456395,
            "phi_target": 657.9590235637843,
        },
        {"q_loss": 0.03768966666289738, "hl_value": -0.4077001422643661},
        0.03143006656318903,
    ),
    ("ltos", (*OLD_SCHEDULE, "q_decomposed=true")): (
        {
            "q_net": 757.1006939458166,
            "q_target": 715.40930939189,
            "phi": 680.8469774439322,
            "phi_target": 668.3936438170056,
        },
        {"q_loss": 0.0849306583404541, "hl_value": -0.3820637412369251},
        0.07069511264562607,
    ),
}


def _abs_sum(module: torch.nn.Module) -> float:
    return sum(t.double().abs().sum().item() for t in module.state_dict().values()
               if t.is_floating_point())  # fmt: skip


@pytest.mark.parametrize("attention", ["gathered", "dense"])
@pytest.mark.parametrize(("name", "sets"), list(GATHERED), ids=lambda v: str(v))
def test_short_training_matches_the_recorded_fingerprint(
    name: str,
    sets: tuple[str, ...],
    attention: str,
    tmp_path: Path,
) -> None:
    recorded = GATHERED if attention == "gathered" else DENSE
    overrides = (*sets, f"attention={attention}")
    scenario = load_scenario("grid2x2").with_timing(seconds=400)
    out_dir, env, controller = open_run(
        scenario, name, seed=0, out_root=tmp_path, overrides=overrides
    )
    try:
        results = train(env, controller, out_dir=out_dir, episodes=5, seed=0)
    finally:
        env.close()
    sums, losses_4, q_loss_5 = recorded[(name, sets)]
    for net, expected in sums.items():
        assert _abs_sum(getattr(controller, net)) == pytest.approx(expected, rel=1e-6), net
    seen = {key: results[3].losses[key] for key in losses_4}  # later keys are diagnostics
    assert seen == pytest.approx(losses_4, rel=1e-6)
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
    assert (ltos._target_cache.ids[:8] >= 0).any()
    _check_cache(ltos, np.arange(6))
    with torch.no_grad():  # phi_target moves: every cached row is stale
        for p in ltos.phi_target.parameters():
            p.add_(0.3)
    _check_cache(ltos, np.arange(6))
    run_episode(env, ltos, explore=True, learn=True, seed=1)  # the ring overwrites rows 0-3
    _check_cache(ltos, np.arange(12))
