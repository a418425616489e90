"""How many pixels wide is a land-cover boundary in each spectral band and in the diffusion features?

Finds straight step edges in a window of the scene: transects of 20 pixels along a row or a column whose two
ends are each homogeneous (every pixel within a quarter of the step from its side's mean, z-scores of the
model's inputs) and whose spectra change by at least ``--min-step`` across the middle. Each transect is aligned
at the sub-pixel position where it crosses half-way (all bands together), and for every band, and for the
diffusion features as a whole, the width W of the linear ramp ``clip(x / W + 0.5, 0, 1)`` that fits the aligned
transects best (least squares) is printed. A band recorded at a coarser resolution than the grid (Sentinel-2's
20 m and 60 m bands on a 10 m grid) has a wider ramp; the diffusion features, from a U-Net that sees ±13 px,
change over many pixels. The boundary mixing of training (``TrainingConfig.mix_edge_transition``,
``engine.train.edge_weights``) draws the features' ramp with this width (docs/benchmarks.md, "How wide a
boundary is in the diffusion features").

    .venv/bin/python benchmarks/edge_profile.py --model m.safetensors \\
        --spectral $BDGF_BENCH_DATA/s2_delmarva/s2_B*.tif --window 0 0 400 400
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def step_transects(x: np.ndarray, valid: np.ndarray, half: int = 10, min_step: float = 2.5
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Straight step edges along the rows of ``x (C, H, W)`` (z-scores; transpose for the columns).

    Returns ``(segments (N, C, 2·half), starts (N, 2) int: row, first column)``: each segment's first and last
    4 pixels are its two sides, whose means differ by at least ``min_step`` (Euclidean, over ``C``); every pixel
    of a side's ``half - 1`` outer pixels lies within a quarter of the step from that side's mean, and the
    all-channel profile crosses half-way between the two middle pixels or next to them. ``valid (H, W)``: every
    pixel of a segment must be valid."""
    n = 2 * half
    if x.shape[2] < n:
        return np.zeros((0, x.shape[0], n), x.dtype), np.zeros((0, 2), int)
    seg = np.lib.stride_tricks.sliding_window_view(x, n, axis=2)            # (C, H, W - n + 1, n)
    ok = np.lib.stride_tricks.sliding_window_view(valid, n, axis=1).all(-1)   # (H, W - n + 1)
    a, b = seg[..., :4].mean(-1), seg[..., -4:].mean(-1)                     # (C, H, W')
    d = b - a
    step = np.sqrt((d ** 2).sum(0))
    ok &= step >= min_step
    left = np.sqrt(((seg[..., :half - 1] - a[..., None]) ** 2).sum(0)).max(-1)
    right = np.sqrt(((seg[..., half + 1:] - b[..., None]) ** 2).sum(0)).max(-1)
    ok &= (left <= 0.25 * step) & (right <= 0.25 * step)
    rows, cols = np.nonzero(ok)
    segments = np.moveaxis(seg[:, rows, cols], 0, 1)                        # (N, C, n)
    alpha = ramp_position(segments)
    keep = (alpha[:, half - 2] < 0.5) & (alpha[:, half + 1] > 0.5)
    return segments[keep], np.stack([rows[keep], cols[keep]], 1)


def ramp_position(segments: np.ndarray) -> np.ndarray:
    """``(N, n)``: each pixel's position between its segment's first-4 mean (0) and last-4 mean (1), the
    projection onto the line between them over every channel of ``segments (N, C, n)``."""
    a, b = segments[..., :4].mean(-1, keepdims=True), segments[..., -4:].mean(-1, keepdims=True)
    d = b - a
    return ((segments - a) * d).sum(1) / np.maximum((d ** 2).sum(1), 1e-12)


def crossings(alpha: np.ndarray, half: int) -> np.ndarray:
    """``(N,)`` sub-pixel offset (pixels from the segment's pixel ``half - 1``) where each row of ``alpha (N, n)``
    first crosses 0.5 next to its middle, by linear interpolation."""
    out = np.zeros(len(alpha))
    for i, al in enumerate(alpha):
        j = np.nonzero((al[:-1] < 0.5) & (al[1:] >= 0.5))[0]
        j = j[np.argmin(np.abs(j - (half - 1)))]
        out[i] = j - (half - 1) + (0.5 - al[j]) / (al[j + 1] - al[j])
    return out


def ramp_width(x: np.ndarray, alpha: np.ndarray, widths: np.ndarray | None = None) -> float:
    """Width ``W`` (pixels) of the ramp ``clip(x / W + 0.5, 0, 1)`` nearest (least squares) to ``alpha`` at signed
    distances ``x`` (pixels from the boundary); both any shape, the same."""
    widths = np.linspace(0.5, 20.0, 196) if widths is None else widths
    err = [np.nanmean((np.clip(x / w + 0.5, 0, 1) - alpha) ** 2) for w in widths]
    return float(widths[int(np.argmin(err))])


