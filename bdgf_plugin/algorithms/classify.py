"""bdgf:classify - classify rasters with a trained BDGF model."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
)

from ...engine.contract import EngineError, has_applicability
from ...engine.contract import read_metadata_dict as read_metadata
from .. import layers as bl
from .. import styling
from .base import AUXILIARY_KINDS, BdgfAlgorithm


def model_classes(meta: dict) -> list[dict]:
    """[{"value", "name", "color"}] from a model's metadata."""
    classes = meta.get("classes") or []
    out = []
    for c in classes:
        if isinstance(c, dict) and "value" in c:
            out.append({"value": int(c["value"]), "name": str(c.get("name", c["value"])),
                        "color": c.get("color") or "#808080"})
    return out


def _count(entry) -> int | None:
    if isinstance(entry, dict):
        for key in ("band_count", "bands", "n_bands", "count", "channels"):
            v = entry.get(key)
            if isinstance(v, int):
                return v
            if isinstance(v, list):
                return len(v)
        if isinstance(entry.get("band_descriptions"), list):
            return len(entry["band_descriptions"])
    if isinstance(entry, int):
        return entry
    return None


def model_inputs(meta: dict) -> tuple[int | None, list[tuple[str, int | None]]]:
    """(spectral band count, [(auxiliary kind, band count)]) from a model's metadata (None when unknown)."""
    inputs = meta.get("modalities") or meta.get("inputs") or {}
    spectral, aux = None, []
    if isinstance(inputs, dict):
        if "modalities" in inputs and isinstance(inputs["modalities"], list):
            inputs = inputs["modalities"]
        else:
            spectral = _count(inputs.get("spectral"))
            for a in inputs.get("auxiliary") or []:
                aux.append((a.get("kind", "?") if isinstance(a, dict) else "?", _count(a)))
            return spectral, aux
    if isinstance(inputs, list):
        for m in inputs:
            if not isinstance(m, dict):
                continue
            if m.get("kind") == "spectral" and spectral is None:
                spectral = _count(m)
            elif m.get("kind") in AUXILIARY_KINDS:
                aux.append((m["kind"], _count(m)))
    if spectral is None and isinstance(meta.get("band_counts"), list) and meta["band_counts"]:
        spectral = meta["band_counts"][0]
    return spectral, aux


