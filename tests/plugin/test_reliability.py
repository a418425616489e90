"""Nothing lost and nothing silently wrong (issue 11): one test per reported case, through the plugin
(processing.run / qgis_process) on the embedded Delmarva crop. Every test also checks that no partial file is
left behind (``.partial-`` temporaries of the engine, half-written outputs)."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from .conftest import DATA, LogFeedback, SMALL_EXTENT_STR, band_paths


def _refused(alg_id, params, fb=None):
    """processing.run must fail; returns the exception text + the log."""
    import processing
    from qgis.core import QgsProcessingException

    fb = fb or LogFeedback()
    with pytest.raises(QgsProcessingException) as exc:
        processing.run(alg_id, params, feedback=fb)
    return str(exc.value), fb


def _digest(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _no_partial_files(folder, allowed=()):
    left = [n for n in os.listdir(folder) if ".partial" in n or n.endswith(".tmp")]
    assert left == [], left
    extra = sorted(set(os.listdir(folder)) - set(allowed))
    return extra


def _memory_layer(geometry, rows, crs="EPSG:32618"):
    from qgis.core import QgsFeature, QgsGeometry, QgsProject, QgsVectorLayer

    layer = QgsVectorLayer(f"{geometry}?crs={crs}&field=cls:integer", f"{geometry.lower()}s", "memory")
    feats = []
    for cls, wkt in rows:
        f = QgsFeature(layer.fields())
        f.setAttribute("cls", cls)
        f.setGeometry(QgsGeometry.fromWkt(wkt))
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    QgsProject.instance().addMapLayer(layer, False)
    return layer


def _square(x, y, size=60):
    return f"POLYGON(({x} {y}, {x + size} {y}, {x + size} {y + size}, {x} {y + size}, {x} {y}))"


# -- OUTPUT of classify = the input raster ----------------------------------------------------------------------

def test_output_equal_to_input_is_refused(provider, trained_model, tmp_path):
    import shutil

    band = str(tmp_path / "s2_B04.tif")
    shutil.copy(band_paths()[2], band)
    spectral = band_paths()[:2] + [band] + band_paths()[3:]
    before = _digest(band)
    text, fb = _refused("bdgf:classify", {"MODEL": trained_model["path"], "SPECTRAL": spectral,
                                          "EXTENT": SMALL_EXTENT_STR, "DEVICE": 2, "OUTPUT": band})
    assert "is also the input" in text and band in text, text
    assert not any(m.startswith("CMD ") for m in fb.messages)  # refused before the engine started
    assert _digest(band) == before
    # the model file as an output (confidence) is refused the same way
    text, _ = _refused("bdgf:classify", {"MODEL": trained_model["path"], "SPECTRAL": band_paths(),
                                         "OUTPUT": str(tmp_path / "c.tif"), "OUTPUT_CONFIDENCE": trained_model["path"]})
    assert "is also the input" in text and "Trained model" in text
    assert _no_partial_files(tmp_path, ["s2_B04.tif"]) == []


# -- an existing output through qgis_process ----------------------------------------------------------------------

@pytest.mark.slow
def test_qgis_process_existing_output(plugin_root, trained_model, tmp_path):
    import json

    from .test_qgis_process import qp, qp_env

    cfg = tmp_path / "profile"
    cfg.mkdir()
    env = qp_env(cfg, plugin_root)
    assert qp(["plugins", "enable", "bdgf"], env, timeout=120).returncode == 0
    out = tmp_path / "map.tif"
    out.write_bytes(b"an older map")
    base = ["--json", "run", "bdgf:classify", "--", f"MODEL={trained_model['path']}"]
    base += [f"SPECTRAL={p}" for p in band_paths()] + [f"EXTENT={TINY_STR}", "DEVICE=2"]
    # an input as the output: refused, the input untouched
    model_digest = _digest(trained_model["path"])
    r = qp(base + [f"OUTPUT={trained_model['path']}"], env, timeout=300)
    assert r.returncode != 0 and "is also the input" in r.stdout + r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
    assert _digest(trained_model["path"]) == model_digest
    # an existing output that is not an input: replaced on success (QGIS's convention), and said so
    r = qp(base + [f"OUTPUT={out}"], env, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "exists: it is replaced when the run succeeds" in r.stdout + r.stderr
    result = json.loads(r.stdout[r.stdout.index("{"):])
    assert result["results"]["OUTPUT"] == str(out)
    assert out.read_bytes()[:4] in (b"II*\x00", b"MM\x00*")  # now a GeoTIFF
    assert _no_partial_files(tmp_path, ["profile", "map.tif", "map.qml", "map.tif.log", "map.tif.aux.xml"]) == []


# -- class value 0 --------------------------------------------------------------------------------------------------

def test_class_value_zero_refused_before_engine(provider, tmp_path):
    import time

    layer = _memory_layer("Polygon", [(0, _square(446900, 4171300)), (2, _square(447300, 4170500)),
                                      (3, _square(447600, 4170200))])
    t0 = time.monotonic()
    text, fb = _refused("bdgf:train", {"SPECTRAL": band_paths(), "TRAINING": layer.id(), "CLASS_FIELD": "cls",
                                       "EXTENT": SMALL_EXTENT_STR, "DEVICE": 2,
                                       "OUTPUT_MODEL": str(tmp_path / "m.safetensors")})
    assert "Class value(s) 0" in text and "'cls'" in text and "nodata" in text, text
    assert time.monotonic() - t0 < 20 and not any(m.startswith("CMD ") for m in fb.messages)
    assert os.listdir(tmp_path) == []


# -- an output folder that cannot be written ------------------------------------------------------------------

def _unwritable_folder(tmp_path):
    if os.geteuid() == 0:  # root writes anywhere a permission bit says no; sysfs refuses even root
        return "/sys/bdgf-no-such-folder"
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    return str(folder)


def test_unwritable_output_folder_refused_in_preflight(provider, small_training, tmp_path):
    folder = _unwritable_folder(tmp_path)
    text, fb = _refused("bdgf:train", {"SPECTRAL": band_paths(), "TRAINING": small_training,
                                       "EXTENT": SMALL_EXTENT_STR, "DEVICE": 2, "ITERATIONS": 2, "EPOCHS": 1,
                                       "OUTPUT_MODEL": os.path.join(folder, "model.safetensors"),
                                       "OUTPUT_REPORT": str(tmp_path / "r.html")})
    assert "cannot be written" in text and folder in text and "bug" not in text, text
    assert not any(m.startswith("CMD ") for m in fb.messages)
    assert [n for n in os.listdir(tmp_path) if n != "readonly"] == []


# -- cancel: one line, checkpoint kept, RESUME continues --------------------------------------------------------

class _CancelAt:
    """Cancels the feedback 50 ms after each progress text of ``stage`` (the first one wins)."""

    def __init__(self, stage):
        self.fb = LogFeedback()
        self.stage = stage
        self.fb.progressChanged.connect(self._maybe)

    def _maybe(self, _value):
        if self.fb.texts and self.fb.texts[-1].startswith(self.stage + ":"):
            threading.Timer(0.05, self.fb.cancel).start()


class _CancelOnMessage:
    """Cancels the feedback as soon as the runner passes on a log message containing ``text``: the runner checks
    the cancel before it reads the engine's next line, so the engine is stopped at that point of its work (a timer
    after a progress event races with a fast engine that has meanwhile written its outputs)."""

    def __init__(self, text):
        self.fb = LogFeedback()
        self.fb.on_info = lambda message: self.fb.cancel() if text in message else None


def test_cancel_is_one_line_and_leaves_nothing(provider, trained_model, tmp_path):
    out = str(tmp_path / "classes.tif")
    cancel = _CancelAt("classify")
    text, _ = _refused("bdgf:classify", {"MODEL": trained_model["path"], "SPECTRAL": band_paths(), "DEVICE": 2,
                                         "TILE_SIZE": 64, "OUTPUT": out, "OUTPUT_CONFIDENCE": str(tmp_path / "c.tif")},
                       cancel.fb)
    assert text.strip() == "Cancelled by the user; no output written.", text
    assert "Traceback" not in text and "EngineCancelled" not in text
    assert _no_partial_files(tmp_path, ["classes.tif.log"]) == []


@pytest.fixture(scope="session")
def pretrained_small(bdgf_plugin, session_dir):
    """bdgf:pretrain on the 4 10-m bands of the small extent, 2 iterations (for train runs without pretraining)."""
    from .conftest import run_alg

    out = str(session_dir / "pretrain_small.safetensors")
    res, _ = run_alg("bdgf:pretrain", {"SPECTRAL": band_paths(), "EXTENT": SMALL_EXTENT_STR, "DEVICE": 2,
                                       "ITERATIONS": 2, "OUTPUT_MODEL": out})
    return res["OUTPUT_MODEL"]


@pytest.mark.slow
def test_cancelled_train_keeps_checkpoint_and_resumes(provider, small_training, pretrained_small, tmp_path):
    from .conftest import run_alg

    out = str(tmp_path / "model.safetensors")
    params = {"SPECTRAL": band_paths(), "TRAINING": small_training, "PRETRAINED": pretrained_small,
              "EXTENT": SMALL_EXTENT_STR, "DEVICE": 2, "EPOCHS": 3, "OUTPUT_MODEL": out,
              "OUTPUT_REPORT": str(tmp_path / "report.html")}
    # RESUME without a checkpoint: refused with the checkpoint's name
    text, _ = _refused("bdgf:train", dict(params, RESUME=True))
    assert "no checkpoint" in text and out + ".checkpoint.safetensors" in text
    # a cancel as the final training starts keeps the checkpoint (saved on the cancel, or after the last epoch)
    cancel = _CancelOnMessage("Final model")
    text, _ = _refused("bdgf:train", params, cancel.fb)
    checkpoint = out + ".checkpoint.safetensors"
    assert text.startswith("Cancelled by the user; no output written.") and "Traceback" not in text, text
    assert checkpoint in text and "Resume" in text
    assert os.path.isfile(checkpoint) and not os.path.exists(out)
    assert _no_partial_files(tmp_path, ["model.safetensors.checkpoint.safetensors", "model.safetensors.log"]) == []
    res, fb = run_alg("bdgf:train", dict(params, RESUME=True))
    assert "--resume" in fb.text() and os.path.isfile(res["OUTPUT_MODEL"])
    assert not os.path.exists(checkpoint)  # removed once the model is written
    assert _no_partial_files(tmp_path, ["model.safetensors", "model.safetensors.log", "report.html"]) == []


# -- a missing raster file ------------------------------------------------------------------------------------------

def test_missing_raster_file_is_named(provider, trained_model, tmp_path):
    missing = os.path.join(DATA, "s2_B05_does_not_exist.tif")
    text, fb = _refused("bdgf:classify", {"MODEL": trained_model["path"], "SPECTRAL": band_paths()[:3] + [missing],
                                          "DEVICE": 2, "OUTPUT": str(tmp_path / "c.tif")})
    assert missing in text and "does not exist" in text and "Incorrect parameter value" not in text, text
    missing_model = str(tmp_path / "no_model.safetensors")
    text, _ = _refused("bdgf:classify", {"MODEL": missing_model, "SPECTRAL": band_paths(), "DEVICE": 2,
                                         "OUTPUT": str(tmp_path / "c.tif")})
    assert missing_model in text and "does not exist" in text, text
    assert os.listdir(tmp_path) == []


# -- an empty polygon layer; a point or line training layer --------------------------------------------------------

def test_empty_polygon_layer(provider, tmp_path):
    layer = _memory_layer("Polygon", [])
    text, fb = _refused("bdgf:train", {"SPECTRAL": band_paths(), "TRAINING": layer.id(), "CLASS_FIELD": "cls",
                                       "OUTPUT_MODEL": str(tmp_path / "m.safetensors")})
    assert "is empty" in text and "No polygon overlaps" not in text, text
    assert not any(m.startswith("CMD ") for m in fb.messages) and os.listdir(tmp_path) == []


@pytest.mark.parametrize("geometry,wkt", [("Point", "POINT(447000 4171000)"),
                                          ("LineString", "LINESTRING(447000 4171000, 447300 4170600)")])
def test_point_or_line_training_layer(provider, tmp_path, geometry, wkt):
    import time

    layer = _memory_layer(geometry, [(1, wkt), (2, wkt)])
    t0 = time.monotonic()
    text, fb = _refused("bdgf:train", {"SPECTRAL": band_paths(), "TRAINING": layer.id(), "CLASS_FIELD": "cls",
                                       "OUTPUT_MODEL": str(tmp_path / "m.safetensors")})
    kind = "point" if geometry == "Point" else "line"
    assert f"is a {kind} layer" in text and "Buffer" in text, text
    assert time.monotonic() - t0 < 10 and not any(m.startswith("CMD ") for m in fb.messages)
    assert os.listdir(tmp_path) == []


# -- helpers for the engine-side cases: derived rasters on a small corner of the crop ----------------------------

#: a 60 x 60 px corner of SMALL_EXTENT (fast classify runs); the whole 10-m grid of the crop
TINY = (446300.0, 4171200.0, 446900.0, 4171800.0)
FULL = (440530.0, 4169860.0, 448210.0, 4177540.0)
TINY_STR = "446300,446900,4171200,4171800 [EPSG:32618]"


def _derived(folder, name, paths, bounds=TINY, scale=None, fill=None, dtype=None, nodata=None, dst_crs=None,
             res=None, descriptions=None):
    """Copies of ``paths`` clipped to ``bounds`` (optionally reprojected, rescaled, filled), one file per band."""
    import numpy as np
    from osgeo import gdal

    out = []
    for i, src in enumerate(paths):
        target = os.path.join(str(folder), name.format(i=i, n=i + 1, stem=os.path.splitext(os.path.basename(src))[0]))
        opts = dict(outputBounds=(bounds[0], bounds[1], bounds[2], bounds[3]), outputBoundsSRS="EPSG:32618",
                    format="GTiff")
        if dst_crs:
            opts.update(dstSRS=dst_crs)
        if res:
            opts.update(xRes=res, yRes=res)
        if dtype:
            opts.update(outputType=gdal.GetDataTypeByName(dtype))
        ds = gdal.Warp(target, src, **opts)
        band = ds.GetRasterBand(1)
        if scale is not None or fill is not None:
            arr = band.ReadAsArray().astype(np.float64)
            arr = np.full_like(arr, fill) if fill is not None else arr * scale
            band.WriteArray(arr)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if descriptions is not None:
            band.SetDescription(descriptions[i])
        ds = None
        out.append(target)
    return out


def _stack(folder, name, paths, descriptions=None):
    """One multiband GeoTIFF of ``paths`` (band descriptions set like a stack exported from QGIS or SNAP)."""
    from osgeo import gdal

    vrt = gdal.BuildVRT("", paths, separate=True)
    target = os.path.join(str(folder), name)
    ds = gdal.Translate(target, vrt, format="GTiff")
    for i, d in enumerate(descriptions or []):
        ds.GetRasterBand(i + 1).SetDescription(d)
    ds = None
    return target


def _read(path):
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1), src.crs, src.res, src.shape


def _classify(model, spectral, out, **extra):
    from .conftest import run_alg

    params = {"MODEL": model, "SPECTRAL": spectral, "DEVICE": 2, "OUTPUT": str(out)}
    params.update(extra)
    return run_alg("bdgf:classify", params)


def _warnings(fb):
    return [m for m in fb.messages if m.startswith("WARNING ")]


# -- assess given a multi-band reflectance raster / a float raster as the classification ---------------------------

def test_assess_refuses_imagery_as_classification(provider, training_polys, tmp_path):
    stack = _stack(tmp_path, "imagery.tif", band_paths())
    text, fb = _refused("bdgf:assess", {"CLASSIFICATION": stack, "REFERENCE": training_polys,
                                        "OUTPUT_REPORT": str(tmp_path / "a.html")})
    assert "has 4 bands, so it is not a classification" in text, text
    assert not any(m.startswith("CMD ") for m in fb.messages)
    # one band of reflectance (float, not class values): refused by the engine before any report is written
    reflectance = _derived(tmp_path, "refl_{i}.tif", band_paths()[2:3], bounds=FULL, scale=1e-4, dtype="Float32")[0]
    text, fb = _refused("bdgf:assess", {"CLASSIFICATION": reflectance, "REFERENCE": training_polys,
                                        "OUTPUT_REPORT": str(tmp_path / "a.html")})
    assert "not an integer class raster" in text and "float32" in text and "Classify" in text, text
    assert not os.path.exists(tmp_path / "a.html")
    _no_partial_files(tmp_path)


# -- the Sentinel-2 files in another order; a single multiband stack in the right order ---------------------------

@pytest.fixture(scope="session")
def tiny_reference_map(trained_model, session_dir):
    """The trained model's map of TINY from the 4 bands in the training order (the reference for the others)."""
    out = session_dir / "tiny_reference.tif"
    _, fb = _classify(trained_model["path"], band_paths(), out, EXTENT=TINY_STR)
    return {"array": _read(str(out))[0], "feedback": fb}


