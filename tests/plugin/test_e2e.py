"""End to end on the Delmarva crop: train -> classify -> assess through Processing, styling, rendering,
batch-style repeated runs, a graphical-modeler model, background task progress and cancel."""

from __future__ import annotations

import os
import shutil


import pytest

from .conftest import band_paths, run_alg

pytestmark = pytest.mark.slow
RENDER_COPY = "/tmp/bdgf_render.png"
EXPECTED = {1: ("Water", "#1f78b4"), 2: ("Salt marsh", "#6a9a3a"), 3: ("Beach / sand", "#f4e19c")}


def _project_layer(path):
    from qgis.core import QgsProject

    for layer in QgsProject.instance().mapLayers().values():
        if layer.source().split("|")[0] == path:
            return layer
    return None


def test_train(trained_model):
    from bdgf.engine.contract import read_metadata

    meta = read_metadata(trained_model["path"])
    assert meta.kind == "classifier"
    classes = {c.value: (c.name, c.color) for c in meta.classes}
    assert classes == EXPECTED  # names and colours from the layer's categorized style
    assert os.path.getsize(trained_model["report"]) > 500
    assert os.path.isfile(trained_model["path"] + ".log")  # per-run log next to the output
    text = trained_model["feedback"].text()
    assert "Engine:" in text and "no CUDA" in text  # device report from doctor
    assert "exported to" in text  # selected-features-only -> temporary GeoPackage
    assert any("pretrain" in t for t in trained_model["feedback"].texts)


def test_classify_styles_and_render(classified, trained_model, session_dir):
    from qgis.core import (QgsMapRendererParallelJob, QgsMapSettings, QgsPointXY, QgsRasterLayer)
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    layer = _project_layer(classified["path"])
    assert isinstance(layer, QgsRasterLayer), "classification not loaded on completion"
    renderer = layer.renderer()
    assert renderer.type() == "paletted"
    got = {c.value: (c.label, c.color.name()) for c in renderer.classes()}
    assert got == EXPECTED
    conf = _project_layer(classified["confidence"])
    assert conf is not None and conf.renderer().type() == "singlebandpseudocolor"
    assert os.path.isfile(os.path.splitext(classified["path"])[0] + ".qml")  # engine's sidecar

    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(380, 380))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    png = str(session_dir / "classes.png")
    assert image.save(png, "PNG")
    shutil.copy(png, RENDER_COPY)
    # the pixel at the water polygon's centre has the palette colour of the class value there
    point = QgsPointXY(446990.0, 4171340.0)
    value, ok = layer.dataProvider().sample(point, 1)
    assert ok and int(value) in EXPECTED
    ms = settings.mapToPixel()
    px = ms.transform(point)
    colour = QColor(image.pixel(int(px.x()), int(px.y())))
    assert colour.name() == EXPECTED[int(value)][1], (value, colour.name())
    palette = {v[1] for v in EXPECTED.values()}
    seen = {QColor(image.pixel(x, y)).name() for x in range(0, 380, 7) for y in range(0, 380, 7)}
    assert len(seen & palette) >= 2, seen


def test_assess(classified, small_training, session_dir):
    report = str(session_dir / "assess.html")
    table = str(session_dir / "assess.csv")
    res, fb = run_alg("bdgf:assess", {"CLASSIFICATION": classified["path"], "REFERENCE": small_training,
                                      "OUTPUT_REPORT": report, "OUTPUT_TABLE": table})
    assert res["OUTPUT_REPORT"] == report and os.path.getsize(report) > 500
    assert os.path.isfile(table) and open(table).read().strip()


def test_batch_like_repeated_runs(trained_model, session_dir):
    """Batch mode runs the same algorithm once per row with different parameter sets."""
    rows = [
        {"EXTENT": "446300,447300,4170800,4171800 [EPSG:32618]", "TILE_SIZE": 64, "OUTPUT": "b1.tif"},
        {"EXTENT": "447200,448200,4169900,4170900 [EPSG:32618]", "BATCH_SIZE": 64, "OUTPUT": "b2.tif",
         "OUTPUT_CONFIDENCE": "b2_conf.tif"},
    ]
    from qgis.core import QgsRasterLayer

    for row in rows:
        params = {"MODEL": trained_model["path"], "SPECTRAL": band_paths(), "DEVICE": 2}
        params.update({k: (str(session_dir / v) if k.startswith("OUTPUT") else v) for k, v in row.items()})
        res, _ = run_alg("bdgf:classify", params)
        layer = QgsRasterLayer(res["OUTPUT"], "b")
        assert layer.isValid() and 95 <= layer.width() <= 105
        del layer
    assert os.path.isfile(str(session_dir / "b2_conf.tif"))


def test_wrong_band_count_for_model(trained_model):
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProject

    alg = QgsApplication.processingRegistry().createAlgorithmById("bdgf:classify")
    ctx = QgsProcessingContext()
    ctx.setProject(QgsProject.instance())
    ok, msg = alg.checkParameterValues({"MODEL": trained_model["path"], "SPECTRAL": band_paths()[:3],
                                        "OUTPUT": "TEMPORARY_OUTPUT"}, ctx)
    assert not ok and "4 spectral bands" in msg and "3" in msg
    ok, msg = alg.checkParameterValues({"MODEL": trained_model["path"], "SPECTRAL": band_paths(),
                                        "AUXILIARY": [band_paths()[0]], "OUTPUT": "TEMPORARY_OUTPUT"}, ctx)
    assert not ok and "without auxiliary" in msg
    train = QgsApplication.processingRegistry().createAlgorithmById("bdgf:train")
    ok, msg = train.checkParameterValues({"SPECTRAL": band_paths(), "TRAINING": band_paths()[0]}, ctx)
    assert not ok
