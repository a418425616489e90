"""Progress reporting and cancellation for the engine (torch-free).

A :class:`Reporter` draws tqdm bars when stdout is a terminal, or writes one JSON object per line in
``--json-progress`` mode (the protocol the QGIS plugin reads: the event constructors of :mod:`engine.contract`).
Library functions accept ``reporter=None``; :func:`ensure` gives them a silent reporter then.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

from .contract import done_event, error_event, log_event, metric_event, progress_event
from .errors import Cancelled


class CancelToken:
    """A thread-safe cancellation flag, set by signal handlers or by a caller."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class Task:
    """One long step with a known number of units; reports progress with an ETA.

    Use through :meth:`Reporter.task`. ``update(n)`` advances by ``n`` units and checks cancellation.
    """

    def __init__(self, reporter: "Reporter", stage: str, total: int, unit: str = "it"):
        self.reporter = reporter
        self.stage = stage
        self.total = max(int(total), 1)
        self.n = 0
        self.start = time.monotonic()
        self._last_emit = 0.0
        self._bar = None
        self.postfix: dict[str, Any] = {}
        if reporter.tqdm_mode:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=stage, unit=unit, file=reporter.stream, leave=True)

    def eta_s(self) -> float | None:
        if self.n <= 0:
            return None
        elapsed = time.monotonic() - self.start
        return elapsed / self.n * (self.total - self.n)

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.reporter.check_cancelled()
        self.n = min(self.n + n, self.total)
        self.postfix.update(postfix)
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix({k: _short(v) for k, v in self.postfix.items()}, refresh=False)
        elif self.reporter.json_mode:
            now = time.monotonic()
            if now - self._last_emit >= self.reporter.min_interval_s or self.n >= self.total:
                self._last_emit = now
                self.reporter.progress(self.stage, 100.0 * self.n / self.total, self.eta_s(), **self.postfix)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Task":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _short(v: Any) -> Any:
    """A value for a log line: floats to 4 significant digits, None (an undefined metric, e.g. kappa with one
    reference class) as "n/a", as the QGIS log shows it; anything else as it is."""
    if v is None:
        return "n/a"
    return f"{v:.4g}" if isinstance(v, float) else v


class Reporter:
    """Sends progress, log lines, metrics and results to the user.

    Args:
        json_mode: write JSON lines (``{"event": ...}``) to ``stream`` instead of human-readable output.
        stream: where to write (stdout by default). Log lines go to stderr in human mode.
        cancel: a :class:`CancelToken`; :meth:`check_cancelled` raises :class:`Cancelled` once it is set.
        quiet: no output at all (used by library calls without a reporter and by tests).
    """

    def __init__(self, json_mode: bool = False, stream: TextIO | None = None,
                 cancel: CancelToken | None = None, quiet: bool = False, min_interval_s: float = 0.5):
        self.json_mode = json_mode
        self.stream = stream or sys.stdout
        self.cancel = cancel or CancelToken()
        self.quiet = quiet
        self.min_interval_s = min_interval_s
        self.tqdm_mode = (not json_mode) and (not quiet) and _isatty(self.stream)
        self.messages: list[tuple[str, str]] = []  # kept for reports
        self._lock = threading.Lock()

    # -- protocol -------------------------------------------------------------------------------
    def _emit(self, obj: dict[str, Any]) -> None:
        if self.quiet:
            return
        with self._lock:
            self.stream.write(json.dumps(obj, default=_json_default) + "\n")
            self.stream.flush()

    def progress(self, stage: str, value: float, eta_s: float | None = None, **extra: Any) -> None:
        if self.json_mode:
            self._emit(progress_event(stage, value, eta_s, **extra))

    def log(self, level: str, message: str) -> None:
        self.messages.append((level, message))
        if self.quiet:
            return
        if self.json_mode:
            self._emit(log_event(level, message))
        else:
            text = message if level == "info" else f"{level.upper()}: {message}"
            if self.tqdm_mode:
                from tqdm import tqdm

                tqdm.write(text, file=sys.stderr)
            else:
                print(text, file=sys.stderr, flush=True)

    def info(self, message: str) -> None:
        self.log("info", message)

    def warning(self, message: str) -> None:
        self.log("warning", message)

    def metric(self, name: str, value: Any, **extra: Any) -> None:
        if self.json_mode:
            self._emit(metric_event(name, value, **extra))
        elif not self.quiet:
            extras = " ".join(f"{k}={_short(v)}" for k, v in extra.items())
            self.log("info", f"{name} = {_short(value)} {extras}".rstrip())

    def done(self, outputs: dict[str, Any]) -> None:
        if self.json_mode:
            self._emit(done_event(outputs))
        elif not self.quiet:
            for key, value in outputs.items():
                print(f"{key}: {value}", file=self.stream, flush=True)

    def error(self, message: str, hint: str = "") -> None:
        if self.json_mode:
            self._emit(error_event(message, hint))
        elif not self.quiet:
            print(f"ERROR: {message}" + (f"\n  hint: {hint}" if hint else ""), file=sys.stderr, flush=True)

    # -- helpers ----------------------------------------------------------------------------------
    def task(self, stage: str, total: int, unit: str = "it") -> Task:
        return Task(self, stage, total, unit)

    def check_cancelled(self) -> None:
        if self.cancel.cancelled:
            raise Cancelled(self.cancel.reason or "cancelled")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except Exception:
        return False


def _json_default(obj: Any) -> Any:
    for attr in ("item", "tolist"):
        if hasattr(obj, attr):
            return getattr(obj, attr)()
    return str(obj)


def ensure(reporter: Reporter | None) -> Reporter:
    """Return ``reporter`` or a silent reporter with its own cancel token."""
    return reporter if reporter is not None else Reporter(quiet=True)
