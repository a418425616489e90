"""Rebuild the embedded sample data in resources/sample_data from the full scenes (maintainers only).

Usage: ``python scripts/make_sample_data.py [DATA]``; DATA is the benchmark data folder (default
``$BDGF_BENCH_DATA``, benchmarks/README.md "Data").

The crops are committed; users never run this. Delmarva: rows 192-960, columns 480-1248 of the 10 m grid
(768 x 768 px, all seven classes), every band cut at its native 10/20/60 m resolution over the same extent,
pixel values unchanged; the training polygons that intersect the crop, with the GeoPackage's default style.
BigEarthNet: the Sentinel-1 + Sentinel-2 pairs 87_48 and 69_24 and their polygons, copied unchanged.
"""

import shutil
import sqlite3
import sys
from pathlib import Path

import rasterio
from rasterio.windows import from_bounds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_data import data_root  # noqa: E402

SHARED = Path(sys.argv[1]) if len(sys.argv) > 1 else data_root()
OUT = ROOT / "resources" / "sample_data"


def crop_delmarva() -> None:
    src_dir = SHARED / "s2_delmarva"
    dst_dir = OUT / "delmarva_s2"
    dst_dir.mkdir(parents=True, exist_ok=True)
    with rasterio.open(src_dir / "s2_B02.tif") as ref:
        t = ref.transform
        row0, row1, col0, col1 = 192, 960, 480, 1248
        left, top = t * (col0, row0)
        right, bottom = t * (col1, row1)
    for src in sorted(src_dir.glob("s2_B*.tif")):
        with rasterio.open(src) as ds:
            win = from_bounds(left, bottom, right, top, ds.transform).round_offsets().round_lengths()
            data = ds.read(window=win)
            profile = ds.profile.copy()
            profile.update(width=win.width, height=win.height, transform=ds.window_transform(win),
                           tiled=True, blockxsize=128, blockysize=128, compress="deflate", predictor=2)
            with rasterio.open(dst_dir / src.name, "w", **profile) as dst:
                dst.write(data)
                for i in range(1, ds.count + 1):
                    dst.set_band_description(i, ds.descriptions[i - 1] or src.stem.split("_")[-1])
    gpkg = dst_dir / "training_polygons.gpkg"
    shutil.copy(src_dir / "training_polygons.gpkg", gpkg)
    shutil.copy(src_dir / "training_polygons.qml", dst_dir / "training_polygons.qml")
    con = sqlite3.connect(gpkg)
    con.execute(
        "DELETE FROM training WHERE fid NOT IN (SELECT id FROM rtree_training_geom "
        "WHERE maxx > ? AND minx < ? AND maxy > ? AND miny < ?)", (left, right, bottom, top))
    con.commit()
    con.execute("VACUUM")
    print("Delmarva polygons kept:", con.execute("SELECT class_id, count(*) FROM training GROUP BY 1").fetchall())
    con.close()


def copy_bigearthnet() -> None:
    src = SHARED / "bigearthnet_mm"
    dst = OUT / "bigearthnet_mm"
    dst.mkdir(parents=True, exist_ok=True)
    for patch in ("87_48", "69_24"):
        for folder in ("BigEarthNet-S1-Example", "BigEarthNet-S2-Example"):
            for d in (src / folder).iterdir():
                if d.name.endswith(patch):
                    shutil.copytree(d, dst / folder / d.name, dirs_exist_ok=True)
        for ext in ("gpkg", "qml"):
            shutil.copy(src / f"training_polygons_{patch}.{ext}", dst / f"training_polygons_{patch}.{ext}")
    shutil.copy(src / "SOURCE.md", dst / "SOURCE.md")


if __name__ == "__main__":
    crop_delmarva()
    copy_bigearthnet()
