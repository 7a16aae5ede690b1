"""Faults with real processes: SUMO killed or failing mid-episode, training killed with SIGKILL.

Policy under test (``docs/reliability.md``): a SUMO failure ends the episode with
a one-line :class:`SimulationError` (CLI exit code 1), the simulator is closed
and can be started again; training stops and leaves the checkpoint of the last
finished episode untouched; ``train --resume`` continues from it and ends
where an uninterrupted run ends.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ltos_traffic.controllers.base import make_controller
from ltos_traffic.envs.traffic import TrafficEnv
from ltos_traffic.errors import SimulationError
from ltos_traffic.experiments import rundir
from ltos_traffic.experiments.checkpoint import CHECKPOINT
from ltos_traffic.experiments.training import EPISODES_CSV, train
from ltos_traffic.scenario import load_scenario
from ltos_traffic.sim import simulator

from fakes import one_torch_thread

REPO = Path(__file__).resolve().parent.parent
FAST_DQN = {"batch_size": "4", "sample_size": "8", "update_every_steps": "5"}


def child_pids(pid: int) -> list[int]:
    """Direct child processes of ``pid``, from ``/proc``."""
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")"
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry.name))
    return kids


def comm(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def _sumo_children(pid: int) -> list[int]:
    return [k for k in child_pids(pid) if comm(k).startswith("sumo")]


def _wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


# ------------------------------------------------------------ SUMO dies (traci)


def test_sumo_process_killed_mid_episode_is_one_clear_error_and_env_restarts() -> None:
    env = TrafficEnv(load_scenario("grid2x2").with_timing(seconds=120), backend="traci")
    try:
        env.reset(0)
        for _ in range(3):
            env.step(np.zeros(4, dtype=np.int64))
        (sumo_pid,) = _sumo_children(os.getpid())
        os.kill(sumo_pid, signal.SIGKILL)
        _wait_for(lambda: comm(sumo_pid) == "" or _state(sumo_pid) == "Z", 10, "sumo to die")
        with pytest.raises(SimulationError, match=r"SUMO died at t=30 s") as info:
            env.step(np.zeros(4, dtype=np.int64))
        assert "\n" not in str(info.value)
        assert not env.sim.running
        env.close()  # closing again is harmless
        step = env.reset(1)  # a fresh SUMO process: the environment is usable again
        while not step.done:
            step = env.step(np.zeros(4, dtype=np.int64))
        assert env.episode_metrics().departed > 0
    finally:
        env.close()
    assert not _sumo_children(os.getpid())


def _state(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def _simulating(tmp: Path) -> bool:
    """SUMO has finished trips (so TraCI is connected and the episode is under way)."""
    return any("<tripinfo " in p.read_text() for p in tmp.glob("ltos-sumo-*/tripinfo.xml"))


def test_cli_run_says_sumo_died_in_one_line_with_exit_1(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ltos_traffic.cli", "run", "--net", "grid2x2", "--controller",
         "fixed_time", "--backend", "traci", "--seconds", "3600", "--out", str(tmp_path)],
        cwd=REPO, env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for(lambda: _simulating(tmp), 60, "the episode to get under way")
        (sumo_pid,) = _sumo_children(proc.pid)
        os.kill(sumo_pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: SUMO died at t="), err
    run_dir = tmp_path / "grid2x2_v1" / "fixed_time" / "seed0"
    assert not (run_dir / "summary.json").exists()  # no result from a broken episode
    assert not (run_dir / "episodes.csv").exists()
    assert not list(run_dir.glob(".*.tmp"))


# ------------------------------------------------------- SUMO fails (libsumo)


class _Flaky:
    """``libsumo.simulationStep`` that raises SUMO's own exception on call ``fail_at``."""

    def __init__(self, real, fail_at: int) -> None:  # type: ignore[no-untyped-def]
        self.real, self.fail_at, self.calls = real, fail_at, 0

    def __call__(self, *args):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.fail_at:
            import libsumo

            raise libsumo.TraCIException("simulated libsumo failure: connection lost")
        return self.real(*args)


def test_libsumo_exception_mid_episode_closes_and_env_restarts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import libsumo

    env = TrafficEnv(load_scenario("grid2x2").with_timing(seconds=60))
    try:
        monkeypatch.setattr(libsumo, "simulationStep", _Flaky(libsumo.simulationStep, 4))
        env.reset(0)
        with pytest.raises(SimulationError, match=r"SUMO died.*simulated libsumo failure"):
            for _ in range(6):
                env.step(np.ones(4, dtype=np.int64))
        assert not env.sim.running and not simulator._ACTIVE
        monkeypatch.undo()
        step = env.reset(0)
        while not step.done:
            step = env.step(np.ones(4, dtype=np.int64))
        assert env.episode_metrics().sim_seconds == 60
    finally:
        env.close()


