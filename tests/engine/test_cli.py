"""Command line: help, info, doctor, assess end to end (JSON lines), exit codes, SIGTERM cancellation."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

import engine.cli as cli
from engine.errors import EngineError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
X0, Y0 = 500000.0, 4000000.0


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def events(stdout):
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    return [json.loads(ln) for ln in lines]  # every line must be JSON


def make_case(folder, size=80, sparse=False):
    """A classification (value 1 for cols < 40, 2 elsewhere) and reference polygons (field code)."""
    path = folder / "map.tif"
    prof = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint8", crs="EPSG:32631",
                transform=from_origin(X0, Y0, 10, 10), nodata=0, tiled=True, blockxsize=256, blockysize=256,
                compress="deflate", sparse_ok=sparse)
    with rasterio.open(path, "w", **prof) as dst:
        a = np.ones((80, 80), np.uint8)
        a[:, 40:] = 2
        dst.write(a, 1, window=rasterio.windows.Window(0, 0, 80, 80))

    def rect(r0, r1, c0, c1):
        x0, x1, y0, y1 = X0 + c0 * 10, X0 + c1 * 10, Y0 - r0 * 10, Y0 - r1 * 10
        return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}

    feats = [(1, rect(0, 10, 30, 50)), (2, rect(20, 30, 60, 70))]
    fc = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}},
          "features": [{"type": "Feature", "properties": {"code": c}, "geometry": g} for c, g in feats]}
    (folder / "ref.geojson").write_text(json.dumps(fc))
    return path, folder / "ref.geojson"


def test_help_every_command_without_torch():
    code = ("import sys, engine.cli as c\n"
            "for cmd in ([], ['pretrain'], ['train'], ['classify'], ['assess'], ['info'], ['doctor']):\n"
            "    try:\n        c.main(cmd + ['--help'])\n    except SystemExit as e:\n        assert e.code == 0, cmd\n"
            "print('TORCH' if 'torch' in sys.modules else 'NOTORCH')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("NOTORCH")
    for opt in ("--spectral", "--aux", "--output", "--profile", "--iterations", "--resume", "--training",
                "--class-field", "--class-styles", "--pretrained", "--validation-fraction", "--early-stopping", "--class-balance",
                "--members", "--model", "--confidence", "--probabilities", "--mask", "--tile", "--batch-size",
                "--classification", "--reference", "--table", "--json", "--json-progress", "--device", "--seed",
                "--overwrite", "--extent", "--extent-crs", "--nodata-spectral", "--nodata-aux"):
        assert opt in out.stdout, opt
    r = run("--help")
    assert r.returncode == 0 and "assess" in r.stdout


def test_info_and_doctor(tmp_path):
    import torch
    from engine.io.artifact import save_model
    from engine.io.schema import ModelMetadata, read_metadata

    model = tmp_path / "m.safetensors"
    save_model(model, {"w": torch.zeros(2)}, ModelMetadata(kind="checkpoint", state={"stage": "train"}))
    code = ("import sys, engine.cli as c\nrc = c.main(['info', sys.argv[1]])\n"
            "assert 'torch' not in sys.modules\nsys.exit(rc)\n")
    out = subprocess.run([sys.executable, "-c", code, str(model)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == read_metadata(model).to_dict()
    r = run("info", model, "--json-progress")
    assert events(r.stdout)[-1] == {"event": "done", "outputs": read_metadata(model).to_dict()}
    (tmp_path / "bad.safetensors").write_bytes(os.urandom(100))
    r = run("info", tmp_path / "bad.safetensors", "--json-progress")
    ev = events(r.stdout)
    assert r.returncode == 2 and ev[-1]["event"] == "error" and "not a model file" in ev[-1]["message"]
    r = run("doctor")
    assert r.returncode == 0
    d = json.loads(r.stdout)
    for key in ("python", "python_version", "engine", "torch", "cuda", "device_name", "mamba_ssm"):
        assert key in d
    assert d["torch"] == torch.__version__ and d["cuda"] == torch.cuda.is_available()


def test_assess_end_to_end(tmp_path):
    cls, ref = make_case(tmp_path)
    args = ["assess", "--classification", cls, "--reference", ref, "--class-field", "code",
            "--report", tmp_path / "r.html", "--table", tmp_path / "t.csv", "--json", tmp_path / "r.json",
            "--json-progress"]
    r = run(*args)
    assert r.returncode == 0, r.stderr
    ev = events(r.stdout)
    assert {e["event"] for e in ev} >= {"log", "progress", "metric", "done"}
    assert ev[-1]["event"] == "done"
    out = ev[-1]["outputs"]
    assert out["report"] == str(tmp_path / "r.html") and os.path.exists(out["table"]) and os.path.exists(out["json"])
    # 200 px of class 1: 100 on map 1, 100 on map 2; 100 px of class 2 all correct
    assert out["metrics"]["oa"] == pytest.approx(200 / 300) and out["metrics"]["n"] == 300
    assert json.load(open(out["json"]))["accuracy"]["confusion_matrix"] == [[100, 100], [0, 100]]
    # outputs exist -> exit 4 with an error event, nothing changed
    before = os.path.getmtime(tmp_path / "r.html")
    r = run(*args)
    assert r.returncode == 4
    ev = events(r.stdout)
    assert ev[-1]["event"] == "error" and "r.html" in ev[-1]["message"] and "--overwrite" in ev[-1]["hint"]
    assert os.path.getmtime(tmp_path / "r.html") == before
    r = run(*args, "--overwrite")
    assert r.returncode == 0
    assert sorted(os.listdir(tmp_path)) == ["map.tif", "r.html", "r.json", "ref.geojson", "t.csv"]


def test_bad_input_and_usage(tmp_path):
    cls, ref = make_case(tmp_path)
    r = run("assess", "--classification", cls, "--reference", ref, "--class-field", "nope", "--json-progress")
    ev = events(r.stdout)
    assert r.returncode == 2 and ev[-1]["event"] == "error" and "nope" in ev[-1]["message"] and ev[-1]["hint"]
    r = run("assess", "--classification", tmp_path / "missing.tif", "--reference", ref, "--class-field", "code")
    assert r.returncode == 2 and "missing.tif" in r.stderr and r.stdout == ""
    r = run("assess", "--classification", cls, "--json-progress")  # usage error
    assert r.returncode == 2 and events(r.stdout)[-1]["event"] == "error"


def test_train_refuses_a_class_balance_outside_0_1_before_any_work(tmp_path):
    crop = os.path.join(ROOT, "resources", "sample_data", "delmarva_s2")
    bands = sorted(os.path.join(crop, f) for f in os.listdir(crop) if f.startswith("s2_B") and f.endswith(".tif"))
    out = tmp_path / "m.safetensors"
    r = run("train", "--spectral", *bands, "--training", os.path.join(crop, "training_polygons.gpkg"),
            "--class-field", "class_id", "--output", out, "--class-balance", "1.5", "--json-progress")
    ev = events(r.stdout)
    assert r.returncode == 2 and ev[-1]["event"] == "error" and "--class-balance" in ev[-1]["message"]
    assert "1.5" in ev[-1]["message"] and ev[-1]["hint"] and not out.exists()


def test_train_refuses_an_ensemble_size_outside_1_to_8_before_any_work(tmp_path):
    crop = os.path.join(ROOT, "resources", "sample_data", "delmarva_s2")
    bands = sorted(os.path.join(crop, f) for f in os.listdir(crop) if f.startswith("s2_B") and f.endswith(".tif"))
    out = tmp_path / "m.safetensors"
    for bad in ("0", "9"):
        r = run("train", "--spectral", *bands, "--training", os.path.join(crop, "training_polygons.gpkg"),
                "--class-field", "class_id", "--output", out, "--members", bad, "--json-progress")
        ev = events(r.stdout)
        assert r.returncode == 2 and ev[-1]["event"] == "error", r.stdout
        assert f"--members {bad}" in ev[-1]["message"] and ev[-1]["hint"] and not out.exists()


def test_train_refuses_an_unknown_or_mistyped_profile_override_before_any_work(tmp_path):
    crop = os.path.join(ROOT, "resources", "sample_data", "delmarva_s2")
    bands = sorted(os.path.join(crop, f) for f in os.listdir(crop) if f.startswith("s2_B") and f.endswith(".tif"))
    out = tmp_path / "m.safetensors"
    for item in ("training.no_such_field=1", "training.epochs=many", "network.mamba_guidance=maybe"):
        r = run("train", "--spectral", *bands, "--training", os.path.join(crop, "training_polygons.gpkg"),
                "--class-field", "class_id", "--output", out, "--set", item, "--json-progress")
        ev = events(r.stdout)
        assert r.returncode == 2 and ev[-1]["event"] == "error" and item in ev[-1]["message"], item
        assert ev[-1]["hint"] and not out.exists()


def test_train_keeps_the_read_out_it_is_told_and_refuses_heads_that_learn_no_classes(tmp_path):
    """``train --prediction heads``: the model file keeps the branch heads' mean whatever the folds say (the
    report's BDGF figures are the heads', the fused classifier's OA is beside them); ``heads`` for a network whose
    heads learn no classes is refused before any work."""
    from engine.contract import read_metadata_dict

    crop = os.path.join(ROOT, "resources", "sample_data", "delmarva_s2")
    bands = sorted(os.path.join(crop, f) for f in os.listdir(crop) if f.startswith("s2_B") and f.endswith(".tif"))
    common = ["--spectral", *bands, "--training", os.path.join(crop, "training_polygons.gpkg"), "--class-field",
              "class_id", "--extent", "441130", "4172060", "443050", "4173340", "--iterations", "1", "--epochs", "1",
              "--validation", "cv:3", "--device", "cpu", "--json-progress"]
    out = tmp_path / "m.safetensors"
    r = run("train", *common, "--output", out, "--prediction", "heads", "--report", tmp_path / "r.html")
    assert r.returncode == 0, r.stdout[-2000:]
    assert read_metadata_dict(str(out))["network_config"]["prediction"] == "heads"
    metrics = events(r.stdout)[-1]["outputs"]["metrics"]
    assert metrics["prediction"] == "heads" and metrics["alt_prediction"] == "fused"
    assert "BDGF OA, fused classifier" in (tmp_path / "r.html").read_text()
    refused = tmp_path / "no_heads.safetensors"
    r = run("train", *common, "--output", refused, "--prediction", "heads", "--set", "network.branch_ce=false")
    ev = events(r.stdout)
    assert r.returncode == 2 and ev[-1]["event"] == "error" and "heads" in ev[-1]["message"], r.stdout[-2000:]
    assert "--prediction fused" in ev[-1]["hint"] and not refused.exists()


def test_unexpected_error(monkeypatch, capsys, tmp_path):
    def boom(args, rep):
        raise RuntimeError("kaputt")

    monkeypatch.setitem(cli.COMMANDS, "doctor", boom)
    assert cli.main(["doctor", "--json-progress"]) == 1
    cap = capsys.readouterr()
    ev = events(cap.out)
    assert ev[-1]["event"] == "error" and "RuntimeError: kaputt" in ev[-1]["message"]
    assert "Traceback" in cap.err


def test_modalities_and_extent(tmp_path):
    for n in ("s1.tif", "s2.tif", "vv.tif", "dem.tif"):
        (tmp_path / n).write_bytes(b"")
    p = cli.build_parser()
    a = p.parse_args(["classify", "--model", "m", "--output", "o.tif", "--spectral", str(tmp_path / "s1.tif"),
                      str(tmp_path / "s2.tif"), "--aux", "sar_db", str(tmp_path / "vv.tif"), "--aux", "elevation",
                      str(tmp_path / "dem.tif"), "--nodata-spectral", "0", "--nodata-aux", "-9999",
                      "--extent", "1", "2", "3", "4", "--extent-crs", "EPSG:4326"])
    spectral, aux = cli.modalities(a)
    assert spectral.kind == "spectral" and len(spectral.paths) == 2 and spectral.nodata == 0
    assert [(m.kind, m.nodata) for m in aux] == [("sar_db", -9999), ("elevation", -9999)]
    assert cli.extent_arg(a) == {"bounds": (1, 2, 3, 4), "crs": "EPSG:4326"}
    bad = p.parse_args(["pretrain", "--output", "o", "--spectral", str(tmp_path / "s1.tif"), "--aux", "optical",
                        str(tmp_path / "vv.tif")])
    with pytest.raises(EngineError, match="unknown kind"):
        cli.modalities(bad)
    bad = p.parse_args(["pretrain", "--output", "o", "--spectral", str(tmp_path / "s1.tif"), "--aux", "sar_db"])
    with pytest.raises(EngineError, match="no raster file"):
        cli.modalities(bad)
    bad = p.parse_args(["pretrain", "--output", "o", "--spectral", str(tmp_path / "nope.tif")])
    with pytest.raises(EngineError, match="nope.tif"):
        cli.modalities(bad)


def test_signal_handler_sets_token():
    from engine.progress import CancelToken

    token = CancelToken()
    restore = cli.install_signal_handlers(token)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert token.cancelled and "SIGTERM" in token.reason
    finally:
        restore()


def test_sigterm_cancels_assess(tmp_path):
    """A long assess (sparse 40000 x 40000 raster) stops within seconds of SIGTERM, exit 3, no report left."""
    cls, ref = make_case(tmp_path, size=40000, sparse=True)
    proc = subprocess.Popen([sys.executable, "-m", "engine", "assess", "--classification", str(cls), "--reference",
                             str(ref), "--class-field", "code", "--report", str(tmp_path / "r.html"), "--json",
                             str(tmp_path / "r.json"), "--json-progress"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            ev = json.loads(line)
            if ev["event"] == "progress" and ev["stage"] == "map pixel counts":
                break
            assert ev["event"] != "done"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()
        rc = proc.wait(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 3, proc.stderr.read()
    assert elapsed < 5
    ev = events(rest)
    assert all(e["event"] != "done" for e in ev)
    assert any(e["event"] == "log" and "Cancelled" in e["message"] for e in ev)
    assert sorted(os.listdir(tmp_path)) == ["map.tif", "ref.geojson"]
