"""Polygons -> labelled pixels, classes and styles, split by polygon (engine/labels.py)."""

from __future__ import annotations

import re

import fiona
import numpy as np
import rasterio.features
from rasterio.warp import transform_geom

from engine.data.grid import Modality, RasterStack, ReferenceGrid
from engine.data.labels import drop_invalid, read_polygons, read_qml_style, split_by_polygon
from engine.progress import Reporter
from tests.engine.conftest import box, write_raster, write_vector


class Messages(Reporter):
    """A silent Reporter that keeps the log lines (iterating gives their text)."""

    def __init__(self):
        super().__init__(quiet=True)

    def __iter__(self):
        return iter(f"{level.upper()}: {m}" if level != "info" else m for level, m in self.messages)


def _grid(delmarva_bands):
    return ReferenceGrid.from_raster(next(p for p in delmarva_bands if p.endswith("_B02.tif")))


def test_delmarva_pixel_counts_match_independent_rasterization(delmarva_bands, delmarva_polygons):
    grid = _grid(delmarva_bands)
    px = read_polygons(delmarva_polygons, "class_id", grid)
    # independent count: rasterize the whole crop at once, one burn value per polygon
    with fiona.open(delmarva_polygons, layer="training") as src:
        feats = [(int(f.id), int(f.properties["class_id"]), f.geometry) for f in src]
    ids = rasterio.features.rasterize([(g, fid) for fid, _, g in feats], out_shape=grid.shape,
                                      transform=grid.transform, fill=0, dtype="int32")
    cls_of = {fid: c for fid, c, _ in feats}
    u, n = np.unique(ids[ids > 0], return_counts=True)
    expect_cls: dict = {}
    for fid, cnt in zip(u, n):
        expect_cls[cls_of[int(fid)]] = expect_cls.get(cls_of[int(fid)], 0) + int(cnt)
    assert px.report["conflict_pixels"] == 0 and px.report["duplicate_pixels"] == 0
    assert px.counts() == expect_cls
    assert {c["value"]: c["pixels"] for c in px.report["classes"]} == expect_cls
    assert len(px.classes) == 7 and px.report["n_polygons_used"] == 15
    # each pixel keeps its polygon id, and lies where the independent raster has that id
    np.testing.assert_array_equal(ids[px.rows, px.cols], px.polygon_ids)
    assert px.values.dtype == np.uint16 and px.rows.dtype == np.int32 and px.polygon_ids.dtype == np.int64
    assert (px.class_index() == px.values.astype(int) - 1).all()


def test_class_names_and_colours_from_the_gpkg_style(delmarva_bands, delmarva_polygons, delmarva_dir):
    px = read_polygons(delmarva_polygons, "class_id", _grid(delmarva_bands))
    names = {c.value: c.name for c in px.classes}
    assert names == {1: "Water", 2: "Salt marsh", 3: "Beach / sand", 4: "Forest", 5: "Cropland / grassland",
                     6: "Bare / tilled field", 7: "Built-up"}
    assert px.report["style_source"].startswith("layer_styles")
    # Water's colour from the QML (fill colour "31,120,180,140")
    qml = (delmarva_dir / "training_polygons.qml").read_text(encoding="utf-8")
    sym = re.search(r'<category[^>]*label="Water"[^>]*symbol="(\d+)"', qml).group(1)
    block = qml[qml.index(f'name="{sym}">'):]
    r, g, b = map(int, re.search(r'<prop v="(\d+),(\d+),(\d+),\d+" k="color"', block).groups())
    water = next(c for c in px.classes if c.name == "Water")
    assert water.color == "#{:02x}{:02x}{:02x}".format(r, g, b) == "#1f78b4"
    style = read_qml_style(qml)
    assert style["attr"] == "class_id" and len(style["categories"]) == 7


def test_caller_styles_text_field_and_name_field(delmarva_bands, delmarva_polygons):
    grid = _grid(delmarva_bands)
    styles = {"1": {"name": "Open water", "color": "#0000ff"}}
    px = read_polygons(delmarva_polygons, "class_id", grid, class_styles=styles)
    assert px.classes[0].name == "Open water" and px.classes[0].color == "#0000ff"
    assert px.classes[1].name == "Salt marsh"                     # others still from the gpkg style
    # text class field: values 1..K in sorted order (the style is categorized by class_id, so not used)
    pt = read_polygons(delmarva_polygons, "class_name", grid)
    labels = sorted({"Water", "Salt marsh", "Beach / sand", "Forest", "Cropland / grassland",
                     "Bare / tilled field", "Built-up"})
    assert [c.label for c in pt.classes] == labels and [c.value for c in pt.classes] == list(range(1, 8))
    assert [c.name for c in pt.classes] == labels
    assert len(set(c.color for c in pt.classes)) == 7
    assert len(pt) == len(px)


