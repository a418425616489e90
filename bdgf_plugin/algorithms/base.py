"""Shared base of the BDGF Processing algorithms (torch-free).

Conventions (QGIS core / EnMAP-Box): stable lowercase ``name()`` ids independent of the display name,
UPPER_SNAKE parameter keys, ``tr()`` with one context per class, ``createInstance()`` returning
``type(self)()``, a per-parameter help list (``helpParameters``) that builds ``shortHelpString`` and each
parameter's tooltip, ``checkParameterValues`` pre-flight, no GUI calls in ``processAlgorithm``. Layer access
(renderers, memory-layer export) happens in ``prepareAlgorithm`` on the main thread; ``processAlgorithm``
only runs the engine subprocess.
"""

from __future__ import annotations

import html
import os

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsMapLayer,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingUtils,
    QgsVectorLayer,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterField,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProperty,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ...engine import contract
from .. import PLUGIN_DIR
from .. import layers as bl
from .. import runner

ICON_PATH = os.path.join(PLUGIN_DIR, "resources", "icons", "bdgf.svg")

AUXILIARY_KINDS = list(contract.AUXILIARY_KINDS)
DEVICES = list(contract.DEVICES)
PROFILES = list(contract.PROFILES)


#: Parameter types whose values are files the run reads (checked to exist, never an output).
INPUT_TYPES = ("multilayer", "raster", "source", "vector", "file", "layer")


