"""Area of applicability of a trained model: where the scene is unlike every training pixel.

Cross-validation (``train.cross_validate``) estimates the accuracy of the map *where the scene resembles the
training polygons*. Pixels whose inputs lie far from every training pixel (breaking surf, a crop type nobody
digitized, cloud) are predicted by extrapolation, and the estimate says nothing about them. The *dissimilarity
index* and the *area of applicability* of Meyer and Pebesma (2021, "Predicting into unknown space? Estimating the
area of applicability of spatial prediction models", Methods in Ecology and Evolution 12(9):1620-1633, §2) mark
those pixels:

- inputs ``x`` (D,): the pixel's own normalised spectral and auxiliary values (the centre pixel of its patch,
  ``train.PatchSet.centre``; the random forest baseline's inputs), standardised with the training pixels' mean
  and standard deviation (equal weights: a deep network has no per-variable importance to weight them with);
- ``d_bar``: the mean Euclidean distance between two training pixels (estimated on a random sample of
  :data:`DISTANCE_SAMPLE` pixels);
- dissimilarity index ``DI(x) = min_i ||x - x_i|| / d_bar`` over the training pixels ``x_i`` (0 on a training
  pixel, dimensionless);
- threshold: DI of each training pixel against the training pixels of *every other polygon* (the
  polygon-grouped cross-validation of the paper's §2.3, one polygon left out at a time), then the outlier fence of
  those values, ``Q3 + 1.5 IQR``, capped at their maximum (as current versions of the paper's reference
  implementation, the R package CAST, take it; versions up to 0.7.0 took the largest value below the fence);
- area of applicability: ``DI <= threshold``. Outside it, the map extrapolates.

The training pixels are kept in the model file (tensors ``applicability.*``), at most :data:`MAX_REFERENCE` of
them (a random subset above that; the memory bound is :data:`MAX_REFERENCE` x D float32 values). Distances are
computed with scikit-learn's KD-tree (exact nearest neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import EngineError

#: Most training pixels kept as the reference set (20 000 x D float32: 1 MB for 13 bands).
MAX_REFERENCE = 20_000
#: Training pixels sampled to estimate the mean distance between two training pixels.
DISTANCE_SAMPLE = 2_000
#: Neighbours asked for at once when looking for the nearest training pixel of another polygon.
_NEIGHBOURS = 64
#: Tensor name prefix in the model file.
PREFIX = "applicability."
HINT_RETRAIN = ("this model was trained before the engine kept its training pixels; train it again to get the "
                "area of applicability")


@dataclass
class Applicability:
    """The training pixels of a model and the threshold of its area of applicability (module docstring).

    Attributes:
        points: ``(N, D)`` float32 standardised inputs of the reference training pixels.
        center, scale: ``(D,)`` float32 mean and standard deviation of the training inputs (standardisation).
        mean_distance: ``d_bar``, mean distance between two standardised training pixels.
        threshold: DI above which a pixel is outside the area of applicability.
        training_pixels: labelled pixels the reference was drawn from (N <= training_pixels).
    """

    points: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    mean_distance: float
    threshold: float
    training_pixels: int

    def __post_init__(self) -> None:
        self._tree: Any = None

    @property
    def n_inputs(self) -> int:
        """D, the number of inputs per pixel (spectral + auxiliary values)."""
        return int(self.points.shape[1])

    def dissimilarity(self, inputs: np.ndarray) -> np.ndarray:
        """Dissimilarity index of pixels.

        Args:
            inputs: ``(M, D)`` normalised centre-pixel inputs (the order of ``train.PatchSet.centre``).
        Returns:
            ``(M,)`` float32 DI >= 0 (0 on a training pixel).
        Raises:
            EngineError: ``D`` differs from the model's.
        """
        x = np.asarray(inputs, np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise EngineError(f"Dissimilarity index: {x.shape} inputs, the model has {self.n_inputs} per pixel",
                              "engine bug")
        if len(x) == 0:
            return np.zeros(0, np.float32)
        if self._tree is None:
            from sklearn.neighbors import KDTree

            self._tree = KDTree(self.points)
        d = self._tree.query((x - self.center) / self.scale, k=1)[0][:, 0]
        return (d / self.mean_distance).astype(np.float32)

    def window(self, spec: np.ndarray, aux: np.ndarray | None, valid: np.ndarray) -> np.ndarray:
        """Dissimilarity index of a window: ``spec (C_spec, h, w)``, ``aux (C_aux, h, w) | None`` normalised
        inputs (``data.inputs.ClassifierInputs.transform``), ``valid (h, w)`` bool -> ``(h, w)`` float32, NaN where
        not valid."""
        out = np.full(valid.shape, np.nan, np.float32)
        rr, cc = np.nonzero(valid)
        if rr.size:
            x = spec[:, rr, cc] if aux is None else np.concatenate([spec[:, rr, cc], aux[:, rr, cc]])
            out[rr, cc] = self.dissimilarity(x.T)
        return out

    # -- model file -----------------------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """Tensors for the model file (``applicability.*``)."""
        return {PREFIX + "points": np.ascontiguousarray(self.points, np.float32),
                PREFIX + "center": self.center.astype(np.float32), PREFIX + "scale": self.scale.astype(np.float32),
                PREFIX + "values": np.array([self.mean_distance, self.threshold, self.training_pixels], np.float64)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any]) -> "Applicability | None":
        """From model-file tensors (numpy arrays or CPU tensors); None for a file without them."""
        if PREFIX + "points" not in arrays:
            return None

        def get(name: str) -> np.ndarray:
            v = arrays[PREFIX + name]
            return np.asarray(v.cpu().numpy() if hasattr(v, "cpu") else v)

        mean_distance, threshold, n = (float(v) for v in get("values"))
        return cls(get("points").astype(np.float32), get("center").astype(np.float32),
                   get("scale").astype(np.float32), mean_distance, threshold, int(n))

    def summary(self) -> dict[str, Any]:
        """For the training report: ``threshold``, ``mean_distance``, ``reference_pixels``, ``training_pixels``."""
        return {"threshold": round(self.threshold, 5), "mean_distance": round(self.mean_distance, 5),
                "reference_pixels": int(len(self.points)), "training_pixels": int(self.training_pixels)}


def require_reference(tensors: dict[str, Any], model_path: str, needed_for: str, instead: str) -> None:
    """Refuse, before any tile is classified, a model file without its training pixels (``applicability.*``
    tensors; files trained by an earlier engine).

    Args:
        tensors: the model file's tensors. model_path: its path (named in the message).
        needed_for: what asked for them, e.g. ``"has no area of applicability"``. instead: the other way out.
    Raises:
        EngineError: the tensors are missing.
    """
    if PREFIX + "points" not in tensors:
        import os

        raise EngineError(f"{os.path.basename(model_path)} holds no training pixels, so it {needed_for}",
                          f"{HINT_RETRAIN}; or {instead}")


def _other_polygon_distance(z: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``(N,)`` distance of every row of ``z`` to the nearest row of another group (``inf`` if there is none)."""
    from sklearn.neighbors import KDTree

    tree = KDTree(z)
    k = min(len(z), _NEIGHBOURS)
    dist, idx = tree.query(z, k=k)
    other = groups[idx] != groups[:, None]
    found = other.any(axis=1)
    out = np.full(len(z), np.inf)
    out[found] = dist[found, other[found].argmax(axis=1)]
    for g in np.unique(groups[~found]):      # every neighbour asked for was in the same polygon: search exactly
        rest = groups != g
        if rest.any():
            mine = (groups == g) & ~found
            out[mine] = KDTree(z[rest]).query(z[mine], k=1)[0][:, 0]
    return out


