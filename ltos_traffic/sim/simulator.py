"""The SUMO boundary: the only module that imports libsumo or traci.

libsumo (in-process, fast) is the default; traci (a socket to a ``sumo`` or
``sumo-gui`` process) is used when the GUI is asked for or ``backend="traci"``.
libsumo holds one simulation per process: the first simulator started in a
process runs it in-process, and one started while another holds it runs libsumo
in a worker process of its own (``python -m ltos_traffic.sim.simulator``, driven
over two pipes, no socket), which it keeps until :meth:`SumoSimulator.close`.
The SUMO command is the same either way, and so are the results. Requests that
need no answer (phase settings, steps) are not waited for, so the worker
simulates while the caller computes its next decision.

Lane state is returned as numpy arrays in the fixed lane order given at
construction. With traci every call is a socket round trip, so lanes are read
through subscriptions, the phase settings before a step travel in one message,
and the counts are cut out of the step's raw answer with numpy
(:class:`_TraciPipeline`). With libsumo a call
costs well under a microsecond, while a subscription is evaluated inside SUMO at
every ``simulationStep`` call whether or not it is read (twice per decision when
a yellow splits the interval) and its results arrive as a dict of dicts; plain
per-lane getters are cheaper there (``benchmarks/README.md``), so libsumo uses them.
Travel times come from SUMO's own tripinfo output, parsed after each episode.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from ltos_traffic.errors import SimulationError, UserError
from ltos_traffic.net.files import sumo_binary
from ltos_traffic.types import LaneCounts

# traci constants (identical in libsumo): last step vehicle number / halting number
_VAR_VEHICLE_NUMBER = 0x10
_VAR_HALTING_NUMBER = 0x14
# TraCI protocol constants (traci.constants)
_CMD_SIMSTEP = 0x02
_CMD_SET_TL_VARIABLE = 0xC2
_TL_RED_YELLOW_GREEN_STATE = 0x20
_RESPONSE_SUBSCRIBE_LANE_VARIABLE = 0xE3
_TYPE_INTEGER = 0x09
_TYPE_STRING = 0x0C

_ACTIVE: list[SumoSimulator] = []  # libsumo: at most one open simulation per process
_TRACI_LABELS = iter(range(1, 1 << 30))


@dataclass(frozen=True)
class TripStats:
    """Episode figures from SUMO's tripinfo and statistics outputs.

    ``durations`` are arrival minus departure of arrived vehicles; ``unfinished``
    are the times so far of vehicles still running at the end (tripinfo's
    ``write-unfinished``); ``time_losses`` and ``unfinished_time_losses`` are
    tripinfo's ``timeLoss`` of the same vehicles (the time lost against driving
    at the desired speed, so far for unfinished ones). ``depart_delay_s`` is
    the total tripinfo ``departDelay`` of those inserted vehicles (time between
    their scheduled departure and their insertion); ``insert_wait_s`` the total
    time vehicles still waiting to be inserted at the end have waited (SUMO's
    ``departDelayWaiting`` times their number). All seconds.
    """

    durations: np.ndarray
    waiting_times: np.ndarray
    unfinished: np.ndarray
    time_losses: np.ndarray
    unfinished_time_losses: np.ndarray
    departed: int
    waiting_to_insert: int
    teleports: int
    depart_delay_s: float = 0.0
    insert_wait_s: float = 0.0


class SumoSimulator:
    """One SUMO simulation with a fixed set of tracked lanes and traffic lights.

    Args:
        net_file: SUMO ``.net.xml``.
        route_files: SUMO ``.rou.xml`` files.
        lanes: ids of the lanes whose counts :meth:`read` returns, in order.
        tls_ids: ids of the traffic lights :meth:`set_states` addresses, in order.
        begin_s: SUMO time at which the simulation begins, seconds.
        additional_files: SUMO additional files (signal programs, vehicle types, ...).
        backend: ``"libsumo"`` (default) or ``"traci"``.
        gui: run ``sumo-gui`` (implies traci).
        sumo_args: extra SUMO options.
        gui_args: extra options for ``sumo-gui`` only (window size, delay, ...).
    """

    def __init__(
        self,
        net_file: Path,
        route_files: Sequence[Path],
        *,
        lanes: Sequence[str],
        tls_ids: Sequence[str],
        begin_s: float = 0.0,
        additional_files: Sequence[Path] = (),
        backend: str = "libsumo",
        gui: bool = False,
        sumo_args: Sequence[str] = (),
        gui_args: Sequence[str] = (),
    ) -> None:
        if backend not in ("libsumo", "traci"):
            raise UserError(f"unknown SUMO backend {backend!r}; use 'libsumo' or 'traci'")
        self.net_file = Path(net_file)
        self.route_files = tuple(Path(r) for r in route_files)
        self.lanes = list(lanes)
        self.tls_ids = list(tls_ids)
        self.begin_s = float(begin_s)
        self.additional_files = tuple(Path(a) for a in additional_files)
        self.gui = gui
        self.backend = "traci" if gui else backend
        self.sumo_args = list(sumo_args)
        self.gui_args = list(gui_args)
        self._api: Any = None
        self._worker: _Worker | None = None  # libsumo in a child process, once needed
        self._pipeline: _TraciPipeline | None = None  # traci: batched commands, raw reads
        self._label: str | None = None
        self._workdir: Path | None = None
        self._lane_index = {lane: k for k, lane in enumerate(self.lanes)}
        self.time_s = 0.0

    # ----------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        """``True`` between :meth:`start` and :meth:`finish`/:meth:`close`."""
        return self._api is not None

    def start(self, seed: int) -> None:
        """Start a new simulation seeded with ``seed`` (ending any running one)."""
        self._end()
        self._workdir = Path(tempfile.mkdtemp(prefix="ltos-sumo-"))
        cmd = [
            sumo_binary("sumo-gui" if self.gui else "sumo"),
            "-n", str(self.net_file),
            "-r", ",".join(str(r) for r in self.route_files),
            "--seed", str(int(seed)),
            "--begin", repr(self.begin_s),
            "--no-step-log", "true",
            "--no-warnings", "true",
            "--duration-log.disable", "true",
            "--tripinfo-output", str(self._workdir / "tripinfo.xml"),
            "--tripinfo-output.write-unfinished", "true",
            "--statistic-output", str(self._workdir / "statistics.xml"),
            *self.sumo_args,
        ]  # fmt: skip
        if self.additional_files:
            cmd += ["-a", ",".join(str(a) for a in self.additional_files)]
        if self.gui:
            cmd += self.gui_args
        self._launch(cmd)
        self.time_s = self.begin_s

    def _launch(self, cmd: list[str]) -> None:
        """Start SUMO with ``cmd`` in-process, in this simulator's worker or over traci."""
        if self.backend == "libsumo" and (self._worker is not None or _ACTIVE):
            try:  # another simulator holds this process's libsumo
                self._worker = self._worker or _Worker()
                self._worker.call("start", cmd, self.lanes, self.tls_ids)
            except SimulationError:
                self._cleanup_dir()
                raise
            except OSError as exc:
                self._stop_worker()
                self._cleanup_dir()
                raise SimulationError(f"SUMO failed to start: {_one_line(exc)}") from exc
            self._api = self._worker
            return
        try:
            if self.backend == "libsumo":
                import libsumo

                libsumo.start(cmd)
                self._api = libsumo
                _ACTIVE.append(self)
            else:
                import traci

                self._label = f"ltos{next(_TRACI_LABELS)}"
                traci.start(cmd, label=self._label, numRetries=50)
                self._api = traci.getConnection(self._label)
        except Exception as exc:
            self._api = None
            self._cleanup_dir()
            raise SimulationError(f"SUMO failed to start: {_one_line(exc)}") from exc
        if self.backend == "libsumo":  # read() uses per-lane getters: check the ids once
            missing = set(self.lanes) - set(self._api.lane.getIDList())
            if missing:
                self._end()
                raise SimulationError(f"SUMO has no lane {sorted(missing)[0]!r}")
            return
        try:
            for lane in self.lanes:
                self._api.lane.subscribe(lane, [_VAR_VEHICLE_NUMBER, _VAR_HALTING_NUMBER])
        except Exception as exc:
            self.close()
            raise SimulationError(f"SUMO rejected a lane subscription: {_one_line(exc)}") from exc
        self._pipeline = _TraciPipeline(self._api, self._lane_index)

    def set_states(self, indices: Sequence[int], states: Sequence[str]) -> None:
        """Set the red/yellow/green state string of the given traffic lights."""
        api = self._require()
        if api is self._worker:
            self._remote("set_states", list(indices), list(states))
            return
        try:
            if self._pipeline is not None:  # sent in one message before the next step
                for i, state in zip(indices, states):
                    self._pipeline.set_state(self.tls_ids[i], state)
                return
            for i, state in zip(indices, states):
                api.trafficlight.setRedYellowGreenState(self.tls_ids[i], state)
        except Exception as exc:
            self._fail(exc)

    def advance_to(self, time_s: float) -> None:
        """Simulate until ``time_s`` (one call, however many 1-s steps)."""
        api = self._require()
        if api is self._worker:
            self._remote("advance_to", float(time_s))
            self.time_s = float(time_s)
            return
        try:
            if self._pipeline is not None:
                self._pipeline.step(float(time_s))
            else:
                api.simulationStep(float(time_s))
        except Exception as exc:
            self._fail(exc)
        self.time_s = float(time_s)

    def read(self) -> LaneCounts:
        """Vehicles and halting vehicles on every tracked lane (getters or subscriptions)."""
        api = self._require()
        n = len(self.lanes)
        if api is self._worker:
            counts = np.frombuffer(self._remote("read", answer=True), np.float32).copy()
            return LaneCounts(counts[:n], counts[n:])
        if self.backend == "libsumo":
            try:
                vehicles = np.fromiter(
                    map(api.lane.getLastStepVehicleNumber, self.lanes), np.float32, n
                )
                halting = np.fromiter(
                    map(api.lane.getLastStepHaltingNumber, self.lanes), np.float32, n
                )
            except Exception as exc:
                self._fail(exc)
            return LaneCounts(vehicles, halting)
        piped = self._pipeline.counts() if self._pipeline is not None else None
        if piped is not None:
            return LaneCounts(piped[0], piped[1])
        try:  # before the first step: the values traci kept from subscribing
            results = api.lane.getAllSubscriptionResults()
        except Exception as exc:
            self._fail(exc)
        vehicles = np.zeros(n, dtype=np.float32)
        halting = np.zeros(n, dtype=np.float32)
        index = self._lane_index
        for lane, values in results.items():
            k = index.get(lane)
            if k is not None:
                vehicles[k] = values[_VAR_VEHICLE_NUMBER]
                halting[k] = values[_VAR_HALTING_NUMBER]
        return LaneCounts(vehicles, halting)

    def finish(self) -> TripStats:
        """End the simulation and return its trip statistics."""
        self._require()
        workdir = self._workdir
        self._end(keep_outputs=True)
        assert workdir is not None
        try:
            return parse_outputs(workdir / "tripinfo.xml", workdir / "statistics.xml")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def close(self, *, keep_outputs: bool = False) -> None:
        """Close the simulation and its worker process, if any; safe to call any number of times."""
        self._end(keep_outputs=keep_outputs)
        self._stop_worker()

    def _end(self, *, keep_outputs: bool = False) -> None:
        """End the running simulation, if any (SUMO writes its outputs); keep the worker."""
        api, self._api = self._api, None
        self._pipeline = None
        if api is not None:
            with contextlib.suppress(Exception):
                api.close()
            if self in _ACTIVE:
                _ACTIVE.remove(self)
        if not keep_outputs:
            self._cleanup_dir()

    def __enter__(self) -> SumoSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # ----------------------------------------------------------- helpers

    def screenshot(self, path: Path, view: str = "View #0") -> None:
        """Ask ``sumo-gui`` to save the view to ``path``; SUMO writes it at the next step."""
        if not self.gui:
            raise UserError("screenshots need the GUI (gui=True)")
        api = self._require()
        try:
            api.gui.screenshot(view, str(Path(path).resolve()))
        except Exception as exc:
            self._fail(exc)

    def set_phase_names(self, indices: Sequence[int], names: Sequence[str]) -> None:
        """Name the current phase of the given lights (``sumo-gui`` can draw the names)."""
        api = self._require()
        try:
            for i, name in zip(indices, names):
                api.trafficlight.setPhaseName(self.tls_ids[i], name)
        except Exception as exc:
            self._fail(exc)

    def _require(self) -> Any:
        if self._api is None:
            raise SimulationError("SUMO is not running: call start(seed) first")
        return self._api

    def _fail(self, exc: BaseException) -> Any:
        self._end()
        raise SimulationError(f"SUMO died at t={self.time_s:.0f} s: {_one_line(exc)}") from exc

    def _remote(self, *request: Any, answer: bool = False) -> bytes:
        """Send a request to the worker (and wait for its answer); failures end the episode."""
        assert self._worker is not None
        try:
            return self._worker.call(*request) if answer else self._worker.post(*request)
        except SimulationError:  # SUMO failed in the worker, which closed it there
            self._end()
            raise
        except (OSError, EOFError) as exc:  # the worker process is gone
            self._stop_worker()
            return self._fail(RuntimeError(f"its worker process exited ({_one_line(exc)})"))

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    def _cleanup_dir(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


class _TraciPipeline:
    """A traci connection with fewer round trips and no per-value parsing in Python.

    Phase settings are queued and go to SUMO together in one TraCI message just
    before the next step (the protocol allows several commands per message, and
    traci's ``Connection._sendExact`` checks one status per queued command; SUMO
    drops the answers of commands that share a message with the step). The lane
    counts are cut out of the step's raw answer with numpy: the subscription
    results have the same layout at every step (same lanes, integer values), so
    the value offsets are found once by walking the blocks, and again whenever
    the answer's size changes. The answer of a step that only ends a yellow is
    never parsed. Uses traci's framing internals (``_string``, ``_queue``,
    ``_sendExact``, as ``Connection._sendCmd`` does), pinned with the SUMO wheels.
    """

    def __init__(self, connection: Any, lane_index: dict[str, int]) -> None:
        self._conn = connection
        self._lane_index = lane_index
        self._answer = np.zeros(0, dtype=np.uint8)  # the last step's subscription results
        self._size = -1  # size of the answer the offsets were found in
        self._offsets = np.zeros((2, len(lane_index), 1), dtype=np.int64)

    def set_state(self, tls_id: str, state: str) -> None:
        """Queue ``trafficlight.setRedYellowGreenState``."""
        obj, value = tls_id.encode(), state.encode()
        body = (
            struct.pack("!Bi", _TL_RED_YELLOW_GREEN_STATE, len(obj)) + obj
            + struct.pack("!Bi", _TYPE_STRING, len(value)) + value
        )  # fmt: skip
        self._queue(_CMD_SET_TL_VARIABLE, body)

    def step(self, time_s: float) -> None:
        """Send the queued commands, then a step to ``time_s``; keep the step's answer."""
        with self._conn._lock:
            if self._conn._queue:
                self._conn._sendExact()
        self._queue(_CMD_SIMSTEP, struct.pack("!d", time_s))
        with self._conn._lock:
            result = self._conn._sendExact()
        self._answer = np.frombuffer(result._content, np.uint8)[result._pos :]

    def counts(self) -> np.ndarray | None:
        """``(2, L)`` float32 vehicles and halting vehicles per lane; ``None`` before a step."""
        if self._answer.size == 0:
            return None
        same_layout = self._answer.size == self._size
        if not (same_layout and (self._answer[self._offsets - 1] == _TYPE_INTEGER).all()):
            self._find_offsets()
        raw = self._answer[self._offsets + np.arange(4)]  # (2, L, 4) big-endian int32 bytes
        return raw.view(">i4")[..., 0].astype(np.float32)

    def _queue(self, command: int, body: bytes) -> None:
        length = len(body) + 2
        if length <= 255:
            head = struct.pack("!BB", length, command)
        else:
            head = struct.pack("!BiB", 0, length + 4, command)
        with self._conn._lock:
            self._conn._queue.append(command)
            self._conn._string += head + body

    def _find_offsets(self) -> None:
        """Walk the subscription blocks of the answer once, recording each value's offset."""
        data = self._answer.tobytes()
        offsets = np.full((2, len(self._lane_index), 1), -1, dtype=np.int64)
        (blocks,) = struct.unpack_from("!i", data, 0)
        pos = 4
        for _ in range(blocks):
            pos += 1 if data[pos] else 5  # block length: one byte, or 0 and an int
            (length,) = struct.unpack_from("!i", data, pos + 1)
            if data[pos] != _RESPONSE_SUBSCRIBE_LANE_VARIABLE:
                raise SimulationError(f"unexpected TraCI subscription answer {data[pos]:#x}")
            lane = self._lane_index.get(data[pos + 5 : pos + 5 + length].decode())
            pos += 5 + length
            n_vars = data[pos]
            pos += 1
            for _ in range(n_vars):
                var, status, kind = data[pos], data[pos + 1], data[pos + 2]
                if status or kind != _TYPE_INTEGER:
                    raise SimulationError(f"TraCI lane value {var:#x} is not an integer")
                if lane is not None and var in (_VAR_VEHICLE_NUMBER, _VAR_HALTING_NUMBER):
                    offsets[int(var == _VAR_HALTING_NUMBER), lane, 0] = pos + 3
                pos += 7
        if (offsets < 0).any():
            raise SimulationError("SUMO's answer lacks a subscribed lane value")
        self._offsets, self._size = offsets, len(data)


class _Worker:
    """libsumo in a child process, driven over two pipes by a :class:`SumoSimulator`.

    Requests are JSON lists ``[operation, *arguments]``. ``start``, ``read`` and
    ``close`` are answered (``K`` + payload, or ``E`` + the error message);
    ``set_states`` and ``advance_to`` are not: the error of a failed one is the
    answer to the next answered request.
    """

    def __init__(self) -> None:
        child_in, to_child = os.pipe()  # requests: we write, the child reads
        from_child, child_out = os.pipe()  # answers: the child writes, we read
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "ltos_traffic.sim.simulator", str(child_in), str(child_out)],
                pass_fds=(child_in, child_out),
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": path},
            )
        finally:
            os.close(child_in)
            os.close(child_out)
        self._requests = Connection(to_child, readable=False)
        self._answers = Connection(from_child, writable=False)

    def post(self, *request: Any) -> bytes:
        """Send a request without waiting."""
        self._requests.send_bytes(json.dumps(request).encode())
        return b""

    def call(self, *request: Any) -> bytes:
        """Send a request and return its answer's payload.

        Raises:
            SimulationError: SUMO failed in the worker (this request or an earlier one).
            EOFError, OSError: the worker process is gone.
        """
        self.post(*request)
        answer = self._answers.recv_bytes()
        if answer[:1] != b"K":
            raise SimulationError(answer[1:].decode())
        return answer[1:]

    def close(self) -> None:
        """End the worker's simulation (SUMO writes its outputs)."""
        self.call("close")

    def stop(self) -> None:
        """End the worker process."""
        with contextlib.suppress(OSError):
            self.post("exit")
        self._requests.close()
        self._answers.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _serve(requests: Connection, answers: Connection) -> None:
    """The worker's loop: requests of one parent :class:`SumoSimulator` until ``exit``."""
    sim = SumoSimulator(Path(), (), lanes=(), tls_ids=())
    failed = ""  # the error of a request that was not answered
    while True:
        try:
            operation, *args = json.loads(requests.recv_bytes())
        except EOFError:  # the parent is gone
            break
        if operation == "exit":
            break
        try:
            if operation == "start":
                failed = ""
                cmd, lanes, tls_ids = args
                sim = SumoSimulator(Path(), (), lanes=lanes, tls_ids=tls_ids)
                sim._launch(cmd)
                answers.send_bytes(b"K")
            elif operation == "close":
                failed = ""
                sim.close()
                answers.send_bytes(b"K")
            elif failed:
                if operation == "read":
                    answers.send_bytes(b"E" + failed.encode())
            elif operation == "set_states":
                sim.set_states(*args)
            elif operation == "advance_to":
                sim.advance_to(*args)
            elif operation == "read":
                answers.send_bytes(b"K" + np.concatenate(sim.read()).tobytes())
            else:
                raise SimulationError(f"unknown worker request {operation!r}")
        except SimulationError as exc:
            if operation in ("start", "read"):
                answers.send_bytes(b"E" + str(exc).encode())
            else:
                failed = str(exc)
    sim.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def parse_outputs(tripinfo: Path, statistics: Path) -> TripStats:
    """Parse SUMO's tripinfo and statistics files."""
    durations: list[float] = []
    waits: list[float] = []
    unfinished: list[float] = []
    losses: list[float] = []
    unfinished_losses: list[float] = []
    depart_delay = insert_wait = 0.0
    if tripinfo.is_file():
        for _, el in ET.iterparse(tripinfo):
            if el.tag != "tripinfo":
                continue
            duration = float(el.get("duration", "nan"))
            arrival = float(el.get("arrival", "-1"))
            loss = float(el.get("timeLoss", "nan"))
            delay = float(el.get("departDelay", "0"))
            if arrival >= 0:
                depart_delay += delay
                durations.append(duration)
                waits.append(float(el.get("waitingTime", "0")))
                losses.append(loss)
            elif math.isfinite(duration) and float(el.get("depart", "-1")) >= 0:
                depart_delay += delay
                unfinished.append(duration)
                unfinished_losses.append(loss)
            el.clear()
    departed = waiting = teleports = 0
    if statistics.is_file():
        root = ET.parse(statistics).getroot()
        veh = root.find("vehicles")
        if veh is not None:
            departed = int(veh.get("inserted", "0"))
            waiting = int(veh.get("waiting", "0"))
        trips = root.find("vehicleTripStatistics")
        if trips is not None:  # mean wait of the vehicles still waiting to be inserted
            insert_wait = waiting * float(trips.get("departDelayWaiting", "0"))
        tel = root.find("teleports")
        if tel is not None:
            teleports = int(tel.get("total", "0"))
    return TripStats(
        durations=np.asarray(durations, dtype=np.float64),
        waiting_times=np.asarray(waits, dtype=np.float64),
        unfinished=np.asarray(unfinished, dtype=np.float64),
        time_losses=np.asarray(losses, dtype=np.float64),
        unfinished_time_losses=np.asarray(unfinished_losses, dtype=np.float64),
        departed=departed,
        waiting_to_insert=waiting,
        teleports=teleports,
        depart_delay_s=depart_delay,
        insert_wait_s=insert_wait,
    )


# a worker started by _Worker: python -m ltos_traffic.sim.simulator IN OUT
if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _serve(
        Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
    )
