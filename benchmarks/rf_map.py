"""The random-forest baseline as a map: the forest of the training report, fitted on every labelled pixel, applied to
the whole scene, written as a styled classification GeoTIFF beside BDGF's for the same polygons.

The training report compares BDGF with a random forest under the same cross-validation folds; this script gives
that forest's map, so the two can be compared where cross-validation does not look: on a sample of the mapped
pixels (``interpret_sample.py``) or by eye. Inputs are the centre pixel's spectral bands (raw values, as the
report's forest; a forest does not need them standardised), 100 trees, on the stack's reference grid. Memory: one
tile of rows at a time.

    python benchmarks/rf_map.py --spectral $BDGF_BENCH_DATA/s2_delmarva/s2_B*.tif \\
        --training $BDGF_BENCH_DATA/s2_delmarva/training_polygons.gpkg --class-field class_id \\
        --name-field class_name --output rf.tif
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import rasterio

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.data.grid import Modality, RasterStack  # noqa: E402
from engine.data.labels import read_polygons, spectra_at  # noqa: E402
from engine.io.rasters import qml_path, write_qml  # noqa: E402
from engine.train import fit_random_forest  # noqa: E402


def rf_map(spectral: list[str], training: str, class_field: str, output: str, name_field: str | None = None,
           trees: int = 100, seed: int = 0, rows_per_tile: int = 256) -> dict[int, int]:
    """Fit the forest on every valid labelled pixel and classify the grid; returns ``{class value: pixels}``.

    Writes ``output`` (uint16 class values, 0 = nodata) and its QML style; refuses an existing ``output``.
    """
    if os.path.exists(output):
        raise SystemExit(f"{output} exists; choose another name")
    with RasterStack([Modality(paths=list(spectral), kind="spectral")]) as stack:
        grid = stack.grid
        px = read_polygons(training, class_field, grid, name_field=name_field)
        ok, x = spectra_at(stack, px.rows, px.cols)
        forest = fit_random_forest(x[ok], px.values[ok], trees, seed)
        out = np.zeros((grid.height, grid.width), np.uint16)
        for r0 in range(0, grid.height, rows_per_tile):
            h = min(rows_per_tile, grid.height - r0)
            win = stack.read(r0, 0, h, grid.width)
            flat = win.arrays[0].reshape(win.arrays[0].shape[0], -1).T
            pred = forest.predict(flat).reshape(h, grid.width)
            out[r0:r0 + h] = np.where(win.valid, pred, 0)
    tmp = output + ".part.tif"
    profile = dict(driver="GTiff", height=grid.height, width=grid.width, count=1, dtype="uint16", crs=grid.crs,
                   transform=grid.transform, nodata=0, compress="deflate")
    with rasterio.open(tmp, "w", **profile) as ds:
        ds.write(out, 1)
    os.replace(tmp, output)
    write_qml(qml_path(output), px.classes)
    values, counts = np.unique(out[out > 0], return_counts=True)
    return {int(v): int(n) for v, n in zip(values, counts)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spectral", nargs="+", required=True)
    ap.add_argument("--training", required=True)
    ap.add_argument("--class-field", required=True)
    ap.add_argument("--name-field")
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", required=True)
    args = ap.parse_args(argv)
    counts = rf_map(args.spectral, args.training, args.class_field, args.output, args.name_field, args.trees,
                    args.seed)
    print(f"{args.output}: pixels per class {counts}")


if __name__ == "__main__":
    main()
