"""Landscape-context rasters: a water index smoothed over hundreds of metres, to give as auxiliary input.

The Delmarva map's two structural errors lie where a pixel's own spectrum and its 5 x 5 patch look like another
class that belongs elsewhere in the landscape: salt marsh drawn along inland forest edges (no tide reaches there)
and built-up drawn on the line between beach and marsh (no settlement on the barrier islands). Both are settled by
where the pixel lies, near open water or far inland, at a scale beyond the patch and the diffusion U-Net's
receptive field (about ±13 px). This script writes that context as single-band float32 rasters on the grid of the
green band: McFeeters' NDWI ``(green - NIR) / (green + NIR)`` (reflectance; nodata and zero pixels left out),
averaged with a Gaussian of standard deviation ``sigma`` pixels (normalised convolution, so the scene border and
nodata do not pull the mean towards 0). Give them to ``engine pretrain / train / classify`` as
``--aux elevation FILE ...`` (the engine's generic continuous auxiliary kind) to measure what the context changes;
docs/benchmarks.md, "Landscape context as an auxiliary input".

    .venv/bin/python benchmarks/context_raster.py --green $BDGF_BENCH_DATA/s2_delmarva/s2_B03.tif \\
        --nir $BDGF_BENCH_DATA/s2_delmarva/s2_B08.tif --sigma 10 50 --output-dir ctx

Writes ``ctx/ndwi_s10.tif`` and ``ctx/ndwi_s50.tif`` (refuses to replace existing files).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import rasterio
from scipy.ndimage import gaussian_filter


def smoothed_ndwi(green: np.ndarray, nir: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """float32 ``(H, W)`` NDWI averaged with a Gaussian of ``sigma`` pixels over the ``valid (H, W)`` pixels.

    Args:
        green, nir: ``(H, W)`` reflectance (any scale, the same for both), on one grid.
        valid: bool ``(H, W)``; invalid pixels neither count nor get a value of their own (they get the mean of
            their valid neighbours, or 0 far from any).
    """
    g, n = green.astype(np.float32), nir.astype(np.float32)
    ndwi = np.where(valid, (g - n) / np.maximum(g + n, 1e-6), 0.0).astype(np.float32)
    weight = gaussian_filter(valid.astype(np.float32), sigma)
    total = gaussian_filter(ndwi, sigma)
    return np.where(weight > 1e-3, total / np.maximum(weight, 1e-3), 0.0).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--green", required=True, help="green band (Sentinel-2 B03)")
    ap.add_argument("--nir", required=True, help="near-infrared band on the same grid (Sentinel-2 B08)")
    ap.add_argument("--sigma", type=float, nargs="+", default=[10.0, 50.0], help="Gaussian sigma(s), pixels")
    ap.add_argument("--output-dir", required=True)
    args = ap.parse_args(argv)
    with rasterio.open(args.green) as g_src, rasterio.open(args.nir) as n_src:
        if (g_src.shape, g_src.transform, g_src.crs) != (n_src.shape, n_src.transform, n_src.crs):
            sys.exit(f"{args.nir} is not on the grid of {args.green}: give two bands of the same resolution "
                     "(Sentinel-2 B03 and B08 are both 10 m)")
        green, nir, profile = g_src.read(1), n_src.read(1), g_src.profile
        valid = g_src.read_masks(1).astype(bool) & n_src.read_masks(1).astype(bool) & (green > 0) & (nir > 0)
    os.makedirs(args.output_dir, exist_ok=True)
    profile.update(dtype="float32", count=1, nodata=None)
    for sigma in args.sigma:
        path = os.path.join(args.output_dir, f"ndwi_s{sigma:g}.tif")
        if os.path.exists(path):
            sys.exit(f"{path} exists: choose another --output-dir or remove it")
        tmp = path + ".part"
        with rasterio.open(tmp, "w", **{**profile, "driver": "GTiff"}) as dst:
            dst.write(smoothed_ndwi(green, nir, valid, sigma), 1)
        os.replace(tmp, path)
        print(f"{path}: NDWI smoothed with sigma {sigma:g} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
