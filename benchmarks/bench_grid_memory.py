"""Memory benchmark of the geodata layer: the full Delmarva Sentinel-2 scene read window by window.

Reads the 13 single-band files (10/20/60 m) of ``$BDGF_BENCH_DATA/s2_delmarva`` (``bench_data``) onto the
10 m grid tile by tile (512 px), accumulates exact per-band mean/std/min/max and the valid-pixel count, computes the sampled
normalisation statistics (engine.data.grid.compute_statistics), and prints peak RSS against a stated bound:

    bound = RSS after imports + GDAL block cache cap + 8 x one tile's float32 stack + 64 MiB slack

(GDAL's warper holds source and destination buffers of a few tiles per read; measured ~3-5 x a tile stack).
The peak is also printed after reading only a 768 x 768 sub-window, to show it does not grow with the area.

which does not depend on the scene size (the whole scene as one float32 stack is printed for comparison).

    .venv/bin/python benchmarks/bench_grid_memory.py [SCENE_DIR] [--tile 512]
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import rasterio  # noqa: E402

from bench_data import delmarva_scene  # noqa: E402
from engine.data.grid import Modality, RasterStack, compute_statistics  # noqa: E402
from engine.data.windows import iter_windows  # noqa: E402

MiB = 1024 * 1024


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def current_rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scene", nargs="?", default=str(delmarva_scene()))
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--cache-mb", type=int, default=64, help="GDAL_CACHEMAX in MiB")
    args = ap.parse_args()
    bands = sorted(glob.glob(os.path.join(args.scene, "s2_B*.tif")))
    if len(bands) != 13:
        print(f"expected 13 band files in {args.scene}, found {len(bands)}")
        return 1
    base = current_rss()
    t0 = time.perf_counter()
    with rasterio.Env(GDAL_CACHEMAX=args.cache_mb * MiB):
        with RasterStack([Modality(bands, "spectral")]) as st:
            g = st.grid
            nb = st.n_bands
            s = np.zeros(nb)
            s2 = np.zeros(nb)
            mn = np.full(nb, np.inf)
            mx = np.full(nb, -np.inf)
            n_valid = 0
            n_tiles = 0
            # 1) a 768 x 768 sub-window, 2) the whole scene: the peak must not grow with the area read
            for t in iter_windows(g.height, g.width, args.tile, window=(0, 0, min(768, g.height), min(768, g.width))):
                st.read(*t)
            peak_sub = peak_rss()
            t0 = time.perf_counter()
            for t in iter_windows(g.height, g.width, args.tile):
                w = st.read(*t)
                px = w.arrays[0][:, w.valid].astype(np.float64)
                if px.size:
                    s += px.sum(1)
                    s2 += (px * px).sum(1)
                    mn = np.minimum(mn, px.min(1))
                    mx = np.maximum(mx, px.max(1))
                    n_valid += px.shape[1]
                n_tiles += 1
            t_read = time.perf_counter() - t0
            peak_read = peak_rss()
            t1 = time.perf_counter()
            stats = compute_statistics(st, sample_pixels=100_000, seed=0)[0]
            t_stats = time.perf_counter() - t1
    mean = s / n_valid
    std = np.sqrt(np.maximum(s2 / n_valid - mean ** 2, 0))
    peak = peak_rss()
    tile_stack = nb * (args.tile ** 2) * 4
    bound = base + args.cache_mb * MiB + 8 * tile_stack + 64 * MiB
    scene_stack = nb * g.width * g.height * 4
    print(f"scene: {args.scene}  grid {g.width} x {g.height} px at {g.res[0]:g} m, {nb} bands, "
          f"{n_tiles} tiles of {args.tile} px")
    print(f"valid pixels: {n_valid} of {g.width * g.height} ({100 * n_valid / (g.width * g.height):.2f} %)")
    print(f"windowed read of the whole scene: {t_read:.2f} s; sampled statistics (100k px): {t_stats:.2f} s")
    print(f"{'band':<14}{'exact mean':>12}{'sample mean':>12}{'exact std':>11}{'sample std':>11}"
          f"{'min':>8}{'max':>8}{'p2':>8}{'p98':>8}")
    for i, (d, b) in enumerate(zip(st.band_descriptions[0], stats)):
        print(f"{d.split(':')[0]:<14}{mean[i]:>12.1f}{b.mean:>12.1f}{std[i]:>11.1f}{b.std:>11.1f}"
              f"{mn[i]:>8.0f}{mx[i]:>8.0f}{b.p2:>8.0f}{b.p98:>8.0f}")
    print(f"RSS after imports: {base / MiB:.1f} MiB")
    print(f"peak RSS after a 768 x 768 sub-window: {peak_sub / MiB:.1f} MiB; after the whole scene "
          f"({g.width * g.height / min(768 * 768, g.width * g.height):.1f} x the pixels): {peak_read / MiB:.1f} MiB")
    print(f"peak RSS (with statistics): {peak / MiB:.1f} MiB; bound {bound / MiB:.1f} MiB (imports + GDAL cache "
          f"{args.cache_mb} MiB + 8 x tile stack {tile_stack / MiB:.1f} MiB + 64 MiB); whole scene as float32 stack would be "
          f"{scene_stack / MiB:.1f} MiB")
    ok = peak <= bound
    print("PASS: peak RSS within the bound" if ok else "FAIL: peak RSS above the bound")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
