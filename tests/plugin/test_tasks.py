"""Background runs (QgsProcessingAlgRunnerTask): increasing progress, cancel stops the engine (at once when idle;
train / pretrain are given up to runner.CHECKPOINT_GRACE_S to write their checkpoint)."""

from __future__ import annotations

import os
import time

import pytest

from .conftest import SMALL_EXTENT_STR, band_paths

pytestmark = pytest.mark.slow
_KEEP: list = []


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def test_task_progress_and_cancel(bdgf_plugin, provider, small_training, tmp_path):
    from pytest_qgis.utils import process_events, wait_until
    from qgis.core import (QgsApplication, QgsProcessingAlgRunnerTask, QgsProcessingContext,
                           QgsProcessingFeedback, QgsProject)

    from bdgf.bdgf_plugin import runner

    alg = QgsApplication.processingRegistry().createAlgorithmById("bdgf:train")
    assert alg is not None  # QgsProcessingAlgRunnerTask(None, ...) segfaults
    out = str(tmp_path / "cancelled.safetensors")
    params = {"SPECTRAL": band_paths(), "TRAINING": small_training, "EXTENT": SMALL_EXTENT_STR, "DEVICE": 2,
              "ITERATIONS": 400, "EPOCHS": 50, "OUTPUT_MODEL": out, "OUTPUT_REPORT": str(tmp_path / "r.html")}
    ctx = QgsProcessingContext()
    ctx.setProject(QgsProject.instance())
    fb = QgsProcessingFeedback()
    progress, state = [], {}
    fb.progressChanged.connect(progress.append)
    task = QgsProcessingAlgRunnerTask(alg, params, ctx, fb)
    task.executed.connect(lambda ok, res: state.update(ok=ok, res=res, t=time.monotonic()))
    QgsApplication.taskManager().addTask(task)
    assert wait_until(lambda: len([p for p in progress if p > 0]) >= 3, timeout_milliseconds=240000), progress
    assert progress == sorted(progress) and progress[-1] > progress[0]
    pids = list(runner.RUNNING)
    assert pids, "engine process not found"
    t0 = time.monotonic()
    task.cancel()
    assert wait_until(lambda: "ok" in state, timeout_milliseconds=20000)
    assert state["ok"] is False
    # the engine writes its checkpoint before it exits (killed after runner.CHECKPOINT_GRACE_S at the latest)
    assert state["t"] - t0 < runner.CHECKPOINT_GRACE_S + 2.0, state["t"] - t0
    assert not any(_alive(pid) for pid in pids)
    assert not os.path.exists(out)
    # the checkpoint of the interrupted run is kept for RESUME (issue 11); nothing else is left
    leftovers = [n for n in os.listdir(tmp_path) if not n.endswith(".log") and ".checkpoint.safetensors" not in n]
    assert leftovers == [], leftovers
    # let the task manager finish and delete the task before its context/feedback go away
    assert wait_until(lambda: QgsApplication.taskManager().count() == 0, timeout_milliseconds=10000)
    for _ in range(5):
        process_events()
    _KEEP.append((task, ctx, fb, alg))
