"""Probability sampling for accuracy assessment: sample size, allocation, stratified random points, estimators.

Design (Olofsson et al. 2014, "Good practices for estimating area and assessing accuracy of land change",
Remote Sensing of Environment 148:42-57, §5.1; sample size from Cochran 1977, "Sampling Techniques", eq. 5.25):

- :func:`olofsson_sample_size`: total sample size ``n = (Σ_i W_i S_i / S(Ô))²`` with ``S_i = sqrt(U_i (1 − U_i))``
  (Olofsson et al. 2014 Eq. 13), from the mapped area proportions ``W_i``, the expected user's accuracies
  ``U_i`` and the target standard error of overall accuracy ``S(Ô)``.
- :func:`allocate`: per-stratum sample sizes, proportional to area with a minimum per class (the paper's
  recommendation for rare classes: "50-100 per class, then proportional"), capped by what a stratum can hold.
- :func:`draw_stratified_points`: a stratified random sample of pixel centres from a class raster, with an
  optional minimum distance between any two points (reduces spatial autocorrelation of the reference labels).

Analysis (Stehman 2014, "Estimating area and map accuracy for stratified random sampling when the strata are
different from the map classes", Int. J. Remote Sensing 35:4923-4939, Eqs. 2-5, 27-28):

- :func:`stratified_estimates`: overall, user's and producer's accuracy and class areas with standard errors and
  95 % intervals, from sample points with their design stratum, map class and reference class. When the strata
  are the map classes (the design of :func:`draw_stratified_points` on the same map) the estimates equal those
  of Olofsson et al. 2014 Eqs. 4-11 (up to the finite-population correction, which Olofsson et al. omit).

Everything here is numpy only (no torch, no QGIS); file I/O lives in the callers.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from .contract import REFERENCE_FIELD, STRATUM_FIELD, STRATUM_SIZE_FIELD  # the design layer's fields
from .errors import EngineError

#: two-sided 95 % normal quantile.
Z_95 = 1.959963984540054


# ------------------------------------------------------------------------------------------------------------
# design
# ------------------------------------------------------------------------------------------------------------
def olofsson_sample_size(weights: Sequence[float], expected_users_accuracy: Sequence[float],
                         target_se: float) -> int:
    """Total sample size for a target standard error of overall accuracy (Olofsson et al. 2014 Eq. 13).

    Args:
        weights: (K,) mapped area proportions ``W_i`` of the strata (normalised here to sum to 1).
        expected_users_accuracy: (K,) anticipated user's accuracy ``U_i`` of each stratum, 0 < U_i <= 1.
        target_se: wanted standard error of the overall-accuracy estimate, ``S(Ô)`` (a fraction, e.g. 0.01).

    Returns:
        ``ceil((Σ W_i sqrt(U_i (1 − U_i)) / S(Ô))²)``, at least 1.

    Raises:
        EngineError: lengths differ, a weight is negative or all are zero, a U_i outside (0, 1], or target_se
            not in (0, 0.5].
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    u = np.asarray(expected_users_accuracy, dtype=np.float64).ravel()
    if w.shape != u.shape:
        raise EngineError(f"{w.size} strata but {u.size} expected user's accuracies",
                          "give one expected user's accuracy per class (or one for all)")
    if np.any(w < 0) or w.sum() <= 0:
        raise EngineError("The strata weights must be non-negative with a positive total",
                          "the class map has no classified pixel")
    if np.any(~np.isfinite(u)) or np.any(u <= 0) or np.any(u > 1):
        raise EngineError(f"Expected user's accuracies must be in (0, 1], got {u.tolist()}",
                          "give fractions such as 0.9 (not percentages)")
    if not 0 < target_se <= 0.5:
        raise EngineError(f"Target standard error {target_se} is outside (0, 0.5]",
                          "give a fraction such as 0.01 for ±1 % standard error of overall accuracy")
    w = w / w.sum()
    s = np.sqrt(u * (1.0 - u))
    return max(1, int(math.ceil((float(np.sum(w * s)) / target_se) ** 2 - 1e-9)))


