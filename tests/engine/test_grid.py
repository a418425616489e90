"""Geodata layer: reference grid, WarpedVRT reading, valid mask, statistics, tiles and patches (engine/grid.py)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from engine.data.grid import (BandStats, Modality, RasterStack, ReferenceGrid, compute_statistics, crs_equal,
                              db_to_linear, default_grid, linear_to_db)
from engine.data.windows import PatchCutter, Window, extract_patches, iter_windows
from engine.progress import Reporter
from tests.engine.conftest import write_raster


class Messages(Reporter):
    """A silent Reporter that keeps the log lines (iterating gives their text)."""

    def __init__(self):
        super().__init__(quiet=True)

    def __iter__(self):
        return iter(f"{level.upper()}: {m}" if level != "info" else m for level, m in self.messages)


def _band(paths, name):
    return next(p for p in paths if p.endswith(f"_{name}.tif"))


# -- Delmarva crop: 13 single-band files at 10/20/60 m onto one 10 m grid ---------------------------------------

def test_delmarva_grid_is_the_finest_spectral_raster(delmarva_bands):
    logs = Messages()
    with RasterStack([Modality(delmarva_bands, "spectral")], reporter=logs) as st:
        g = st.grid
        assert (g.width, g.height) == (768, 768)
        assert g.res == (10.0, 10.0)
        assert g.crs.to_epsg() == 32618
        with rasterio.open(_band(delmarva_bands, "B02")) as ds:
            assert g.transform.almost_equals(ds.transform)
        assert st.band_counts == [13]
        assert [d.split(":")[0] for d in st.band_descriptions[0]] == [p.rsplit("/", 1)[1] for p in delmarva_bands]
        assert st.band_descriptions[0][4] == "s2_B05.tif:1 (B05)"
        w = st.read(100, 200, 64, 48)
        assert [a.shape for a in w.arrays] == [(13, 64, 48)] and w.arrays[0].dtype == np.float32
        assert w.valid.all()
    text = "\n".join(list(logs))
    assert "s2_B05.tif 20 x 20 m -> 10 x 10 m, upsampled, bilinear" in text
    assert "s2_B01.tif 60 x 60 m -> 10 x 10 m, upsampled, bilinear" in text
    assert "s2_B02.tif 10 x 10 m -> 10 x 10 m, no resampling" in text


def test_20m_band_resampled_to_10m_keeps_its_values(delmarva_bands):
    b05 = _band(delmarva_bands, "B05")
    grid = ReferenceGrid.from_raster(_band(delmarva_bands, "B02"))
    with rasterio.open(b05) as ds:
        src = ds.read(1).astype(np.float64)
        st20 = ds.transform
    with RasterStack([Modality([b05], "spectral")], grid=grid) as st:
        win = st.read(0, 0, grid.height, grid.width)
    out = win.arrays[0][0].astype(np.float64)
    # independent bilinear interpolation at each 10 m pixel centre, in 20 m pixel coordinates
    rows, cols = np.mgrid[0:grid.height, 0:grid.width]
    x, y = grid.transform * (cols + 0.5, rows + 0.5)
    c20, r20 = ~st20 * (x, y)
    u, v = c20 - 0.5, r20 - 0.5
    i0, j0 = np.floor(v).astype(int), np.floor(u).astype(int)
    fv, fu = v - i0, u - j0
    inner = (i0 >= 0) & (j0 >= 0) & (i0 < src.shape[0] - 1) & (j0 < src.shape[1] - 1)
    i0, j0, fv, fu = i0[inner], j0[inner], fv[inner], fu[inner]
    expect = ((1 - fv) * (1 - fu) * src[i0, j0] + (1 - fv) * fu * src[i0, j0 + 1]
              + fv * (1 - fu) * src[i0 + 1, j0] + fv * fu * src[i0 + 1, j0 + 1])
    assert inner.sum() > 0.98 * inner.size
    np.testing.assert_allclose(out[inner], expect, atol=0.02)
    # the 10 m pixels inside a 20 m pixel average back to (almost) the source: a 2 x 2 block mean is
    # 9/16 of the pixel + 3/16 of two edge neighbours + 1/16 of the diagonal one, so compare on smooth areas
    assert abs(np.median(out[inner]) - np.median(expect)) < 1.0
    # block means agree with the source (no shift, no scale change)
    assert abs(out[win.valid].mean() - src.mean()) < 0.01 * src.mean()


def test_10m_band_read_unchanged_and_coverage_mask(delmarva_bands):
    with rasterio.open(_band(delmarva_bands, "B08")) as ds:
        src = ds.read(1)
    with RasterStack([Modality(delmarva_bands, "spectral")]) as st:
        w = st.read(0, 0, 768, 768)
    np.testing.assert_array_equal(w.arrays[0][7][:-2, :-1], src[:-2, :-1].astype(np.float32))
    # 20/60 m files end 10 m short on the right and the 60 m files 20 m short at the bottom: invalid there
    assert not w.valid[:, -1].any() and not w.valid[-2:, :].any()
    assert w.valid[:-2, :-1].all()
    assert (w.arrays[0][:, ~w.valid] == 0).all()


def test_read_across_the_border_zero_fills_and_marks_invalid(delmarva_bands):
    with RasterStack([Modality(delmarva_bands[1:4], "spectral")]) as st:
        inner = st.read(0, 0, 7, 7)
        w = st.read(-3, -5, 10, 12)
        assert w.arrays[0].shape == (3, 10, 12)
        assert not w.valid[:3].any() and not w.valid[:, :5].any()
        assert (w.arrays[0][:, :3] == 0).all() and (w.arrays[0][:, :, :5] == 0).all()
        np.testing.assert_array_equal(w.arrays[0][:, 3:, 5:], inner.arrays[0])
        assert w.valid[3:, 5:].all()
        far = st.read(2000, 2000, 4, 4)
        assert not far.valid.any() and (far.arrays[0] == 0).all()
        # a big window equals the stitched tiles
        big = st.read(100, 100, 96, 96).arrays[0]
        for t in iter_windows(768, 768, 32, window=(100, 100, 96, 96)):
            part = st.read(*t).arrays[0]
            np.testing.assert_array_equal(part, big[:, t.row_off - 100:t.row_off - 100 + t.height,
                                                    t.col_off - 100:t.col_off - 100 + t.width])


# -- BigEarthNet S1 (dB) + S2 (10/20/60 m): two modalities on one 120 x 120 grid ---------------------------------

def test_bigearthnet_s1_s2_pair_two_modalities(ben_pair_87_48):
    logs = Messages()
    mods = [Modality(ben_pair_87_48["s2"], "spectral", name="S2"),
            Modality(ben_pair_87_48["s1"], "sar_db", name="S1")]
    with RasterStack(mods, reporter=logs) as st:
        assert (st.grid.width, st.grid.height) == (120, 120) and st.grid.res == (10.0, 10.0)
        assert st.grid.crs.to_epsg() == 32633
        assert st.band_counts == [12, 2] and st.kinds == ["spectral", "sar_db"]
        w = st.read(0, 0, 120, 120)
        s2, s1 = w.arrays
        assert s2.shape == (12, 120, 120) and s1.shape == (2, 120, 120)
        with rasterio.open(ben_pair_87_48["s1"][0]) as ds:
            vv = ds.read(1)
        np.testing.assert_array_equal(s1[0][w.valid], vv[w.valid])    # dB, unchanged (already on the grid)
        assert np.median(s1[0][w.valid]) < 0                               # backscatter in dB
        assert w.valid.mean() > 0.95
        stats = compute_statistics(st, sample_pixels=5000)
        assert [len(s) for s in stats] == [12, 2]
        assert stats[1][0].p98 < 5 and stats[1][0].p2 > -40              # VV in dB
        assert st.describe()["modalities"][1]["kind"] == "sar_db"
    text = "\n".join(list(logs))
    assert "S2: S2A_MSIL2A_20170613T101031_87_48_B05.tif 20 x 20 m -> 10 x 10 m, upsampled, bilinear" in text
    assert "S2: S2A_MSIL2A_20170613T101031_87_48_B01.tif 60 x 60 m -> 10 x 10 m" in text
    assert "_VV.tif 10 x 10 m -> 10 x 10 m, no resampling" in text


def test_sar_linear_is_returned_in_db(tmp_path, ben_pair_87_48):
    with rasterio.open(ben_pair_87_48["s1"][0]) as ds:
        vv_db = ds.read(1)
        lin = db_to_linear(vv_db)
        path = write_raster(tmp_path / "vv_lin.tif", lin.astype(np.float32), crs=ds.crs, transform=ds.transform)
    mods = [Modality(ben_pair_87_48["s2"][1:4], "spectral"), Modality([path], "sar_linear")]
    with RasterStack(mods) as st:
        w = st.read(0, 0, 120, 120)
    np.testing.assert_allclose(w.arrays[1][0][w.valid], vv_db[w.valid], atol=1e-4)
    np.testing.assert_allclose(linear_to_db(db_to_linear(np.float32(-12.5))), -12.5, atol=1e-5)


# -- explicit grids, reprojection, nodata --------------------------------------------------------------------

def test_explicit_20m_grid_averages_10m_bands(delmarva_bands):
    b02 = _band(delmarva_bands, "B02")
    with rasterio.open(b02) as ds:
        src = ds.read(1).astype(np.float64)
        grid = ReferenceGrid.from_bounds(ds.crs, 20.0, ds.bounds)
    assert (grid.width, grid.height) == (384, 384)
    logs = Messages()
    with RasterStack([Modality([b02], "spectral")], grid=grid, reporter=logs) as st:
        out = st.read(0, 0, 384, 384).arrays[0][0]
    expect = src.reshape(384, 2, 384, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(out, expect, atol=0.01)
    assert any("downsampled, average" in m for m in logs)


def test_reprojection_is_logged_and_lands_on_the_grid(delmarva_bands):
    b04 = _band(delmarva_bands, "B04")
    with rasterio.open(b04) as ds:
        left, bottom, right, top = rasterio.warp.transform_bounds(ds.crs, "EPSG:32617", *ds.bounds)
    grid = ReferenceGrid.from_bounds("EPSG:32617", 30.0, (left, bottom, right, top))
    logs = Messages()
    with RasterStack([Modality([b04], "spectral")], grid=grid, reporter=logs) as st:
        w = st.read(0, 0, grid.height, grid.width)
    assert any("reprojected from EPSG:32618 to EPSG:32617" in m and "average" in m for m in logs)
    assert 0.5 < w.valid.mean() < 1.0           # the rotated footprint leaves invalid corners
    with rasterio.open(b04) as ds:
        assert abs(w.arrays[0][0][w.valid].mean() - ds.read(1).mean()) < 0.03 * ds.read(1).mean()


def test_default_grid_with_extent_crops_whole_pixels(delmarva_bands):
    full = default_grid([Modality(delmarva_bands, "spectral")])
    b = full.bounds
    sub = default_grid([Modality(delmarva_bands, "spectral")], extent=(b.left + 101, b.bottom + 55,
                                                                       b.left + 399, b.bottom + 301))
    assert sub.res == (10.0, 10.0) and (sub.width, sub.height) == (30, 26)
    assert sub.transform.c == b.left + 100 and sub.transform.f == b.bottom + 310
    win = full.window_for_bounds(sub.bounds)
    assert (win.col_off, win.row_off, win.width, win.height) == (10, 768 - 31, 30, 26)


def test_nodata_source_and_explicit(tmp_path):
    a = np.arange(100, dtype=np.uint16).reshape(10, 10) + 1
    a[2, 3] = 0
    b = a.copy()
    b[5, 5] = 9999
    p_file = write_raster(tmp_path / "a.tif", a, nodata=0)
    p_none = write_raster(tmp_path / "b.tif", b)
    with RasterStack([Modality([p_file], "spectral"), Modality([p_none], "elevation", nodata=9999)]) as st:
        w = st.read(0, 0, 10, 10)
    assert not w.valid[2, 3] and not w.valid[5, 5]
    assert w.valid.sum() == 98
    assert w.arrays[0][0, 2, 3] == 0 and w.arrays[1][0, 5, 5] == 0
    # the file's nodata wins over the modality's
    c = a.copy()
    c[1, 1] = 7
    p_c = write_raster(tmp_path / "c.tif", c, nodata=7)
    with RasterStack([Modality([p_c], "spectral", nodata=0)]) as st:
        w = st.read(0, 0, 10, 10)
    assert not w.valid[1, 1] and w.valid[2, 3]


def test_nan_is_invalid_and_band_descriptions(tmp_path):
    a = np.ones((2, 6, 6), np.float32)
    a[1, 0, 0] = np.nan
    p = write_raster(tmp_path / "f.tif", a, descriptions=["blue", "red"])
    with rasterio.open(p, "r+") as ds:
        ds.update_tags(2, wavelength="665", wavelength_units="nm")
    with RasterStack([Modality([p], "spectral")]) as st:
        w = st.read(0, 0, 6, 6)
        assert st.band_descriptions == [["f.tif:1 (blue)", "f.tif:2 (red, 665 nm)"]]
        assert st.band_info[0][1] == {"file": "f.tif", "band": 2, "description": "red", "wavelength": "665 nm"}
    assert not w.valid[0, 0] and w.valid.sum() == 35 and w.arrays[0][1, 0, 0] == 0


# -- grid (de)serialisation and CRS equality ------------------------------------------------------------------

def test_grid_to_dict_roundtrip_and_semantic_crs():
    g = ReferenceGrid(CRS.from_epsg(32618), Affine(10, 0, 440530, 0, -10, 4177540), 768, 768)
    d = g.to_dict()
    assert d["crs"].startswith(("PROJCS", "PROJCRS")) and d["transform"][:3] == [10.0, 0.0, 440530.0]
    g2 = ReferenceGrid.from_dict(d)
    assert g2.same_as(g) and g2.bounds == g.bounds and g2.res == (10.0, 10.0)
    assert crs_equal(CRS.from_epsg(32618), CRS.from_proj4("+proj=utm +zone=18 +datum=WGS84 +units=m +no_defs"))
    assert crs_equal(CRS.from_epsg(32618), CRS.from_wkt(CRS.from_epsg(32618).to_wkt()))
    assert not crs_equal(CRS.from_epsg(32618), CRS.from_epsg(32617))


# -- statistics ---------------------------------------------------------------------------------------------

def test_statistics_bounded_sample_matches_full_scene(delmarva_bands):
    with RasterStack([Modality(delmarva_bands[1:4], "spectral")]) as st:
        s1 = compute_statistics(st, sample_pixels=40_000, seed=3)
        s2 = compute_statistics(st, sample_pixels=40_000, seed=3)
        full = st.read(0, 0, 768, 768)
    assert s1 == s2
    assert [[BandStats.from_dict(b.to_dict()) for b in m] for m in s1] == s1
    for k in range(3):
        x = full.arrays[0][k][full.valid].astype(np.float64)
        b = s1[0][k]
        assert isinstance(b, BandStats) and b.min <= b.p2 <= b.mean <= b.p98 <= b.max
        assert abs(b.mean - x.mean()) < 0.05 * x.std()
        assert abs(b.std - x.std()) < 0.1 * x.std()
        assert abs(b.p2 - np.percentile(x, 2)) < 0.1 * x.std()
        assert abs(b.p98 - np.percentile(x, 98)) < 0.15 * x.std()
    assert BandStats.from_dict(s1[0][0].to_dict()) == s1[0][0]


def test_statistics_window_and_small_grid(tmp_path):
    a = np.zeros((1, 20, 30), np.float32)
    a[0, :, 15:] = 10.0
    p = write_raster(tmp_path / "s.tif", a)
    with RasterStack([Modality([p], "spectral")]) as st:
        whole = compute_statistics(st, sample_pixels=10_000)[0][0]
        left = compute_statistics(st, sample_pixels=10_000, window=(0, 0, 20, 15))[0][0]
    assert whole.min == 0 and whole.max == 10 and abs(whole.mean - 5) < 1e-6
    assert left.max == 0 and left.std == 0


# -- tiles and patches ------------------------------------------------------------------------------------------

def test_iter_windows_cover_exactly_once():
    cover = np.zeros((50, 70), int)
    tiles = list(iter_windows(50, 70, 16))
    for t in tiles:
        cover[t.row_off:t.row_off + t.height, t.col_off:t.col_off + t.width] += 1
        assert tuple(t.grown(4)) == (t.row_off - 4, t.col_off - 4, t.height + 8, t.width + 8)
    assert (cover == 1).all() and len(tiles) == 4 * 5
    sub = list(iter_windows(50, 70, 10, window=(5, 7, 20, 25)))
    assert tuple(sub[0]) == (5, 7, 10, 10) and sub[-1] == Window(15, 27, 10, 5)
    with pytest.raises(ValueError):
        next(iter_windows(50, 70, 0))


def test_extract_patches_zero_padding_matches_np_pad():
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(3, 12, 15)).astype(np.float32)
    rows = np.array([0, 5, 11, 3, 11])
    cols = np.array([0, 7, 14, 14, 0])
    p = extract_patches(arr, rows, cols, 9)
    assert p.shape == (5, 3, 9, 9) and p.dtype == np.float32
    padded = np.pad(arr, ((0, 0), (4, 4), (4, 4)))
    for n, (r, c) in enumerate(zip(rows, cols)):
        np.testing.assert_array_equal(p[n], padded[:, r:r + 9, c:c + 9])
    assert p[0, :, :4, :].sum() == 0 and p[0, 0, 4, 4] == arr[0, 0, 0]


def test_extract_patches_torch():
    torch = pytest.importorskip("torch")
    arr = np.arange(2 * 6 * 7, dtype=np.float32).reshape(2, 6, 7)
    p_np = extract_patches(arr, [0, 5], [6, 2], 5)
    p_t = extract_patches(torch.from_numpy(arr), [0, 5], [6, 2], 5)
    assert tuple(p_t.shape) == (2, 2, 5, 5)
    np.testing.assert_array_equal(p_t.numpy(), p_np)
    t = db_to_linear(torch.tensor([0.0, 10.0, -10.0]))
    np.testing.assert_allclose(t.numpy(), [1.0, 10.0, 0.1], rtol=1e-6)


def test_patch_cutter_matches_extract_patches():
    """The channel-last cutter gives extract_patches' values and types, inside the window and across its
    border (zero padding), for numpy arrays and torch tensors, batch after batch."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    spec = rng.normal(size=(13, 30, 34)).astype(np.float32)
    feats = torch.from_numpy(rng.normal(size=(64, 30, 34)).astype(np.float32))
    cut = PatchCutter((spec, None, feats), 5)
    for rows, cols in ((rng.integers(2, 28, 200), rng.integers(2, 32, 200)),      # every patch inside
                       (np.array([0, 29, 15, 1]), np.array([33, 0, 16, 1]))):    # some cross the border
        ps, pa, pf = cut(rows, cols)
        assert pa is None and isinstance(ps, np.ndarray) and isinstance(pf, torch.Tensor)
        np.testing.assert_array_equal(ps, extract_patches(spec, rows, cols, 5))
        np.testing.assert_array_equal(pf.numpy(), extract_patches(feats, rows, cols, 5).numpy())
        assert ps.flags["C_CONTIGUOUS"] and pf.is_contiguous() and ps.shape == (len(rows), 13, 5, 5)


def test_db_to_linear():
    np.testing.assert_allclose(db_to_linear(np.array([0.0, 10.0, -20.0], np.float32)), [1.0, 10.0, 0.01], rtol=1e-6)
    assert db_to_linear(np.array([3.0], np.float32)).dtype == np.float32