def _number(value: float) -> str:
    """A parameter bound as the dialog shows it: 8, not 8.0."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _static_value(value):
    """The plain value behind a feature-source definition or a static QgsProperty (None for expressions)."""
    if isinstance(value, QgsProcessingFeatureSourceDefinition):
        value = value.source
    if isinstance(value, QgsProperty):
        return value.staticValue() if value.propertyType() == QgsProperty.StaticProperty else None
    return value


def same_file_key(path: str) -> str:
    """A key equal for two spellings of the same file (symlinks, relative paths, case on Windows)."""
    return os.path.normcase(os.path.realpath(path))


def folder_problem(folder: str) -> str:
    """Why files cannot be created in ``folder`` (or in its nearest existing parent, where a missing folder
    would be created), or "" when they can. Tries a real file: permission bits do not tell for root, ACLs or
    read-only mounts."""
    probe = os.path.abspath(folder)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return QCoreApplication.translate("BdgfAlgorithm", "{path} is a file, not a folder").format(path=probe)
    return contract.write_probe_error(probe)


class BdgfAlgorithm(QgsProcessingAlgorithm):
    """Base class: naming, help, shared parameters, engine invocation."""

    # parameter keys (the contract; used by all algorithms)
    SPECTRAL = "SPECTRAL"
    AUXILIARY = "AUXILIARY"
    AUXILIARY_KIND = "AUXILIARY_KIND"
    TRAINING = "TRAINING"
    REFERENCE = "REFERENCE"
    CLASS_FIELD = "CLASS_FIELD"
    PRETRAINED = "PRETRAINED"
    MODEL = "MODEL"
    CLASSIFICATION = "CLASSIFICATION"
    EXTENT = "EXTENT"
    DEVICE = "DEVICE"
    PROFILE = "PROFILE"
    ITERATIONS = "ITERATIONS"
    EPOCHS = "EPOCHS"
    SEED = "SEED"
    VALIDATION = "VALIDATION"
    VALIDATION_FRACTION = "VALIDATION_FRACTION"
    CLASS_BALANCE = "CLASS_BALANCE"
    PSEUDO_LABELS = "PSEUDO_LABELS"
    WHITEWATER = "WHITEWATER"
    ENSEMBLE_MEMBERS = "ENSEMBLE_MEMBERS"
    PREDICTION = "PREDICTION"
    CV_BLOCK_SIZE = "CV_BLOCK_SIZE"
    TILE_SIZE = "TILE_SIZE"
    BATCH_SIZE = "BATCH_SIZE"
    OUTPUT_MODEL = "OUTPUT_MODEL"
    OUTPUT = "OUTPUT"
    OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    OUTPUT_TABLE = "OUTPUT_TABLE"
    RESUME = "RESUME"
    BAND_ORDER = "BAND_ORDER"
    LANDSCAPE_CONTEXT = "LANDSCAPE_CONTEXT"
    #: progress stage of the landscape context, derived first (a few seconds) by the runs whose model has one
    CONTEXT_STAGE = ("context", 0.05)

    _name = ""
    _group = "classification"

    def __init__(self):
        super().__init__()
        self.prepared: dict = {}

    # ----------------------------------------------------------------- identity
    def tr(self, string: str) -> str:
        return QCoreApplication.translate(type(self).__name__, string)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def name(self) -> str:
        return self._name

    def group(self) -> str:
        if self._group == "accuracy":
            return QCoreApplication.translate("BdgfAlgorithm", "Accuracy assessment")
        return QCoreApplication.translate("BdgfAlgorithm", "Classification")

    def groupId(self) -> str:  # noqa: N802
        return self._group

    def icon(self) -> QIcon:
        return QIcon(ICON_PATH)

    def svgIconPath(self) -> str:  # noqa: N802
        return ICON_PATH

    def helpUrl(self) -> str:  # noqa: N802
        return "https://github.com/bdgf-qgis/bdgf#readme"

    # ----------------------------------------------------------------- help
    def shortDescription(self) -> str:  # noqa: N802
        return ""

    def helpParameters(self) -> list[tuple[str, str]]:  # noqa: N802
        """[(parameter key, help text)], in the order of the dialog."""
        return []

    def shortHelpString(self) -> str:  # noqa: N802
        parts = [f"<p>{html.escape(self.shortDescription())}</p>"]
        for key, text in self.helpParameters():
            definition = self.parameterDefinition(key)
            title = definition.description() if definition is not None else key
            parts.append(f"<h3>{html.escape(title)}</h3><p>{html.escape(text)}</p>")
        return "".join(parts)

    def _apply_help(self) -> None:
        for key, text in self.helpParameters():
            definition = self.parameterDefinition(key)
            if definition is not None and hasattr(definition, "setHelp"):
                definition.setHelp(text)

    # ----------------------------------------------------------------- shared parameters
    def add(self, parameter, advanced: bool = False):
        if advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(parameter)
        return parameter

    def add_modalities(self, spectral_desc=None):
        self.add(QgsProcessingParameterMultipleLayers(
            self.SPECTRAL, spectral_desc or self.tr("Spectral rasters (stacked in order)"),
            QgsProcessing.TypeRaster))
        self.add(QgsProcessingParameterMultipleLayers(
            self.AUXILIARY, self.tr("Auxiliary rasters (SAR or elevation)"), QgsProcessing.TypeRaster,
            optional=True))
        self.add(QgsProcessingParameterEnum(
            self.AUXILIARY_KIND, self.tr("Auxiliary kind"),
            [self.tr("SAR backscatter (dB)"), self.tr("SAR backscatter (linear power)"), self.tr("Elevation")],
            defaultValue=0))

    def add_extent(self):
        self.add(QgsProcessingParameterExtent(self.EXTENT, self.tr("Extent (empty: the whole raster)"),
                                              optional=True))

    def add_device(self):
        self.add(QgsProcessingParameterEnum(
            self.DEVICE, self.tr("Device"), [self.tr("Automatic (CUDA if available)"), self.tr("CUDA GPU"),
                                             self.tr("CPU")], defaultValue=0))

    def add_profile(self):
        self.add(QgsProcessingParameterEnum(
            self.PROFILE, self.tr("Profile"), [self.tr("Fast"), self.tr("Paper (full published settings)")],
            defaultValue=0))

    def add_int(self, key, description, minimum=1, maximum=None, default=None, advanced=True):
        p = QgsProcessingParameterNumber(key, description, QgsProcessingParameterNumber.Integer,
                                         defaultValue=default, optional=default is None, minValue=minimum)
        if maximum is not None:
            p.setMaximum(maximum)
        return self.add(p, advanced)

    def add_class_field(self, parent):
        self.add(QgsProcessingParameterField(
            self.CLASS_FIELD, self.tr("Class field (empty: from the layer's categorized style)"),
            parentLayerParameterName=parent, optional=True))

    def add_polygons(self, key, description):
        self.add(QgsProcessingParameterFeatureSource(key, description, [QgsProcessing.TypeVectorPolygon]))

    # ----------------------------------------------------------------- parameter values
    @staticmethod
    def is_set(parameters: dict, key: str) -> bool:
        value = parameters.get(key)
        return value is not None and value != "" and not (hasattr(value, "isNull") and value.isNull())

    def optional_int(self, parameters, key, context):
        return self.parameterAsInt(parameters, key, context) if self.is_set(parameters, key) else None

    def optional_double(self, parameters, key, context):
        return self.parameterAsDouble(parameters, key, context) if self.is_set(parameters, key) else None

    def spectral_layers(self, parameters, context):
        return self.parameterAsLayerList(parameters, self.SPECTRAL, context)

    def auxiliary_layers(self, parameters, context):
        return self.parameterAsLayerList(parameters, self.AUXILIARY, context) if self.is_set(
            parameters, self.AUXILIARY) else []

    def modality_args(self, parameters, context) -> list[str]:
        """--spectral F ... [--aux KIND F ...] (file paths; non-file rasters give a clear error)."""
        spectral = self.spectral_layers(parameters, context)
        if not spectral:
            raise QgsProcessingException(self.tr("Give at least one spectral raster."))
        args = ["--spectral"] + bl.raster_files(spectral)
        aux = self.auxiliary_layers(parameters, context)
        if aux:
            kind = AUXILIARY_KINDS[self.parameterAsEnum(parameters, self.AUXILIARY_KIND, context)]
            args += ["--aux", kind] + bl.raster_files(aux)
        return args

    def extent_args(self, parameters, context) -> list[str]:
        if not self.is_set(parameters, self.EXTENT):
            return []
        rect = self.parameterAsExtent(parameters, self.EXTENT, context)
        if rect is None or rect.isNull() or rect.isEmpty():
            return []
        crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
        args = ["--extent", repr(rect.xMinimum()), repr(rect.yMinimum()), repr(rect.xMaximum()),
                repr(rect.yMaximum())]
        if crs.isValid():
            args += ["--extent-crs", crs.authid() or crs.toWkt()]
        return args

    def device_args(self, parameters, context) -> list[str]:
        if self.parameterDefinition(self.DEVICE) is None:
            return []
        return ["--device", DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)]]

    def profile_args(self, parameters, context) -> list[str]:
        if self.parameterDefinition(self.PROFILE) is None:
            return []
        return ["--profile", PROFILES[self.parameterAsEnum(parameters, self.PROFILE, context)]]

    def int_args(self, parameters, context, pairs) -> list[str]:
        args = []
        for key, option in pairs:
            if self.parameterDefinition(key) is None:
                continue
            value = self.optional_int(parameters, key, context)
            if value is not None:
                args += [option, str(value)]
        return args

    # ----------------------------------------------------------------- pre-flight helpers
    def check_engine(self) -> tuple[bool, str]:
        try:
            runner.doctor()
        except QgsProcessingException as exc:
            return False, str(exc)
        return True, ""

    def check_rasters(self, parameters, context) -> tuple[bool, str]:
        try:
            for layer in self.spectral_layers(parameters, context) + self.auxiliary_layers(parameters, context):
                bl.raster_file(layer)
        except QgsProcessingException as exc:
            return False, str(exc)
        return True, ""

    # ----------------------------------------------------------------- pre-flight: files in, files out
    def checkParameterValues(self, parameters, context):  # noqa: N802
        """Missing input files first (QGIS's own check would only say 'Incorrect parameter value for X'),
        then QGIS's checks, then the outputs: never an input of the run, distinct, in a writable folder."""
        ok, msg = self.check_input_files(parameters, context)
        if not ok:
            return ok, msg
        ok, msg = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, self.range_message(parameters, context) or msg
        return self.check_output_files(parameters, context)

    def range_message(self, parameters, context) -> str:
        """For a number outside its parameter's range, a message that names the parameter as the dialog shows it
        and the range (QGIS's own says only 'Incorrect parameter value for KEY'); "" for anything else."""
        for d in self.parameterDefinitions():
            value = parameters.get(d.name())
            if d.type() != "number" or value is None or value == "" or d.checkValueIsAcceptable(value, context):
                continue
            return self.tr("{name}: {value} is outside the allowed range {low} to {high}.").format(
                name=d.description(), value=value, low=_number(d.minimum()), high=_number(d.maximum()))
        return ""

    def _input_values(self, parameters, definition) -> list:
        """The values given to an input parameter (layers, ids, names or paths), as a list."""
        value = _static_value(parameters.get(definition.name()))
        if value is None or value == "":
            return []
        return [_static_value(v) for v in (value if isinstance(value, (list, tuple)) else [value])]

    def _input_definitions(self):
        return [d for d in self.parameterDefinitions() if not d.isDestination() and d.type() in INPUT_TYPES]

    def check_input_files(self, parameters, context) -> tuple[bool, str]:
        """Every input given as a path must exist and open; the message names the parameter and the file."""
        for definition in self._input_definitions():
            for value in self._input_values(parameters, definition):
                if not isinstance(value, str) or not value:
                    continue
                path = value.split("|")[0]
                if definition.type() != "file" and QgsProcessingUtils.mapLayerFromString(value, context) is not None:
                    continue
                if not os.path.exists(path):
                    return False, self.tr("{param}: the file {path} does not exist. Check the path (was the file "
                                          "moved or renamed?).").format(param=definition.description(), path=path)
                if definition.type() != "file":
                    return False, self.tr("{param}: {path} exists but cannot be opened as a layer. Check that it "
                                          "is a raster or vector file GDAL/OGR can read.").format(
                        param=definition.description(), path=path)
        return True, ""

    def input_paths(self, parameters, context) -> dict[str, str]:
        """{real path: parameter description} of the files this run reads."""
        found = {}
        for definition in self._input_definitions():
            for value in self._input_values(parameters, definition):
                path = None
                if definition.type() == "file":
                    path = value if isinstance(value, str) else None
                else:
                    layer = value if isinstance(value, QgsMapLayer) else (
                        QgsProcessingUtils.mapLayerFromString(value, context) if isinstance(value, str) else None)
                    if layer is not None:
                        path = layer.source().split("|")[0]
                if path and os.path.exists(path):
                    found[same_file_key(path)] = definition.description()
        return found

    def output_paths(self, parameters, context) -> list[tuple[str, object]]:
        """[(absolute path, destination definition)] of the file outputs asked for (temporary ones left out)."""
        out = []
        for definition in self.destinationParameterDefinitions():
            value = parameters.get(definition.name())
            if isinstance(value, QgsProcessingOutputLayerDefinition):
                value = value.sink
            value = _static_value(value)
            if not isinstance(value, str) or not value or value == QgsProcessing.TEMPORARY_OUTPUT:
                continue
            if "://" in value or value.split(":")[0] in ("memory", "ogr", "postgres", "postgis", "spatialite"):
                continue
            path = self.parameterAsFileOutput(parameters, definition.name(), context)
            if path:
                out.append((os.path.abspath(path), definition))
        return out

    def check_output_files(self, parameters, context) -> tuple[bool, str]:
        """Outputs: none is an input of the run, no two share a file, each folder can be written."""
        inputs = self.input_paths(parameters, context)
        seen: dict[str, str] = {}
        for path, definition in self.output_paths(parameters, context):
            key, title = same_file_key(path), definition.description()
            if key in inputs:
                return False, self.tr("The output '{output}' ({path}) is also the input '{input}': the run would "
                                      "replace its own input. Choose another file name for the output.").format(
                    output=title, path=path, input=inputs[key])
            if key in seen:
                return False, self.tr("The outputs '{a}' and '{b}' are the same file {path}: give each output its "
                                      "own file name.").format(a=seen[key], b=title, path=path)
            seen[key] = title
            is_folder = definition.type() == "folderDestination"
            if os.path.isdir(path) and not is_folder:
                return False, self.tr("The output '{output}' ({path}) is a folder: give a file name.").format(
                    output=title, path=path)
            folder = path if is_folder else os.path.dirname(path)
            problem = folder_problem(folder)
            if problem:
                return False, self.tr("The folder {folder} of the output '{output}' cannot be written ({problem}). "
                                      "Choose a folder you can write to.").format(
                    folder=folder, output=title, problem=problem)
        return True, ""

    def input_layer(self, parameters, key, context):
        """The map layer behind a feature-source parameter (also for 'selected features only' definitions)."""
        value = parameters.get(key)
        if isinstance(value, QgsProcessingFeatureSourceDefinition):
            src = value.source.staticValue() if hasattr(value.source, "staticValue") else value.source
            if isinstance(src, QgsVectorLayer):
                return src
            return QgsProcessingUtils.mapLayerFromString(str(src), context)
        return self.parameterAsVectorLayer(parameters, key, context)

    def resolve_class_field(self, parameters, key, context):
        """(field, styles) from CLASS_FIELD and the layer's categorized renderer; raises with a clear message."""
        layer = self.input_layer(parameters, key, context)
        field = self.parameterAsString(parameters, self.CLASS_FIELD, context) if self.is_set(
            parameters, self.CLASS_FIELD) else ""
        field, styles = bl.categorized_classes(layer, field or None)
        if not field:
            raise QgsProcessingException(self.tr(
                "Choose a class field: the layer '{name}' has no categorized style to take the classes "
                "from.").format(name=layer.name() if layer is not None else key))
        return field, styles

    def check_polygon_source(self, source, key) -> tuple[bool, str]:
        """A geometry type the parameter accepts (polygons; points too where it lists them) and at least one
        feature (or one selected feature)."""
        definition = self.parameterDefinition(key)
        title = definition.description() if definition is not None else key
        name = source.sourceName() or title
        accepted = set(definition.dataTypes()) if hasattr(definition, "dataTypes") else set()
        wanted = {QgsWkbTypes.PolygonGeometry: QgsProcessing.TypeVectorPolygon,
                  QgsWkbTypes.PointGeometry: QgsProcessing.TypeVectorPoint,
                  QgsWkbTypes.LineGeometry: QgsProcessing.TypeVectorLine}
        geometry = QgsWkbTypes.geometryType(source.wkbType())
        if (geometry in wanted and accepted and QgsProcessing.TypeVectorAnyGeometry not in accepted
                and wanted[geometry] not in accepted):
            kind = {QgsWkbTypes.PointGeometry: self.tr("point"), QgsWkbTypes.LineGeometry: self.tr("line"),
                    QgsWkbTypes.PolygonGeometry: self.tr("polygon")}[geometry]
            needs = self.tr("polygons or points") if QgsProcessing.TypeVectorPoint in accepted else self.tr("polygons")
            return False, self.tr("'{name}' is a {kind} layer, but '{param}' needs {needs}. Digitize polygons around "
                                  "the areas to label, or buffer the {kind}s first (Vector > Geoprocessing Tools > "
                                  "Buffer).").format(name=name, kind=kind, param=title, needs=needs)
        request = QgsFeatureRequest().setLimit(1).setNoAttributes()
        if next(iter(source.getFeatures(request)), None) is None:
            return False, self.tr("The layer '{name}' given as '{param}' is empty (no features, or no selected "
                                  "features with 'Selected features only').").format(name=name, param=title)
        return True, ""

    def check_class_codes(self, source, field, idx, values) -> tuple[bool, str]:
        """Numeric class values must be whole numbers 1..65535: 0 is the classified map's nodata value."""
        if not source.fields().at(idx).isNumeric():
            return True, ""
        bad = sorted({v for v in values if not (float(v).is_integer() and 1 <= float(v) <= 65535)})
        if not bad:
            return True, ""
        return False, self.tr("Class value(s) {values} in the field '{field}' cannot be used: class values must be "
                              "whole numbers from 1 to 65535, because 0 is the nodata value of the classified map. "
                              "Recode them (for example with the Field Calculator) or use a text class "
                              "field.").format(values=", ".join(str(int(v)) if float(v).is_integer() else str(v) for v in bad),
                                               field=field)

    def check_polygons(self, parameters, key, context, rasters, class_codes=False) -> tuple[bool, str]:
        """Polygons, not empty; class field exists; polygons overlap the rasters (and the extent); at least two
        classes there; with ``class_codes``, numeric classes are 1..65535."""
        source = self.parameterAsSource(parameters, key, context)
        if source is None:
            return False, self.tr("The polygon layer is not valid.")
        ok, msg = self.check_polygon_source(source, key)
        if not ok:
            return ok, msg
        try:
            field, _ = self.resolve_class_field(parameters, key, context)
        except QgsProcessingException as exc:
            return False, str(exc)
        idx = source.fields().lookupField(field)
        if idx < 0:
            return False, self.tr("Field '{field}' is not in the polygon layer.").format(field=field)
        request = QgsFeatureRequest().setSubsetOfAttributes([idx])
        area = None
        if rasters:
            crs = rasters[0].crs()
            area = bl.rasters_extent(rasters, crs)
            if self.is_set(parameters, self.EXTENT) and self.parameterDefinition(self.EXTENT) is not None:
                ext = self.parameterAsExtent(parameters, self.EXTENT, context, crs)
                if not ext.isNull() and not ext.isEmpty():
                    area = area.intersect(ext)
                    if area.isEmpty():
                        return False, self.tr("The extent does not overlap the rasters.")
            rect = area
            if source.sourceCrs().isValid() and crs.isValid() and source.sourceCrs() != crs:
                ct = QgsCoordinateTransform(crs, source.sourceCrs(), context.transformContext())
                rect = ct.transformBoundingBox(area)
            request.setFilterRect(rect)
        values, n = set(), 0
        for feature in source.getFeatures(request):
            if area is not None and not feature.hasGeometry():
                continue
            n += 1
            v = feature.attributes()[idx]
            if v is not None and not (hasattr(v, "isNull") and v.isNull()):
                values.add(v)
        if n == 0:
            if area is None:
                return False, self.tr("The polygon layer has no features (or no selected features).")
            return False, self.tr(
                "No polygon overlaps the rasters (or the extent {extent}, {crs}). Check that the polygons and "
                "the rasters cover the same place.").format(extent=area.toString(0), crs=rasters[0].crs().authid())
        if len(values) < 2:
            return False, self.tr(
                "The class field '{field}' has {n} class(es) in the (selected) polygons inside the rasters and "
                "extent: at least two classes are needed.").format(field=field, n=len(values))
        if class_codes:
            return self.check_class_codes(source, field, idx, values)
        return True, ""

    # ----------------------------------------------------------------- running
    def log_path(self, main_output: str) -> str | None:
        return (main_output + ".log") if main_output else None

    def report_device(self, feedback) -> None:
        try:
            info = runner.doctor()
        except QgsProcessingException as exc:
            raise QgsProcessingException(str(exc))
        feedback.pushInfo(self.tr("Engine: {python} ({device})").format(
            python=info.get("engine_python"), device=runner.describe_device(info)))

    @staticmethod
    def checkpoints(output: str) -> list[str]:
        """The engine's checkpoints of an interrupted run: ``<output>.checkpoint.safetensors`` and, for a train,
        its pretraining stage (``... .pre``) and finished cross-validation folds (``... .cv``). Kept when a run
        is cancelled or fails, so RESUME can continue it; the engine removes them after a successful run."""
        return contract.checkpoint_paths(output)

    def add_context(self):
        self.add(QgsProcessingParameterBoolean(
            self.LANDSCAPE_CONTEXT, self.tr("Landscape context (water index over 100 m and 500 m)"),
            defaultValue=False), advanced=True)

    def context_help(self) -> str:
        return self.tr("Add two auxiliary bands derived from the spectral bands over the whole scene: the water index "
                       "NDWI (green and near-infrared bands, found by their Sentinel-2 names or wavelength tags) "
                       "averaged over 100 m and 500 m around each pixel. They tell a pixel near open water from one "
                       "far inland, which a 5 x 5 px patch cannot: salt marsh along inland forest edges and built-up "
                       "on the beach line are the errors they remove. They can also turn flooded marsh into water: "
                       "compare the map with one trained without them. The model file records it, and "
                       "classification derives the bands again by itself.")

    def context_args(self, parameters, context) -> list[str]:
        if self.parameterDefinition(self.LANDSCAPE_CONTEXT) is None or not self.parameterAsBoolean(
                parameters, self.LANDSCAPE_CONTEXT, context):
            return []
        return ["--context"]

    def add_prediction(self, default_label: str):
        """Advanced *Prediction* enum: ``default_label`` (the engine's default read-out), then the read-outs of
        ``contract.PREDICTIONS`` in order (:meth:`prediction_args`)."""
        self.add(QgsProcessingParameterEnum(
            self.PREDICTION, self.tr("Prediction"), [default_label, self.tr("Fused classifier (paper Eq. 29)"),
                                                     self.tr("Mean of the branch heads")],
            defaultValue=0), advanced=True)

    def prediction_args(self, parameters, context) -> list[str]:
        choice = self.parameterAsEnum(parameters, self.PREDICTION, context)
        return ["--prediction", contract.PREDICTIONS[choice - 1]] if choice else []

    def add_resume(self):
        self.add(QgsProcessingParameterBoolean(
            self.RESUME, self.tr("Resume an interrupted run from its checkpoint"), defaultValue=False), advanced=True)

    def resume_args(self, parameters, context) -> list[str]:
        if self.parameterDefinition(self.RESUME) is None or not self.parameterAsBoolean(parameters, self.RESUME,
                                                                                        context):
            return []
        return ["--resume"]

    def check_resume(self, parameters, context, output_key) -> tuple[bool, str]:
        """RESUME needs the checkpoint that an interrupted run with the same output file left."""
        if not self.resume_args(parameters, context):
            return True, ""
        output = dict((d.name(), p) for p, d in self.output_paths(parameters, context)).get(output_key)
        if output and any(os.path.isfile(p) for p in self.checkpoints(output)):
            return True, ""
        return False, self.tr("'Resume' is ticked but there is no checkpoint of an interrupted run for the output "
                              "{output} ({checkpoint}). Give the same output file as the interrupted run, or untick "
                              "'Resume' to start from the beginning.").format(
            output=output or self.tr("(temporary file)"), checkpoint=self.checkpoints(output or "OUTPUT")[0])

    def kept_note(self, keep) -> str:
        kept = [p for p in keep if p and os.path.isfile(p)]
        if not kept:
            return ""
        return self.tr("The checkpoint {files} was kept: run again with 'Resume' ticked (same inputs and output) to "
                       "continue from it.").format(files=", ".join(kept))

    def run_engine(self, command, args, feedback, parameters, context, main_output, stages=None,
                   outputs_to_clean=(), keep=()):
        """Run the engine with the QGIS overwrite convention and one-line cancel / failure messages.

        An existing output is replaced only when the run succeeds (the dialog asked before; pre-flight refused
        an output that is an input of the run): ``--overwrite`` is passed only then, and the log says which
        files. Cancel or failure: partial outputs removed (existing ones left as they were), the ``keep`` files
        (checkpoints) kept and named in the message.
        """
        outputs = [p for p in outputs_to_clean if p]
        existing = [p for p in outputs if os.path.isfile(p)]
        args = list(args)
        if existing:
            args.append("--overwrite")
            for path in existing:
                feedback.pushWarning(self.tr("{path} exists: it is replaced when the run succeeds (left as it is if "
                                             "the run fails or is cancelled).").format(path=path))
        for path in outputs:
            try:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            except OSError as exc:
                raise QgsProcessingException(self.tr("Cannot create the folder of {path}: {error}").format(
                    path=path, error=exc.strerror or exc))
        try:
            return runner.run_engine(command, args, feedback, stages=stages, log_path=self.log_path(main_output),
                                     cleanup_on_cancel=outputs)
        except runner.EngineCancelled:
            # a plain QgsProcessingException: QGIS shows its text as is (a subclass is shown as a traceback)
            message = self.tr("Cancelled by the user; no output written.")
            note = self.kept_note(keep)
            raise QgsProcessingException(message + (" " + note if note else "")) from None
        except QgsProcessingException as exc:
            note = self.kept_note(keep)
            if not note:
                raise
            raise QgsProcessingException(str(exc) + "\n" + note) from None
