"""BDGF QGIS plugin entry point.

The repository root is the plugin folder (installed as ``bdgf``). Nothing here imports torch: the engine runs
in a separate interpreter (see ``bdgf_plugin/runner.py``).
"""


def classFactory(iface):  # noqa: N802 - QGIS API name
    """Called by QGIS (desktop and qgis_process) to create the plugin."""
    from .bdgf_plugin.plugin import BdgfPlugin

    return BdgfPlugin(iface)
