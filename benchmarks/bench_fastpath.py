"""Eager reference vs fast inference path of classify, on the same window in one process.

For one window of a scene (default: a 256 x 256 px window of the embedded Delmarva crop) the script runs
``predict.classify_window`` (reading, diffusion features, patches, group network: everything but writing)
with the eager model and with the fast path (``models.inference.InferenceBackend``, default ``auto``),
alternating ``--repeats`` times, and prints the best px/s of each, their ratio, the share of pixels with the
same class and the maximum difference of the class probabilities. The eager and fast runs share the process
and its threads, so the ratio holds on a loaded machine too; the absolute px/s do not.

``--whole`` adds the whole scene (the embedded crop: 768 x 768 px), tile by tile of 256 px, eager then fast for
each tile: both px/s, their ratio and the agreement.

    nice -n 10 .venv/bin/python benchmarks/bench_fastpath.py --model MODEL.safetensors [--size 256] [--whole] \
        [--compile on]

``--compile on`` adds ``torch.compile`` of the group network to the fast path (classify does so from 4 Mpx on);
``--coarse-to-fine off`` classifies every pixel with the network (classify's default is on:
``predict.coarse_to_fine`` interpolates pixels whose lattice neighbours agree with confidence >= 0.97, >= 0.9
for adjacent neighbours).

Without ``--model``, a ``fast`` model is trained on the embedded crop first (pretrain 20 iterations, train 4
epochs; the network's cost does not depend on these budgets).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CROP = ROOT / "resources" / "sample_data" / "delmarva_s2"


def train_model(workdir: str) -> str:
    from engine import api
    from engine.data.grid import Modality

    spectral = Modality(sorted(str(p) for p in CROP.glob("s2_B*.tif")), "spectral")
    pre, model = os.path.join(workdir, "pre.safetensors"), os.path.join(workdir, "model.safetensors")
    api.pretrain(spectral, [], pre, iterations=20, device="cpu", overwrite=True)
    api.train(spectral, [], str(CROP / "training_polygons.gpkg"), "class_id", model, pretrained=pre, epochs=4,
              device="cpu", overwrite=True)
    return model


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="classifier model file (default: train a fast one on the crop)")
    ap.add_argument("--scene", default=str(CROP), help="folder of s2_B*.tif bands (default: the embedded crop)")
    ap.add_argument("--size", type=int, default=256, help="window side in pixels (default 256)")
    ap.add_argument("--row", type=int, default=256, help="window top row (default 256)")
    ap.add_argument("--col", type=int, default=256, help="window left column (default 256)")
    ap.add_argument("--backend", default="auto", choices=("auto", "openvino", "torch"))
    ap.add_argument("--precision", default="f32", choices=("f32", "bf16"),
                    help="OpenVINO precision (of the encoder; of the group network too with --network openvino)")
    ap.add_argument("--network", default="torch", choices=("torch", "openvino"),
                    help="what runs the group network under the OpenVINO backend (default torch, as classify)")
    ap.add_argument("--compile", default="off", choices=("off", "on"),
                    help="torch.compile the group network of the fast path (classify compiles from 4 Mpx on)")
    ap.add_argument("--coarse-to-fine", default="on", choices=("on", "off"),
                    help="coarse-to-fine classification in the fast path (default on, as classify)")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--whole", action="store_true", help="also compare eager and fast on the whole scene")
    args = ap.parse_args()

    from engine.data.grid import Modality, RasterStack
    from engine.data.windows import Window, iter_windows
    from engine.io.artifact import load_model
    from engine.models.classifier import TrainedModel
    from engine.models.inference import InferenceBackend
    from engine.predict import classify_window

    model = args.model or train_model(tempfile.mkdtemp(prefix="bench_fastpath_"))
    tensors, meta = load_model(model, device="cpu")
    tm = TrainedModel.from_tensors(tensors, meta, "cpu")
    stack = RasterStack([Modality(sorted(str(p) for p in Path(args.scene).glob("s2_B*.tif")), "spectral")])
    t_compile, fast = timed(lambda: InferenceBackend(tm, args.backend, args.precision, network=args.network,
                                                     compile_mode=args.compile, batch_size=args.batch_size,
                                                     coarse_to_fine=args.coarse_to_fine == "on"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fast path: {fast.name} {fast.precision}, "
          f"group network in {fast.network}{' (compiled)' if fast.compiled else ''} {fast.compile_note}"
          f"{', coarse-to-fine' if fast.coarse_to_fine else ''} "
          f"(prepared in {t_compile:.1f} s); window {args.size} x {args.size} px at row {args.row}, col "
          f"{args.col} of {args.scene}", flush=True)
    win = Window(args.row, args.col, args.size, args.size)
    best = {"eager": float("inf"), "fast": float("inf")}
    outs = {}
    for rep in range(args.repeats):
        for name, backend in (("eager", None), ("fast", fast)):
            t, outs[name] = timed(lambda: classify_window(tm, stack, win, args.batch_size, backend=backend))
            best[name] = min(best[name], t)
            print(f"  run {rep + 1} {name:5s}: {args.size ** 2 / t:8.0f} px/s ({t:.1f} s)", flush=True)
    n = args.size ** 2
    agree = float(np.mean(outs["eager"][0] == outs["fast"][0]))
    diff = float(np.abs(outs["eager"][2] - outs["fast"][2]).max())
    ran = fast.patches_run / args.repeats
    print(f"fast path: the network ran on {ran:.0f} px per run ({100 * ran / n:.1f} % of the window's pixels, halo "
          f"included)")
    print(f"eager {n / best['eager']:.0f} px/s | fast {n / best['fast']:.0f} px/s | ratio "
          f"{best['eager'] / best['fast']:.2f} | same class {100 * agree:.3f} % | max probability difference "
          f"{diff:.2e}")
    if args.whole:
        same, total, dmax, t_eager, t_fast, near = 0, 0, 0.0, 0.0, 0.0, 0
        for t in iter_windows(stack.grid.height, stack.grid.width, 256):
            dt, a = timed(lambda: classify_window(tm, stack, t, args.batch_size))
            t_eager += dt
            dt, b = timed(lambda: classify_window(tm, stack, t, args.batch_size, backend=fast))
            t_fast += dt
            same += int((a[0] == b[0]).sum())
            total += a[0].size
            diff = np.abs(a[2] - b[2]).max(0)
            dmax, near = max(dmax, float(diff.max())), near + int((diff <= 0.01).sum())
            print(f"  whole scene: {total} px compared, same class {100 * same / total:.3f} %", flush=True)
        print(f"whole scene {stack.grid.width} x {stack.grid.height} px in 256-px tiles: eager {total / t_eager:.0f} "
              f"px/s ({t_eager:.0f} s) | fast {total / t_fast:.0f} px/s ({t_fast:.0f} s) | ratio "
              f"{t_eager / t_fast:.2f} | same class {100 * same / total:.4f} % ({total - same} px differ) | "
              f"probabilities within 0.01: {100 * near / total:.3f} % of px, max difference {dmax:.2e}")
    stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
