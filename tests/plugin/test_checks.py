"""checkParameterValues pre-flight: clear messages for bad inputs, before any engine run."""

from __future__ import annotations


from .conftest import SMALL_EXTENT_STR, band_paths


def _alg(alg_id):
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProject

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    assert alg is not None
    ctx = QgsProcessingContext()
    ctx.setProject(QgsProject.instance())
    return alg, ctx


def _polygons(rows, crs="EPSG:32618"):
    from qgis.core import QgsFeature, QgsGeometry, QgsVectorLayer

    layer = QgsVectorLayer(f"Polygon?crs={crs}&field=cls:integer", "poly", "memory")
    feats = []
    for cls, wkt in rows:
        f = QgsFeature(layer.fields())
        f.setAttribute("cls", cls)
        f.setGeometry(QgsGeometry.fromWkt(wkt))
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    return layer


def test_one_class_only(provider, training_polys):
    from qgis.core import QgsProcessingFeatureSourceDefinition, QgsProject

    alg, ctx = _alg("bdgf:train")
    layer = training_polys.clone()
    QgsProject.instance().addMapLayer(layer)
    try:
        layer.selectByExpression('"class_id" = 5')
        params = {"SPECTRAL": band_paths(), "TRAINING": QgsProcessingFeatureSourceDefinition(layer.id(), True),
                  "OUTPUT_MODEL": "TEMPORARY_OUTPUT"}
        ok, msg = alg.checkParameterValues(params, ctx)
        assert not ok and "at least two classes" in msg and "class_id" in msg
    finally:
        QgsProject.instance().removeMapLayer(layer.id())


def test_no_polygons_overlap(provider):
    from qgis.core import QgsProject

    alg, ctx = _alg("bdgf:train")
    far = _polygons([(1, "POLYGON((0 0, 100 0, 100 100, 0 100, 0 0))"),
                     (2, "POLYGON((200 0, 300 0, 300 100, 200 100, 200 0))")])
    QgsProject.instance().addMapLayer(far)
    try:
        params = {"SPECTRAL": band_paths(), "TRAINING": far.id(), "CLASS_FIELD": "cls",
                  "OUTPUT_MODEL": "TEMPORARY_OUTPUT"}
        ok, msg = alg.checkParameterValues(params, ctx)
        assert not ok and "No polygon overlaps" in msg
        # in another CRS, overlapping after reprojection: passes the overlap check (lon/lat of the crop)
        near = _polygons([(1, "POLYGON((-75.67 37.68, -75.60 37.68, -75.60 37.72, -75.67 37.72, -75.67 37.68))"),
                          (2, "POLYGON((-75.64 37.69, -75.63 37.69, -75.63 37.70, -75.64 37.70, -75.64 37.69))")],
                         crs="EPSG:4326")
        QgsProject.instance().addMapLayer(near)
        ok2, msg2 = alg.checkParameterValues(dict(params, TRAINING=near.id()), ctx)
        assert "No polygon overlaps" not in msg2, msg2
        QgsProject.instance().removeMapLayer(near.id())
    finally:
        QgsProject.instance().removeMapLayer(far.id())


def test_extent_outside_polygons(provider, training_polys):
    alg, ctx = _alg("bdgf:train")
    params = {"SPECTRAL": band_paths(), "TRAINING": training_polys,
              "EXTENT": "440530,440600,4169860,4169900 [EPSG:32618]", "OUTPUT_MODEL": "TEMPORARY_OUTPUT"}
    ok, msg = alg.checkParameterValues(params, ctx)
    assert not ok and "No polygon overlaps" in msg


def test_no_class_field_and_no_style(provider):
    from qgis.core import QgsProject

    alg, ctx = _alg("bdgf:train")
    layer = _polygons([(1, "POLYGON((446900 4171300, 447000 4171300, 447000 4171400, 446900 4171300))")])
    QgsProject.instance().addMapLayer(layer)
    try:
        ok, msg = alg.checkParameterValues({"SPECTRAL": band_paths(), "TRAINING": layer.id(),
                                            "OUTPUT_MODEL": "TEMPORARY_OUTPUT"}, ctx)
        assert not ok and "Choose a class field" in msg
    finally:
        QgsProject.instance().removeMapLayer(layer.id())


def test_missing_engine_python(provider, training_polys, monkeypatch, tmp_path):
    from bdgf.bdgf_plugin import settings

    alg, ctx = _alg("bdgf:train")
    settings.set_engine_python("")
    monkeypatch.setenv("BDGF_ENGINE_PYTHON", str(tmp_path / "no-such-env" / "bin" / "python"))
    params = {"SPECTRAL": band_paths(), "TRAINING": training_polys, "EXTENT": SMALL_EXTENT_STR,
              "OUTPUT_MODEL": "TEMPORARY_OUTPUT"}
    ok, msg = alg.checkParameterValues(params, ctx)
    assert not ok
    assert "bdgf:setupengine" in msg and "Engine Python" in msg and "no-such-env" in msg


