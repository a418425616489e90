"""Run the BDGF engine as a supervised subprocess (torch-free).

``[engine_python, "-m", "engine", <command>, ..., "--json-progress"]`` runs with the plugin folder as cwd and
PYTHONPATH. Two reader threads feed a queue; the loop polls it every 0.1 s and checks
``feedback.isCanceled()`` each time, so cancelling never waits for the engine's next line. JSON lines map to
feedback (progress, text with stage and ETA, log, metrics); the ``done`` event gives the outputs; an
``error`` event or a non-zero exit becomes a :class:`QgsProcessingException` with the engine's message and
hint, or with the exit code and the tail of stderr when the engine died without saying why (crash, killed).
``subprocess.Popen`` is used because QgsBlockingProcess crashes from Python on QGIS 3.22.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Iterable

from qgis.core import QgsProcessingException, QgsProcessingFeedback
from qgis.PyQt.QtCore import QCoreApplication

from ..engine.contract import EXIT_CANCELLED, temporary_glob
from . import PLUGIN_DIR
from .engine_env import clean_environment
from .settings import SETUP_ALGORITHM, engine_python, setup_command

CANCEL_GRACE_S = 4.0  # SIGTERM, then SIGKILL: the engine is gone within 5 s of a cancel
# pretrain / train finish the running batch and write their checkpoint for RESUME after SIGTERM: on a busy CPU
# that can take longer than CANCEL_GRACE_S, and a kill would lose the checkpoint (usually < 1 s)
CHECKPOINT_GRACE_S = 20.0
POLL_S = 0.1
STDERR_TAIL = 40

RUNNING: dict = {}
"""pid -> command line of the engine processes running now (diagnostics and tests)."""


translate = QCoreApplication.translate  # pylupdate5 reads the explicit contexts



class EngineCancelled(QgsProcessingException):
    """The user cancelled; the engine was stopped."""


def engine_env(plugin_dir: str = PLUGIN_DIR) -> dict:
    """The engine's environment: the plugin folder on PYTHONPATH, without what QGIS sets for its own Python,
    GDAL and PROJ (PYTHONHOME/PYTHONPATH on Windows and macOS would load QGIS's numpy; PROJ_LIB/PROJ_DATA
    break rasterio's PROJ)."""
    return clean_environment(os.environ, plugin_dir)


def _popen_kwargs() -> dict:
    kw: dict = {}
    if sys.platform.startswith("win"):
        kw["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0) | getattr(
            subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    else:
        kw["start_new_session"] = True  # own process group: a kill reaches the engine's workers too
    return kw


def missing_engine_message(python: str, origin: str, detail: str = "") -> str:
    msg = translate("BdgfRunner",
        "The BDGF engine environment is not usable: {python} (from the {origin}).").format(
        python=python, origin=origin)
    if detail:
        msg += "\n" + detail
    msg += "\n" + translate("BdgfRunner",
        "Fix: run the Processing algorithm BDGF > Engine > Set up engine environment ({algorithm}; from a "
        "terminal: {command}). It creates a private engine environment with torch in the QGIS profile folder "
        "and sets Processing > Options > Providers > BDGF > Engine Python; or point that setting (or the "
        "BDGF_ENGINE_PYTHON environment variable) at an interpreter that has the engine's packages.").format(
        algorithm=SETUP_ALGORITHM, command=setup_command())
    return msg


# ---------------------------------------------------------------------------------------------------------
# doctor: does the interpreter run and import torch? (cached per interpreter)

_DOCTOR_CACHE: dict = {}


def doctor(python: str | None = None, origin: str | None = None, timeout: float = 120.0,
           use_cache: bool = True) -> dict:
    """Run ``python -m engine doctor`` once per interpreter; returns its JSON.

    Raises QgsProcessingException with one clear message (and the command that fixes it) when the
    interpreter is missing, does not start, or lacks torch.
    """
    if python is None:
        python, origin = engine_python()
    origin = origin or "setting"
    if not python or not os.path.isfile(python):
        raise QgsProcessingException(missing_engine_message(python or "?", origin, translate("BdgfRunner",
            "The file does not exist.")))
    try:
        stamp = os.stat(python).st_mtime
    except OSError:
        stamp = 0
    key = (os.path.abspath(python), stamp)
    if use_cache and key in _DOCTOR_CACHE:
        return _DOCTOR_CACHE[key]
    try:
        proc = subprocess.run([python, "-m", "engine", "doctor"], cwd=PLUGIN_DIR, env=engine_env(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                              **_popen_kwargs())
    except (OSError, subprocess.SubprocessError) as exc:
        raise QgsProcessingException(missing_engine_message(python, origin, str(exc)))
    info = None
    try:
        info = json.loads(proc.stdout)
    except ValueError:
        pass
    for line in ([] if isinstance(info, dict) else reversed(proc.stdout.strip().splitlines())):
        try:
            candidate = json.loads(line)
        except ValueError:
            continue
        if isinstance(candidate, dict):
            info = candidate
            break
    if proc.returncode != 0 or info is None or not info.get("torch"):
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-6:])
        raise QgsProcessingException(missing_engine_message(python, origin, tail))
    info["engine_python"] = python
    _DOCTOR_CACHE[key] = info
    return info


def describe_device(info: dict) -> str:
    cuda = info.get("cuda")
    if cuda:
        return translate("BdgfRunner", "torch {torch}, CUDA available ({name})").format(
            torch=info.get("torch"), name=info.get("device_name") or cuda)
    return translate("BdgfRunner", "torch {torch}, no CUDA: runs on the CPU").format(torch=info.get("torch"))


# ---------------------------------------------------------------------------------------------------------
# progress mapping


class ProgressMapper:
    """Maps per-stage engine progress (0-100 per stage) onto one monotonic 0-100 bar.

    ``stages`` is the expected ordered list of (stage name, weight); unknown stages take half of the range
    that is left. The bar never moves backwards.
    """

    def __init__(self, stages: Iterable[tuple[str, float]] | None = None):
        self.stages = list(stages or [])
        total = sum(w for _, w in self.stages) or 1.0
        self.spans: dict[str, tuple[float, float]] = {}
        start = 0.0
        for name, weight in self.stages:
            span = 100.0 * weight / total
            self.spans[name] = (start, span)
            start += span
        self.current = 0.0

    def overall(self, stage: str, value: float) -> float:
        value = max(0.0, min(100.0, float(value)))
        if stage not in self.spans:
            start = self.current
            self.spans[stage] = (start, (100.0 - start) * (1.0 if not self.stages else 0.5))
        start, span = self.spans[stage]
        self.current = max(self.current, min(100.0, start + span * value / 100.0))
        return self.current


def _fmt_eta(eta) -> str:
    try:
        eta = float(eta)
    except (TypeError, ValueError):
        return ""
    if eta < 0 or eta != eta:
        return ""
    if eta < 90:
        return translate("BdgfRunner", "{s:.0f} s left").format(s=eta)
    if eta < 5400:
        return translate("BdgfRunner", "{m:.0f} min left").format(m=eta / 60)
    return translate("BdgfRunner", "{h:.1f} h left").format(h=eta / 3600)


# ---------------------------------------------------------------------------------------------------------
# the supervised run


def _metric_text(value) -> str:
    """A metric event's value for the log: 4 decimals, "n/a" for None (e.g. kappa with one reference class)."""
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _reader(stream, tag, q):
    try:
        for line in iter(stream.readline, ""):
            q.put((tag, line.rstrip("\r\n")))
    except (ValueError, OSError):
        pass
    finally:
        q.put((tag, None))


def _stop(proc: subprocess.Popen, grace: float = CANCEL_GRACE_S) -> None:
    """SIGTERM (the engine cancels cleanly and removes partial outputs), then kill after ``grace`` s."""
    if proc.poll() is not None:
        return
    try:
        proc.terminate()
    except OSError:
        pass
    try:
        proc.wait(grace)
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        try:
            proc.kill()
        except OSError:
            pass
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass


def exit_description(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except (ValueError, AttributeError):
            name = str(-code)
        return translate("BdgfRunner", "killed by signal {name}").format(name=name)
    return translate("BdgfRunner", "exit code {code}").format(code=code)


def run_engine(command: str, args: list, feedback: QgsProcessingFeedback | None = None, *,
               python: str | None = None, stages=None, log_path: str | None = None,
               cleanup_on_cancel: Iterable[str] = ()) -> dict:
    """Run one engine command and return the ``outputs`` of its ``done`` event.

    Args:
        command: pretrain | train | classify | assess | info | doctor.
        args: the command's options (strings); ``--json-progress`` is appended.
        feedback: Processing feedback (progress, log, cancel).
        python: the engine interpreter (default: :func:`settings.engine_python`).
        stages: expected (stage, weight) list for one monotonic progress bar.
        log_path: optional per-run log file (command line + every engine line).
        cleanup_on_cancel: output paths to remove if the run is cancelled or dies (and that did not exist before).
    """
    feedback = feedback or QgsProcessingFeedback()
    origin = "setting"
    if python is None:
        python, origin = engine_python()
    if not python or not os.path.isfile(python):
        raise QgsProcessingException(missing_engine_message(python or "?", origin, translate("BdgfRunner",
            "The file does not exist.")))
    cmd = [python, "-m", "engine", command] + [str(a) for a in args] + ["--json-progress"]
    grace = CHECKPOINT_GRACE_S if command in ("pretrain", "train") else CANCEL_GRACE_S
    preexisting = {p for p in cleanup_on_cancel if p and os.path.exists(p)}
    log = None
    if log_path:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
            log = open(log_path, "w", encoding="utf-8")
            log.write("# " + subprocess.list2cmdline(cmd) + "\n")
        except OSError:
            log = None
    feedback.pushCommandInfo(subprocess.list2cmdline(cmd))
    mapper = ProgressMapper(stages)
    try:
        proc = subprocess.Popen(cmd, cwd=PLUGIN_DIR, env=engine_env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                errors="replace", bufsize=1, **_popen_kwargs())
    except OSError as exc:
        if log:
            log.close()
        raise QgsProcessingException(missing_engine_message(python, origin, str(exc)))

    RUNNING[proc.pid] = cmd
    q: queue.Queue = queue.Queue()
    threads = [threading.Thread(target=_reader, args=(proc.stdout, "out", q), daemon=True),
               threading.Thread(target=_reader, args=(proc.stderr, "err", q), daemon=True)]
    for t in threads:
        t.start()
    open_streams = 2
    stderr_tail: collections.deque = collections.deque(maxlen=STDERR_TAIL)
    outputs = None
    error_event = None
    cancelled = False
    try:
        while open_streams:
            if feedback.isCanceled():
                cancelled = True
                feedback.pushInfo(translate("BdgfRunner",
                    "Cancelling: stopping the engine (process {pid})").format(pid=proc.pid))
                _stop(proc, grace)
                break
            try:
                tag, line = q.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if line is None:
                open_streams -= 1
                continue
            if log:
                log.write(("" if tag == "out" else "[stderr] ") + line + "\n")
            if tag == "err":
                if line.strip():
                    stderr_tail.append(line)
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if not isinstance(event, dict) or "event" not in event:
                if line.strip():
                    feedback.pushInfo(line)
                continue
            kind = event.get("event")
            if kind == "progress":
                stage = str(event.get("stage", ""))
                value = event.get("value", 0.0) or 0.0
                feedback.setProgress(mapper.overall(stage, value))
                eta = _fmt_eta(event.get("eta_s"))
                text = f"{stage}: {float(value):.0f} %" + (f" ({eta})" if eta else "")
                feedback.setProgressText(text)
            elif kind == "log":
                level = str(event.get("level", "info")).lower()
                message = str(event.get("message", ""))
                if level in ("warning", "warn"):
                    feedback.pushWarning(message)
                elif level in ("error", "critical"):
                    feedback.reportError(message, False)
                elif level == "debug":
                    feedback.pushDebugInfo(message)
                else:
                    feedback.pushInfo(message)
            elif kind == "metric":
                extra = " ".join(f"{k}={_metric_text(v)}" for k, v in event.items()
                                 if k not in ("event", "name", "value"))
                feedback.pushInfo(f"{event.get('name')} = {_metric_text(event.get('value'))}"
                                  + (f" ({extra})" if extra else ""))
            elif kind == "done":
                outputs = event.get("outputs") or {}
            elif kind == "error":
                error_event = event
            else:
                feedback.pushDebugInfo(line)
        if not cancelled:
            while proc.poll() is None:  # streams closed: the process is exiting
                if feedback.isCanceled():
                    cancelled = True
                    _stop(proc, grace)
                    break
                time.sleep(POLL_S)
    finally:
        if proc.poll() is None:
            _stop(proc, grace)
        for t in threads:
            t.join(1.0)
        for stream in (proc.stdout, proc.stderr):
            try:
                stream.close()
            except Exception:
                pass
        RUNNING.pop(proc.pid, None)
        if log:
            log.write(f"# exit {proc.returncode}\n")
            log.close()
    code = proc.returncode
    if outputs is not None and error_event is None and (cancelled or feedback.isCanceled()):
        # the engine had written and reported every output before the cancel (it only remained to exit): keep them
        feedback.pushInfo(translate("BdgfRunner",
            "The engine had finished and written its outputs before the cancel arrived; they are kept."))
        return outputs
    if cancelled or (code == EXIT_CANCELLED and feedback.isCanceled()):
        _cleanup(cleanup_on_cancel, preexisting, proc.pid)
        raise EngineCancelled(translate("BdgfRunner", "Cancelled: the BDGF engine was stopped ({how}).").format(
            how=exit_description(code if code is not None else -9)))
    if error_event is not None:
        _cleanup(cleanup_on_cancel, preexisting, proc.pid)
        message = str(error_event.get("message") or translate("BdgfRunner", "The BDGF engine reported an error."))
        hint = str(error_event.get("hint") or "")
        raise QgsProcessingException(message + ("\n" + translate("BdgfRunner", "Hint: ") + hint if hint else ""))
    if code != 0:
        _cleanup(cleanup_on_cancel, preexisting, proc.pid)
        tail = "\n".join(stderr_tail) or translate("BdgfRunner", "(no error output)")
        raise QgsProcessingException(
            translate("BdgfRunner",
                "The BDGF engine stopped unexpectedly ({how}) during '{command}'. Last lines of its error "
               "output:\n{tail}").format(how=exit_description(code), command=command, tail=tail))
    if outputs is None:
        raise QgsProcessingException(
            translate("BdgfRunner",
                "The BDGF engine finished '{command}' without reporting its outputs.").format(command=command))
    return outputs


def _cleanup(paths, preexisting, pid=None) -> None:
    """Remove outputs (that did not exist before) and the engine's temporaries after a cancel or a failure.

    The engine writes ``<dir>/.<stem>.partial-<pid><ext>`` and renames on success (engine/files.py); a killed
    engine leaves that file behind, so it is removed here by the child's pid.
    """
    for p in paths:
        if not p:
            continue
        candidates = [p + ".partial", p + ".tmp"]
        if p not in preexisting:
            candidates.append(p)
        if pid is not None:
            candidates += temporary_glob(p, pid)
        for candidate in candidates:
            try:
                if os.path.isfile(candidate):
                    os.remove(candidate)
            except OSError:
                pass
