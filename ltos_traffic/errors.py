"""User-facing errors: one clear line, exit code 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: the message names the problem and the fix.

    The CLI prints ``error: <message>`` on one line and exits with code 2.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class SimulationError(RuntimeError):
    """SUMO failed or died during an episode (not the user's fault)."""
