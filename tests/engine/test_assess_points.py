"""Assessment on a labelled point sample: the Olofsson et al. (2014) worked example through files, and a
design -> label -> assess round trip on a map with a known truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from engine.io.points import read_points, write_points
from engine.io.rasters import ClassificationWriter
from engine.sampling import assess_points, design_sample

from .test_sampling import OLOFSSON_COUNTS, OLOFSSON_PIXELS

ROOT = Path(__file__).resolve().parents[2]
CLASSES = [{"value": 1, "name": "Deforestation", "color": "#e31a1c"},
           {"value": 2, "name": "Forest gain", "color": "#33a02c"},
           {"value": 3, "name": "Stable forest", "color": "#1b7837"},
           {"value": 4, "name": "Stable non-forest", "color": "#fdbf6f"}]
CRS = "EPSG:32618"


def _write_map(path, values, pixel=30.0):
    h, w = values.shape
    with ClassificationWriter(path, CRS, from_origin(500000, 4000000, pixel, pixel), w, h, CLASSES) as wr:
        wr.write(0, 0, values)


@pytest.fixture
def olofsson_files(tmp_path):
    """640 labelled points (one per 30 m pixel of a 32 x 20 map) reproducing Table 8 of Olofsson et al. 2014,
    with the design's stratum sizes (10 million pixels) in the point fields, not in the small map."""
    strata, refs = [], []
    for i in range(4):
        for j in range(4):
            strata += [i + 1] * int(OLOFSSON_COUNTS[i, j])
            refs += [j + 1] * int(OLOFSSON_COUNTS[i, j])
    mapped = np.array(strata, np.uint8).reshape(20, 32)
    classes = str(tmp_path / "map.tif")
    _write_map(classes, mapped)
    rows, cols = np.divmod(np.arange(640), 32)
    xs, ys = 500000 + (cols + 0.5) * 30, 4000000 - (rows + 0.5) * 30
    points = str(tmp_path / "sample.gpkg")
    write_points(points, rasterio.crs.CRS.from_string(CRS).to_wkt(), xs, ys,
                 [("stratum", "int"), ("stratum_pixels", "int"), ("reference", "str:40")],
                 [{"stratum": s, "stratum_pixels": OLOFSSON_PIXELS[s], "reference": CLASSES[r - 1]["name"]}
                  for s, r in zip(strata, refs)])
    return classes, points


def test_assess_points_reproduces_olofsson_worked_example(olofsson_files):
    classes, points = olofsson_files
    res = assess_points(classes, points, "reference")          # text labels matched to the class names
    area = res["area"]
    assert res["samples"]["used"] == 640 and res["samples"]["design_strata"]
    assert area["oa"] == pytest.approx(0.947, abs=0.0005) and area["oa_ci95"] == pytest.approx(0.018, abs=0.0005)
    pc = {c["label"]: c for c in area["per_class"]}
    for k, (ua, ua_ci, pa, ha, ha_ci) in {1: (0.88, 0.07, 0.75, 21_158, 6_158), 2: (0.73, 0.10, 0.85, 11_686, 3_756),
                                          3: (0.93, 0.04, 0.93, 285_770, 15_510),
                                          4: (0.96, 0.02, 0.96, 581_386, 16_282)}.items():
        assert pc[k]["users_accuracy"] == pytest.approx(ua, abs=0.005)
        assert pc[k]["users_accuracy_ci95"] == pytest.approx(ua_ci, abs=0.005)
        assert pc[k]["producers_accuracy"] == pytest.approx(pa, abs=0.005)
        assert pc[k]["area_ha"] == pytest.approx(ha, abs=1.0)
        assert pc[k]["area_ha_ci95"] == pytest.approx(ha_ci, abs=2.0)
    assert pc[1]["producers_accuracy_ci95"] == pytest.approx(0.21, abs=0.005)
    # the report's headline accuracy is the stratified estimate, not the sample proportion 587 / 640
    assert res["accuracy"]["oa"] == pytest.approx(area["oa"])
    assert res["unweighted_accuracy"]["oa"] == pytest.approx(587 / 640)


