"""Checkpoints: a controller's full state and its episode count, saved and loaded one way.

``save_checkpoint`` writes ``{"format", "controller", "seed", "episodes_done",
"next_env_seed", "state"}`` atomically; ``load_checkpoint`` is the only reader (training's
``--resume``, ``run --checkpoint``, the GUI, shipped checkpoints). It loads with
``weights_only=True``, so a checkpoint never runs code, and turns every failure into one
:class:`~ltos_traffic.errors.UserError` line. The checkpoints shipped in the package are
found here too (:func:`shipped_path`, :func:`shipped_record`).
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from ltos_traffic.atomic import atomic_write_bytes
from ltos_traffic.errors import UserError
from ltos_traffic.experiments.seeds import episode_seed

CHECKPOINT = "checkpoint.pt"  # the file name in a run directory
FORMAT = "ltos-traffic-checkpoint/1"
# checkpoints shipped in the package: <scenario>/<controller>.pt, each with a .json record
# of how it was made (ltos_traffic/experiments/shipped.py makes them)
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "checkpoints"


def shipped_path(scenario: str, controller: str) -> Path | None:
    """The shipped checkpoint for (scenario, controller), or ``None``."""
    path = SHIPPED_DIR / scenario / f"{controller}.pt"
    return path if path.is_file() else None


def shipped_record(path: Path) -> dict[str, Any]:
    """The provenance record beside a shipped checkpoint."""
    return dict(json.loads(path.with_suffix(".json").read_text(encoding="utf-8")))


def save_checkpoint(
    path: Path,
    controller: Any,
    *,
    episodes_done: int,
    seed: int,
    state: dict[str, Any] | None = None,
) -> None:
    """Write the controller's state and the episode count to ``path`` atomically.

    ``state`` replaces ``controller.state_dict()`` (a shipped checkpoint's, with the
    replay buffer emptied).
    """
    payload = {
        "format": FORMAT,
        "controller": getattr(controller, "name", type(controller).__name__),
        "seed": seed,
        "episodes_done": episodes_done,
        "next_env_seed": episode_seed(seed, episodes_done),
        "state": controller.state_dict() if state is None else state,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path, controller: Any, *, seed: int | None = None) -> int:
    """Load ``path`` into ``controller``; return the number of finished training episodes.

    Raises:
        UserError: missing, corrupt or foreign file, another controller or seed,
            or networks whose shapes do not fit this scenario.
    """
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; train first or give another path")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles on stderr
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # garbage makes the unpickler fail in many ways (IndexError too)
        why = _torch_reason(exc)
        if "GLOBAL" in why:  # weights_only refused to import a function or class
            raise UserError(
                f"checkpoint {path} is refused: it holds Python objects, not only tensors "
                f"({why}); checkpoints are loaded with weights_only=True and never run code"
            ) from None
        raise UserError(f"checkpoint {path} is corrupt or not a checkpoint ({why})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"checkpoint {path} was not written by ltos-traffic train")
    name = getattr(controller, "name", type(controller).__name__)
    if payload["controller"] != name:
        raise UserError(
            f"checkpoint {path} holds controller {payload['controller']!r}, not {name!r}"
        )
    if seed is not None and payload["seed"] != seed:
        raise UserError(f"checkpoint {path} is from seed {payload['seed']}, not seed {seed}")
    try:
        controller.load_state_dict(payload["state"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise UserError(
            f"checkpoint {path} does not fit this scenario or config ({_torch_reason(exc)}); "
            "use the scenario and --set values it was trained with"
        ) from None
    return int(payload["episodes_done"])


def _torch_reason(exc: BaseException) -> str:
    """The informative line of a torch loading error (its first line is often generic)."""
    generic = ("Weights only load failed", "Please file an issue", "Check the documentation",
               "Error(s) in loading state_dict")  # fmt: skip
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(generic)]
    return ((useful or lines or [type(exc).__name__])[0])[:200]
