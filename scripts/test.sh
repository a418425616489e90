#!/usr/bin/env bash
# README test command: set up a fresh machine (idempotent) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .qgis-settings                      # pytest-qgis profile dir; start clean
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen            # QgsApplication aborts without a display otherwise
export XDG_RUNTIME_DIR="$(mktemp -d)"       # silences the QStandardPaths warning
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