def allocate(n: int, weights: Sequence[float], minimum: int = 0, available: Sequence[int] | None = None
             ) -> np.ndarray:
    """Per-stratum sample sizes: proportional to ``weights``, at least ``minimum``, at most ``available``.

    Strata whose proportional share is below ``minimum`` get ``minimum``; the rest of ``n`` is shared by the other
    strata in proportion to their weights (repeated until stable), then rounded by largest remainders so the
    sizes add up to ``n`` (Olofsson et al. 2014 §5.1.1). A stratum never gets more than ``available`` units;
    when minimums alone exceed ``n``, every stratum gets its minimum and the total is larger than ``n``.

    Args:
        n: total sample size (>= 1).
        weights: (K,) mapped area proportions (any non-negative scale). Zero-weight strata get 0.
        minimum: minimum per stratum (0: purely proportional).
        available: (K,) maximum per stratum (e.g. its pixel count), or None.

    Returns:
        (K,) int64 sample sizes.

    Raises:
        EngineError: n < 1, a negative weight or minimum.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    if n < 1 or minimum < 0 or np.any(w < 0) or w.sum() <= 0:
        raise EngineError(f"Cannot allocate n={n} with minimum {minimum} over weights {w.tolist()}",
                          "give a positive sample size, a non-negative minimum and a non-empty map")
    k = w.size
    cap = np.full(k, np.iinfo(np.int64).max, np.int64) if available is None else np.asarray(available, np.int64)
    present = w > 0
    fixed = np.zeros(k, np.float64)
    is_fixed = np.zeros(k, bool)
    for _ in range(k + 1):
        free = present & ~is_fixed
        rest = n - fixed[is_fixed].sum()
        share = np.where(free, rest * w / max(w[free].sum(), 1e-300), 0.0)
        low = free & ((share < minimum) | (share > cap))
        if not low.any():
            break
        fixed[low] = np.minimum(np.maximum(share[low], minimum), cap[low])
        is_fixed |= low
    sizes = np.where(is_fixed, fixed, np.maximum(share, 0.0))
    out = np.floor(sizes).astype(np.int64)
    short = int(round(max(n, out.sum()) - out.sum()))
    if short > 0:
        order = np.argsort(-(sizes - out) * (present & ~is_fixed), kind="stable")
        for i in order[:short]:
            if present[i] and not is_fixed[i]:
                out[i] += 1
    return np.minimum(np.where(present, out, 0), cap)


class SpatialHash:
    """Points in a grid of square cells of side ``d`` (map units): O(1) 'any point closer than d?' queries."""

    def __init__(self, d: float):
        self.d = float(d)
        self.cells: dict[tuple[int, int], list[tuple[float, float]]] = {}

    def _key(self, x: float, y: float) -> tuple[int, int]:
        return int(math.floor(x / self.d)), int(math.floor(y / self.d))

    def far_enough(self, x: float, y: float) -> bool:
        if self.d <= 0:
            return True
        kx, ky = self._key(x, y)
        d2 = self.d * self.d
        for i in (kx - 1, kx, kx + 1):
            for j in (ky - 1, ky, ky + 1):
                for px, py in self.cells.get((i, j), ()):
                    if (px - x) ** 2 + (py - y) ** 2 < d2:
                        return False
        return True

    def add(self, x: float, y: float) -> None:
        if self.d > 0:
            self.cells.setdefault(self._key(x, y), []).append((x, y))


def draw_stratified_points(strata: np.ndarray, sizes: Mapping[int, int], pixel_size: tuple[float, float] = (1.0, 1.0),
                           min_distance: float = 0.0, seed: int = 0, max_tries_factor: int = 200
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, int]]:
    """Stratified random sample of pixels, with a minimum distance between any two sample points.

    Each stratum's pixels are visited in a uniformly random order (without replacement) and a pixel is kept when
    its centre is at least ``min_distance`` from every point kept so far (all strata together). Strata are
    filled from the smallest to the largest, so rare classes reach their size before space runs out. Without a
    minimum distance this is exactly stratified random sampling; with it, pixels next to kept points cannot be
    drawn (a small departure from equal inclusion probabilities that Olofsson et al. 2014 §5.1.1 accept for
    lower spatial autocorrelation).

    Args:
        strata: (H, W) integer stratum raster (0 = not in the population, e.g. nodata).
        sizes: {stratum value: sample size}.
        pixel_size: (xres, yres) in map units (metres) to measure distances.
        min_distance: minimum distance between points in map units (0: none).
        seed: random seed (same seed, same sample).
        max_tries_factor: at most ``factor * size + 1000`` candidate pixels are tried per stratum.

    Returns:
        ``rows, cols`` (N,) int64 pixel indices, ``stratum`` (N,) int64 value, and ``{value: achieved size}``
        (smaller than asked when the stratum has too few pixels or too little room at that distance).
    """
    rng = np.random.default_rng(seed)
    xres, yres = abs(float(pixel_size[0])), abs(float(pixel_size[1]))
    taken = SpatialHash(min_distance)
    height, width = strata.shape
    rows, cols, vals = [], [], []
    achieved: dict[int, int] = {}
    counts = {int(v): int(np.count_nonzero(strata == v)) for v in sizes}
    for value in sorted(sizes, key=lambda v: (counts[int(v)], v)):
        want = int(sizes[value])
        achieved[int(value)] = 0
        if want <= 0 or counts[int(value)] == 0:
            continue
        flat = np.flatnonzero(strata.ravel() == value)
        tries = min(flat.size, max_tries_factor * want + 1000)
        for idx in flat[rng.choice(flat.size, size=tries, replace=False)]:
            r, c = divmod(int(idx), width)
            x, y = (c + 0.5) * xres, (r + 0.5) * yres
            if not taken.far_enough(x, y):
                continue
            taken.add(x, y)
            rows.append(r)
            cols.append(c)
            vals.append(int(value))
            achieved[int(value)] += 1
            if achieved[int(value)] >= want:
                break
    return (np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(vals, np.int64), achieved)


# ------------------------------------------------------------------------------------------------------------
# analysis (Stehman 2014)
# ------------------------------------------------------------------------------------------------------------
def _ratio_estimate(y: np.ndarray, x: np.ndarray, h: np.ndarray, n_h: np.ndarray, big_n: np.ndarray
                    ) -> tuple[float, float]:
    """Stratified combined ratio estimator ``R̂ = Σ_h N_h ȳ_h / Σ_h N_h x̄_h`` and its variance (Stehman 2014
    Eqs. 27-28): ``V(R̂) = X̂⁻² Σ_h N_h² (1 − n_h/N_h) s²_{d,h} / n_h`` with ``d_u = y_u − R̂ x_u``.

    ``x = 1`` gives a stratified mean (a population proportion). Returns (nan, nan) when ``X̂ = 0`` and a nan
    variance when a stratum with samples has only one.
    """
    k = big_n.size
    ybar = np.bincount(h, weights=y, minlength=k) / np.maximum(n_h, 1)
    xbar = np.bincount(h, weights=x, minlength=k) / np.maximum(n_h, 1)
    x_hat = float(np.sum(big_n * xbar))
    if x_hat <= 0:
        return float("nan"), float("nan")
    r = float(np.sum(big_n * ybar)) / x_hat
    d = y - r * x
    dbar = np.bincount(h, weights=d, minlength=k) / np.maximum(n_h, 1)
    ss = np.bincount(h, weights=(d - dbar[h]) ** 2, minlength=k)
    sampled = n_h > 0
    if np.any(n_h[sampled] < 2):
        return r, float("nan")
    s2 = np.where(sampled, ss / np.maximum(n_h - 1, 1), 0.0)
    fpc = np.where(sampled, 1.0 - n_h / np.maximum(big_n, 1), 0.0)
    var = float(np.sum(np.where(sampled, big_n ** 2 * fpc * s2 / np.maximum(n_h, 1), 0.0))) / x_hat ** 2
    return r, var


def _se(var: float) -> float | None:
    return math.sqrt(var) if math.isfinite(var) and var >= 0 else None


def _none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def stratified_estimates(strata: Sequence[int], map_class: Sequence[int], reference: Sequence[int],
                         stratum_sizes: Mapping[int, float], classes: Sequence[int], pixel_area_m2: float = 1.0,
                         names: Sequence[str] | None = None, map_pixel_counts: Mapping[int, int] | None = None,
                         z: float = Z_95) -> dict[str, Any]:
    """Accuracy and area estimates from a stratified random sample (Stehman 2014; Olofsson et al. 2014).

    For each sample unit u (stratum h, map class m_u, reference class r_u) and class k:
    OA: ``y = 1[m = r]``; UA_k: ``y = 1[m = k ∧ r = k]``, ``x = 1[m = k]``; PA_k: ``y = 1[m = k ∧ r = k]``,
    ``x = 1[r = k]``; area proportion of k: ``y = 1[r = k]``; error-matrix cell (i, j): ``y = 1[m = i ∧ r = j]``;
    each estimated with :func:`_ratio_estimate` (x = 1 for proportions). Areas are proportions times the total
    area ``Σ_h N_h`` pixels × ``pixel_area_m2``; intervals are ``± z · SE``.

    Args:
        strata, map_class, reference: (n,) integer stratum, map class and reference class of each sample unit.
        stratum_sizes: {stratum: N_h}, the number of pixels in each stratum (population size).
        classes: class values to report (map and reference classes), in report order.
        pixel_area_m2: area of one pixel (m²).
        names: display names of ``classes``.
        map_pixel_counts: {class: mapped pixels} for the mapped areas in the table (optional).
        z: interval multiplier (1.96 for 95 %).

    Returns:
        The same layout as ``metrics.area_adjusted`` (``oa``, ``oa_se``, ``oa_ci95``, ``total_area_m2/ha``,
        ``proportions`` (K, K) rows = reference, columns = map, ``per_class`` with ``users_accuracy[_se|_ci95]``,
        ``producers_accuracy[_se|_ci95]``, ``area_proportion[_se]``, ``area_m2/ha[_ci95]``, ``samples`` (units
        mapped as the class)), plus ``strata`` ([{stratum, population_pixels, samples}]) and ``estimator``.

    Raises:
        EngineError: lengths differ, no sample, a sample stratum missing from ``stratum_sizes``, or a stratum
            with more samples than pixels.
    """
    h_val = np.asarray(strata, np.int64).ravel()
    m = np.asarray(map_class, np.int64).ravel()
    r = np.asarray(reference, np.int64).ravel()
    if not (h_val.size == m.size == r.size) or h_val.size == 0:
        raise EngineError(f"{h_val.size} strata, {m.size} map and {r.size} reference values",
                          "every labelled sample point needs a stratum, a map class and a reference class")
    missing = sorted(set(h_val.tolist()) - {int(s) for s in stratum_sizes})
    if missing:
        raise EngineError(f"Strata {missing} of the sample have no population size",
                          "keep the stratum fields written by the sample design")
    keys = sorted(int(s) for s in stratum_sizes)
    index = {s: i for i, s in enumerate(keys)}
    h = np.array([index[int(v)] for v in h_val], np.int64)
    big_n = np.array([float(stratum_sizes[s]) for s in keys])
    n_h = np.bincount(h, minlength=len(keys)).astype(np.float64)
    if np.any(n_h > big_n):
        raise EngineError("A stratum has more sample points than pixels",
                          "check the stratum size fields of the sample layer")
    ones = np.ones(h.size)
    oa, v_oa = _ratio_estimate((m == r).astype(float), ones, h, n_h, big_n)
    classes = [int(c) for c in classes]
    names = [str(c) for c in classes] if names is None else [str(s) for s in names]
    total_m2 = float(big_n.sum()) * float(pixel_area_m2)
    prop = np.zeros((len(classes), len(classes)))
    for j, rc in enumerate(classes):
        for i, mc in enumerate(classes):
            prop[j, i] = _ratio_estimate(((m == mc) & (r == rc)).astype(float), ones, h, n_h, big_n)[0]
    per_class = [_class_estimates(k, names[c], m, r, h, n_h, big_n, total_m2, pixel_area_m2, map_pixel_counts, z)
                 for c, k in enumerate(classes)]
    return {"estimator": "stratified (Stehman 2014; Olofsson et al. 2014 when strata = map classes)",
            "total_area_m2": total_m2, "total_area_ha": total_m2 / 1e4,
            "oa": _none(oa), "oa_se": _se(v_oa), "oa_ci95": None if _se(v_oa) is None else z * _se(v_oa),
            "proportions": prop.tolist(), "unsampled_map_classes": [], "per_class": per_class,
            "strata": [{"stratum": s, "population_pixels": int(big_n[i]), "samples": int(n_h[i])}
                       for i, s in enumerate(keys)]}


def _class_estimates(k: int, name: str, m: np.ndarray, r: np.ndarray, h: np.ndarray, n_h: np.ndarray,
                     big_n: np.ndarray, total_m2: float, pixel_area_m2: float,
                     map_pixel_counts: Mapping[int, int] | None, z: float) -> dict[str, Any]:
    """UA, PA and area of class ``k`` (one ``per_class`` entry of :func:`stratified_estimates`)."""
    hit = ((m == k) & (r == k)).astype(float)
    ua, v_ua = _ratio_estimate(hit, (m == k).astype(float), h, n_h, big_n)
    pa, v_pa = _ratio_estimate(hit, (r == k).astype(float), h, n_h, big_n)
    p, v_p = _ratio_estimate((r == k).astype(float), np.ones(h.size), h, n_h, big_n)
    se_ua, se_pa, se_p = _se(v_ua), _se(v_pa), _se(v_p)
    mapped = None if map_pixel_counts is None else int(map_pixel_counts.get(k, 0))
    total_px = total_m2 / pixel_area_m2 if pixel_area_m2 else 0.0
    return {
        "label": k, "name": name, "samples": int(np.count_nonzero(m == k)),
        "reference_samples": int(np.count_nonzero(r == k)),
        "map_pixels": mapped, "map_weight": None if mapped is None or not total_px else mapped / total_px,
        "users_accuracy": _none(ua), "users_accuracy_se": se_ua,
        "users_accuracy_ci95": None if se_ua is None else z * se_ua,
        "producers_accuracy": _none(pa), "producers_accuracy_se": se_pa,
        "producers_accuracy_ci95": None if se_pa is None else z * se_pa,
        "area_proportion": _none(p), "area_proportion_se": se_p,
        "area_m2": p * total_m2, "area_m2_ci95": None if se_p is None else z * se_p * total_m2,
        "area_ha": p * total_m2 / 1e4, "area_ha_ci95": None if se_p is None else z * se_p * total_m2 / 1e4,
        "mapped_area_m2": None if mapped is None else mapped * pixel_area_m2,
        "mapped_area_ha": None if mapped is None else mapped * pixel_area_m2 / 1e4,
    }


# ------------------------------------------------------------------------------------------------------------
# files: design a sample from a class map, assess a map with a labelled sample
# ------------------------------------------------------------------------------------------------------------


def _parse_expected_ua(expected: Any, values: Sequence[int], names: Mapping[int, str]) -> np.ndarray:
    """Expected user's accuracy per stratum from a number or a {class value or name: U} mapping (default 0.9)."""
    if expected is None or isinstance(expected, (int, float)):
        return np.full(len(values), 0.9 if expected is None else float(expected))
    by_key = {str(k).strip().lower(): float(v) for k, v in dict(expected).items()}
    default = by_key.pop("*", 0.9)
    unknown = set(by_key) - {str(v) for v in values} - {names.get(v, "").lower() for v in values}
    if unknown:
        raise EngineError(f"Expected user's accuracy given for unknown classes {sorted(unknown)}",
                          f"use class values or names of the map: {', '.join(str(v) for v in values)}")
    return np.array([by_key.get(str(v), by_key.get(names.get(v, "").lower(), default)) for v in values])