@pytest.mark.slow
def test_bands_in_another_order_are_reordered(provider, trained_model, tiny_reference_map, tmp_path):
    import numpy as np

    ref = tiny_reference_map["array"]
    assert not [w for w in _warnings(tiny_reference_map["feedback"]) if "band" in w.lower()]
    b02, b03, b04, b08 = band_paths()
    # reversed: reordered to the model's order (logged), the same map (B02/B03 swapped: tests/engine/test_checks.py)
    out = tmp_path / "reordered.tif"
    _, fb = _classify(trained_model["path"], [b08, b04, b03, b02], out, EXTENT=TINY_STR)
    assert any("reordered" in m for m in fb.messages), fb.text()
    assert np.array_equal(_read(str(out))[0], ref)
    _no_partial_files(tmp_path, ["reordered.tif", "reordered.qml", "reordered.tif.log", "reordered.tif.aux.xml"])


@pytest.mark.slow
def test_band_stack_missing_and_positional(provider, trained_model, tiny_reference_map, tmp_path):
    import numpy as np

    ref = tiny_reference_map["array"]
    b02, b03, b04, b08 = band_paths()
    # one multiband stack in the right order: no band warning at all
    stack = _stack(tmp_path, "stack.tif", band_paths(), ["B02", "B03", "B04", "B08"])
    _, fb = _classify(trained_model["path"], [stack], tmp_path / "from_stack.tif", EXTENT=TINY_STR)
    assert not [w for w in _warnings(fb) if "band" in w.lower()], fb.text()
    assert not any("reordered" in m for m in fb.messages)
    assert np.array_equal(_read(str(tmp_path / "from_stack.tif"))[0], ref)
    # a missing band (B05 instead of B08): refused with the list of expected bands, nothing written
    b05 = os.path.join(DATA, "s2_B05.tif")
    text, _ = _refused("bdgf:classify", {"MODEL": trained_model["path"], "SPECTRAL": [b02, b03, b04, b05],
                                         "EXTENT": TINY_STR, "DEVICE": 2, "OUTPUT": str(tmp_path / "x.tif")})
    assert "B08" in text and "B05" in text and "B02" in text and "positional" in text, text
    assert not os.path.exists(tmp_path / "x.tif")
    # renamed files (band_B1..band_B4 read as B01..B04, no descriptions; refused by name in test_checks.py):
    # accepted with the positional order
    renamed = _derived(tmp_path, "band_B{n}.tif", band_paths(), bounds=FULL, descriptions=["", "", "", ""])
    _, fb = _classify(trained_model["path"], renamed, tmp_path / "positional.tif", BAND_ORDER=1, EXTENT=TINY_STR)
    assert any("positional" in m for m in fb.messages), fb.text()
    assert np.array_equal(_read(str(tmp_path / "positional.tif"))[0], ref)
    _no_partial_files(tmp_path)


