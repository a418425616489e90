"""Builds tests/plugin/data/analyst_loop.model3 with QgsProcessingModelAlgorithm (run once; the file is kept in
the repository and loaded by test_analyst_loop.py, like a model saved from the graphical modeler):
train -> classify (with uncertainty) -> cleanup -> sampledesign.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.plugin.analyst_model_builder
"""

from __future__ import annotations

import os

MODEL_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "analyst_loop.model3")


def build_model():
    from qgis.core import (
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource as Src,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterExtent,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterMultipleLayers,
    )

    model = QgsProcessingModelAlgorithm("BDGF analyst loop: train, classify with uncertainty, clean, sample design",
                                        "BDGF", "bdgf_analyst_loop")
    for definition in (
        QgsProcessingParameterMultipleLayers("spectral", "Spectral rasters", QgsProcessing.TypeRaster),
        QgsProcessingParameterFeatureSource("training", "Training polygons", [QgsProcessing.TypeVectorPolygon]),
        QgsProcessingParameterExtent("extent", "Extent", optional=True),
    ):
        model.addModelParameter(definition, QgsProcessingModelParameter(definition.name()))

    def child(alg_id, child_id, description, sources, outputs=()):
        c = QgsProcessingModelChildAlgorithm(alg_id)
        c.setChildId(child_id)
        c.setDescription(description)
        for key, src in sources.items():
            c.addParameterSources(key, [src])
        declared = {}
        for name, child_output in outputs:
            out = QgsProcessingModelOutput(name, name)
            out.setChildId(child_id)
            out.setChildOutputName(child_output)
            declared[name] = out
        c.setModelOutputs(declared)
        return c

    common = {"SPECTRAL": Src.fromModelParameter("spectral"), "EXTENT": Src.fromModelParameter("extent"),
              "AUXILIARY_KIND": Src.fromStaticValue(0), "DEVICE": Src.fromStaticValue(2)}
    train = child("bdgf:train", "train", "Train classifier", dict(
        common, TRAINING=Src.fromModelParameter("training"), PROFILE=Src.fromStaticValue(0),
        ITERATIONS=Src.fromStaticValue(2), EPOCHS=Src.fromStaticValue(1), SEED=Src.fromStaticValue(0),
        VALIDATION_FRACTION=Src.fromStaticValue(0.3)))
    classify = child("bdgf:classify", "classify", "Classify with uncertainty", dict(
        common, MODEL=Src.fromChildOutput("train", "OUTPUT_MODEL")),
        [("classification", "OUTPUT"), ("uncertainty", "OUTPUT_UNCERTAINTY")])
    cleanup = child("bdgf:cleanup", "cleanup", "Clean classification", dict(
        INPUT=Src.fromChildOutput("classify", "OUTPUT"), MMU=Src.fromStaticValue(8), MMU_UNIT=Src.fromStaticValue(0),
        MAJORITY=Src.fromStaticValue(3), CONNECTIVITY=Src.fromStaticValue(0)), [("cleaned", "OUTPUT")])
    design = child("bdgf:sampledesign", "sampledesign", "Design accuracy sample", dict(
        INPUT=Src.fromChildOutput("cleanup", "OUTPUT"), TARGET_SE=Src.fromStaticValue(0.02),
        EXPECTED_UA=Src.fromStaticValue(0.8), MIN_PER_CLASS=Src.fromStaticValue(10),
        MIN_DISTANCE=Src.fromStaticValue(30.0), SEED=Src.fromStaticValue(0)), [("sample", "OUTPUT")])
    for c in (train, classify, cleanup, design):
        model.addChildAlgorithm(c)
    model.updateDestinationParameters()
    return model


if __name__ == "__main__":  # pragma: no cover
    import sys
    import tempfile

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    root = tempfile.mkdtemp()
    os.symlink(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(MODEL_PATH)))), os.path.join(root, "bdgf"))
    sys.path.insert(0, root)
    sys.path.append("/usr/share/qgis/python/plugins")
    from bdgf.bdgf_plugin.provider import BdgfProvider

    QgsApplication.processingRegistry().addProvider(BdgfProvider())
    m = build_model()
    assert m.toFile(MODEL_PATH), MODEL_PATH
    print(MODEL_PATH, [p.name() for p in m.parameterDefinitions()])
    sys.exit(0)
