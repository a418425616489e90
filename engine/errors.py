"""Engine errors and process exit codes (torch-free).

Every error that a user can fix is an :class:`EngineError` carrying a message that names the file, field or
value, and a hint that says how to fix it. The command line turns it into exit code 2 and, in
``--json-progress`` mode, into an ``{"event": "error", "message": ..., "hint": ...}`` line.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 3
EXIT_OUTPUT_EXISTS = 4


class EngineError(Exception):
    """A problem with the user's input or environment, with a hint on how to fix it.

    Args:
        message: what is wrong, naming the file, field or value.
        hint: what the user can do about it (may be empty).
    """

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # pragma: no cover - trivial
        return f"{self.message} ({self.hint})" if self.hint else self.message


class OutputExistsError(EngineError):
    """An output file exists and overwriting was not requested."""

    exit_code = EXIT_OUTPUT_EXISTS


class Cancelled(Exception):
    """The run was cancelled (SIGINT, SIGTERM or the caller's cancel flag)."""

    exit_code = EXIT_CANCELLED
