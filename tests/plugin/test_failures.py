"""An engine that crashes (killed) or is missing gives a clear QgsProcessingException; QGIS keeps running."""

from __future__ import annotations

import os

import pytest

from .conftest import LogFeedback, band_paths
from .test_runner import make_fake_python


def _run(alg_id, params):
    import processing
    from qgis.core import QgsProcessingException

    fb = LogFeedback()
    with pytest.raises(QgsProcessingException) as exc:
        processing.run(alg_id, params, feedback=fb)
    return str(exc.value) + "\n" + fb.text()


def test_engine_killed_during_run(provider, tmp_path):
    from qgis.core import QgsApplication

    from bdgf.bdgf_plugin import settings

    settings.set_engine_python(make_fake_python(tmp_path, "crash"))  # the Processing setting wins
    try:
        out = str(tmp_path / "p.safetensors")
        text = _run("bdgf:pretrain", {"SPECTRAL": band_paths()[:1], "OUTPUT_MODEL": out})
    finally:
        settings.set_engine_python("")
    assert "stopped unexpectedly" in text and "SIGKILL" in text and "segfault imminent" in text
    assert not os.path.exists(out)
    assert QgsApplication.processingRegistry().algorithmById("bdgf:pretrain") is not None  # still alive


def test_engine_error_event(provider, tmp_path):
    from bdgf.bdgf_plugin import settings

    settings.set_engine_python(make_fake_python(tmp_path, "error"))
    try:
        text = _run("bdgf:pretrain", {"SPECTRAL": band_paths()[:1], "OUTPUT_MODEL": str(tmp_path / "p.safetensors")})
    finally:
        settings.set_engine_python("")
    assert "Class field 'nope'" in text and "Hint: choose a field" in text


def test_missing_engine_in_run(provider, tmp_path, monkeypatch):
    from bdgf.bdgf_plugin import settings

    settings.set_engine_python("")
    monkeypatch.setenv("BDGF_ENGINE_PYTHON", str(tmp_path / "missing" / "python"))
    text = _run("bdgf:pretrain", {"SPECTRAL": band_paths()[:1], "OUTPUT_MODEL": str(tmp_path / "p.safetensors")})
    assert "bdgf:setupengine" in text and "Engine Python" in text
