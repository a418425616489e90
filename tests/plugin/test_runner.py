"""runner.py against scripted child processes: progress, log, errors, crashes, cancel, missing engine."""

from __future__ import annotations

import os
import stat
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "data", "fake_engine.py")


def make_fake_python(folder, mode) -> str:
    path = os.path.join(str(folder), f"fake_python_{mode}")
    with open(path, "w") as fh:
        fh.write(f'#!/bin/sh\nFAKE_ENGINE_MODE={mode} exec "{sys.executable}" "{FAKE}" "$@"\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class Recorder:
    def __init__(self):
        from qgis.core import QgsProcessingFeedback

        texts = self.texts = []
        infos = self.infos = []

        class Feedback(QgsProcessingFeedback):
            def setProgressText(self, text):  # noqa: N802
                texts.append(text)
                super().setProgressText(text)

            def pushInfo(self, info):  # noqa: N802
                infos.append(info)
                super().pushInfo(info)

        self.fb = Feedback()
        self.progress = []
        self.fb.progressChanged.connect(self.progress.append)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def test_ok_run_maps_events(bdgf_plugin, tmp_path):
    from bdgf.bdgf_plugin import runner

    rec = Recorder()
    out = str(tmp_path / "model.safetensors")
    log = out + ".log"
    outputs = runner.run_engine("train", ["--output", out], rec.fb, python=make_fake_python(tmp_path, "ok"),
                                stages=[("a", 1), ("b", 1)], log_path=log)
    assert outputs["output"] == out and outputs["metrics"]["OA"] == 0.9
    assert rec.progress == sorted(rec.progress) and rec.progress[-1] == 100
    assert rec.progress[0] == pytest.approx(25.0)
    assert any("ETA" in t or "left" in t for t in rec.texts)
    assert "val_oa = 0.9000 (kappa=n/a)" in rec.infos      # an undefined metric reads n/a, not None
    text = open(log).read()
    assert "--json-progress" in text and '"event": "done"' in text


def test_error_event_becomes_exception(bdgf_plugin, tmp_path):
    from qgis.core import QgsProcessingException

    from bdgf.bdgf_plugin import runner

    with pytest.raises(QgsProcessingException) as exc:
        runner.run_engine("train", [], Recorder().fb, python=make_fake_python(tmp_path, "error"))
    assert "Class field 'nope'" in str(exc.value) and "choose a field" in str(exc.value)


def test_crash_without_error_event(bdgf_plugin, tmp_path):
    from qgis.core import QgsApplication, QgsProcessingException

    from bdgf.bdgf_plugin import runner

    out = str(tmp_path / "out.tif")
    with pytest.raises(QgsProcessingException) as exc:
        runner.run_engine("train", ["--output", out], Recorder().fb, python=make_fake_python(tmp_path, "crash"),
                          cleanup_on_cancel=[out])
    msg = str(exc.value)
    assert "SIGKILL" in msg and "segfault imminent" in msg and "stopped unexpectedly" in msg
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".out.partial-")]  # killed engine's temporary
    assert QgsApplication.instance() is not None  # QGIS keeps running
    with pytest.raises(QgsProcessingException) as exc:
        runner.run_engine("classify", [], Recorder().fb, python=make_fake_python(tmp_path, "stderr_exit"))
    assert "exit code 1" in str(exc.value) and "RuntimeError: boom" in str(exc.value)


@pytest.mark.parametrize("mode,command,limit", [("slow", "pretrain", 3.0), ("ignore_term", "classify", 5.0)])
def test_cancel_stops_child(bdgf_plugin, tmp_path, monkeypatch, mode, command, limit):
    """SIGTERM, then SIGKILL after the grace: 4 s, or 20 s for pretrain / train, which write their checkpoint."""
    from bdgf.bdgf_plugin import runner

    pidfile = str(tmp_path / "pid")
    monkeypatch.setenv("FAKE_ENGINE_PIDFILE", pidfile)
    rec = Recorder()
    out = str(tmp_path / "pre.safetensors")
    timer = threading.Timer(1.0, rec.fb.cancel)
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(runner.EngineCancelled):
        runner.run_engine(command, ["--output", out], rec.fb, python=make_fake_python(tmp_path, mode),
                          cleanup_on_cancel=[out])
    elapsed = time.monotonic() - t0 - 1.0
    assert elapsed < limit, elapsed
    pid = int(open(pidfile).read())
    assert not alive(pid)
    assert not os.path.exists(out) and not os.path.exists(out + ".partial")
    assert rec.progress and rec.progress == sorted(rec.progress)


def test_cancel_after_the_engine_reported_its_outputs_keeps_them(bdgf_plugin, tmp_path):
    from bdgf.bdgf_plugin import runner

    rec = Recorder()
    infos = []
    rec.fb.pushInfo = infos.append
    out = str(tmp_path / "model.safetensors")
    timer = threading.Timer(1.5, rec.fb.cancel)      # the fake reports its outputs at once, then lingers 30 s
    timer.start()
    t0 = time.monotonic()
    outputs = runner.run_engine("train", ["--output", out], rec.fb, cleanup_on_cancel=[out],
                                python=make_fake_python(tmp_path, "done_then_linger"))
    assert time.monotonic() - t0 < 10                  # the lingering engine was stopped, not waited for
    assert outputs["output"] == out and os.path.exists(out)
    assert any("they are kept" in line for line in infos)


def test_missing_engine_python(bdgf_plugin, tmp_path):
    from qgis.core import QgsProcessingException

    from bdgf.bdgf_plugin import runner

    with pytest.raises(QgsProcessingException) as exc:
        runner.run_engine("train", [], Recorder().fb, python=str(tmp_path / "nope" / "python"))
    assert "bdgf:setupengine" in str(exc.value) and "Engine Python" in str(exc.value)
    with pytest.raises(QgsProcessingException) as exc:
        runner.doctor(str(tmp_path / "nope"), "setting")
    assert "bdgf:setupengine" in str(exc.value)
    with pytest.raises(QgsProcessingException) as exc:
        runner.doctor(make_fake_python(tmp_path, "notorch"), "setting", use_cache=False)
    assert "No module named 'torch'" in str(exc.value) and "bdgf:setupengine" in str(exc.value)


def test_progress_mapper_monotonic():
    from bdgf.bdgf_plugin.runner import ProgressMapper

    m = ProgressMapper([("pretrain", 1), ("train", 3)])
    seq = [m.overall("pretrain", 50), m.overall("pretrain", 100), m.overall("train", 0), m.overall("train", 50),
           m.overall("other", 50), m.overall("train", 10)]
    assert seq == sorted(seq) and seq[1] == pytest.approx(25.0)


def test_classify_declares_the_landscape_context_stage(provider):
    """Classify runs of a model with landscape context report a short 'context' stage first: declared, it moves
    the bar by a few per cent; undeclared, it would take half of the bar before the classification starts."""
    from qgis.core import QgsApplication

    from bdgf.bdgf_plugin.runner import ProgressMapper

    alg = QgsApplication.processingRegistry().createAlgorithmById("bdgf:classify")
    declared = ProgressMapper([alg.CONTEXT_STAGE, ("classify", 1)])
    assert declared.overall("context", 100) < 5 and declared.overall("classify", 50) == pytest.approx(52.4, abs=0.1)
    assert ProgressMapper([("classify", 1)]).overall("context", 100) == pytest.approx(50.0)