def design_sample(classification: str, output: str, *, target_se: float = 0.01, expected_ua: Any = None,
                  min_per_class: int = 50, total: int | None = None, min_distance: float = 0.0, seed: int = 0,
                  overwrite: bool = False, reporter: Any = None) -> dict[str, Any]:
    """Stratified random sample for accuracy assessment of a class map (strata = map classes), as points.

    The total size is :func:`olofsson_sample_size` (or ``total``), allocated by :func:`allocate` with
    ``min_per_class``, drawn by :func:`draw_stratified_points` at pixel centres. The layer has the fields
    ``sample_id``, ``stratum`` (map class value at design time), ``stratum_name``, ``stratum_pixels`` (N_h),
    ``stratum_area_ha``, ``map_class`` and an empty integer ``reference`` to be labelled; :func:`assess_points`
    reads the strata from these fields, so a later map (e.g. cleaned) can be assessed with the same sample.

    Args:
        classification: integer class raster (0 / nodata excluded). output: point layer (.gpkg/.geojson/.shp).
        target_se: target standard error of OA. expected_ua: a number for every class or {value or name: U}
            (``"*"`` for the rest); default 0.9. min_per_class: minimum per stratum. total: fixed total size
            instead of the formula. min_distance: metres (map units) between points. seed: random seed.

    Returns:
        ``{"output", "n_planned", "n", "strata": [{value, name, pixels, weight, expected_ua, planned, drawn}]}``.

    Raises:
        EngineError: not an integer class raster, no classified pixel, bad design parameters.
        OutputExistsError: ``output`` exists and ``overwrite`` is false (before any work).
    """
    import rasterio

    from .assess import pixel_area_m2
    from .io.points import driver_for, write_points
    from .io.rasters import read_class_entries
    from .progress import ensure

    rep = ensure(reporter)
    from .files import check_output

    check_output(output, overwrite)
    driver_for(output)
    with rasterio.open(classification) as src:
        if src.count != 1 or not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
            raise EngineError(f"{classification} is not a single-band integer class raster",
                              "give a classified raster such as the output of classify or cleanup")
        data = src.read(1)
        nodata = int(src.nodata) if src.nodata is not None else 0
        crs, transform = src.crs, src.transform
    if nodata != 0:
        data = np.where(data == nodata, 0, data)
    values = [int(v) for v in np.unique(data) if v != 0]
    if not values:
        raise EngineError(f"{classification} has no classified pixel", "give a classified raster")
    names = {e["value"]: e["name"] for e in read_class_entries(classification)}
    counts = np.array([np.count_nonzero(data == v) for v in values], np.float64)
    weights = counts / counts.sum()
    ua = _parse_expected_ua(expected_ua, values, names)
    n_planned = int(total) if total else olofsson_sample_size(weights, ua, target_se)
    sizes = allocate(n_planned, weights, min_per_class, counts.astype(np.int64))
    rep.info(f"Sample size {n_planned} (target SE of OA {target_se}), allocation "
             + ", ".join(f"{names.get(v, v)}: {s}" for v, s in zip(values, sizes)))
    rows, cols, strata, achieved = draw_stratified_points(
        data, dict(zip(values, sizes.tolist())), (transform.a, transform.e), min_distance, seed)
    for v, s in zip(values, sizes):
        if achieved[v] < s:
            rep.warning(f"Stratum {names.get(v, v)}: {achieved[v]} of {s} points fit at {min_distance:g} m apart")
    area_px, _ = pixel_area_m2(crs, transform, data.shape[0])
    xs, ys = rasterio.transform.xy(transform, rows, cols, offset="center")
    index = {v: i for i, v in enumerate(values)}
    schema = [("sample_id", "int"), (STRATUM_FIELD, "int"), ("stratum_name", "str:80"),
              (STRATUM_SIZE_FIELD, "int"), ("stratum_area_ha", "float"), ("map_class", "int"),
              (REFERENCE_FIELD, "int")]
    records = [{"sample_id": i + 1, STRATUM_FIELD: int(s), "stratum_name": names.get(int(s), str(s)),
                STRATUM_SIZE_FIELD: int(counts[index[int(s)]]), "stratum_area_ha": counts[index[int(s)]] * area_px / 1e4,
                "map_class": int(s), REFERENCE_FIELD: None} for i, s in enumerate(strata)]
    path = write_points(output, crs.to_wkt() if crs else "", xs, ys, schema, records, overwrite=overwrite)
    return {"output": path, "n_planned": n_planned, "n": int(len(strata)),
            "strata": [{"value": v, "name": names.get(v, str(v)), "pixels": int(c), "weight": float(w),
                        "expected_ua": float(u), "planned": int(s), "drawn": int(achieved[v])}
                       for v, c, w, u, s in zip(values, counts, weights, ua, sizes)]}


