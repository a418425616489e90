"""Plugin tests inside headless QGIS (pytest-qgis).

The repository is loaded as a real plugin named ``bdgf`` through a symlink in a temporary folder
(qgis.utils.plugin_paths + loadPlugin + startProcessingPlugin). Engine runs are slow on
small CPUs: trained models are shared by session-scoped fixtures, with the fast profile, a few iterations and
a small extent of the Delmarva crop.
"""

from __future__ import annotations

import os
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(REPO, "resources", "sample_data", "delmarva_s2")
ENGINE_PYTHON = os.path.join(REPO, ".venv", "bin", "python")
QGIS_PROCESS = "/usr/bin/qgis_process.bin"
# a 1.7 x 1.8 km corner of the crop with water, salt marsh and beach polygons (170 x 180 px at 10 m)
SMALL_EXTENT = (446300.0, 4169900.0, 448200.0, 4171800.0)
SMALL_EXTENT_STR = "446300,448200,4169900,4171800 [EPSG:32618]"
BANDS_10M = ["s2_B02.tif", "s2_B03.tif", "s2_B04.tif", "s2_B08.tif"]

_KEEP: dict = {}
_PLUGIN_ROOT = tempfile.mkdtemp(prefix="bdgf_plugins_")
os.symlink(REPO, os.path.join(_PLUGIN_ROOT, "bdgf"))
sys.path.insert(0, _PLUGIN_ROOT)


def band_paths(names=BANDS_10M):
    return [os.path.join(DATA, n) for n in names]


@pytest.fixture(scope="session", autouse=True)
def _release_layers_before_exit(qgis_app):
    """Delete every layer before pytest-qgis calls exitQgis (QGIS segfaults at exit otherwise)."""
    yield
    import gc

    from qgis.core import QgsProject

    QgsProject.instance().removeAllMapLayers()
    _KEEP.pop("training_polys", None)
    _KEEP.pop("small_training", None)
    try:
        from bdgf.bdgf_plugin import styling

        styling._KEEP.clear()
    except ImportError:
        pass
    gc.collect()


@pytest.fixture(scope="session")
def plugin_root():
    return _PLUGIN_ROOT


@pytest.fixture(scope="session")
def bdgf_plugin(qgis_processing, qgis_iface):
    """The repository loaded as the real plugin ``bdgf`` (classFactory + initProcessing)."""
    import qgis.utils

    os.environ.setdefault("BDGF_ENGINE_PYTHON", ENGINE_PYTHON)
    qgis.utils.plugin_paths[:] = [_PLUGIN_ROOT]
    qgis.utils.updateAvailablePlugins()
    assert "bdgf" in qgis.utils.available_plugins
    assert qgis.utils.loadPlugin("bdgf")
    assert qgis.utils.startProcessingPlugin("bdgf")
    plugin = qgis.utils.plugins["bdgf"]
    _KEEP["plugin"] = plugin
    yield plugin


@pytest.fixture
def provider(bdgf_plugin):
    from qgis.core import QgsApplication

    prov = QgsApplication.processingRegistry().providerById("bdgf")
    if prov is None:  # a test unloaded the plugin: start it again
        bdgf_plugin.initProcessing()
        prov = QgsApplication.processingRegistry().providerById("bdgf")
    assert prov is not None
    return prov


@pytest.fixture(scope="session")
def training_polys(qgis_processing):
    """The Delmarva training polygons with their categorized style (from the GeoPackage)."""
    from qgis.core import QgsProject, QgsVectorLayer

    layer = QgsVectorLayer(os.path.join(DATA, "training_polygons.gpkg") + "|layername=training", "training", "ogr")
    assert layer.isValid()
    if layer.renderer().type() != "categorizedSymbol":
        layer.loadNamedStyle(os.path.join(DATA, "training_polygons.qml"))
    assert layer.renderer().type() == "categorizedSymbol"
    # owned by the project, deleted with removeAllMapLayers() before exitQgis (segfault at exit otherwise)
    QgsProject.instance().addMapLayer(layer, False)
    _KEEP["training_polys"] = layer
    return layer


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bdgf_session")


