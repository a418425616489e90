"""Where the engine's Python interpreter is (torch-free).

Resolution order (first non-empty wins; the plugin never uses ``sys.executable`` because inside QGIS and
``qgis_process`` it is not the interpreter):

1. the Processing setting *Processing > Options > Providers > BDGF > Engine Python*
   (QgsSettings key ``Processing/Configuration/BDGF_ENGINE_PYTHON``), which ``bdgf:setupengine`` sets,
2. the environment variable ``BDGF_ENGINE_PYTHON``,
3. the engine environment made by ``bdgf:setupengine`` in the QGIS profile folder,
   ``<profile>/bdgf/engine/bin/python`` (Windows: ``Scripts\\python.exe``), when it exists,
4. ``<plugin folder>/.venv/bin/python`` (developers: made by ``scripts/setup.sh`` in a source checkout).
"""

from __future__ import annotations

import os
import sys

from qgis.core import QgsApplication, QgsSettings

from . import PLUGIN_DIR
from .engine_env import default_env_dir, venv_python

SETTING_ENGINE_PYTHON = "BDGF_ENGINE_PYTHON"
ENV_ENGINE_PYTHON = "BDGF_ENGINE_PYTHON"
SETTINGS_KEY = "Processing/Configuration/" + SETTING_ENGINE_PYTHON
PROVIDER_NAME = "BDGF"


def default_venv_python(plugin_dir: str = PLUGIN_DIR) -> str:
    if sys.platform.startswith("win"):
        return os.path.join(plugin_dir, ".venv", "Scripts", "python.exe")
    return os.path.join(plugin_dir, ".venv", "bin", "python")


def default_engine_dir() -> str:
    """``<QGIS profile folder>/bdgf/engine``: where ``bdgf:setupengine`` puts the engine environment (outside
    the plugin folder, so plugin upgrades keep it)."""
    return default_env_dir(QgsApplication.qgisSettingsDirPath())


def profile_engine_python() -> str:
    """The interpreter of the profile's engine environment (it may not exist yet)."""
    return venv_python(default_engine_dir())


def configured_engine_python() -> str:
    """The value of the Processing setting ('' when unset)."""
    value = None
    try:
        from processing.core.ProcessingConfig import ProcessingConfig

        if SETTING_ENGINE_PYTHON in ProcessingConfig.settings:
            value = ProcessingConfig.getSetting(SETTING_ENGINE_PYTHON)
    except Exception:  # Processing plugin not loaded: read the same key directly
        value = None
    if not value:
        value = QgsSettings().value(SETTINGS_KEY, "")
    return str(value or "").strip()


def engine_python() -> tuple[str, str]:
    """(interpreter path, where it came from: 'setting' | 'environment' | 'engine environment' |
    'plugin venv'). Without a setting or variable: the profile's engine environment when it exists, else
    the developer venv in the plugin folder when it exists, else the (missing) profile environment, so the
    error names the place ``bdgf:setupengine`` fills."""
    value = configured_engine_python()
    if value:
        return value, "setting"
    value = os.environ.get(ENV_ENGINE_PYTHON, "").strip()
    if value:
        return value, "environment"
    profile_python = profile_engine_python()
    if os.path.isfile(profile_python) or not os.path.isfile(default_venv_python()):
        return profile_python, "engine environment"
    return default_venv_python(), "plugin venv"


def set_engine_python(path: str | None) -> None:
    """Set (or clear with None/'') the Processing setting; used by tests and scripts."""
    path = path or ""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig

        if SETTING_ENGINE_PYTHON in ProcessingConfig.settings:
            ProcessingConfig.settings[SETTING_ENGINE_PYTHON].value = path
    except Exception:
        pass
    QgsSettings().setValue(SETTINGS_KEY, path)


SETUP_ALGORITHM = "bdgf:setupengine"


def setup_command(plugin_dir: str = PLUGIN_DIR) -> str:
    """How to create the engine environment without the toolbox (the toolbox entry is *BDGF > Engine >
    Set up engine environment*)."""
    return f"qgis_process run {SETUP_ALGORITHM}"
