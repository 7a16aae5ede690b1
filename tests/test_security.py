"""Security: checkpoints never run code, SUMO's sockets, no unsafe loaders on user input.

The CLI side of the checkpoint check (one ``error:`` line, exit code 2, no code
run) is the ``checkpoint-pickle-payload`` row of ``tests/test_bad_input.py``.

SUMO 1.28's TraCI server listens on every interface (``0.0.0.0``) and has no
option to bind to loopback. The project's mitigation (``docs/reliability.md``):
libsumo, which opens no socket at all, is the backend of every command except
the GUI; with traci the listening socket lives only until our client connects
(SUMO accepts ``--num-clients 1`` connection and then closes it), and the
connection itself is loopback to loopback. The tests pin down each of these.
"""

from __future__ import annotations

import ast
import io
import os
import pickle
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from test_faults import child_pids, comm

from ltos_traffic.envs.traffic import TrafficEnv
from ltos_traffic.errors import UserError
from ltos_traffic.experiments.checkpoint import FORMAT, load_checkpoint
from ltos_traffic.scenario import load_scenario

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted((REPO / "ltos_traffic").rglob("*.py")) + sorted((REPO / "baselines").rglob("*.py"))


class _Payload:
    """Unpickling this calls ``os.system``: a checkpoint that runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def evil_checkpoint(path: Path, marker: Path) -> None:
    """A well-formed ltos-traffic checkpoint whose state also holds a :class:`_Payload`."""
    torch.save({"format": FORMAT, "controller": "dqn", "seed": 0, "episodes_done": 1,
                "state": {"hook": _Payload(marker)}}, path)  # fmt: skip


def _evil_checkpoints(tmp_path: Path) -> list[Path]:
    wrapped = tmp_path / "wrapped.pt"
    evil_checkpoint(wrapped, tmp_path / "pwned")
    raw = tmp_path / "raw.pt"  # a bare pickle stream (torch's legacy format)
    raw.write_bytes(pickle.dumps({"format": FORMAT, "state": _Payload(tmp_path / "pwned")}, 2))
    return [wrapped, raw]


class _AnyController:
    name = "dqn"

    def load_state_dict(self, state: Any) -> None:
        raise AssertionError("a refused checkpoint must never reach the controller")


def test_pickle_payload_in_a_checkpoint_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    for path in _evil_checkpoints(tmp_path):
        with pytest.raises(UserError, match=r"refused") as info:
            load_checkpoint(path, _AnyController())
        assert "\n" not in str(info.value)
    assert not (tmp_path / "pwned").exists()


def test_a_real_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    from ltos_traffic.controllers.base import make_controller
    from ltos_traffic.envs.factory import make_env
    from ltos_traffic.experiments.checkpoint import save_checkpoint

    scenario = load_scenario("prisoner")
    spec = make_env(scenario).spec
    ctl = make_controller("ltos", spec, 0, scenario_hparams=scenario.hparams)
    save_checkpoint(tmp_path / "c.pt", ctl, episodes_done=4, seed=0)
    payload = torch.load(tmp_path / "c.pt", weights_only=True)
    assert payload["format"] == FORMAT
    assert load_checkpoint(tmp_path / "c.pt", ctl, seed=0) == 4


# ----------------------------------------------------------- source scan

# Calls that execute or deserialise arbitrary objects. ``name`` matches a bare
# call (``eval(x)``), ``module.attr`` an attribute call on that module name.
FORBIDDEN = {
    "eval", "exec", "compile", "__import__", "pickle.load", "pickle.loads", "pickle.Unpickler",
    "marshal.load", "marshal.loads", "shelve.open", "yaml.load", "yaml.unsafe_load",
    "yaml.full_load", "dill.load", "dill.loads", "os.system", "os.popen", "jsonpickle.decode",
}  # fmt: skip


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


def _calls() -> list[tuple[str, int, ast.Call]]:
    out = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = str(path.relative_to(REPO))
        out += [(rel, n.lineno, n) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    return out


def test_no_eval_exec_or_unsafe_deserialiser_in_the_package() -> None:
    found = [f"{rel}:{line} {_call_name(c)}" for rel, line, c in _calls()
             if _call_name(c) in FORBIDDEN]  # fmt: skip
    assert not found, found


def test_every_torch_load_uses_weights_only_true() -> None:
    loads = [(rel, line, c) for rel, line, c in _calls() if _call_name(c) == "torch.load"]
    assert loads, "expected the checkpoint loader to call torch.load"
    for rel, line, call in loads:
        flags = {k.arg: k.value for k in call.keywords}
        value = flags.get("weights_only")
        assert isinstance(value, ast.Constant) and value.value is True, f"{rel}:{line}"


def test_no_subprocess_runs_through_a_shell() -> None:
    for rel, line, call in _calls():
        if _call_name(call).startswith("subprocess."):
            for kw in call.keywords:
                assert not (
                    kw.arg == "shell"
                    and not (isinstance(kw.value, ast.Constant) and kw.value.value is False)
                ), f"{rel}:{line}"


# ----------------------------------------------------------- sockets

_LISTEN, _ESTABLISHED = "0A", "01"


def _sockets(pid: int) -> list[tuple[str, str, str]]:
    """(local address, remote address, state) of every TCP socket ``pid`` holds, hex as in /proc."""
    inodes = set()
    for fd in (Path("/proc") / str(pid) / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for table in ("tcp", "tcp6"):
        for line in (Path("/proc") / str(pid) / "net" / table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                out.append((fields[1], fields[2], fields[3]))
    return out


def _host(address: str) -> str:
    return address.split(":")[0]


LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
WILDCARD = {"00000000", "00000000000000000000000000000000"}


def test_libsumo_opens_no_socket() -> None:
    env = TrafficEnv(load_scenario("grid2x2").with_timing(seconds=20))
    try:
        before = set(_sockets(os.getpid()))
        env.reset(0)
        during = set(_sockets(os.getpid()))
    finally:
        env.close()
    assert not [s for s in during - before if s[2] == _LISTEN]


def test_traci_listens_only_until_connected_and_talks_over_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import traci.main

    seen: list[list[tuple[str, str, str]]] = []
    real_init = traci.main.init

    def init(port: int, retries: int, host: str, label: str, process: Any, *args: Any,
             **kwargs: Any) -> Any:  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            listening = [s for s in _sockets(process.pid) if s[2] == _LISTEN]
            if listening:
                seen.append(listening)
                break
            time.sleep(0.005)
        seen.append([("host", host, "")])
        return real_init(port, retries, host, label, process, *args, **kwargs)

    monkeypatch.setattr(traci.main, "init", init)
    env = TrafficEnv(load_scenario("grid2x2").with_timing(seconds=20), backend="traci")
    try:
        env.reset(0)
        sumo = [p for p in child_pids(os.getpid()) if comm(p).startswith("sumo")]
        assert len(sumo) == 1
        after = _sockets(sumo[0])
    finally:
        env.close()
    listening, (client,) = seen[0], seen[1]
    assert client[1] == "localhost"  # the client connects to loopback
    # SUMO binds loopback or, as SUMO 1.28 does, every interface: only until we connect
    assert all(_host(s[0]) in LOOPBACK | WILDCARD for s in listening), listening
    assert not [s for s in after if s[2] == _LISTEN], after
    established = [s for s in after if s[2] == _ESTABLISHED]
    assert established and all(
        _host(local) in LOOPBACK and _host(remote) in LOOPBACK for local, remote, _ in established
    ), established


def test_checkpoint_bytes_are_never_unpickled_without_weights_only(tmp_path: Path) -> None:
    """Belt and braces: torch itself refuses the payload under ``weights_only=True``."""
    wrapped, raw = _evil_checkpoints(tmp_path)
    for path in (wrapped, raw):
        with pytest.raises(pickle.UnpicklingError):
            torch.load(io.BytesIO(path.read_bytes()), weights_only=True)
    assert not (tmp_path / "pwned").exists()
