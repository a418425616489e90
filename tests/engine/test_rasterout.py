"""Classified GeoTIFF writer: tiles, dtype, colour table, category names, QML, atomicity."""

import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from engine.errors import Cancelled, OutputExistsError
from engine.progress import CancelToken, Reporter
from engine.io.rasters import ClassificationWriter, qml_text, read_class_entries, write_qml

CLASSES = [{"value": 3, "name": "Water", "color": "#0000FF"}, {"value": 1, "name": "Forest <old>", "color": "#00ff00"},
           {"value": 7, "name": "Urban", "color": "#ff0000"}]
CRS = "EPSG:32631"
TRANSFORM = from_origin(500000, 4000000, 10, 10)


def _write(tmp_path, classes=CLASSES, conf=True, prob=True, h=300, w=520, tile=128, **kw):
    out = tmp_path / "classes.tif"
    rng = np.random.default_rng(0)
    vals = np.array(sorted(c["value"] for c in classes))
    full = rng.choice(np.concatenate([[0], vals]), size=(h, w)).astype(np.uint16)
    probs = rng.random((len(vals), h, w)).astype(np.float32)
    with ClassificationWriter(out, CRS, TRANSFORM, w, h, classes, confidence_path=tmp_path / "conf.tif" if conf else None,
                              probabilities_path=tmp_path / "prob.tif" if prob else None, **kw) as wr:
        for r in range(0, h, tile):
            for c in range(0, w, tile):
                sl = (slice(r, r + tile), slice(c, c + tile))
                wr.write(r, c, full[sl], probs.max(0)[sl], probs[(slice(None),) + sl])
    return out, full, probs


def test_classification_raster(tmp_path):
    out, full, probs = _write(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["classes.qml", "classes.tif", "classes.tif.aux.xml", "conf.tif", "prob.tif"]
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 0 and src.count == 1
        assert src.profile["tiled"] and src.block_shapes[0] == (256, 256)
        assert src.compression.name.lower() == "deflate"
        assert src.crs.to_epsg() == 32631 and src.transform == TRANSFORM
        np.testing.assert_array_equal(src.read(1), full)
        cmap = src.colormap(1)
        assert cmap[3] == (0, 0, 255, 255) and cmap[1] == (0, 255, 0, 255) and cmap[0][3] == 0
    with rasterio.open(tmp_path / "conf.tif") as src:
        assert src.dtypes[0] == "float32"
        conf = src.read(1)
        m = full > 0
        np.testing.assert_allclose(conf[m], probs.max(0)[m])
        assert np.isnan(conf[~m]).all()
    with rasterio.open(tmp_path / "prob.tif") as src:
        assert src.count == 3 and src.descriptions == ("Forest <old>", "Water", "Urban")
        np.testing.assert_allclose(src.read(2)[m], probs[1][m])
    assert [e["name"] for e in read_class_entries(out)] == ["Forest <old>", "Water", "Urban"]


def test_category_names_gdal(tmp_path):
    gdal = pytest.importorskip("osgeo.gdal")
    out, _, _ = _write(tmp_path, conf=False, prob=False)
    ds = gdal.Open(str(out))
    ds.GetMetadata()  # GDAL 3.6 loads the PAM sidecar lazily
    names = ds.GetRasterBand(1).GetCategoryNames()
    assert names[:8] == ["", "Forest <old>", "", "Water", "", "", "", "Urban"]
    ct = ds.GetRasterBand(1).GetColorTable()
    assert ct.GetColorEntry(7)[:3] == (255, 0, 0)


def test_uint16(tmp_path):
    classes = [{"value": 1, "name": "a", "color": "#010203"}, {"value": 300, "name": "b"}]
    out, full, _ = _write(tmp_path, classes=classes, conf=False, prob=False, h=40, w=40)
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "uint16"
        np.testing.assert_array_equal(src.read(1), full)
    assert [e["value"] for e in read_class_entries(out)] == [1, 300]


def test_qml(tmp_path):
    text = qml_text(CLASSES)
    root = ET.fromstring(text)
    r = root.find("pipe/rasterrenderer")
    assert r.get("type") == "paletted" and r.get("band") == "1"
    entries = r.findall("colorPalette/paletteEntry")
    assert [(e.get("value"), e.get("color"), e.get("label")) for e in entries] == [
        ("1", "#00ff00", "Forest <old>"), ("3", "#0000ff", "Water"), ("7", "#ff0000", "Urban")]
    p = write_qml(tmp_path / "x.qml", CLASSES)
    assert open(p).read() == text


def test_exists_and_overwrite(tmp_path):
    out, _, _ = _write(tmp_path, conf=False, prob=False, h=20, w=20)
    before = out.read_bytes()
    with pytest.raises(OutputExistsError):
        _write(tmp_path, conf=False, prob=False, h=20, w=20)
    assert out.read_bytes() == before
    (tmp_path / "conf.tif").write_text("x")  # existing secondary output: refused before anything is written
    with pytest.raises(OutputExistsError):
        ClassificationWriter(tmp_path / "new.tif", CRS, TRANSFORM, 5, 5, CLASSES, confidence_path=tmp_path / "conf.tif")
    assert not (tmp_path / "new.tif").exists()
    _write(tmp_path, conf=True, prob=False, h=20, w=20, overwrite=True)


def test_cancel_leaves_nothing(tmp_path):
    token = CancelToken()
    rep = Reporter(quiet=True, cancel=token)
    h = w = 64
    with pytest.raises(Cancelled):
        with ClassificationWriter(tmp_path / "c.tif", CRS, TRANSFORM, w, h, CLASSES, confidence_path=tmp_path / "f.tif",
                                  probabilities_path=tmp_path / "p.tif", reporter=rep) as wr:
            wr.write(0, 0, np.ones((32, 32), np.uint8), np.ones((32, 32), np.float32), np.ones((3, 32, 32), np.float32))
            token.cancel()
            wr.write(32, 0, np.ones((32, 32), np.uint8))
    assert os.listdir(tmp_path) == []
