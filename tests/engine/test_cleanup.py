"""Map clean-up: the minimum mapping unit is respected, colour table, class names and QML are kept."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from scipy.ndimage import label

from engine.cleanup import cleanup_raster, majority_filter, min_pixels_for_area, sieve
from engine.errors import EngineError, OutputExistsError
from engine.io.rasters import ClassificationWriter, read_class_entries

CLASSES = [{"value": 1, "name": "Water", "color": "#1f78b4"}, {"value": 2, "name": "Marsh", "color": "#33a02c"},
           {"value": 5, "name": "Beach", "color": "#ffff99"}]


def _noisy_map(seed=0):
    """Three large blocks with salt-and-pepper pixels, small 2 x 2 patches and a nodata strip (10 m pixels)."""
    rng = np.random.default_rng(seed)
    m = np.ones((100, 120), np.uint8)
    m[:, 40:80] = 2
    m[:, 80:] = 5
    noise = rng.random(m.shape) < 0.05
    m[noise] = rng.choice([1, 2, 5], int(noise.sum()))
    for r, c in ((20, 10), (60, 50), (30, 95)):
        m[r:r + 2, c:c + 2] = 5 if m[r, c] != 5 else 1
    m[90:, :] = 0
    return m


@pytest.fixture
def class_raster(tmp_path):
    m = _noisy_map()
    path = str(tmp_path / "classes.tif")
    with ClassificationWriter(path, "EPSG:32618", from_origin(440000, 4170000, 10, 10), 120, 100, CLASSES) as w:
        w.write(0, 0, m)
    return path, m


def _patch_sizes(m, connectivity=4):
    structure = np.ones((3, 3), int) if connectivity == 8 else None
    sizes = []
    for v in np.unique(m):
        if v == 0:
            continue
        lab, n = label(m == v, structure=structure)
        sizes += np.bincount(lab.ravel())[1:].tolist()
    return np.array(sizes)


def test_sieve_respects_minimum_mapping_unit_and_keeps_styling(class_raster, tmp_path):
    path, before = class_raster
    assert _patch_sizes(before).min() < 10
    out = str(tmp_path / "clean.tif")
    res = cleanup_raster(path, out, min_pixels=10)
    with rasterio.open(out) as dst, rasterio.open(path) as src:
        after = dst.read(1)
        assert dst.colormap(1) == src.colormap(1)                   # colour table kept
        assert dst.tags()["BDGF_CLASSES"] == src.tags()["BDGF_CLASSES"]
        assert dst.nodata == src.nodata and dst.dtypes == src.dtypes and dst.transform == src.transform
    assert _patch_sizes(after).min() >= 10                           # MMU respected
    assert (after[90:] == 0).all() and (after[:90] > 0).all()         # nodata stays nodata, nothing becomes nodata
    assert read_class_entries(out) == read_class_entries(path)        # names (tag, PAM category names)
    with open(out + ".aux.xml") as fh:
        assert "<Category>Beach</Category>" in fh.read()             # GDAL category names for QGIS
    with open(tmp_path / "clean.qml") as fh, open(tmp_path / "classes.qml") as gh:
        assert fh.read() == gh.read()                                  # QML style kept
    assert res["patches_removed"] > 0 and res["changed_pixels"] > 0
    # the big blocks' interiors are untouched
    assert (after[:90, 40:80] == 2).mean() > 0.99
    with pytest.raises(OutputExistsError):
        cleanup_raster(path, out, min_pixels=10)


def test_mmu_in_hectares_and_eight_connectivity(class_raster, tmp_path):
    path, _ = class_raster
    assert min_pixels_for_area(0.1, 100.0) == 10                     # 0.1 ha of 10 m pixels
    out = str(tmp_path / "clean_ha.tif")
    res = cleanup_raster(path, out, min_area_ha=0.1, connectivity=8)
    assert res["min_pixels"] == 10
    with rasterio.open(out) as dst:
        assert _patch_sizes(dst.read(1), 8).min() >= 10


def test_majority_filter_removes_isolated_pixels_and_keeps_ties():
    m = np.full((9, 9), 1, np.uint8)
    m[4, 4] = 2                                   # isolated pixel
    m[:, 7:] = 3                                  # a two-column band along the edge
    m[0, 0] = 0                                   # nodata
    out = majority_filter(m, 3)
    assert out[4, 4] == 1
    assert out[0, 0] == 0                         # nodata stays
    assert (out[:, 7:] == 3).all()                # a patch as wide as the half window survives
    tie = np.array([[1, 2], [2, 1]], np.uint8)
    assert (majority_filter(tie, 3) == tie).all()  # every pixel ties: keeps its class
    with pytest.raises(EngineError):
        majority_filter(m, 4)


def test_majority_then_sieve(class_raster, tmp_path):
    path, before = class_raster
    out = str(tmp_path / "both.tif")
    res = cleanup_raster(path, out, min_pixels=6, majority=3)
    with rasterio.open(out) as dst:
        after = dst.read(1)
    assert _patch_sizes(after).min() >= 6
    assert res["changed_fraction"] > 0.03                             # most of the 5 % noise is gone
    # sieve directly on arrays (GDAL) agrees with the file path
    direct = sieve(majority_filter(before, 3), 6)
    assert (direct == after).all()
    with pytest.raises(EngineError):
        cleanup_raster(path, str(tmp_path / "none.tif"))              # nothing to do
