"""Builds the graphical-modeler models kept in tests/plugin/data with QgsProcessingModelAlgorithm (run once; the
files are kept in the repository and loaded by the tests, like models saved from the graphical modeler):

- ``pretrain_train_classify.model3`` (test_model.py): pretrain -> train -> classify;
- ``analyst_loop.model3`` (test_analyst_loop.py): train -> classify (with uncertainty) -> cleanup -> sampledesign.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.plugin.model_builder
"""

from __future__ import annotations

import os

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
MODEL_PATH = os.path.join(DATA, "pretrain_train_classify.model3")
ANALYST_MODEL_PATH = os.path.join(DATA, "analyst_loop.model3")


def _new_model(title: str, model_id: str):
    """A model with the inputs every BDGF chain takes: spectral rasters, training polygons, an optional extent."""
    from qgis.core import (
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelParameter,
        QgsProcessingParameterExtent,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterMultipleLayers,
    )

    model = QgsProcessingModelAlgorithm(title, "BDGF", model_id)
    for definition in (
        QgsProcessingParameterMultipleLayers("spectral", "Spectral rasters", QgsProcessing.TypeRaster),
        QgsProcessingParameterFeatureSource("training", "Training polygons", [QgsProcessing.TypeVectorPolygon]),
        QgsProcessingParameterExtent("extent", "Extent", optional=True),
    ):
        model.addModelParameter(definition, QgsProcessingModelParameter(definition.name()))
    return model


def _child(alg_id: str, child_id: str, description: str, sources: dict, outputs=()):
    """A child algorithm with one source per parameter and ``outputs`` = [(model output name, child output)]."""
    from qgis.core import QgsProcessingModelChildAlgorithm, QgsProcessingModelOutput

    c = QgsProcessingModelChildAlgorithm(alg_id)
    c.setChildId(child_id)
    c.setDescription(description)
    for key, src in sources.items():
        c.addParameterSources(key, [src])
    declared = {}
    for name, child_output in outputs:
        out = QgsProcessingModelOutput(name, name.capitalize())
        out.setChildId(child_id)
        out.setChildOutputName(child_output)
        declared[name] = out
    c.setModelOutputs(declared)
    return c


def _common():
    from qgis.core import QgsProcessingModelChildParameterSource as Src

    return {"SPECTRAL": Src.fromModelParameter("spectral"), "EXTENT": Src.fromModelParameter("extent"),
            "AUXILIARY_KIND": Src.fromStaticValue(0), "DEVICE": Src.fromStaticValue(2)}


def _finish(model, children):
    for c in children:
        model.addChildAlgorithm(c)
    model.updateDestinationParameters()
    return model


def build_model():
    """pretrain -> train -> classify, the minimal chain."""
    from qgis.core import QgsProcessingModelChildParameterSource as Src

    model = _new_model("BDGF pretrain, train and classify", "bdgf_chain")
    common = _common()
    pretrain = _child("bdgf:pretrain", "pretrain", "Pretrain diffusion model", dict(
        common, PROFILE=Src.fromStaticValue(0), ITERATIONS=Src.fromStaticValue(2), SEED=Src.fromStaticValue(0)))
    train = _child("bdgf:train", "train", "Train classifier", dict(
        common, TRAINING=Src.fromModelParameter("training"), PRETRAINED=Src.fromChildOutput("pretrain", "OUTPUT_MODEL"),
        PROFILE=Src.fromStaticValue(0), EPOCHS=Src.fromStaticValue(1), SEED=Src.fromStaticValue(0),
        VALIDATION_FRACTION=Src.fromStaticValue(0.3)))
    classify = _child("bdgf:classify", "classify", "Classify", dict(
        common, MODEL=Src.fromChildOutput("train", "OUTPUT_MODEL")), [("classification", "OUTPUT")])
    return _finish(model, (pretrain, train, classify))


def build_analyst_model():
    """train -> classify (with uncertainty) -> cleanup -> sampledesign: the analyst's loop."""
    from qgis.core import QgsProcessingModelChildParameterSource as Src

    model = _new_model("BDGF analyst loop: train, classify with uncertainty, clean, sample design",
                       "bdgf_analyst_loop")
    common = _common()
    train = _child("bdgf:train", "train", "Train classifier", dict(
        common, TRAINING=Src.fromModelParameter("training"), PROFILE=Src.fromStaticValue(0),
        ITERATIONS=Src.fromStaticValue(2), EPOCHS=Src.fromStaticValue(1), SEED=Src.fromStaticValue(0),
        VALIDATION_FRACTION=Src.fromStaticValue(0.3)))
    classify = _child("bdgf:classify", "classify", "Classify with uncertainty", dict(
        common, MODEL=Src.fromChildOutput("train", "OUTPUT_MODEL")),
        [("classification", "OUTPUT"), ("uncertainty", "OUTPUT_UNCERTAINTY")])
    cleanup = _child("bdgf:cleanup", "cleanup", "Clean classification", dict(
        INPUT=Src.fromChildOutput("classify", "OUTPUT"), MMU=Src.fromStaticValue(8), MMU_UNIT=Src.fromStaticValue(0),
        MAJORITY=Src.fromStaticValue(3), CONNECTIVITY=Src.fromStaticValue(0)), [("cleaned", "OUTPUT")])
    design = _child("bdgf:sampledesign", "sampledesign", "Design accuracy sample", dict(
        INPUT=Src.fromChildOutput("cleanup", "OUTPUT"), TARGET_SE=Src.fromStaticValue(0.02),
        EXPECTED_UA=Src.fromStaticValue(0.8), MIN_PER_CLASS=Src.fromStaticValue(10),
        MIN_DISTANCE=Src.fromStaticValue(30.0), SEED=Src.fromStaticValue(0)), [("sample", "OUTPUT")])
    return _finish(model, (train, classify, cleanup, design))


if __name__ == "__main__":  # pragma: no cover
    import sys
    import tempfile

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    root = tempfile.mkdtemp()
    os.symlink(os.path.dirname(os.path.dirname(os.path.dirname(DATA))), os.path.join(root, "bdgf"))
    sys.path.insert(0, root)
    sys.path.append("/usr/share/qgis/python/plugins")
    from bdgf.bdgf_plugin.provider import BdgfProvider

    provider = BdgfProvider()      # kept referenced: the registry does not own a Python provider
    QgsApplication.processingRegistry().addProvider(provider)
    for path, build in ((MODEL_PATH, build_model), (ANALYST_MODEL_PATH, build_analyst_model)):
        m = build()
        assert m.toFile(path), path
        print(path, [p.name() for p in m.parameterDefinitions()])
    sys.exit(0)
