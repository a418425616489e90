"""QGIS 3.22 reads the engine's classification styling: QML paletted renderer and GDAL category names."""

import numpy as np
from rasterio.transform import from_origin

from engine.io.rasters import ClassificationWriter, qml_path

CLASSES = [{"value": 1, "name": "Forest", "color": "#00ff00"}, {"value": 4, "name": "Eau & lac", "color": "#0000ff"}]


def _raster(tmp_path):
    out = tmp_path / "classes.tif"
    with ClassificationWriter(out, "EPSG:32631", from_origin(500000, 4000000, 10, 10), 30, 20, CLASSES) as wr:
        wr.write(0, 0, np.where(np.arange(600).reshape(20, 30) % 2 == 0, 1, 4).astype(np.uint8))
    return out


def test_qml_loads_as_paletted(qgis_app, tmp_path):
    from qgis.core import QgsRasterLayer

    out = _raster(tmp_path)
    layer = QgsRasterLayer(str(out), "classes", "gdal", QgsRasterLayer.LayerOptions(loadDefaultStyle=False))
    assert layer.isValid()
    _, ok = layer.loadNamedStyle(qml_path(out))
    assert ok
    r = layer.renderer()
    assert r.type() == "paletted" and r.band() == 1
    assert [(int(c.value), c.label, c.color.name()) for c in r.classes()] == [
        (1, "Forest", "#00ff00"), (4, "Eau & lac", "#0000ff")]


def test_default_style_and_category_names(qgis_app, tmp_path):
    from qgis.core import QgsRasterLayer

    out = _raster(tmp_path)
    # the QML sidecar is picked up as the default style
    layer = QgsRasterLayer(str(out), "classes")
    assert layer.renderer().type() == "paletted"
    assert [c.label for c in layer.renderer().classes()] == ["Forest", "Eau & lac"]
    # without the QML, QGIS builds the palette from the colour table and the GDAL category names (PAM sidecar)
    bare = QgsRasterLayer(str(out), "bare", "gdal", QgsRasterLayer.LayerOptions(loadDefaultStyle=False))
    labels = {int(c.value): c.label for c in bare.renderer().classes()}
    assert labels[1] == "Forest" and labels[4] == "Eau & lac"
