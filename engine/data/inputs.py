"""Normalised network inputs of a stack window (spec §1.3, §1.5).

- :class:`BandLayout`: the DDPM band axis of length S (paper Eq. 8: ``[auxiliary; spectral]``), robust min-max
  for spectral / elevation bands, SAR as linear intensity over its p98.
- :class:`ClassifierInputs`: the group network's spectral (z-score, optional PCA) and auxiliary (z-score)
  inputs.

Torch-free: both work on the numpy arrays of a :class:`engine.data.grid.StackWindow`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..errors import EngineError
from .grid import StackWindow, db_to_linear

__all__ = ["SPECTRAL", "SAR", "ELEVATION", "OTHER", "band_kind", "BandLayout", "ClassifierInputs"]

# Per-band kinds of the DDPM band axis (spec §1.5 "is_sar" generalised).
SPECTRAL = "spectral"   # Gaussian noise, masked by the adaptive modality masks (incl. padding / resampled bands)
SAR = "sar"             # multiplicative speckle (Eq. 8), never masked
ELEVATION = "elevation"  # auxiliary: Gaussian noise like spectral, never masked
OTHER = "other"          # any other auxiliary kind: Gaussian, never masked


def band_kind(kind: str) -> str:
    """Kind on the DDPM band axis of a band of a modality of ``kind`` (``contract.MODALITY_KINDS``)."""
    if kind == "spectral":
        return SPECTRAL
    if kind in ("sar_db", "sar_linear", "sar"):
        return SAR
    if kind == "elevation":
        return ELEVATION
    return OTHER


def _attr(stat: Any, name: str) -> float:
    if isinstance(stat, dict):
        return float(stat[name])
    return float(getattr(stat, name))


class BandLayout:
    """The DDPM band axis of length S (spec §1.5; paper Eq. 8: ``[auxiliary; spectral]``).

    Auxiliary bands (SAR, elevation, other; modality order, then file/band order) come first, then the spectral
    block. ``compact`` zero-pads the end to a multiple of 8 (padding bands count as spectral); ``parity``
    linearly resamples the spectral block along the band axis (``align_corners=True``) to ``S - n_aux`` bands.

    Attributes:
        modality_kinds: the stack's modality kinds (``grid.KINDS``) in stack order.
        band_counts: bands per modality in stack order.
        mode, S: band mode and the band-axis length (multiple of 8).
        kinds: per-band kind vector of length S (:data:`SPECTRAL`, :data:`SAR`, :data:`ELEVATION`, :data:`OTHER`).
        n_aux, n_spectral: auxiliary input bands; spectral input bands (before padding / resampling).
        clip, sar_clip: see :class:`DiffusionConfig`.
    """

    def __init__(self, modality_kinds: Sequence[str], band_counts: Sequence[int], mode: str = "compact",
                 parity_bands: int | None = None, clip: float = 1.5, sar_clip: float = 3.0):
        if len(modality_kinds) != len(band_counts):
            raise EngineError("band layout: one band count per modality is required", "")
        self.modality_kinds = list(modality_kinds)
        self.band_counts = [int(c) for c in band_counts]
        self.mode = mode
        self.parity_bands = parity_bands
        self.clip = float(clip)
        self.sar_clip = float(sar_clip)
        kinds = [band_kind(k) for k in self.modality_kinds]
        self._aux_src: list[tuple[int, int, str]] = []   # (modality index, band, kind) in layout order
        self._spec_src: list[tuple[int, int]] = []
        for m, (k, c) in enumerate(zip(kinds, self.band_counts)):
            for b in range(c):
                if k == SPECTRAL:
                    self._spec_src.append((m, b))
                else:
                    self._aux_src.append((m, b, k))
        self.n_aux = len(self._aux_src)
        self.n_spectral = len(self._spec_src)
        if self.n_spectral == 0:
            raise EngineError("the diffusion stage needs a spectral modality", "add the spectral bands")
        if mode == "compact":
            total = self.n_aux + self.n_spectral
            self.S = int(math.ceil(total / 8) * 8)
            n_spec_out = self.S - self.n_aux
            self._resample = None
        elif mode == "parity":
            if not parity_bands or parity_bands % 8 or parity_bands <= self.n_aux:
                raise EngineError(f"parity band count {parity_bands} must be a multiple of 8 larger than the "
                                  f"{self.n_aux} auxiliary bands", "choose e.g. 64, 128 or 256")
            self.S = int(parity_bands)
            n_spec_out = self.S - self.n_aux
            self._resample = _linear_resample_matrix(self.n_spectral, n_spec_out)
        else:
            raise EngineError(f"unknown band mode {mode!r}", "use 'compact' or 'parity'")
        self.kinds: list[str] = [k for (_, _, k) in self._aux_src] + [SPECTRAL] * n_spec_out

    # -- helpers -----------------------------------------------------------------------------------------
    @property
    def has_auxiliary(self) -> bool:
        """True when the band axis holds at least one auxiliary band (masking is meaningful)."""
        return self.n_aux > 0

    @classmethod
    def from_stack(cls, stack: Any, config: DiffusionConfig) -> "BandLayout":
        """Layout for a ``grid.RasterStack`` (uses ``stack.modalities[i].kind`` and ``stack.band_counts``)."""
        target = config.parity_bands
        if config.band_mode == "parity" and not target:
            target = parity_band_count(sum(stack.band_counts))
        return cls([m.kind for m in stack.modalities], list(stack.band_counts), config.band_mode,
                   target, config.clip, config.sar_clip)

    def to_dict(self) -> dict[str, Any]:
        return {"modality_kinds": self.modality_kinds, "band_counts": self.band_counts, "mode": self.mode,
                "parity_bands": self.parity_bands, "clip": self.clip, "sar_clip": self.sar_clip,
                "S": self.S, "kinds": self.kinds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BandLayout":
        return cls(d["modality_kinds"], d["band_counts"], d["mode"], d.get("parity_bands"),
                   d.get("clip", 1.5), d.get("sar_clip", 3.0))

    def check_stack(self, stack: Any) -> None:
        """Raise :class:`EngineError` when ``stack`` does not have the modalities / bands of this layout."""
        kinds = [m.kind for m in stack.modalities]
        counts = list(stack.band_counts)
        if [band_kind(k) for k in kinds] != [band_kind(k) for k in self.modality_kinds] \
                or counts != self.band_counts:
            raise EngineError(
                f"the input rasters ({list(zip(kinds, counts))}) do not match the pretrained model's bands "
                f"({list(zip(self.modality_kinds, self.band_counts))})",
                "give the same spectral and auxiliary rasters, in the same order, as for pretraining")

    # -- assembly ----------------------------------------------------------------------------------------
    def assemble(self, window: Any, stats: Sequence[Sequence[Any]]) -> np.ndarray:
        """Normalised DDPM input for one window (spec §1.3, §1.5).

        Args:
            window: ``grid.StackWindow``: ``arrays`` = one float32 ``(C_m, h, w)`` per modality (SAR in dB),
                ``valid`` bool ``(h, w)``.
            stats: ``stats[m][b]`` = ``BandStats`` (p2, p98, ...; SAR in dB) per modality and band.
        Returns:
            float32 ``(S, h, w)``: spectral and elevation robust min-max (p2 -> -1, p98 -> 1) clipped to
            ``[-clip, clip]``; SAR ``db_to_linear(x) / db_to_linear(p98_dB)`` clipped to ``[0, sar_clip]`` (the
            percentile commutes with the monotone dB transform); padding bands 0; invalid pixels 0.
        """
        arrays = window.arrays
        valid = np.asarray(window.valid, dtype=bool)
        h, w = valid.shape
        out = np.zeros((self.S, h, w), dtype=np.float32)
        for i, (m, b, k) in enumerate(self._aux_src):
            x = np.asarray(arrays[m][b], dtype=np.float32)
            st = stats[m][b]
            if k == SAR:
                lin = db_to_linear(x)
                scale = max(float(db_to_linear(_attr(st, "p98"))), 1e-12)
                out[i] = np.clip(lin / np.float32(scale), 0.0, self.sar_clip)
            else:
                out[i] = _robust_minmax(x, st, self.clip)
        spec = np.empty((self.n_spectral, h, w), dtype=np.float32)
        for j, (m, b) in enumerate(self._spec_src):
            spec[j] = _robust_minmax(np.asarray(arrays[m][b], dtype=np.float32), stats[m][b], self.clip)
        if self._resample is None:
            out[self.n_aux:self.n_aux + self.n_spectral] = spec
        else:
            out[self.n_aux:] = np.tensordot(self._resample, spec, axes=(1, 0)).astype(np.float32)
        out[:, ~valid] = 0.0
        return out


def _robust_minmax(x: np.ndarray, st: Any, clip: float) -> np.ndarray:
    lo, hi = _attr(st, "p2"), _attr(st, "p98")
    span = hi - lo if hi - lo > 1e-12 else 1.0
    y = (x - np.float32(lo)) * np.float32(2.0 / span) - np.float32(1.0)
    return np.clip(y, -clip, clip).astype(np.float32, copy=False)


def parity_band_count(n_bands: int) -> int:
    """Band axis S of the ``parity`` layout when none is given: ``max(64, 2 ** round(log2(n_bands)))``.

    [INFERRED] The paper's S (spec §1.5, from the Tab. 9 pretraining GFLOPs) is 256 for Augsburg (180 HS +
    4 SAR bands) and Berlin (244 + 4), 128 for YRE (166 + SAR) and 64 for LCZ HK (10 MS + 4 SAR): the power of
    two nearest to the band count on a log scale, at least 64, reproduces all four.

    Args:
        n_bands: spectral + auxiliary bands of the stack. Returns: S (a multiple of 8).
    """
    return max(64, 2 ** int(round(math.log2(max(int(n_bands), 1)))))


def _linear_resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of 1-D linear interpolation with ``align_corners=True`` (spec §1.5 parity)."""
    w = np.zeros((n_out, n_in), dtype=np.float64)
    if n_in == 1:
        w[:, 0] = 1.0
        return w
    pos = np.linspace(0.0, n_in - 1.0, n_out) if n_out > 1 else np.zeros(1)
    lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
    frac = pos - lo
    w[np.arange(n_out), lo] = 1.0 - frac
    w[np.arange(n_out), lo + 1] += frac
    return w


