"""Whitewater drawn over the water polygons and the swash zone over the sand polygons (engine.data.whitewater): the
foam's and wet sand's spectra, which classes are water and sand, where the stripes lie and what a read through them
returns (real Delmarva crop bands and polygons)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data.grid import Modality, RasterStack
from engine.data.labels import read_polygons, spectra_at, valid_at
from engine.data.whitewater import (AMPLITUDE, WhitewaterStack, plan_swash, plan_whitewater, reflectance_scale,
                                    sand_classes, water_classes, wet_sand_factor, whitewater_shapes)
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


def test_the_crop_has_one_sand_class_and_only_beside_water(crop):
    """Dry sand is bright from the red to the short-wave infrared and bare: the beach, not the tilled fields (red
    0.13), the roofs (1.6 µm 0.16) or the salt marsh; without a water class there is no swash."""
    px, medians, _ = crop
    wl = [SENTINEL2_WAVELENGTH_NM[b] for b in BANDS]
    water = water_classes(medians, wl, 1e4)
    assert [px.classes[k].name for k in sand_classes(medians, wl, 1e4, water)] == ["Beach / sand"]
    assert sand_classes(medians / 1e4, wl, 1.0, water) == sand_classes(medians, wl, 1e4, water)
    assert sand_classes(medians, wl, 1e4, []) == []
    no_swir = [w if w < 1400 else 700.0 for w in wl]
    assert sand_classes(medians, no_swir, 1e4, water) == []


def test_wet_sand_darkens_most_in_the_short_wave_infrared():
    wl = [SENTINEL2_WAVELENGTH_NM[b] for b in BANDS]
    f = wet_sand_factor(wl, np.array([0.0, 0.5, 1.0]))
    b02, b08, b10, b11, b12 = (BANDS.index(b) for b in ("B02", "B08", "B10", "B11", "B12"))
    np.testing.assert_allclose(f[0], 1.0)                                 # dry: unchanged
    assert np.all(f[:, b10] == 1.0)                                       # no surface signal in the cirrus band
    assert f[2, b02] == pytest.approx(0.54, abs=0.01) and f[2, b11] == pytest.approx(0.25, abs=1e-3)
    assert f[2, b12] < f[2, b11] < f[2, b08] < f[2, b02] and f[1, b11] > f[2, b11]


def test_swash_stripes_lie_inside_the_sand_polygons_and_reads_carry_them(crop, delmarva_bands):
    px, medians, _ = crop
    wl = [SENTINEL2_WAVELENGTH_NM[b] for b in BANDS]
    y = px.class_index()
    sand = sand_classes(medians, wl, 1e4, water_classes(medians, wl, 1e4))
    sel = np.flatnonzero(np.isin(y, sand))
    with RasterStack([Modality(delmarva_bands, "spectral")]) as stack:
        ok, values = spectra_at(stack, px.rows[sel], px.cols[sel])
        swash = plan_swash(px.rows[sel], px.cols[sel], y[sel], px.polygon_ids[sel], values * ok[:, None], wl, 1e4,
                           0.5, seed=3)
        assert 0.2 < len(swash) / len(sel) < 0.8
        assert np.all(np.isin(swash.class_index, sand))
        assert set(zip(swash.rows.tolist(), swash.cols.tolist())) <= set(zip(px.rows[sel].tolist(),
                                                                             px.cols[sel].tolist()))
        r0, c0 = int(swash.rows.min()), int(swash.cols.min())
        h, w = int(swash.rows.max()) - r0 + 1, int(swash.cols.max()) - c0 + 1
        clean = stack.read(r0, c0, h, w).arrays[0]
        wet = WhitewaterStack(stack, swash).read(r0, c0, h, w).arrays[0]
    on = np.zeros((h, w), bool)
    on[swash.rows - r0, swash.cols - c0] = True
    assert np.all(wet[:, ~on] == clean[:, ~on])                          # nothing else changes
    ratio = wet[:, on] / clean[:, on]
    b02, b11, b12 = (BANDS.index(b) for b in ("B02", "B11", "B12"))
    # wet sand under foam: darker in the short-wave infrared, relatively brighter in the visible than there
    assert np.all(ratio[b11] < 1.0) and np.all(ratio[b12] < 1.0) and np.all(ratio[b11] < ratio[b02])
    assert np.median(ratio[b11]) < 0.7 and np.median(ratio[b02]) > 0.6
    assert plan_swash(px.rows[sel][:0], px.cols[sel][:0], y[sel][:0], px.polygon_ids[sel][:0],
                      values[:0], wl, 1e4, 0.5, seed=3) is None
