"""Bad input through the real CLI: one ``error:`` line, exit code 2, nothing written is touched.

Every row of :data:`CASES` runs the console entry point ``ltos_traffic.cli.main``
in its own process (forked from one interpreter that imported the package once,
see :data:`FORKER`; one more test runs ``python -m ltos_traffic.cli`` from
scratch) with its own output root. Before the run the root holds finished results
(``episodes.csv``, ``summary.json``, ``config.json``, ``checkpoint.pt``) in the
very run directory the command would write; afterwards every file under the
root must be byte-identical and no file may have been added (no half-written
result, no stray temporary file). Three cases run at a time.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from ltos_traffic.net.files import sumo_binary

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    """One row of the table.

    Attributes:
        name: test id.
        args: CLI arguments; ``{d}`` is the case's input folder, ``{out}`` its output root.
        run_dir: run directory (relative to ``{out}``) seeded with finished results.
        expect: a fragment the error line must contain (case-insensitive).
    """

    name: str
    args: tuple[str, ...]
    run_dir: str
    expect: str


GRID = "grid2x2_v1/fixed_time/seed0"
PRIS_DQN = "prisoner_v1/dqn/seed0"
CASES = [
    Case("net-missing", ("run", "--net", "{d}/missing.net.xml", "--routes", "{d}/ok.rou.xml",
                         "--controller", "fixed_time"), "custom_missing/fixed_time/seed0",
         "not found"),
    Case("net-empty", ("run", "--net", "{d}/empty.net.xml", "--routes", "{d}/ok.rou.xml",
                       "--controller", "fixed_time"), "custom_empty/fixed_time/seed0", "empty"),
    Case("net-garbled", ("run", "--net", "{d}/garbled.net.xml", "--routes", "{d}/ok.rou.xml",
                         "--controller", "fixed_time"), "custom_garbled/fixed_time/seed0",
         "garbled"),
    Case("net-not-sumo", ("run", "--net", "{d}/html.net.xml", "--routes", "{d}/ok.rou.xml",
                          "--controller", "fixed_time"), "custom_html/fixed_time/seed0", "html"),
    Case("routes-unknown-edge", ("run", "--net", "{d}/tl.net.xml", "--routes",
                                 "{d}/unknown_edge.rou.xml", "--controller", "fixed_time"),
         "custom_tl/fixed_time/seed0", "nowhere"),
    Case("routes-garbled", ("run", "--net", "{d}/tl.net.xml", "--routes", "{d}/garbled.rou.xml",
                            "--controller", "fixed_time"), "custom_tl/fixed_time/seed0",
         "garbled.rou.xml"),
    Case("net-without-traffic-lights", ("run", "--net", "{d}/notl.net.xml", "--routes",
                                        "{d}/ok.rou.xml", "--controller", "fixed_time"),
         "custom_notl/fixed_time/seed0", "traffic light"),
    Case("unknown-controller", ("run", "--net", "grid2x2", "--controller", "nope"),
         "grid2x2_v1/nope/seed0", "unknown controller"),
    Case("unknown-net", ("run", "--net", "atlantis"), GRID, "unknown network"),
    Case("unknown-scenario", ("run", "--scenario", "atlantis_v9"), GRID, "unknown scenario"),
    Case("scenario-garbled-toml", ("run", "--scenario", "{d}/bad.toml"), GRID, "not valid toml"),
    Case("set-unknown-key", ("run", "--net", "grid2x2", "--controller", "fixed_time", "--set",
                             "colour=red"), GRID, "unknown hyperparameter"),
    Case("set-not-key-value", ("run", "--net", "grid2x2", "--controller", "fixed_time", "--set",
                               "green_s"), GRID, "key=value"),
    Case("set-wrong-type", ("run", "--net", "prisoner", "--controller", "dqn", "--set",
                            "lr=fast"), PRIS_DQN, "expects float"),
    Case("set-negative-duration", ("run", "--net", "grid2x2", "--controller", "fixed_time",
                                   "--set", "green_s=-30"), GRID, "green_s"),
    Case("set-negative-learning-rate", ("run", "--net", "prisoner", "--controller", "neurcomm",
                                        "--set", "lr=-1"), "prisoner_v1/neurcomm/seed0",
         "learning rate"),
    Case("set-unknown-attention", ("run", "--net", "prisoner", "--controller", "dgn", "--set",
                                   "attention=sparse"), "prisoner_v1/dgn/seed0", "attention"),
    Case("seconds-negative", ("run", "--net", "grid2x2", "--controller", "fixed_time",
                              "--seconds", "-5"), GRID, "--seconds"),
    Case("episodes-negative", ("run", "--net", "prisoner", "--controller", "dqn", "--episodes",
                               "-1"), PRIS_DQN, "--episodes"),
    Case("checkpoint-missing", ("run", "--net", "prisoner", "--controller", "dqn",
                                "--checkpoint", "{d}/none.pt"), PRIS_DQN, "does not exist"),
    Case("checkpoint-corrupt", ("run", "--net", "prisoner", "--controller", "dqn",
                                "--checkpoint", "{d}/corrupt.pt"), PRIS_DQN, "corrupt"),
    Case("checkpoint-truncated", ("run", "--net", "prisoner", "--controller", "dqn",
                                  "--checkpoint", "{d}/truncated.pt"), PRIS_DQN, "corrupt"),
    Case("checkpoint-foreign", ("run", "--net", "prisoner", "--controller", "dqn",
                                "--checkpoint", "{d}/foreign.pt"), PRIS_DQN,
         "not written by ltos-traffic"),
    Case("checkpoint-pickle-payload", ("run", "--net", "prisoner", "--controller", "dqn",
                                       "--checkpoint", "{d}/payload.pt"), PRIS_DQN, "refused"),
    Case("checkpoint-other-controller", ("run", "--net", "prisoner", "--controller", "dgn",
                                         "--checkpoint", "{d}/dqn_prisoner.pt"),
         "prisoner_v1/dgn/seed0", "'dqn'"),
    Case("checkpoint-shapes-do-not-fit", ("run", "--net", "prisoner", "--controller", "dqn",
                                          "--set", "hidden=8", "--checkpoint",
                                          "{d}/dqn_prisoner.pt"), PRIS_DQN, "does not fit"),
    Case("checkpoint-other-network", ("run", "--net", "jungle", "--controller", "dqn",
                                      "--checkpoint", "{d}/dqn_prisoner.pt"),
         "jungle_v1/dqn/seed0", "does not fit"),
    Case("train-resume-corrupt-checkpoint", ("train", "--net", "prisoner", "--controller",
                                             "dqn", "--episodes", "3", "--resume"), PRIS_DQN,
         "corrupt"),
    Case("train-classical-controller", ("train", "--net", "grid2x2", "--controller",
                                        "fixed_time", "--episodes", "1"), GRID,
         "does not learn"),
    Case("cityflow-roadnet-wrong-schema", ("import-cityflow", "--roadnet", "{d}/roadnet.json",
                                           "--flow", "{d}/flow_ok.json", "--name", "net",
                                           "--out", "{out}/imported"), "imported", "roads"),
    Case("cityflow-flow-wrong-schema", ("import-cityflow", "--roadnet", "{d}/roadnet_ok.json",
                                        "--flow", "{d}/flow.json", "--name", "net", "--out",
                                        "{out}/imported"), "imported", "flow.json"),
    Case("cityflow-not-json", ("import-cityflow", "--roadnet", "{d}/garbled.net.xml", "--flow",
                               "{d}/flow.json", "--name", "net", "--out", "{out}/imported"),
         "imported", "not a cityflow json"),
    Case("cityflow-dataset-wrong-schema", ("run", "--net", "shenzhen", "--controller",
                                           "fixed_time", "--data-dir", "{d}/cityflow"),
         "shenzhen_v1/fixed_time/seed0", "roadnet_1_33.json"),
    Case("out-is-a-file", ("run", "--net", "prisoner", "--controller", "fixed_time", "--out",
                           "{out}/results.csv"), "prisoner_v1/fixed_time/seed0",
         "cannot write to output directory"),
    Case("compare-empty-net-name", ("compare", "--net", "grid2x2,", "--controllers",
                                    "fixed_time", "--out", "{out}"), GRID, "separated by commas"),
    Case("compare-several-nets-with-routes", ("compare", "--net", "grid2x2,grid6x6", "--routes",
                                              "{d}/ok.rou.xml", "--controllers", "fixed_time",
                                              "--out", "{out}"), GRID, "one --net at a time"),
    Case("compare-unknown-net-in-list", ("compare", "--net", "grid2x2,nowhere", "--controllers",
                                         "fixed_time", "--out", "{out}"), GRID, "nowhere"),
]  # fmt: skip


# ------------------------------------------------------------------ inputs


def _netgenerate(path: Path, *, lights: bool) -> None:
    cmd = [sumo_binary("netgenerate"), "--grid", "--grid.number=2", "--grid.length=100",
           "-o", str(path)]  # fmt: skip
    if lights:
        cmd.append("--default-junction-type=traffic_light")
    subprocess.run(cmd, check=True, capture_output=True)


def _checkpoint_of_dqn_on_prisoner(path: Path) -> None:
    from ltos_traffic.controllers.base import make_controller
    from ltos_traffic.envs.factory import make_env
    from ltos_traffic.experiments.checkpoint import save_checkpoint
    from ltos_traffic.scenario import load_scenario

    scenario = load_scenario("prisoner")
    env = make_env(scenario)
    ctl = make_controller("dqn", env.spec, 0, scenario_hparams=scenario.hparams)
    save_checkpoint(path, ctl, episodes_done=1, seed=0)


ROADNET_OK = {
    "intersections": [
        {"id": "a", "point": {"x": 0, "y": 0}, "virtual": True, "roads": ["ab"],
         "roadLinks": [], "trafficLight": {"lightphases": []}},
        {"id": "b", "point": {"x": 300, "y": 0}, "virtual": True, "roads": ["ab"],
         "roadLinks": [], "trafficLight": {"lightphases": []}},
    ],
    "roads": [{"id": "ab", "startIntersection": "a", "endIntersection": "b",
               "points": [{"x": 0, "y": 0}, {"x": 300, "y": 0}],
               "lanes": [{"width": 3.2, "maxSpeed": 11.1}]}],
}  # fmt: skip


def _write_inputs(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    _netgenerate(d / "tl.net.xml", lights=True)
    _netgenerate(d / "notl.net.xml", lights=False)
    (d / "empty.net.xml").write_bytes(b"")
    (d / "garbled.net.xml").write_text('<net version="1.20"><edge id="a" from=')
    (d / "html.net.xml").write_text("<html><body>not a network</body></html>\n")
    (d / "ok.rou.xml").write_text(
        '<routes><vehicle id="v0" depart="0"><route edges="A0B0 B0B1"/></vehicle></routes>\n'
    )
    (d / "unknown_edge.rou.xml").write_text(
        '<routes><vehicle id="v0" depart="0"><route edges="A0B0 nowhere"/></vehicle></routes>\n'
    )
    (d / "garbled.rou.xml").write_text("<routes><vehicle id=")
    (d / "bad.toml").write_text('name = "x"\n[timing\nepisode_seconds = 10\n')
    (d / "corrupt.pt").write_bytes(os.urandom(4096))
    _checkpoint_of_dqn_on_prisoner(d / "dqn_prisoner.pt")
    whole = (d / "dqn_prisoner.pt").read_bytes()
    (d / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    from test_security import evil_checkpoint

    evil_checkpoint(d / "payload.pt", d / "pwned")
    buf = io.BytesIO()
    torch.save({"model": {"weight": torch.zeros(3, 3)}, "epoch": 7}, buf)
    (d / "foreign.pt").write_bytes(buf.getvalue())
    (d / "roadnet.json").write_text(json.dumps({"intersections": [], "roads": {"ab": 1}}))
    (d / "roadnet_ok.json").write_text(json.dumps(ROADNET_OK))
    (d / "flow.json").write_text(json.dumps([{"vehicle": {}, "route": "ab"}]))
    (d / "flow_ok.json").write_text(json.dumps([]))
    cityflow = d / "cityflow" / "shenzhen"
    cityflow.mkdir(parents=True)
    (cityflow / "roadnet_1_33.json").write_text(json.dumps({"roads": [], "intersection": []}))
    (cityflow / "flow_fuhua_real_1775.json").write_text("[]")


def _seed_results(out: Path, case: Case) -> None:
    """Finished results where the command would write, and a file at the output root."""
    run_dir = out / case.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "episodes.csv").write_text("episode,phase,episode_return\n0,train,-12.5\n")
    (run_dir / "summary.json").write_text('{"episode_return": -12.5}\n')
    (run_dir / "config.json").write_text('{"seed": 0}\n')
    (run_dir / "net.net.xml").write_text("<net/>\n")
    if case.name == "train-resume-corrupt-checkpoint":
        (run_dir / "checkpoint.pt").write_bytes(b"PK\x03\x04 broken zip")
    else:
        (run_dir / "checkpoint.pt").write_bytes(b"previous checkpoint bytes")
    (out / "results.csv").write_text("a,b\n1,2\n")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    before: dict[str, bytes]
    after: dict[str, bytes]


# A process that imports the CLI (and torch) once, then forks one child per case;
# each child redirects stdout/stderr to files, sets argv and runs the console
# entry point ``ltos_traffic.cli.main`` exactly as ``ltos-traffic`` does. An
# uncaught exception prints its traceback, as the interpreter would.
FORKER = r"""
import json, os, sys, traceback
import ltos_traffic.cli as cli
from ltos_traffic.controllers.base import controller_names
controller_names()
jobs, running, codes = json.load(sys.stdin), {}, {}
def reap():
    pid, status = os.wait()
    codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)
