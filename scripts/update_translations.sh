#!/usr/bin/env bash
# Regenerate the translation source i18n/bdgf_en.ts from the plugin code (pylupdate5 does not expand
# wildcards, so the sources are listed here), then compile every i18n/bdgf_<lang>.ts to .qm with lrelease.
# Needs pyqt5-dev-tools (pylupdate5) and qttools5-dev-tools (lrelease): apt-get install -y pyqt5-dev-tools
# Add a language: cp i18n/bdgf_en.ts i18n/bdgf_de.ts, translate it in Qt Linguist, run this script again.
# The plugin loads i18n/bdgf_<locale>.qm (e.g. bdgf_de.qm) for QGIS's user locale.
set -euo pipefail
cd "$(dirname "$0")/.."
sources=(__init__.py bdgf_plugin/*.py bdgf_plugin/algorithms/*.py)
pylupdate5 -noobsolete "${sources[@]}" -ts i18n/bdgf_en.ts
for ts in i18n/bdgf_*.ts; do
  lrelease -silent "$ts" -qm "${ts%.ts}.qm" 2>/dev/null || lrelease "$ts" -qm "${ts%.ts}.qm"
done
echo "[i18n] $(grep -c '<message>' i18n/bdgf_en.ts) messages in $(grep -c '<name>' i18n/bdgf_en.ts) contexts"
