"""Watch a controller drive ``sumo-gui``; optionally save a screenshot and exit.

The environment is the usual :class:`~ltos_traffic.envs.traffic.TrafficEnv`
with ``gui=True`` (SUMO over traci). The controller acts greedily, as in an
evaluation episode. Every signal shows its current green phase by name
("WE-through", ...) next to the junction: the simulator names the phase and a
small view-settings file tells ``sumo-gui`` to draw phase names; the stop-line
colours show the red/yellow/green state as usual.

Screenshots need a display; on a headless machine run under Xvfb, e.g.
``xvfb-run -a -s "-screen 0 1280x900x24" ltos-traffic gui ... --screenshot shot.png``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ltos_traffic.envs.traffic import TrafficEnv
from ltos_traffic.errors import UserError
from ltos_traffic.experiments.checkpoint import load_checkpoint
from ltos_traffic.experiments.experiment import make_run
from ltos_traffic.experiments.runner import reset
from ltos_traffic.experiments.seeds import eval_seed
from ltos_traffic.scenario import Scenario
from ltos_traffic.sim.topology import N_PHASES

# White background, phase names drawn in large dark-blue letters on every signal.
VIEW_SETTINGS = """<viewsettings>
    <scheme name="ltos-traffic">
        <background backgroundColor="white" showGrid="0"/>
        <junctions tlsPhaseName_show="1" tlsPhaseName_size="45" tlsPhaseName_color="0,0,160"
                   tlsPhaseName_bgColor="255,255,200,200" tlsPhaseName_constantSize="1"/>
    </scheme>
</viewsettings>
"""

PNG_END = b"IEND\xaeB`\x82"  # the last chunk of a complete PNG file
SCREENSHOT_WAIT_S = 10.0  # wall time to wait for sumo-gui to write a screenshot


@dataclass(frozen=True)
class GuiResult:
    """What a GUI session did.

    Attributes:
        sim_time_s: simulated seconds driven.
        decisions: decision steps taken.
        mean_queue: mean halting vehicles per intersection over those steps.
        screenshot: the PNG written, if one was asked for.
    """

    sim_time_s: float
    decisions: int
    mean_queue: float
    screenshot: Path | None


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def watch(
    scenario: Scenario,
    controller_name: str,
    *,
    checkpoint: str | Path | None = None,
    seed: int = 0,
    seconds: float | None = None,
    screenshot: str | Path | None = None,
    delay_ms: int = 100,
    window: tuple[int, int] = (1280, 860),
    overrides: Sequence[str] = (),
    data_dir: str | None = None,
) -> GuiResult:
    """Open ``sumo-gui`` and let ``controller_name`` drive it.

    Args:
        scenario: a traffic scenario.
        controller_name: a registered controller.
        checkpoint: ``checkpoint.pt`` of a trained run to load (learning controllers).
        seed: run seed; SUMO uses the run's evaluation seed, so the GUI shows the
            episode ``ltos-traffic run`` evaluates.
        seconds: stop after this many simulated seconds (default: the whole episode).
        screenshot: save the view to this PNG once ``seconds`` are driven, then exit.
        delay_ms: ``sumo-gui`` delay per simulated second (0 with ``screenshot``).
        window: ``sumo-gui`` window size in pixels.
        overrides: ``KEY=VALUE`` controller hyperparameters.
        data_dir: CityFlow data directory (Shenzhen).

    Raises:
        UserError: not a traffic scenario, no display, bad checkpoint or options.
    """
    if scenario.kind != "traffic":
        raise UserError(f"scenario {scenario.name} is not a traffic scenario; the GUI needs SUMO")
    if not _has_display():
        raise UserError(
            "no display for sumo-gui (DISPLAY is not set); on a headless machine run "
            "under xvfb-run -a -s '-screen 0 1280x900x24' ltos-traffic gui ..."
        )
    if seconds is not None and seconds <= 0:
        raise UserError(f"--seconds must be > 0, got {seconds}")
    shot = Path(screenshot).resolve() if screenshot is not None else None
    if shot is not None:
        if shot.suffix.lower() != ".png":
            raise UserError(f"--screenshot must end in .png, got {shot.name}")
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.unlink(missing_ok=True)
        delay_ms = 0
    if seconds is not None:
        # the episode must outlast the wanted time: SUMO closes when an episode ends
        longer = seconds + 2 * scenario.decision_interval_s
        scenario = scenario.with_timing(seconds=max(scenario.episode_seconds, longer))
    with tempfile.TemporaryDirectory(prefix="ltos-gui-") as tmp:
        settings = Path(tmp) / "view.xml"
        settings.write_text(VIEW_SETTINGS, encoding="utf-8")
        gui_args = [
            "--start",
            "--delay",
            str(int(delay_ms)),
            "--window-size",
            f"{window[0]},{window[1]}",
            "--gui-settings-file",
            str(settings),
        ]
        if shot is not None:
            gui_args.append("--quit-on-end")
        options = {"gui": True, "gui_args": tuple(gui_args), "data_dir": data_dir}
        env, controller = make_run(
            scenario, controller_name, seed=seed, overrides=overrides, traffic_options=options
        )
        try:
            return _drive(env, controller, checkpoint, seed, seconds, shot)
        finally:
            env.close()


def _drive(
    env: TrafficEnv,
    controller: Any,
    checkpoint: str | Path | None,
    seed: int,
    seconds: float | None,
    shot: Path | None,
) -> GuiResult:
    """The loop: act greedily, step, name the phases; screenshot at the end."""
    spec = env.spec
    if checkpoint is not None:
        load_checkpoint(Path(checkpoint), controller)
    assert spec.traffic is not None
    names = spec.traffic.phase_names
    # lights that run the network's own programs have no phase of ours to name
    agents = range(0 if getattr(controller, "network_programs", False) else spec.n_agents)
    step = reset(env, controller, eval_seed(seed))
    queue_sum = 0.0
    while not step.done and (seconds is None or step.sim_time_s < seconds):
        phase = np.argmax(step.obs[:, :N_PHASES], axis=1)
        env.sim.set_phase_names(agents, [names[i][p] for i, p in enumerate(phase)])
        step = env.step(controller.act(step, explore=False))
        queue_sum += float(-step.reward.mean())
    if shot is not None:
        if not env.sim.running:
            raise UserError("the episode ended before the screenshot; give a smaller --seconds")
        phase = np.argmax(step.obs[:, :N_PHASES], axis=1)
        env.sim.set_phase_names(agents, [names[i][p] for i, p in enumerate(phase)])
        _screenshot(env, shot)
    return GuiResult(step.sim_time_s, step.t, queue_sum / max(step.t, 1), shot)


def _screenshot(env: TrafficEnv, path: Path) -> None:
    """Ask for the screenshot, then step SUMO until sumo-gui has written it."""
    env.sim.screenshot(path)
    deadline = time.monotonic() + SCREENSHOT_WAIT_S
    while time.monotonic() < deadline:
        env.sim.advance_to(env.sim.time_s + 1.0)  # SUMO writes it at the next step
        if path.is_file() and path.read_bytes().endswith(PNG_END):
            return
        time.sleep(0.1)
    raise UserError(f"sumo-gui did not write the screenshot {path} within {SCREENSHOT_WAIT_S} s")
