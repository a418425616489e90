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


#: coarse-to-fine classification (:func:`coarse_to_fine`): the network classifies every pixel of this lattice
#: stride, then, halving the stride, only the pixels whose lattice neighbours disagree or are unsure
COARSE_STRIDE = 4
#: a pixel takes its lattice neighbours' class without running the network only when each of them gives that
#: class at least this probability, where the neighbours are 2 px away (full Delmarva scene: 0.97 changed no
#: pixel's class of 3.76 M; 0.9 changed none either but moved 4 % of the probabilities by more than 0.01, up to
#: 0.39, and without the spectral check changed 3 px of the 14 400 of BigEarthNet 87_48; docs/benchmarks.md)
COARSE_MIN_CONFIDENCE = 0.97
#: ... and this probability where they are the adjacent pixels (the last level, 3/4 of the pixels): a pixel's
#: patch shares 64-80 % of its pixels with each adjacent neighbour's (5 x 5 patches; 9 x 9: 79-89 %), so the
#: network's probabilities change little from one pixel to the next and interpolating them stays faithful at a
#: lower confidence (full Delmarva scene, against 0.97: the network on about 35 % instead of 44 % of the pixels,
#: 149 s instead of 181-196 s, no class changed, largest probability difference 0.06 instead of 0.05; on the three
#: embedded data sets no class changed either; docs/benchmarks.md)
COARSE_MIN_CONFIDENCE_ADJACENT = 0.9
#: ... and only when the pixel's own normalised spectrum is within this root-mean-square distance (in standard
#: deviations of the bands) of its neighbours' mean: a one-pixel road or creek between two confident field
#: pixels is always classified, whatever the network said about its neighbours
COARSE_MAX_SPECTRAL_DISTANCE = 0.5


