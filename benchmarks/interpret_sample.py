"""Visually interpreted reference samples of a map: a mapped class's user's accuracy, or a whole sample design.

Without a reference map, the way to learn how many of a map's "built-up" pixels are built-up is to look at a
random sample of them. ``draw`` takes ``--per-map`` pixels at random from the class of each map (simple random
sampling within the mapped class, the stratum of a user's accuracy), pools and shuffles them, and writes pages of
true-colour chips (41 x 41 px around each pixel, the pixel framed in magenta) that carry only a number: the
interpreter does not see which map drew a pixel. The interpreter writes one label per number:

- ``B``: the class is right (for built-up: buildings, paved lots, town streets);
- ``R``: a road or track outside a settlement (counted both ways in the table);
- ``N``: another land cover (beach, surf, field edge, bare soil, marsh, forest);
- ``?``: cannot be told at 10 m.

``score`` prints each map's user's accuracy with a 95 % Wilson interval, strict (``B`` only), with roads, and
with the unsure pixels as right (an upper bound).

For the whole map (every class, stratified OA, producer's accuracies) the design is the engine's:
``engine sampledesign`` writes the points, ``chips`` draws them (true and false colour, shuffled, without their map
class), the interpreter writes ``sample_id,label`` codes, ``reference`` writes them into a copy of the design layer
and ``engine assess --reference`` gives the stratified estimates. Chips are drawn with matplotlib (Debian's
python3-matplotlib, which QGIS's Python bindings depend on).

    python benchmarks/interpret_sample.py draw --map rf=rf.tif --map bdgf=full.tif --class-value 7 \\
        --rgb $BDGF_BENCH_DATA/s2_delmarva/s2_B04.tif $BDGF_BENCH_DATA/s2_delmarva/s2_B03.tif \\
        $BDGF_BENCH_DATA/s2_delmarva/s2_B02.tif --out sample/
    # look at sample/page_*.png, write sample/labels.csv ("id,label")
    python benchmarks/interpret_sample.py score sample/ [more_samples/ ...]
    python benchmarks/interpret_sample.py chips --points design.gpkg --rgb B04.tif B03.tif B02.tif --nir B08.tif \\
        --out chips/
    python benchmarks/interpret_sample.py reference --points design.gpkg --labels labels.csv \\
        --codes W=1,M=2,S=3,F=4,C=5,T=6,B=7 --output reference.gpkg
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from typing import Any

import numpy as np
import rasterio

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHIP_RADIUS = 20
PER_PAGE = 20
LABELS = ("B", "R", "N", "?")


def draw_sample(maps: dict[str, str], class_value: int, per_map: int, seed: int) -> list[dict]:
    """Pixels drawn at random from ``class_value`` of each map (``{name: GeoTIFF path}``, one grid), pooled.

    Returns a shuffled list of ``{"id", "row", "col", "x", "y", "maps"}``; ``x, y`` are the pixel centre in the
    maps' CRS (metres), ``maps`` the names of the maps that drew it.
    """
    rng = np.random.default_rng(seed)
    drawn: dict[tuple[int, int], list[str]] = {}
    transform = None
    for name, path in maps.items():
        with rasterio.open(path) as ds:
            rows, cols = np.nonzero(ds.read(1) == class_value)
            transform = ds.transform
        if len(rows) < per_map:
            raise SystemExit(f"{path}: only {len(rows)} pixels of class {class_value}, {per_map} asked")
        for i in rng.choice(len(rows), per_map, replace=False):
            drawn.setdefault((int(rows[i]), int(cols[i])), []).append(name)
    keys = list(drawn)
    rng.shuffle(keys)
    out = []
    for n, (r, c) in enumerate(keys):
        x, y = transform * (c + 0.5, r + 0.5)
        out.append({"id": n, "row": r, "col": c, "x": round(x, 2), "y": round(y, 2), "maps": drawn[(r, c)]})
    return out


def write_pages(sample: list[dict], rgb_paths: list[str], out: str, scale: float = 2200.0,
                false_colour: list[str] | None = None) -> list[str]:
    """Chip pages ``out/page_NN.png`` of ``sample`` (dicts with ``id``, ``row``, ``col`` on the bands' grid): true
    colour from the red, green, blue band files (reflectance x 10 000 stretched to ``scale``, gamma 0.8), and with
    ``false_colour`` (NIR, red, green files) a false-colour chip beside each (NIR stretched to 4 000)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    r = CHIP_RADIUS
    views = [np.pad(_composite(rgb_paths, scale), ((r, r), (r, r), (0, 0)))]
    if false_colour:
        views.append(np.pad(_composite(false_colour, 4000.0), ((r, r), (r, r), (0, 0))))
    per_page = PER_PAGE if len(views) == 1 else PER_PAGE // 2 + 2
    pages = []
    for start in range(0, len(sample), per_page):
        fig, axes = plt.subplots(4, 5 if len(views) == 1 else 6, figsize=(15 if len(views) == 1 else 18, 12.5))
        cells = iter(axes.ravel())
        for s in sample[start:start + per_page]:
            for v, view in enumerate(views):
                ax = next(cells)
                ax.imshow(view[s["row"]:s["row"] + 2 * r + 1, s["col"]:s["col"] + 2 * r + 1], interpolation="nearest")
                ax.add_patch(Rectangle((r - 1.5, r - 1.5), 3, 3, fill=False, ec="magenta", lw=1.2))
                ax.set_title(str(s["id"]) if v == 0 else f"{s['id']} (NIR)", fontsize=10)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        path = os.path.join(out, f"page_{start // per_page:02d}.png")
        fig.savefig(path, dpi=55)
        plt.close(fig)
        pages.append(path)
    return pages


def _composite(paths: list[str], scale: float) -> np.ndarray:
    bands = []
    for p in paths:
        with rasterio.open(p) as ds:
            bands.append(ds.read(1).astype(np.float32))
    return np.clip(np.dstack(bands) / scale, 0, 1) ** 0.8


def design_points(points: str, grid_raster: str, seed: int) -> list[dict]:
    """The points of an ``engine sampledesign`` layer as ``{"id": sample_id, "row", "col", "x", "y"}`` on the grid
    of ``grid_raster`` (coordinates in its CRS), shuffled (seeded) so that the pages do not follow the strata."""
    from engine.io.points import read_points

    with rasterio.open(grid_raster) as ds:
        inverse, crs_wkt = ~ds.transform, ds.crs.to_wkt()
    got = read_points(points, ["sample_id"], crs_wkt=crs_wkt)
    out = []
    for sid, x, y in zip(got["sample_id"], got["x"], got["y"]):
        col, row = inverse * (x, y)
        out.append({"id": int(sid), "row": int(row), "col": int(col), "x": x, "y": y})
    np.random.default_rng(seed).shuffle(out)
    return out


def write_reference(points: str, labels: dict[int, str], codes: dict[str, int], output: str,
                    overwrite: bool = False) -> int:
    """Copy of the design layer ``points`` with its reference field set from ``labels`` (``{sample_id: code}``)
    through ``codes`` (``{code: class value}``), written atomically; returns the number of points written.

    Raises:
        SystemExit: a point without a label or a label without a code. OutputExistsError: ``output`` exists and
            ``overwrite`` is false.
    """
    import fiona

    from engine.contract import REFERENCE_FIELD
    from engine.io.points import read_points, write_points

    with fiona.open(points) as src:                   # the layer's own fields and CRS, kept in the copy
        fields, crs_wkt = list(src.schema["properties"]), src.crs_wkt
    got = read_points(points, fields)
    missing = [sid for sid in got["sample_id"] if sid not in labels]
    unknown = sorted({v for v in labels.values() if v not in codes})
    if missing or unknown:
        raise SystemExit(f"labels: {len(missing)} points without a label (first {missing[:5]}), codes without a "
                         f"class {unknown}; give one of {', '.join(codes)} per sample_id")
    records = [{f: got[f][i] for f in fields} for i in range(len(got["x"]))]
    for rec in records:
        rec[REFERENCE_FIELD] = codes[labels[rec["sample_id"]]]
    write_points(output, crs_wkt, got["x"], got["y"], list(got["field_types"].items()), records,
                 overwrite=overwrite)
    return len(records)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``k / n``."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def score(sample: list[dict], labels: dict[Any, str]) -> list[dict]:
    """Per map: counts of each label and the user's accuracy (strict, with roads, with unsure) with intervals.

    Raises:
        SystemExit: a sample pixel without a label, or a label not in ``B R N ?``.
    """
    missing = [s["id"] for s in sample if s["id"] not in labels]
    bad = sorted({v for v in labels.values() if v not in LABELS})
    if missing or bad:
        raise SystemExit(f"labels: {len(missing)} sample pixels without a label (first {missing[:5]}), "
                         f"unknown labels {bad}; use one of {' '.join(LABELS)} per id")
    rows = []
    for name in sorted({m for s in sample for m in s["maps"]}):
        got = [labels[s["id"]] for s in sample if name in s["maps"]]
        n = len(got)
        counts = {k: got.count(k) for k in LABELS}
        row = {"map": name, "n": n, **counts}
        for key, right in (("strict", "B"), ("with_roads", "BR"), ("with_unsure", "BR?")):
            k = sum(counts[c] for c in right)
            row[key] = (k / n, *wilson(k, n))
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("draw", help="draw the sample and write chip pages")
    d.add_argument("--map", action="append", required=True, metavar="NAME=PATH", help="a classified GeoTIFF")
    d.add_argument("--class-value", type=int, required=True, help="the class's pixel value in every map")
    d.add_argument("--per-map", type=int, default=50)
    d.add_argument("--seed", type=int, default=2026)
    d.add_argument("--rgb", nargs=3, required=True, help="red, green, blue band files on the maps' grid")
    d.add_argument("--out", required=True, help="folder for sample.json and the pages")
    c = sub.add_parser("chips", help="chip pages of the points of an `engine sampledesign` layer")
    c.add_argument("--points", required=True, help="the design's point layer")
    c.add_argument("--rgb", nargs=3, required=True, help="red, green, blue band files")
    c.add_argument("--nir", help="near-infrared band file: a false-colour chip (NIR, red, green) beside each")
    c.add_argument("--seed", type=int, default=0, help="page order")
    c.add_argument("--out", required=True)
    f = sub.add_parser("reference", help="write the interpreter's labels into a copy of the design layer")
    f.add_argument("--points", required=True)
    f.add_argument("--labels", required=True, help="CSV with sample_id,label")
    f.add_argument("--codes", required=True, help="label codes as CODE=VALUE,..., e.g. W=1,M=2")
    f.add_argument("--output", required=True, help="labelled point layer for `engine assess --reference`")
    f.add_argument("--overwrite", action="store_true", help="replace an existing output")
    s = sub.add_parser("score", help="user's accuracy from sample.json and labels.csv")
    s.add_argument("dirs", nargs="+", help="folders of draw (sample.json, labels.csv); several are pooled by map name")
    s.add_argument("--split-x", type=float, help="also score the pixels west and east of this easting (map CRS)")
    args = ap.parse_args(argv)
    if args.cmd == "chips":
        os.makedirs(args.out, exist_ok=True)
        pts = design_points(args.points, args.rgb[0], args.seed)
        pages = write_pages(pts, args.rgb, args.out, false_colour=[args.nir, args.rgb[0], args.rgb[1]]
                            if args.nir else None)
        print(f"{len(pts)} points on {len(pages)} pages in {args.out}; write a CSV sample_id,label")
        return
    if args.cmd == "reference":
        codes = {k: int(v) for k, v in (kv.split("=") for kv in args.codes.split(","))}
        with open(args.labels) as fh:
            labels = {int(r["sample_id"]): r["label"].strip() for r in csv.DictReader(fh)}
        print(f"{args.output}: {write_reference(args.points, labels, codes, args.output, args.overwrite)} points")
        return
    if args.cmd == "draw":
        maps = dict(m.split("=", 1) for m in args.map)
        os.makedirs(args.out, exist_ok=True)
        sample = draw_sample(maps, args.class_value, args.per_map, args.seed)
        with open(os.path.join(args.out, "sample.json"), "w") as f:   # one pixel per line
            f.write("[\n" + ",\n".join(json.dumps(s) for s in sample) + "\n]\n")
        pages = write_pages(sample, args.rgb, args.out)
        print(f"{len(sample)} pixels on {len(pages)} pages in {args.out}; write {args.out}/labels.csv (id,label)")
        return
    sample, labels = [], {}
    for k, folder in enumerate(args.dirs):                   # ids made unique across the pooled folders
        with open(os.path.join(folder, "sample.json")) as f:
            sample += [{**s, "id": (k, s["id"])} for s in json.load(f)]
        with open(os.path.join(folder, "labels.csv")) as f:
            labels.update({(k, int(r["id"])): r["label"].strip() for r in csv.DictReader(f)})
    parts = [("", sample)]
    if args.split_x is not None:
        parts += [(f" west of {args.split_x:g}", [p for p in sample if p["x"] < args.split_x]),
                  (f" east of {args.split_x:g}", [p for p in sample if p["x"] >= args.split_x])]
    print("| map | n | B | R | N | ? | UA strict | UA with roads | UA with unsure |")
    print("|---|---|---|---|---|---|---|---|---|")
    for where, part in parts:
        for r in score(part, labels):
            cells = [f"{v[0]:.2f} ({v[1]:.2f}-{v[2]:.2f})" for v in (r["strict"], r["with_roads"], r["with_unsure"])]
            print(f"| {r['map']}{where} | {r['n']} | {r['B']} | {r['R']} | {r['N']} | {r['?']} | "
                  + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
