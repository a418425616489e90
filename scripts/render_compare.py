"""Render two classified rasters of the same grid side by side over a window, with the QGIS map renderer.

Each raster is cropped to the window (grid pixels, no resampling) with its ``.qml`` style, rendered by
``scripts/demo.py: render_png`` and the two images are placed side by side under their titles (for before /
after figures in docs/benchmarks.md).

    .venv/bin/python scripts/render_compare.py BEFORE.tif AFTER.tif --extent XMIN YMIN XMAX YMAX \
        --titles "before" "after" --png OUT.png
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def crop(raster: Path, extent: list[float], out: Path) -> None:
    """``raster`` cut to ``extent`` (map units of its CRS) as ``out``, with its ``.qml`` style beside it."""
    import rasterio
    from rasterio.windows import from_bounds

    with rasterio.open(raster) as src:
        win = from_bounds(*extent, transform=src.transform).round_offsets().round_lengths()
        profile = dict(src.profile, width=int(win.width), height=int(win.height),
                       transform=src.window_transform(win))
        profile.pop("blockxsize", None), profile.pop("blockysize", None), profile.pop("tiled", None)
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(src.read(1, window=win), 1)
    shutil.copy(raster.with_suffix(".qml"), out.with_suffix(".qml"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--extent", type=float, nargs=4, required=True, metavar=("XMIN", "YMIN", "XMAX", "YMAX"))
    ap.add_argument("--titles", nargs=2, default=["before", "after"])
    ap.add_argument("--png", type=Path, required=True)
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from demo import render_png
    from qgis.PyQt.QtCore import QPoint
    from qgis.PyQt.QtGui import QColor, QImage, QPainter

    with tempfile.TemporaryDirectory() as tmp:
        images = []
        for i, (raster, title) in enumerate(zip((args.before, args.after), args.titles)):
            cut, png = Path(tmp) / f"cut{i}.tif", Path(tmp) / f"cut{i}.png"
            crop(raster, args.extent, cut)
            render_png(cut, png, title)
            images.append(QImage(str(png)))
        width, height = sum(im.width() for im in images), max(im.height() for im in images)
        out = QImage(width, height, QImage.Format_ARGB32)
        out.fill(QColor("white"))
        painter = QPainter(out)
        x = 0
        for im in images:
            painter.drawImage(QPoint(x, 0), im)
            x += im.width()
        painter.end()
        args.png.parent.mkdir(parents=True, exist_ok=True)
        out.save(str(args.png))
    print(args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