def test_assess_command_on_points_writes_reports(olofsson_files, tmp_path):
    classes, points = olofsson_files
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "a.json"
    proc = subprocess.run([sys.executable, "-m", "engine", "assess", "--classification", classes, "--reference", points,
                           "--class-field", "reference", "--report", str(tmp_path / "a.html"), "--table",
                           str(tmp_path / "a.csv"), "--json", str(out), "--json-progress"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = json.loads(proc.stdout.strip().splitlines()[-1])
    assert done["event"] == "done"
    assert done["outputs"]["metrics"]["oa"] == pytest.approx(0.947, abs=0.0005)
    html = (tmp_path / "a.html").read_text(encoding="utf-8")
    assert "Stable non-forest" in html and "581" in html
    assert json.loads(out.read_text())["area"]["per_class"][0]["area_ha"] == pytest.approx(21_158, abs=1)


def test_design_label_assess_round_trip(tmp_path):
    """Design on a map whose truth is known, label the points from the truth, assess: the truth is inside the
    95 % intervals, and a map edited after the design is still assessed with the design's strata."""
    rng = np.random.default_rng(0)
    truth = np.ones((200, 200), np.uint8)
    truth[:, 120:] = 3
    truth[50:80, 20:60] = 2                                     # a rare class, 3 % of the area
    mapped = truth.copy()
    flip = rng.random(truth.shape) < 0.1
    mapped[flip] = rng.choice([1, 2, 3, 4], int(flip.sum()))
    map_path = str(tmp_path / "map.tif")
    _write_map(map_path, mapped, pixel=10.0)
    sample = str(tmp_path / "design.gpkg")
    res = design_sample(map_path, sample, target_se=0.02, expected_ua=0.85, min_per_class=30, min_distance=25.0,
                        seed=2)
    by_value = {s["value"]: s for s in res["strata"]}
    assert all(s["drawn"] == s["planned"] >= 30 for s in res["strata"])
    assert by_value[2]["pixels"] == int((mapped == 2).sum())
    pts = read_points(sample, ["stratum", "stratum_pixels", "reference", "map_class"])
    assert all(r is None for r in pts["reference"])             # empty, ready to label
    with rasterio.open(map_path) as src:
        rc = [src.index(x, y) for x, y in zip(pts["x"], pts["y"])]
    assert all(mapped[r, c] == s for (r, c), s in zip(rc, pts["stratum"]))
    xy = np.c_[pts["x"], pts["y"]]
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) + np.eye(len(xy)) * 1e9
    assert d.min() >= 25.0
    # label from the truth and assess the map
    import fiona

    labelled = str(tmp_path / "labelled.gpkg")
    with fiona.open(sample) as src, fiona.open(labelled, "w", **src.meta) as dst:
        for f, (r, c) in zip(src, rc):
            props = dict(f.properties)
            props["reference"] = int(truth[r, c])
            dst.write({"geometry": f.geometry, "properties": props})
    out = assess_points(map_path, labelled, "reference")
    true_oa = float((mapped == truth).mean())
    assert abs(out["area"]["oa"] - true_oa) <= out["area"]["oa_ci95"] * 1.5
    true_area = {k: float((truth == k).sum()) * 100 / 1e4 for k in (1, 2, 3)}
    for c in out["area"]["per_class"][:3]:
        assert abs(c["area_ha"] - true_area[c["label"]]) <= 1.5 * c["area_ha_ci95"] + 1e-9
    # a map cleaned after the design: the strata (and their sizes) still come from the design
    edited = mapped.copy()
    edited[mapped == 4] = 1
    edited_path = str(tmp_path / "edited.tif")
    _write_map(edited_path, edited, pixel=10.0)
    out2 = assess_points(edited_path, labelled, "reference")
    assert {s["stratum"]: s["population_pixels"] for s in out2["area"]["strata"]} == \
        {s["value"]: s["pixels"] for s in res["strata"]}
