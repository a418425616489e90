"""Accuracy assessment: confusion matrix, OA / AA / kappa, per-class PA / UA / F1 and the
Olofsson et al. (2014) stratified area-adjusted estimator.

numpy and scikit-learn (no torch, no QGIS). The confusion matrix, OA, AA, kappa and PA / UA / F1 are
scikit-learn's; the area-adjusted estimator is Olofsson et al. 2014 (not in scikit-learn).

Conventions (spec §5.2, architecture.md "engine/metrics.py"):

* Confusion matrices are ``cm[i, j]`` = number of samples whose **reference** class is ``labels[i]`` and whose
  **map / predicted** class is ``labels[j]`` (rows = reference, columns = map). This is scikit-learn's
  ``confusion_matrix(y_true, y_pred)`` layout; Olofsson et al. 2014 print the transpose (rows = map).
* All accuracies are fractions in 0..1 (multiply by 100 for the paper's tables).
* Undefined values are reported as ``None`` (JSON friendly) in the returned dicts, never as NaN, and never raise:

  - producer's accuracy (recall) of a class with no reference samples -> ``None``;
  - user's accuracy (precision) of a class that was never predicted -> ``None``;
  - F1 = 2·TP / (2·TP + FP + FN) (scikit-learn >= 1.3 definition); ``None`` only when the class is absent from
    both reference and map (denominator 0);
  - AA = mean producer's accuracy over the classes that have reference samples (= scikit-learn
    ``balanced_accuracy_score``); ``None`` when no class has samples;
  - kappa with expected agreement 1 (a single class everywhere) -> ``None``; empty matrix -> OA/kappa ``None``;
  - kappa when a single class has reference samples -> ``None``: the expected agreement then equals the
    observed one, so Cohen's kappa is 0 whatever the map (scikit-learn returns that 0), which would read as a
    map no better than chance (e.g. a cross-validation fold whose held-out pixels are all forest).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from sklearn import metrics as skm

__all__ = ["confusion_matrix", "accuracy_metrics", "area_adjusted", "Z_95"]

#: two-sided 95 % normal quantile used by Olofsson et al. 2014 (their Eq. 11 / "±1.96·SE").
Z_95 = 1.959963984540054


def _none_if_nan(x) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else x


def confusion_matrix(y_true, y_pred, labels: Sequence) -> np.ndarray:
    """Confusion matrix with rows = reference and columns = map/prediction (``sklearn.metrics.confusion_matrix``).

    Args:
        y_true: (N,) reference class labels.
        y_pred: (N,) predicted / map class labels.
        labels: (K,) class labels fixing the row/column order. Samples whose reference *or* prediction is not in
            ``labels`` are ignored (as in scikit-learn).

    Returns:
        int64 array (K, K), ``cm[i, j]`` = #samples with reference ``labels[i]`` and prediction ``labels[j]``
        (spec §5.2). All zeros when no reference sample has one of the labels.

    Raises:
        ValueError: ``y_true`` and ``y_pred`` differ in length, or ``labels`` are not unique.
    """
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape[0]} vs {y_pred.shape[0]}")
    labels = np.asarray(list(labels))
    k = labels.shape[0]
    if np.unique(labels).shape[0] != k:
        raise ValueError("labels must be unique")
    if k == 0 or not np.isin(y_true, labels).any():
        return np.zeros((k, k), dtype=np.int64)          # scikit-learn refuses this case
    return skm.confusion_matrix(y_true, y_pred, labels=labels).astype(np.int64)


def _py(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


def _check_square(cm: Any) -> np.ndarray:
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    return cm


def accuracy_metrics(cm, labels: Sequence | None = None, names: Sequence[str] | None = None) -> dict:
    """Overall and per-class accuracy figures of a confusion matrix (spec §5.2, paper §4.1), by scikit-learn.

    Args:
        cm: (K, K) counts, rows = reference, columns = map (see :func:`confusion_matrix`).
        labels: (K,) class labels (values) in row order; default ``0..K-1``.
        names: (K,) display names; default ``str(label)``.

    Returns:
        dict (JSON-serialisable, fractions 0..1, ``None`` = undefined, see module docstring)::

            {"n": int, "oa": float|None, "aa": float|None, "kappa": float|None,
             "labels": [...], "names": [...], "confusion_matrix": [[int]],
             "per_class": [{"label", "name", "producers_accuracy", "users_accuracy", "f1",
                            "support", "predicted", "correct"}, ...],
             "producers_accuracy": [...], "users_accuracy": [...], "f1": [...], "support": [...]}

        OA = ``accuracy_score``; AA = mean recall over classes with reference samples (``balanced_accuracy_score``);
        kappa = ``cohen_kappa_score``; PA = recall, UA = precision, F1 (``precision_recall_fscore_support``), all
        computed from the matrix cells weighted by their counts.

    Raises:
        ValueError: a non-square matrix, or ``labels`` / ``names`` of another length.
    """
    cm = _check_square(cm)
    k = cm.shape[0]
    labels = list(range(k)) if labels is None else list(labels)
    names = [str(lab) for lab in labels] if names is None else [str(n) for n in names]
    if len(labels) != k or len(names) != k:
        raise ValueError(f"{len(labels)} labels and {len(names)} names for a {k}x{k} confusion matrix")
    n = float(cm.sum())
    tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    oa = kappa = aa = float("nan")
    ua = pa = f1 = np.full(k, np.nan)
    if n > 0:
        y_true, y_pred = np.divmod(np.arange(k * k), k)      # one sample per cell, weighted by its count
        weight, idx = cm.ravel(), list(range(k))
        ua, pa, f1, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=idx, sample_weight=weight,
                                                            zero_division=np.nan)
        oa = skm.accuracy_score(y_true, y_pred, sample_weight=weight)
        aa = float(np.nanmean(pa)) if np.any(support > 0) else float("nan")
        # kappa is defined when the expected agreement is below 1 and it can differ from the observed one
        if (support * predicted).sum() < n * n and np.count_nonzero(support) > 1:
            kappa = skm.cohen_kappa_score(y_true, y_pred, labels=idx, sample_weight=weight)
    per_class = [{"label": _py(labels[i]), "name": names[i], "producers_accuracy": _none_if_nan(pa[i]),
                  "users_accuracy": _none_if_nan(ua[i]), "f1": _none_if_nan(f1[i]), "support": int(support[i]),
                  "predicted": int(predicted[i]), "correct": int(tp[i])} for i in range(k)]
    return {
        "n": int(n), "oa": _none_if_nan(oa), "aa": _none_if_nan(aa), "kappa": _none_if_nan(kappa),
        "labels": [_py(lab) for lab in labels], "names": names,
        "confusion_matrix": cm.astype(np.int64).tolist(), "per_class": per_class,
        **{key: [c[key] for c in per_class] for key in ("producers_accuracy", "users_accuracy", "f1", "support")},
    }


def area_adjusted(cm, map_pixel_counts, pixel_area_m2: float, labels: Sequence | None = None,
                  names: Sequence[str] | None = None, z: float = Z_95) -> dict:
    """Stratified (map-class strata) area and accuracy estimator of Olofsson et al. 2014
    ("Good practices for estimating area and assessing accuracy of land change", RSE 148:42-57, §5).

    Notation (paper, with map class i = stratum, reference class j): ``n_ij`` sample counts, ``n_i.`` samples in
    map class i, ``W_i = A_m,i / A_tot`` mapped area proportion. Here ``cm`` uses this module's convention
    (rows = reference, columns = map), i.e. ``n_ij = cm[j, i]``.

    * Eq. 4 / 9:  p̂_ij = W_i n_ij / n_i.;  p̂_.j = Σ_i p̂_ij (estimated reference-class area proportion).
    * OA  Ô = Σ_j p̂_jj,           V(Ô) = Σ_i W_i² Û_i (1 − Û_i) / (n_i. − 1)                      (Eq. 5)
    * UA  Û_i = p̂_ii / p̂_i.,       V(Û_i) = Û_i (1 − Û_i) / (n_i. − 1)                             (Eq. 6)
    * PA  P̂_j = p̂_jj / p̂_.j,       V(P̂_j) = N̂_.j⁻² [ N_j.² (1 − P̂_j)² Û_j (1 − Û_j) / (n_j. − 1)
                                              + P̂_j² Σ_{i≠j} N_i.² (n_ij/n_i.)(1 − n_ij/n_i.) / (n_i. − 1) ]   (Eq. 7)
      with N_i. the map pixel count of class i and N̂_.j = Σ_i N_i. n_ij / n_i.
    * area  Â_j = p̂_.j · A_tot,   S(p̂_.j) = sqrt(Σ_i W_i² (n_ij/n_i.)(1 − n_ij/n_i.) / (n_i. − 1))  (Eq. 10),
      S(Â_j) = A_tot · S(p̂_.j); 95 % CI = ± z·S (Eq. 11, z = 1.96).

    Args:
        cm: (K, K) sample counts, rows = reference, columns = map.
        map_pixel_counts: (K,) number of map pixels of each class (same order), ``N_i.``.
        pixel_area_m2: area of one pixel in m² (900 for 30 m pixels).
        labels, names: optional class labels / names as in :func:`accuracy_metrics`.
        z: CI multiplier (default 1.96).

    Returns:
        dict (``None`` = undefined: a map class with < 2 samples has no variance, one with 0 samples no estimate;
        such strata are treated as contributing 0 to the proportions and the affected SEs are ``None``)::

            {"total_area_m2", "total_area_ha", "oa", "oa_se", "oa_ci95",
             "proportions": (K,K) p̂ with rows = reference, columns = map (same layout as cm),
             "per_class": [{"label", "name", "map_pixels", "map_weight", "samples",
                            "users_accuracy", "users_accuracy_se", "users_accuracy_ci95",
                            "producers_accuracy", "producers_accuracy_se", "producers_accuracy_ci95",
                            "area_proportion", "area_proportion_se",
                            "area_m2", "area_m2_ci95", "area_ha", "area_ha_ci95",
                            "mapped_area_m2", "mapped_area_ha"}]}

        ``*_ci95`` are half-widths (estimate ± value).
    """
    cm = _check_square(cm)
    k = cm.shape[0]
    counts = np.asarray(map_pixel_counts, dtype=np.float64).ravel()
    if counts.shape[0] != k:
        raise ValueError(f"{counts.shape[0]} map pixel counts for a {k}x{k} confusion matrix")
    if np.any(counts < 0) or counts.sum() <= 0:
        raise ValueError("map pixel counts must be non-negative with a positive total")
    labels = list(range(k)) if labels is None else list(labels)
    names = [str(lab) for lab in labels] if names is None else [str(n) for n in names]
    # A mapped class without reference samples is a stratum whose accuracy is unknown: counting it as 0 %
    # correct (or its area as 0 ± 0) would be wrong. The estimate then covers the sampled strata only.
    unsampled_mapped = (cm.sum(axis=0) == 0) & (counts > 0)
    if unsampled_mapped.any() and (counts[~unsampled_mapped] > 0).any():
        sub = area_adjusted(cm, np.where(unsampled_mapped, 0.0, counts), pixel_area_m2, labels, names, z)
        return _leave_out_unsampled(sub, counts, unsampled_mapped, pixel_area_m2, labels, names)
    est = _stratified_estimates(cm, counts)
    a_tot = counts.sum() * float(pixel_area_m2)
    sd = _se
    per_class = []
    for c in range(k):
        se_area = sd(est["var_p_ref"][c])
        area_m2 = est["p_ref"][c] * a_tot
        per_class.append({
            "label": _py(labels[c]), "name": names[c],
            "map_pixels": int(round(counts[c])), "map_weight": float(est["w"][c]), "samples": int(est["n_i"][c]),
            "users_accuracy": _none_if_nan(est["ua"][c]), "users_accuracy_se": sd(est["var_ua"][c]),
            "users_accuracy_ci95": _ci(est["var_ua"][c], z),
            "producers_accuracy": _none_if_nan(est["pa"][c]), "producers_accuracy_se": sd(est["var_pa"][c]),
            "producers_accuracy_ci95": _ci(est["var_pa"][c], z),
            "area_proportion": float(est["p_ref"][c]), "area_proportion_se": se_area,
            "area_m2": float(area_m2), "area_m2_ci95": None if se_area is None else z * se_area * a_tot,
            "area_ha": float(area_m2 / 1e4),
            "area_ha_ci95": None if se_area is None else z * se_area * a_tot / 1e4,
            "mapped_area_m2": float(counts[c] * pixel_area_m2),
            "mapped_area_ha": float(counts[c] * pixel_area_m2 / 1e4),
        })
    return {
        "total_area_m2": float(a_tot), "total_area_ha": float(a_tot / 1e4),
        "oa": est["oa"], "oa_se": sd(est["var_oa"]), "oa_ci95": _ci(est["var_oa"], z),
        "proportions": est["p"].T.tolist(),
        "unsampled_map_classes": [_py(labels[c]) for c in range(k) if not est["sampled"][c] and counts[c] > 0],
        "per_class": per_class,
    }


def _se(v: float) -> float | None:
    return _none_if_nan(math.sqrt(v)) if math.isfinite(v) and v >= 0 else None


def _ci(v: float, z: float) -> float | None:
    s = _se(v)
    return None if s is None else z * s


def _leave_out_unsampled(sub: dict, counts: np.ndarray, unsampled: np.ndarray, pixel_area_m2: float,
                         labels: list, names: list) -> dict:
    """The estimate of the sampled strata, with the mapped areas of every class and a note on the others."""
    for c, pc in enumerate(sub["per_class"]):
        pc["map_pixels"] = int(round(counts[c]))
        pc["mapped_area_m2"] = float(counts[c] * pixel_area_m2)
        pc["mapped_area_ha"] = float(counts[c] * pixel_area_m2 / 1e4)
        if unsampled[c]:
            for key in ("area_proportion", "area_proportion_se", "area_m2", "area_m2_ci95", "area_ha",
                        "area_ha_ci95"):
                pc[key] = None
    left_out = [c for c in range(len(counts)) if unsampled[c]]
    frac = float(counts[unsampled].sum() / counts.sum())
    sub["unsampled_map_classes"] = [_py(labels[c]) for c in left_out]
    sub["assessed_area_fraction"] = 1.0 - frac
    sub["note"] = (f"Map classes without reference pixels ({', '.join(names[c] for c in left_out)}"
                   f"; {frac:.1%} of the mapped area) are left out: the estimates cover the mapped area of "
                   "the other classes only.")
    return sub


def _stratified_estimates(cm: np.ndarray, counts: np.ndarray) -> dict:
    """Olofsson et al. 2014 Eqs. 4-10 on map-class strata: proportions, UA / PA / OA and their variances."""
    k = cm.shape[0]
    n_map = cm.T                        # n_map[i, j] = n_ij, i = map (stratum), j = reference
    n_i = n_map.sum(axis=1)             # samples per map class
    w = counts / counts.sum()           # W_i
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(n_i[:, None] > 0, n_map / n_i[:, None], 0.0)   # n_ij / n_i.
        inv_dof = np.where(n_i > 1, 1.0 / (n_i - 1.0), np.nan)         # 1/(n_i. - 1)
    p = w[:, None] * frac               # p̂_ij (map i, ref j)
    p_ref = p.sum(axis=0)               # p̂_.j
    diag = np.diag(p)
    ua = np.where(n_i > 0, np.diag(frac), np.nan)      # Û_i = n_ii / n_i.
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = np.where(p_ref > 0, diag / p_ref, np.nan)
    # Strata contribute to a variance only if sampled (n_i. > 0); a sampled stratum with n_i. = 1 makes it undefined.
    sampled = n_i > 0
    var_oa_terms = w ** 2 * ua * (1.0 - ua) * inv_dof                       # Eq. 5
    var_oa = float(np.sum(var_oa_terms[sampled])) if np.all(np.isfinite(var_oa_terms[sampled])) else float("nan")
    cell_var = frac * (1.0 - frac) * inv_dof[:, None]                       # (n_ij/n_i.)(1-n_ij/n_i.)/(n_i.-1)
    var_p_ref = np.full(k, np.nan)
    for j in range(k):
        terms = (w ** 2 * cell_var[:, j])[sampled]
        if np.all(np.isfinite(terms)):
            var_p_ref[j] = terms.sum()                                      # Eq. 10 (squared)
    n_hat_ref = (counts[:, None] * frac).sum(axis=0)                        # N̂_.j
    var_pa = np.full(k, np.nan)
    for j in range(k):
        if not (n_hat_ref[j] > 0 and sampled[j] and np.isfinite(inv_dof[j])):
            continue
        other = [i for i in range(k) if i != j and sampled[i]]
        if not all(np.isfinite(inv_dof[i]) for i in other):
            continue
        t1 = counts[j] ** 2 * (1.0 - pa[j]) ** 2 * ua[j] * (1.0 - ua[j]) * inv_dof[j]
        t2 = pa[j] ** 2 * sum(counts[i] ** 2 * cell_var[i, j] for i in other)
        var_pa[j] = (t1 + t2) / n_hat_ref[j] ** 2                           # Eq. 7
    return {"w": w, "n_i": n_i, "p": p, "p_ref": p_ref, "ua": ua, "pa": pa, "oa": float(diag.sum()),
            "sampled": sampled, "var_ua": ua * (1.0 - ua) * inv_dof, "var_oa": var_oa,    # Eq. 6 for UA
            "var_p_ref": var_p_ref, "var_pa": var_pa}
