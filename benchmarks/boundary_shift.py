"""Boundary shift between two groups of classes: does one grow into the other on a map?

A pixel on the boundary between a forest and a field mixes both covers; a classifier of the centre pixel alone
(the random forest of ``rf_map.py``) puts the boundary where the pixel's own spectrum changes. A patch classifier
also sees the neighbours, and can move the boundary by a pixel or two into one of the covers. This script counts,
for each map, the pixels of group A that the reference map calls group B and the reverse; their difference (the
net) is the area by which A has grown into B on the map relative to the reference. With ``--spectral`` and
``--training`` it also says, for the pixels that each later map moves between the groups relative to the first
map, which class's training-polygon median spectrum (z-scored bands) they lie nearest to: the pixel's own
spectral evidence (docs/benchmarks.md, "Forest edges that grow into fields").

    .venv/bin/python benchmarks/boundary_shift.py --reference rf.tif --group-a 4 --group-b 5 6 \\
        --map default=map_default.tif --map edge=map_edge.tif \\
        --spectral $BDGF_BENCH_DATA/s2_delmarva/s2_B*.tif \\
        --training $BDGF_BENCH_DATA/s2_delmarva/training_polygons.gpkg --class-field class_id
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import rasterio

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.data.grid import Modality, RasterStack  # noqa: E402
from engine.data.labels import read_polygons  # noqa: E402


def shift_counts(classes: np.ndarray, reference: np.ndarray, group_a: list[int], group_b: list[int]
                 ) -> tuple[int, int]:
    """``(A on the map where the reference says B, B on the map where the reference says A)``, pixels; both
    arrays ``(H, W)`` of class values on the same grid."""
    in_a, in_b = np.isin(classes, group_a), np.isin(classes, group_b)
    return int((in_a & np.isin(reference, group_b)).sum()), int((in_b & np.isin(reference, group_a)).sum())


def nearest_median_class(z: np.ndarray, medians: dict[int, np.ndarray]) -> np.ndarray:
    """Class value whose median spectrum lies nearest (Euclidean, z-scores) to each column of ``z`` ``(C, N)``."""
    values = np.array(sorted(medians))
    dist = np.stack([np.linalg.norm(z - medians[v][:, None], axis=0) for v in values])
    return values[dist.argmin(0)]


def scene_zscores(spectral: list[str]) -> tuple[np.ndarray, np.ndarray, object]:
    """The whole scene's spectral bands on the reference grid (coarser bands resampled onto it) in z-scores
    ``(C, H, W)`` float32 (scene mean and standard deviation per band over the valid pixels), the valid mask
    ``(H, W)`` bool (valid in every band) and the grid (``data.grid``)."""
    with RasterStack([Modality(paths=list(spectral), kind="spectral")]) as stack:
        grid = stack.grid
        window = stack.read(0, 0, grid.height, grid.width)
    scene, valid = window.arrays[0], window.valid
    mean = scene[:, valid].mean(1)
    std = scene[:, valid].std(1)
    return ((scene - mean[:, None, None]) / std[:, None, None]).astype(np.float32), valid, grid


def class_medians(spectral: list[str], training: str, class_field: str, classes: list[int]
                  ) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The scene's spectral bands in z-scores ``(C, H, W)`` float32 (:func:`scene_zscores`) and each class's
    median training spectrum in the same z-scores ``{class value: (C,)}``."""
    z, valid, grid = scene_zscores(spectral)
    px = read_polygons(training, class_field, grid)
    ok = valid[px.rows, px.cols]               # the labelled pixels, read with the scene (valid in every band)
    x, values = z[:, px.rows[ok], px.cols[ok]], px.values[ok]
    medians = {c: np.median(x[:, values == c], axis=1) for c in classes if (values == c).any()}
    return z, medians


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--map", action="append", required=True, metavar="NAME=PATH", help="a classified GeoTIFF")
    ap.add_argument("--reference", required=True, help="a map of the same grid to count against (rf_map.py)")
    ap.add_argument("--group-a", type=int, nargs="+", required=True, help="class values of group A (e.g. 4)")
    ap.add_argument("--group-b", type=int, nargs="+", required=True, help="class values of group B (e.g. 5 6)")
    ap.add_argument("--spectral", nargs="+", help="spectral band files (for the spectral evidence)")
    ap.add_argument("--training", help="training polygons (for the class medians)")
    ap.add_argument("--class-field", default="class_id")
    args = ap.parse_args(argv)
    maps = [item.split("=", 1) for item in args.map]
    with rasterio.open(args.reference) as src:
        reference = src.read(1)
    loaded = {}
    print("| map | A where the reference says B, px | B where the reference says A, px | net growth of A into B, px |")
    print("|---|---|---|---|")
    for name, path in maps:
        with rasterio.open(path) as src:
            loaded[name] = src.read(1)
        if loaded[name].shape != reference.shape:
            sys.exit(f"{path} is {loaded[name].shape}, the reference {reference.shape}: give maps of one grid")
        a_in_b, b_in_a = shift_counts(loaded[name], reference, args.group_a, args.group_b)
        print(f"| {name} | {a_in_b} | {b_in_a} | {a_in_b - b_in_a} |")
    if args.spectral and args.training and len(maps) > 1:
        classes = sorted(set(args.group_a) | set(args.group_b))
        z, medians = class_medians(args.spectral, args.training, args.class_field, classes)
        first = loaded[maps[0][0]]
        print(f"\nPixels moved relative to {maps[0][0]}, share nearest to each class's median spectrum "
              f"({', '.join(map(str, sorted(medians)))}):")
        for name, _ in maps[1:]:
            for label, src_g, dst_g in (("A -> B", args.group_a, args.group_b), ("B -> A", args.group_b, args.group_a)):
                moved = np.isin(first, src_g) & np.isin(loaded[name], dst_g)
                near = nearest_median_class(z[:, moved], medians)
                shares = ", ".join(f"{(near == c).mean():.2f}" for c in sorted(medians)) if moved.any() else "-"
                print(f"  {name} {label}: {int(moved.sum())} px; {shares}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
