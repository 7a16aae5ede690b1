"""sumo-gui driven by a controller, under a virtual screen (Xvfb) started here."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ltos_traffic.cli import cli
from ltos_traffic.errors import UserError
from ltos_traffic.experiments.gui import watch
from ltos_traffic.scenario import load_scenario


def _xvfb() -> str | None:
    """Path of Xvfb, installing Debian's package when possible (root with apt-get)."""
    found = shutil.which("Xvfb")
    if found or shutil.which("apt-get") is None or os.geteuid() != 0:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "xvfb", "xauth"]
    try:
        if subprocess.run(install, env=env, capture_output=True, timeout=240).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=240)
            subprocess.run(install, env=env, capture_output=True, timeout=240)
    except (OSError, subprocess.SubprocessError):
        return None
    return shutil.which("Xvfb")


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """Start Xvfb on a free display; yields ``":N"``."""
    xvfb = _xvfb()
    if xvfb is None:
        pytest.skip("Xvfb is not installed and could not be installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()  # Xvfb writes its display number once it is ready
    if not number:
        proc.kill()
        pytest.skip("Xvfb did not start")
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_screenshot_of_the_2x2_grid_with_a_controller(
    display: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", display)
    shot = tmp_path / "gui" / "grid.png"
    result = CliRunner().invoke(
        cli,
        [
            "gui",
            "--net",
            "grid2x2",
            "--controller",
            "max_pressure",
            "--seconds",
            "60",
            "--screenshot",
            str(shot),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "6 decisions" in result.output
    assert shot.is_file()
    with Image.open(shot) as img:
        assert img.format == "PNG"
        pixels = np.asarray(img.convert("RGB"))
    assert min(pixels.shape[:2]) >= 300
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 10  # not a single colour
    # roads (dark) and background (light) both cover a real share of the view
    grey = pixels.mean(axis=2)
    assert 0.05 < (grey < 60).mean() < 0.95
    assert 0.05 < (grey > 200).mean() < 0.95


def test_watch_needs_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(UserError, match="xvfb-run"):
        watch(load_scenario("grid2x2"), "max_pressure", seconds=10)


def test_screenshot_needs_seconds() -> None:
    result = CliRunner().invoke(cli, ["gui", "--net", "grid2x2", "--screenshot", "x.png"])
    assert isinstance(result.exception, UserError)
    assert "--seconds" in str(result.exception)
