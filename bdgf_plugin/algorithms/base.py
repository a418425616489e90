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
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingUtils,
    QgsVectorLayer,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterField,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
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
    VALIDATION_FRACTION = "VALIDATION_FRACTION"
    TILE_SIZE = "TILE_SIZE"
    BATCH_SIZE = "BATCH_SIZE"
    OUTPUT_MODEL = "OUTPUT_MODEL"
    OUTPUT = "OUTPUT"
    OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    OUTPUT_TABLE = "OUTPUT_TABLE"

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
            p.setMaxValue(maximum)
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

    def check_polygons(self, parameters, key, context, rasters) -> tuple[bool, str]:
        """Class field exists; polygons overlap the rasters (and the extent); at least two classes there."""
        source = self.parameterAsSource(parameters, key, context)
        if source is None:
            return False, self.tr("The polygon layer is not valid.")
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
        """The engine's pretraining checkpoints (kept by the engine on cancel for --resume, which the plugin
        does not offer): removed when a run is cancelled or fails."""
        return contract.checkpoint_paths(output)

    def run_engine(self, command, args, feedback, parameters, context, main_output, stages=None,
                   outputs_to_clean=()):
        args = list(args) + ["--overwrite"]
        return runner.run_engine(command, args, feedback, stages=stages, log_path=self.log_path(main_output),
                                 cleanup_on_cancel=list(outputs_to_clean))