def test_non_file_raster_rejected(provider, tmp_path):
    from qgis.core import QgsProject, QgsRasterLayer

    alg, ctx = _alg("bdgf:pretrain")
    wms = QgsRasterLayer("type=xyz&url=https://tile.openstreetmap.org/%7Bz%7D/%7Bx%7D/%7By%7D.png", "osm", "wms")
    QgsProject.instance().addMapLayer(wms, False)
    try:
        ok, msg = alg.checkParameterValues({"SPECTRAL": [wms.id()], "OUTPUT_MODEL": str(tmp_path / "p.safetensors")},
                                           ctx)
        assert not ok and "GeoTIFF" in msg
    finally:
        QgsProject.instance().removeMapLayer(wms.id())


def test_class_balance_is_range_checked_and_reaches_the_engine(provider, training_polys, monkeypatch, tmp_path):
    from qgis.core import QgsProcessingFeedback

    alg, ctx = _alg("bdgf:train")
    ok, msg = alg.checkParameterValues({"SPECTRAL": band_paths(), "TRAINING": training_polys,
                                        "CLASS_FIELD": "class_id", "CLASS_BALANCE": 1.5,
                                        "OUTPUT_MODEL": "TEMPORARY_OUTPUT"}, ctx)
    assert not ok and "balance" in msg.lower(), msg
    seen = {}

    def fake_run(self, command, args, *rest, **kw):
        seen["command"], seen["args"] = command, list(args)
        return {"output": args[args.index("--output") + 1]}
    monkeypatch.setattr(type(alg), "run_engine", fake_run)
    alg.prepared = {"inputs": ["--spectral", *band_paths()]}
    out = str(tmp_path / "m.safetensors")
    alg.processAlgorithm({"SPECTRAL": band_paths(), "CLASS_BALANCE": 0.5, "OUTPUT_MODEL": out,
                          "OUTPUT_REPORT": ""}, ctx, QgsProcessingFeedback())
    i = seen["args"].index("--class-balance")
    assert seen["command"] == "train" and seen["args"][i + 1] == "0.5"
    assert "--pseudo-labels" not in seen["args"] and "--whitewater" not in seen["args"]   # empty: the profile's
    assert "--members" not in seen["args"]
    alg.processAlgorithm({"SPECTRAL": band_paths(), "ENSEMBLE_MEMBERS": 3, "OUTPUT_MODEL": out,
                          "OUTPUT_REPORT": ""}, ctx, QgsProcessingFeedback())
    i = seen["args"].index("--members")
    assert seen["args"][i + 1] == "3" and "--prediction" not in seen["args"]     # default: chosen by the folds
    alg.processAlgorithm({"SPECTRAL": band_paths(), "PREDICTION": 1, "OUTPUT_MODEL": out,
                          "OUTPUT_REPORT": ""}, ctx, QgsProcessingFeedback())
    assert seen["args"][seen["args"].index("--prediction") + 1] == "fused"
    ok, msg = alg.checkParameterValues({"SPECTRAL": band_paths(), "TRAINING": training_polys,
                                        "CLASS_FIELD": "class_id", "ENSEMBLE_MEMBERS": 9,
                                        "OUTPUT_MODEL": "TEMPORARY_OUTPUT"}, ctx)
    assert not ok and msg == "Ensemble members: 9 is outside the allowed range 1 to 8.", msg


def test_pseudo_label_share_is_range_checked_and_reaches_the_engine(provider, training_polys, monkeypatch,
                                                                    tmp_path):
    from qgis.core import QgsProcessingFeedback

    alg, ctx = _alg("bdgf:train")
    ok, msg = alg.checkParameterValues({"SPECTRAL": band_paths(), "TRAINING": training_polys,
                                        "CLASS_FIELD": "class_id", "PSEUDO_LABELS": 1.0,
                                        "OUTPUT_MODEL": "TEMPORARY_OUTPUT"}, ctx)
    assert not ok and "pseudo" in msg.lower(), msg
    seen = {}

    def fake_run(self, command, args, *rest, **kw):
        seen["args"] = list(args)
        return {"output": args[args.index("--output") + 1]}
    monkeypatch.setattr(type(alg), "run_engine", fake_run)
    alg.prepared = {"inputs": ["--spectral", *band_paths()]}
    alg.processAlgorithm({"SPECTRAL": band_paths(), "PSEUDO_LABELS": 0.0, "WHITEWATER": 0.0,
                          "OUTPUT_MODEL": str(tmp_path / "m.st"), "OUTPUT_REPORT": ""}, ctx, QgsProcessingFeedback())
    assert seen["args"][seen["args"].index("--pseudo-labels") + 1] == "0.0"
    assert seen["args"][seen["args"].index("--whitewater") + 1] == "0.0"      # 0 switches whitewater off


