"""Render an uncertainty raster with suggested sample points over it (QGIS map renderer, headless).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/render_uncertainty.py \\
        --uncertainty U.tif --suggestions S.gpkg --classification CLASSES.tif --output docs/images/x.png

The uncertainty raster gets the plugin's styling (band 1 normalised entropy, 0-1 magma ramp); the points are
categorized by predicted class with the classification's colours and labelled with their rank. A legend (ramp and
classes) is painted below the map.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def plugin_styling():
    """The plugin's styling module, imported as ``bdgf.bdgf_plugin.styling`` (as QGIS loads the plugin)."""
    root = tempfile.mkdtemp(prefix="bdgf_render_")
    os.symlink(REPO, os.path.join(root, "bdgf"))
    sys.path.insert(0, root)
    from bdgf.bdgf_plugin import styling

    return styling


def render(uncertainty: str, suggestions: str, classification: str, output: str, width: int = 900) -> None:
    from qgis.core import QgsMapRendererCustomPainterJob, QgsMapSettings, QgsRasterLayer, QgsVectorLayer
    from qgis.PyQt.QtCore import QSize, Qt
    from qgis.PyQt.QtGui import QColor, QFont, QImage, QLinearGradient, QPainter

    styling = plugin_styling()
    unc = QgsRasterLayer(uncertainty, "uncertainty")
    classes_layer = QgsRasterLayer(classification, "classes")
    points = QgsVectorLayer(suggestions, "suggestions", "ogr")
    assert unc.isValid() and points.isValid() and classes_layer.isValid()
    styling.apply_confidence(unc, 1, "Magma", (0.0, 1.0))
    classes = styling.raster_classes(classes_layer)
    pp = styling.PointClassesPostProcessor("pred_class", classes)
    pp.postProcessLayer(points, None, None)
    label_by_rank(points)

    extent = unc.extent()
    height = int(width * extent.height() / extent.width())
    legend_h = 78 + 20 * ((len(styling.raster_classes(classes_layer)) + 3) // 4)
    image = QImage(QSize(width, height + legend_h), QImage.Format_ARGB32)
    image.fill(QColor("white"))
    settings = QgsMapSettings()
    settings.setLayers([points, unc])
    settings.setExtent(extent)
    settings.setOutputSize(QSize(width, height))
    settings.setDestinationCrs(unc.crs())
    settings.setBackgroundColor(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.Antialiasing)
    job = QgsMapRendererCustomPainterJob(settings, painter)
    job.renderSynchronously()
    _legend(painter, unc, classes, 10, height + 8, width, QLinearGradient, Qt, QColor, QFont)
    painter.end()
    assert image.save(output, "PNG"), output


def label_by_rank(points) -> None:
    """Label the suggestion points with their ``rank`` (white text, black buffer)."""
    from qgis.core import QgsPalLayerSettings, QgsTextFormat, QgsVectorLayerSimpleLabeling
    from qgis.PyQt.QtGui import QColor, QFont

    label = QgsPalLayerSettings()
    label.fieldName = "rank"
    fmt = QgsTextFormat()
    fmt.setFont(QFont("DejaVu Sans", 8))
    fmt.setColor(QColor("white"))
    fmt.buffer().setEnabled(True)
    fmt.buffer().setColor(QColor("black"))
    label.setFormat(fmt)
    label.dist = 1.5
    points.setLabeling(QgsVectorLayerSimpleLabeling(label))
    points.setLabelsEnabled(True)


def _legend(painter, unc, classes, x, y, width, QLinearGradient, Qt, QColor, QFont):  # noqa: N803 - Qt types
    """Paint the entropy ramp (0-1) and the class swatches below the map."""
    shader = unc.renderer().shader().rasterShaderFunction()
    items = shader.colorRampItemList()
    grad = QLinearGradient(x, 0, x + 260, 0)
    for it in items:
        grad.setColorAt(max(0.0, min(1.0, it.value)), it.color)
    painter.setFont(QFont("DejaVu Sans", 9))
    painter.setPen(QColor("black"))
    painter.drawText(x, y + 12, "Normalised entropy of the class probabilities (band 1)")
    painter.fillRect(x, y + 18, 260, 14, grad)
    painter.drawText(x, y + 46, "0 certain")
    painter.drawText(x + 190, y + 46, "1 uncertain")
    painter.drawText(x + 300, y + 30, "Suggested samples (label = rank), by predicted class:")
    for i, c in enumerate(classes):
        px, py = x + (i % 4) * min(220, (width - 20) // 4), y + 58 + (i // 4) * 20
        painter.setBrush(QColor(c["color"]))
        painter.drawEllipse(px, py, 10, 10)
        painter.drawText(px + 16, py + 10, c["name"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uncertainty", required=True)
    parser.add_argument("--suggestions", required=True)
    parser.add_argument("--classification", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--width", type=int, default=900)
    args = parser.parse_args(argv)
    return with_qgis(render, args.uncertainty, args.suggestions, args.classification, args.output, args.width)


def with_qgis(render_fn, *args) -> int:
    """Run ``render_fn(*args)`` inside a headless QGIS application; print the output path (the 4th argument)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    try:
        render_fn(*args)
        print(args[3])
    finally:
        app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
