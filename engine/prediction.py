"""Whole-scene classification, tile by tile with a halo (bounded memory).

For every core tile of the grid (or of an extent), one window of ``tile + 2 (P // 2 + halo)`` pixels is read
through the geodata layer, the diffusion features are computed for ``tile + 2 (P // 2)`` pixels only
(``diffusion.FeatureExtractor``, exact under tiling), every valid pixel's ``P x P`` patch is gathered with
``unfold`` views (no copy of the tile per pixel) and classified in batches, and the tile is written by
``rasterout.ClassificationWriter``.

Peak memory is set by the tile and batch sizes, never by the scene: the U-Net encoder's activations for one
``(tile + 2m)^2 x S`` window (``m = P//2 + halo``; a few 16·width-channel volumes) and the group network's
activations for one batch of patches (the Mamba scan holds ``batch x 2·81 x C_spec x d_state`` values per
step tensor, the attention ``batch x heads x 82^2``). Measured with the ``fast`` profile, tile 256 and batch 1024:
about 1 GiB peak RSS (torch itself ~250 MiB) for 512², 1024² and the full 1933 x 1947 scene alike
(``benchmarks/bench_classify.py``, docs/benchmarks.md). Lower ``--tile`` / ``--batch-size`` to lower it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .grid import iter_tiles
from .progress import Reporter, ensure
from .training import TrainedModel


def polygon_mask_geometries(path: str, grid: Any, layer: str | None = None) -> list[dict]:
    """Polygons of a mask layer (any OGR format) reprojected to the grid CRS, as GeoJSON-like dicts.

    Raises:
        EngineError: unreadable file or no polygon in it.
    """
    import fiona
    from rasterio.warp import transform_geom

    from .errors import EngineError

    try:
        with fiona.open(path, layer=layer) as src:
            src_crs = src.crs_wkt or None
            geoms = [dict(f.geometry) for f in src if f.geometry is not None
                     and f.geometry["type"] in ("Polygon", "MultiPolygon")]
    except Exception as exc:  # noqa: BLE001
        raise EngineError(f"Cannot read the mask polygons {path}: {exc}",
                          "Give a polygon layer (GeoPackage, Shapefile, GeoJSON).") from exc
    if not geoms:
        raise EngineError(f"The mask layer {path} holds no polygons", "Give a polygon layer.")
    if src_crs:
        geoms = [transform_geom(src_crs, grid.crs, g) for g in geoms]
    return geoms


@torch.no_grad()
def classify_window(model: TrainedModel, stack: Any, row_off: int, col_off: int, height: int, width: int,
                    batch_size: int = 1024, inside: np.ndarray | None = None, on_batch: Any = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classify every valid pixel of one window of the reference grid.

    Args:
        model: :class:`training.TrainedModel` (eval mode). stack: ``grid.RasterStack`` on the model's grid.
        row_off, col_off, height, width: the window (pixels).
        batch_size: patches per network call. inside: optional bool ``(h, w)`` extra mask (mask polygons).
        on_batch: called with the number of pixels after every batch (progress; may raise ``Cancelled``).
    Returns:
        ``class_index (h, w)`` int64 (-1 = nodata), ``confidence (h, w)`` float32 (max class probability, 0 at
        nodata), ``probabilities (K, h, w)`` float32.
    """
    m = model.margin
    P = model.patch_size
    K = len(model.classes)
    xs, xa, fd, valid = model.window_inputs(stack, row_off - m, col_off - m, height + 2 * m, width + 2 * m)
    core_valid = valid[m:m + height, m:m + width]
    if inside is not None:
        core_valid = core_valid & inside
    cls = np.full((height, width), -1, np.int64)
    conf = np.zeros((height, width), np.float32)
    probs = np.zeros((K, height, width), np.float32)
    rr, cc = np.nonzero(core_valid)
    if len(rr) == 0:
        return cls, conf, probs
    # (C, h, w, P, P) views: patch of core pixel (r, c) is [:, r, c] (the window starts m pixels earlier)
    views = [t.unfold(1, P, 1).unfold(2, P, 1) if t is not None else None for t in (xs, xa, fd)]
    dev = model.device
    rr_t = torch.as_tensor(rr, device=dev)
    cc_t = torch.as_tensor(cc, device=dev)
    out = []
    for i in range(0, len(rr), batch_size):
        r, c = rr_t[i:i + batch_size], cc_t[i:i + batch_size]
        spec = views[0][:, r, c].permute(1, 0, 2, 3)
        aux = views[1][:, r, c].permute(1, 0, 2, 3) if views[1] is not None else None
        dif = views[2][:, r, c].permute(1, 0, 2, 3)
        out.append(torch.softmax(model.net(spec, aux, dif).logits.float(), dim=1).cpu())
        if on_batch is not None:
            on_batch(len(r))
    p = torch.cat(out).numpy()                                   # (N, K)
    cls[rr, cc] = p.argmax(1)
    conf[rr, cc] = p.max(1)
    probs[:, rr, cc] = p.T
    return cls, conf, probs


def classify_scene(model: TrainedModel, stack: Any, writer: Any, window: Sequence[int] | None = None,
                   tile: int = 256, batch_size: int = 1024, mask_geometries: list[dict] | None = None,
                   reporter: Reporter | None = None, want_probabilities: bool = False) -> dict:
    """Classify a scene (or ``window = (row_off, col_off, height, width)``) tile by tile into ``writer``.

    Args:
        writer: ``rasterout.ClassificationWriter`` whose pixel (0, 0) is the window's top-left pixel.
        mask_geometries: polygons in the grid CRS; pixels outside them are nodata.
    Returns:
        ``{"pixels": classified pixel count, "class_counts": {value: count}, "tiles": n}``.
    """
    from rasterio.features import geometry_mask

    rep = ensure(reporter)
    r0, c0, H, W = (0, 0, stack.grid.height, stack.grid.width) if window is None else [int(v) for v in window]
    values = np.array([int(c["value"]) for c in model.classes], np.int64)
    tiles = list(iter_tiles(H, W, tile, 0, (r0, c0, H, W)))
    counts = np.zeros(len(values), np.int64)
    task = rep.task("classify", H * W, unit="px")
    try:
        for t in tiles:
            inside = None
            if mask_geometries:
                inside = geometry_mask(mask_geometries, out_shape=(t.height, t.width),
                                       transform=stack.grid.window_transform(t.row_off, t.col_off), invert=True)
            done = [0]

            def on_batch(n: int) -> None:
                done[0] += n
                task.update(n)

            rep.check_cancelled()
            cls, conf, probs = classify_window(model, stack, t.row_off, t.col_off, t.height, t.width,
                                               batch_size, inside, on_batch)
            ok = cls >= 0
            out = np.zeros(cls.shape, np.int64)
            out[ok] = values[cls[ok]]
            counts += np.bincount(cls[ok], minlength=len(values))
            writer.write(t.row_off - r0, t.col_off - c0, out, conf, probs if want_probabilities else None)
            task.update(t.height * t.width - done[0])   # nodata pixels of the tile
    finally:
        task.close()
    return {"pixels": int(counts.sum()), "tiles": len(tiles),
            "class_counts": {int(v): int(n) for v, n in zip(values, counts)}}
