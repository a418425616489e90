"""The model-file schema (engine/io/schema.py) and the engine/plugin contract (engine/contract.py)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine import contract
from engine.data.grid import Modality, RasterStack, compute_statistics
from engine.errors import EngineError
from engine.io.artifact import load_model, save_model
from engine.io.schema import (FORMAT, Band, BandStatistics, Category, DiffusionInfo, ModelMetadata, band_name,
                              read_metadata, wavelength_nm)
from engine.progress import Reporter

ROOT = Path(__file__).resolve().parents[2]
STATS = {"p2": 1.0, "p98": 9.0, "mean": 5.0, "std": 2.0, "min": 0.0, "max": 10.0}


def test_band_identity_of_the_delmarva_bands(delmarva_bands):
    from engine.api import model_metadata

    with RasterStack([Modality(delmarva_bands, "spectral")]) as stack:
        stats = compute_statistics(stack, sample_pixels=2_000, seed=0, window=(0, 0, 64, 64))
        meta = model_metadata("pretrain", "fast", stack, stats, None, 0)
    bands = meta.modalities[0].bands
    assert [b.name for b in bands] == ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10",
                                       "B11", "B12", "B8A"]
    b04 = bands[3]
    assert (b04.modality, b04.kind, b04.file, b04.index) == (0, "spectral", "s2_B04.tif", 1)
    assert b04.wavelength_nm == pytest.approx(664.6) and bands[12].wavelength_nm == pytest.approx(864.7)
    assert b04.statistics == stats[0][3]
    assert meta.grid.res == (10.0, 10.0) and "UTM zone 18N" in meta.grid.crs


def test_band_names_and_wavelength_tags():
    assert band_name("", "T18SVH_20200601_B8A_20m") == "B8A"
    assert band_name("Band 4 (B4)") == "B04" and band_name("B12") == "B12"
    assert band_name("VV", "S1_VV") is None and band_name("Blue") is None
    assert wavelength_nm("490 nm") == 490.0 and wavelength_nm("0.665 um") == pytest.approx(665.0)
    assert wavelength_nm("blue") is None
    sar = Band.identify(1, "sar_db", "/x/S1_B04_VV.tif", 1)
    assert sar.name is None and sar.wavelength_nm is None       # only spectral bands get a Sentinel-2 name


def _v1_metadata() -> dict:
    """What engine 0.1 (format 1) wrote for a classifier: dict literals, band labels as text."""
    labels = [f"s2_B0{i}.tif:1" for i in (2, 3, 4)]
    return {"format": FORMAT, "format_version": 1, "engine_version": "0.1.0", "created": "2026-11-30T10:00:00+00:00",
            "kind": "classifier", "profile": "fast", "seed": 0,
            "modalities": [{"kind": "spectral", "name": "spectral", "band_count": 3, "band_descriptions": labels,
                            "files": ["s2_B02.tif", "s2_B03.tif", "s2_B04.tif"], "nodata": None},
                           {"kind": "sar_db", "name": "sar_db", "band_count": 2,
                            "band_descriptions": ["s1.tif:1 (VV)", "s1.tif:2 (VH)"], "files": ["s1.tif"],
                            "nodata": None}],
            "statistics": [[STATS] * 3, [STATS] * 2],
            "grid": {"crs": "EPSG:32618", "res": [10.0, 10.0], "bounds": [0, 0, 100, 100]},
            "diffusion_config": {"width": 4}, "band_layout": {"S": 8}, "diffusion_stats": [[STATS] * 3, [STATS] * 2],
            "pretrain_iterations": 6, "network_config": {"d": 32}, "training_config": {"patch_size": 9},
            "classes": [{"value": 1, "name": "Water", "color": "#1f78b4", "label": 1},
                        {"value": 7, "name": "Built-up", "color": "#e31a1c", "label": 7}],
            "patch_size": 9, "tile": {"halo": 20}, "pca": None, "report": {"accuracy": {"oa": 0.9}},
            "inputs": {"spectral": ["s2_B02.tif"], "auxiliary": [["s1.tif"]], "training": "t.gpkg",
                       "class_field": "class_id"}, "world_size": 1}


def test_format_1_files_are_migrated(tmp_path):
    path = tmp_path / "v1.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"bdgf": json.dumps(_v1_metadata())})
    meta = read_metadata(path)
    assert meta.format_version == 1 and meta.kind == "classifier" and meta.tensors_sha256 is None
    assert meta.band_counts == [3, 2]
    assert [b.name for b in meta.modalities[0].bands] == ["B02", "B03", "B04"]
    assert meta.modalities[0].bands[2].wavelength_nm == pytest.approx(664.6)
    vh = meta.modalities[1].bands[1]
    assert (vh.modality, vh.kind, vh.file, vh.index, vh.description) == (1, "sar_db", "s1.tif", 2, "VH")
    assert meta.statistics()[1][0] == BandStatistics.from_dict(STATS)
    assert meta.classes == [Category(1, "Water", "#1f78b4"), Category(7, "Built-up", "#e31a1c")]
    assert meta.diffusion.iterations == 6 and meta.halo == 20
    assert meta.training_data == {"file": "t.gpkg", "class_field": "class_id"}
    assert load_model(path)[1] == meta                                   # no checksum in format 1: loads
    assert meta.to_dict()["format_version"] == contract.FORMAT_VERSION  # written back as format 2


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update(classes=d["classes"][:1]), "at least 2 classes"),
    (lambda d: d["classes"][0].update(color="blue"), "#rrggbb"),
    (lambda d: d["classes"][1].update(value=1), "distinct"),
    (lambda d: d.update(kind="weights"), "kind 'weights'"),
    (lambda d: d["modalities"].reverse(), "first modality must be spectral"),
    (lambda d: d.pop("network_config"), "network_config is missing"),
])
def test_invalid_metadata_is_refused_naming_the_field(tmp_path, change, words):
    d = _v1_metadata()
    change(d)
    path = tmp_path / "bad.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"bdgf": json.dumps(d)})
    with pytest.raises(EngineError, match=words) as e:
        read_metadata(path)
    assert str(path) in e.value.message and e.value.hint


def test_round_trip_of_a_pretrain_file(tmp_path):
    bands = [Band.identify(0, "spectral", f"s2_B0{i}.tif", 1, statistics=BandStatistics.from_dict(STATS))
             for i in (2, 3)]
    meta = ModelMetadata(kind="pretrain", modalities=[contract.ModalityInfo("spectral", "S2", ["a"], None, bands)],
                         diffusion=DiffusionInfo({"width": 4}, {"S": 8}, 3, [[1, 0.5]]))
    path = tmp_path / "pre.safetensors"
    save_model(path, {"unet.w": torch.ones(3)}, meta)
    back = contract.read_metadata(path, verify=True)
    assert back == meta and back.bands[1].name == "B03"
    assert contract.read_metadata_dict(path)["modalities"][0]["bands"][0]["wavelength_nm"] == pytest.approx(492.4)


def test_contract_is_stdlib_only(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(path, {"w": torch.zeros(2)}, ModelMetadata(kind="checkpoint", state={"stage": "train"}))
    code = ("import sys\nfrom engine import contract\nm = contract.read_metadata(sys.argv[1], verify=True)\n"
            "assert m.kind == 'checkpoint'\n"
            "bad = [n for n in ('torch', 'numpy', 'rasterio', 'safetensors') if n in sys.modules]\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_reporter_speaks_the_contract_events():
    stream = io.StringIO()
    rep = Reporter(json_mode=True, stream=stream)
    rep.progress("train", 12.345, 3.21, loss=0.5)
    rep.info("hello")
    rep.metric("val_oa", 0.9, kappa=0.8)
    rep.error("bad", "fix")
    rep.done({"output": "x.tif"})
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert events == [contract.progress_event("train", 12.345, 3.21, loss=0.5), contract.log_event("info", "hello"),
                      contract.metric_event("val_oa", 0.9, kappa=0.8), contract.error_event("bad", "fix"),
                      contract.done_event({"output": "x.tif"})]
    for ev in events:
        assert set(contract.EVENTS[ev["event"]]) <= set(ev)
    text = Reporter(json_mode=False, stream=io.StringIO())
    text.metric("val_oa", 0.98765, kappa=None)
    assert ("info", "val_oa = 0.9877 kappa=n/a") in text.messages    # an undefined metric reads n/a, as in QGIS


def test_contract_file_names(tmp_path):
    out = str(tmp_path / "model.safetensors")
    assert contract.checkpoint_paths(out) == [out + ".checkpoint.safetensors", out + ".checkpoint.safetensors.pre",
                                              out + ".checkpoint.safetensors.cv"]
    tmp = contract.temporary_name(out, pid=42)
    assert tmp == str(tmp_path / ".model.partial-42.safetensors")
    Path(tmp).write_text("x")
    Path(tmp + ".aux.xml").write_text("x")
    assert sorted(contract.temporary_glob(out, 42)) == [tmp, tmp + ".aux.xml"]
    assert contract.temporary_glob(out, 43) == []
