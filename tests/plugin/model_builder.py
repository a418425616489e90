"""Builds tests/plugin/data/pretrain_train_classify.model3 with QgsProcessingModelAlgorithm (run once; the
file is kept in the repository and loaded by test_model.py, like a model saved from the graphical modeler).

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.plugin.model_builder
"""

from __future__ import annotations

import os

MODEL_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "pretrain_train_classify.model3")


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

    model = QgsProcessingModelAlgorithm("BDGF pretrain, train and classify", "BDGF", "bdgf_chain")
    for definition in (
        QgsProcessingParameterMultipleLayers("spectral", "Spectral rasters", QgsProcessing.TypeRaster),
        QgsProcessingParameterFeatureSource("training", "Training polygons", [QgsProcessing.TypeVectorPolygon]),
        QgsProcessingParameterExtent("extent", "Extent", optional=True),
    ):
        model.addModelParameter(definition, QgsProcessingModelParameter(definition.name()))

    def child(alg_id, child_id, description, sources):
        c = QgsProcessingModelChildAlgorithm(alg_id)
        c.setChildId(child_id)
        c.setDescription(description)
        for key, src in sources.items():
            c.addParameterSources(key, [src])
        return c

    common = {"SPECTRAL": Src.fromModelParameter("spectral"), "EXTENT": Src.fromModelParameter("extent"),
              "AUXILIARY_KIND": Src.fromStaticValue(0), "DEVICE": Src.fromStaticValue(2)}
    pretrain = child("bdgf:pretrain", "pretrain", "Pretrain diffusion model", dict(
        common, PROFILE=Src.fromStaticValue(0), ITERATIONS=Src.fromStaticValue(2), SEED=Src.fromStaticValue(0)))
    train = child("bdgf:train", "train", "Train classifier", dict(
        common, TRAINING=Src.fromModelParameter("training"), PRETRAINED=Src.fromChildOutput("pretrain", "OUTPUT_MODEL"),
        PROFILE=Src.fromStaticValue(0), EPOCHS=Src.fromStaticValue(1), SEED=Src.fromStaticValue(0),
        VALIDATION_FRACTION=Src.fromStaticValue(0.3)))
    classify = child("bdgf:classify", "classify", "Classify", dict(
        common, MODEL=Src.fromChildOutput("train", "OUTPUT_MODEL")))
    out = QgsProcessingModelOutput("classification", "Classification")
    out.setChildId("classify")
    out.setChildOutputName("OUTPUT")
    classify.setModelOutputs({"classification": out})
    for c in (pretrain, train, classify):
        model.addChildAlgorithm(c)
    model.updateDestinationParameters()
    return model


if __name__ == "__main__":  # pragma: no cover
    import sys

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    import tempfile

    app = QgsApplication([], False)
    app.initQgis()
    root = tempfile.mkdtemp()
    os.symlink(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(MODEL_PATH)))), os.path.join(root, "bdgf"))
    sys.path.insert(0, root)
    sys.path.append("/usr/share/qgis/python/plugins")
    from bdgf.bdgf_plugin.provider import BdgfProvider

    provider = BdgfProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    m = build_model()
    assert m.toFile(MODEL_PATH), MODEL_PATH
    print(MODEL_PATH, [p.name() for p in m.parameterDefinitions()])
    sys.exit(0)