def outlier_fence(values: np.ndarray) -> float:
    """``Q3 + 1.5 (Q3 - Q1)`` of the finite ``values`` (quartiles by linear interpolation, as R's default),
    capped at their maximum; ``inf`` when there is none."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("inf")
    q1, q3 = np.percentile(v, [25, 75])
    return float(min(q3 + 1.5 * (q3 - q1), v.max()))


def fit_applicability(inputs: np.ndarray, polygon_ids: np.ndarray, seed: int = 0) -> Applicability:
    """The area of applicability of a model trained on these pixels (module docstring).

    Args:
        inputs: ``(N, D)`` normalised centre-pixel inputs of every labelled pixel (``train.PatchSet.centre``).
        polygon_ids: ``(N,)`` polygon of each pixel (``data.labels.LabelledPixels.polygon_ids``).
        seed: for the reference subset (above :data:`MAX_REFERENCE` pixels) and the distance sample.
    Returns:
        :class:`Applicability`. With a single polygon there is no other polygon to compare with: the threshold is
        then the largest distance between two training pixels over ``d_bar``.
    """
    x = np.asarray(inputs, np.float32)
    groups = np.asarray(polygon_ids)
    rng = np.random.default_rng(seed)
    if len(x) > MAX_REFERENCE:
        keep = np.sort(rng.choice(len(x), MAX_REFERENCE, replace=False))
        x, groups = x[keep], groups[keep]
    center = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0).astype(np.float32)
    z = (x - center) / scale
    s = z[rng.choice(len(z), min(len(z), DISTANCE_SAMPLE), replace=False)]
    sq = (s * s).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * s @ s.T, 0.0)
    iu = np.triu_indices(len(s), 1)
    mean_distance = float(np.sqrt(d2[iu]).mean()) if iu[0].size else 1.0
    mean_distance = mean_distance if mean_distance > 0 else 1.0
    cv_di = _other_polygon_distance(z, groups) / mean_distance
    threshold = outlier_fence(cv_di)
    if not np.isfinite(threshold):        # one polygon only
        threshold = float(np.sqrt(d2.max())) / mean_distance if len(s) > 1 else 0.0
    return Applicability(z.astype(np.float32), center.astype(np.float32), scale, mean_distance, threshold,
                         int(len(inputs)))