def _reference_codes(raw: Sequence[Any], names: Mapping[int, str], field: str, path: str) -> np.ndarray:
    """Reference class values from an integer field, or from a text field of class names or numbers (0 = none).

    Raises:
        EngineError: a text label that is neither a class name of the map nor a number.
    """
    by_name = {str(n).strip().lower(): v for v, n in names.items()}
    out = np.zeros(len(raw), np.int64)
    unknown = set()
    for i, v in enumerate(raw):
        if v is None or (isinstance(v, str) and not v.strip()):
            continue
        if isinstance(v, (int, np.integer)) or (isinstance(v, float) and float(v).is_integer()):
            out[i] = int(v)
            continue
        text = str(v).strip()
        if text.lower() in by_name:
            out[i] = by_name[text.lower()]
        elif text.lstrip("-").isdigit():
            out[i] = int(text)
        else:
            unknown.add(text)
    if unknown:
        raise EngineError(f"Reference labels {sorted(unknown)[:5]} in field {field!r} of {path} match no class of "
                          "the map", f"use the class values or names of the map: {', '.join(map(str, names.values()))}")
    return out


def _map_pixel_counts(src: Any, nodata: int, window: int = 2048) -> dict[int, int]:
    """{class value: pixel count} of a class raster, read in windows."""
    from rasterio.windows import Window

    counts: dict[int, int] = {}
    for r in range(0, src.height, window):
        for c in range(0, src.width, window):
            block = src.read(1, window=Window(c, r, min(window, src.width - c), min(window, src.height - r)))
            vals, n = np.unique(block[block != nodata], return_counts=True)
            for v, k in zip(vals.tolist(), n.tolist()):
                counts[int(v)] = counts.get(int(v), 0) + int(k)
    return counts


