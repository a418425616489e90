"""Render a classification beside its area of applicability, with suggested samples (QGIS map renderer, headless).

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/render_applicability.py --classification CLASSES.tif \\
        --applicability AOA.tif [--suggestions S.gpkg] --output docs/images/x.png

Left: the classification with its QML style. Right: the same map with the pixels outside the area of
applicability (dissimilarity index above the model's threshold, ``classify --applicability``) in magenta, the
plugin's styling, and the suggested samples (``suggest``) as points labelled with their rank.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from render_uncertainty import label_by_rank, plugin_styling, with_qgis  # noqa: E402


def _layers(classification: str, applicability: str, suggestions: str | None) -> tuple:
    """(classes layer, applicability layer, points layer or None, class list), styled as the plugin does."""
    import rasterio
    from qgis.core import QgsRasterLayer, QgsVectorLayer

    styling = plugin_styling()
    classes = QgsRasterLayer(classification, "classes")
    classes.loadNamedStyle(os.path.splitext(classification)[0] + ".qml")
    aoa = QgsRasterLayer(applicability, "applicability")
    assert classes.isValid() and aoa.isValid()
    with rasterio.open(applicability) as src:
        threshold = float(src.tags()["BDGF_AOA_THRESHOLD"])
    styling.apply_applicability(aoa, threshold)
    class_list = styling.raster_classes(classes)
    points = None
    if suggestions:
        points = QgsVectorLayer(suggestions, "suggestions", "ogr")
        assert points.isValid()
        styling.PointClassesPostProcessor("pred_class", class_list).postProcessLayer(points, None, None)
        label_by_rank(points)
    return classes, aoa, points, class_list, threshold


def render(classification: str, applicability: str, suggestions: str | None, output: str, width: int = 520) -> None:
    from qgis.core import QgsMapRendererCustomPainterJob, QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter

    classes, aoa, points, class_list, threshold = _layers(classification, applicability, suggestions)
    extent = classes.extent()
    height = int(width * extent.height() / extent.width())
    legend_h = 60 + 20 * ((len(class_list) + 3) // 4)
    image = QImage(QSize(2 * width + 10, height + legend_h), QImage.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.Antialiasing)
    for i, layers in enumerate(([classes], [p for p in (points,) if p] + [aoa, classes])):
        settings = QgsMapSettings()
        settings.setLayers(layers)
        settings.setExtent(extent)
        settings.setOutputSize(QSize(width, height))
        settings.setDestinationCrs(classes.crs())
        settings.setBackgroundColor(QColor("white"))
        painter.save()
        painter.translate(i * (width + 10), 0)
        QgsMapRendererCustomPainterJob(settings, painter).renderSynchronously()
        painter.restore()
    painter.setFont(QFont("DejaVu Sans", 9))
    painter.setPen(QColor("black"))
    y = height + 14
    painter.fillRect(10, y - 10, 14, 12, QColor(255, 0, 255))
    painter.drawText(30, y, f"outside the area of applicability (dissimilarity index > {threshold:.3f})"
                     + ("; points: suggested samples, label = rank" if points else ""))
    for i, c in enumerate(class_list):
        px, py = 10 + (i % 4) * ((2 * width) // 4), y + 14 + (i // 4) * 20
        painter.fillRect(px, py, 14, 12, QColor(c["color"]))
        painter.drawText(px + 20, py + 11, c["name"])
    painter.end()
    assert image.save(output, "PNG"), output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classification", required=True)
    parser.add_argument("--applicability", required=True)
    parser.add_argument("--suggestions")
    parser.add_argument("--output", required=True)
    parser.add_argument("--width", type=int, default=520, help="width of each panel in pixels")
    args = parser.parse_args(argv)
    return with_qgis(render, args.classification, args.applicability, args.suggestions, args.output, args.width)


if __name__ == "__main__":
    sys.exit(main())
