"""The plugin loads as a real plugin; provider, algorithms and parameters are registered as documented."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys

import pytest

from .conftest import REPO

EXPECTED = {
    "bdgf:pretrain": ["SPECTRAL", "AUXILIARY", "AUXILIARY_KIND", "EXTENT", "DEVICE", "PROFILE", "ITERATIONS",
                      "SEED", "LANDSCAPE_CONTEXT", "RESUME", "OUTPUT_MODEL"],
    "bdgf:train": ["SPECTRAL", "AUXILIARY", "AUXILIARY_KIND", "TRAINING", "CLASS_FIELD", "PRETRAINED", "EXTENT",
                   "DEVICE", "PROFILE", "ITERATIONS", "EPOCHS", "SEED", "VALIDATION", "CV_BLOCK_SIZE",
                   "VALIDATION_FRACTION", "CLASS_BALANCE", "PSEUDO_LABELS", "WHITEWATER", "ENSEMBLE_MEMBERS",
                   "PREDICTION", "LANDSCAPE_CONTEXT", "RESUME", "OUTPUT_MODEL", "OUTPUT_REPORT"],
    "bdgf:classify": ["MODEL", "SPECTRAL", "AUXILIARY", "AUXILIARY_KIND", "BAND_ORDER", "EXTENT", "MASK", "DEVICE",
                      "TILE_SIZE", "BATCH_SIZE", "COARSE_TO_FINE", "PREDICTION", "OUTPUT", "OUTPUT_CONFIDENCE",
                      "OUTPUT_UNCERTAINTY", "OUTPUT_PROBABILITIES", "OUTPUT_APPLICABILITY"],
    "bdgf:assess": ["CLASSIFICATION", "REFERENCE", "CLASS_FIELD", "STRATUM_FIELD", "OUTPUT_REPORT", "OUTPUT_TABLE"],
    "bdgf:cleanup": ["INPUT", "MMU", "MMU_UNIT", "MAJORITY", "CONNECTIVITY", "OUTPUT"],
    "bdgf:sampledesign": ["INPUT", "TARGET_SE", "EXPECTED_UA", "EXPECTED_UA_CLASSES", "MIN_PER_CLASS", "SAMPLE_SIZE",
                          "MIN_DISTANCE", "SEED", "OUTPUT"],
    "bdgf:suggestsamples": ["MODEL", "SPECTRAL", "AUXILIARY", "AUXILIARY_KIND", "EXTENT", "MASK", "COUNT",
                            "MIN_DISTANCE", "MEASURE", "BALANCE", "DEVICE", "TILE_SIZE", "BATCH_SIZE", "OUTPUT"],
    "bdgf:setupengine": ["DEVICE", "BASE_PYTHON", "MAMBA", "ENV_FOLDER", "TORCH_INDEX_URL", "INSTALLER", "REINSTALL"],
    "bdgf:enginereport": ["OUTPUT_TEXT"],
}
ADVANCED = {"ITERATIONS", "EPOCHS", "SEED", "VALIDATION", "VALIDATION_FRACTION", "CLASS_BALANCE", "PSEUDO_LABELS",
            "WHITEWATER", "ENSEMBLE_MEMBERS", "CV_BLOCK_SIZE", "TILE_SIZE", "BATCH_SIZE", "RESUME", "COARSE_TO_FINE",
            "LANDSCAPE_CONTEXT", "PREDICTION"}


def test_metadata_complete():
    cp = configparser.ConfigParser()
    cp.read(os.path.join(REPO, "metadata.txt"), encoding="utf-8")
    g = cp["general"]
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "repository",
                "tracker", "tags", "icon", "category", "hasProcessingProvider", "qgisMaximumVersion"):
        assert g.get(key), key
    assert g["name"] == "BDGF" and g["version"] == "0.1.0" and g["qgisMinimumVersion"] == "3.22"
    assert g["qgisMaximumVersion"] == "4.99" and g["hasProcessingProvider"] == "yes" and g["category"] == "Raster"
    for dep in ("torch", "rasterio", "fiona", "scikit-learn", "safetensors", "einops", "tqdm", "mamba-ssm", "CUDA"):
        assert dep in g["about"], dep
    assert os.path.isfile(os.path.join(REPO, g["icon"]))


def test_plugin_loads_as_real_plugin(bdgf_plugin, provider):
    import qgis.utils

    assert "bdgf" in qgis.utils.active_plugins
    assert type(bdgf_plugin).__module__ == "bdgf.bdgf_plugin.plugin"
    assert provider.id() == "bdgf" and provider.name() == "BDGF"
    assert provider.svgIconPath().endswith(".svg") and os.path.isfile(provider.svgIconPath())
    assert not provider.icon().isNull()
    ids = sorted(a.id() for a in provider.algorithms())
    assert ids == sorted(EXPECTED)


def test_plugin_never_imports_torch(bdgf_plugin):
    # checked in a fresh interpreter: other test modules of the same session may import torch themselves
    code = ("import os, sys; os.environ['QT_QPA_PLATFORM']='offscreen'; sys.path.insert(0, sys.argv[1]);"
            "import bdgf.bdgf_plugin.provider, bdgf.bdgf_plugin.algorithms.classify;"
            "print('torch' in sys.modules)")
    from .conftest import _PLUGIN_ROOT

    out = subprocess.run([sys.executable, "-c", code, _PLUGIN_ROOT], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().endswith("False"), out.stderr


@pytest.mark.parametrize("alg_id", sorted(EXPECTED))
def test_parameters(provider, alg_id):
    from qgis.core import QgsApplication, QgsProcessingParameterDefinition

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    assert alg is not None
    keys = [p.name() for p in alg.parameterDefinitions()]
    assert keys == EXPECTED[alg_id]
    for p in alg.parameterDefinitions():
        assert p.name() == p.name().upper()
        assert p.description()
        assert p.help(), p.name()  # per-parameter help
        if p.name() in ADVANCED:
            assert p.flags() & QgsProcessingParameterDefinition.FlagAdvanced, p.name()
    help_html = alg.shortHelpString()
    for p in alg.parameterDefinitions():
        assert p.description() in help_html.replace("&#x27;", "'")
    assert alg.group() and alg.groupId() in ("classification", "accuracy", "engine")
    assert alg.createInstance().name() == alg_id.split(":")[1]
    assert alg.svgIconPath().endswith(".svg")


def test_output_kinds(provider):
    from qgis.core import QgsApplication

    reg = QgsApplication.processingRegistry()
    train = reg.createAlgorithmById("bdgf:train")
    assert train.outputDefinition("OUTPUT_REPORT").type() == "outputHtml"
    assert train.outputDefinition("OUTPUT_MODEL").type() == "outputFile"
    classify = reg.createAlgorithmById("bdgf:classify")
    assert classify.outputDefinition("OUTPUT").type() == "outputRaster"
    assert classify.outputDefinition("OUTPUT_CONFIDENCE").type() == "outputRaster"
    assess = reg.createAlgorithmById("bdgf:assess")
    assert assess.outputDefinition("OUTPUT_REPORT").type() == "outputHtml"
    assert assess.outputDefinition("OUTPUT_TABLE").type() == "outputFile"
    enum = classify.parameterDefinition("DEVICE").options()
    assert len(enum) == 3
    assert len(reg.createAlgorithmById("bdgf:train").parameterDefinition("AUXILIARY_KIND").options()) == 3


def test_engine_python_setting_registered(provider):
    from processing.core.ProcessingConfig import ProcessingConfig

    assert "BDGF_ENGINE_PYTHON" in ProcessingConfig.settings
    assert ProcessingConfig.settings["BDGF_ENGINE_PYTHON"].group == "BDGF"


def test_engine_python_resolution(bdgf_plugin, monkeypatch, tmp_path):
    from bdgf.bdgf_plugin import settings

    settings.set_engine_python("")
    monkeypatch.delenv("BDGF_ENGINE_PYTHON", raising=False)
    path, origin = settings.engine_python()
    assert origin == "plugin venv" and path.endswith(os.path.join(".venv", "bin", "python"))
    monkeypatch.setenv("BDGF_ENGINE_PYTHON", "/from/env/python")
    assert settings.engine_python() == ("/from/env/python", "environment")
    fake = tmp_path / "python"
    fake.write_text("")
    settings.set_engine_python(str(fake))
    try:
        assert settings.engine_python() == (str(fake), "setting")
    finally:
        settings.set_engine_python("")


def test_unload_and_reload(bdgf_plugin):
    from qgis.core import QgsApplication

    reg = QgsApplication.processingRegistry()
    bdgf_plugin.unload()
    assert reg.providerById("bdgf") is None
    bdgf_plugin.initProcessing()
    assert reg.providerById("bdgf") is not None
    assert reg.algorithmById("bdgf:classify") is not None
