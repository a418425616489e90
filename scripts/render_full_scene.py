"""Classify the full shared Delmarva scene with a trained model at every STRIDE-th pixel and render it like the demo.

The diffusion features and patches are computed at the model's full 10 m resolution (``predict.classify_window``
on 256 x 256 windows); only every STRIDE-th row and column is classified, so the GeoTIFF is at STRIDE x 10 m
(a decimated reference grid, STRIDE² fewer network calls). The PNG is rendered by the QGIS map renderer with the
model's class style and legend (``scripts/demo.py: render_png``).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/render_full_scene.py MODEL.safetensors OUT.tif \
        [--stride 3] [--png docs/images/delmarva_full_scene.png]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("output", help="GeoTIFF to write (with a .qml style beside it)")
    ap.add_argument("--stride", type=int, default=3)
    ap.add_argument("--scene", default=None,
                    help="full-scene folder (default: $BDGF_BENCH_DATA/s2_delmarva, benchmarks/bench_data.py)")
    ap.add_argument("--png", help="PNG to render with QGIS")
    args = ap.parse_args()
    import numpy as np
    import rasterio

    from engine.data.context import context_inputs
    from engine.data.grid import Modality, RasterStack
    from engine.data.windows import iter_windows
    from engine.io.artifact import load_model
    from engine.io.rasters import write_qml
    from engine.models.classifier import TrainedModel
    from engine.predict import classify_window

    tensors, meta = load_model(args.model, device="cpu")
    model = TrainedModel.from_tensors(tensors, meta, "cpu")
    values = np.array([int(c.value) for c in model.classes])
    s, t0 = args.stride, time.time()
    from bench_data import delmarva_scene
    scene = args.scene or str(delmarva_scene())
    spectral = Modality(sorted(glob.glob(os.path.join(scene, "s2_B*.tif"))), "spectral")
    # a model with landscape context gets its bands derived over the scene, as classify does
    with context_inputs(spectral, [], meta.context) as (grid, aux), RasterStack([spectral, *aux], grid) as stack:
        H, W = stack.grid.height, stack.grid.width
        out = np.zeros(((H + s - 1) // s, (W + s - 1) // s), np.uint8)
        windows = list(iter_windows(H, W, 256))
        for i, w in enumerate(windows):
            rr = (np.arange(w.row_off, w.row_off + w.height) % s) == 0
            cc = (np.arange(w.col_off, w.col_off + w.width) % s) == 0
            cls, _, _ = classify_window(model, stack, w, 1024, rr[:, None] & cc[None, :])
            sub = cls[rr][:, cc]
            r0, c0 = (w.row_off + s - 1) // s, (w.col_off + s - 1) // s
            out[r0:r0 + sub.shape[0], c0:c0 + sub.shape[1]] = np.where(sub >= 0, values[np.maximum(sub, 0)], 0)
            print(f"window {i + 1}/{len(windows)}, {time.time() - t0:.0f} s", flush=True)
        profile = dict(driver="GTiff", width=out.shape[1], height=out.shape[0], count=1, dtype="uint8",
                       crs=stack.grid.crs, transform=stack.grid.transform * rasterio.Affine.scale(s), nodata=0,
                       compress="deflate")
    with rasterio.open(args.output, "w", **profile) as dst:
        dst.write(out, 1)
    write_qml(os.path.splitext(args.output)[0] + ".qml", model.classes)
    if args.png:
        from demo import render_png

        render_png(Path(args.output), Path(args.png),
                   f"BDGF (fast{', landscape context' if meta.context else ''}): full Delmarva scene, {10 * s} m "
                   f"(every {s}. pixel of the 10 m grid)")
    print(f"done in {time.time() - t0:.0f} s: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
