"""benchmarks/map_panels.py: windows of classification maps side by side, in each map's own colour table."""

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import map_panels  # noqa: E402


def _classified(path, classes, colours):
    with rasterio.open(path, "w", driver="GTiff", width=classes.shape[1], height=classes.shape[0], count=1,
                       dtype="uint8", nodata=0, crs="EPSG:32618",
                       transform=rasterio.Affine(10, 0, 500000, 0, -10, 4000000)) as dst:
        dst.write(classes, 1)
        dst.write_colormap(1, {0: (0, 0, 0, 0), **colours})
    return str(path)


def test_panels_follow_each_maps_colour_table(tmp_path):
    classes = np.zeros((20, 30), np.uint8)
    classes[:, 10:] = 1
    classes[5:, 20:] = 2
    a = _classified(tmp_path / "a.tif", classes, {1: (255, 0, 0, 255), 2: (0, 0, 255, 255)})
    b = _classified(tmp_path / "b.tif", classes, {1: (0, 255, 0, 255), 2: (0, 0, 255, 255)})
    out = tmp_path / "panels.png"
    assert map_panels.main(["--map", a, "--map", b, "--window", "0", "10", "5", "25", "--window", "5", "20", "0", "10",
                            "--gutter", "4", "--output", str(out)]) == 0
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape == (10 + 4 + 15, 20 + 4 + 20, 3)
    assert tuple(img[0, 0]) == (255, 255, 255)            # nodata: white
    assert tuple(img[0, 5]) == (255, 0, 0)                # map a, class 1
    assert tuple(img[0, 24 + 5]) == (0, 255, 0)           # map b, class 1 in its own colour
    assert tuple(img[9, 19]) == (0, 0, 255)               # class 2 at row 9, column 24
    assert tuple(img[14, 0]) == (255, 255, 255)           # second window: nodata columns 0-9
    with pytest.raises(SystemExit, match="exists"):
        map_panels.main(["--map", a, "--window", "0", "5", "0", "5", "--output", str(out)])
