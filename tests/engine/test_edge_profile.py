"""benchmarks/edge_profile.py: how wide a land-cover boundary is in each band, on the embedded Delmarva crop."""

import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import edge_profile  # noqa: E402
from boundary_shift import scene_zscores  # noqa: E402


def test_a_known_ramp_is_measured_at_its_width():
    x = np.arange(40, dtype=np.float64)
    for width in (1.0, 3.0, 8.0):
        alpha = np.clip((x - 20.3) / width + 0.5, 0, 1)
        assert abs(edge_profile.ramp_width(x - 20.3, alpha) - width) <= 0.1


def test_coarse_bands_and_smoothed_inputs_have_wider_boundaries_on_the_real_crop(delmarva_bands):
    z, valid, _ = scene_zscores(delmarva_bands)     # the 20 m and 60 m bands resampled to 10 m, as the engine reads
    window = (slice(0, 384), slice(0, 384))
    spec, ok = z[:, window[0], window[1]], valid[window]
    smooth = np.stack([ndimage.gaussian_filter(b, 4.0) for b in spec])      # a stand-in for the features
    result = edge_profile.profile_widths(spec, smooth, ok)
    assert result["transects"] >= 50
    names = [Path(p).stem[3:] for p in delmarva_bands]
    w = dict(zip(names, result["bands"]))
    ten = [w[b] for b in ("B02", "B03", "B04", "B08")]
    twenty = [w[b] for b in ("B05", "B06", "B07", "B8A", "B11", "B12")]
    sixty = [w[b] for b in ("B01", "B09", "B10") if w[b] is not None]
    # Sentinel-2 records 10, 20 and 60 m bands; on the 10 m grid their boundaries widen in that order
    assert max(ten) < min(twenty) and sixty and max(twenty) < min(sixty)
    assert max(ten) <= 3.5
    # a Gaussian of 4 px spreads a boundary over about 10 px (2.5 sigma), far wider than the 10 m bands
    assert result["features"] > 2 * max(ten)