def _cut(x: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    """``(N, C, n)`` segments of ``x (C, H, W)`` along its rows from ``at (N, 2)`` (row, first column)."""
    return np.stack([x[:, r, c:c + n] for r, c in at]) if len(at) else np.zeros((0, x.shape[0], n), x.dtype)


def profile_widths(spec: np.ndarray, features: np.ndarray, valid: np.ndarray, aux: np.ndarray | None = None,
                   half: int = 10, min_step: float = 2.5, min_band_step: float = 1.0) -> dict:
    """Ramp widths of a window's boundaries: ``{"transects": N, "bands": [W per channel of spec or None],
    "aux": [W per channel of aux or None], "features": W}`` from ``spec (C, H, W)`` (z-scores), ``features
    (F, H, W)``, ``valid (H, W)`` and optional ``aux (A, H, W)`` (z-scores); rows and columns both. The
    transects are found in the spectra; a channel's width uses those whose sides differ by at least
    ``min_band_step`` in it (at least 10 transects, else None)."""
    aux = np.zeros((0,) + spec.shape[1:], spec.dtype) if aux is None else aux
    segs, feats, auxs = [], [], []
    for t in (False, True):
        s, f, a, v = ((spec.transpose(0, 2, 1), features.transpose(0, 2, 1), aux.transpose(0, 2, 1), valid.T)
                      if t else (spec, features, aux, valid))
        seg, at = step_transects(s, v, half, min_step)
        segs.append(seg)
        feats.append(_cut(f, at, 2 * half))
        auxs.append(_cut(a, at, 2 * half))
    seg, fseg, aseg = np.concatenate(segs), np.concatenate(feats), np.concatenate(auxs)
    if not len(seg):
        return {"transects": 0, "bands": [None] * spec.shape[0], "aux": [None] * aux.shape[0], "features": None}
    x = np.arange(2 * half)[None, :] - (half - 1) - crossings(ramp_position(seg), half)[:, None]

    def widths(segments: np.ndarray) -> list:
        out = []
        for b in range(segments.shape[1]):
            a, e = segments[:, b, :4].mean(1), segments[:, b, -4:].mean(1)
            use = np.abs(e - a) >= min_band_step
            alpha = (segments[use, b] - a[use, None]) / (e - a)[use, None]
            out.append(ramp_width(x[use], alpha) if use.sum() >= 10 else None)
        return out
    return {"transects": int(len(seg)), "bands": widths(seg), "aux": widths(aseg),
            "features": ramp_width(x, ramp_position(fseg))}


def main() -> int:
    import torch

    from engine.data.grid import Modality, RasterStack
    from engine.data.windows import Window
    from engine.io.artifact import load_model
    from engine.models.classifier import TrainedModel

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a classifier model file (its U-Net and input statistics)")
    ap.add_argument("--spectral", nargs="+", required=True, help="the spectral bands, in the model's order")
    ap.add_argument("--aux", nargs="+", metavar=("KIND", "FILE"),
                    help="the model's auxiliary modality, as for engine classify: KIND (sar_db | sar_linear | "
                         "elevation) and its raster file(s)")
    ap.add_argument("--window", nargs=4, type=int, default=[0, 0, 400, 400], metavar=("ROW", "COL", "H", "W"))
    ap.add_argument("--min-step", type=float, default=2.5,
                    help="smallest change between a transect's two sides (Euclidean distance of z-scores over the "
                         "spectral inputs)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tensors, meta = load_model(args.model)
    model = TrainedModel.from_tensors(tensors, meta)
    modalities = [Modality(paths=list(args.spectral), kind="spectral")]
    if args.aux:
        modalities.append(Modality(paths=list(args.aux[1:]), kind=args.aux[0], name=args.aux[0]))
    with RasterStack(modalities) as stack:
        inputs = model.window_inputs(stack, Window(*args.window))
    aux = None if inputs.aux is None else np.asarray(inputs.aux.cpu())
    result = profile_widths(np.asarray(inputs.spec.cpu()), np.asarray(inputs.features.cpu()), inputs.valid, aux,
                            min_step=args.min_step)
    names = [os.path.splitext(os.path.basename(p))[0] for p in args.spectral]
    if len(names) != len(result["bands"]):          # the model reads principal components of the bands
        names = [f"spectral component {i + 1}" for i in range(len(result["bands"]))]
    print(f"{result['transects']} step transects in rows {args.window[0]}-{args.window[0] + args.window[2]}, "
          f"columns {args.window[1]}-{args.window[1] + args.window[3]}")
    print("| input | ramp width, px |\n|---|---|")
    for name, w in zip(names, result["bands"]):
        print(f"| {name} | {'n/a' if w is None else f'{w:.1f}'} |")
    for i, w in enumerate(result["aux"]):
        print(f"| {args.aux[0]} band {i + 1} | {'n/a' if w is None else f'{w:.1f}'} |")
    print(f"| diffusion features | {result['features']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
