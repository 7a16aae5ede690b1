"""The seed scheme of a run: which environment seed each episode uses.

Training episode ``k`` of run ``seed`` uses environment seed ``seed * 10_000 + k``; the
evaluation episode uses ``1_000_000 + seed``, a seed no training episode uses. A run
starts by seeding Python's, numpy's and torch's global generators from its seed.
"""

from __future__ import annotations

import random

import numpy as np

EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes use seeds no training episode uses


def episode_seed(seed: int, episode: int) -> int:
    """The environment seed of training episode ``episode`` in run ``seed``."""
    return seed * 10_000 + episode


def eval_seed(seed: int) -> int:
    """The SUMO/environment seed of a run's evaluation episode."""
    return EVAL_SEED_OFFSET + seed


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators from one run seed."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
