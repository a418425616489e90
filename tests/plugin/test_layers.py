"""Layer handling: raster files, vector export (memory, selection, edits), classes from categorized styles."""

from __future__ import annotations

import json
import os

import pytest

from .conftest import DATA, band_paths


class _Ctx:
    """A Processing context + feedback + an algorithm to call parameterAs* on."""

    def __init__(self, alg_id="bdgf:train"):
        from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback, QgsProject

        self.alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
        assert self.alg is not None
        self.context = QgsProcessingContext()
        self.context.setProject(QgsProject.instance())
        self.feedback = QgsProcessingFeedback()


def test_categorized_classes(training_polys):
    from bdgf.bdgf_plugin import layers

    field, styles = layers.categorized_classes(training_polys)
    assert field == "class_id"
    assert styles["1"] == {"name": "Water", "color": "#1f78b4"}
    assert len(styles) == 7 and styles["7"]["name"] == "Built-up"
    assert layers.categorized_classes(training_polys, "class_id")[1] == styles
    assert layers.categorized_classes(training_polys, "class_name") == ("class_name", {})
    path = layers.write_class_styles(styles)
    assert json.load(open(path, encoding="utf-8"))["2"]["name"] == "Salt marsh"


def test_file_and_non_file_images(qgis_processing):
    from qgis.core import QgsProcessingException, QgsRasterLayer

    from bdgf.bdgf_plugin import layers

    good = QgsRasterLayer(band_paths()[0], "b02")
    assert layers.raster_file(good) == band_paths()[0]
    xyz = QgsRasterLayer("type=xyz&url=https://tile.openstreetmap.org/%7Bz%7D/%7Bx%7D/%7By%7D.png&zmax=19&zmin=0",
                         "osm", "wms")
    with pytest.raises(QgsProcessingException) as exc:
        layers.raster_file(xyz)
    assert "wms" in str(exc.value) and "GeoTIFF" in str(exc.value)


def _memory_copy(training_polys):
    from qgis.core import QgsFeature, QgsVectorLayer

    mem = QgsVectorLayer("Polygon?crs=EPSG:32618&field=class_id:integer&field=class_name:string", "scratch", "memory")
    feats = []
    for f in training_polys.getFeatures():
        g = QgsFeature(mem.fields())
        g.setGeometry(f.geometry())
        g.setAttributes([f["class_id"], f["class_name"]])
        feats.append(g)
    assert mem.dataProvider().addFeatures(feats)[0]
    mem.setRenderer(training_polys.renderer().clone())
    return mem


def test_vector_export_plain_memory_selection_edits(bdgf_plugin, training_polys):
    from qgis.core import QgsProcessingFeatureSourceDefinition, QgsProject, QgsVectorLayer

    from bdgf.bdgf_plugin import layers

    c = _Ctx()
    path, name = layers.vector_for_engine(c.alg, {"TRAINING": training_polys}, "TRAINING", c.context, c.feedback)
    assert path == os.path.join(DATA, "training_polygons.gpkg") and name == "training"

    mem = _memory_copy(training_polys)
    QgsProject.instance().addMapLayer(mem)
    try:
        path, name = layers.vector_for_engine(c.alg, {"TRAINING": mem.id()}, "TRAINING", c.context, c.feedback)
        assert path.endswith(".gpkg") and os.path.isfile(path)
        out = QgsVectorLayer(f"{path}|layername={name}", "x", "ogr")
        assert out.featureCount() == 15

        mem.selectByExpression('"class_id" IN (1, 2)')
        assert mem.selectedFeatureCount() == 3
        definition = QgsProcessingFeatureSourceDefinition(mem.id(), True)
        path, name = layers.vector_for_engine(c.alg, {"TRAINING": definition}, "TRAINING", c.context, c.feedback)
        out = QgsVectorLayer(f"{path}|layername={name}", "x", "ogr")
        assert out.featureCount() == 3
        assert sorted({f["class_id"] for f in out.getFeatures()}) == [1, 2]
        assert layers.unique_values(c.alg.parameterAsSource({"TRAINING": definition}, "TRAINING", c.context),
                                    "class_id") == {1, 2}
    finally:
        QgsProject.instance().removeMapLayer(mem.id())


def test_vector_export_unsaved_edits(bdgf_plugin, tmp_path):
    import shutil

    from qgis.core import QgsProject, QgsVectorLayer

    from bdgf.bdgf_plugin import layers

    gpkg = str(tmp_path / "t.gpkg")
    shutil.copy(os.path.join(DATA, "training_polygons.gpkg"), gpkg)
    layer = QgsVectorLayer(gpkg + "|layername=training", "edited", "ogr")
    QgsProject.instance().addMapLayer(layer)
    try:
        layer.startEditing()
        first = next(layer.getFeatures())
        layer.deleteFeature(first.id())
        c = _Ctx()
        path, name = layers.vector_for_engine(c.alg, {"TRAINING": layer.id()}, "TRAINING", c.context, c.feedback)
        assert path != gpkg
        assert QgsVectorLayer(f"{path}|layername={name}", "x", "ogr").featureCount() == 14
        layer.rollBack()
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
