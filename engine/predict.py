"""Whole-scene classification, tile by tile with a halo (bounded memory).

For every tile of the grid (or of an extent), the tile grown by the patch margin ``P // 2`` goes through
:func:`engine.data.windows.read_window` (one read with the diffusion halo; features exact under tiling), the
``P x P`` patches of its valid pixels are cut batch by batch (:meth:`WindowInputs.patches`) and classified, and
the tile is written by ``io.rasters.ClassificationWriter``.

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

from .data.windows import Window, iter_windows
from .errors import EngineError
from .models.classifier import TrainedModel
from .models.inference import InferenceBackend
from .progress import Reporter, ensure


def polygon_mask_geometries(path: str, grid: Any, layer: str | None = None) -> list[dict]:
    """Polygons of a mask layer (any OGR format) reprojected to the grid CRS, as GeoJSON-like dicts.

    Raises:
        EngineError: unreadable file or no polygon in it.
    """
    import fiona
    from rasterio.warp import transform_geom

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
def classify_window(model: TrainedModel, stack: Any, window: Window, batch_size: int = 1024,
                    inside: np.ndarray | None = None, on_batch: Any = None, backend: Any = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classify every valid pixel of one window of the reference grid.

    Args:
        model: :class:`TrainedModel` (eval mode). stack: ``data.grid.RasterStack`` on the model's grid.
        window: :class:`Window` of the grid.
        batch_size: patches per network call. inside: optional bool ``(h, w)`` extra mask (mask polygons).
        on_batch: called with the number of pixels after every batch (progress; may raise ``Cancelled``).
        backend: ``models.inference.InferenceBackend`` (fast path); None = the eager model (the reference).
    Returns:
        ``class_index (h, w)`` int64 (-1 = nodata), ``confidence (h, w)`` float32 (max class probability, 0 at
        nodata), ``probabilities (K, h, w)`` float32.
    """
    m = model.margin
    P = model.patch_size
    K = len(model.classes)
    height, width = window.height, window.width
    if backend is None:
        backend = InferenceBackend(model, "eager")
    inputs = backend.window_inputs(stack, window.grown(m))
    core_valid = inputs.valid[m:m + height, m:m + width]
    if inside is not None:
        core_valid = core_valid & inside
    cls = np.full((height, width), -1, np.int64)
    conf = np.zeros((height, width), np.float32)
    probs = np.zeros((K, height, width), np.float32)
    rr, cc = np.nonzero(core_valid)
    if len(rr) == 0:
        return cls, conf, probs

    cut = inputs.patch_cutter(P)

    def batches():
        for i in range(0, len(rr), batch_size):
            r, c = rr[i:i + batch_size], cc[i:i + batch_size]
            yield (i, *cut(r + m, c + m))        # the grown window starts m pixels earlier

    p = backend.probabilities(batches(), len(rr), on_batch)   # (N, K)
    cls[rr, cc] = p.argmax(1)
    conf[rr, cc] = p.max(1)
    probs[:, rr, cc] = p.T
    return cls, conf, probs


def _gather_on_main(result: Any, dinfo: Any) -> list:
    """Every rank's ``result`` on rank 0 (rank order); ``[result]`` without torchrun, ``[]`` on other ranks."""
    if not dinfo.enabled:
        return [result]
    import torch.distributed as dist

    results = [None] * dinfo.world if dinfo.is_main else None
    dist.gather_object(result, results, dst=0)
    return results if dinfo.is_main else []


