"""Landscape context (``engine.data.context``, ``pretrain / train --context``) on the embedded Delmarva crop.

The derived bands are a smoothed water index: higher around the water polygons than around the forest polygons,
the same whatever order the spectral bands come in, refused without green and near-infrared bands. The model file
records the context; a training from such a pretrained file and its classifier derive the bands again without being
asked, and a training that asks for the context from a pretrained file without it is refused.
"""

from __future__ import annotations

import fiona
import numpy as np
import pytest
import rasterio
from rasterio.features import rasterize

from engine.data.context import ContextSpec, LandscapeContext, context_inputs
from engine.data.grid import Modality, RasterStack
from engine.errors import EngineError
from engine.io.schema import ModelMetadata, read_metadata
from tests.engine.conftest import embedded_result
from tests.engine.test_pipeline import BANDS, EXTENT, POLYGONS, events, run_engine


def _context_bands(bands) -> np.ndarray:
    """float32 (2, H, W) context bands read onto the crop's reference grid."""
    spectral = Modality(list(bands), "spectral")
    with context_inputs(spectral, [], ContextSpec().to_dict()) as (grid, aux), \
            RasterStack([spectral, *aux], grid) as stack:
        assert [m.kind for m in stack.modalities] == ["spectral", "context"] and stack.band_counts[1] == 2
        return stack.read(0, 0, grid.height, grid.width).arrays[1]


def test_context_is_a_smoothed_water_index_on_the_grid():
    ctx = _context_bands(BANDS)
    with rasterio.open(BANDS[1]) as src:          # B02, 10 m: the reference grid
        shape, transform = src.shape, src.transform
    with fiona.open(POLYGONS) as src:
        shapes = [(f["geometry"], int(f["properties"]["class_id"])) for f in src]
    labels = rasterize(shapes, out_shape=shape, transform=transform, fill=0)
    assert ctx.shape == (2, *shape) and np.isfinite(ctx).all() and ctx.min() >= -1 and ctx.max() <= 1
    for band, smooth in zip(ctx, (0.05, 0.02)):     # the 500 m band is the smoother one
        water, forest = band[labels == 1].mean(), band[labels == 4].mean()   # class 1 water, 4 forest
        assert water > forest + 0.2, (water, forest)
        assert np.abs(np.diff(band, axis=1)).mean() < smooth
    assert np.abs(np.diff(ctx[1], axis=1)).mean() < np.abs(np.diff(ctx[0], axis=1)).mean()
    np.testing.assert_allclose(_context_bands(BANDS[::-1]), ctx, atol=1e-6)   # found by wavelength, not position


def test_context_needs_green_and_near_infrared_bands(tmp_path, make_raster):
    with rasterio.open(BANDS[3]) as src:       # B04 (red), renamed so that nothing names its wavelength
        red = src.read(1)
    paths = [make_raster(tmp_path / f"band{i}.tif", red, crs="EPSG:32618", transform=src.transform) for i in (1, 2)]
    spectral = Modality(paths, "spectral")
    with RasterStack([spectral]) as stack:
        grid = stack.grid
    with pytest.raises(EngineError, match="green band .* near-infrared band") as err:
        LandscapeContext(spectral, grid, ContextSpec())
    assert "B03" in err.value.hint and "B08" in err.value.hint