def test_landscape_context_checkbox_reaches_pretrain_and_train(provider, monkeypatch, tmp_path):
    from qgis.core import QgsProcessingFeedback

    for alg_id in ("bdgf:pretrain", "bdgf:train"):
        alg, ctx = _alg(alg_id)
        seen = []

        def fake_run(self, command, args, *rest, **kw):
            seen.append(list(args))
            return {"output": args[args.index("--output") + 1]}
        monkeypatch.setattr(type(alg), "run_engine", fake_run)
        alg.prepared = {"inputs": ["--spectral", *band_paths()]}
        for ticked in (False, True):
            alg.processAlgorithm({"SPECTRAL": band_paths(), "LANDSCAPE_CONTEXT": ticked,
                                  "OUTPUT_MODEL": str(tmp_path / "m.safetensors"), "OUTPUT_REPORT": ""}, ctx,
                                 QgsProcessingFeedback())
        assert ["--context" in args for args in seen] == [False, True], alg_id


def test_validation_mode_is_checked_before_the_engine_runs(provider, training_polys):
    alg, ctx = _alg("bdgf:train")
    base = {"SPECTRAL": band_paths(), "TRAINING": training_polys, "CLASS_FIELD": "class_id",
            "OUTPUT_MODEL": "TEMPORARY_OUTPUT"}
    for bad in ("cv:1", "holdout:1.5", "kfold"):
        ok, msg = alg.checkParameterValues({**base, "VALIDATION": bad}, ctx)
        assert not ok and bad in msg and "cv:K" in msg
    for good in ("cv:3", "holdout:0.25", "none"):
        ok, msg = alg.checkParameterValues({**base, "VALIDATION": good}, ctx)
        assert ok or "Validation" not in msg, msg



def test_spatial_block_size_needs_cross_validation_and_reaches_the_engine(provider, training_polys, monkeypatch,
                                                                          tmp_path):
    from qgis.core import QgsProcessingFeedback

    alg, ctx = _alg("bdgf:train")
    base = {"SPECTRAL": band_paths(), "TRAINING": training_polys, "CLASS_FIELD": "class_id",
            "OUTPUT_MODEL": "TEMPORARY_OUTPUT", "CV_BLOCK_SIZE": 2000}
    for other in ({"VALIDATION": "holdout:0.3"}, {"VALIDATION": "none"}, {"VALIDATION_FRACTION": 0.3}):
        ok, msg = alg.checkParameterValues({**base, **other}, ctx)
        assert not ok and "block size" in msg and "cv:K" in msg, msg
    ok, msg = alg.checkParameterValues({**base, "VALIDATION": "cv:3"}, ctx)
    assert ok or "block" not in msg, msg
    seen = {}

    def fake_run(self, command, args, *rest, **kw):
        seen["args"] = list(args)
        return {"output": args[args.index("--output") + 1]}
    monkeypatch.setattr(type(alg), "run_engine", fake_run)
    alg.prepared = {"inputs": ["--spectral", *band_paths()]}
    alg.processAlgorithm({"SPECTRAL": band_paths(), "CV_BLOCK_SIZE": 1500.0, "OUTPUT_MODEL": str(tmp_path / "m.st"),
                          "OUTPUT_REPORT": ""}, ctx, QgsProcessingFeedback())
    i = seen["args"].index("--cv-block-size")
    assert seen["args"][i + 1] == "1500.0"


def test_a_model_with_landscape_context_asks_for_no_auxiliary_raster(provider):
    """The context modality is derived by the engine: Classify must not ask the analyst for a raster of it."""
    from bdgf.bdgf_plugin.algorithms.classify import model_inputs

    band = {"modality": 0, "kind": "spectral", "file": "s2.tif", "index": 1}
    meta = {"modalities": [{"kind": "spectral", "bands": [band] * 13},
                           {"kind": "context", "files": ["landscape_context.tif"], "bands": [band, band]}],
            "context": {"index": "ndwi", "sigma_m": [100.0, 500.0]}}
    assert model_inputs(meta) == (13, [])
    meta["modalities"].insert(1, {"kind": "sar_db", "bands": [band, band]})
    assert model_inputs(meta) == (13, [("sar_db", 2)])