class ClassifierInputs:
    """Normalises stack windows into the group network's spectral and auxiliary inputs (spec §1.3).

    Spectral bands: per-band z-score (sample mean / std of ``grid.compute_statistics``); with more bands than
    ``pca_components``, PCA (whitened, fitted on a sample of z-scored valid pixels) to that many components.
    Auxiliary bands (SAR in dB, elevation in metres): per-band z-score. Invalid pixels (nodata, outside the
    grid) are 0 after normalisation, which is the zero padding of spec §1.4.

    Args:
        band_counts: bands per modality (spectral first).
        stats: ``stats[m][b]`` with ``mean`` / ``std`` (BandStats or dicts).
        pca_components, pca_mean, pca_scale: optional PCA basis ``(n_comp, C_spec)``, ``(C_spec,)``,
            ``(n_comp,)`` (1 / sqrt(explained variance)).
    """

    def __init__(self, band_counts: Sequence[int], stats: Sequence[Sequence[Any]],
                 pca_components: np.ndarray | None = None, pca_mean: np.ndarray | None = None,
                 pca_scale: np.ndarray | None = None):
        self.band_counts = [int(c) for c in band_counts]
        get = (lambda s, n: float(s[n]) if isinstance(s, dict) else float(getattr(s, n)))
        self.mean = [np.array([get(s, "mean") for s in mod], np.float32) for mod in stats]
        self.std = [np.array([max(get(s, "std"), 1e-6) for s in mod], np.float32) for mod in stats]
        self.pca_components = pca_components
        self.pca_mean = pca_mean
        self.pca_scale = pca_scale

    @property
    def n_spectral(self) -> int:
        """C_spec given to the network (PCA components when PCA is on)."""
        return int(self.pca_components.shape[0]) if self.pca_components is not None else self.band_counts[0]

    @property
    def n_auxiliary(self) -> int:
        """C_aux: all auxiliary bands concatenated (0 without auxiliary modality)."""
        return int(sum(self.band_counts[1:]))

    def fit_pca(self, stack: Any, n_components: int, seed: int = 0, sample_pixels: int = 50_000,
                window: Any = None) -> None:
        """Fit a whitened PCA on z-scored spectral pixels sampled from valid blocks (scikit-learn)."""
        from sklearn.decomposition import PCA

        rng = np.random.default_rng(seed)
        H, W = stack.grid.height, stack.grid.width
        r0, c0, h, w = (0, 0, H, W) if window is None else window
        block, got, samples = 64, 0, []
        for _ in range(400):
            r = r0 + int(rng.integers(0, max(h - block, 0) + 1))
            c = c0 + int(rng.integers(0, max(w - block, 0) + 1))
            win = stack.read(r, c, min(block, h), min(block, w))
            z = (win.arrays[0] - self.mean[0][:, None, None]) / self.std[0][:, None, None]
            px = z[:, win.valid].T
            samples.append(px)
            got += len(px)
            if got >= sample_pixels:
                break
        data = np.concatenate(samples)[:sample_pixels]
        n = min(int(n_components), data.shape[1], len(data))
        pca = PCA(n_components=n, whiten=True, random_state=seed).fit(data)
        self.pca_components = pca.components_.astype(np.float32)
        self.pca_mean = pca.mean_.astype(np.float32)
        self.pca_scale = (1.0 / np.sqrt(np.maximum(pca.explained_variance_, 1e-12))).astype(np.float32)

    def transform(self, window: StackWindow) -> tuple[np.ndarray, np.ndarray | None]:
        """``(x_spec (C_spec, h, w), x_aux (C_aux, h, w) | None)`` float32, 0 where invalid."""
        valid = window.valid
        spec = (window.arrays[0] - self.mean[0][:, None, None]) / self.std[0][:, None, None]
        if self.pca_components is not None:
            c, h, w = spec.shape
            flat = spec.reshape(c, -1).T - self.pca_mean
            spec = ((flat @ self.pca_components.T) * self.pca_scale).T.reshape(-1, h, w)
        spec = np.where(valid, spec, 0.0).astype(np.float32)
        aux = None
        if len(window.arrays) > 1:
            parts = [(a - m[:, None, None]) / s[:, None, None]
                     for a, m, s in zip(window.arrays[1:], self.mean[1:], self.std[1:])]
            aux = np.where(valid, np.concatenate(parts), 0.0).astype(np.float32)
        return spec, aux

    def arrays(self) -> dict[str, np.ndarray]:
        """The PCA basis as model-file entries (``pca.components``, ``pca.mean``, ``pca.scale``); {} without PCA."""
        if self.pca_components is None:
            return {}
        return {"pca.components": self.pca_components, "pca.mean": self.pca_mean, "pca.scale": self.pca_scale}

    @classmethod
    def from_arrays(cls, band_counts: Sequence[int], stats: Any, arrays: dict[str, Any]) -> "ClassifierInputs":
        """Inverse of :meth:`arrays` (numpy arrays or CPU torch tensors)."""
        if "pca.components" in arrays:
            return cls(band_counts, stats, *(np.asarray(arrays[f"pca.{k}"]) for k in ("components", "mean", "scale")))
        return cls(band_counts, stats)
