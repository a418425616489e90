"""BdgfPlugin: registers the Processing provider; loads the translation for the user's locale."""

from __future__ import annotations

import os

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, QLocale, QTranslator

from . import PLUGIN_DIR


def locale_name() -> str:
    value = QgsSettings().value("locale/userLocale", "") or QLocale.system().name()
    return str(value)


class BdgfPlugin:
    """QGIS calls initProcessing (desktop and qgis_process), initGui (desktop only) and unload."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None  # kept referenced: sip would garbage-collect it otherwise
        self.translator = None
        self._load_translation()

    def _load_translation(self) -> None:
        locale = locale_name()
        for name in (locale, locale[:2]):
            path = os.path.join(PLUGIN_DIR, "i18n", f"bdgf_{name}.qm")
            if name and os.path.isfile(path):
                translator = QTranslator()
                if translator.load(path):
                    QCoreApplication.installTranslator(translator)
                    self.translator = translator
                    return

    def initProcessing(self):  # noqa: N802
        if self.provider is not None:
            return
        from .provider import BdgfProvider

        self.provider = BdgfProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.translator is not None:
            QCoreApplication.removeTranslator(self.translator)
            self.translator = None
