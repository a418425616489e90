"""Time and peak memory of deriving the landscape context (``engine.data.context``) over a whole scene.

Prints the scene size, the seconds the two NDWI bands take (read in blocks of rows, block means on the 50 m grid,
Gaussians, in-memory GeoTIFF) and the process's peak resident memory.

    .venv/bin/python benchmarks/bench_context.py "$BDGF_BENCH_DATA/s2_delmarva/s2_B*.tif"
    .venv/bin/python benchmarks/make_mosaic_vrt.py $BDGF_BENCH_DATA/s2_delmarva /tmp/mosaic --copies 6
    .venv/bin/python benchmarks/bench_context.py "/tmp/mosaic/s2_B*.vrt"
"""

from __future__ import annotations

import argparse
import glob
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bands", help="glob of the spectral band files (quoted), e.g. 'scene/s2_B*.tif'")
    args = ap.parse_args()
    from bench_classify import machine_info
    from engine.data.context import ContextSpec, LandscapeContext
    from engine.data.grid import Modality, RasterStack

    paths = sorted(glob.glob(args.bands))
    if not paths:
        sys.exit(f"no file matches {args.bands}")
    spectral = Modality(paths, "spectral")
    with RasterStack([spectral]) as stack:
        grid = stack.grid
    t0 = time.perf_counter()
    with LandscapeContext(spectral, grid, ContextSpec()):
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {machine_info()}")
    print(f"{grid.width} x {grid.height} px ({grid.width * grid.height / 1e6:.1f} Mpx), {len(paths)} files: "
          f"context in {seconds:.1f} s, peak RSS {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
