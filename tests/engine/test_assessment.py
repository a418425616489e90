"""Accuracy assessment on a synthetic classification with a known answer; HTML / JSON / CSV reports."""

import csv
import json

import numpy as np
import pytest
from rasterio.transform import from_origin

from engine.assess import assess, pixel_area_m2
from engine.errors import EngineError, OutputExistsError
from engine.metrics import area_adjusted
from engine.io.rasters import ClassificationWriter
from engine.io.reports import render, write_csv_table, write_html_report, write_json_report
from tests.engine.conftest import embedded_result

X0, Y0, RES = 500000.0, 4000000.0, 10.0
CLASSES = [{"value": 1, "name": "Forest", "color": "#00aa00"}, {"value": 2, "name": "Water", "color": "#0000ff"},
           {"value": 3, "name": "Urban", "color": "#ff0000"}]


def make_map(path, h=60, w=80):
    """cols < 40: Forest (1); cols >= 40: Water (2) except rows < 10: Urban (3); rows 50-59 x cols 0-9: nodata."""
    a = np.ones((h, w), np.uint8)
    a[:, 40:] = 2
    a[:10, 40:] = 3
    a[50:60, 0:10] = 0
    with ClassificationWriter(path, "EPSG:32631", from_origin(X0, Y0, RES, RES), w, h, CLASSES) as wr:
        wr.write(0, 0, a)
    return a


def rect(r0, r1, c0, c1):
    """Polygon covering pixel rows r0..r1-1, cols c0..c1-1 (edges on pixel edges)."""
    x0, x1, y0, y1 = X0 + c0 * RES, X0 + c1 * RES, Y0 - r0 * RES, Y0 - r1 * RES
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def make_reference(path, extra=False):
    feats = [(1, "forest", rect(10, 20, 30, 50)), (2, "Water ", rect(20, 30, 60, 70)),
             (3, "URBAN", rect(5, 15, 70, 80)), (1, "Forest", rect(50, 55, 5, 15))]
    if extra:
        feats.append((9, "Bare soil", rect(40, 42, 20, 25)))
    fc = {"type": "FeatureCollection",
          "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}},
          "features": [{"type": "Feature", "properties": {"code": c, "name": n}, "geometry": g} for c, n, g in feats]}
    path.write_text(json.dumps(fc))


# expected: rows = reference [1, 2, 3], columns = map [1, 2, 3]
EXPECTED_CM = [[125, 100, 0], [0, 100, 0], [0, 50, 50]]
EXPECTED_COUNTS = {"1": 2300, "2": 2000, "3": 400}


@pytest.fixture
def case(tmp_path):
    make_map(tmp_path / "map.tif")
    make_reference(tmp_path / "ref.geojson")
    return tmp_path


def test_integer_field(case):
    res = assess(case / "map.tif", case / "ref.geojson", "code")
    acc = res["accuracy"]
    assert acc["labels"] == [1, 2, 3] and acc["names"] == ["Forest", "Water", "Urban"]
    assert acc["confusion_matrix"] == EXPECTED_CM
    assert acc["n"] == 425 and acc["oa"] == pytest.approx(275 / 425)
    assert acc["per_class"][0]["producers_accuracy"] == pytest.approx(125 / 225)
    assert acc["per_class"][1]["users_accuracy"] == pytest.approx(100 / 250)
    assert res["samples"] == {"reference_pixels": 450, "ignored_nodata": 25, "used": 425, "polygons": 4}
    assert res["map_pixel_counts"] == EXPECTED_COUNTS
    assert res["grid"]["pixel_area_m2"] == pytest.approx(100.0)
    ref = area_adjusted(np.array(EXPECTED_CM), [2300, 2000, 400], 100.0, [1, 2, 3], ["Forest", "Water", "Urban"])
    assert res["area"]["oa"] == pytest.approx(ref["oa"]) and res["area"]["oa_ci95"] == pytest.approx(ref["oa_ci95"])
    for got, exp in zip(res["area"]["per_class"], ref["per_class"]):
        assert got["area_ha"] == pytest.approx(exp["area_ha"]) and got["map_pixels"] == exp["map_pixels"]
    assert res["area"]["total_area_ha"] == pytest.approx(4700 * 100 / 1e4)
    assert sum(c["area_ha"] for c in res["area"]["per_class"]) == pytest.approx(47.0)
    assert any("nodata" in w for w in res["warnings"])
    json.dumps(res, allow_nan=False)  # JSON-serialisable


def test_text_field_matches_names(case):
    res = assess(case / "map.tif", case / "ref.geojson", "name")
    assert res["accuracy"]["labels"] == [1, 2, 3]
    assert res["accuracy"]["confusion_matrix"] == EXPECTED_CM


