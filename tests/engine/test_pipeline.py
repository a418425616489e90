"""End-to-end engine runs on the embedded real Sentinel-2 Delmarva crop (fast profile, CPU, tiny budgets).

pretrain -> train -> classify -> assess through the command line, plus the Python API for the tiling check.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

ROOT = Path(__file__).resolve().parents[2]
DELMARVA = ROOT / "resources" / "sample_data" / "delmarva_s2"
BANDS = sorted(str(p) for p in DELMARVA.glob("s2_B*.tif"))
POLYGONS = str(DELMARVA / "training_polygons.gpkg")
# 192 x 128 px around the Water and Cropland polygons of rows 428-550, cols 64-192
EXTENT = ["441130", "4172060", "443050", "4173340"]


def run_engine(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"engine {args[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}")
    return proc


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """pretrain -> train -> classify (extent) -> assess through the CLI with --json-progress."""
    d = tmp_path_factory.mktemp("workflow")
    common = ["--json-progress", "--device", "cpu", "--seed", "0"]
    pre = run_engine("pretrain", "--spectral", *BANDS, "--output", str(d / "pre.safetensors"),
                     "--iterations", "6", *common)
    train = run_engine("train", "--spectral", *BANDS, "--training", POLYGONS, "--class-field", "class_id",
                       "--pretrained", str(d / "pre.safetensors"), "--output", str(d / "model.safetensors"),
                       "--report", str(d / "train.html"), "--epochs", "4", *common)
    classify = run_engine("classify", "--model", str(d / "model.safetensors"), "--spectral", *BANDS,
                          "--output", str(d / "classes.tif"), "--confidence", str(d / "confidence.tif"),
                          "--extent", *EXTENT, *common)
    assess = run_engine("assess", "--classification", str(d / "classes.tif"), "--reference", POLYGONS,
                        "--class-field", "class_id", "--report", str(d / "assess.html"),
                        "--json", str(d / "assess.json"), "--table", str(d / "assess.csv"), *common)
    return {"dir": d, "pre": events(pre.stdout), "train": events(train.stdout),
            "classify": events(classify.stdout), "assess": events(assess.stdout)}


def test_json_progress_protocol(workflow):
    for stage in ("pre", "train", "classify", "assess"):
        evs = workflow[stage]
        assert evs[-1]["event"] == "done", stage
        progress = [e["value"] for e in evs if e["event"] == "progress"]
        assert progress and all(0 <= v <= 100 for v in progress), stage
        assert any(e["event"] == "log" for e in evs), stage


def test_training_beats_chance_and_reports_random_forest(workflow):
    done = workflow["train"][-1]["outputs"]
    m = done["metrics"]
    # 7 classes: chance is ~0.14; the held-out polygons are classified far better than that
    assert m["oa"] > 0.5 and m["kappa"] > 0.3
    assert 0 <= m["rf_oa"] <= 1 and "rf_kappa" in m
    html = (workflow["dir"] / "train.html").read_text()
    assert "Random forest" in html and "BDGF" in html
    assert "Cross-validation grouped by polygon" in html
    # default validation cv:5 -> K folds (fewer when a class has fewer polygons), then the final fit
    folds = [e for e in workflow["train"] if e["event"] == "metric" and e["name"] == "cv_fold"]
    assert len(folds) == m["folds"] >= 2 and all(0 <= e["oa"] <= 1 for e in folds)
    epochs = [e for e in workflow["train"] if e["event"] == "metric" and e["name"] == "epoch"]
    assert [e["value"] for e in epochs] == [1, 2, 3, 4] * (m["folds"] + 1)


def test_classification_raster_is_styled(workflow):
    d = workflow["dir"]
    with rasterio.open(d / "classes.tif") as ds:
        assert ds.count == 1 and ds.dtypes[0] == "uint8" and ds.nodata == 0
        assert (ds.width, ds.height) == (192, 128)
        assert ds.crs.to_epsg() == 32618
        cmap = ds.colormap(1)
        data = ds.read(1)
    assert cmap[1][:3] == (0x1F, 0x78, 0xB4)          # Water colour of the training layer's style
    assert set(np.unique(data)) <= set(range(0, 8)) and (data > 0).mean() > 0.95
    from osgeo import gdal

    ds = gdal.Open(str(d / "classes.tif"))
    ds.GetMetadata()                                  # GDAL 3.6 loads the .aux.xml lazily
    names = ds.GetRasterBand(1).GetCategoryNames()
    ds = None
    assert names[1] == "Water" and names[7] == "Built-up"
    qml = (d / "classes.qml").read_text()
    assert 'type="paletted"' in qml and "Salt marsh" in qml
    with rasterio.open(d / "confidence.tif") as ds:
        conf = ds.read(1)
    assert np.nanmax(conf) <= 1.0 + 1e-6 and np.nanmin(conf) >= 1.0 / 7 - 1e-6


def test_assessment_reports_agree(workflow):
    d = workflow["dir"]
    result = json.loads((d / "assess.json").read_text())
    html = (d / "assess.html").read_text()
    embedded = html.split("id='bdgf-result'>", 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded.replace("<\\/", "</"))["accuracy"]["oa"] == result["accuracy"]["oa"]
    acc = result["accuracy"]
    cm = np.array(acc["confusion_matrix"])
    assert cm.sum() == acc["n"] > 0
    assert abs(np.trace(cm) / cm.sum() - acc["oa"]) < 1e-9
    assert (d / "assess.csv").exists()
    assert workflow["assess"][-1]["outputs"]["report"].endswith("assess.html")


def test_existing_output_is_refused(workflow):
    d = workflow["dir"]
    before = (d / "classes.tif").read_bytes()
    proc = run_engine("classify", "--model", str(d / "model.safetensors"), "--spectral", *BANDS, "--output",
                      str(d / "classes.tif"), "--extent", *EXTENT, "--json-progress", check=False)
    assert proc.returncode == 4
    err = events(proc.stdout)[-1]
    assert err["event"] == "error" and "classes.tif" in err["message"] and "--overwrite" in err["hint"]
    assert (d / "classes.tif").read_bytes() == before


def test_sigterm_during_classify_leaves_no_output(workflow, tmp_path):
    d = workflow["dir"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    out = tmp_path / "whole.tif"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "classify", "--model", str(d / "model.safetensors"),
                             "--spectral", *BANDS, "--output", str(out), "--confidence", str(tmp_path / "c.tif"),
                             "--json-progress", "--device", "cpu", "--batch-size", "256"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:   # wait until classification has really started
            if '"stage": "classify"' in line:
                break
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = proc.wait(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 3
    assert elapsed < 15
    assert list(tmp_path.iterdir()) == []          # neither the outputs nor their temporary files


def test_tiled_classification_equals_untiled(workflow, tmp_path):
    from engine import api
    from engine.data.grid import Modality

    model = str(workflow["dir"] / "model.safetensors")
    extent = {"bounds": (444000.0, 4170600.0, 444640.0, 4171240.0), "crs": None}   # 64 x 64 px
    outs = {}
    for tile in (24, 1024):   # 24-px tiles put tile boundaries through the window
        path = tmp_path / f"t{tile}.tif"
        api.classify(model, Modality(BANDS, "spectral"), [], str(path), confidence=str(tmp_path / f"c{tile}.tif"),
                     extent=extent, device="cpu", tile=tile)
        with rasterio.open(path) as a, rasterio.open(tmp_path / f"c{tile}.tif") as c:
            outs[tile] = (a.read(1), c.read(1))
    assert outs[24][0].shape == (64, 64)
    np.testing.assert_array_equal(outs[24][0], outs[1024][0])
    np.testing.assert_allclose(outs[24][1], outs[1024][1], atol=1e-5)


def test_classify_refuses_inputs_that_do_not_match_the_model(workflow, tmp_path):
    proc = run_engine("classify", "--model", str(workflow["dir"] / "model.safetensors"), "--spectral", *BANDS[:12],
                      "--output", str(tmp_path / "x.tif"), "--json-progress", check=False)
    assert proc.returncode == 2
    err = events(proc.stdout)[-1]
    assert err["event"] == "error" and "12 bands" in err["message"] and "13" in err["message"]
    assert not (tmp_path / "x.tif").exists()


def test_pretrain_file_is_refused_by_classify(workflow, tmp_path):
    proc = run_engine("classify", "--model", str(workflow["dir"] / "pre.safetensors"), "--spectral", *BANDS,
                      "--output", str(tmp_path / "x.tif"), "--json-progress", check=False)
    assert proc.returncode == 2
    assert "not a trained classifier" in events(proc.stdout)[-1]["message"]
