"""bdgf:setupengine and bdgf:enginereport.

The end-to-end test is what a QGIS user does, headless: build the zip, install it into a clean profile,
``qgis_process run bdgf:setupengine`` (a real venv with torch made from the system Python), run it again
(check only), then a tiny bdgf:train and bdgf:classify on the embedded Delmarva crop with the environment it
made (no BDGF_ENGINE_PYTHON, no developer venv), and prove QGIS's own numpy and GDAL did not change.
Step times are printed (run pytest with -s to see them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile

import pytest

from .conftest import DATA, QGIS_PROCESS, REPO, SMALL_EXTENT_STR, band_paths, run_alg

QGIS_PYTHON = "/usr/bin/python3"  # Debian's QGIS runs on the system Python
QGIS_FACTS = ("import json, numpy, osgeo, osgeo.gdal as g; print(json.dumps({'numpy': numpy.__version__, "
              "'numpy_file': numpy.__file__, 'gdal': g.__version__, 'osgeo_file': osgeo.__file__}))")


def clean_profile_env(cfg) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(cfg),
               QGIS_OPTIONS_PATH=str(cfg), XDG_RUNTIME_DIR=str(cfg))
    for key in ("QGIS_PLUGINPATH", "BDGF_ENGINE_PYTHON", "VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(key, None)
    return env


def qp_json(args, env, timeout):
    """qgis_process --json run ...; returns (result dict, seconds)."""
    t0 = time.monotonic()
    r = subprocess.run([QGIS_PROCESS, "--json", "run"] + args, env=env, capture_output=True, text=True,
                       timeout=timeout)
    seconds = time.monotonic() - t0
    assert r.returncode == 0, f"{args[0]} failed:\n{r.stdout[-4000:]}\n{r.stderr[-3000:]}"
    return json.loads(r.stdout[r.stdout.index("{"):]), seconds


def qgis_python_facts() -> dict:
    return json.loads(subprocess.run([QGIS_PYTHON, "-I", "-c", QGIS_FACTS], capture_output=True, text=True,
                                     check=True).stdout)


@pytest.mark.slow
def test_zip_setupengine_then_train_and_classify_on_a_clean_profile(tmp_path):
    timings = {}
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "build_zip.py"), "--output",
                        str(tmp_path / "dist")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    timings["zip"] = time.monotonic() - t0
    cfg = tmp_path / "profile"
    plugins = cfg / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "dist" / "bdgf-0.1.0.zip") as zf:
        names = zf.namelist()
        for must in ("bdgf/requirements.txt", "bdgf/constraints.txt", "bdgf/requirements-dev.txt",
                     "bdgf/bdgf_plugin/engine_env.py", "bdgf/bdgf_plugin/algorithms/setupengine.py"):
            assert must in names, must
        zf.extractall(plugins)
    env = clean_profile_env(cfg)
    assert subprocess.run([QGIS_PROCESS, "plugins", "enable", "bdgf"], env=env, capture_output=True,
                          timeout=120).returncode == 0
    listing = subprocess.run([QGIS_PROCESS, "list"], env=env, capture_output=True, text=True, timeout=120).stdout
    assert "bdgf:setupengine" in listing and "bdgf:enginereport" in listing
    qgis_before = qgis_python_facts()

    first, timings["setupengine (first run)"] = qp_json(["bdgf:setupengine", "--", "DEVICE=2"], env, 900)
    engine_dir = cfg / "profiles" / "default" / "bdgf" / "engine"
    python = str(engine_dir / "bin" / "python")
    assert first["results"]["ACTION"] == "installed" and first["results"]["ENGINE_PYTHON"] == python
    assert first["results"]["TORCH"].startswith("2.13.0") and first["results"]["CUDA"] is False
    assert not str(engine_dir).startswith(str(plugins))  # outside the plugin folder: upgrades keep it
    second, timings["setupengine (second run, check only)"] = qp_json(["bdgf:setupengine", "--", "DEVICE=2"],
                                                                      env, 300)
    assert second["results"]["ACTION"] == "checked"
    assert not any("pip install" in line for line in second["log"]["info"] if isinstance(line, str))
    ini = (cfg / "profiles" / "default" / "QGIS" / "QGIS3.ini").read_text()
    assert f"BDGF_ENGINE_PYTHON={python}" in ini

    # the engine environment is isolated: its own numpy, no Debian dist-packages
    probe = subprocess.run([python, "-c", "import json, sys, numpy; print(json.dumps([numpy.__file__, sys.path]))"],
                           capture_output=True, text=True, check=True)
    numpy_file, path = json.loads(probe.stdout)
    assert numpy_file.startswith(str(engine_dir)) and not any("dist-packages" in p for p in path)

    model = str(tmp_path / "model.safetensors")
    training = os.path.join(DATA, "training_polygons.gpkg") + "|layername=training"
    spectral = [f"SPECTRAL={p}" for p in band_paths()]
    train, timings["train"] = qp_json(["bdgf:train", "--"] + spectral + [
        f"TRAINING={training}", "CLASS_FIELD=class_id", f"EXTENT={SMALL_EXTENT_STR}", "DEVICE=2", "PROFILE=0",
        "ITERATIONS=3", "EPOCHS=1", "SEED=1", f"OUTPUT_MODEL={model}"], env, 900)
    assert os.path.isfile(model)
    log = "\n".join(str(x) for x in train["log"]["info"])
    assert python in log  # the engine ran in the environment bdgf:setupengine made
    classes = str(tmp_path / "classes.tif")
    # a 600 m x 600 m corner (60 x 60 px) of the training extent: the smallest useful classification
    _, timings["classify"] = qp_json(["bdgf:classify", "--", f"MODEL={model}"] + spectral + [
        "EXTENT=446300,446900,4169900,4170500 [EPSG:32618]", "DEVICE=2", f"OUTPUT={classes}"], env, 900)
    from osgeo import gdal

    ds = gdal.Open(classes)
    assert (ds.RasterXSize, ds.RasterYSize) == (60, 60)
    assert (ds.GetRasterBand(1).ReadAsArray() > 0).mean() > 0.9  # classified, not nodata
    ds = None

    report, _ = qp_json(["bdgf:enginereport", "--", f"OUTPUT_TEXT={tmp_path / 'report.txt'}"], env, 300)
    text = report["results"]["REPORT"]
    assert python in text and "2.13.0" in text and "rasterio" in text and "QGIS numpy" in text
    assert (tmp_path / "report.txt").read_text() == text
    assert qgis_python_facts() == qgis_before, "QGIS's numpy / GDAL must not change"
    print("\n[setupengine e2e] step times: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def test_setup_and_report_algorithms_registered(provider):
    ids = {alg.id() for alg in provider.algorithms()}
    assert {"bdgf:setupengine", "bdgf:enginereport"} <= ids
    alg = provider.algorithm("setupengine")
    assert alg.group() == "Engine" and alg.parameterDefinition("DEVICE").options()[2] == "CPU"


def test_setupengine_preflight_rejects_plugin_folder_and_missing_python(provider, tmp_path):
    from qgis.core import QgsApplication, QgsProcessingContext

    alg = QgsApplication.processingRegistry().createAlgorithmById("bdgf:setupengine")
    context = QgsProcessingContext()
    ok, msg = alg.checkParameterValues({"DEVICE": 2, "ENV_FOLDER": os.path.join(REPO, "engine_env")}, context)
    assert not ok and "inside the plugin folder" in msg
    ok, msg = alg.checkParameterValues({"DEVICE": 2, "BASE_PYTHON": str(tmp_path / "python3.12")}, context)
    assert not ok and "python3.12" in msg and "does not exist" in msg
    # (pytest-qgis keeps its profile inside the checkout, so the default folder would be refused here)
    ok, msg = alg.checkParameterValues({"DEVICE": 2, "ENV_FOLDER": str(tmp_path / "new-engine")}, context)
    assert ok, msg


def test_enginereport_with_the_developer_engine(provider, tmp_path):
    out = tmp_path / "report.txt"
    res, _ = run_alg("bdgf:enginereport", {"OUTPUT_TEXT": str(out)})
    text = res["REPORT"]
    for needle in ("## System", "## QGIS", "QGIS numpy", "QGIS GDAL (osgeo)", "## Engine environment",
                   "torch_cuda_build", "## NVIDIA GPUs (nvidia-smi)", "## Engine packages", "safetensors"):
        assert needle in text, needle
    assert "2.13.0" in text and out.read_text() == text


def test_engine_python_prefers_the_profile_environment(bdgf_plugin, tmp_path, monkeypatch):
    from bdgf.bdgf_plugin import settings

    monkeypatch.delenv("BDGF_ENGINE_PYTHON", raising=False)
    monkeypatch.setattr(settings, "default_engine_dir", lambda: str(tmp_path / "engine"))
    old = settings.configured_engine_python()
    settings.set_engine_python("")
    try:
        # nothing set up yet: the developer venv of the checkout
        assert settings.engine_python()[1] == "plugin venv"
        (tmp_path / "engine" / "bin").mkdir(parents=True)
        (tmp_path / "engine" / "bin" / "python").write_text("")
        assert settings.engine_python() == (str(tmp_path / "engine" / "bin" / "python"), "engine environment")
    finally:
        settings.set_engine_python(old)


def test_missing_engine_points_at_setupengine(bdgf_plugin, tmp_path):
    from qgis.core import QgsProcessingException

    from bdgf.bdgf_plugin import runner

    with pytest.raises(QgsProcessingException) as exc:
        runner.doctor(str(tmp_path / "no-python"), "setting", use_cache=False)
    text = str(exc.value)
    assert "bdgf:setupengine" in text and "Set up engine environment" in text and "no-python" in text


def test_setupengine_cancel_stops_the_running_step(provider, tmp_path):
    """Cancelling while a step runs kills it; the run ends with 'Cancelled', and no stamp claims success."""
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    class CancelOnFirstCommand(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.commands = []

        def pushConsoleInfo(self, info):  # noqa: N802
            self.commands.append(info)
            self.cancel()
            super().pushConsoleInfo(info)

    feedback = CancelOnFirstCommand()
    env_dir = tmp_path / "engine"
    with pytest.raises(QgsProcessingException) as exc:
        processing.run("bdgf:setupengine", {"DEVICE": 2, "ENV_FOLDER": str(env_dir), "INSTALLER": 1},
                       feedback=feedback)
    assert "Cancelled" in str(exc.value)
    assert feedback.commands and "-m venv" in feedback.commands[0]
    assert not (env_dir / "bdgf-env.json").exists()
    assert "-m venv" in (tmp_path / "engine-setup.log").read_text()