for k, job in enumerate(jobs):
    while len(running) >= 3:
        reap()
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.environ.update(job["env"])
            for fd, name in ((1, "stdout"), (2, "stderr")):
                os.dup2(os.open(job[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.argv = ["ltos-traffic", *job["args"]]
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    running[pid] = k
while running:
    reap()
print(json.dumps([codes[k] for k in range(len(jobs))]))
"""


def _run_cases(cases: list[Case], inputs: Path, root: Path) -> dict[str, Outcome]:
    jobs: list[dict[str, Any]] = []
    befores: list[dict[str, bytes]] = []
    for case in cases:
        out = root / case.name
        _seed_results(out, case)
        befores.append(_snapshot(out))
        args = [a.format(d=inputs, out=out) for a in case.args]
        if case.args[0] in ("run", "train") and "--out" not in case.args:
            args += ["--out", str(out)]
        logs = root / f"{case.name}.log"
        jobs.append({
            "args": args,
            "env": {"LTOS_DATA": str(inputs / "no-data-here")},
            "stdout": f"{logs}.out",
            "stderr": f"{logs}.err",
        })  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", FORKER],
        cwd=REPO,
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        case.name: Outcome(
            code,
            Path(job["stdout"]).read_text(),
            Path(job["stderr"]).read_text(),
            before,
            _snapshot(root / case.name),
        )
        for case, job, code, before in zip(cases, jobs, codes, befores)
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("inputs")
    _write_inputs(path)
    return path


@pytest.fixture(scope="module")
def outcomes(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    return _run_cases(CASES, inputs, tmp_path_factory.mktemp("outs"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_exit_2_and_loses_nothing(
    case: Case, outcomes: dict[str, Outcome]
) -> None:
    got = outcomes[case.name]
    assert "Traceback" not in got.stderr + got.stdout, got.stderr
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1, got.stderr
    assert lines[0].startswith("error: "), got.stderr
    assert case.expect.lower() in lines[0].lower(), lines[0]
    assert got.returncode == 2, got.stderr
    assert got.after == got.before, "files under the output root changed"


def test_the_pickle_payload_ran_no_code(outcomes: dict[str, Outcome], inputs: Path) -> None:
    assert outcomes["checkpoint-pickle-payload"].returncode == 2
    assert not (inputs / "pwned").exists()


def test_the_table_covers_every_command_that_takes_input() -> None:
    commands = {c.args[0] for c in CASES}
    assert {"run", "train", "import-cityflow"} <= commands


def test_a_fresh_interpreter_gives_the_same_one_line(inputs: Path, tmp_path: Path) -> None:
    """The table runs forked children; this runs ``python -m ltos_traffic.cli`` from scratch."""
    proc = subprocess.run(
        [sys.executable, "-m", "ltos_traffic.cli", "run", "--net", str(inputs / "notl.net.xml"),
         "--routes", str(inputs / "ok.rou.xml"), "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
