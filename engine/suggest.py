"""Uncertainty of a classification and "where to digitize next" (uncertainty sampling with diversity).

Uncertainty measures (per pixel, from the group network's class probabilities ``p``,
``models.network.GroupNetwork.log_probabilities``, K classes):

- normalised entropy ``H = −Σ_k p_k ln p_k / ln K`` in [0, 1] (1: all classes equally likely);
- margin ``p_(1) − p_(2)`` between the two most probable classes in [0, 1] (0: a tie, the most uncertain).

A third ranking, ``dissimilarity``, is not an uncertainty of the network: it is the dissimilarity index of the pixel's
inputs (``engine.applicability``, Meyer and Pebesma 2021), high where the scene is unlike every training pixel. The
network can be confidently wrong there (breaking surf mapped as built-up with a margin of 0.7), so uncertainty
sampling misses those places and this ranking finds them.

Suggestions follow *uncertainty sampling with diversity* from the active-learning literature for remote
sensing: rank unlabelled pixels by uncertainty (entropy or margin sampling, Tuia et al. 2011, "A survey of active
learning algorithms for supervised remote sensing image classification", IEEE J. Sel. Topics Signal Process.
5(3):606-617, §III) and keep a batch that is diverse (Demir, Persello and Bruzzone 2011, "Batch-mode
active-learning methods for the interactive classification of remote sensing images", IEEE TGRS 49(3):1014-1031),
here in geographic space as in Stumpf, Lachiche, Malet, Kerle and Puissant 2014, "Active learning in the spatial
domain for remote sensing image classification", IEEE TGRS 52(5):2492-2507: a minimum distance between
suggestions and a balance over the predicted classes, so that a batch does not pile up in one confused region or
one class.

Memory stays bounded for any scene: :class:`SuggestionPool` keeps, per cell of a coarse grid (cell side about the
minimum distance / √2) and per predicted class, only the most uncertain pixel; :func:`select_diverse` then picks
the batch from those candidates.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .contract import SUGGEST_MEASURES, SUGGESTED_CLASS_FIELD, UNCERTAINTY_BANDS  # noqa: F401 - re-exported
from .sampling import SpatialHash

MEASURES = SUGGEST_MEASURES
#: most (cell, class) candidates a pool holds.
MAX_POOL = 2_000_000


def entropy_margin(probabilities: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Normalised entropy and margin of class probabilities.

    Args:
        probabilities: (K, h, w) class probabilities (each pixel sums to 1), K >= 2.
        valid: optional bool (h, w); other pixels get NaN.

    Returns:
        ``entropy (h, w)`` float32 in [0, 1] and ``margin (h, w)`` float32 in [0, 1].
    """
    p = np.asarray(probabilities, dtype=np.float32)
    k = p.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(np.maximum(p, 1e-30)), 0.0)
    entropy = (-plogp.sum(axis=0) / math.log(k)) if k > 1 else np.zeros(p.shape[1:], np.float32)
    top2 = -np.partition(-p, 1, axis=0)[:2] if k > 1 else np.stack([p[0], np.zeros_like(p[0])])
    margin = top2[0] - top2[1]
    entropy = np.clip(entropy, 0.0, 1.0).astype(np.float32)
    margin = np.clip(margin, 0.0, 1.0).astype(np.float32)
    if valid is not None:
        entropy = np.where(valid, entropy, np.float32(np.nan))
        margin = np.where(valid, margin, np.float32(np.nan))
    return entropy, margin


def uncertainty_score(entropy: np.ndarray, margin: np.ndarray, measure: str = "entropy",
                      dissimilarity: np.ndarray | None = None) -> np.ndarray:
    """The ranking score, higher = first: the entropy, ``1 − margin`` for margin sampling, or the dissimilarity
    index (``dissimilarity``, same shape, needed for that measure)."""
    if measure not in MEASURES:
        from .errors import EngineError

        raise EngineError(f"Unknown ranking measure {measure!r}", f"use one of {', '.join(MEASURES)}")
    if measure == "dissimilarity":
        if dissimilarity is None:
            raise ValueError("the dissimilarity measure needs the dissimilarity index")
        return np.asarray(dissimilarity, np.float32)
    return entropy if measure == "entropy" else 1.0 - margin