class ClassifyAlgorithm(BdgfAlgorithm):
    _name = "classify"

    MASK = "MASK"
    COARSE_TO_FINE = "COARSE_TO_FINE"
    OUTPUT_UNCERTAINTY = "OUTPUT_UNCERTAINTY"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"
    OUTPUT_APPLICABILITY = "OUTPUT_APPLICABILITY"

    def displayName(self):  # noqa: N802
        return self.tr("Classify")

    def tags(self):
        return self.tr("bdgf,classify,classification,predict,land cover,map,deep learning").split(",")

    def shortDescription(self):  # noqa: N802
        return self.tr("Classifies the rasters with a trained BDGF model, tile by tile with bounded memory. "
                       "The classified raster gets the model's class names and colours (paletted style, "
                       "colour table and a QML sidecar); the optional confidence raster holds the winning "
                       "class probability.")

    def helpParameters(self):  # noqa: N802
        return [
            (self.MODEL, self.tr("A model file written by 'Train classifier'.")),
            (self.SPECTRAL, self.tr("Optical rasters with the bands the model was trained on (see 'Band order'). "
                                    "Another scene works: the map is written on this scene's own grid (CRS and "
                                    "pixels), resampled only when its pixel size differs from the model's.")),
            (self.AUXILIARY, self.tr("The same auxiliary rasters as in training, if the model uses them. A model "
                                     "trained with landscape context derives those bands from the spectral rasters "
                                     "itself: nothing to give for them.")),
            (self.AUXILIARY_KIND, self.tr("What the auxiliary rasters hold; must match the model.")),
            (self.BAND_ORDER, self.tr("By band name: the bands are matched to the model's by their Sentinel-2 "
                                      "name (B04...), description or wavelength, reordered when given in another "
                                      "order, and a missing or unknown band is refused with the list the model "
                                      "expects. As given: the bands are used in the order given, for files renamed "
                                      "after training that hold the same bands in the training order.")),
            (self.EXTENT, self.tr("Classify only this extent. Empty: the whole raster.")),
            (self.MASK, self.tr("Optional polygons: only pixels inside them are classified (the rest is "
                                "nodata). 'Selected features only' is honoured.")),
            (self.DEVICE, self.tr("Automatic uses a CUDA GPU when available, otherwise the CPU.")),
            (self.TILE_SIZE, self.tr("Tile size in pixels (empty: the model's default). Smaller tiles use "
                                     "less memory.")),
            (self.BATCH_SIZE, self.tr("Patches per batch (empty: the default). Lower it when the GPU runs "
                                      "out of memory.")),
            (self.COARSE_TO_FINE, self.tr("On (default): the network classifies every 4th pixel of every 4th "
                                          "row, then only the pixels whose neighbours disagree, are unsure (class "
                                          "probability below 0.97, or 0.9 for adjacent neighbours) or whose own "
                                          "spectrum differs from theirs; the others, inside uniform water, forest "
                                          "or fields, take their neighbours' class and mean probabilities. The "
                                          "same classes in a third to half the time. "
                                          "Off: the network classifies every pixel (exact probabilities in the "
                                          "confidence, uncertainty and probability rasters).")),
            (self.PREDICTION, self.tr("How the trained network gives its class probabilities. The model's own "
                                      "(default): the read-out kept at training, the fused classifier unless "
                                      "cross-validation put the heads' mean at least one point of OA ahead (the "
                                      "training log and report say which). Fused classifier: over the three "
                                      "branches' features (the paper's Eq. 29). Mean of the branch heads: the "
                                      "average of the CNN, Transformer and Mamba heads' class probabilities. Both "
                                      "come from the same trained weights; the training report gives the accuracy "
                                      "of both under the same cross-validation folds. The heads' mean was better "
                                      "on a data set of four polygons but put more built-up and forest at field "
                                      "edges on a full Sentinel-2 scene: compare both maps before choosing.")),
            (self.OUTPUT, self.tr("Classified raster (GeoTIFF, class values with colour table).")),
            (self.OUTPUT_CONFIDENCE, self.tr("Optional confidence raster: probability of the winning class.")),
            (self.OUTPUT_UNCERTAINTY, self.tr("Optional uncertainty raster, two bands: 1 'normalised_entropy' "
                                              "(entropy of the class probabilities divided by ln K: 0 = certain, "
                                              "1 = all classes equally likely) and 2 'margin' (probability of "
                                              "the best minus the second-best class: 0 = a tie). Where it is "
                                              "high (low margin), new training polygons help most.")),
            (self.OUTPUT_PROBABILITIES, self.tr("Optional class probabilities: one band per class, named by "
                                                "class, values 0-1.")),
            (self.OUTPUT_APPLICABILITY, self.tr("Optional area of applicability (Meyer and Pebesma 2021): the "
                                                "dissimilarity index of every pixel, the distance of its band "
                                                "values to the nearest training pixel over the mean distance "
                                                "between training pixels. Above the model's threshold (shown in "
                                                "magenta) the scene is unlike every training polygon: the map "
                                                "extrapolates there and the cross-validated accuracy does not "
                                                "hold. Digitize polygons there ('Suggest training samples', "
                                                "ranked by dissimilarity). The log gives the share of every "
                                                "predicted class outside it and warns about a class mostly "
                                                "outside.")),
        ]

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add(QgsProcessingParameterFile(self.MODEL, self.tr("Trained model"), extension="safetensors"))
        self.add_modalities()
        self.add(QgsProcessingParameterEnum(
            self.BAND_ORDER, self.tr("Band order"), [self.tr("By band name (reordered to the model's order)"),
                                                     self.tr("As given (positional, for renamed files)")],
            defaultValue=0))
        self.add_extent()
        self.add(QgsProcessingParameterFeatureSource(self.MASK, self.tr("Classify inside polygons (mask)"),
                                                     [QgsProcessing.TypeVectorPolygon], optional=True))
        self.add_device()
        self.add_int(self.TILE_SIZE, self.tr("Tile size (pixels)"), minimum=16)
        self.add_int(self.BATCH_SIZE, self.tr("Batch size"))
        self.add(QgsProcessingParameterBoolean(
            self.COARSE_TO_FINE, self.tr("Coarse-to-fine (skip the network inside uniform areas)"),
            defaultValue=True), advanced=True)
        self.add_prediction(self.tr("The model's own (default)"))
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Classification")))
        self.add(QgsProcessingParameterRasterDestination(
            self.OUTPUT_CONFIDENCE, self.tr("Confidence"), optional=True, createByDefault=False))
        self.add(QgsProcessingParameterRasterDestination(
            self.OUTPUT_UNCERTAINTY, self.tr("Uncertainty (entropy, margin)"), optional=True,
            createByDefault=False))
        self.add(QgsProcessingParameterRasterDestination(
            self.OUTPUT_PROBABILITIES, self.tr("Class probabilities"), optional=True, createByDefault=False))
        self.add(QgsProcessingParameterRasterDestination(
            self.OUTPUT_APPLICABILITY, self.tr("Area of applicability (dissimilarity index)"), optional=True,
            createByDefault=False))
        self._apply_help()

    # ------------------------------------------------------------------ pre-flight
    def check_model(self, parameters, context) -> tuple[bool, str]:
        path = self.parameterAsFile(parameters, self.MODEL, context)
        try:
            meta = read_metadata(path)
        except EngineError as exc:
            return False, exc.message + (f" ({exc.hint})" if exc.hint else "")
        if meta.get("kind") == "pretrain" or meta.get("stage") == "pretrain":
            return False, self.tr("{path} holds pretrained diffusion weights, not a trained classifier: give "
                                  "it to 'Train classifier' as pretrained model.").format(path=path)
        if self.wants_applicability(parameters, context) and not has_applicability(meta):
            return False, self.tr("{path} was trained before the plugin kept a model's training pixels, so it has "
                                  "no area of applicability: train it again, or leave the area of "
                                  "applicability (ranking by dissimilarity) out.").format(path=path)
        want_spectral, want_aux = model_inputs(meta)
        spectral = self.spectral_layers(parameters, context)
        have_spectral = sum(layer.bandCount() for layer in spectral)
        if want_spectral is not None and have_spectral != want_spectral:
            return False, self.tr("The model was trained on {want} spectral bands; the spectral rasters have "
                                  "{have}. Give the same rasters, in the same order, as in training.").format(
                want=want_spectral, have=have_spectral)
        aux = self.auxiliary_layers(parameters, context)
        have_aux = sum(layer.bandCount() for layer in aux)
        want_aux_bands = sum(n or 0 for _, n in want_aux)
        if want_aux and not aux:
            return False, self.tr("The model uses auxiliary rasters ({kinds}); give them as auxiliary "
                                  "rasters.").format(kinds=", ".join(k for k, _ in want_aux))
        if aux and not want_aux and (want_spectral is not None):
            return False, self.tr("The model was trained without auxiliary rasters; leave them empty.")
        if aux and want_aux:
            kind = AUXILIARY_KINDS[self.parameterAsEnum(parameters, self.AUXILIARY_KIND, context)]
            kinds = {k for k, _ in want_aux}
            if kind not in kinds and not (kind.startswith("sar") and any(k.startswith("sar") for k in kinds)):
                return False, self.tr("The model's auxiliary kind is {want}; the auxiliary kind chosen is "
                                      "{have}.").format(want=", ".join(sorted(kinds)), have=kind)
            if want_aux_bands and have_aux != want_aux_bands:
                return False, self.tr("The model was trained on {want} auxiliary bands; the auxiliary "
                                      "rasters have {have}.").format(want=want_aux_bands, have=have_aux)
        return True, ""

    def wants_applicability(self, parameters, context) -> bool:
        """Whether the run needs the model's training pixels (the area of applicability output)."""
        return self.is_set(parameters, self.OUTPUT_APPLICABILITY)

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, msg = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, msg
        for check in (lambda: self.check_rasters(parameters, context),
                      lambda: self.check_model(parameters, context), self.check_engine):
            ok, msg = check()
            if not ok:
                return ok, msg
        return True, ""

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        model = self.parameterAsFile(parameters, self.MODEL, context)
        try:
            meta = read_metadata(model)
        except EngineError as exc:
            raise QgsProcessingException(exc.message + (f" ({exc.hint})" if exc.hint else ""))
        self.prepared = {"inputs": ["--model", model] + self.modality_args(parameters, context),
                         "classes": model_classes(meta)}
        if self.parameterDefinition(self.MASK) is not None and self.is_set(parameters, self.MASK):
            path, layername = bl.vector_for_engine(self, parameters, self.MASK, context, feedback)
            self.prepared["inputs"] += ["--mask", path] + (["--mask-layer", layername] if layername else [])
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.report_device(feedback)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        confidence = self.parameterAsOutputLayer(parameters, self.OUTPUT_CONFIDENCE, context) if self.is_set(
            parameters, self.OUTPUT_CONFIDENCE) else ""
        args = list(self.prepared["inputs"]) + ["--output", output]
        if confidence:
            args += ["--confidence", confidence]
        extra = {key: self.parameterAsOutputLayer(parameters, key, context) if self.is_set(parameters, key) else ""
                 for key in (self.OUTPUT_UNCERTAINTY, self.OUTPUT_PROBABILITIES, self.OUTPUT_APPLICABILITY)}
        for key, option in ((self.OUTPUT_UNCERTAINTY, "--uncertainty"), (self.OUTPUT_PROBABILITIES, "--probabilities"),
                            (self.OUTPUT_APPLICABILITY, "--applicability")):
            if extra[key]:
                args += [option, extra[key]]
        args += self.int_args(parameters, context, [(self.TILE_SIZE, "--tile"), (self.BATCH_SIZE, "--batch-size")])
        args += self.extent_args(parameters, context) + self.device_args(parameters, context)
        if self.parameterAsEnum(parameters, self.BAND_ORDER, context) == 1:
            args += ["--band-order", "positional"]
        if not self.parameterAsBoolean(parameters, self.COARSE_TO_FINE, context):
            args += ["--coarse-to-fine", "off"]
        args += self.prediction_args(parameters, context)
        qml = os.path.splitext(output)[0] + ".qml"
        outputs = self.run_engine("classify", args, feedback, parameters, context, output,
                                  stages=[self.CONTEXT_STAGE, ("classify", 1)],
                                  outputs_to_clean=[output, confidence, qml, *extra.values()])
        output = outputs.get("output", output)
        styling.attach(context, output, styling.ClassifiedPostProcessor.create(
            f"classify:{output}", self.prepared["classes"], outputs.get("qml") or qml))
        results = {self.OUTPUT: output}
        if confidence:
            confidence = outputs.get("confidence", confidence)
            styling.attach(context, confidence, styling.ConfidencePostProcessor.create(f"confidence:{confidence}"))
            results[self.OUTPUT_CONFIDENCE] = confidence
        for key, name, pp in ((self.OUTPUT_UNCERTAINTY, "uncertainty", styling.UncertaintyPostProcessor),
                              (self.OUTPUT_PROBABILITIES, "probabilities", styling.ProbabilitiesPostProcessor)):
            if extra[key]:
                path = outputs.get(name, extra[key])
                styling.attach(context, path, pp.create(f"{name}:{path}"))
                results[key] = path
        if extra[self.OUTPUT_APPLICABILITY]:
            path = outputs.get("applicability", extra[self.OUTPUT_APPLICABILITY])
            threshold = outputs.get("applicability_threshold")
            styling.attach(context, path, styling.ApplicabilityPostProcessor.create(f"applicability:{path}",
                                                                                    threshold))
            results[self.OUTPUT_APPLICABILITY] = path
            outside, pixels = outputs.get("outside_applicability"), outputs.get("pixels")
            if isinstance(outside, int) and pixels:
                feedback.pushInfo(self.tr("{outside} of {pixels} classified pixels ({share:.1f} %) lie outside the "
                                          "area of applicability.").format(outside=outside, pixels=pixels,
                                                                           share=100.0 * outside / pixels))
        return results