class LogFeedback:
    """A QgsProcessingFeedback that keeps every message (shown when a run fails)."""

    def __new__(cls):
        from qgis.core import QgsProcessingFeedback

        class _Feedback(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.messages = []
                self.texts = []
                self.on_info = None  # called with each info message, in the runner's thread (tests that cancel)

            def pushInfo(self, info):  # noqa: N802
                self.messages.append(info)
                super().pushInfo(info)
                if self.on_info is not None:
                    self.on_info(info)

            def pushWarning(self, warning):  # noqa: N802
                self.messages.append("WARNING " + warning)
                super().pushWarning(warning)

            def reportError(self, error, fatalError=False):  # noqa: N802, N803
                self.messages.append("ERROR " + error)
                super().reportError(error, fatalError)

            def pushCommandInfo(self, info):  # noqa: N802
                self.messages.append("CMD " + info)
                super().pushCommandInfo(info)

            def setProgressText(self, text):  # noqa: N802
                self.texts.append(text)
                super().setProgressText(text)

            def text(self):
                return "\n".join(self.messages)

        return _Feedback()


def run_alg(alg_id, params, load=False):
    """processing.run (or runAndLoadResults) with a recording feedback; the log is in the failure message."""
    import processing
    from qgis.core import QgsProcessingException

    fb = LogFeedback()
    try:
        if load:
            res = processing.runAndLoadResults(alg_id, params, feedback=fb)
        else:
            res = processing.run(alg_id, params, feedback=fb)
    except QgsProcessingException as exc:
        raise AssertionError(f"{alg_id} failed: {exc}\n{fb.text()}") from exc
    return res, fb


@pytest.fixture(scope="session")
def small_training(bdgf_plugin, training_polys):
    """'Selected features only' source: the training polygons inside SMALL_EXTENT (3 classes), in the project."""
    from qgis.core import QgsProcessingFeatureSourceDefinition, QgsProject, QgsRectangle

    lyr = training_polys.clone()
    lyr.setName("training_small")
    QgsProject.instance().addMapLayer(lyr)
    lyr.selectByRect(QgsRectangle(*SMALL_EXTENT))
    assert lyr.selectedFeatureCount() == 3
    _KEEP["small_training"] = lyr
    return QgsProcessingFeatureSourceDefinition(lyr.id(), True)


@pytest.fixture(scope="session")
def trained_model(bdgf_plugin, small_training, session_dir):
    """bdgf:train on the 4 10-m bands of the small extent, fast profile, few iterations (shared by tests)."""
    out = str(session_dir / "model.safetensors")
    report = str(session_dir / "train_report.html")
    res, fb = run_alg("bdgf:train", {
        "SPECTRAL": band_paths(), "TRAINING": small_training, "EXTENT": SMALL_EXTENT_STR, "DEVICE": 2,
        "PROFILE": 0, "ITERATIONS": 3, "EPOCHS": 1, "SEED": 1, "OUTPUT_MODEL": out, "OUTPUT_REPORT": report})
    return {"path": res["OUTPUT_MODEL"], "report": res["OUTPUT_REPORT"], "feedback": fb, "results": res}


@pytest.fixture(scope="session")
def classified(bdgf_plugin, trained_model, session_dir):
    """bdgf:classify through runAndLoadResults: layers loaded into the project with the post-processors."""
    out = str(session_dir / "classes.tif")
    conf = str(session_dir / "confidence.tif")
    res, fb = run_alg("bdgf:classify", {
        "MODEL": trained_model["path"], "SPECTRAL": band_paths(), "EXTENT": SMALL_EXTENT_STR, "DEVICE": 2,
        "OUTPUT": out, "OUTPUT_CONFIDENCE": conf}, load=True)
    return {"path": out, "confidence": conf, "results": res, "feedback": fb}