@pytest.mark.slow
def test_coarse_to_fine_off_runs_the_network_on_every_pixel_with_the_same_map(provider, trained_model,
                                                                              tiny_reference_map, tmp_path):
    import numpy as np

    out = tmp_path / "every_pixel.tif"
    _, fb = _classify(trained_model["path"], band_paths(), out, EXTENT=TINY_STR, COARSE_TO_FINE=False)
    assert any(m.startswith("CMD ") and "--coarse-to-fine off" in m for m in fb.messages), fb.text()
    assert not any("Coarse-to-fine:" in m for m in fb.messages)
    assert any("Coarse-to-fine:" in m for m in tiny_reference_map["feedback"].messages)   # on by default
    assert np.array_equal(_read(str(out))[0], tiny_reference_map["array"])


@pytest.mark.slow
def test_prediction_by_the_branch_heads_reaches_the_engine(provider, trained_model, tiny_reference_map, tmp_path):
    """Classify's advanced *Prediction*: the mean of the branch heads is passed as ``--prediction heads`` and the
    engine says it reads the model out that way; the default passes nothing (the model's own read-out)."""
    out = tmp_path / "heads.tif"
    _, fb = _classify(trained_model["path"], band_paths(), out, EXTENT=TINY_STR, PREDICTION=2)
    assert any(m.startswith("CMD ") and "--prediction heads" in m for m in fb.messages), fb.text()
    assert any("Prediction: the mean of its branch heads" in m for m in fb.messages), fb.text()
    assert out.exists() and _read(str(out))[0].shape == tiny_reference_map["array"].shape
    default_cmd = [m for m in tiny_reference_map["feedback"].messages if m.startswith("CMD ")]
    assert default_cmd and not any("--prediction" in m for m in default_cmd)


