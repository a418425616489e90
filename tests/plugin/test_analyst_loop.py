"""The analyst's loop in QGIS: qgis_process lists the algorithms, classify with uncertainty / probabilities /
mask, suggestsamples, and the modeler chain train -> classify (uncertainty) -> cleanup -> sampledesign."""

from __future__ import annotations

import os

import numpy as np
import pytest

from .model_builder import ANALYST_MODEL_PATH as MODEL_PATH
from .conftest import SMALL_EXTENT, SMALL_EXTENT_STR, LogFeedback, band_paths, run_alg
from .test_qgis_process import qp, qp_env

NEW_IDS = ["bdgf:cleanup", "bdgf:sampledesign", "bdgf:suggestsamples"]


def test_qgis_process_lists_analyst_algorithms_and_classify_outputs(plugin_root, tmp_path):
    cfg = tmp_path / "profile"
    cfg.mkdir()
    env = qp_env(cfg, plugin_root)
    assert qp(["plugins", "enable", "bdgf"], env, timeout=120).returncode == 0
    listing = qp(["list"], env, timeout=120).stdout
    for alg_id in NEW_IDS:
        assert alg_id in listing
    help_text = qp(["help", "bdgf:classify"], env, timeout=120).stdout
    for key in ("OUTPUT_UNCERTAINTY", "OUTPUT_PROBABILITIES", "MASK"):
        assert f"\n{key}:" in help_text
    assert "normalised_entropy" in help_text                    # the help says what the bands are


def _mask_layer():
    """A memory polygon (the west half of the small extent) in the raster CRS."""
    from qgis.core import QgsFeature, QgsGeometry, QgsRectangle, QgsVectorLayer

    layer = QgsVectorLayer("Polygon?crs=EPSG:32618", "mask", "memory")
    xmin, ymin, xmax, ymax = SMALL_EXTENT
    f = QgsFeature()
    f.setGeometry(QgsGeometry.fromRect(QgsRectangle(xmin, ymin, (xmin + xmax) / 2, ymax)))
    layer.dataProvider().addFeatures([f])
    return layer


