"""Translations: the .ts source covers every tr() context, and a compiled .qm translates the algorithms."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .conftest import REPO

TS = os.path.join(REPO, "i18n", "bdgf_en.ts")


def test_ts_source_has_all_contexts():
    text = open(TS, encoding="utf-8").read()
    for ctx in ("PretrainAlgorithm", "TrainAlgorithm", "ClassifyAlgorithm", "AssessAlgorithm", "BdgfAlgorithm",
                "BdgfProvider", "BdgfRunner", "BdgfLayers"):
        assert f"<name>{ctx}</name>" in text, ctx
    assert "<source>Train classifier</source>" in text
    assert os.access(os.path.join(REPO, "scripts", "update_translations.sh"), os.X_OK)


@pytest.mark.skipif(shutil.which("lrelease") is None, reason="lrelease (qttools5-dev-tools) not installed")
def test_qm_translates_algorithm_names(provider, tmp_path):
    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QCoreApplication, QTranslator

    ts = tmp_path / "bdgf_de.ts"
    ts.write_text("""<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS><TS version="2.0" language="de">
<context><name>TrainAlgorithm</name>
<message><source>Train classifier</source><translation>Klassifikator trainieren</translation></message>
</context></TS>""", encoding="utf-8")
    qm = tmp_path / "bdgf_de.qm"
    subprocess.run(["lrelease", str(ts), "-qm", str(qm)], check=True, capture_output=True)
    translator = QTranslator()
    assert translator.load(str(qm))
    QCoreApplication.installTranslator(translator)
    try:
        alg = QgsApplication.processingRegistry().createAlgorithmById("bdgf:train")
        assert alg.displayName() == "Klassifikator trainieren"
        assert QgsApplication.processingRegistry().createAlgorithmById("bdgf:classify").displayName() == "Classify"
    finally:
        QCoreApplication.removeTranslator(translator)
