"""Area of applicability (engine/applicability.py): dissimilarity index and threshold (Meyer and Pebesma 2021),
checked against brute-force distances, and on the real Sentinel-2 pixels of the embedded Delmarva crop."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.features import rasterize

from engine import applicability as aoa_module
from engine.applicability import Applicability, fit_applicability, outlier_fence


def _brute_force(x: np.ndarray, groups: np.ndarray):
    """Standardised points, all-pairs mean distance and leave-one-polygon-out DI, the slow and obvious way."""
    z = (x - x.mean(0)) / x.std(0)
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    mean_distance = d[np.triu_indices(len(z), 1)].mean()
    other = groups[:, None] != groups[None, :]
    cv = np.where(other, d, np.inf).min(1) / mean_distance
    return z, mean_distance, cv


def test_outlier_fence_by_hand():
    # Q1 = 2, Q3 = 4, IQR = 2: the fence is 4 + 3 = 7, capped at the largest value
    assert outlier_fence(np.array([1, 2, 3, 4, 100.0])) == 7.0
    assert outlier_fence(np.array([1, 2, 3, 4, 6.5])) == 6.5
    assert outlier_fence(np.array([np.inf, 1.0])) == 1.0
    assert outlier_fence(np.array([np.inf])) == float("inf")


def test_dissimilarity_and_threshold_match_brute_force():
    rng = np.random.default_rng(3)
    # three "polygons" of 40 pixels each in 4 inputs, on different scales (the standardisation must undo that)
    x = np.concatenate([rng.normal(loc, 1.0, (40, 4)) for loc in (0.0, 2.0, 5.0)]) * [1, 10, 100, 1000]
    groups = np.repeat([7, 8, 9], 40)
    a = fit_applicability(x, groups)
    z, mean_distance, cv = _brute_force(x, groups)
    assert a.mean_distance == pytest.approx(mean_distance, rel=1e-5)        # 120 px < DISTANCE_SAMPLE: all pairs
    assert a.threshold == pytest.approx(outlier_fence(cv), rel=1e-5)
    assert a.training_pixels == 120 and a.points.shape == (120, 4)
    assert np.abs(a.dissimilarity(x)).max() < 1e-5                       # a training pixel: DI 0
    new = rng.normal(0, 3, (25, 4)) * [1, 10, 100, 1000] + [0, 20, 300, 4000]
    zn = (new - x.mean(0)) / x.std(0)
    expected = np.sqrt(((zn[:, None] - z[None]) ** 2).sum(-1)).min(1) / mean_distance
    np.testing.assert_allclose(a.dissimilarity(new), expected, rtol=1e-4)


def test_window_model_file_arrays_and_reference_bound(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3)).astype(np.float32)
    groups = rng.integers(0, 6, 300)
    monkeypatch.setattr(aoa_module, "MAX_REFERENCE", 100)
    a = fit_applicability(x, groups)
    assert a.points.shape == (100, 3) and a.training_pixels == 300      # a random subset is kept
    b = Applicability.from_arrays(a.arrays())
    assert b.threshold == a.threshold and b.mean_distance == a.mean_distance and b.training_pixels == 300
    np.testing.assert_array_equal(b.points, a.points)
    assert Applicability.from_arrays({"features.min": np.zeros(3)}) is None
    # a window: (C_spec, h, w) + (C_aux, h, w) inputs, NaN where not valid
    spec = rng.normal(size=(2, 4, 5)).astype(np.float32)
    aux = rng.normal(size=(1, 4, 5)).astype(np.float32)
    valid = np.ones((4, 5), bool)
    valid[0, :2] = False
    di = b.window(spec, aux, valid)
    assert np.isnan(di[0, :2]).all() and np.isfinite(di[valid]).all()
    flat = np.concatenate([spec, aux]).reshape(3, -1).T
    np.testing.assert_allclose(di[valid], b.dissimilarity(flat)[valid.ravel()], rtol=1e-6)


def _crop_pixels(delmarva_bands, delmarva_polygons):
    """(values (N, 13) reflectance, class_id (N,), polygon (N,)) of the crop's labelled pixels at 10 m."""
    import fiona

    with rasterio.open(next(b for b in delmarva_bands if b.endswith("B02.tif"))) as ref:
        shape, transform = ref.shape, ref.transform
    x = np.stack([rasterio.open(b).read(1, out_shape=shape, resampling=Resampling.nearest)
                  for b in delmarva_bands]).astype(np.float32)
    with fiona.open(delmarva_polygons) as src:
        feats = list(src)
    cls = rasterize([(f.geometry, f.properties["class_id"]) for f in feats], out_shape=shape, transform=transform)
    pid = rasterize([(f.geometry, i + 1) for i, f in enumerate(feats)], out_shape=shape, transform=transform)
    m = cls > 0
    return x[:, m].T, cls[m], pid[m]


