"""Saving and restoring numpy generator states in checkpoints, one convention for all controllers.

PCG64's 128-bit integers are kept as decimal strings: plain data, safe for any unpickler
(checkpoints load with ``weights_only=True``). :func:`restore_rng` also reads the raw
integer form that LIO and QMIX checkpoints held before this module existed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """``rng``'s bit-generator state with its integers as decimal strings."""
    state = rng.bit_generator.state
    inner = {k: str(v) for k, v in state["state"].items()}
    return {**state, "state": inner}


def restore_rng(rng: np.random.Generator, state: Mapping[str, Any]) -> None:
    """Set ``rng`` to a state saved by :func:`rng_state` (or a raw ``bit_generator.state``)."""
    inner = {k: int(v) for k, v in state["state"].items()}
    rng.bit_generator.state = {**state, "state": inner}
