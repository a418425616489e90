"""bdgf:setupengine - create, repair or check the engine's private Python environment (torch-free).

The work is done by :class:`bdgf_plugin.engine_env.EngineSetup` (stdlib only); this algorithm maps its
parameters, streams pip's output to the Processing log, lets the user cancel (the pip process tree is
killed) and sets the *Engine Python* setting on success.
"""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputBoolean,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtCore import QCoreApplication

from ...engine import contract
from .. import PLUGIN_DIR, engine_env, settings
from .base import BdgfAlgorithm

DEVICE_CHOICES = list(contract.DEVICES)          # same order as the DEVICE parameter of the other algorithms
INSTALLERS = ["auto", "pip", "uv"]


class EngineGroupMixin:
    """The *Engine* group of the toolbox (set-up and diagnostics)."""

    def group(self) -> str:
        return QCoreApplication.translate("BdgfAlgorithm", "Engine")

    def groupId(self) -> str:  # noqa: N802
        return "engine"


class SetupEngineAlgorithm(EngineGroupMixin, BdgfAlgorithm):
    _name = "setupengine"

    BASE_PYTHON = "BASE_PYTHON"
    MAMBA = "MAMBA"
    ENV_FOLDER = "ENV_FOLDER"
    TORCH_INDEX_URL = "TORCH_INDEX_URL"
    INSTALLER = "INSTALLER"
    REINSTALL = "REINSTALL"
    ENGINE_PYTHON = "ENGINE_PYTHON"
    TORCH = "TORCH"
    CUDA = "CUDA"
    DEVICE_NAME = "DEVICE_NAME"
    ACTION = "ACTION"

    def displayName(self):  # noqa: N802
        return self.tr("Set up engine environment")

    def tags(self):
        return self.tr("bdgf,install,setup,environment,engine,torch,pytorch,cuda,gpu,venv,pip,dependencies").split(",")

    def shortDescription(self):  # noqa: N802
        return self.tr(
            "Creates (or repairs) the private Python environment the BDGF engine runs in: a virtual environment "
            "in the QGIS profile folder (kept across plugin upgrades) with torch, rasterio, fiona, scikit-learn "
            "and the other pinned engine packages. QGIS's own Python, numpy and GDAL are never touched. Run it "
            "once after installing the plugin (it needs an internet connection, about 1.5 GB of disk for the CPU "
            "build or 5-8 GB for CUDA, and a few minutes). Running it again only checks the environment, unless the plugin's requirements changed. "
            "It ends by running the engine's self-check and sets Processing > Options > Providers > BDGF > "
            "Engine Python.")

    def helpParameters(self):  # noqa: N802
        return [
            (self.DEVICE, self.tr(
                "Which torch build to install. Automatic: a CUDA build when nvidia-smi reports an NVIDIA GPU, "
                "otherwise the CPU build. CUDA: the newest CUDA build the installed NVIDIA driver supports (the "
                "driver version decides; an old driver is reported with the version it needs). CPU: the CPU "
                "build (smaller download; also on a machine with a GPU). macOS always gets the CPU build.")),
            (self.BASE_PYTHON, self.tr(
                "Python 3.10 or newer to build the environment from. Empty: QGIS's own Python installation "
                "on Windows (OSGeo4W / QGIS installer) and macOS, the system python3 on Linux, else another "
                "Python 3.10+ found on the system. Its packages are not used or changed.")),
            (self.MAMBA, self.tr(
                "Also install mamba-ssm's CUDA kernels for the Mamba branch (Linux with a CUDA build only). "
                "Without them the engine uses its own selective scan: same results, slower. Needs a matching "
                "prebuilt wheel, otherwise it compiles for a long time; a failure is only a warning.")),
            (self.ENV_FOLDER, self.tr(
                "Where the environment is created. Empty: <QGIS profile folder>/bdgf/engine. It must be "
                "outside the plugin folder (an upgrade deletes that).")),
            (self.TORCH_INDEX_URL, self.tr(
                "Package index to install torch from instead of the automatic choice (for example a company "
                "mirror, or https://download.pytorch.org/whl/cu128 to force a CUDA build).")),
            (self.INSTALLER, self.tr(
                "Automatic: uv when it is installed (faster), otherwise Python's venv and pip. pip honours "
                "your pip configuration (proxy, mirrors); uv reads its own.")),
            (self.REINSTALL, self.tr(
                "Empty the environment folder and install everything again, even when the check passes "
                "(repairs a damaged environment).")),
        ]

    def initAlgorithm(self, config=None):  # noqa: N802
        labels = {"auto": self.tr("Automatic (CUDA when an NVIDIA GPU is found)"), "cuda": self.tr("CUDA GPU"),
                  "cpu": self.tr("CPU")}
        self.add(QgsProcessingParameterEnum(self.DEVICE, self.tr("Device (torch build)"),
                                            [labels[d] for d in DEVICE_CHOICES], defaultValue=0))
        self.add(QgsProcessingParameterFile(self.BASE_PYTHON, self.tr("Base Python (empty: found automatically)"),
                                            optional=True))
        self.add(QgsProcessingParameterBoolean(self.MAMBA, self.tr("Install mamba-ssm CUDA kernels (optional)"),
                                               defaultValue=False))
        self.add(QgsProcessingParameterFile(
            self.ENV_FOLDER, self.tr("Environment folder (empty: in the QGIS profile folder)"),
            behavior=QgsProcessingParameterFile.Folder, optional=True), advanced=True)
        self.add(QgsProcessingParameterString(self.TORCH_INDEX_URL, self.tr("Package index for torch"),
                                              optional=True), advanced=True)
        self.add(QgsProcessingParameterEnum(
            self.INSTALLER, self.tr("Installer"), [self.tr("Automatic (uv when installed, else pip)"), "pip", "uv"],
            defaultValue=0), advanced=True)
        self.add(QgsProcessingParameterBoolean(self.REINSTALL, self.tr("Reinstall packages"), defaultValue=False),
                 advanced=True)
        self.addOutput(QgsProcessingOutputString(self.ENGINE_PYTHON, self.tr("Engine Python")))
        self.addOutput(QgsProcessingOutputString(self.TORCH, self.tr("torch version")))
        self.addOutput(QgsProcessingOutputBoolean(self.CUDA, self.tr("CUDA available")))
        self.addOutput(QgsProcessingOutputString(self.DEVICE_NAME, self.tr("Device")))
        self.addOutput(QgsProcessingOutputString(self.ACTION, self.tr("What was done (installed or checked)")))
        self._apply_help()

    def options(self, parameters, context) -> engine_env.SetupOptions:
        base = self.parameterAsFile(parameters, self.BASE_PYTHON, context) if self.is_set(
            parameters, self.BASE_PYTHON) else ""
        folder = self.parameterAsFile(parameters, self.ENV_FOLDER, context) if self.is_set(
            parameters, self.ENV_FOLDER) else ""
        index = self.parameterAsString(parameters, self.TORCH_INDEX_URL, context).strip() if self.is_set(
            parameters, self.TORCH_INDEX_URL) else ""
        return engine_env.SetupOptions(
            plugin_dir=PLUGIN_DIR, env_dir=os.path.abspath(folder) if folder else settings.default_engine_dir(),
            device=DEVICE_CHOICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            base_python=base or None, mamba=self.parameterAsBoolean(parameters, self.MAMBA, context),
            index_url=index or None, installer=INSTALLERS[self.parameterAsEnum(parameters, self.INSTALLER, context)],
            reinstall=self.parameterAsBoolean(parameters, self.REINSTALL, context))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        # QGIS's checks only: the shared input-file check would reject an environment folder that the set-up
        # is about to create
        ok, msg = QgsProcessingAlgorithm.checkParameterValues(self, parameters, context)
        if not ok:
            return ok, msg
        opts = self.options(parameters, context)
        if opts.base_python and not os.path.isfile(opts.base_python):
            return False, self.tr("Base Python {path} does not exist: give the path of a python executable "
                                  "(python.exe on Windows).").format(path=opts.base_python)
        if engine_env.is_inside(opts.env_dir, PLUGIN_DIR):
            return False, self.tr("The environment folder {path} is inside the plugin folder, which a plugin "
                                  "upgrade deletes: choose another folder or leave it empty.").format(path=opts.env_dir)
        for name in (engine_env.REQUIREMENTS, engine_env.CONSTRAINTS):
            if not os.path.isfile(os.path.join(PLUGIN_DIR, name)):
                return False, self.tr("{name} is missing from the plugin folder {folder}: reinstall the plugin "
                                      "from its zip.").format(name=name, folder=PLUGIN_DIR)
        return True, ""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        opts = self.options(parameters, context)
        feedback.pushInfo(self.tr("Engine environment: {folder}").format(folder=opts.env_dir))
        steps = {"venv": self.tr("Creating the virtual environment"), "torch": self.tr("Installing torch"),
                 "requirements": self.tr("Installing the engine's packages"),
                 "mamba": self.tr("Installing mamba-ssm"), "check": self.tr("Checking the engine")}
        setup = engine_env.EngineSetup(opts, log=feedback.pushInfo, console=feedback.pushConsoleInfo,
                                       progress=feedback.setProgress, is_cancelled=feedback.isCanceled,
                                       status=lambda step: feedback.setProgressText(steps.get(step, step)))
        try:
            result = setup.run()
        except engine_env.SetupCancelled as exc:
            raise QgsProcessingException(self.tr("Cancelled: the set-up was stopped ({detail}). Run it again to "
                                                 "finish; nothing outside {folder} was changed.").format(
                detail=exc.message, folder=opts.env_dir))
        except engine_env.SetupError as exc:
            raise QgsProcessingException(str(exc))
        settings.set_engine_python(result.python)
        doctor = result.doctor
        device = doctor.get("device_name") or doctor.get("device") or ""
        if doctor.get("cuda"):
            device = f"{doctor.get('device', 'cuda:0')} ({doctor.get('device_name')}, " \
                     f"{doctor.get('device_memory_gib')} GiB)"
        for note in result.notes:
            feedback.pushWarning(note)
        feedback.pushInfo(self.tr(
            "Engine ready ({action}): {python}\n  torch {torch} (CUDA build: {cuda_build}); CUDA available: "
            "{cuda}; device: {device}; mamba-ssm: {mamba}\n  Engine Python setting set to this interpreter. "
            "Step times (s): {timings}").format(
            action=result.action, python=result.python, torch=doctor.get("torch"),
            cuda_build=doctor.get("torch_cuda_build") or self.tr("none"), cuda=bool(doctor.get("cuda")),
            device=device, mamba=doctor.get("mamba_ssm_version") or bool(doctor.get("mamba_ssm")),
            timings=result.timings))
        return {self.ENGINE_PYTHON: result.python, self.TORCH: str(doctor.get("torch")),
                self.CUDA: bool(doctor.get("cuda")), self.DEVICE_NAME: device, self.ACTION: result.action}
