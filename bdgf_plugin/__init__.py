"""QGIS side of BDGF: Processing provider, algorithms, engine runner (torch-free)."""

import os

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The plugin folder (the repository root): the engine's cwd and PYTHONPATH."""