def classify_scene(model: TrainedModel, stack: Any, writer: Any, window: Sequence[int] | None = None,
                   tile: int = 256, batch_size: int = 1024, mask_geometries: list[dict] | None = None,
                   reporter: Reporter | None = None, want_probabilities: bool = False, backend: Any = None,
                   want_dissimilarity: bool = False) -> dict:
    """Classify a scene (or ``window = (row_off, col_off, height, width)``) tile by tile into ``writer``.

    Under torchrun (``engine.distributed``) the tiles are dealt round-robin: in every round each rank classifies
    one tile, rank 0 gathers the round's results (``torch.distributed.gather_object``; memory: one tile per
    rank) and writes them, so the output is the one a single process writes. Other ranks pass ``writer=None``.

    Args:
        writer: ``io.rasters.ClassificationWriter`` whose pixel (0, 0) is the window's top-left pixel.
        mask_geometries: polygons in the grid CRS; pixels outside them are nodata.
        backend: ``models.inference.InferenceBackend``; None = the eager model.
        want_dissimilarity: also compute the dissimilarity index of every pixel (``applicability``; the model
            must have its training pixels) and pass it to ``writer.write(..., dissimilarity=)``.
    Returns:
        ``{"pixels": classified pixel count, "class_counts": {value: count}, "tiles": n}`` (on rank 0), with
        ``"outside_applicability"`` (pixels whose dissimilarity index exceeds the model's threshold) when
        ``want_dissimilarity``.
    """
    from .distributed import info as dist_info

    rep = ensure(reporter)
    dinfo = dist_info()
    r0, c0, H, W = (0, 0, stack.grid.height, stack.grid.width) if window is None else [int(v) for v in window]
    values = np.array([int(c.value) for c in model.classes], np.int64)
    tiles = list(iter_windows(H, W, tile, (r0, c0, H, W)))
    counts = np.zeros(len(values), np.int64)
    outside = 0
    threshold = model.applicability.threshold if want_dissimilarity and model.applicability is not None else None
    task = rep.task("classify", H * W, unit="px")
    try:
        for first in range(0, len(tiles), dinfo.world):
            rep.check_cancelled()
            group = tiles[first:first + dinfo.world]
            mine = group[dinfo.rank] if dinfo.rank < len(group) else None
            done = [0]

            def on_batch(n: int) -> None:
                done[0] += n
                task.update(n)

            result = None
            if mine is not None:
                result = _classify_tile(model, stack, mine, batch_size, mask_geometries, on_batch, backend,
                                        want_probabilities, want_dissimilarity)
            for t, res in zip(group, _gather_on_main(result, dinfo)):
                cls, conf, probs, dissimilarity = res
                ok = cls >= 0
                out = np.zeros(cls.shape, np.int64)
                out[ok] = values[cls[ok]]
                counts += np.bincount(cls[ok], minlength=len(values))
                extra = {}
                if want_dissimilarity:
                    extra["dissimilarity"] = dissimilarity
                    outside += int(np.count_nonzero(dissimilarity > threshold))
                writer.write(t.row_off - r0, t.col_off - c0, out, conf, probs, **extra)
            task.update(sum(t.height * t.width for t in group) - done[0])   # nodata pixels, other ranks' tiles
    finally:
        task.close()
    out = {"pixels": int(counts.sum()), "tiles": len(tiles),
           "class_counts": {int(v): int(n) for v, n in zip(values, counts)}}
    if want_dissimilarity:
        out["outside_applicability"] = outside
    return out


def _classify_tile(model: TrainedModel, stack: Any, t: Window, batch_size: int, mask_geometries: Any,
                   on_batch: Any, backend: Any, want_probabilities: bool, want_dissimilarity: bool = False) -> tuple:
    """``(class_index, confidence, probabilities | None, dissimilarity | None)`` of one tile
    (:func:`classify_window`, :func:`window_dissimilarity`)."""
    inside = None
    if mask_geometries:
        from rasterio.features import geometry_mask

        inside = geometry_mask(mask_geometries, out_shape=(t.height, t.width),
                               transform=stack.grid.window_transform(t.row_off, t.col_off), invert=True)
    cls, conf, probs = classify_window(model, stack, t, batch_size, inside, on_batch, backend)
    dissimilarity = window_dissimilarity(model, stack, t, cls >= 0) if want_dissimilarity else None
    return cls, conf, probs if want_probabilities else None, dissimilarity


def window_dissimilarity(model: TrainedModel, stack: Any, window: Window, valid: np.ndarray) -> np.ndarray:
    """Dissimilarity index of the pixels of a window (``applicability.Applicability.window``).

    Args:
        model: a :class:`TrainedModel` with its training pixels (``model.applicability``).
        window: :class:`Window` of the grid. valid: ``(h, w)`` bool, the classified pixels.
    Returns:
        ``(h, w)`` float32 DI, NaN where not ``valid``.
    Raises:
        EngineError: the model file has no training pixels (written by an earlier engine).
    """
    from .applicability import HINT_RETRAIN

    if model.applicability is None:
        raise EngineError("This model file holds no training pixels for the area of applicability", HINT_RETRAIN)
    spec, aux = model.inputs.transform(stack.read(window.row_off, window.col_off, window.height, window.width))
    return model.applicability.window(spec, aux, valid)
