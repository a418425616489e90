"""Styling of outputs loaded into the project (torch-free).

Processing loads destination layers after the algorithm; a ``QgsProcessingLayerPostProcessorInterface`` set on
``context.layerToLoadOnCompletionDetails(dest)`` styles them then. Processing does not keep the Python object
alive, so every post-processor is also kept in :data:`_KEEP` (module level).
"""

from __future__ import annotations

import os

from qgis.core import (
    QgsColorRampShader,
    QgsPalettedRasterRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandGrayRenderer,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
    QgsContrastEnhancement,
)
from qgis.PyQt.QtGui import QColor

_KEEP: dict = {}


def paletted_renderer(layer: QgsRasterLayer, classes: list[dict]):
    """A paletted renderer for band 1 from [{"value", "name", "color"}, ...]."""
    items = [QgsPalettedRasterRenderer.Class(int(c["value"]), QColor(c.get("color") or "#808080"),
                                             str(c.get("name") or c["value"])) for c in classes]
    return QgsPalettedRasterRenderer(layer.dataProvider(), 1, items)


def apply_classes(layer: QgsRasterLayer, classes: list[dict] | None, qml: str | None = None) -> bool:
    """Paletted renderer with class names and colours; falls back to the QML sidecar or the colour table."""
    if classes:
        layer.setRenderer(paletted_renderer(layer, classes))
    elif qml and os.path.isfile(qml):
        _, ok = layer.loadNamedStyle(qml)
        if not ok:
            return False
    else:
        data = QgsPalettedRasterRenderer.classDataFromRaster(layer.dataProvider(), 1)
        if not data:
            return False
        layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, data))
    layer.triggerRepaint()
    return True


def apply_confidence(layer: QgsRasterLayer) -> None:
    """Singleband pseudocolour, viridis ramp over the band's min..max (grey if the ramp is missing)."""
    provider = layer.dataProvider()
    stats = provider.bandStatistics(1, QgsRasterBandStats.Min | QgsRasterBandStats.Max)
    lo, hi = float(stats.minimumValue), float(stats.maximumValue)
    if not hi > lo:
        hi = lo + 1.0
    ramp = QgsStyle.defaultStyle().colorRamp("Viridis")
    if ramp is None:
        renderer = QgsSingleBandGrayRenderer(provider, 1)
        ce = QgsContrastEnhancement(provider.dataType(1))
        ce.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        ce.setMinimumValue(lo)
        ce.setMaximumValue(hi)
        renderer.setContrastEnhancement(ce)
        layer.setRenderer(renderer)
    else:
        shader_fn = QgsColorRampShader(lo, hi, ramp)
        shader_fn.setColorRampType(QgsColorRampShader.Interpolated)
        shader_fn.classifyColorRamp(5, 1, layer.extent(), provider)
        shader = QgsRasterShader()
        shader.setRasterShaderFunction(shader_fn)
        renderer = QgsSingleBandPseudoColorRenderer(provider, 1, shader)
        renderer.setClassificationMin(lo)
        renderer.setClassificationMax(hi)
        layer.setRenderer(renderer)
    layer.triggerRepaint()


class _StylingPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Renames the loaded raster layer and styles it (:meth:`style`); kept alive in :data:`_KEEP`."""

    def __init__(self, name: str | None = None):
        super().__init__()
        self.name = name

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        if not isinstance(layer, QgsRasterLayer):
            return
        if self.name:
            layer.setName(self.name)
        self.style(layer, feedback)

    def style(self, layer, feedback) -> None:
        raise NotImplementedError

    @classmethod
    def create(cls, key: str, *args, **kwargs):
        """A new post-processor, referenced from :data:`_KEEP` under ``key`` (Processing holds it weakly)."""
        pp = cls(*args, **kwargs)
        _KEEP[key] = pp
        return pp


class ClassifiedPostProcessor(_StylingPostProcessor):
    """Gives the loaded classification a paletted renderer with the class names and colours."""

    def __init__(self, classes: list[dict] | None, qml: str | None = None, name: str | None = None):
        super().__init__(name)
        self.classes = classes or []
        self.qml = qml

    def style(self, layer, feedback) -> None:
        if not apply_classes(layer, self.classes, self.qml) and feedback is not None:
            feedback.pushWarning("BDGF: no class colours found for the classified raster")


class ConfidencePostProcessor(_StylingPostProcessor):
    """Gives the loaded confidence raster a viridis pseudocolour ramp."""

    def style(self, layer, feedback) -> None:
        apply_confidence(layer)


def attach(context, dest: str, post_processor) -> bool:
    """Set ``post_processor`` on the layer that Processing will load from ``dest`` (if it will)."""
    if dest and context.willLoadLayerOnCompletion(dest):
        context.layerToLoadOnCompletionDetails(dest).setPostProcessor(post_processor)
        return True
    return False
