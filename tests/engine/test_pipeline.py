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

from tests.engine.conftest import embedded_result

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
                       "--report", str(d / "train.html"), "--epochs", "4", "--set", "training.checkpoint_every=3",
                       *common)
    classify = run_engine("classify", "--model", str(d / "model.safetensors"), "--spectral", *BANDS,
                          "--output", str(d / "classes.tif"), "--confidence", str(d / "confidence.tif"),
                          "--applicability", str(d / "aoa.tif"), "--extent", *EXTENT, *common)
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
    # the same fold networks, other read-out; the model keeps the fused classifier unless the folds put the heads'
    # mean more than the fast profile's readout_margin ahead
    assert {m["prediction"], m["alt_prediction"]} == {"fused", "heads"} and 0 <= m["alt_oa"] <= 1
    assert m["prediction"] == "fused" or m["oa"] >= m["alt_oa"] + 0.01
    html = (workflow["dir"] / "train.html").read_text().replace("&#x27;", "'")
    assert "BDGF OA, " + ("heads' mean" if m["alt_prediction"] == "heads" else "fused classifier") in html
    assert "Random forest" in html and "BDGF" in html
    assert "Cross-validation grouped by polygon" in html
    # default validation cv:5 -> K folds (fewer when a class has fewer polygons), then the final fit
    folds = [e for e in workflow["train"] if e["event"] == "metric" and e["name"] == "cv_fold"]
    assert len(folds) == m["folds"] >= 2 and all(0 <= e["oa"] <= 1 for e in folds)
    epochs = [e for e in workflow["train"] if e["event"] == "metric" and e["name"] == "epoch"]
    assert [e["value"] for e in epochs] == [1, 2, 3, 4] * (m["folds"] + 1)


def test_train_set_overrides_a_profile_field_and_the_model_file_records_it(workflow):
    from engine.contract import read_metadata_dict

    meta = read_metadata_dict(str(workflow["dir"] / "model.safetensors"))
    assert meta["training_config"]["checkpoint_every"] == 3            # --set training.checkpoint_every=3
    assert meta["training_config"]["epochs"] == 4 and meta["training_config"]["guidance_dropout"] == 0.0
    logs = " ".join(str(e.get("message", "")) for e in workflow["train"])
    assert "Profile overrides: training.checkpoint_every=3" in logs


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


def test_area_of_applicability_raster(workflow):
    """classify --applicability: the dissimilarity index of every classified pixel, the model's threshold in a
    tag, the count outside it in the result; the training polygons of the extent lie inside it."""
    d = workflow["dir"]
    done = workflow["classify"][-1]["outputs"]
    with rasterio.open(d / "aoa.tif") as ds:
        assert ds.descriptions == ("dissimilarity_index",) and ds.dtypes[0] == "float32"
        threshold = float(ds.tags()["BDGF_AOA_THRESHOLD"])
        di = ds.read(1)
    with rasterio.open(d / "classes.tif") as ds:
        classes = ds.read(1)
        transform, shape = ds.transform, ds.shape
    assert threshold == pytest.approx(done["applicability_threshold"]) and 0 < threshold < 1
    assert np.isnan(di[classes == 0]).all() and np.isfinite(di[classes > 0]).all() and np.nanmin(di) >= 0
    assert done["outside_applicability"] == int(np.count_nonzero(di > threshold))
    # per predicted class: the outside pixels of each class value, and the mapped area of a 10 x 10 m grid
    far = di > threshold
    assert done["outside_by_class"] == {str(v): int(np.count_nonzero(far & (classes == v))) for v in range(1, 8)}
    assert done["pixel_area_m2"] == pytest.approx(100.0)
    logs = [e["message"] for e in workflow["classify"] if e["event"] == "log"]
    water_ha = np.count_nonzero(classes == 1) * 100.0 / 1e4
    assert any(m.startswith("Mapped area by class: Water ") and f"= {water_ha:,.1f} ha" in m for m in logs), logs
    by_class = next(m for m in logs if m.startswith("Outside the area of applicability, by predicted class"))
    assert "Built-up" in by_class and "Salt marsh" in by_class
    import fiona
    from rasterio.features import rasterize

    with fiona.open(POLYGONS) as src:
        inside_polygons = rasterize([(f.geometry, 1) for f in src], out_shape=shape, transform=transform) > 0
    assert inside_polygons.sum() > 500
    # training pixels: DI 0 up to the resampling of the 20/60 m bands at the crop border (not the case here)
    assert (di[inside_polygons] <= threshold).mean() > 0.99
    train = workflow["train"][-1]["outputs"]
    html = (d / "train.html").read_text()
    assert "Applicability" in html and "reference_pixels" in html and train["output"].endswith("model.safetensors")
    from engine.contract import has_applicability, read_metadata_dict

    meta = read_metadata_dict(str(d / "model.safetensors"))      # what the plugin's pre-flight reads
    assert has_applicability(meta) and meta["report"]["applicability"]["threshold"] == pytest.approx(threshold,
                                                                                                   abs=1e-5)


