"""bdgf:suggestsamples - where to digitize next: uncertain, spread-out, class-balanced locations."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDistance,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterVectorDestination,
)

from ...engine.contract import SUGGEST_MEASURES, SUGGESTED_CLASS_FIELD
from .. import layers as bl
from .. import styling
from .base import BdgfAlgorithm
from .classify import ClassifyAlgorithm

MEASURES = list(SUGGEST_MEASURES)


class SuggestSamplesAlgorithm(ClassifyAlgorithm):
    """Shares the model / raster parameters and pre-flight checks of :class:`ClassifyAlgorithm`."""

    _name = "suggestsamples"

    MASK = "MASK"
    COUNT = "COUNT"
    MIN_DISTANCE = "MIN_DISTANCE"
    MEASURE = "MEASURE"
    BALANCE = "BALANCE"

    def displayName(self):  # noqa: N802
        return self.tr("Suggest training samples (where to digitize next)")

    def tags(self):
        return self.tr("bdgf,active learning,uncertainty,entropy,margin,suggest,training,samples,digitize,"
                       "area of applicability,dissimilarity").split(",")

    def shortDescription(self):  # noqa: N802
        return self.tr("Classifies the scene with a trained model and suggests the locations where new training "
                       "polygons would help most: the pixels where the model is least sure (entropy or margin "
                       "of the class probabilities), kept a minimum distance apart and balanced over the "
                       "predicted classes (uncertainty sampling with diversity; Tuia et al. 2011, Demir et al. "
                       "2011, Stumpf et al. 2014). Each point has its rank, predicted class, uncertainty and the "
                       "two most likely classes. Digitize polygons around them, label them, and retrain. "
                       "Ranked by dissimilarity instead, the points go where the scene is least like any "
                       "training polygon (outside the area of applicability), where the model can be wrong "
                       "and sure of itself.")

    def helpParameters(self):  # noqa: N802
        return [
            (self.MODEL, self.tr("A model file written by 'Train classifier'.")),
            (self.SPECTRAL, self.tr("The same optical rasters as in training (same bands, same order).")),
            (self.AUXILIARY, self.tr("The same auxiliary rasters as in training, if the model uses them. A model "
                                     "trained with landscape context derives those bands from the spectral rasters "
                                     "itself: nothing to give for them.")),
            (self.AUXILIARY_KIND, self.tr("What the auxiliary rasters hold; must match the model.")),
            (self.EXTENT, self.tr("Search only this extent. Empty: the whole raster.")),
            (self.MASK, self.tr("Optional polygons: search only inside them.")),
            (self.COUNT, self.tr("Number of suggested locations.")),
            (self.MIN_DISTANCE, self.tr("Minimum distance between two suggestions, in map units (0: one pixel).")),
            (self.MEASURE, self.tr("Entropy: all class probabilities count (1 = all classes equally likely). "
                                   "Margin: the gap between the two most likely classes (small = confused "
                                   "between two classes). Dissimilarity: the dissimilarity index of the pixel's "
                                   "own band values, their distance to the nearest training pixel (Meyer and "
                                   "Pebesma 2021): high where the scene is unlike every training polygon, e.g. "
                                   "breaking surf or a crop nobody digitized, which the model may map with "
                                   "confidence; the 'dissimilarity' field holds it.")),
            (self.BALANCE, self.tr("Take the suggestions in turn from each predicted class, so one confused "
                                   "class cannot take the whole batch.")),
            (self.DEVICE, self.tr("Automatic uses a CUDA GPU when available, otherwise the CPU.")),
            (self.TILE_SIZE, self.tr("Tile size in pixels (empty: the model's default).")),
            (self.BATCH_SIZE, self.tr("Patches per batch (empty: the default).")),
            (self.OUTPUT, self.tr("Point layer: rank (1 = first), pred_class, pred_name, uncertainty (the "
                                  "ranking value), entropy, margin, prob_first, second_class, second_name, "
                                  "prob_second, dissimilarity (when ranked by it).")),
        ]

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add(QgsProcessingParameterFile(self.MODEL, self.tr("Trained model"), extension="safetensors"))
        self.add_modalities()
        self.add_extent()
        self.add(QgsProcessingParameterFeatureSource(self.MASK, self.tr("Search inside polygons"),
                                                     [QgsProcessing.TypeVectorPolygon], optional=True))
        self.add(QgsProcessingParameterNumber(self.COUNT, self.tr("Number of suggestions"),
                                              QgsProcessingParameterNumber.Integer, defaultValue=20,
                                              minValue=1, maxValue=100000))
        self.add(QgsProcessingParameterDistance(self.MIN_DISTANCE, self.tr("Minimum distance between suggestions"),
                                                defaultValue=0.0, minValue=0.0))
        self.add(QgsProcessingParameterEnum(self.MEASURE, self.tr("Rank by"),
                                            [self.tr("Entropy"), self.tr("Margin (best versus second best)"),
                                             self.tr("Dissimilarity (unlike the training polygons)")],
                                            defaultValue=0))
        self.add(QgsProcessingParameterBoolean(self.BALANCE, self.tr("Balance over predicted classes"),
                                               defaultValue=True))
        self.add_device()
        self.add_int(self.TILE_SIZE, self.tr("Tile size (pixels)"), minimum=16)
        self.add_int(self.BATCH_SIZE, self.tr("Batch size"))
        self.add(QgsProcessingParameterVectorDestination(self.OUTPUT, self.tr("Suggested locations"),
                                                         QgsProcessing.TypeVectorPoint))
        self._apply_help()

    def wants_applicability(self, parameters, context) -> bool:
        """Ranking by dissimilarity needs the model's training pixels."""
        return MEASURES[self.parameterAsEnum(parameters, self.MEASURE, context)] == "dissimilarity"

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        super().prepareAlgorithm(parameters, context, feedback)
        if self.is_set(parameters, self.MASK):
            path, layername = bl.vector_for_engine(self, parameters, self.MASK, context, feedback)
            self.prepared["inputs"] += ["--mask", path] + (["--mask-layer", layername] if layername else [])
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.report_device(feedback)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        args = list(self.prepared["inputs"]) + [
            "--output", output, "--count", str(self.parameterAsInt(parameters, self.COUNT, context)),
            "--min-distance", repr(self.parameterAsDouble(parameters, self.MIN_DISTANCE, context)),
            "--measure", MEASURES[self.parameterAsEnum(parameters, self.MEASURE, context)]]
        if not self.parameterAsBool(parameters, self.BALANCE, context):
            args.append("--no-balance")
        args += self.int_args(parameters, context, [(self.TILE_SIZE, "--tile"), (self.BATCH_SIZE, "--batch-size")])
        args += self.extent_args(parameters, context) + self.device_args(parameters, context)
        outputs = BdgfAlgorithm.run_engine(self, "suggest", args, feedback, parameters, context, output,
                                           stages=[self.CONTEXT_STAGE, ("classify", 1)], outputs_to_clean=[output])
        output = outputs.get("output", output)
        if context.willLoadLayerOnCompletion(output):
            context.layerToLoadOnCompletionDetails(output).setPostProcessor(
                styling.PointClassesPostProcessor.create(f"suggest:{output}", SUGGESTED_CLASS_FIELD,
                                                         self.prepared["classes"]))
        return {self.OUTPUT: output}
