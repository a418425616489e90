"""Where the benchmarks read the full scenes: the folder named by ``BDGF_BENCH_DATA``.

Tests and the demo use the crops embedded in ``resources/sample_data``; the benchmarks need the full scenes,
which are too large for the repository. Point ``BDGF_BENCH_DATA`` at a folder laid out as::

    s2_delmarva/s2_B01.tif ... s2_B12.tif, s2_B8A.tif, training_polygons.gpkg
    bigearthnet_mm/BigEarthNet-S1-Example/, BigEarthNet-S2-Example/, training_polygons_87_48.gpkg, ..._69_24.gpkg

(benchmarks/README.md, "Data", says where each comes from). Without the variable the scripts look in
``shared/data`` beside the repository's folder, where this project's machines keep them.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "BDGF_BENCH_DATA"


def data_root() -> Path:
    """The benchmark data folder: ``$BDGF_BENCH_DATA``, else ``<parent of the repository>/shared/data``."""
    value = os.environ.get(ENV)
    if value:
        return Path(value)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def delmarva_scene() -> Path:
    """Folder of the full 1933 x 1947 px Delmarva Sentinel-2 scene (13 bands, 55 training polygons)."""
    return data_root() / "s2_delmarva"