def test_suggest_by_dissimilarity(workflow, tmp_path):
    """suggest --measure dissimilarity ranks by the dissimilarity index and records it on every point."""
    import fiona

    d = workflow["dir"]
    out = tmp_path / "suggest.gpkg"
    run_engine("suggest", "--model", str(d / "model.safetensors"), "--spectral", *BANDS, "--output", str(out),
               "--measure", "dissimilarity", "--count", "5", "--min-distance", "200", "--extent", *EXTENT,
               "--device", "cpu")
    with fiona.open(out) as src:
        points = [dict(f.properties) for f in src]
    with rasterio.open(d / "aoa.tif") as ds:
        top = float(np.nanmax(ds.read(1)))
    assert len(points) == 5 and [p["rank"] for p in points] == [1, 2, 3, 4, 5]
    values = [p["dissimilarity"] for p in points]
    assert values == sorted(values, reverse=True) and values == [p["uncertainty"] for p in points]
    assert values[0] == pytest.approx(top, rel=1e-4)          # rank 1 is the least familiar pixel of the extent


def test_suggest_on_the_fast_path_picks_what_the_eager_model_picks(workflow, tmp_path):
    """suggest classifies with classify's fast path and coarse-to-fine by default: the uncertain pixels it picks
    are classified by the network itself, so it suggests the same points, classes and uncertainties as the
    eager reference model."""
    import fiona

    from engine import api
    from engine.data.grid import Modality

    d = workflow["dir"]
    picks = {}
    for backend in ("auto", "eager"):
        out = tmp_path / f"suggest_{backend}.gpkg"
        api.suggest(str(d / "model.safetensors"), Modality(BANDS, "spectral"), [], str(out), count=8,
                    min_distance=100, extent={"bounds": tuple(float(v) for v in EXTENT), "crs": None},
                    device="cpu", backend=backend)
        with fiona.open(out) as src:
            picks[backend] = [(f.geometry["coordinates"], dict(f.properties)) for f in src]
    assert len(picks["auto"]) == len(picks["eager"]) == 8
    for (xy_fast, fast), (xy_eager, eager) in zip(picks["auto"], picks["eager"]):
        assert xy_fast == xy_eager and fast["pred_class"] == eager["pred_class"]
        assert fast["uncertainty"] == pytest.approx(eager["uncertainty"], abs=1e-4)


def test_model_without_training_pixels_has_no_applicability(workflow, tmp_path):
    """A model file written before the engine kept its training pixels still classifies; asking it for the area
    of applicability is refused before any tile is classified, naming the file and the fix."""
    from engine.io.artifact import load_model, save_model

    d = workflow["dir"]
    tensors, meta = load_model(str(d / "model.safetensors"))
    old = tmp_path / "old.safetensors"
    save_model(str(old), {k: v for k, v in tensors.items() if not k.startswith("applicability.")}, meta)
    proc = run_engine("classify", "--model", str(old), "--spectral", *BANDS, "--output", str(tmp_path / "c.tif"),
                      "--applicability", str(tmp_path / "a.tif"), "--extent", *EXTENT, "--json-progress",
                      check=False)
    assert proc.returncode == 2
    err = events(proc.stdout)[-1]
    assert "old.safetensors" in err["message"] and "train it again" in err["hint"]
    assert not (tmp_path / "c.tif").exists() and not (tmp_path / "a.tif").exists()
    run_engine("classify", "--model", str(old), "--spectral", *BANDS, "--output", str(tmp_path / "c.tif"),
               "--extent", *EXTENT)
    assert (tmp_path / "c.tif").exists()


