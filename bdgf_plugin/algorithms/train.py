"""bdgf:train - train the BDGF classifier from training polygons."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ...engine.contract import MAX_ENSEMBLE_MEMBERS, EngineError, parse_validation
from ...engine.contract import read_metadata_dict as read_metadata
from .. import layers as bl
from .base import BdgfAlgorithm


class TrainAlgorithm(BdgfAlgorithm):
    _name = "train"

    def displayName(self):  # noqa: N802
        return self.tr("Train classifier")

    def tags(self):
        return self.tr("bdgf,train,training,classification,land cover,deep learning,polygons").split(",")

    def shortDescription(self):  # noqa: N802
        return self.tr("Trains a BDGF land-cover classifier from training polygons: diffusion features of the "
                       "imagery (pretrained here or given as pretrained weights) fused with the spectral and "
                       "auxiliary bands. Accuracy comes from cross-validation grouped by polygon (never by pixel), next to a "
                       "random forest under the same folds; the final model is refit on every polygon. Writes "
                       "a self-describing model file (classes, colours, bands, normalisation) and an HTML "
                       "validation report.")

    def helpParameters(self):  # noqa: N802
        return [
            (self.SPECTRAL, self.tr("Optical rasters, stacked in the given order. Classify must get the same "
                                    "rasters (same bands, same order).")),
            (self.AUXILIARY, self.tr("Optional auxiliary rasters (SAR backscatter or elevation).")),
            (self.AUXILIARY_KIND, self.tr("What the auxiliary rasters hold.")),
            (self.TRAINING, self.tr("Polygon layer with the training areas; any CRS (reprojected by the "
                                    "engine). 'Selected features only' is honoured; memory layers and layers "
                                    "with unsaved edits are exported to a temporary GeoPackage.")),
            (self.CLASS_FIELD, self.tr("Field with the class of each polygon (integers keep their values, "
                                       "text classes are numbered 1..K). Empty: the field, names and colours "
                                       "of the layer's categorized style. When the style is categorized on "
                                       "this field, its names and colours are used too.")),
            (self.PRETRAINED, self.tr("Optional pretrained diffusion weights from 'Pretrain diffusion model'. "
                                      "Empty: pretraining runs first on these rasters.")),
            (self.EXTENT, self.tr("Restrict training to this extent. Empty: the whole raster.")),
            (self.DEVICE, self.tr("Automatic uses a CUDA GPU when available, otherwise the CPU.")),
            (self.PROFILE, self.tr("Fast: small network, few epochs. Paper: the published settings.")),
            (self.ITERATIONS, self.tr("Pretraining iterations when no pretrained weights are given (empty: "
                                      "the profile's default).")),
            (self.EPOCHS, self.tr("Training epochs (empty: the profile's default).")),
            (self.SEED, self.tr("Random seed, for reproducible runs.")),
            (self.VALIDATION, self.tr("How accuracy is estimated before the final model is refit on every "
                                      "polygon: 'cv:K' (K-fold cross-validation grouped by polygon, with a "
                                      "random forest under the same folds; K is lowered when a class has fewer "
                                      "polygons), 'holdout:F' (one share F of each class's polygons held out), or "
                                      "'none' (fastest: no accuracy figures). Empty: cv:5, or holdout with the "
                                      "validation fraction below when that is set.")),
            (self.CV_BLOCK_SIZE, self.tr("Cross-validation by spatial block: the side (metres) of square blocks "
                                         "whose polygons always fall in the same fold, so that neighbouring "
                                         "polygons are never on both sides of a fold (nearby pixels look alike, "
                                         "which makes polygon folds optimistic when polygons cluster). E.g. 2000. "
                                         "Empty or 0: folds by polygon.")),
            (self.VALIDATION_FRACTION, self.tr("Fraction of the polygons of each class held out for "
                                               "validation (hold-out mode). Empty: cross-validation.")),
            (self.CLASS_BALANCE, self.tr("How far training evens out the classes: 1 draws every class equally "
                                         "often, so a class of 40 pixels weighs as much as one of 4 000 (good "
                                         "for rare classes, may over-map them); 0.5 draws in proportion to the "
                                         "square root of the pixel count; 0 in proportion to the pixel count. "
                                         "Empty: 1.")),
            (self.PSEUDO_LABELS, self.tr("Share of the training draws taken from unlabelled pixels of the scene "
                                         "that a random forest trained on the polygons is at least 90 % sure of. "
                                         "They show the network its classes next to covers no polygon reaches "
                                         "(forest by a road, a field by a hedge), where it would otherwise guess "
                                         "from the surroundings, but they also carry the forest's own errors. "
                                         "E.g. 0.7 with few polygons per class. Empty or 0: the polygons alone.")),
            (self.WHITEWATER, self.tr("Share of each water polygon covered by drawn foam stripes (surf, breaking "
                                      "waves) whose pixels train as water, and of each dry-sand polygon covered by "
                                      "swash-zone stripes (wet sand and foam) whose pixels train as sand. No one "
                                      "digitizes the surf line, and "
                                      "without them it is mapped as the nearest bright class, often built-up. "
                                      "Needs bands with known wavelengths (Sentinel-2 band names or wavelength "
                                      "tags) and a class whose spectrum is water. Empty: 0.5 (fast profile), "
                                      "0 (paper profile); 0: off.")),
            (self.ENSEMBLE_MEMBERS, self.tr("Train this many networks, each with its own random seed, and "
                                            "classify with the mean of their class probabilities (an ensemble). "
                                            "Steadier with few polygons per class; 3 members take about 2.5-3 "
                                            "times as long to train and to classify. Empty or 1: one network.")),
            (self.PREDICTION, self.tr("How the trained network gives its class probabilities, kept in the model "
                                      "file. Chosen by cross-validation (default): with the fast profile, the mean "
                                      "of the branch heads when the folds put it at least one point of OA ahead of "
                                      "the fused classifier, otherwise the fused classifier (the paper profile "
                                      "keeps the fused classifier). Fused classifier: over the three branches' "
                                      "features (the paper's Eq. 29). Mean of the branch heads: the average of the "
                                      "CNN, Transformer and Mamba heads' class probabilities. The report gives the "
                                      "accuracy of both; Classify's Prediction can read the model out the other "
                                      "way later.")),
            (self.LANDSCAPE_CONTEXT, self.context_help() + " " + self.tr(
                "On by itself when the pretrained model has it (it must then be pretrained with it).")),
            (self.RESUME, self.tr("Continue a training that was cancelled or failed, from the checkpoints "
                                  "<output>.checkpoint.safetensors (.cv, .pre) it left next to the output: finished "
                                  "cross-validation folds and stages are not run again. Give the same inputs and "
                                  "output file as the interrupted run.")),
            (self.OUTPUT_MODEL, self.tr("The trained model (.safetensors). An existing file is replaced only when "
                                        "training succeeds; it can never be one of the inputs.")),
            (self.OUTPUT_REPORT, self.tr("HTML report: classes, pixel counts, validation accuracy.")),
        ]

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_modalities()
        self.add_polygons(self.TRAINING, self.tr("Training polygons"))
        self.add_class_field(self.TRAINING)
        self.add(QgsProcessingParameterFile(
            self.PRETRAINED, self.tr("Pretrained diffusion model (optional)"),
            extension="safetensors", optional=True))
        self.add_extent()
        self.add_device()
        self.add_profile()
        self.add_int(self.ITERATIONS, self.tr("Pretraining iterations"))
        self.add_int(self.EPOCHS, self.tr("Training epochs"))
        self.add_int(self.SEED, self.tr("Random seed"), minimum=0, default=0)
        self.add(QgsProcessingParameterString(self.VALIDATION, self.tr("Validation (cv:K, holdout:F or none)"),
                                              optional=True), advanced=True)
        self.add(QgsProcessingParameterNumber(self.CV_BLOCK_SIZE, self.tr("Spatial block size for cross-validation "
                                                                          "(m)"),
                                              QgsProcessingParameterNumber.Double, optional=True, minValue=0.0),
                 advanced=True)
        vf = QgsProcessingParameterNumber(self.VALIDATION_FRACTION, self.tr("Validation fraction"),
                                          QgsProcessingParameterNumber.Double, optional=True,
                                          minValue=0.0, maxValue=0.9)
        self.add(vf, advanced=True)
        self.add(QgsProcessingParameterNumber(self.CLASS_BALANCE, self.tr("Class balance (0-1)"),
                                              QgsProcessingParameterNumber.Double, optional=True,
                                              minValue=0.0, maxValue=1.0), advanced=True)
        self.add(QgsProcessingParameterNumber(self.PSEUDO_LABELS, self.tr("Pseudo-label share (0-0.95)"),
                                              QgsProcessingParameterNumber.Double, optional=True,
                                              minValue=0.0, maxValue=0.95), advanced=True)
        self.add(QgsProcessingParameterNumber(self.WHITEWATER,
                                              self.tr("Whitewater share of water and sand polygons (0-1)"),
                                              QgsProcessingParameterNumber.Double, optional=True,
                                              minValue=0.0, maxValue=1.0), advanced=True)
        self.add_int(self.ENSEMBLE_MEMBERS, self.tr("Ensemble members"), minimum=1, maximum=MAX_ENSEMBLE_MEMBERS)
        self.add_prediction(self.tr("Chosen by cross-validation (default)"))
        self.add_context()
        self.add_resume()
        self.add(QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, self.tr("Trained model"), self.tr("Safetensors model (*.safetensors)")))
        self.add(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Training report"), self.tr("HTML files (*.html)"), optional=True,
            createByDefault=True))
        self._apply_help()

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, msg = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, msg
        for check in (lambda: self.check_validation(parameters, context),
                      lambda: self.check_rasters(parameters, context),
                      lambda: self.check_polygons(parameters, self.TRAINING, context,
                                                  self.spectral_layers(parameters, context), class_codes=True),
                      lambda: self.check_pretrained(parameters, context),
                      lambda: self.check_resume(parameters, context, self.OUTPUT_MODEL), self.check_engine):
            ok, msg = check()
            if not ok:
                return ok, msg
        return True, ""

    def check_validation(self, parameters, context):
        """The engine's own parser of validation modes (``contract.parse_validation``), before the engine runs;
        a spatial block size only with cross-validation."""
        value = (self.parameterAsString(parameters, self.VALIDATION, context) or "").strip()
        mode = "holdout" if self.optional_double(parameters, self.VALIDATION_FRACTION, context) else "cv"
        if value:
            try:
                mode = parse_validation(value)[0]
            except EngineError as exc:
                return False, f"{exc.message} ({exc.hint})"
        if self.optional_double(parameters, self.CV_BLOCK_SIZE, context) and mode != "cv":
            return False, self.tr("A spatial block size for cross-validation needs validation cv:K, not {mode}: use "
                                  "cv:K or clear the block size.").format(mode=value or mode)
        return True, ""

    def check_pretrained(self, parameters, context):
        if not self.is_set(parameters, self.PRETRAINED):
            return True, ""
        path = self.parameterAsFile(parameters, self.PRETRAINED, context)
        try:
            meta = read_metadata(path)
        except EngineError as exc:
            return False, exc.message + (f" ({exc.hint})" if exc.hint else "")
        if meta.get("kind") not in (None, "pretrain"):
            return False, self.tr("{path} is a {kind} model, not pretrained diffusion weights: give a file "
                                  "written by 'Pretrain diffusion model'.").format(path=path, kind=meta.get("kind"))
        return True, ""

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        # main thread: layers, renderers and memory-layer export
        field, styles = self.resolve_class_field(parameters, self.TRAINING, context)
        path, layername = bl.vector_for_engine(self, parameters, self.TRAINING, context, feedback)
        args = self.modality_args(parameters, context) + ["--training", path]
        if layername:
            args += ["--layer", layername]
        args += ["--class-field", field]
        if styles:
            args += ["--class-styles", bl.write_class_styles(styles)]
            feedback.pushInfo(self.tr("Classes from the layer style: {classes}").format(
                classes=", ".join(f"{k} {v['name']}" for k, v in styles.items())))
        if self.is_set(parameters, self.PRETRAINED):
            args += ["--pretrained", self.parameterAsFile(parameters, self.PRETRAINED, context)]
        self.prepared = {"inputs": args}
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.report_device(feedback)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context)
        args = list(self.prepared["inputs"]) + ["--output", output]
        if report:
            args += ["--report", report]
        args += self.profile_args(parameters, context)
        args += self.int_args(parameters, context, [(self.ITERATIONS, "--iterations"), (self.EPOCHS, "--epochs"),
                                                    (self.SEED, "--seed"), (self.ENSEMBLE_MEMBERS, "--members")])
        validation = (self.parameterAsString(parameters, self.VALIDATION, context) or "").strip()
        vf = self.optional_double(parameters, self.VALIDATION_FRACTION, context)
        if validation:
            args += ["--validation", validation]
        elif vf is not None:
            args += ["--validation-fraction", repr(vf)]
        balance = self.optional_double(parameters, self.CLASS_BALANCE, context)
        if balance is not None:
            args += ["--class-balance", repr(balance)]
        pseudo = self.optional_double(parameters, self.PSEUDO_LABELS, context)
        if pseudo is not None:
            args += ["--pseudo-labels", repr(pseudo)]
        whitewater = self.optional_double(parameters, self.WHITEWATER, context)
        if whitewater is not None:
            args += ["--whitewater", repr(whitewater)]
        args += self.prediction_args(parameters, context)
        block = self.optional_double(parameters, self.CV_BLOCK_SIZE, context)
        if block:
            args += ["--cv-block-size", repr(block)]
        args += self.extent_args(parameters, context) + self.device_args(parameters, context)
        args += self.context_args(parameters, context) + self.resume_args(parameters, context)
        stages = [("gather", 1), ("train", 3)]
        if not self.is_set(parameters, self.PRETRAINED):
            stages.insert(0, ("pretrain", 3))
        stages.insert(0, self.CONTEXT_STAGE)
        outputs = self.run_engine("train", args, feedback, parameters, context, output, stages=stages,
                                  outputs_to_clean=[output, report], keep=self.checkpoints(output))
        results = {self.OUTPUT_MODEL: outputs.get("output", output)}
        if report:
            results[self.OUTPUT_REPORT] = outputs.get("report", report)
        if outputs.get("metrics"):
            results["METRICS"] = outputs["metrics"]
        return results
