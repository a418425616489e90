#!/usr/bin/env python3
"""Build the installable plugin archive dist/bdgf-<version>.zip (top folder ``bdgf/``).

Includes the plugin and the engine sources, icons, translations, sample data, docs, LICENSE and the set-up
script; leaves out tests, virtual environments, caches, build outputs and VCS files. Usage:

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
                 "*.aux.xml", "requirements-dev.txt", "pytest.ini"]


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


def build(output_dir: str) -> str:
    os.makedirs(output_dir, exist_ok=True)
    target = os.path.join(output_dir, f"{TOP}-{version()}.zip")
    tmp = target + ".partial"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, rel in files():
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