def coarse_to_fine(valid: np.ndarray, row0: int, col0: int, classify: Any, n_classes: int,
                   spectra: np.ndarray | None = None, stride: int | None = None,
                   min_confidence: float | None = None, max_distance: float | None = None,
                   min_confidence_adjacent: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities of a window's pixels, running the network only where the map is not uniform.

    The network classifies the pixels of the lattice ``stride`` (grid rows and columns divisible by it); then,
    for ``s = stride / 2, ..., 1``, each pixel of lattice ``s`` that is not on lattice ``2s`` has 2 (same row or
    column) or 4 (diagonal) neighbours on lattice ``2s`` at distance ``s``. Where all of them are valid, give
    the same class and each gives it a probability of at least ``min_confidence`` (``min_confidence_adjacent``
    at ``s = 1``, where the neighbours are adjacent pixels), and the pixel's own spectrum
    lies within ``max_distance`` (root mean square over the bands of the normalised spectra) of their mean, the
    pixel takes the mean of their probability vectors; otherwise the network classifies it. Interior pixels of
    uniform land cover (open water, forest, large fields) are thus interpolated, edges, mixed pixels and
    one-pixel features always classified. The class map is the network's wherever its neighbours' patches (5 x 5
    px and more) already see what the pixel holds, which the measured agreement confirms (docs/benchmarks.md);
    the probabilities of interpolated pixels are their neighbours' mean, not the network's own. Lattices are
    anchored on the reference grid, so the result does not depend on the tiling when the window carries a halo
    of ``stride - 1`` px (pixels beyond the core are classified only as far as core pixels depend on them).
    An engine-level speed-up of prediction, not part of the paper's method.

    Args:
        valid: ``(H, W)`` bool, the pixels to classify, of the core window grown by ``stride - 1`` px on every
            side. row0, col0: grid row and column of ``valid[0, 0]``.
        classify: ``(rows, cols) -> (n, n_classes)`` class probabilities of pixels at those ``valid`` indices.
        spectra: ``(C, H, W)`` normalised spectral inputs (z-scores, ``data.inputs``) of the same pixels, or None
            (no spectral check). stride: a power of two (1 = classify every pixel). min_confidence,
            min_confidence_adjacent: in (0, 1]. None: :data:`COARSE_STRIDE`, :data:`COARSE_MIN_CONFIDENCE`,
            :data:`COARSE_MAX_SPECTRAL_DISTANCE`, :data:`COARSE_MIN_CONFIDENCE_ADJACENT`.
    Returns:
        ``probabilities (n_classes, H, W)`` float32 (0 outside ``valid`` and outside what the core needs) and
        ``computed (H, W)`` bool, the pixels the network ran on.
    """
    stride = COARSE_STRIDE if stride is None else stride
    min_confidence = COARSE_MIN_CONFIDENCE if min_confidence is None else min_confidence
    max_distance = COARSE_MAX_SPECTRAL_DISTANCE if max_distance is None else max_distance
    if min_confidence_adjacent is None:
        min_confidence_adjacent = COARSE_MIN_CONFIDENCE_ADJACENT
    H, W = valid.shape
    halo = stride - 1
    rows, cols = np.arange(H), np.arange(W)
    # Chebyshev distance of every pixel to the core window (0 inside it)
    dist = np.maximum(np.maximum(halo - rows, rows - (H - 1 - halo)).clip(0)[:, None],
                      np.maximum(halo - cols, cols - (W - 1 - halo)).clip(0)[None, :])
    R, C = (rows + row0)[:, None], (cols + col0)[None, :]
    probs = np.zeros((n_classes, H, W), np.float32)
    known = np.zeros((H, W), bool)
    computed = np.zeros((H, W), bool)

    def run(mask: np.ndarray) -> None:
        rr, cc = np.nonzero(mask)
        if len(rr):
            probs[:, rr, cc] = classify(rr, cc).T
        computed[mask] = known[mask] = True

    run(valid & (R % stride == 0) & (C % stride == 0) & (dist <= halo))
    s = stride // 2
    while s >= 1:
        coarse = (R % (2 * s) == 0) & (C % (2 * s) == 0)
        level = valid & (R % s == 0) & (C % s == 0) & ~coarse & (dist <= s - 1)
        sure = min_confidence if s > 1 else min_confidence_adjacent
        skip, mean = _uniform_neighbours(probs, known, coarse, s, sure, spectra, max_distance)
        skip &= level
        probs[:, skip] = mean[:, skip]
        known |= skip
        run(level & ~skip)
        s //= 2
    return probs, computed


def _uniform_neighbours(probs: np.ndarray, known: np.ndarray, coarse: np.ndarray, s: int, min_confidence: float,
                        spectra: np.ndarray | None, max_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel: whether all its neighbours at distance ``s`` on the ``coarse`` lattice are known, agree
    with confidence ``>= min_confidence`` and have a mean spectrum within ``max_distance`` of the pixel's
    (``(H, W)`` bool), and their mean probabilities ``(K, H, W)``."""
    K, H, W = probs.shape
    pad = [(0, 0), (s, s), (s, s)]
    p_pad = np.pad(probs, pad)
    cls_pad, conf_pad = np.pad(probs.argmax(0), s), np.pad(probs.max(0), s)   # once, not per neighbour
    x_pad = None if spectra is None else np.pad(spectra, pad)
    x_sum = None if spectra is None else np.zeros(spectra.shape, np.float32)
    k_pad, c_pad = np.pad(known, s), np.pad(coarse, s)
    first = np.full((H, W), -1)
    agree = np.ones((H, W), bool)
    total = np.zeros((K, H, W), np.float32)
    count = np.zeros((H, W), np.int64)
    for dr in (-s, 0, s):
        for dc in (-s, 0, s):
            if dr == dc == 0:
                continue
            sl = (slice(s + dr, s + dr + H), slice(s + dc, s + dc + W))
            on = c_pad[sl]                                 # a lattice neighbour: it must be known and sure
            p = p_pad[(slice(None), *sl)]
            cls, conf = cls_pad[sl], conf_pad[sl]
            first = np.where(first < 0, np.where(on, cls, -1), first)
            agree &= ~on | (k_pad[sl] & (cls == first) & (conf >= min_confidence))
            total += np.where(on, p, 0)
            count += on
            if x_pad is not None:
                x_sum += np.where(on, x_pad[(slice(None), *sl)], 0)
    agree &= count > 0
    if spectra is not None:
        rms = np.sqrt(np.mean((spectra - x_sum / np.maximum(count, 1)) ** 2, axis=0))
        agree &= rms <= max_distance
    return agree, total / np.maximum(count, 1)


@torch.no_grad()
def classify_window(model: TrainedModel, stack: Any, window: Window, batch_size: int = 1024,
                    inside: Any = None, on_batch: Any = None, backend: Any = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classify every valid pixel of one window of the reference grid.

    Args:
        model: :class:`TrainedModel` (eval mode). stack: ``data.grid.RasterStack`` on the model's grid.
        window: :class:`Window` of the grid.
        batch_size: patches per network call.
        inside: optional extra mask (mask polygons): bool ``(h, w)``, or a function ``Window -> bool array`` of
            any window (needed for the halo of coarse-to-fine classification; an array leaves the halo out).
        on_batch: called with a number of pixels as batches finish (progress; may raise ``Cancelled``).
        backend: ``models.inference.InferenceBackend`` (fast path; with ``backend.coarse_to_fine`` the network
            runs only where :func:`coarse_to_fine` needs it); None = the eager model on every pixel (the
            reference).
    Returns:
        ``class_index (h, w)`` int64 (-1 = nodata), ``confidence (h, w)`` float32 (max class probability, 0 at
        nodata), ``probabilities (K, h, w)`` float32.
    """
    m, P, K = model.margin, model.patch_size, len(model.classes)
    height, width = window.height, window.width
    if backend is None:
        backend = InferenceBackend(model, "eager")
    stride = COARSE_STRIDE if backend.coarse_to_fine else 1     # stride 1: the network on every pixel
    g = stride - 1
    grown = window.grown(g)
    inputs = backend.window_inputs(stack, grown.grown(m))
    valid = inputs.valid[m:m + grown.height, m:m + grown.width]
    if callable(inside):
        valid = valid & inside(grown)
    elif inside is not None:
        valid = valid & np.pad(inside, g)
    cut = inputs.patch_cutter(P)
    left = [int(np.count_nonzero(valid[g:g + height, g:g + width]))]

    def progress(n: int) -> None:         # counts the core's pixels only; halo pixels are extra work
        n = min(n, left[0])
        left[0] -= n
        if on_batch is not None and n:
            on_batch(n)

    def network(rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        def batches():
            for i in range(0, len(rr), batch_size):
                yield (i, *cut(rr[i:i + batch_size] + m, cc[i:i + batch_size] + m))   # grown by m more
        return backend.probabilities(batches(), len(rr), progress)

    spectra = None if stride == 1 else np.asarray(
        torch.as_tensor(inputs.spec)[:, m:m + grown.height, m:m + grown.width].float().cpu())
    probs, _ = coarse_to_fine(valid, grown.row_off, grown.col_off, network, K, spectra, stride=stride)
    probs = np.ascontiguousarray(probs[:, g:g + height, g:g + width])
    core_valid = valid[g:g + height, g:g + width]
    progress(left[0])
    cls = np.where(core_valid, probs.argmax(0), -1).astype(np.int64)
    conf = np.where(core_valid, probs.max(0), 0).astype(np.float32)
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
        ``"outside_applicability"`` (pixels whose dissimilarity index exceeds the model's threshold) and
        ``"outside_by_class"`` ({value: those of them predicted as that class}) when ``want_dissimilarity``.
    """
    from .distributed import info as dist_info

    rep = ensure(reporter)
    dinfo = dist_info()
    r0, c0, H, W = (0, 0, stack.grid.height, stack.grid.width) if window is None else [int(v) for v in window]
    values = np.array([int(c.value) for c in model.classes], np.int64)
    tiles = list(iter_windows(H, W, tile, (r0, c0, H, W)))
    counts = np.zeros(len(values), np.int64)
    outside = np.zeros(len(values), np.int64)
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
                    far = ok & (dissimilarity > threshold)
                    outside += np.bincount(cls[far], minlength=len(values))
                writer.write(t.row_off - r0, t.col_off - c0, out, conf, probs, **extra)
            task.update(sum(t.height * t.width for t in group) - done[0])   # nodata pixels, other ranks' tiles
    finally:
        task.close()
    out = {"pixels": int(counts.sum()), "tiles": len(tiles),
           "class_counts": {int(v): int(n) for v, n in zip(values, counts)}}
    if want_dissimilarity:
        out["outside_applicability"] = int(outside.sum())
        out["outside_by_class"] = {int(v): int(n) for v, n in zip(values, outside)}
    return out


def _classify_tile(model: TrainedModel, stack: Any, t: Window, batch_size: int, mask_geometries: Any,
                   on_batch: Any, backend: Any, want_probabilities: bool, want_dissimilarity: bool = False) -> tuple:
    """``(class_index, confidence, probabilities | None, dissimilarity | None)`` of one tile
    (:func:`classify_window`, :func:`window_dissimilarity`)."""
    inside = None
    if mask_geometries:
        from rasterio.features import geometry_mask

        def inside(w: Window) -> np.ndarray:
            return geometry_mask(mask_geometries, out_shape=(w.height, w.width),
                                 transform=stack.grid.window_transform(w.row_off, w.col_off), invert=True)
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
