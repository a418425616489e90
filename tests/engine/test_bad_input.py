"""Every bad input of the geodata layer raises EngineError naming the file / field / value, with a hint."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from engine.errors import EngineError
from engine.data.grid import Modality, RasterStack, ReferenceGrid, compute_statistics
from engine.data.labels import drop_invalid, read_polygons
from tests.engine.conftest import box, write_raster, write_vector

GRID = ReferenceGrid("EPSG:32618", Affine(10, 0, 500000, 0, -10, 4000000), 20, 20)


def _raster(tmp_path, name="r.tif", **kw):
    return write_raster(tmp_path / name, np.ones((1, 20, 20), np.uint16), **kw)


def _two_classes(tmp_path, name="p.geojson", **kw):
    return write_vector(tmp_path / name, [(box(500000, 3999900, 500050, 3999950), {"cid": 1, "nm": "a"}),
                                          (box(500100, 3999900, 500150, 3999950), {"cid": 2, "nm": "b"})], **kw)


def _raises(fn, *words):
    with pytest.raises(EngineError) as ei:
        fn()
    for w in words:
        assert w in ei.value.message, (w, ei.value.message)
    assert ei.value.hint
    return ei.value


def test_missing_raster(tmp_path):
    missing = str(tmp_path / "nope.tif")
    _raises(lambda: RasterStack([Modality([missing], "spectral")]), "not found", missing)


def test_unreadable_raster(tmp_path):
    bad = tmp_path / "garbage.tif"
    bad.write_bytes(b"this is not a tiff" * 10)
    _raises(lambda: RasterStack([Modality([str(bad)], "spectral")]), "Cannot read raster", str(bad))


def test_missing_and_unreadable_polygons(tmp_path):
    _raises(lambda: read_polygons(str(tmp_path / "nope.gpkg"), "cid", GRID), "not found", "nope.gpkg")
    bad = tmp_path / "bad.geojson"
    bad.write_text("{ not json")
    _raises(lambda: read_polygons(str(bad), "cid", GRID), "Cannot read vector file", "bad.geojson")


def test_raster_without_crs(tmp_path):
    p = _raster(tmp_path, "nocrs.tif", crs=None)
    e = _raises(lambda: RasterStack([Modality([p], "spectral")]), "no coordinate reference system", "nocrs.tif")
    assert "Assign" in e.hint


def test_raster_does_not_overlap_grid(tmp_path):
    spec = _raster(tmp_path, "a.tif")
    far = _raster(tmp_path, "far.tif", transform=Affine(10, 0, 600000, 0, -10, 4000000))
    _raises(lambda: RasterStack([Modality([spec], "spectral"), Modality([far], "elevation")]),
            "does not overlap", "far.tif")


def test_polygons_do_not_overlap_grid(tmp_path):
    p = write_vector(tmp_path / "far.geojson", [(box(700000, 3000000, 700100, 3000100), {"cid": 1}),
                                                (box(700200, 3000000, 700300, 3000100), {"cid": 2})])
    _raises(lambda: read_polygons(p, "cid", GRID), "No polygon", "far.geojson", "overlaps the reference grid")


def test_class_field_missing_lists_fields(tmp_path):
    p = _two_classes(tmp_path)
    e = _raises(lambda: read_polygons(p, "klass", GRID), "'klass'", "p.geojson")
    assert "cid" in e.hint and "nm" in e.hint


def test_non_polygon_geometries(tmp_path):
    p = write_vector(tmp_path / "pts.gpkg", [({"type": "Point", "coordinates": (500010, 3999990)}, {"cid": 1}),
                                             ({"type": "Point", "coordinates": (500110, 3999990)}, {"cid": 2})],
                     geometry="Point")
    _raises(lambda: read_polygons(p, "cid", GRID), "non-polygon", "Point", "fid 1", "pts.gpkg")


def test_class_with_zero_labelled_pixels(tmp_path):
    p = write_vector(tmp_path / "tiny.geojson", [
        (box(500000, 3999900, 500050, 3999950), {"cid": 1}),
        (box(500100, 3999900, 500150, 3999950), {"cid": 2}),
        (box(500101, 3999901, 500104, 3999904), {"cid": 3})])          # smaller than a pixel, no centre inside
    _raises(lambda: read_polygons(p, "cid", GRID), "zero labelled pixels", "value 3", "fid 2")
    px = read_polygons(p, "cid", GRID, allow_empty_classes=True)
    assert px.counts()[3] == 0


def test_fewer_than_two_classes(tmp_path):
    p = write_vector(tmp_path / "one.geojson", [(box(500000, 3999900, 500050, 3999950), {"cid": 4}),
                                                (box(500100, 3999900, 500150, 3999950), {"cid": 4})])
    _raises(lambda: read_polygons(p, "cid", GRID), "1 class", "'cid'", "one.geojson")


def test_class_value_out_of_range(tmp_path):
    p = write_vector(tmp_path / "big.geojson", [(box(500000, 3999900, 500050, 3999950), {"cid": 1}),
                                                (box(500100, 3999900, 500150, 3999950), {"cid": 70000})])
    _raises(lambda: read_polygons(p, "cid", GRID), "70000", "1..65535")
    p0 = write_vector(tmp_path / "zero.geojson", [(box(500000, 3999900, 500050, 3999950), {"cid": 0}),
                                                  (box(500100, 3999900, 500150, 3999950), {"cid": 2})])
    _raises(lambda: read_polygons(p0, "cid", GRID), "Class value 0")


def test_all_pixels_invalid(tmp_path):
    p = write_raster(tmp_path / "nd.tif", np.zeros((1, 20, 20), np.uint16), nodata=0)
    with RasterStack([Modality([p], "spectral")]) as st:
        _raises(lambda: compute_statistics(st), "All pixels are invalid", "nd.tif")
        px = read_polygons(_two_classes(tmp_path), "cid", st.grid)
        _raises(lambda: drop_invalid(px, st), "All 50 labelled pixels are invalid")
    # explicit nodata when the file declares none
    q = write_raster(tmp_path / "nd2.tif", np.full((1, 20, 20), -9999, np.float32))
    with RasterStack([Modality([q], "spectral", nodata=-9999)]) as st:
        _raises(lambda: compute_statistics(st), "All pixels are invalid", "nd2.tif")


def test_band_count_mismatch(tmp_path):
    p = write_raster(tmp_path / "three.tif", np.ones((3, 20, 20), np.uint16))
    _raises(lambda: RasterStack([Modality([p], "spectral", expected_bands=4)]), "3 bands", "expected 4",
            "three.tif")


def test_bad_modalities(tmp_path):
    p = _raster(tmp_path)
    _raises(lambda: Modality([p], "optical"), "Unknown modality kind")
    _raises(lambda: RasterStack([Modality([p], "sar_db")]), "first modality must be spectral")
    _raises(lambda: read_polygons(_two_classes(tmp_path), "cid", GRID, layer="nope"), "Layer 'nope'")
