"""Shared fixtures for engine tests: paths of the embedded real sample data (resources/sample_data).

Stable names used by every engine test module:
  delmarva_dir       Path of resources/sample_data/delmarva_s2
  delmarva_bands     13 single-band Sentinel-2 GeoTIFFs in file order B01..B12, B8A (10/20/60 m, EPSG:32618)
  delmarva_polygons  training_polygons.gpkg (layer "training", fields class_id int, class_name text)
  ben_dir            Path of resources/sample_data/bigearthnet_mm
  ben_pair_87_48     dict: "s1" [VV, VH] (dB, 10 m), "s2" 12 bands B01..B12, B8A (10/20/60 m),
                     "polygons" training_polygons_87_48.gpkg  (EPSG:32633, 120 x 120 px at 10 m)
  ben_pair_69_24     same for patch 69_24 (EPSG:32635)
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "sample_data"


def _ben_pair(patch: str) -> dict:
    ben = SAMPLE / "bigearthnet_mm"
    s1_dir = next((ben / "BigEarthNet-S1-Example").glob(f"*_{patch}"))
    s2_dir = next((ben / "BigEarthNet-S2-Example").glob(f"*_{patch}"))
    s1 = [str(next(s1_dir.glob(f"*_{pol}.tif"))) for pol in ("VV", "VH")]
    s2 = [str(p) for p in sorted(s2_dir.glob("*_B*.tif"))]
    return {"s1": s1, "s2": s2, "polygons": str(ben / f"training_polygons_{patch}.gpkg"),
            "s1_dir": str(s1_dir), "s2_dir": str(s2_dir)}


@pytest.fixture(scope="session")
def delmarva_dir() -> Path:
    return SAMPLE / "delmarva_s2"


@pytest.fixture(scope="session")
def delmarva_bands(delmarva_dir) -> list:
    bands = [str(p) for p in sorted(delmarva_dir.glob("s2_B*.tif"))]
    assert len(bands) == 13
    return bands


@pytest.fixture(scope="session")
def delmarva_polygons(delmarva_dir) -> str:
    return str(delmarva_dir / "training_polygons.gpkg")


@pytest.fixture(scope="session")
def ben_dir() -> Path:
    return SAMPLE / "bigearthnet_mm"


@pytest.fixture(scope="session")
def ben_pair_87_48() -> dict:
    return _ben_pair("87_48")


@pytest.fixture(scope="session")
def ben_pair_69_24() -> dict:
    return _ben_pair("69_24")


# -- small synthetic inputs made on the fly (tmp_path) -----------------------------------------------------------

def write_raster(path, array, crs="EPSG:32618", transform=None, nodata=None, descriptions=None):
    """Write a (bands, rows, cols) or (rows, cols) array as a GeoTIFF; default 10 m grid at (500000, 4000000)."""
    import numpy as np
    import rasterio
    from affine import Affine

    a = np.asarray(array)
    if a.ndim == 2:
        a = a[None]
    transform = transform or Affine(10.0, 0, 500000.0, 0, -10.0, 4000000.0)
    profile = dict(driver="GTiff", width=a.shape[2], height=a.shape[1], count=a.shape[0], dtype=a.dtype.name,
                   transform=transform, nodata=nodata)
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(a)
        for i, d in enumerate(descriptions or []):
            ds.set_band_description(i + 1, d)
    return str(path)


def write_vector(path, features, crs="EPSG:32618", driver=None, geometry="Polygon", properties=None, layer=None):
    """Write features [(geometry dict, {props})] with fiona; driver from the extension (GPKG/GeoJSON/Shapefile)."""
    import fiona

    path = str(path)
    driver = driver or {"gpkg": "GPKG", "geojson": "GeoJSON", "json": "GeoJSON", "shp": "ESRI Shapefile"}[
        path.rsplit(".", 1)[1].lower()]
    if properties is None:
        properties = {k: ("int" if isinstance(v, int) else "str") for k, v in features[0][1].items()}
    schema = {"geometry": geometry, "properties": properties}
    kw = {"layer": layer} if layer else {}
    with fiona.open(path, "w", driver=driver, crs=crs, schema=schema, **kw) as dst:
        for geom, props in features:
            dst.write({"geometry": geom, "properties": props})
    return path


def embedded_result(html: str) -> dict:
    """The result dict an HTML report embeds (``io.reports.render``: ``<script id='bdgf-result'>``)."""
    import json

    text = html.split("id='bdgf-result'>", 1)[1].split("</script>", 1)[0]
    return json.loads(text.replace("<\\/", "</"))


def box(x0, y0, x1, y1):
    """GeoJSON polygon of a rectangle."""
    return {"type": "Polygon", "coordinates": [[(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]}


@pytest.fixture
def make_raster():
    return write_raster


@pytest.fixture
def make_vector():
    return write_vector