def test_name_field_and_palette_without_style(tmp_path):
    grid = ReferenceGrid("EPSG:32618", (10, 0, 500000, 0, -10, 4000000), 20, 20)
    p = write_vector(tmp_path / "t.geojson", [
        (box(500000, 3999900, 500050, 3999950), {"cid": 3, "nm": "Forest"}),
        (box(500100, 3999900, 500150, 3999950), {"cid": 9, "nm": "Water"})])
    px = read_polygons(p, "cid", grid, name_field="nm")
    assert [(c.value, c.name) for c in px.classes] == [(3, "Forest"), (9, "Water")]
    assert px.counts() == {3: 25, 9: 25}
    q = read_polygons(p, "cid", grid)
    assert [c.name for c in q.classes] == ["3", "9"] and q.classes[0].color.startswith("#")


def test_overlaps_conflicts_dropped_and_same_class_counted_once(tmp_path):
    grid = ReferenceGrid("EPSG:32618", (10, 0, 500000, 0, -10, 4000000), 30, 30)
    p = write_vector(tmp_path / "o.gpkg", [
        (box(500000, 3999800, 500100, 3999900), {"cid": 1}),      # fid 1: 10 x 10 px
        (box(500050, 3999800, 500150, 3999900), {"cid": 2}),      # fid 2: overlaps fid 1 by 5 x 10 px
        (box(500000, 3999700, 500050, 3999750), {"cid": 1}),      # fid 3
        (box(500020, 3999700, 500050, 3999750), {"cid": 1})])     # fid 4: inside fid 3, same class
    logs = Messages()
    px = read_polygons(p, "cid", grid, reporter=logs)
    assert px.report["conflict_pixels"] == 50
    assert px.report["conflicts"] == [{"fids": [1, 2], "pixels": 50}]
    assert any("fid 1 / fid 2: 50 px" in m for m in logs)
    assert px.report["duplicate_pixels"] == 15
    assert px.counts() == {1: 50 + 25, 2: 50}
    lin = px.rows.astype(int) * 30 + px.cols
    assert np.unique(lin).size == lin.size


def test_reprojected_polygons_shapefile_and_all_touched(tmp_path, delmarva_bands, delmarva_polygons):
    grid = _grid(delmarva_bands)
    ref = read_polygons(delmarva_polygons, "class_id", grid)
    with fiona.open(delmarva_polygons, layer="training") as src:
        feats = [(transform_geom(src.crs, "EPSG:4326", f.geometry), {"class_id": int(f.properties["class_id"])})
                 for f in src]
    for ext in ("geojson", "shp"):
        p = write_vector(tmp_path / f"ll.{ext}", feats, crs="EPSG:4326")
        px = read_polygons(p, "class_id", grid)
        for v, n in ref.counts().items():
            assert abs(px.counts()[v] - n) <= max(3, 0.03 * n)
    at = read_polygons(delmarva_polygons, "class_id", grid, all_touched=True)
    assert all(at.counts()[v] >= n for v, n in ref.counts().items()) and len(at) > len(ref)


def test_split_by_polygon_has_no_polygon_in_both_sets(delmarva_bands, delmarva_polygons):
    px = read_polygons(delmarva_polygons, "class_id", _grid(delmarva_bands))
    logs = Messages()
    tr, va, rep = split_by_polygon(px, 0.3, seed=1, reporter=logs)
    assert np.intersect1d(px.polygon_ids[tr], px.polygon_ids[va]).size == 0
    assert tr.size + va.size == len(px) and np.intersect1d(tr, va).size == 0
    by = {r["value"]: r for r in rep["classes"]}
    assert by[2]["val_polygons"] == 0 and by[3]["val_polygons"] == 0           # single-polygon classes
    assert any("single polygon" in m and "Salt marsh" in m for m in logs)
    for v in (1, 4, 5, 6, 7):                                                     # stratified: all in both sets
        assert by[v]["train_polygons"] >= 1 and by[v]["val_polygons"] >= 1
    assert by[5]["val_polygons"] == 2 and sum(r["val_pixels"] for r in rep["classes"]) == va.size
    tr2, va2, _ = split_by_polygon(px, 0.3, seed=1)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)


def test_bigearthnet_polygons_on_the_s2_grid(ben_pair_87_48):
    with RasterStack([Modality(ben_pair_87_48["s2"], "spectral"), Modality(ben_pair_87_48["s1"], "sar_db")]) as st:
        px = read_polygons(ben_pair_87_48["polygons"], "class_id", st.grid)
        clean = drop_invalid(px, st)
    assert len(px) > 0 and len(px.classes) >= 2
    assert px.rows.max() < 120 and px.cols.max() < 120
    assert all(c["pixels"] > 0 for c in px.report["classes"])
    assert len(clean) <= len(px)


def test_drop_invalid_removes_nodata_pixels(tmp_path):
    a = np.ones((1, 20, 20), np.uint16)
    a[0, :5, :5] = 0
    r = write_raster(tmp_path / "r.tif", a, nodata=0)
    p = write_vector(tmp_path / "p.geojson", [(box(500000, 3999900, 500100, 4000000), {"cid": 1}),
                                              (box(500100, 3999800, 500200, 3999900), {"cid": 2})])
    with RasterStack([Modality([r], "spectral")]) as st:
        px = read_polygons(p, "cid", st.grid)
        out = drop_invalid(px, st, tile=7)
    assert px.counts() == {1: 100, 2: 100} and out.counts() == {1: 75, 2: 100}
    assert out.report["invalid_pixels"] == 25
