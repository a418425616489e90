"""Where the engine's Python interpreter is (torch-free).

Resolution order (first non-empty wins; the plugin never uses ``sys.executable`` because inside QGIS and
``qgis_process`` it is not the interpreter, see docs/qgis-setup.md gotcha 9):

1. the Processing setting *Processing > Options > Providers > BDGF > Engine Python*
   (QgsSettings key ``Processing/Configuration/BDGF_ENGINE_PYTHON``),
2. the environment variable ``BDGF_ENGINE_PYTHON``,
3. ``<plugin folder>/.venv/bin/python`` (Windows: ``.venv/Scripts/python.exe``), made by ``scripts/setup.sh``.
"""

from __future__ import annotations

import os
import sys

from qgis.core import QgsSettings

from . import PLUGIN_DIR

SETTING_ENGINE_PYTHON = "BDGF_ENGINE_PYTHON"
ENV_ENGINE_PYTHON = "BDGF_ENGINE_PYTHON"
SETTINGS_KEY = "Processing/Configuration/" + SETTING_ENGINE_PYTHON
PROVIDER_NAME = "BDGF"


def default_venv_python(plugin_dir: str = PLUGIN_DIR) -> str:
    if sys.platform.startswith("win"):
        return os.path.join(plugin_dir, ".venv", "Scripts", "python.exe")
    return os.path.join(plugin_dir, ".venv", "bin", "python")


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
    """(interpreter path, where it came from: 'setting' | 'environment' | 'plugin venv')."""
    value = configured_engine_python()
    if value:
        return value, "setting"
    value = os.environ.get(ENV_ENGINE_PYTHON, "").strip()
    if value:
        return value, "environment"
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


def setup_command(plugin_dir: str = PLUGIN_DIR) -> str:
    """The command that creates the engine environment."""
    return f'cd "{plugin_dir}" && bash scripts/setup.sh'
