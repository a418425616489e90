#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: QGIS 3.22 from apt, and the engine venv (.venv)
# made from Debian's python3.11 with system site packages (see docs/development.md for why).
# Used by both README commands (scripts/demo.sh and .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
if ! command -v qgis_process.bin >/dev/null || ! /usr/bin/python3.11 -c "import qgis.core" 2>/dev/null; then
  echo "[setup] installing QGIS 3.22 from Debian (about 2 minutes)"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends qgis python3-qgis qgis-providers python3-venv >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3.11 -m venv --system-site-packages .venv   # Debian python, not pyenv's
fi
stamp=.venv/.bdgf-requirements
want="$(cat constraints.txt requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing the engine's Python packages into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt torch==2.13.0
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -r requirements.txt -r requirements-dev.txt
  echo "$want" > "$stamp"
fi
QT_QPA_PLATFORM=offscreen .venv/bin/python - <<'PY'
import qgis.core, torch, rasterio, fiona, pyproj, numpy, sklearn, safetensors
print("[setup] QGIS", qgis.core.Qgis.QGIS_VERSION, "| torch", torch.__version__,
      "(CUDA available)" if torch.cuda.is_available() else "(CPU)",
      "| rasterio", rasterio.__version__, "GDAL", rasterio.__gdal_version__,
      "| fiona", fiona.__version__, "| numpy", numpy.__version__, "| pyproj", pyproj.__version__)
PY