@pytest.mark.parametrize("left_out", [3, 7])      # Beach / sand, Built-up
def test_a_land_cover_without_polygons_is_outside(delmarva_bands, delmarva_polygons, left_out):
    """Real Sentinel-2 pixels: trained without any polygon of a land cover, nearly all of its pixels are outside
    the area of applicability, while every training pixel is inside (DI 0)."""
    x, cls, pid = _crop_pixels(delmarva_bands, delmarva_polygons)
    keep = cls != left_out
    a = fit_applicability(x[keep], pid[keep])
    assert 0 < a.threshold < 1
    assert (a.dissimilarity(x[keep]) <= a.threshold).all()
    outside = a.dissimilarity(x[~keep]) > a.threshold
    assert outside.mean() > 0.95, (left_out, outside.mean())


def test_class_summary_areas_and_advice_for_a_class_mostly_outside():
    """The classify log's class summary on the full Delmarva scene's figures (docs/benchmarks.md, area of
    applicability table): areas in hectares of a 10 m UTM grid, per-class shares outside, and a warning that names
    built-up (69 % outside) and no other class; no areas in a geographic CRS."""
    from affine import Affine

    from engine.api import _class_summary
    from engine.data.grid import ReferenceGrid
    from engine.io.schema import Category
    from engine.progress import Reporter

    names = ["Water", "Salt marsh", "Beach / sand", "Forest", "Cropland / grassland", "Bare / tilled field",
             "Built-up"]
    classes = [Category(value=i + 1, name=n, color="#000000") for i, n in enumerate(names)]
    counts = [1_864_626, 375_831, 30_071, 775_799, 336_621, 325_896, 41_158]
    outside = [22_376, 36_080, 5_503, 95_423, 84_155, 90_273, 28_481]
    summary = {"pixels": sum(counts), "class_counts": dict(enumerate(counts, 1)),
               "outside_applicability": sum(outside), "outside_by_class": dict(enumerate(outside, 1))}
    utm = ReferenceGrid(rasterio.crs.CRS.from_epsg(32618), Affine(10, 0, 400_000, 0, -10, 4_200_000), 2000, 1875)
    rep = Reporter(quiet=True)
    out = _class_summary(classes, summary, utm, 0.154, rep)
    assert out["pixel_area_m2"] == pytest.approx(100.0)
    assert out["outside_by_class"][7] == 28_481 and out["outside_applicability"] == sum(outside)
    info = [m for level, m in rep.messages if level == "info"]
    assert "Water 1,864,626 px = 18,646.3 ha (49.7 %)" in info[0]
    assert info[-1].index("Built-up 69.2 %") < info[-1].index("Bare / tilled field 27.7 %")   # worst first
    warnings = [m for level, m in rep.messages if level == "warning"]
    assert len(warnings) == 1 and "Built-up (69 %)" in warnings[0] and "Forest" not in warnings[0]
    geographic = ReferenceGrid(rasterio.crs.CRS.from_epsg(4326), Affine(1e-4, 0, -75, 0, -1e-4, 38), 10, 10)
    rep = Reporter(quiet=True)
    assert _class_summary(classes, summary, geographic, None, rep) == {"pixel_area_m2": None}
    assert " ha" not in rep.messages[0][1] and len(rep.messages) == 1