class SuggestionPool:
    """Candidates for suggestions, filled tile by tile like a classification writer.

    It has the ``write(row_off, col_off, class_values, confidence, probabilities)`` method of
    ``io.rasters.ClassificationWriter`` so ``predict.classify_scene`` can stream into it
    (``want_probabilities=True``). Per (cell, predicted class) it keeps the most uncertain pixel.

    Args:
        height, width: the classified window in pixels.
        class_values: (K,) class values in probability-band order.
        cell: cell side in pixels (enlarged so that cells x classes <= :data:`MAX_POOL`).
        measure: ``entropy``, ``margin`` or ``dissimilarity`` (:data:`MEASURES`).
    """

    def __init__(self, height: int, width: int, class_values: Sequence[int], cell: int = 1, measure: str = "entropy"):
        self.values = np.asarray(class_values, np.int64)
        k = len(self.values)
        cell = max(1, int(cell))
        while math.ceil(height / cell) * math.ceil(width / cell) * k > MAX_POOL:
            cell += 1
        self.cell, self.measure = cell, measure
        self.ncx = math.ceil(width / cell)
        n = math.ceil(height / cell) * self.ncx * k
        self.score = np.full(n, -np.inf, np.float32)
        self.rows = np.zeros(n, np.int32)
        self.cols = np.zeros(n, np.int32)
        self.second = np.zeros(n, np.int16)
        self.p = np.zeros((2, n), np.float32)
        self.ent = np.zeros(n, np.float32)
        self.mar = np.zeros(n, np.float32)
        self.dis = np.full(n, np.nan, np.float32)

    def write(self, row_off: int, col_off: int, class_values: np.ndarray, confidence: Any = None,
              probabilities: np.ndarray | None = None, dissimilarity: np.ndarray | None = None) -> None:
        """Add one classified tile: ``class_values`` (h, w) with 0 = nodata, ``probabilities`` (K, h, w),
        ``dissimilarity`` (h, w) dissimilarity index or None (needed for the ``dissimilarity`` measure)."""
        if probabilities is None:
            raise ValueError("SuggestionPool needs the class probabilities (want_probabilities=True)")
        valid = np.asarray(class_values) > 0
        rr, cc = np.nonzero(valid)
        if rr.size == 0:
            return
        p = np.asarray(probabilities, np.float32)[:, rr, cc]                  # (K, N)
        ent, mar = entropy_margin(p[:, :, None])
        ent, mar = ent[:, 0], mar[:, 0]
        dis = None if dissimilarity is None else np.asarray(dissimilarity, np.float32)[rr, cc]
        score = uncertainty_score(ent, mar, self.measure, dis)
        order2 = np.argsort(-p, axis=0)[:2]                                    # first, second class index
        first, second = order2[0], order2[1] if p.shape[0] > 1 else order2[0]
        r, c = rr + row_off, cc + col_off
        key = first * (self.score.size // len(self.values)) + (r // self.cell) * self.ncx + c // self.cell
        order = np.lexsort((-score, key))
        keys, first_idx = np.unique(key[order], return_index=True)
        pick = order[first_idx]
        better = score[pick] > self.score[keys]
        keys, pick = keys[better], pick[better]
        self.score[keys] = score[pick]
        self.rows[keys], self.cols[keys] = r[pick], c[pick]
        self.second[keys] = second[pick]
        self.p[0, keys] = p[first[pick], pick]
        self.p[1, keys] = p[second[pick], pick]
        self.ent[keys], self.mar[keys] = ent[pick], mar[pick]
        if dis is not None:
            self.dis[keys] = dis[pick]

    def candidates(self) -> dict[str, np.ndarray]:
        """All kept candidates: rows, cols, first/second class index, p_first, p_second, entropy, margin,
        dissimilarity (NaN when not computed), score."""
        keep = np.isfinite(self.score)
        per_class = self.score.size // len(self.values)
        idx = np.flatnonzero(keep)
        return {"rows": self.rows[idx].astype(np.int64), "cols": self.cols[idx].astype(np.int64),
                "first": (idx // per_class).astype(np.int64), "second": self.second[idx].astype(np.int64),
                "p_first": self.p[0, idx], "p_second": self.p[1, idx], "entropy": self.ent[idx],
                "margin": self.mar[idx], "dissimilarity": self.dis[idx], "score": self.score[idx]}


def select_diverse(rows: np.ndarray, cols: np.ndarray, classes: np.ndarray, score: np.ndarray, n: int,
                   min_distance: float = 0.0, pixel_size: tuple[float, float] = (1.0, 1.0), balance: bool = True
                   ) -> np.ndarray:
    """Pick ``n`` candidates: most uncertain first, at least ``min_distance`` apart, balanced over classes.

    With ``balance`` the classes take turns (round robin, the class with the most uncertain candidate first):
    each turn a class adds its most uncertain remaining candidate that is far enough from every pick so far;
    a class with no candidate left drops out and the others fill the batch. Without ``balance`` candidates are
    taken in order of uncertainty alone.

    Args:
        rows, cols: (M,) pixel indices. classes: (M,) predicted class (any integer code). score: (M,) higher =
            more uncertain.
        n: batch size. min_distance: in map units (with ``pixel_size`` = (xres, yres) map units per pixel).

    Returns:
        (<= n,) indices into the candidates, in order of decreasing score (rank 1 first).
    """
    xres, yres = abs(pixel_size[0]), abs(pixel_size[1])
    taken = SpatialHash(min_distance)
    order = np.argsort(-np.asarray(score), kind="stable")
    keys = np.asarray(classes)[order] if balance else np.zeros(order.size, np.int64)
    first_seen = np.unique(keys, return_index=True)
    turn = [int(k) for k in first_seen[0][np.argsort(first_seen[1])]]   # the most uncertain class first
    queues = {k: order[keys == k].tolist() for k in turn}
    pointers = {k: 0 for k in queues}
    picked: list[int] = []
    while len(picked) < n and turn:
        for k in list(turn):
            q = queues[k]
            while pointers[k] < len(q):
                i = q[pointers[k]]
                pointers[k] += 1
                x, y = (cols[i] + 0.5) * xres, (rows[i] + 0.5) * yres
                if taken.far_enough(x, y):
                    taken.add(x, y)
                    picked.append(i)
                    break
            else:
                turn.remove(k)
            if len(picked) >= n:
                break
    picked_arr = np.asarray(picked, np.int64)
    return picked_arr[np.argsort(-np.asarray(score)[picked_arr], kind="stable")] if picked else picked_arr


def suggest_in_scene(model: Any, stack: Any, window: Sequence[int] | None, *, count: int = 20,
                     min_distance: float | None = None, measure: str = "entropy", balance: bool = True,
                     tile: int = 256, batch_size: int = 1024, mask_geometries: list | None = None,
                     reporter: Any = None, backend: Any = None) -> dict[str, Any]:
    """Classify a scene (or window) into a :class:`SuggestionPool` and pick ``count`` suggestions.

    Args:
        model: ``models.classifier.TrainedModel``. stack: ``data.grid.RasterStack`` on the model's grid.
        window: (row_off, col_off, height, width) or None for the whole grid.
        count: number of suggestions. min_distance: map units between suggestions (None: one pixel).
        measure: ``entropy``, ``margin`` or ``dissimilarity``. balance: round robin over predicted classes.
        tile, batch_size, mask_geometries, reporter, backend: as ``predict.classify_scene`` (with coarse-to-fine,
            every pixel whose neighbours are not all sure of one class is classified by the network itself, so the
            uncertain pixels that suggestions come from carry the network's own probabilities).

    Returns:
        ``{"x", "y"}`` (N,) pixel-centre coordinates in the grid CRS and, per suggestion, ``rank``,
        ``pred_class``, ``second_class`` (class values), ``pred_index``, ``second_index``, ``uncertainty``,
        ``entropy``, ``margin``, ``dissimilarity`` (NaN unless ranked by it), ``prob_first``, ``prob_second``;
        plus ``candidates`` (pool size) and ``pixels`` (classified pixels).
    """
    from .predict import classify_scene

    grid = stack.grid
    r0, c0, height, width = (0, 0, grid.height, grid.width) if window is None else [int(v) for v in window]
    xres, yres = abs(grid.transform.a), abs(grid.transform.e)
    distance = max(xres, yres) if min_distance is None or min_distance <= 0 else float(min_distance)
    values = [int(c["value"]) if isinstance(c, dict) else int(c.value) for c in model.classes]
    pool = SuggestionPool(height, width, values, cell=int(distance / max(xres, yres) / math.sqrt(2)), measure=measure)
    summary = classify_scene(model, stack, pool, window, tile, batch_size, mask_geometries, reporter,
                             want_probabilities=True, want_dissimilarity=measure == "dissimilarity", backend=backend)
    cand = pool.candidates()
    pick = select_diverse(cand["rows"], cand["cols"], cand["first"], cand["score"], count, distance,
                          (xres, yres), balance)
    rows, cols = cand["rows"][pick] + r0, cand["cols"][pick] + c0
    xs = [grid.transform.c + (c + 0.5) * grid.transform.a for c in cols]
    ys = [grid.transform.f + (r + 0.5) * grid.transform.e for r in rows]
    vals = np.asarray(values, np.int64)
    return {"x": xs, "y": ys, "rank": list(range(1, len(pick) + 1)),
            "pred_index": cand["first"][pick], "second_index": cand["second"][pick],
            "pred_class": vals[cand["first"][pick]], "second_class": vals[cand["second"][pick]],
            "uncertainty": cand["score"][pick], "entropy": cand["entropy"][pick], "margin": cand["margin"][pick],
            "dissimilarity": cand["dissimilarity"][pick],
            "prob_first": cand["p_first"][pick], "prob_second": cand["p_second"][pick],
            "candidates": int(cand["rows"].size), "pixels": int(summary["pixels"])}


def _rounded(value: Any) -> float | None:
    """``value`` rounded to 5 decimals; None (a null field) for NaN."""
    v = float(value)
    return None if math.isnan(v) else round(v, 5)


def suggestion_records(s: dict[str, Any], names: dict[int, str]) -> tuple[list, list[dict[str, Any]]]:
    """(fiona schema, records) of the suggestion layer from :func:`suggest_in_scene`'s result."""
    schema = [("rank", "int"), (SUGGESTED_CLASS_FIELD, "int"), ("pred_name", "str:80"), ("uncertainty", "float"),
              ("entropy", "float"), ("margin", "float"), ("prob_first", "float"), ("second_class", "int"),
              ("second_name", "str:80"), ("prob_second", "float"), ("dissimilarity", "float")]
    records = []
    for i in range(len(s["rank"])):
        first, second = int(s["pred_class"][i]), int(s["second_class"][i])
        records.append({"rank": int(s["rank"][i]), SUGGESTED_CLASS_FIELD: first, "pred_name": names.get(first, str(first)),
                        "uncertainty": round(float(s["uncertainty"][i]), 5), "entropy": round(float(s["entropy"][i]), 5),
                        "margin": round(float(s["margin"][i]), 5), "prob_first": round(float(s["prob_first"][i]), 5),
                        "second_class": second, "second_name": names.get(second, str(second)),
                        "prob_second": round(float(s["prob_second"][i]), 5),
                        "dissimilarity": _rounded(s["dissimilarity"][i])})
    return schema, records
