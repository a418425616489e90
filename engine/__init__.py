"""BDGF engine: Balanced Diffusion-Guided Fusion for multimodal land-cover classification.

QGIS-free. Run it as ``python -m engine`` (see ``engine/cli.py``). This module must stay torch-free so that
the QGIS side can read model headers (``engine.header``) without importing torch.
"""

__version__ = "0.1.0"
