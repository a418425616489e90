"""bdgf:cleanup - sieve (minimum mapping unit) and majority filter on a classified raster."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from .. import layers as bl
from .. import styling
from .base import BdgfAlgorithm


class CleanupAlgorithm(BdgfAlgorithm):
    _name = "cleanup"

    INPUT = "INPUT"
    MMU = "MMU"
    MMU_UNIT = "MMU_UNIT"
    MAJORITY = "MAJORITY"
    CONNECTIVITY = "CONNECTIVITY"

    def displayName(self):  # noqa: N802
        return self.tr("Clean classification (sieve, majority filter)")

    def tags(self):
        return self.tr("bdgf,sieve,majority,mode,filter,minimum mapping unit,mmu,clean,smooth,salt and pepper"
                       ).split(",")

    def shortDescription(self):  # noqa: N802
        return self.tr("Removes isolated pixels and small patches from a classified raster: an optional majority "
                       "(modal) filter, then GDAL's sieve filter, which merges every patch smaller than the "
                       "minimum mapping unit into its largest neighbour. The result keeps the colour table, "
                       "class names and style of the input.")

    def helpParameters(self):  # noqa: N802
        return [
            (self.INPUT, self.tr("A classified raster (integer class values, 0 = nodata), e.g. from 'Classify'.")),
            (self.MMU, self.tr("Minimum mapping unit: patches (connected pixels of one class) smaller than this "
                               "are merged into their largest neighbouring patch. Empty or 0: no sieve.")),
            (self.MMU_UNIT, self.tr("Unit of the minimum mapping unit: pixels or hectares (converted with the "
                                    "raster's pixel area).")),
            (self.MAJORITY, self.tr("Window side in pixels of a majority filter applied before the sieve (an "
                                    "odd number: 3, 5, 7...). Each pixel takes the most frequent class of its "
                                    "window; on a tie it keeps its class. Empty: no majority filter.")),
            (self.CONNECTIVITY, self.tr("Which neighbours make a patch: 4 (edges) or 8 (edges and corners).")),
            (self.OUTPUT, self.tr("Cleaned classified raster (GeoTIFF with the same colour table and names).")),
        ]

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Classified raster")))
        self.add(QgsProcessingParameterNumber(self.MMU, self.tr("Minimum mapping unit"),
                                              QgsProcessingParameterNumber.Double, defaultValue=None,
                                              optional=True, minValue=0.0))
        self.add(QgsProcessingParameterEnum(self.MMU_UNIT, self.tr("Minimum mapping unit in"),
                                            [self.tr("Pixels"), self.tr("Hectares")], defaultValue=0))
        self.add(QgsProcessingParameterNumber(self.MAJORITY, self.tr("Majority filter window (pixels)"),
                                              QgsProcessingParameterNumber.Integer, defaultValue=None,
                                              optional=True, minValue=1, maxValue=101))
        self.add(QgsProcessingParameterEnum(self.CONNECTIVITY, self.tr("Connectivity"),
                                            [self.tr("4 (edges)"), self.tr("8 (edges and corners)")],
                                            defaultValue=0), advanced=True)
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Cleaned classification")))
        self._apply_help()

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, msg = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, msg
        try:
            bl.raster_file(self.parameterAsRasterLayer(parameters, self.INPUT, context))
        except QgsProcessingException as exc:
            return False, str(exc)
        mmu = self.optional_double(parameters, self.MMU, context) or 0.0
        window = self.optional_int(parameters, self.MAJORITY, context) or 0
        if mmu <= 0 and window <= 1:
            return False, self.tr("Give a minimum mapping unit, a majority filter window, or both.")
        if window > 1 and window % 2 == 0:
            return False, self.tr("The majority filter window must be an odd number of pixels (3, 5, 7...), "
                                  "not {n}.").format(n=window)
        return self.check_engine()

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        self.prepared = {"input": bl.raster_file(layer), "classes": styling.raster_classes(layer)}
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        args = ["--input", self.prepared["input"], "--output", output]
        mmu = self.optional_double(parameters, self.MMU, context) or 0.0
        if mmu > 0:
            hectares = self.parameterAsEnum(parameters, self.MMU_UNIT, context) == 1
            args += ["--mmu-ha", repr(mmu)] if hectares else ["--mmu-pixels", str(int(round(mmu)))]
        window = self.optional_int(parameters, self.MAJORITY, context) or 0
        if window > 1:
            args += ["--majority", str(window)]
        args += ["--connectivity", "8" if self.parameterAsEnum(parameters, self.CONNECTIVITY, context) else "4"]
        qml = os.path.splitext(output)[0] + ".qml"
        outputs = self.run_engine("cleanup", args, feedback, parameters, context, output,
                                  stages=[("majority filter", 1)], outputs_to_clean=[output, qml])
        output = outputs.get("output", output)
        styling.attach(context, output, styling.ClassifiedPostProcessor.create(
            f"cleanup:{output}", self.prepared["classes"], outputs.get("qml") or qml))
        feedback.pushInfo(self.tr("{n} pixels changed ({pct:.2f} %), {p} patches removed").format(
            n=outputs.get("changed_pixels", 0), pct=100.0 * float(outputs.get("changed_fraction") or 0.0),
            p=outputs.get("patches_removed", 0)))
        return {self.OUTPUT: output}
