"""bdgf:sampledesign - stratified random sample for accuracy assessment (Olofsson et al. 2014)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterDistance,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ...engine.contract import STRATUM_FIELD
from .. import layers as bl
from .. import styling
from .base import BdgfAlgorithm


def parse_expected_ua(text: str) -> list[tuple[str, float]]:
    """``"1=0.7; water=0.95"`` -> [("1", 0.7), ("water", 0.95)]; raises ValueError on a malformed entry."""
    out = []
    for part in (text or "").replace(",", ";").split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(part.strip())
        u = float(value)
        if not 0 < u <= 1:
            raise ValueError(part.strip())
        out.append((key.strip(), u))
    return out


class SampleDesignAlgorithm(BdgfAlgorithm):
    _name = "sampledesign"
    _group = "accuracy"

    INPUT = "INPUT"
    TARGET_SE = "TARGET_SE"
    EXPECTED_UA = "EXPECTED_UA"
    EXPECTED_UA_CLASSES = "EXPECTED_UA_CLASSES"
    MIN_PER_CLASS = "MIN_PER_CLASS"
    SAMPLE_SIZE = "SAMPLE_SIZE"
    MIN_DISTANCE = "MIN_DISTANCE"

    def displayName(self):  # noqa: N802
        return self.tr("Design accuracy sample (stratified random)")

    def tags(self):
        return self.tr("bdgf,accuracy,sample,sampling design,stratified random,olofsson,validation,points,"
                       "reference").split(",")

    def shortDescription(self):  # noqa: N802
        return self.tr("Draws a stratified random sample of points from a classified raster for accuracy "
                       "assessment, following Olofsson et al. (2014): the total size from a target standard error "
                       "of overall accuracy and the expected user's accuracy per class, a minimum per class (the "
                       "rest proportional to area) and an optional minimum distance between points. Each point "
                       "has its stratum and the stratum size, and an empty 'reference' field to fill in; "
                       "'Assess accuracy' then gives the stratified estimates with 95 % intervals.")

    def helpParameters(self):  # noqa: N802
        return [
            (self.INPUT, self.tr("The classified raster to assess; its classes are the strata.")),
            (self.TARGET_SE, self.tr("Wanted standard error of the overall accuracy estimate, as a fraction "
                                     "(0.01 = ±1 %, about ±2 % at 95 %).")),
            (self.EXPECTED_UA, self.tr("Anticipated user's accuracy of every class (a fraction), used by the "
                                       "sample-size formula.")),
            (self.EXPECTED_UA_CLASSES, self.tr("Optional per-class anticipated user's accuracies overriding the "
                                               "value above, as 'class=value' pairs separated by ';' (class "
                                               "value or name), e.g. '3=0.7; water=0.95'.")),
            (self.MIN_PER_CLASS, self.tr("Minimum number of points in every class (Olofsson et al. suggest 50 "
                                         "to 100); the rest is allocated in proportion to the mapped area.")),
            (self.SAMPLE_SIZE, self.tr("Total number of points, instead of the sample-size formula. Empty: from "
                                       "the target standard error.")),
            (self.MIN_DISTANCE, self.tr("Minimum distance between two points, in map units (0: none). It "
                                        "lowers spatial autocorrelation; a small class may then get fewer "
                                        "points (reported).")),
            (self.SEED, self.tr("Random seed: the same seed draws the same sample.")),
            (self.OUTPUT, self.tr("Point layer to label: fields sample_id, stratum, stratum_name, "
                                  "stratum_pixels, stratum_area_ha, map_class and an empty reference.")),
        ]

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Classified raster")))
        self.add(QgsProcessingParameterNumber(self.TARGET_SE, self.tr("Target standard error of overall accuracy"),
                                              QgsProcessingParameterNumber.Double, defaultValue=0.01,
                                              minValue=0.001, maxValue=0.5))
        self.add(QgsProcessingParameterNumber(self.EXPECTED_UA, self.tr("Expected user's accuracy"),
                                              QgsProcessingParameterNumber.Double, defaultValue=0.9,
                                              minValue=0.01, maxValue=1.0))
        self.add(QgsProcessingParameterString(self.EXPECTED_UA_CLASSES,
                                              self.tr("Expected user's accuracy per class"), optional=True),
                 advanced=True)
        self.add_int(self.MIN_PER_CLASS, self.tr("Minimum points per class"), minimum=0, default=50,
                     advanced=False)
        self.add_int(self.SAMPLE_SIZE, self.tr("Total sample size (empty: from the standard error)"))
        self.add(QgsProcessingParameterDistance(self.MIN_DISTANCE, self.tr("Minimum distance between points"),
                                                defaultValue=0.0, parentParameterName=self.INPUT, minValue=0.0))
        self.add_int(self.SEED, self.tr("Random seed"), minimum=0, default=0)
        self.add(QgsProcessingParameterVectorDestination(self.OUTPUT, self.tr("Sample points"),
                                                         QgsProcessing.TypeVectorPoint))
        self._apply_help()

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, msg = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, msg
        try:
            bl.raster_file(self.parameterAsRasterLayer(parameters, self.INPUT, context))
        except QgsProcessingException as exc:
            return False, str(exc)
        try:
            parse_expected_ua(self.parameterAsString(parameters, self.EXPECTED_UA_CLASSES, context))
        except ValueError as exc:
            return False, self.tr("Cannot read the per-class expected user's accuracy '{entry}': write "
                                  "'class=value' pairs with values in (0, 1], separated by ';'.").format(entry=exc)
        return self.check_engine()

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        self.prepared = {"input": bl.raster_file(layer), "classes": styling.raster_classes(layer)}
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        args = ["--classification", self.prepared["input"], "--output", output,
                "--target-se", repr(self.parameterAsDouble(parameters, self.TARGET_SE, context)),
                "--expected-ua", repr(self.parameterAsDouble(parameters, self.EXPECTED_UA, context)),
                "--min-per-class", str(self.parameterAsInt(parameters, self.MIN_PER_CLASS, context)),
                "--min-distance", repr(self.parameterAsDouble(parameters, self.MIN_DISTANCE, context)),
                "--seed", str(self.parameterAsInt(parameters, self.SEED, context))]
        for key, value in parse_expected_ua(self.parameterAsString(parameters, self.EXPECTED_UA_CLASSES, context)):
            args += ["--expected-ua-class", f"{key}={value!r}"]
        total = self.optional_int(parameters, self.SAMPLE_SIZE, context)
        if total:
            args += ["--total", str(total)]
        outputs = self.run_engine("sampledesign", args, feedback, parameters, context, output,
                                  outputs_to_clean=[output])
        output = outputs.get("output", output)
        for s in outputs.get("strata") or []:
            feedback.pushInfo(self.tr("{name}: {drawn} of {planned} points ({pixels} pixels)").format(**s))
        if context.willLoadLayerOnCompletion(output):
            context.layerToLoadOnCompletionDetails(output).setPostProcessor(
                styling.PointClassesPostProcessor.create(f"sampledesign:{output}", STRATUM_FIELD,
                                                         self.prepared["classes"]))
        return {self.OUTPUT: output, "SAMPLE_SIZE": outputs.get("n")}