POINT_ASSESSMENT_NOTE = (
    "Accuracy, area and their 95 % intervals are stratified estimates (Stehman 2014; Olofsson et al. 2014) with the "
    "design's strata; the confusion matrix counts sample points. Kappa is not reported (Olofsson et al. 2014 advise "
    "against it); unweighted sample-count figures are listed apart.")


def _values_at(src: Any, xs: Sequence[float], ys: Sequence[float], nodata: int) -> np.ndarray:
    """(N,) int64 values of band 1 of the open raster ``src`` at the points (``nodata`` outside the raster)."""
    import rasterio

    if not len(xs):
        return np.zeros(0, np.int64)
    rows, cols = rasterio.transform.rowcol(src.transform, xs, ys)
    inside = (np.asarray(rows) >= 0) & (np.asarray(rows) < src.height) & (np.asarray(cols) >= 0) & \
        (np.asarray(cols) < src.width)
    sampled = np.array([int(v[0]) for v in src.sample(zip(xs, ys), indexes=1)], np.int64)
    return np.where(inside, sampled, nodata)


def _design_strata(strata_raw: Sequence[Any], sizes_raw: Sequence[Any]) -> tuple[np.ndarray, dict[int, float]]:
    """Stratum of each point (0 = none) and {stratum: N_h} from the design's fields."""
    strata = np.array([int(s) if s is not None else 0 for s in strata_raw], np.int64)
    sizes: dict[int, float] = {}
    for s, n in zip(strata, sizes_raw):
        if s and n is not None:
            sizes.setdefault(int(s), float(n))
    return strata, sizes


