"""A scripted stand-in for ``python -m engine`` used to test the runner's crash/cancel/error handling.

Called as ``fake_python -m engine <command> ... --json-progress``; FAKE_ENGINE_MODE picks the behaviour:
slow (progress every 0.1 s for 60 s, SIGTERM -> exit 3), ignore_term (slow, ignores SIGTERM), crash (progress,
then SIGKILL itself), error (error event, exit 2), stderr_exit (traceback on stderr, exit 1), ok (done event),
notorch (doctor fails like a missing torch), done_then_linger (ok, then 30 s before exiting). FAKE_ENGINE_PIDFILE receives the pid.
Every line it prints is made by the event constructors and exit codes of engine/contract.py, the module the
real engine's Reporter uses, so the fake speaks exactly the real protocol.
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
from engine.contract import (EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_UNEXPECTED, done_event,  # noqa: E402
                             error_event, log_event, metric_event, progress_event, temporary_name)

args = sys.argv[1:]
command = args[2] if len(args) > 2 and args[:2] == ["-m", "engine"] else "?"
mode = os.environ.get("FAKE_ENGINE_MODE", "ok")
if os.environ.get("FAKE_ENGINE_PIDFILE"):
    with open(os.environ["FAKE_ENGINE_PIDFILE"], "w") as fh:
        fh.write(str(os.getpid()))


def emit(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def option(name):
    return args[args.index(name) + 1] if name in args else None


if command == "doctor":
    if mode == "notorch":
        sys.stderr.write("Traceback (most recent call last):\nModuleNotFoundError: No module named 'torch'\n")
        sys.exit(EXIT_UNEXPECTED)
    print(json.dumps({"python": sys.executable, "torch": "0.0-fake", "cuda": None, "device_name": None}))
    sys.exit(0)

output = option("--output")
if mode in ("slow", "ignore_term"):
    if mode == "slow":
        def on_term(signum, frame):
            if output and os.path.exists(output + ".partial"):
                os.remove(output + ".partial")
            emit(log_event("warning", "cancelled"))
            sys.exit(EXIT_CANCELLED)
        signal.signal(signal.SIGTERM, on_term)
    else:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if output:
        open(output + ".partial", "w").close()
    for i in range(600):
        emit(progress_event("pretrain", i / 6.0, (600 - i) * 0.1))
        time.sleep(0.1)
    sys.exit(0)
if mode == "crash":
    if output:  # like engine/files.py: hidden temporary, renamed on success
        open(temporary_name(output), "w").close()
    emit(progress_event("train", 10.0, 5))
    emit(log_event("info", "about to crash"))
    sys.stderr.write("fake engine: segfault imminent\n")
    sys.stderr.flush()
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "error":
    emit(error_event("Class field 'nope' is not in training.gpkg", "choose a field of the layer"))
    sys.exit(EXIT_BAD_INPUT)
if mode == "stderr_exit":
    sys.stderr.write("Traceback (most recent call last):\nRuntimeError: boom\n")
    sys.exit(EXIT_UNEXPECTED)
emit(progress_event("a", 50.0, 1.0))
emit(log_event("info", "hello"))
emit(log_event("warning", "careful"))
emit(metric_event("val_oa", 0.9, kappa=None))   # kappa undefined: one reference class
emit(progress_event("a", 100.0, 0.0))
emit(progress_event("b", 100.0, 0.0))
if output:
    with open(output, "w") as fh:
        fh.write("x")
emit(done_event({"output": output, "metrics": {"OA": 0.9}}))
if mode == "done_then_linger":     # outputs written and reported, then a slow exit (teardown) that a cancel hits
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(EXIT_CANCELLED))
    time.sleep(30)
