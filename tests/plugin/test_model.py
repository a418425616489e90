"""A graphical-modeler model (pretrain -> train -> classify) saved as .model3 runs with processing.run."""

from __future__ import annotations


import pytest

from .conftest import SMALL_EXTENT_STR, LogFeedback, band_paths
from .model_builder import MODEL_PATH

pytestmark = pytest.mark.slow


def test_model_chain(bdgf_plugin, provider, small_training, session_dir):
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingModelAlgorithm, QgsRasterLayer

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(MODEL_PATH)
    assert [c.algorithmId() for c in sorted(model.childAlgorithms().values(), key=lambda c: c.childId())] == [
        "bdgf:classify", "bdgf:pretrain", "bdgf:train"]
    assert "classify:classification" in [p.name() for p in model.parameterDefinitions()]
    out = str(session_dir / "model_classes.tif")
    fb = LogFeedback()
    try:
        res = processing.run(model, {"spectral": band_paths(), "training": small_training,
                                     "extent": SMALL_EXTENT_STR, "classify:classification": out}, feedback=fb)
    except QgsProcessingException as exc:
        raise AssertionError(f"{exc}\n{fb.text()}") from exc
    assert res["classify:classification"] == out
    layer = QgsRasterLayer(out, "m")
    assert layer.isValid() and layer.width() > 100
    del layer
    assert fb.text().count("CMD ") == 3  # three engine runs: pretrain, train (with --pretrained), classify
    assert "--pretrained" in fb.text()