@pytest.mark.slow
def test_classify_uncertainty_probabilities_and_mask(trained_model, session_dir):
    import rasterio
    from qgis.core import QgsProject, QgsSingleBandPseudoColorRenderer

    from bdgf.engine.contract import read_metadata_dict

    classes = [c["name"] for c in read_metadata_dict(trained_model["path"])["classes"]]
    out, unc, prob, aoa = (str(session_dir / n) for n in ("masked.tif", "uncertainty.tif", "probabilities.tif",
                                                          "applicability.tif"))
    mask = _mask_layer()
    res, fb = run_alg("bdgf:classify", {
        "MODEL": trained_model["path"], "SPECTRAL": band_paths(), "EXTENT": SMALL_EXTENT_STR, "DEVICE": 2,
        "MASK": mask, "OUTPUT": out, "OUTPUT_UNCERTAINTY": unc, "OUTPUT_PROBABILITIES": prob,
        "OUTPUT_APPLICABILITY": aoa}, load=True)
    assert res["OUTPUT_UNCERTAINTY"] == unc and res["OUTPUT_PROBABILITIES"] == prob
    assert res["OUTPUT_APPLICABILITY"] == aoa
    with rasterio.open(out) as c, rasterio.open(unc) as u, rasterio.open(prob) as p:
        cls, ent, mar, probs = c.read(1), u.read(1), u.read(2), p.read()
        assert u.descriptions == ("normalised_entropy", "margin")
        assert list(p.descriptions) == classes                         # one band per class, named by class
    inside = cls > 0
    w = cls.shape[1]
    assert inside[:, : w // 2 - 2].mean() > 0.9 and not inside[:, w // 2 + 2:].any()   # the mask was applied
    assert np.isnan(ent[~inside]).all() and np.isfinite(ent[inside]).all()
    assert (ent[inside] >= 0).all() and (ent[inside] <= 1).all() and (mar[inside] >= 0).all()
    assert np.allclose(probs[:, inside].sum(0), 1.0, atol=1e-4)
    top2 = np.sort(probs[:, inside], axis=0)[-2:]
    assert np.allclose(mar[inside], top2[1] - top2[0], atol=1e-5)
    layers = {lyr.source(): lyr for lyr in QgsProject.instance().mapLayers().values()}
    assert isinstance(layers[unc].renderer(), QgsSingleBandPseudoColorRenderer)    # styled on load
    assert layers[prob].bandName(1).endswith(classes[0])
    # area of applicability: DI where classified, transparent up to the model's threshold, magenta above it
    with rasterio.open(aoa) as a:
        di, threshold = a.read(1), float(a.tags()["BDGF_AOA_THRESHOLD"])
    assert np.isnan(di[~inside]).all() and (di[inside] >= 0).all()
    shader = layers[aoa].renderer().shader().rasterShaderFunction()
    items = shader.colorRampItemList()
    assert [round(i.value, 6) for i in items[:1]] == [round(threshold, 6)] and items[0].color.alpha() == 0
    assert items[1].color.name() == "#ff00ff" and "outside" in items[1].label
    outside = int((di[inside] > threshold).sum())
    assert f"{outside} of {int(inside.sum())} classified pixels" in fb.text()
    del mask


@pytest.mark.slow
@pytest.mark.parametrize("measure", [0, 2])         # entropy, dissimilarity
def test_suggestsamples_ranked_spaced_balanced(trained_model, session_dir, measure):
    from qgis.core import QgsCategorizedSymbolRenderer, QgsProject

    out = str(session_dir / f"suggestions_{measure}.gpkg")
    res, fb = run_alg("bdgf:suggestsamples", {
        "MODEL": trained_model["path"], "SPECTRAL": band_paths(), "EXTENT": SMALL_EXTENT_STR, "DEVICE": 2,
        "COUNT": 12, "MIN_DISTANCE": 200.0, "MEASURE": measure, "BALANCE": True, "OUTPUT": out}, load=True)
    layer = next(lyr for lyr in QgsProject.instance().mapLayers().values()
                 if lyr.source().split("|")[0] == res["OUTPUT"].split("|")[0])
    feats = sorted(layer.getFeatures(), key=lambda f: f["rank"])
    assert len(feats) == 12
    unc = [f["uncertainty"] for f in feats]
    assert unc == sorted(unc, reverse=True) and [f["rank"] for f in feats] == list(range(1, 13))
    pts = np.array([[f.geometry().asPoint().x(), f.geometry().asPoint().y()] for f in feats])
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)) + np.eye(12) * 1e9
    assert d.min() >= 200.0
    # balanced over the predicted classes: those that never ran out of spaced candidates share the batch evenly
    # (a class with fewer candidates drops out of the round robin and keeps fewer)
    counts = np.sort(np.unique([f["pred_class"] for f in feats], return_counts=True)[1])
    assert len(counts) >= 2 and counts[-1] - counts[-2] <= 1
    for f in feats:
        assert f["prob_first"] >= f["prob_second"] and f["pred_class"] != f["second_class"]
        assert abs(f["margin"] - (f["prob_first"] - f["prob_second"])) < 1e-4
        if measure == 2:                                 # ranked by the dissimilarity index, recorded per point
            assert f["dissimilarity"] == pytest.approx(f["uncertainty"]) and f["dissimilarity"] >= 0
        else:
            assert f["uncertainty"] == pytest.approx(f["entropy"], abs=1e-5)
    assert isinstance(layer.renderer(), QgsCategorizedSymbolRenderer)