def test_context_travels_through_the_model_file(tmp_path):
    common = ["--json-progress", "--device", "cpu", "--seed", "0", "--extent", *EXTENT]
    pre = tmp_path / "pre_ctx.safetensors"
    run_engine("pretrain", "--spectral", *BANDS, "--context", "--iterations", "2", "--output", str(pre), *common)
    meta = read_metadata(pre)
    assert meta.context == {"index": "ndwi", "sigma_m": [100.0, 500.0]}
    assert [m.kind for m in meta.modalities] == ["spectral", "context"]
    assert [b.description for b in meta.modalities[1].bands] == ["NDWI, Gaussian 100 m", "NDWI, Gaussian 500 m"]
    d = meta.to_dict()
    d["context"] = None            # a context modality without its settings is not a valid model file
    with pytest.raises(EngineError, match="landscape context"):
        ModelMetadata.from_dict(d)

    model = tmp_path / "model.safetensors"     # no --context: the pretrained file's context is used
    train = run_engine("train", "--spectral", *BANDS, "--training", POLYGONS, "--class-field", "class_id",
                       "--pretrained", str(pre), "--validation", "none", "--epochs", "1", "--output", str(model),
                       "--report", str(tmp_path / "train.html"), *common)
    assert any("Landscape context: on, as in pre_ctx.safetensors" in e.get("message", "") for e in events(train.stdout))
    settings = embedded_result((tmp_path / "train.html").read_text(encoding="utf-8"))["settings"]
    assert settings["landscape_context"] == "NDWI, Gaussians of 100, 500 m"
    cmeta = read_metadata(model)
    assert cmeta.context == meta.context and [m.kind for m in cmeta.modalities] == ["spectral", "context"]
    out = tmp_path / "map.tif"
    run_engine("classify", "--model", str(model), "--spectral", *BANDS, "--output", str(out), *common)
    with rasterio.open(out) as src:
        classes = src.read(1)
    assert (classes > 0).mean() > 0.9
    # the context comes from the whole scene, not the extent: a shifted extent maps the overlap the same
    shifted = tmp_path / "shifted.tif"
    x0, y0, x1, y1 = (float(v) for v in EXTENT)
    run_engine("classify", "--model", str(model), "--spectral", *BANDS, "--output", str(shifted),
               *common[:-5], "--extent", str(x0 + 640), str(y0), str(x1 + 640), str(y1))
    with rasterio.open(shifted) as src:
        moved = src.read(1)
    np.testing.assert_array_equal(moved[:, :-64], classes[:, 64:])

    plain = tmp_path / "pre.safetensors"
    run_engine("pretrain", "--spectral", *BANDS, "--iterations", "1", "--output", str(plain), *common)
    refused = run_engine("train", "--spectral", *BANDS, "--training", POLYGONS, "--class-field", "class_id",
                         "--pretrained", str(plain), "--context", "--validation", "none", "--epochs", "1",
                         "--output", str(tmp_path / "never.safetensors"), *common, check=False)
    last = events(refused.stdout)[-1]
    assert refused.returncode == 2 and "pre.safetensors was pretrained without landscape context" in last["message"]
    other = run_engine("train", "--spectral", *BANDS, "--training", POLYGONS, "--class-field", "class_id",
                       "--pretrained", str(pre), "--context", "250", "--validation", "none", "--epochs", "1",
                       "--output", str(tmp_path / "never.safetensors"), *common, check=False)
    assert other.returncode == 2 and "context scales 100 500 m" in events(other.stdout)[-1]["message"]
    tiny = run_engine("pretrain", "--spectral", *BANDS, "--context", "5", "--output", str(tmp_path / "never.st"),
                      *common, check=False)
    assert tiny.returncode == 2 and "give 1 to 4 scales of 10 to 20 000 m" in events(tiny.stdout)[-1]["message"]
    assert not (tmp_path / "never.safetensors").exists() and not (tmp_path / "never.st").exists()
    run_engine("pretrain", "--spectral", *BANDS, "--context", "150", "--iterations", "1",
               "--output", str(tmp_path / "one.safetensors"), *common)
    one = read_metadata(tmp_path / "one.safetensors")
    assert one.context["sigma_m"] == [150.0] and one.band_counts == [13, 1]


def test_block_sums_cover_a_ragged_edge():
    from engine.data.context import _block_sums

    rng = np.random.default_rng(0)
    ndwi = rng.uniform(-1, 1, (5, 7)).astype(np.float32)
    valid = rng.random((5, 7)) > 0.3
    sums, counts = _block_sums(ndwi, valid, 3, 7)
    assert sums.shape == counts.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            block = (slice(3 * i, 3 * i + 3), slice(3 * j, 3 * j + 3))
            assert counts[i, j] == valid[block].sum()
            assert sums[i, j] == pytest.approx(ndwi[block][valid[block]].sum(), abs=1e-5)
