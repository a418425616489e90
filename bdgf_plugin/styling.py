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
    QgsCategorizedSymbolRenderer,
    QgsMarkerSymbol,
    QgsRendererCategory,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QColor

_KEEP: dict = {}


def _tr(text: str) -> str:
    return QCoreApplication.translate("BdgfStyling", text)


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


def apply_confidence(layer: QgsRasterLayer, band: int = 1, ramp_name: str = "Viridis",
                     value_range: tuple[float, float] | None = None) -> None:
    """Singleband pseudocolour on ``band``: ``ramp_name`` over ``value_range`` (default the band's min..max);
    grey if the ramp is missing."""
    provider = layer.dataProvider()
    if value_range is None:
        stats = provider.bandStatistics(band, QgsRasterBandStats.Min | QgsRasterBandStats.Max)
        lo, hi = float(stats.minimumValue), float(stats.maximumValue)
    else:
        lo, hi = value_range
    if not hi > lo:
        hi = lo + 1.0
    ramp = QgsStyle.defaultStyle().colorRamp(ramp_name)
    if ramp is None:
        renderer = QgsSingleBandGrayRenderer(provider, band)
        ce = QgsContrastEnhancement(provider.dataType(band))
        ce.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        ce.setMinimumValue(lo)
        ce.setMaximumValue(hi)
        renderer.setContrastEnhancement(ce)
        layer.setRenderer(renderer)
    else:
        shader_fn = QgsColorRampShader(lo, hi, ramp)
        shader_fn.setColorRampType(QgsColorRampShader.Interpolated)
        shader_fn.classifyColorRamp(5, band, layer.extent(), provider)
        shader = QgsRasterShader()
        shader.setRasterShaderFunction(shader_fn)
        renderer = QgsSingleBandPseudoColorRenderer(provider, band, shader)
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


class UncertaintyPostProcessor(_StylingPostProcessor):
    """Uncertainty raster (band 1 normalised entropy, band 2 margin): a 0..1 magma ramp on the entropy."""

    def style(self, layer, feedback) -> None:
        apply_confidence(layer, 1, "Magma", (0.0, 1.0))


class ProbabilitiesPostProcessor(_StylingPostProcessor):
    """Class-probability stack (one band per class, named by class): a 0..1 viridis ramp on the first class."""

    def style(self, layer, feedback) -> None:
        apply_confidence(layer, 1, "Viridis", (0.0, 1.0))


def apply_applicability(layer: QgsRasterLayer, threshold: float | None) -> None:
    """Dissimilarity index (``classify --applicability``): transparent up to ``threshold`` (inside the area of
    applicability), magenta above it; without a threshold, a 0..1 magma ramp."""
    if threshold is None:
        apply_confidence(layer, 1, "Magma", (0.0, 1.0))
        return
    shader_fn = QgsColorRampShader(0.0, float(threshold) * 4.0)
    shader_fn.setColorRampType(QgsColorRampShader.Discrete)
    shader_fn.setColorRampItemList([
        QgsColorRampShader.ColorRampItem(float(threshold), QColor(0, 0, 0, 0), _tr(
            "inside the area of applicability (DI <= {threshold})").format(threshold=f"{threshold:.3f}")),
        QgsColorRampShader.ColorRampItem(float("inf"), QColor(255, 0, 255, 255), _tr(
            "outside: unlike every training polygon (DI > {threshold})").format(threshold=f"{threshold:.3f}")),
    ])
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_fn)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


class ApplicabilityPostProcessor(_StylingPostProcessor):
    """Area of applicability: pixels above the model's dissimilarity-index threshold in magenta."""

    def __init__(self, threshold: float | None = None, name: str | None = None):
        super().__init__(name)
        self.threshold = threshold

    def style(self, layer, feedback) -> None:
        apply_applicability(layer, self.threshold)


class PointClassesPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Point layer categorized on a class field with the class names and colours (kept in :data:`_KEEP`).

    Args:
        field: the class-value field. classes: [{"value", "name", "color"}]. name: layer name in the project.
    """

    def __init__(self, field: str, classes: list[dict] | None, name: str | None = None):
        super().__init__()
        self.field, self.classes, self.name = field, classes or [], name

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        if not isinstance(layer, QgsVectorLayer):
            return
        if self.name:
            layer.setName(self.name)
        categories = []
        for c in self.classes:
            symbol = QgsMarkerSymbol.createSimple({"name": "circle", "size": "3", "color": c.get("color") or "#808080",
                                                   "outline_color": "#000000", "outline_width": "0.3"})
            categories.append(QgsRendererCategory(int(c["value"]), symbol, str(c.get("name") or c["value"])))
        if categories and layer.fields().lookupField(self.field) >= 0:
            layer.setRenderer(QgsCategorizedSymbolRenderer(self.field, categories))
            layer.triggerRepaint()

    @classmethod
    def create(cls, key: str, *args, **kwargs):
        pp = cls(*args, **kwargs)
        _KEEP[key] = pp
        return pp


def raster_classes(layer) -> list[dict]:
    """[{"value", "name", "color"}] of a raster layer's paletted renderer ([] for other renderers)."""
    renderer = layer.renderer() if layer is not None else None
    if not isinstance(renderer, QgsPalettedRasterRenderer):
        return []
    return [{"value": int(c.value), "name": c.label or str(int(c.value)), "color": c.color.name()}
            for c in renderer.classes()]


def attach(context, dest: str, post_processor) -> bool:
    """Set ``post_processor`` on the layer that Processing will load from ``dest`` (if it will)."""
    if dest and context.willLoadLayerOnCompletion(dest):
        context.layerToLoadOnCompletionDetails(dest).setPostProcessor(post_processor)
        return True
    return False