def test_assessment_reports_agree(workflow):
    d = workflow["dir"]
    result = json.loads((d / "assess.json").read_text())
    html = (d / "assess.html").read_text()
    assert embedded_result(html)["accuracy"]["oa"] == result["accuracy"]["oa"]
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


def test_classify_reads_the_same_model_out_by_its_branch_heads(workflow, tmp_path):
    """``--prediction heads``: the same weights read out by the mean of the branch heads' class probabilities (the
    training report gives both read-outs under the same folds); the model's own read-out (the fused classifier
    unless cross-validation chose the heads' mean) is the default. A model whose heads never learned the classes
    is refused before any tile, naming the file and the fix."""
    from engine.contract import read_metadata_dict
    from engine.io.artifact import load_model, save_model

    model = str(workflow["dir"] / "model.safetensors")
    own = read_metadata_dict(model)["network_config"]["prediction"]
    other = "heads" if own == "fused" else "fused"
    maps, logs = {}, {}
    for pred in ("fused", "heads"):
        proc = run_engine("classify", "--model", model, "--spectral", *BANDS, "--output", str(tmp_path / f"{pred}.tif"),
                          "--confidence", str(tmp_path / f"conf_{pred}.tif"), "--extent", *EXTENT,
                          "--prediction", pred, "--device", "cpu", "--json-progress")
        logs[pred] = " ".join(str(e.get("message", "")) for e in events(proc.stdout))
        with rasterio.open(tmp_path / f"{pred}.tif") as a, rasterio.open(tmp_path / f"conf_{pred}.tif") as c:
            maps[pred] = (a.read(1), c.read(1))
    with rasterio.open(workflow["dir"] / "classes.tif") as ds:
        np.testing.assert_array_equal(maps[own][0], ds.read(1))      # no --prediction: the model's own
    assert "Prediction: " in logs[other] and "Prediction:" not in logs[own]
    valid = maps["fused"][0] > 0
    assert not np.allclose(maps["fused"][1][valid], maps["heads"][1][valid], atol=1e-3)
    assert (maps["fused"][0] == maps["heads"][0])[valid].mean() > 0.8    # one training, mostly the same map
    tensors, meta = load_model(model)
    meta.network_config = {**meta.network_config, "branch_ce": False, "prediction": "fused"}
    untrained = tmp_path / "no_head_ce.safetensors"
    save_model(str(untrained), tensors, meta)
    proc = run_engine("classify", "--model", str(untrained), "--spectral", *BANDS, "--output", str(tmp_path / "x.tif"),
                      "--extent", *EXTENT, "--prediction", "heads", "--json-progress", check=False)
    assert proc.returncode == 2
    err = events(proc.stdout)[-1]
    assert "no_head_ce.safetensors" in err["message"] and "branch heads" in err["message"]
    assert "--prediction" in err["hint"] and not (tmp_path / "x.tif").exists()


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


def test_the_final_model_does_not_depend_on_the_validation(workflow, tmp_path):
    """Same seed, pretrained U-Net and budget: the final network trained after cross-validation (the workflow's
    default) has the same weights as one trained with ``--validation none``, so skipping the folds to save time
    trains the same network (the folds may still choose its read-out, ``--prediction auto``)."""
    from safetensors.numpy import load_file

    d = workflow["dir"]
    run_engine("train", "--spectral", *BANDS, "--training", POLYGONS, "--class-field", "class_id",
               "--pretrained", str(d / "pre.safetensors"), "--output", str(tmp_path / "none.safetensors"),
               "--epochs", "4", "--set", "training.checkpoint_every=3", "--validation", "none",
               "--device", "cpu", "--seed", "0")
    with_cv, without = load_file(str(d / "model.safetensors")), load_file(str(tmp_path / "none.safetensors"))
    logs = " ".join(str(e.get("message", "")) for e in workflow["train"])
    assert "fold" in logs.lower()                                   # the workflow's model did run the folds
    assert with_cv.keys() == without.keys()
    network = [k for k in with_cv if k.startswith("net.")]
    assert network, sorted(with_cv)[:10]
    for key in with_cv:
        np.testing.assert_array_equal(with_cv[key], without[key], err_msg=key)
