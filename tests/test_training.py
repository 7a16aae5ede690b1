"""Training: per-episode checkpoints, resume after a kill, clear errors, evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ltos_traffic.errors import UserError
from ltos_traffic.experiments import rundir
from ltos_traffic.experiments.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from ltos_traffic.experiments.seeds import episode_seed
from ltos_traffic.experiments.training import EPISODES_CSV, evaluate, train

from fakes import RingEnv, make_learner, one_torch_thread

pytestmark = pytest.mark.usefixtures(one_torch_thread.__name__)


class Killed(Exception):
    """Stands in for SIGKILL in the middle of an episode."""


class DyingEnv(RingEnv):
    """A :class:`RingEnv` that raises after ``die_after`` steps in total."""

    def __init__(self, die_after: int) -> None:
        super().__init__()
        self.steps_left = die_after

    def step(self, actions: np.ndarray):  # type: ignore[no-untyped-def]
        self.steps_left -= 1
        if self.steps_left < 0:
            raise Killed
        return super().step(actions)


def _train_rows(out: Path) -> list[dict[str, str]]:
    return [r for r in rundir.read_csv(out / EPISODES_CSV) if r["phase"] == "train"]


def test_train_writes_checkpoint_and_episode_rows(tmp_path: Path) -> None:
    env = RingEnv()
    results = train(env, make_learner("ltos", env), out_dir=tmp_path, episodes=3, seed=1)
    assert len(results) == 3
    rows = _train_rows(tmp_path)
    assert [int(r["episode"]) for r in rows] == [0, 1, 2]
    for column in ("episode_return", "avg_travel_time_s", "q_loss", "epsilon", "wall_s"):
        assert column in rows[0]
    assert float(rows[0]["epsilon"]) == pytest.approx(0.4)
    assert float(rows[1]["epsilon"]) == pytest.approx(0.4 * 0.8)
    assert "hl_value" in rows[1]  # the high level learned after episode 2
    fresh = make_learner("ltos", env)
    assert load_checkpoint(tmp_path / CHECKPOINT, fresh, seed=1) == 3
    assert fresh.episode == 3 and len(fresh.buffer) == 3 * env.spec.episode_steps


def test_episode_seeds_follow_the_run_seed() -> None:
    assert episode_seed(2, 5) == 20_005
    assert len({episode_seed(s, k) for s in range(3) for k in range(100)}) == 300


def test_resume_after_a_kill_continues_with_nothing_lost(tmp_path: Path) -> None:
    reference = RingEnv()
    ref_ctrl = make_learner("dgn", reference, seed=4)
    train(reference, ref_ctrl, out_dir=tmp_path / "ref", episodes=5, seed=4)

    out = tmp_path / "run"
    env = DyingEnv(die_after=2 * 8 + 5)  # dies in the middle of episode 2
    with pytest.raises(Killed):
        train(env, make_learner("dgn", env, seed=4), out_dir=out, episodes=5, seed=4)
    assert [int(r["episode"]) for r in _train_rows(out)] == [0, 1]

    resumed = make_learner("dgn", RingEnv(), seed=4)
    results = train(RingEnv(), resumed, out_dir=out, episodes=5, seed=4, resume=True)
    assert len(results) == 3  # episodes 2, 3, 4
    rows, ref_rows = _train_rows(out), _train_rows(tmp_path / "ref")
    assert [int(r["episode"]) for r in rows] == [0, 1, 2, 3, 4]
    strip = ("wall_s",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in rows] == [
        {k: v for k, v in r.items() if k not in strip} for r in ref_rows
    ]
    for key, value in ref_ctrl.q_net.state_dict().items():
        assert torch.equal(resumed.q_net.state_dict()[key], value)
    # Resuming a finished run does nothing.
    assert train(RingEnv(), resumed, out_dir=out, episodes=5, seed=4, resume=True) == []


def test_resume_drops_rows_the_checkpoint_does_not_hold(tmp_path: Path) -> None:
    env = RingEnv()
    ctrl = make_learner("dqn", env)
    train(env, ctrl, out_dir=tmp_path, episodes=2, seed=0)
    # A kill between the two writes of episode 2 leaves a row without a checkpoint.
    rundir.append_csv_row(tmp_path / EPISODES_CSV, {"episode": 2, "phase": "train"})
    train(env, make_learner("dqn", env), out_dir=tmp_path, episodes=3, seed=0, resume=True)
    assert [int(r["episode"]) for r in _train_rows(tmp_path)] == [0, 1, 2]


def test_fresh_run_discards_an_old_checkpoint(tmp_path: Path) -> None:
    env = RingEnv()
    train(env, make_learner("dqn", env), out_dir=tmp_path, episodes=2, seed=0)
    train(env, make_learner("dqn", env), out_dir=tmp_path, episodes=1, seed=0)
    assert [int(r["episode"]) for r in _train_rows(tmp_path)] == [0]
    assert load_checkpoint(tmp_path / CHECKPOINT, make_learner("dqn", env)) == 1


def test_bad_checkpoints_are_one_line_user_errors(tmp_path: Path) -> None:
    env = RingEnv()
    ctrl = make_learner("dgn", env)
    path = tmp_path / CHECKPOINT
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(path, ctrl)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(path, ctrl)
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(UserError, match="not written by"):
        load_checkpoint(path, ctrl)
    save_checkpoint(path, ctrl, episodes_done=1, seed=0)
    with pytest.raises(UserError, match="holds controller 'dgn'"):
        load_checkpoint(path, make_learner("dqn", env))
    with pytest.raises(UserError, match="seed 0, not seed 9"):
        load_checkpoint(path, ctrl, seed=9)
    with pytest.raises(UserError, match="does not fit") as info:
        load_checkpoint(path, make_learner("dgn", env, hidden="16,16"))
    assert "\n" not in str(info.value)
    bigger = RingEnv(n_agents=7)
    with pytest.raises(UserError, match="does not fit"):
        load_checkpoint(path, make_learner("dgn", bigger))


def test_progress_bar_shows_return_and_travel_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = RingEnv()
    train(env, make_learner("dqn", env), out_dir=tmp_path, episodes=2, seed=0, progress=True)
    err = capsys.readouterr().err
    assert "2/2" in err and "ret=" in err and "tt=" in err


def test_evaluate_is_greedy_and_learns_nothing(tmp_path: Path) -> None:
    env = RingEnv()
    ctrl = make_learner("ltos", env)
    train(env, ctrl, out_dir=tmp_path, episodes=2, seed=0)
    size, steps = len(ctrl.buffer), ctrl.step_count
    a = evaluate(env, ctrl, seed=123)
    b = evaluate(env, ctrl, seed=123)
    assert a.metrics == b.metrics and a.losses == {}
    assert len(ctrl.buffer) == size and ctrl.step_count == steps


def test_train_command_checkpoints_and_resumes(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ltos_traffic.cli import cli

    args = ["train", "--net", "prisoner", "--controller", "dgn", "--out", str(tmp_path)]
    runner = CliRunner()
    first = runner.invoke(cli, [*args, "--episodes", "2", "--set", "sample_size=4"])
    assert first.exit_code == 0, first.output
    out = tmp_path / "prisoner_v1" / "dgn" / "seed0"
    assert (out / CHECKPOINT).is_file() and (out / "config.json").is_file()
    again = runner.invoke(cli, [*args, "--episodes", "3", "--resume", "--set", "sample_size=4"])
    assert again.exit_code == 0, again.output
    assert [int(r["episode"]) for r in _train_rows(out)] == [0, 1, 2]
    bad = runner.invoke(cli, [*args, "--episodes", "1", "--set", "no_such_key=1"])
    assert bad.exit_code != 0 and "unknown hyperparameter" in str(bad.exception)
