"""bdgf:enginereport - a copyable diagnostics report (platform, QGIS, engine Python, torch, CUDA, GPUs,
mamba-ssm, package versions) for bug reports (torch-free: the engine facts come from its subprocess)."""

from __future__ import annotations

import configparser
import os
import platform
import sys

from qgis.core import Qgis, QgsApplication, QgsProcessingOutputString, QgsProcessingParameterFileDestination
from qgis.PyQt.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

from .. import PLUGIN_DIR, engine_env, settings
from .base import BdgfAlgorithm
from .setupengine import EngineGroupMixin


def plugin_version() -> str:
    cp = configparser.ConfigParser()
    cp.read(os.path.join(PLUGIN_DIR, "metadata.txt"), encoding="utf-8")
    return cp.get("general", "version", fallback="?")


def qgis_rows() -> list:
    """QGIS's side: versions and where its own numpy and GDAL come from (the set-up never changes them)."""
    rows = [("QGIS", Qgis.QGIS_VERSION), ("Qt", QT_VERSION_STR), ("PyQt", PYQT_VERSION_STR),
            ("QGIS Python", sys.version.split()[0]), ("QGIS Python prefix", getattr(sys, "base_prefix", sys.prefix)),
            ("QGIS profile", QgsApplication.qgisSettingsDirPath())]
    try:
        import numpy

        rows.append(("QGIS numpy", f"{numpy.__version__} ({os.path.dirname(numpy.__file__)})"))
    except ImportError:
        rows.append(("QGIS numpy", "not importable"))
    try:
        from osgeo import gdal

        rows.append(("QGIS GDAL (osgeo)", f"{gdal.__version__} ({os.path.dirname(gdal.__file__)})"))
    except ImportError:
        rows.append(("QGIS GDAL (osgeo)", "not importable"))
    return rows


class EngineReportAlgorithm(EngineGroupMixin, BdgfAlgorithm):
    _name = "enginereport"

    OUTPUT_TEXT = "OUTPUT_TEXT"
    REPORT = "REPORT"

    def displayName(self):  # noqa: N802
        return self.tr("Engine report (diagnostics)")

    def tags(self):
        return self.tr("bdgf,diagnostics,report,bug,support,torch,cuda,gpu,versions").split(",")

    def shortDescription(self):  # noqa: N802
        return self.tr(
            "Collects what a bug report needs: the operating system, QGIS and its Python, the engine Python and "
            "where it comes from, torch and its CUDA build, whether CUDA works, the GPU (name, memory, driver), "
            "mamba-ssm and the versions of every package in the engine environment. Copy it from the log or "
            "save it to a text file. Nothing is changed.")

    def helpParameters(self):  # noqa: N802
        return [(self.OUTPUT_TEXT, self.tr("Optional text file to save the report to (empty: only the log)."))]

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add(QgsProcessingParameterFileDestination(
            self.OUTPUT_TEXT, self.tr("Report file"), self.tr("Text files (*.txt)"), optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputString(self.REPORT, self.tr("Report")))
        self._apply_help()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        python, origin = settings.engine_python()
        sections = [
            ("System", [("platform", platform.platform()), ("machine", platform.machine()),
                        ("CPU cores", os.cpu_count())]),
            ("BDGF plugin", [("version", plugin_version()), ("folder", PLUGIN_DIR)]),
            ("QGIS", qgis_rows()),
        ] + engine_env.engine_sections(python, origin, PLUGIN_DIR)
        text = engine_env.format_report(sections)
        for line in text.splitlines():
            feedback.pushInfo(line)
        path = self.parameterAsFileOutput(parameters, self.OUTPUT_TEXT, context) if self.is_set(
            parameters, self.OUTPUT_TEXT) else ""
        results = {self.REPORT: text}
        if path:
            with open(path + ".partial", "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(path + ".partial", path)
            results[self.OUTPUT_TEXT] = path
        return results