@pytest.mark.usefixtures(one_torch_thread.__name__)
def test_training_stops_with_checkpoint_intact_and_resume_matches_a_clean_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import libsumo

    scenario = load_scenario("grid2x2").with_timing(seconds=60)
    env = TrafficEnv(scenario)

    def learner():  # type: ignore[no-untyped-def]
        return make_controller("dqn", env.spec, 3, overrides=FAST_DQN)

    try:
        clean = learner()
        train(env, clean, out_dir=tmp_path / "clean", episodes=3, seed=3)
        out = tmp_path / "faulty"
        ctl = learner()
        train(env, ctl, out_dir=out, episodes=1, seed=3)
        kept = {name: (out / name).read_bytes() for name in (CHECKPOINT, EPISODES_CSV)}
        # SUMO fails in the middle of episode 1 (each 60-s episode has at most 12 steps)
        monkeypatch.setattr(libsumo, "simulationStep", _Flaky(libsumo.simulationStep, 7))
        with pytest.raises(SimulationError) as info:
            train(env, ctl, out_dir=out, episodes=3, seed=3, resume=True)
        message = str(info.value)
        assert "SUMO died" in message and "episode 1" in message and "--resume" in message
        assert {name: (out / name).read_bytes() for name in kept} == kept  # untouched
        monkeypatch.undo()
        train(env, ctl, out_dir=out, episodes=3, seed=3, resume=True)
    finally:
        env.close()
    rows = rundir.read_csv(out / EPISODES_CSV)
    assert [r["episode"] for r in rows] == ["0", "1", "2"]
    clean_rows = rundir.read_csv(tmp_path / "clean" / EPISODES_CSV)
    for row, ref in zip(rows, clean_rows):
        assert {k: v for k, v in row.items() if k != "wall_s"} == {
            k: v for k, v in ref.items() if k != "wall_s"
        }
    for a, b in zip(_tensors(ctl.state_dict()), _tensors(clean.state_dict())):
        assert torch.equal(a, b)


def _tensors(state: object) -> list[torch.Tensor]:
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, dict):
        return [t for k in sorted(state, key=str) for t in _tensors(state[k])]
    if isinstance(state, list | tuple):
        return [t for v in state for t in _tensors(v)]
    return [torch.tensor(float(state))] if isinstance(state, int | float) else []


# --------------------------------------------------- SIGKILL during training


def _train_cmd(out: Path, *extra: str) -> list[str]:
    sets = [x for k, v in FAST_DQN.items() for x in ("--set", f"{k}={v}")]
    return [sys.executable, "-m", "ltos_traffic.cli", "train", "--net", "grid2x2",
            "--controller", "dqn", "--seconds", "200", "--episodes", "3", "--seed", "5",
            "--workers", "1", "--out", str(out), *sets, *extra]  # fmt: skip


def _rows_if_complete(path: Path) -> list[list[str]]:
    """Raw CSV rows; asserts every row has exactly the header's number of fields."""
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert all(len(r) == len(rows[0]) for r in rows), rows
    assert path.read_text().endswith("\n")
    return rows[1:]


def test_sigkill_mid_episode_then_resume_continues_the_counter(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    reference = subprocess.Popen(
        _train_cmd(tmp_path / "ref"), cwd=REPO, env={**env, "TMPDIR": "/tmp"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    killed = subprocess.Popen(
        _train_cmd(tmp_path / "run"), cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    run_dir = tmp_path / "run" / "grid2x2_v1" / "dqn" / "seed5"
    csv_path = run_dir / EPISODES_CSV

    def in_second_episode() -> bool:
        # episode 0 is in episodes.csv and SUMO's output folder of episode 1 exists
        return len(_rows_if_complete(csv_path)) == 1 and any((tmp_path / "tmp").glob("ltos-sumo-*"))

    try:
        _wait_for(in_second_episode, 120, "episode 1 to start")
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
    assert killed.returncode == -signal.SIGKILL
    first = _rows_if_complete(csv_path)
    assert [r[0] for r in first] == ["0"]  # killed inside episode 1: one complete row
    assert any((tmp_path / "tmp").glob("ltos-sumo-*")), "the kill came after episode 1 ended"
    assert not list(run_dir.glob(".*.tmp"))  # atomic writes: no temporary file left behind
    before = csv_path.read_text().splitlines()[1]

    resumed = subprocess.run(
        _train_cmd(tmp_path / "run", "--resume"), cwd=REPO, env=env,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "episode 2:" in resumed.stdout
    assert reference.wait(timeout=180) == 0, reference.stderr.read() if reference.stderr else ""

    rows = _rows_if_complete(csv_path)
    assert [r[0] for r in rows] == ["0", "1", "2"]
    assert csv_path.read_text().splitlines()[1] == before  # episode 0 was not run again
    ref_rows = _rows_if_complete(tmp_path / "ref" / "grid2x2_v1" / "dqn" / "seed5" / EPISODES_CSV)
    header = csv_path.read_text().splitlines()[0].split(",")
    wall = header.index("wall_s")
    strip = lambda rows: [r[:wall] + r[wall + 1 :] for r in rows]  # noqa: E731
    assert strip(rows) == strip(ref_rows)  # optimiser, buffer, counters and RNG all resumed
