"""BDGF Processing provider (id ``bdgf``)."""

from __future__ import annotations

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..engine.contract import ENGINE_VERSION
from . import PLUGIN_DIR
from .algorithms.assess import AssessAlgorithm
from .algorithms.classify import ClassifyAlgorithm
from .algorithms.cleanup import CleanupAlgorithm
from .algorithms.enginereport import EngineReportAlgorithm
from .algorithms.pretrain import PretrainAlgorithm
from .algorithms.setupengine import SetupEngineAlgorithm
from .algorithms.sampledesign import SampleDesignAlgorithm
from .algorithms.suggestsamples import SuggestSamplesAlgorithm
from .algorithms.train import TrainAlgorithm
from .settings import PROVIDER_NAME, SETTING_ENGINE_PYTHON

ICON = os.path.join(PLUGIN_DIR, "resources", "icons", "provider.svg")


class BdgfProvider(QgsProcessingProvider):
    """Provider with the four BDGF algorithms and the *Engine Python* setting."""

    def __init__(self):
        super().__init__()
        self._setting_added = False

    def tr(self, string):
        return QCoreApplication.translate("BdgfProvider", string)

    def id(self):
        return "bdgf"

    def name(self):
        return PROVIDER_NAME

    def longName(self):
        return self.tr("BDGF multimodal land-cover classification ({version})").format(
            version=ENGINE_VERSION)

    def versionInfo(self):  # noqa: N802
        return ENGINE_VERSION

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):  # noqa: N802
        return ICON

    def helpId(self):  # noqa: N802
        return "bdgf"

    def load(self):
        """Register the Processing setting (Options > Providers > BDGF), then the algorithms."""
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting

            ProcessingConfig.settingIcons[self.name()] = self.icon()
            ProcessingConfig.addSetting(Setting(
                self.name(), SETTING_ENGINE_PYTHON,
                self.tr("Engine Python (interpreter with torch; set by 'Set up engine environment'; empty: "
                        "BDGF_ENGINE_PYTHON, then the environment in the QGIS profile folder)"), "",
                valuetype=Setting.FILE))
            ProcessingConfig.readSettings()
            self._setting_added = True
        except Exception:  # Processing's Python plugin absent: settings.py reads QgsSettings directly
            self._setting_added = False
        self.refreshAlgorithms()
        return True

    def unload(self):
        if self._setting_added:
            try:
                from processing.core.ProcessingConfig import ProcessingConfig

                ProcessingConfig.removeSetting(SETTING_ENGINE_PYTHON)
            except Exception:
                pass
            self._setting_added = False

    def loadAlgorithms(self):  # noqa: N802
        for alg in (PretrainAlgorithm(), TrainAlgorithm(), ClassifyAlgorithm(), AssessAlgorithm(),
                    SetupEngineAlgorithm(), EngineReportAlgorithm()):
            self.addAlgorithm(alg)
        for alg in (SuggestSamplesAlgorithm(), CleanupAlgorithm(), SampleDesignAlgorithm()):  # the analyst's loop
            self.addAlgorithm(alg)