def assess_points(classification: str, points: str, class_field: str, *, layer: str | None = None,
                  stratum_field: str = STRATUM_FIELD, size_field: str = STRATUM_SIZE_FIELD,
                  reporter: Any = None) -> dict[str, Any]:
    """Assess a class map with a labelled stratified random sample of points (e.g. from :func:`design_sample`).

    The strata and their sizes come from the layer's ``stratum`` / ``stratum_pixels`` fields (the design), not
    from the map being assessed; without them the map classes are used as strata (post-stratification, with a
    warning). Points without a reference label or on nodata are left out (warning). Estimates:
    :func:`stratified_estimates`; sample-count metrics (``accuracy``): ``metrics.accuracy_metrics``.

    Returns:
        The ``assess`` result layout (``kind``, ``inputs``, ``grid``, ``classes``, ``samples``, ``accuracy``,
        ``area`` with OA / UA / PA / areas and 95 % intervals, ``map_pixel_counts``, ``warnings``, ``notes``).

    Raises:
        EngineError: unreadable inputs, missing fields, no labelled point on the map.
    """
    import datetime as _dt

    import rasterio

    from . import __version__
    from .assess import pixel_area_m2
    from .io.points import point_fields, read_points
    from .io.rasters import read_class_entries
    from .metrics import accuracy_metrics, confusion_matrix
    from .progress import ensure

    rep = ensure(reporter)
    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        rep.warning(msg)

    entries = read_class_entries(classification)
    names = {e["value"]: e["name"] for e in entries}
    colors = {e["value"]: e["color"] for e in entries}
    with rasterio.open(classification) as src:
        nodata = int(src.nodata) if src.nodata is not None else 0
        designed = {stratum_field, size_field} <= set(point_fields(points, layer))
        pts = read_points(points, [class_field] + ([stratum_field, size_field] if designed else []), layer,
                          src.crs.to_wkt() if src.crs else None)
        map_at = _values_at(src, pts["x"], pts["y"], nodata)
        counts = _map_pixel_counts(src, nodata)
        area_px, note = pixel_area_m2(src.crs, src.transform, src.height)
        grid = {"crs": src.crs.to_string() if src.crs else "", "width": src.width, "height": src.height,
                "pixel_area_m2": area_px}
    if note:
        warn(note)
    ref = _reference_codes(pts[class_field], names, class_field, points)
    if designed:
        strata, sizes = _design_strata(pts[stratum_field], pts[size_field])
    else:
        warn(f"{points} has no {stratum_field!r} / {size_field!r} fields: the map classes are used as strata "
             "(valid for a stratified random sample by these map classes or a simple random sample)")
        strata, sizes = map_at.copy(), {int(k): float(v) for k, v in counts.items()}
    used = (ref > 0) & (map_at != nodata) & (strata > 0)
    off_map = int(((ref > 0) & ~used).sum())
    for n, text in ((int((ref == 0).sum()), f" of {ref.size} points have no reference label and are left out"),
                    (off_map, " labelled points fall on nodata or outside the map (or have no stratum) and are left out")):
        if n:
            warn(f"{n}{text}")
    if not used.any():
        raise EngineError(f"No labelled point of {points} falls on a classified pixel of {classification}",
                          f"label the points in field {class_field!r} and check that they overlap the map")
    labels = sorted(set(ref[used].tolist()) | set(map_at[used].tolist()) | set(counts))
    label_names = [names.get(v, str(v)) for v in labels]
    counted = accuracy_metrics(confusion_matrix(ref[used], map_at[used], labels), labels, label_names)
    area = stratified_estimates(strata[used], map_at[used], ref[used], sizes, labels, area_px, label_names, counts)
    acc = _weighted_accuracy(counted, area)
    for key, value in (("oa", area["oa"]), ("oa_ci95", area["oa_ci95"])):
        rep.metric(key, value)
    return {
        "kind": "assessment", "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "engine_version": __version__,
        "inputs": {"classification": os.path.abspath(classification), "reference": os.path.abspath(points),
                   "class_field": class_field, "layer": layer, "stratum_field": stratum_field if designed else None},
        "grid": grid,
        "classes": [{"value": v, "name": names.get(v, str(v)), "color": colors.get(v, "")} for v in labels],
        "samples": {"points": int(ref.size), "used": int(used.sum()), "design_strata": bool(designed)},
        "accuracy": acc, "area": area, "unweighted_accuracy": {k: counted[k] for k in ("n", "oa", "aa", "kappa")},
        "map_pixel_counts": {str(v): int(counts.get(v, 0)) for v in labels}, "warnings": warnings,
        "notes": [POINT_ASSESSMENT_NOTE],
    }


def _weighted_accuracy(counted: dict[str, Any], area: dict[str, Any]) -> dict[str, Any]:
    """``accuracy_metrics`` output with OA, AA, UA, PA and F1 replaced by the stratified estimates (kappa None)."""
    acc = dict(counted)
    by_label = {c["label"]: c for c in area["per_class"]}
    per_class = []
    for c in counted["per_class"]:
        est = by_label.get(c["label"], {})
        ua, pa = est.get("users_accuracy"), est.get("producers_accuracy")
        f1 = 2 * ua * pa / (ua + pa) if ua is not None and pa is not None and ua + pa > 0 else None
        per_class.append({**c, "users_accuracy": ua, "producers_accuracy": pa, "f1": f1})
    pas = [c["producers_accuracy"] for c in per_class if c["producers_accuracy"] is not None]
    acc.update(oa=area["oa"], aa=float(np.mean(pas)) if pas else None, kappa=None, per_class=per_class,
               users_accuracy=[c["users_accuracy"] for c in per_class],
               producers_accuracy=[c["producers_accuracy"] for c in per_class], f1=[c["f1"] for c in per_class])
    return acc