# -- a scene in another scale (reflectance 0-1 instead of 0-10000) -------------------------------------------------

def test_scene_in_another_scale_refused(provider, trained_model, tmp_path):
    scaled = _derived(tmp_path, "{stem}_reflectance.tif", band_paths(), scale=1e-4, dtype="Float32")
    text, _ = _refused("bdgf:classify", {"MODEL": trained_model["path"], "SPECTRAL": scaled, "DEVICE": 2,
                                         "OUTPUT": str(tmp_path / "x.tif")})
    assert "scale" in text and "B04" in text and "0.0" in text, text  # the numbers of both ranges are given
    assert not os.path.exists(tmp_path / "x.tif")
    _no_partial_files(tmp_path)


# -- a model file whose header is intact but whose tensors are NaN -------------------------------------------------

def _nan_model(src, target, keep_checksum):
    """A copy of ``src`` with NaN in its first float tensor: the bytes changed under an intact header, or rewritten
    with a matching checksum (a diverged training)."""
    import json
    import struct

    import numpy as np

    with open(src, "rb") as fh:
        data = bytearray(fh.read())
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    name, entry = next((k, v) for k, v in header.items() if k != "__metadata__" and v["dtype"] == "F32")
    begin, end = entry["data_offsets"]
    data[8 + n + begin:8 + n + end] = np.full((end - begin) // 4, np.nan, np.float32).tobytes()
    if not keep_checksum:
        meta = json.loads(header["__metadata__"]["bdgf"])
        import hashlib

        meta["tensors_sha256"] = hashlib.sha256(bytes(data[8 + n:])).hexdigest()
        header["__metadata__"]["bdgf"] = json.dumps(meta)
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        data = bytearray(struct.pack("<Q", len(raw)) + raw + bytes(data[8 + n:]))
    with open(target, "wb") as fh:
        fh.write(bytes(data))
    return name


def test_nan_model_refused_at_load(provider, trained_model, tmp_path):
    for keep_checksum, expected in ((True, "checksum"), (False, "non-finite")):
        model = str(tmp_path / "nan.safetensors")
        tensor = _nan_model(trained_model["path"], model, keep_checksum)
        text, _ = _refused("bdgf:classify", {"MODEL": model, "SPECTRAL": band_paths(), "EXTENT": TINY_STR,
                                             "DEVICE": 2, "OUTPUT": str(tmp_path / "x.tif"),
                                             "OUTPUT_CONFIDENCE": str(tmp_path / "c.tif")})
        assert expected in text and "nan.safetensors" in text, text
        if expected == "non-finite":
            assert tensor in text
        assert not os.path.exists(tmp_path / "x.tif") and not os.path.exists(tmp_path / "c.tif")
    _no_partial_files(tmp_path)


# -- a class with zero labelled pixels in the rasters' area: found before pretraining ------------------------------

def test_class_without_pixels_found_before_pretraining(provider, tmp_path):
    import time

    # class 1: a real polygon; class 2: a 2 m sliver between pixel centres (no labelled pixel)
    layer = _memory_layer("Polygon", [(1, _square(446900, 4171300, 80)), (1, _square(447100, 4171300, 80)),
                                      (2, _square(447001, 4171001, 2))])
    t0 = time.monotonic()
    text, fb = _refused("bdgf:train", {"SPECTRAL": band_paths(), "TRAINING": layer.id(), "CLASS_FIELD": "cls",
                                       "EXTENT": SMALL_EXTENT_STR, "DEVICE": 2, "ITERATIONS": 50,
                                       "OUTPUT_MODEL": str(tmp_path / "m.safetensors")})
    assert "value 2" in text and "labelled pixel" in text, text
    assert not [t for t in fb.texts if t.startswith("pretrain")], fb.texts  # before any pretraining
    assert time.monotonic() - t0 < 60
    assert [n for n in os.listdir(tmp_path) if not n.endswith(".log")] == []


# -- a raster clipped to the study area with the region-wide polygon layer: same with or without EXTENT ----------

@pytest.mark.slow
def test_clipped_raster_with_region_wide_polygons(provider, training_polys, pretrained_small, tmp_path):
    from .conftest import SMALL_EXTENT, run_alg
    from bdgf.engine.contract import read_metadata

    clipped = _derived(tmp_path, "{stem}_clip.tif", band_paths(), bounds=SMALL_EXTENT)
    classes = {}
    for name, extent in (("no_extent", None), ("extent", SMALL_EXTENT_STR)):
        params = {"SPECTRAL": clipped, "TRAINING": training_polys, "PRETRAINED": pretrained_small, "DEVICE": 2,
                  "EPOCHS": 1, "OUTPUT_MODEL": str(tmp_path / f"{name}.safetensors"), "OUTPUT_REPORT": ""}
        if extent:
            params["EXTENT"] = extent
        res, fb = run_alg("bdgf:train", params)
        dropped = [w for w in _warnings(fb) if "left out of the model" in w]
        assert len(dropped) == 1 and "value" in dropped[0], fb.text()
        classes[name] = [c.value for c in read_metadata(res["OUTPUT_MODEL"]).classes]
    assert classes["no_extent"] == classes["extent"] and len(classes["extent"]) == 3
    _no_partial_files(tmp_path)


# -- a model reused on a scene in another UTM zone -----------------------------------------------------------------

@pytest.mark.slow
def test_model_reused_on_another_grid(provider, trained_model, tmp_path):
    from pyproj import CRS

    scene = _derived(tmp_path, "{stem}_utm17.tif", band_paths(), dst_crs="EPSG:32617", res=10)
    _, crs, res, shape = _read(scene[0])
    out = tmp_path / "utm17_map.tif"
    _, fb = _classify(trained_model["path"], scene, out)
    _, out_crs, out_res, out_shape = _read(str(out))
    assert CRS(out_crs.to_wkt()).to_epsg() == 32617 and out_res == res and out_shape == shape
    assert any("scene's own grid" in m for m in fb.messages), fb.text()
    # (a scene at 20 m is resampled to the model's 10 m in its own CRS: tests/engine/test_checks.py)
    _no_partial_files(tmp_path)


# -- an all-nodata / all-NaN scene -------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["nan", "nodata"])
def test_empty_scene_refused(provider, trained_model, tmp_path, variant):
    if variant == "nan":
        scene = _derived(tmp_path, "{stem}_nan.tif", band_paths(), fill=float("nan"), dtype="Float32")
    else:
        scene = _derived(tmp_path, "{stem}_nodata.tif", band_paths(), fill=0, nodata=0)
    text, _ = _refused("bdgf:classify", {"MODEL": trained_model["path"], "SPECTRAL": scene, "DEVICE": 2,
                                         "OUTPUT": str(tmp_path / "x.tif")})
    assert "no valid pixel" in text.lower() and os.path.basename(scene[0]) in text, text
    assert not os.path.exists(tmp_path / "x.tif")
    _no_partial_files(tmp_path)
