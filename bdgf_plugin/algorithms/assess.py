"""bdgf:assess - accuracy assessment of a classified raster against reference polygons."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from .. import layers as bl
from .base import BdgfAlgorithm


class AssessAlgorithm(BdgfAlgorithm):
    _name = "assess"
    _group = "accuracy"

    STRATUM_FIELD = "STRATUM_FIELD"

    def displayName(self):  # noqa: N802
        return self.tr("Assess accuracy")

    def tags(self):
        return self.tr("bdgf,accuracy,assessment,confusion matrix,kappa,validation,olofsson,area").split(",")

    def shortDescription(self):  # noqa: N802
        return self.tr("Compares a classified raster with reference polygons: confusion matrix, overall "
                       "accuracy, kappa, per-class producer's/user's accuracy and F1, and area-adjusted "
                       "accuracy and area estimates with 95 % confidence intervals (Olofsson et al. 2014).")

    def helpParameters(self):  # noqa: N802
        return [
            (self.CLASSIFICATION, self.tr("A classified raster (for example from 'Classify').")),
            (self.REFERENCE, self.tr("Reference polygons, independent of the training polygons, or a labelled "
                                     "point layer from 'Design accuracy sample' (stratified estimates of "
                                     "accuracy and area with 95 % intervals, strata from the design). "
                                     "'Selected features only' is honoured.")),
            (self.CLASS_FIELD, self.tr("Field with the reference class, coded like the classification. "
                                       "Empty: the field of the layer's categorized style.")),
            (self.STRATUM_FIELD, self.tr("Points only: the field with each point's stratum (default "
                                         "'stratum'; its size is read from 'stratum_pixels'). Without these "
                                         "fields the map classes are the strata.")),
            (self.OUTPUT_REPORT, self.tr("HTML accuracy report.")),
            (self.OUTPUT_TABLE, self.tr("Confusion matrix and per-class accuracies as CSV.")),
        ]

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add(QgsProcessingParameterRasterLayer(self.CLASSIFICATION, self.tr("Classified raster")))
        self.add(QgsProcessingParameterFeatureSource(
            self.REFERENCE, self.tr("Reference polygons or labelled sample points"),
            [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint]))
        self.add_class_field(self.REFERENCE)
        self.add(QgsProcessingParameterField(self.STRATUM_FIELD, self.tr("Stratum field (sample points)"),
                                             parentLayerParameterName=self.REFERENCE, optional=True),
                 advanced=True)
        self.add(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Accuracy report"), self.tr("HTML files (*.html)")))
        self.add(QgsProcessingParameterFileDestination(
            self.OUTPUT_TABLE, self.tr("Accuracy table"), self.tr("CSV files (*.csv)"), optional=True,
            createByDefault=True))
        self._apply_help()

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, msg = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, msg
        raster = self.parameterAsRasterLayer(parameters, self.CLASSIFICATION, context)
        try:
            bl.raster_file(raster)
        except Exception as exc:  # QgsProcessingException
            return False, str(exc)
        if raster.bandCount() != 1:
            return False, self.tr("'{name}' has {n} bands, so it is not a classification: a classified raster has one "
                                  "band of class values (for example the output of 'Classify'). Give the classified "
                                  "map, not the imagery.").format(name=raster.name(), n=raster.bandCount())
        for check in (lambda: self.check_polygons(parameters, self.REFERENCE, context, [raster]),
                      self.check_engine):
            ok, msg = check()
            if not ok:
                return ok, msg
        return True, ""

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        field, _ = self.resolve_class_field(parameters, self.REFERENCE, context)
        raster = bl.raster_file(self.parameterAsRasterLayer(parameters, self.CLASSIFICATION, context))
        path, layername = bl.vector_for_engine(self, parameters, self.REFERENCE, context, feedback)
        args = ["--classification", raster, "--reference", path]
        if layername:
            args += ["--layer", layername]
        if self.is_set(parameters, self.STRATUM_FIELD):
            args += ["--stratum-field", self.parameterAsString(parameters, self.STRATUM_FIELD, context)]
        self.prepared = {"inputs": args + ["--class-field", field]}
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context)
        table = self.parameterAsFileOutput(parameters, self.OUTPUT_TABLE, context)
        args = list(self.prepared["inputs"]) + ["--report", report]
        if table:
            args += ["--table", table]
        outputs = self.run_engine("assess", args, feedback, parameters, context, report,
                                  stages=[("reference pixels", 1), ("map pixel counts", 1)],
                                  outputs_to_clean=[report, table])
        results = {self.OUTPUT_REPORT: outputs.get("report", report)}
        if table:
            results[self.OUTPUT_TABLE] = outputs.get("table", table)
        if outputs.get("metrics"):
            results["METRICS"] = outputs["metrics"]
        return results
