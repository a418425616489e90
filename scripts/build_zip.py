#!/usr/bin/env python3
"""Build the installable plugin archive dist/bdgf-<version>.zip (top folder ``bdgf/``).

Includes the plugin and the engine sources, icons, translations, sample data, docs, LICENSE, the engine's
requirements and constraints (``bdgf:setupengine`` installs from them) and the developer set-up script with
everything it reads; leaves out tests, virtual environments, caches, build outputs and VCS files. The build
fails when a file the plugin or its set-up needs is missing (:data:`REQUIRED`). Usage:

    python scripts/build_zip.py [--output DIR]
"""

from __future__ import annotations

import argparse
import configparser
import fnmatch
import os
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOP = "bdgf"
EXCLUDE_DIRS = {".git", ".venv", "venv", "tests", "dist", "build", "__pycache__", ".pytest_cache",
                ".qgis-settings", ".ci", ".github", "outputs", "demo_output", "benchmarks", ".idea", ".vscode",
                ".mypy_cache", ".ruff_cache"}
EXCLUDE_FILES = ["*.pyc", "*.pyo", "*.tmp", "*.partial", "*.log", ".gitignore", ".DS_Store", "*.orig", "*.swp",
                 "*.aux.xml", "pytest.ini"]
# What the installed plugin and its engine set-up read (bdgf:setupengine, scripts/setup.sh); a zip without
# one of them installs but cannot create its engine environment.
REQUIRED = ["metadata.txt", "__init__.py", "LICENSE", "requirements.txt", "constraints.txt", "requirements-dev.txt",
            "bdgf_plugin/plugin.py", "bdgf_plugin/provider.py", "bdgf_plugin/engine_env.py",
            "bdgf_plugin/algorithms/setupengine.py", "bdgf_plugin/algorithms/enginereport.py",
            "engine/__init__.py", "engine/__main__.py", "engine/contract.py", "scripts/setup.sh",
            "resources/icons/bdgf.svg"]


def version() -> str:
    cp = configparser.ConfigParser()
    cp.read(os.path.join(ROOT, "metadata.txt"), encoding="utf-8")
    return cp["general"]["version"]


def files(root: str = ROOT):
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDE_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if any(fnmatch.fnmatch(name, pat) for pat in EXCLUDE_FILES):
                continue
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            yield path, os.path.normpath(os.path.join(rel_dir, name))


def missing_required(names) -> list[str]:
    """The entries of REQUIRED that are not among the archive ``names`` (paths relative to the plugin folder)."""
    present = {n.replace(os.sep, "/") for n in names}
    return [r for r in REQUIRED if r not in present]


def build(output_dir: str) -> str:
    entries = list(files())
    missing = missing_required(rel for _, rel in entries)
    if missing:
        raise SystemExit(f"build_zip: required file(s) missing from the plugin folder: {', '.join(missing)}")
    os.makedirs(output_dir, exist_ok=True)
    target = os.path.join(output_dir, f"{TOP}-{version()}.zip")
    tmp = target + ".partial"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, rel in entries:
            zf.write(path, f"{TOP}/{rel}".replace(os.sep, "/"))
    os.replace(tmp, target)
    return target


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", default=os.path.join(ROOT, "dist"), help="output folder (default: dist/)")
    args = ap.parse_args(argv)
    path = build(args.output)
    with zipfile.ZipFile(path) as zf:
        n = len(zf.namelist())
    print(f"{path} ({n} files, {os.path.getsize(path) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