def test_text_field_unmatched_class(tmp_path):
    make_map(tmp_path / "map.tif")
    make_reference(tmp_path / "ref.geojson", extra=True)
    res = assess(tmp_path / "map.tif", tmp_path / "ref.geojson", "name")
    acc = res["accuracy"]
    assert acc["names"] == ["Forest", "Water", "Urban", "Bare soil"]
    assert acc["confusion_matrix"][3] == [10, 0, 0, 0]
    assert any("Bare soil" in w for w in res["warnings"])


def test_text_field_without_names(tmp_path):
    import rasterio
    make_map(tmp_path / "m.tif")
    # the same map without any class names
    with rasterio.open(tmp_path / "m.tif") as src:
        prof, data = src.profile, src.read()
    with rasterio.open(tmp_path / "plain.tif", "w", **prof) as dst:
        dst.write(data)
    make_reference(tmp_path / "ref.geojson")
    with pytest.raises(EngineError, match="matches a class name"):
        assess(tmp_path / "plain.tif", tmp_path / "ref.geojson", "name")
    res = assess(tmp_path / "plain.tif", tmp_path / "ref.geojson", "code")
    assert res["accuracy"]["confusion_matrix"] == EXPECTED_CM


def test_bad_inputs(case):
    with pytest.raises(EngineError):
        assess(case / "missing.tif", case / "ref.geojson", "code")
    with pytest.raises(EngineError):
        assess(case / "map.tif", case / "ref.geojson", "no_such_field")


def test_extent(case):
    # only the left half: the Forest polygons' left parts, no Water/Urban map pixels
    res = assess(case / "map.tif", case / "ref.geojson", "code", extent=(X0, Y0 - 600, X0 + 400, Y0))
    assert res["map_pixel_counts"] == {"1": 2300}
    assert res["accuracy"]["confusion_matrix"] == [[125]]


def test_pixel_area_geographic():
    from rasterio.crs import CRS
    a, note = pixel_area_m2(CRS.from_epsg(4326), from_origin(0, 1, 0.001, 0.001), 2000)
    assert a == pytest.approx(111319.49 ** 2 * 1e-6, rel=1e-3) and "geographic" in note


def test_reports_agree(case):
    res = assess(case / "map.tif", case / "ref.geojson", "code")
    html = write_html_report(case / "r.html", res, "Test report")
    js = write_json_report(case / "r.json", res)
    tab = write_csv_table(case / "r.csv", res)
    text = open(html, encoding="utf-8").read()
    data = json.load(open(js, encoding="utf-8"))
    assert embedded_result(text) == data
    assert data["accuracy"]["oa"] == pytest.approx(res["accuracy"]["oa"])
    assert "64.7 %" in text  # OA 275/425
    assert "Test report" in text and "Confusion matrix" in text and "Olofsson" in text
    assert "http://" not in text.split("<script")[0] and "https://" not in text  # self-contained
    rows = list(csv.reader(open(tab, encoding="utf-8-sig")))
    assert rows[1] == ["reference \\ map", "Forest", "Water", "Urban", "total"]
    assert rows[2] == ["Forest", "125", "100", "0", "225"]
    oa_row = next(r for r in rows if r and r[0] == "oa")
    assert float(oa_row[1]) == pytest.approx(275 / 425)
    with pytest.raises(OutputExistsError):
        write_json_report(case / "r.json", res)


def test_render_training_sections():
    acc = {"n": 10, "oa": 0.9, "aa": 0.85, "kappa": 0.8, "labels": [1, 2], "names": ["a", "b"],
           "confusion_matrix": [[5, 1], [0, 4]], "per_class": []}
    base = dict(acc, oa=0.7)
    text = render({"accuracy": acc, "baseline": {"name": "Random forest", "accuracy": base},
                   "history": [{"epoch": 1, "loss": 1.0, "val_oa": 0.5}, {"epoch": 2, "loss": 0.5, "val_oa": 0.8}],
                   "settings": {"profile": "fast", "network": {"width": 64}},
                   "sections": [{"title": "Extra", "text": "hello <b>", "table": {"columns": ["x"], "rows": [[1]]}}],
                   "notes": ["n1"]}, title="Training")
    assert "Random forest" in text and "70.0 %" in text and "90.0 %" in text
    assert text.count("<svg") == 2 and "network.width" in text and "hello &lt;b&gt;" in text


def test_render_other_dicts():
    text = render({"split": {"train_polygons": 12, "per_class": {"1": 3}}, "baseline": None, "classes": []})
    assert "Split" in text and "per_class.1" in text
