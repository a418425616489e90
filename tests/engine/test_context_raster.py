"""benchmarks/context_raster.py: a smoothed water index on the band's grid, higher around the water polygons of the
embedded Delmarva crop than around its forest polygons; never replaces a file."""

import sys
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
from rasterio.features import rasterize

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import context_raster  # noqa: E402


def test_context_raster_on_the_embedded_crop(delmarva_dir, delmarva_polygons, tmp_path):
    green, nir = delmarva_dir / "s2_B03.tif", delmarva_dir / "s2_B08.tif"
    assert context_raster.main(["--green", str(green), "--nir", str(nir), "--sigma", "10", "50",
                                "--output-dir", str(tmp_path)]) == 0
    with rasterio.open(green) as src:
        grid = (src.shape, src.transform, src.crs)
    with fiona.open(delmarva_polygons) as src:
        shapes = [(f["geometry"], int(f["properties"]["class_id"])) for f in src]
    for sigma in (10, 50):
        with rasterio.open(tmp_path / f"ndwi_s{sigma}.tif") as src:
            assert (src.shape, src.transform, src.crs) == grid and src.count == 1
            ctx = src.read(1)
            labels = rasterize(shapes, out_shape=src.shape, transform=src.transform, fill=0)
        assert np.isfinite(ctx).all() and ctx.min() >= -1 and ctx.max() <= 1
        water, forest = ctx[labels == 1].mean(), ctx[labels == 4].mean()   # class 1 water, 4 forest
        assert water > forest + 0.2, (sigma, water, forest)
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(SystemExit, match="exists"):
        context_raster.main(["--green", str(green), "--nir", str(nir), "--sigma", "10", "--output-dir", str(tmp_path)])
