"""Shared test setup: a per-session network cache, the repository root, helpers."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # Generated and imported networks go to a cache shared by the whole test session.
    if "LTOS_CACHE" not in os.environ:
        os.environ["LTOS_CACHE"] = tempfile.mkdtemp(prefix="ltos-test-cache-")
    # The CLI runs torch on one thread (small networks spin on more); tests do the same,
    # in this process and in the CLI subprocesses they start.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