@pytest.mark.slow
def test_analyst_loop_model(bdgf_plugin, provider, small_training, session_dir):
    import processing
    import rasterio
    from qgis.core import QgsProcessingException, QgsProcessingModelAlgorithm, QgsVectorLayer
    from scipy.ndimage import label

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(MODEL_PATH)
    assert sorted(c.algorithmId() for c in model.childAlgorithms().values()) == [
        "bdgf:classify", "bdgf:cleanup", "bdgf:sampledesign", "bdgf:train"]
    names = {p.name() for p in model.parameterDefinitions()}
    assert {"classify:classification", "classify:uncertainty", "cleanup:cleaned", "sampledesign:sample"} <= names
    out = {k: str(session_dir / f"loop_{k}") for k in ("classes.tif", "uncertainty.tif", "clean.tif", "sample.gpkg")}
    fb = LogFeedback()
    try:
        res = processing.run(model, {"spectral": band_paths(), "training": small_training, "extent": SMALL_EXTENT_STR,
                                     "classify:classification": out["classes.tif"],
                                     "classify:uncertainty": out["uncertainty.tif"],
                                     "cleanup:cleaned": out["clean.tif"], "sampledesign:sample": out["sample.gpkg"]},
                             feedback=fb)
    except QgsProcessingException as exc:
        raise AssertionError(f"{exc}\n{fb.text()}") from exc
    assert fb.text().count("CMD ") == 4                                 # train, classify, cleanup, sampledesign
    with rasterio.open(out["clean.tif"]) as c, rasterio.open(out["classes.tif"]) as raw:
        clean = c.read(1)
        assert c.colormap(1) == raw.colormap(1)
    for v in np.unique(clean[clean > 0]):
        sizes = np.bincount(label(clean == v)[0].ravel())[1:]
        assert sizes.min() >= 8                                          # MMU of 8 pixels
    sample = QgsVectorLayer(res["sampledesign:sample"], "sample", "ogr")
    assert sample.isValid() and sample.featureCount() >= 10 * len(np.unique(clean[clean > 0]))
    fields = [f.name() for f in sample.fields()]
    for name in ("stratum", "stratum_pixels", "reference"):
        assert name in fields
    from qgis.core import NULL

    assert all(f["reference"] == NULL for f in sample.getFeatures())    # empty, ready to be labelled
    # label the sample (here: the map class, wrong for every 5th point) and assess the map with it
    idx = sample.fields().lookupField("reference")
    sample.startEditing()
    for i, f in enumerate(sample.getFeatures()):
        wrong = [v for v in np.unique(clean[clean > 0]) if v != f["stratum"]][0]
        sample.changeAttributeValue(f.id(), idx, int(wrong if i % 5 == 0 else f["stratum"]))
    assert sample.commitChanges()
    n = sample.featureCount()
    del sample
    report = str(session_dir / "loop_assess.html")
    res2, _ = run_alg("bdgf:assess", {"CLASSIFICATION": out["clean.tif"], "REFERENCE": res["sampledesign:sample"],
                                      "CLASS_FIELD": "reference", "OUTPUT_REPORT": report})
    oa = res2["METRICS"]["oa"]
    assert abs(oa - (n - len(range(0, n, 5))) / n) < 0.08             # ~80 % correct, stratum-weighted
    assert "Area-adjusted" in open(report, encoding="utf-8").read()


@pytest.mark.slow
def test_model_without_training_pixels_is_refused_before_the_engine_runs(trained_model, session_dir):
    """A model file from before the area of applicability: Classify with that output, and Suggest ranked by
    dissimilarity, say so in the pre-flight check; without them the same file passes."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProject

    from bdgf.engine.contract import has_applicability, read_metadata_dict
    from bdgf.engine.io.artifact import load_model, save_model

    assert has_applicability(read_metadata_dict(trained_model["path"]))
    tensors, meta = load_model(trained_model["path"])
    meta.report.pop("applicability")
    old = str(session_dir / "model_before_applicability.safetensors")
    save_model(old, {k: v for k, v in tensors.items() if not k.startswith("applicability.")}, meta, overwrite=True)
    ctx = QgsProcessingContext()
    ctx.setProject(QgsProject.instance())
    base = {"MODEL": old, "SPECTRAL": band_paths(), "EXTENT": SMALL_EXTENT_STR}
    for alg_id, asking, plain in (
            ("bdgf:classify", {"OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_APPLICABILITY": "TEMPORARY_OUTPUT"},
             {"OUTPUT": "TEMPORARY_OUTPUT"}),
            ("bdgf:suggestsamples", {"OUTPUT": "TEMPORARY_OUTPUT", "MEASURE": 2},
             {"OUTPUT": "TEMPORARY_OUTPUT", "MEASURE": 0})):
        alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
        ok, msg = alg.checkParameterValues({**base, **asking}, ctx)
        assert not ok and "model_before_applicability.safetensors" in msg and "train it again" in msg, msg
        ok, msg = alg.checkParameterValues({**base, **plain}, ctx)
        assert ok, msg
