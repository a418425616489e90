"""Layers -> files the engine can read, and class names/colours from categorized renderers (torch-free)."""

from __future__ import annotations

import json
import os
import re
import uuid

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingUtils,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorFileWriter,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication


translate = QCoreApplication.translate  # pylupdate5 reads the explicit contexts



# ---------------------------------------------------------------------------------------------------------
# rasters


def raster_file(layer: QgsRasterLayer) -> str:
    """The file behind a GDAL raster layer; a clear error for WMS/XYZ/other providers or virtual sources."""
    if layer is None or not layer.isValid():
        raise QgsProcessingException(translate("BdgfLayers", "A raster input is not a valid layer."))
    provider = layer.providerType()
    if provider != "gdal":
        raise QgsProcessingException(
            translate("BdgfLayers",
                "Raster layer '{name}' comes from the '{provider}' provider (for example WMS, XYZ tiles or a "
               "database). BDGF reads raster files only: save it as a GeoTIFF first (right-click > Export > "
               "Save As...).").format(name=layer.name(), provider=provider))
    source = layer.source()
    path = source.split("|")[0]
    if os.path.exists(path):
        return path
    # GDAL connection strings such as GPKG:/path/file.gpkg:table or NETCDF:"file.nc":var
    m = re.match(r'^[A-Za-z0-9_]+:"?(.+?)"?:[^:/\\]+$', source)
    if m and os.path.exists(m.group(1)):
        return source
    raise QgsProcessingException(
        translate("BdgfLayers",
            "Raster layer '{name}' is not a file on disk ({source}). Save it as a GeoTIFF first.").format(
            name=layer.name(), source=source))


def raster_files(layers) -> list[str]:
    return [raster_file(layer) for layer in layers]


def rasters_extent(layers, crs) -> QgsRectangle:
    """Union of the layers' extents in ``crs``."""
    from qgis.core import QgsProject

    out = QgsRectangle()
    out.setMinimal()
    for layer in layers:
        ext = layer.extent()
        if layer.crs().isValid() and crs.isValid() and layer.crs() != crs:
            ct = QgsCoordinateTransform(layer.crs(), crs, QgsProject.instance())
            ext = ct.transformBoundingBox(ext)
        out.combineExtentWith(ext)
    return out


# ---------------------------------------------------------------------------------------------------------
# vectors


def source_selection(parameters: dict, name: str) -> bool:
    value = parameters.get(name)
    return isinstance(value, QgsProcessingFeatureSourceDefinition) and bool(value.selectedFeaturesOnly)


def _file_and_layername(layer: QgsVectorLayer):
    """(path, layername) for a plain OGR file layer, else None."""
    if layer.providerType() != "ogr":
        return None
    parts = layer.source().split("|")
    path = parts[0]
    if not os.path.isfile(path):
        return None
    layername = None
    for part in parts[1:]:
        if part.startswith("layername="):
            layername = part.split("=", 1)[1]
        elif part.startswith("subset="):
            return None  # the engine would not see the filter
    if layer.subsetString():
        return None
    return path, layername


def vector_for_engine(alg, parameters: dict, name: str, context, feedback, field: str | None = None):
    """A polygon input as (path, layer name or None) for the engine.

    Plain files pass through (path and ``|layername=``). Memory/scratch layers, database layers, layers with
    unsaved edits or a filter, and selected-features-only inputs are exported to a temporary GeoPackage
    (selected features only when asked).
    """
    layer = alg.input_layer(parameters, name, context)
    selected = source_selection(parameters, name)
    if layer is not None and not selected and not (layer.isEditable() and layer.isModified()):
        plain = _file_and_layername(layer)
        if plain is not None:
            return plain
    source = alg.parameterAsSource(parameters, name, context)
    if source is None:
        raise QgsProcessingException(alg.invalidSourceError(parameters, name))
    path = os.path.join(QgsProcessingUtils.tempFolder(), f"bdgf_{name.lower()}_{uuid.uuid4().hex[:8]}.gpkg")
    if layer is not None and (not selected or layer.selectedFeatureCount() > 0):
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName = "GPKG"
        options.layerName = "polygons"
        options.onlySelectedFeatures = selected
        options.fileEncoding = "UTF-8"
        result = QgsVectorFileWriter.writeAsVectorFormatV2(layer, path, context.transformContext(), options)
        err = result[0]
        if err != QgsVectorFileWriter.NoError:
            raise QgsProcessingException(translate("BdgfLayers",
                "Could not export '{name}' to {path}: {msg}").format(
                name=layer.name(), path=path, msg=result[1] if len(result) > 1 else err))
    else:
        # a source without a layer (e.g. a model's child output): write its features
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName = "GPKG"
        options.layerName = "polygons"
        writer = QgsVectorFileWriter.create(path, source.fields(), source.wkbType(), source.sourceCrs(),
                                            context.transformContext(), options)
        for f in source.getFeatures():
            writer.addFeature(f)
        del writer
    feedback.pushInfo(translate("BdgfLayers",
        "'{name}' exported to {path} for the engine").format(name=name, path=path))
    return path, "polygons"


def unique_values(source, field: str, limit: int = 100000) -> set:
    """Unique non-null values of ``field`` in a feature source (honours selected-features-only)."""
    idx = source.fields().lookupField(field)
    if idx < 0:
        raise QgsProcessingException(translate("BdgfLayers",
            "Field '{field}' is not in the layer.").format(field=field))
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry).setSubsetOfAttributes([idx])
    values = set()
    for i, f in enumerate(source.getFeatures(request)):
        v = f.attributes()[idx]
        if v is None or (hasattr(v, "isNull") and v.isNull()):
            continue
        values.add(v)
        if i > limit:
            break
    return values


# ---------------------------------------------------------------------------------------------------------
# classes from a categorized renderer


def _label_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def categorized_classes(layer, field: str | None = None):
    """(class field, {label text: {"name", "color"}}) from the layer's categorized renderer.

    With ``field`` given, the renderer counts only when it is categorized on that field; returns
    (field, {}) otherwise. Without a field, returns (None, {}) when there is no categorized renderer.
    """
    renderer = layer.renderer() if layer is not None and hasattr(layer, "renderer") else None
    if renderer is None or renderer.type() != "categorizedSymbol":
        return field, {}
    attr = renderer.classAttribute()
    if layer.fields().lookupField(attr) < 0:  # an expression, not a field
        return field, {}
    if field and field != attr:
        return field, {}
    styles = {}
    for cat in renderer.categories():
        value = cat.value()
        if value is None or value == "" or (hasattr(value, "isNull") and value.isNull()):
            continue  # the "all other values" category
        if isinstance(value, (list, tuple)):
            continue
        color = cat.symbol().color().name() if cat.symbol() is not None else "#808080"
        styles[_label_text(value)] = {"name": cat.label() or _label_text(value), "color": color}
    return attr, styles


def write_class_styles(styles: dict, folder: str | None = None) -> str:
    folder = folder or QgsProcessingUtils.tempFolder()
    path = os.path.join(folder, f"bdgf_class_styles_{uuid.uuid4().hex[:8]}.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(styles, fh, ensure_ascii=False, indent=1)
    return path
