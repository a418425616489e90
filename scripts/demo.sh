#!/usr/bin/env bash
# README main command: set up a fresh machine (idempotent, same script as the tests), then run the whole
# BDGF workflow through qgis_process on the embedded real data (see scripts/demo.py --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
exec .venv/bin/python scripts/demo.py "$@"
