"""Side-by-side panels of classification maps: the same grid windows of each map, in the maps' own colour tables.

For looking at what a recipe changes where cross-validation does not look (docs/benchmarks.md, "Landscape context
as an auxiliary input"). Each row of the PNG is one window, each column one map; pixels are drawn at ``--scale``
screen pixels each (nearest neighbour), nodata (0) white, with a white gutter between panels.

    .venv/bin/python benchmarks/map_panels.py --map default.tif --map ctx.tif \\
        --window 0 650 0 650 --window 900 1400 900 1400 --output docs/images/delmarva_context.png

Refuses to replace an existing PNG unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import rasterio
from PIL import Image


def colour_panel(path: str, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """uint8 ``(h, w, 3)`` RGB of grid rows ``rows`` and columns ``cols`` (half-open) of a classification GeoTIFF,
    coloured by its colour table (nodata 0 and classes without a colour: white).

    Raises:
        SystemExit: a map without a colour table (not written by ``engine classify``).
    """
    with rasterio.open(path) as src:
        try:
            table = src.colormap(1)
        except ValueError:
            sys.exit(f"{path} has no colour table: give classification GeoTIFFs written by engine classify")
        classes = src.read(1, window=((rows[0], rows[1]), (cols[0], cols[1])))
    lut = np.full((65536, 3), 255, np.uint8)
    for value, rgba in table.items():
        if value != 0:
            lut[value] = rgba[:3]
    return lut[classes]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--map", action="append", required=True, help="classification GeoTIFF (repeat: one column each)")
    ap.add_argument("--window", action="append", nargs=4, type=int, required=True,
                    metavar=("ROW0", "ROW1", "COL0", "COL1"), help="grid window, half-open (repeat: one row each)")
    ap.add_argument("--scale", type=int, default=1, help="screen pixels per map pixel")
    ap.add_argument("--gutter", type=int, default=10, help="white pixels between panels")
    ap.add_argument("--output", required=True, help="PNG to write")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    if os.path.exists(args.output) and not args.overwrite:
        sys.exit(f"{args.output} exists: give another --output or --overwrite")
    rows = [[colour_panel(m, (w[0], w[1]), (w[2], w[3])) for m in args.map] for w in args.window]
    height = sum(max(p.shape[0] for p in row) for row in rows) + args.gutter * (len(rows) - 1)
    width = max(sum(p.shape[1] for p in row) + args.gutter * (len(row) - 1) for row in rows)
    canvas = np.full((height, width, 3), 255, np.uint8)
    y = 0
    for row in rows:
        x = 0
        for panel in row:
            canvas[y:y + panel.shape[0], x:x + panel.shape[1]] = panel
            x += panel.shape[1] + args.gutter
        y += max(p.shape[0] for p in row) + args.gutter
    image = Image.fromarray(canvas)
    if args.scale > 1:
        image = image.resize((width * args.scale, height * args.scale), Image.NEAREST)
    tmp = args.output + ".part.png"
    image.save(tmp)
    os.replace(tmp, args.output)
    print(f"{args.output}: {len(args.window)} windows x {len(args.map)} maps, {image.width} x {image.height} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
