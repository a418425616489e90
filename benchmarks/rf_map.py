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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.data.grid import Modality, RasterStack  # noqa: E402
from engine.data.labels import read_polygons, spectra_at  # noqa: E402
from engine.io.rasters import ClassificationWriter  # noqa: E402
from engine.train import fit_random_forest  # noqa: E402


def rf_map(spectral: list[str], training: str, class_field: str, output: str, name_field: str | None = None,
           trees: int = 100, seed: int = 0, rows_per_tile: int = 256, overwrite: bool = False) -> dict[int, int]:
    """Fit the forest on every valid labelled pixel and classify the grid; returns ``{class value: pixels}``.

    Writes ``output`` through the engine's ``ClassificationWriter`` (class values, 0 = nodata, colour table,
    class names, QML style; atomic), one band of ``rows_per_tile`` rows at a time.

    Raises:
        OutputExistsError: ``output`` exists and ``overwrite`` is false.
    """
    counts: dict[int, int] = {}
    with RasterStack([Modality(paths=list(spectral), kind="spectral")]) as stack:
        grid = stack.grid
        px = read_polygons(training, class_field, grid, name_field=name_field)
        with ClassificationWriter(output, grid.crs, grid.transform, grid.width, grid.height, px.classes,
                                  overwrite) as writer:
            ok, x = spectra_at(stack, px.rows, px.cols)
            forest = fit_random_forest(x[ok], px.values[ok], trees, seed)
            for r0 in range(0, grid.height, rows_per_tile):
                h = min(rows_per_tile, grid.height - r0)
                win = stack.read(r0, 0, h, grid.width)
                flat = win.arrays[0].reshape(win.arrays[0].shape[0], -1).T
                values = np.where(win.valid, forest.predict(flat).reshape(h, grid.width), 0)
                writer.write(r0, 0, values.astype(np.uint16))
                for v, n in zip(*np.unique(values[values > 0], return_counts=True)):
                    counts[int(v)] = counts.get(int(v), 0) + int(n)
    return dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spectral", nargs="+", required=True)
    ap.add_argument("--training", required=True)
    ap.add_argument("--class-field", required=True)
    ap.add_argument("--name-field")
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", required=True)
    ap.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = ap.parse_args(argv)
    counts = rf_map(args.spectral, args.training, args.class_field, args.output, args.name_field, args.trees,
                    args.seed, overwrite=args.overwrite)
    print(f"{args.output}: pixels per class {counts}")


if __name__ == "__main__":
    main()
