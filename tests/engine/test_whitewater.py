"""Whitewater drawn over the water polygons (engine.data.whitewater): the foam's spectrum, which classes are
water, where the foam lies and what a read through it returns (real Delmarva crop bands and polygons)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data.grid import Modality, RasterStack
from engine.data.labels import read_polygons, spectra_at, valid_at
from engine.data.whitewater import (AMPLITUDE, WhitewaterStack, plan_whitewater, reflectance_scale, water_classes,
                                    whitewater_shapes)
from engine.io.schema import SENTINEL2_WAVELENGTH_NM

BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A"]


@pytest.fixture(scope="module")
def crop(delmarva_bands, delmarva_polygons):
    """(stack bands, labelled pixels, per-class median raw spectra) of the embedded crop."""
    with RasterStack([Modality(delmarva_bands, "spectral")]) as stack:
        px = read_polygons(delmarva_polygons, "class_id", stack.grid)
        ok, values = spectra_at(stack, px.rows, px.cols)
    y = px.class_index()
    medians = np.stack([np.median(values[ok & (y == k)], axis=0) for k in range(len(px.classes))])
    return px, medians, ok


def test_foam_is_bright_in_the_visible_and_dark_in_the_short_wave_infrared():
    wl = [SENTINEL2_WAVELENGTH_NM[b] for b in BANDS]
    shapes = whitewater_shapes(wl, np.random.default_rng(0), n=200)
    vis = shapes[:, [BANDS.index(b) for b in ("B02", "B03", "B04")]]
    b11, b12, b10 = (shapes[:, BANDS.index(b)] for b in ("B11", "B12", "B10"))
    assert np.all((vis > 0.8) & (vis < 1.2))
    assert np.all(b11 < 0.6 * vis.min(axis=1)) and np.all(b12 < b11) and np.all(b12 > 0)
    assert np.all(b10 == 0)                                    # cirrus band: no surface signal, no foam
    assert 0.1 < np.ptp(b11) and np.ptp(shapes[:, BANDS.index("B08")]) > 0.3     # the shapes vary


def test_the_crop_has_one_water_class_and_it_is_water(crop, delmarva_bands):
    px, medians, ok = crop
    assert ok.all()
    wl = [SENTINEL2_WAVELENGTH_NM[b] for b in BANDS]
    assert [px.classes[k].name for k in water_classes(medians, wl, 1e4)] == ["Water"]
    assert reflectance_scale(medians) == 10_000.0 and reflectance_scale(medians / 10_000.0) == 1.0
    assert water_classes(medians / 1e4, wl, 1.0) == water_classes(medians, wl, 1e4)
    assert water_classes(medians, [400.0 + 10 * i for i in range(13)], 1e4) == []   # no near-infrared band: none


def test_a_dark_humic_lake_is_water_too(ben_pair_69_24):
    """BigEarthNet 69_24's lake is darker in the green than in the NIR (NDWI < 0) but dark in NIR and SWIR."""
    with RasterStack([Modality(ben_pair_69_24["s2"], "spectral")]) as stack:
        px = read_polygons(ben_pair_69_24["polygons"], "class_id", stack.grid)
        wl = [SENTINEL2_WAVELENGTH_NM[b] for b in ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09",
                                                  "B11", "B12", "B8A")]
        ok, values = spectra_at(stack, px.rows, px.cols)
    y = px.class_index()
    medians = np.stack([np.median(values[ok & (y == k)], axis=0) for k in range(len(px.classes))])
    w = [c.name for c in px.classes].index("Water")
    assert medians[w, 2] < medians[w, 7]                       # green below NIR: NDWI < 0
    assert [px.classes[k].name for k in water_classes(medians, wl, 1e4)] == ["Water"]


def test_foam_stripes_lie_inside_the_water_polygons_and_reads_carry_them(crop, delmarva_bands):
    px, medians, _ = crop
    wl = [SENTINEL2_WAVELENGTH_NM[b] for b in BANDS]
    y = px.class_index()
    water = water_classes(medians, wl, 1e4)
    foam = plan_whitewater(px.rows, px.cols, y, px.polygon_ids, water, wl, 10_000.0, 0.5, seed=0)
    n_water = int(np.isin(y, water).sum())
    shares = [len(plan_whitewater(px.rows, px.cols, y, px.polygon_ids, water, wl, 1e4, 0.5, seed=s)) / n_water
              for s in range(20)]
    assert 0.4 < np.mean(shares) < 0.6 and min(shares) > 0.2                # half of each stripe period
    assert np.all(np.isin(foam.class_index, water))
    labelled = set(zip(px.rows[np.isin(y, water)].tolist(), px.cols[np.isin(y, water)].tolist()))
    assert set(zip(foam.rows.tolist(), foam.cols.tolist())) <= labelled
    assert np.all((foam.amplitude >= AMPLITUDE[0] * 1e4) & (foam.amplitude <= AMPLITUDE[1] * 1e4))
    r0, c0 = int(foam.rows.min()) - 3, int(foam.cols.min()) - 3
    h, w = int(foam.rows.max()) - r0 + 4, int(foam.cols.max()) - c0 + 4
    with RasterStack([Modality(delmarva_bands, "spectral")]) as stack:
        clean = stack.read(r0, c0, h, w)
        foamed = WhitewaterStack(stack, foam).read(r0, c0, h, w)
        assert WhitewaterStack(stack, foam).grid is stack.grid
        assert valid_at(WhitewaterStack(stack, foam), foam.rows, foam.cols).all()
    diff = foamed.arrays[0] - clean.arrays[0]
    on = np.zeros((h, w), bool)
    on[foam.rows - r0, foam.cols - c0] = True
    assert np.all(diff[:, ~on] == 0)                                   # nothing else changes
    b02, b11 = BANDS.index("B02"), BANDS.index("B11")
    np.testing.assert_allclose(diff[b02, on], foam.amplitude[np.lexsort((foam.cols, foam.rows))]
                               * foam.shapes[foam.shape[np.lexsort((foam.cols, foam.rows))], b02], rtol=1e-5)
    assert np.all(diff[b11, on] < diff[b02, on])
    np.testing.assert_array_equal(foamed.valid, clean.valid)
    # a seeded subset to gather, every stripe still in the field
    pick = foam.sample(50, seed=0)
    assert len(pick) == 50 and np.all(np.diff(pick) > 0) and np.array_equal(foam.sample(10**6, 0), np.arange(len(foam)))
