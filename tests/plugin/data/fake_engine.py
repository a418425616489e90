"""A scripted stand-in for ``python -m engine`` used to test the runner's crash/cancel/error handling.

Called as ``fake_python -m engine <command> ... --json-progress``; FAKE_ENGINE_MODE picks the behaviour:
slow (progress every 0.1 s for 60 s, SIGTERM -> exit 3), ignore_term (slow, ignores SIGTERM), crash (progress,
then SIGKILL itself), error (error event, exit 2), stderr_exit (traceback on stderr, exit 1), ok (done event),
notorch (doctor fails like a missing torch). FAKE_ENGINE_PIDFILE receives the pid.
"""
import json
import os
import signal
import sys
import time

args = sys.argv[1:]
command = args[2] if len(args) > 2 and args[:2] == ["-m", "engine"] else "?"
mode = os.environ.get("FAKE_ENGINE_MODE", "ok")
if os.environ.get("FAKE_ENGINE_PIDFILE"):
    with open(os.environ["FAKE_ENGINE_PIDFILE"], "w") as fh:
        fh.write(str(os.getpid()))


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def option(name):
    return args[args.index(name) + 1] if name in args else None


if command == "doctor":
    if mode == "notorch":
        sys.stderr.write("Traceback (most recent call last):\nModuleNotFoundError: No module named 'torch'\n")
        sys.exit(1)
    print(json.dumps({"python": sys.executable, "torch": "0.0-fake", "cuda": None, "device_name": None}))
    sys.exit(0)

output = option("--output")
if mode in ("slow", "ignore_term"):
    if mode == "slow":
        def on_term(signum, frame):
            if output and os.path.exists(output + ".partial"):
                os.remove(output + ".partial")
            emit(event="log", level="warning", message="cancelled")
            sys.exit(3)
        signal.signal(signal.SIGTERM, on_term)
    else:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if output:
        open(output + ".partial", "w").close()
    for i in range(600):
        emit(event="progress", stage="pretrain", value=i / 6.0, eta_s=(600 - i) * 0.1)
        time.sleep(0.1)
    sys.exit(0)
if mode == "crash":
    if output:  # like engine/files.py: hidden temporary, renamed on success
        folder, name = os.path.split(os.path.abspath(output))
        stem, ext = os.path.splitext(name)
        open(os.path.join(folder, f".{stem}.partial-{os.getpid()}{ext}"), "w").close()
    emit(event="progress", stage="train", value=10.0, eta_s=5)
    emit(event="log", level="info", message="about to crash")
    sys.stderr.write("fake engine: segfault imminent\n")
    sys.stderr.flush()
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "error":
    emit(event="error", message="Class field 'nope' is not in training.gpkg", hint="choose a field of the layer")
    sys.exit(2)
if mode == "stderr_exit":
    sys.stderr.write("Traceback (most recent call last):\nRuntimeError: boom\n")
    sys.exit(1)
emit(event="progress", stage="a", value=50.0, eta_s=1.0)
emit(event="log", level="info", message="hello")
emit(event="log", level="warning", message="careful")
emit(event="metric", name="val_oa", value=0.9)
emit(event="progress", stage="a", value=100.0, eta_s=0.0)
emit(event="progress", stage="b", value=100.0, eta_s=0.0)
if output:
    with open(output, "w") as fh:
        fh.write("x")
emit(event="done", outputs={"output": output, "metrics": {"OA": 0.9}})
