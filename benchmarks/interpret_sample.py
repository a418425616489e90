"""User's accuracy of one mapped class from a visually interpreted random sample of its pixels.

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
with the unsure pixels as right (an upper bound). Chips are drawn with matplotlib (Debian's python3-matplotlib,
which QGIS's Python bindings depend on).

    python benchmarks/interpret_sample.py draw --map rf=rf.tif --map bdgf=full.tif --class-value 7 \\
        --rgb $BDGF_BENCH_DATA/s2_delmarva/s2_B04.tif $BDGF_BENCH_DATA/s2_delmarva/s2_B03.tif \\
        $BDGF_BENCH_DATA/s2_delmarva/s2_B02.tif --out sample/
    # look at sample/page_*.png, write sample/labels.csv ("id,label")
    python benchmarks/interpret_sample.py score sample/ [more_samples/ ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
from typing import Any

import numpy as np
import rasterio

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


def write_pages(sample: list[dict], rgb_paths: list[str], out: str, scale: float = 2200.0) -> list[str]:
    """True-colour chip pages ``out/page_NN.png`` of ``sample``; band files red, green, blue on the maps' grid,
    reflectance x 10 000 stretched to ``scale`` with gamma 0.8."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    bands = []
    for p in rgb_paths:
        with rasterio.open(p) as ds:
            bands.append(ds.read(1).astype(np.float32))
    rgb = np.clip(np.dstack(bands) / scale, 0, 1) ** 0.8
    r = CHIP_RADIUS
    padded = np.pad(rgb, ((r, r), (r, r), (0, 0)))
    pages = []
    for start in range(0, len(sample), PER_PAGE):
        fig, axes = plt.subplots(4, 5, figsize=(15, 12.5))
        for ax, s in zip(axes.ravel(), sample[start:start + PER_PAGE]):
            ax.imshow(padded[s["row"]:s["row"] + 2 * r + 1, s["col"]:s["col"] + 2 * r + 1], interpolation="nearest")
            ax.add_patch(Rectangle((r - 1.5, r - 1.5), 3, 3, fill=False, ec="magenta", lw=1.2))
            ax.set_title(str(s["id"]), fontsize=10)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        path = os.path.join(out, f"page_{start // PER_PAGE:02d}.png")
        fig.savefig(path, dpi=55)
        plt.close(fig)
        pages.append(path)
    return pages


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
    s = sub.add_parser("score", help="user's accuracy from sample.json and labels.csv")
    s.add_argument("dirs", nargs="+", help="folders of draw (sample.json, labels.csv); several are pooled by map name")
    s.add_argument("--split-x", type=float, help="also score the pixels west and east of this easting (map CRS)")
    args = ap.parse_args(argv)
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
