"""QGIS 4 / Qt6 readiness: the plugin's Python uses ``qgis.PyQt`` imports only and no Qt5-only API
(``exec_``, ``QRegExp``, unscoped Qt enums, ...); metadata.txt declares Qt6 support and QGIS 4.

The scanner is checked against known-bad snippets first, so a rule that stops matching fails the test."""

from __future__ import annotations

import configparser
import glob
import os
import re

from .conftest import REPO

RULES = [
    (re.compile(r"^\s*(from|import)\s+(PyQt5|PyQt6|PySide2|PySide6|sip)\b", re.M),
     "import Qt through qgis.PyQt (it maps to PyQt5 or PyQt6)"),
    (re.compile(r"\.exec_\s*\("), "exec_() is gone in PyQt6: use exec()"),
    (re.compile(r"\bQRegExp\b"), "QRegExp is gone in Qt6: use QRegularExpression"),
    (re.compile(r"\b(QDesktopWidget|QStringList|QMatrix|QGLWidget)\b"), "removed in Qt6"),
    (re.compile(r"\bQtCore\.QString\b"), "QString does not exist in PyQt"),
    (re.compile(r"\bQt\.[A-Z]\w*\b(?!\s*\.)"), "unscoped Qt enum: PyQt6 needs Qt.<EnumName>.<Value>"),
    (re.compile(r"\b(QMessageBox|QSizePolicy|QDialogButtonBox|QAbstractItemView|QHeaderView|QFrame|QPalette|"
                r"QFont|QIODevice|QEvent|QKeySequence|QLineEdit|QComboBox|QItemSelectionModel|QProcess|"
                r"QSettings|QVariant)\.[A-Z]\w*\b(?!\s*[.(])"),
     "unscoped Qt class enum: PyQt6 needs <Class>.<EnumName>.<Value> (QVariant types: QMetaType)"),
    (re.compile(r"QtWidgets\s+import\s+[^\n]*\bQAction\b"), "QAction lives in QtGui in Qt6"),
]


def violations(text: str) -> list[tuple[int, str, str]]:
    """[(line number, offending text, why)] for one file's text (comments and strings included: cheap and strict)."""
    found = []
    for pattern, why in RULES:
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((line, match.group(0).strip(), why))
    return found


def plugin_sources() -> list[str]:
    files = [os.path.join(REPO, "__init__.py")]
    files += glob.glob(os.path.join(REPO, "bdgf_plugin", "**", "*.py"), recursive=True)
    return sorted(files)


def test_scanner_catches_qt5_only_code():
    bad = {
        "from PyQt5.QtCore import QTimer": "qgis.PyQt",
        "import sip": "qgis.PyQt",
        "dialog.exec_()": "exec_",
        "rx = QRegExp('a+')": "QRegExp",
        "label.setAlignment(Qt.AlignLeft)": "unscoped Qt enum",
        "if box.exec() == QMessageBox.Yes:": "unscoped Qt class enum",
        "field = QgsField('n', QVariant.Int)": "unscoped Qt class enum",
        "from qgis.PyQt.QtWidgets import QAction, QMenu": "QAction",
    }
    for snippet, expected in bad.items():
        found = violations(snippet)
        assert found and expected in found[0][2] + found[0][1], snippet
    good = ("from qgis.PyQt.QtCore import QCoreApplication, Qt\n"
            "label.setAlignment(Qt.AlignmentFlag.AlignLeft)\n"
            "if box.exec() == QMessageBox.StandardButton.Yes:\n"
            "QCoreApplication.translate('Ctx', 'text')\n"
            "QgsProcessingParameterNumber.Integer\n")
    assert violations(good) == []


def test_plugin_sources_are_qt6_ready():
    sources = plugin_sources()
    assert len(sources) > 10 and any(s.endswith("setupengine.py") for s in sources)
    problems = []
    for path in sources:
        with open(path, encoding="utf-8") as fh:
            for line, text, why in violations(fh.read()):
                problems.append(f"{os.path.relpath(path, REPO)}:{line}: {text}  ({why})")
    assert not problems, "\n".join(problems)


def test_metadata_declares_qgis4_and_qt6():
    cp = configparser.ConfigParser()
    cp.read(os.path.join(REPO, "metadata.txt"), encoding="utf-8")
    general = cp["general"]
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["qgisMaximumVersion"] == "4.99"
    assert general["supportsQt6"] == "True"
    assert "setupengine" in general["about"] or "Set up engine environment" in general["about"]
