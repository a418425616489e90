"""Whitewater (surf, breaking waves, whitecaps) drawn over the water polygons as extra training examples of water.

Why: analysts digitize open water, not the surf line, so no training polygon shows breaking waves. Their
spectrum (bright in the visible and near infrared like sand or roofs, dark in the short-wave infrared like water)
is of no trained class, and a classifier maps the surf line as the nearest one: built-up, on the ocean side of
every barrier island of the Delmarva scene (docs/benchmarks.md, "Full-scene map"). Drawing foam over the water
polygons' reflectance *before* the diffusion features are computed shows the network such pixels, with the label
water, in both its spectral and its diffusion inputs.

Physics of the added reflectance (the same for every band model with known centre wavelengths): sea foam reflects
almost evenly over the visible and near infrared and far less in the short-wave infrared, where the water in and
around its bubbles absorbs (Koepke 1984, Appl. Opt. 23(11); Frouin, Schwindling and Deschamps 1996, J. Geophys.
Res. 101(C6): about 40 % less at 1 µm and 85 % less at 1.6 µm than in the visible). Each foam stripe adds
``amplitude x shape(λ)`` to the raw reflectance, with ``amplitude`` 0.03-0.20 reflectance and a shape drawn per
stripe: 1 over 400-900 nm with a random tilt of ±30 % between 560 and 865 nm, 0.6 at 1 000 nm, 0.1-0.4 at
1 614 nm, 30-60 % of that at 2 202 nm (linear in between), and 0 in the atmospheric water-vapour bands
(1 340-1 450 and 1 800-1 950 nm, e.g. Sentinel-2 B10), which see no surface. Stripes are parallel bands across
each water polygon (random direction, a period of 8-20 px, ``coverage`` of each period foamed), as waves break
along lines.

The swash zone, where spent waves run up the beach, is the same surf on sand: a band a few pixels wide between the
dry beach and the sea, wet sand under a film of water and foam. Analysts digitize the dry beach, so its spectrum
(bright in the visible like sand or roofs, much darker than dry sand in the short-wave infrared) is of no trained
class either, and the seaward edge of every barrier-island beach was mapped as built-up. :func:`plan_swash` draws it
over the sand polygons, as stripes of wet sand with foam on top, trained as sand. Wet soil and sand darken with
moisture at every wavelength, most in the short-wave infrared, where water absorbs (Lobell and Asner 2002, Soil Sci.
Soc. Am. J. 66(3): reflectance falls exponentially with moisture, faster at longer wavelengths): each stripe
multiplies the raw reflectance by ``a(λ)^m``, with ``a`` 0.55 at 400 nm, 0.5 at 900 nm, 0.45 at 1 000 nm, 0.25 at
1 614 nm and 0.18 at 2 202 nm (linear in between; 1 in the water-vapour bands) and a moisture ``m`` of 0.5-1 per
stripe (the swash zone is near saturation; damp sand is already in the beach polygons), and adds foam of
``SWASH_FOAM`` reflectance with the shapes above. See docs/benchmarks.md, "The swash zone over the sand polygons".

Torch-free: numpy on the stack's windows (:class:`WhitewaterStack` wraps a ``grid.RasterStack``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["Whitewater", "WhitewaterStack", "whitewater_shapes", "water_classes", "reflectance_scale",
           "plan_whitewater", "sand_classes", "wet_sand_factor", "plan_swash", "AMPLITUDE", "SWASH_FOAM", "MOISTURE",
           "GREEN_NM", "NIR_NM", "SWIR_NM", "WATER_NDWI", "WATER_DARK", "BAND_TOLERANCE_NM", "band_near"]

#: added reflectance of a foam stripe at its visible plateau (0-1 reflectance), drawn uniformly per stripe
AMPLITUDE = (0.03, 0.20)
#: band centres (nm) used to find the water classes: green and near infrared, and how far a band may lie from them
GREEN_NM, NIR_NM, BAND_TOLERANCE_NM = 560.0, 842.0, 60.0
#: a class is water when its median normalised difference water index (McFeeters 1996: (green - NIR) /
#: (green + NIR)) exceeds this (open, clear or turbid water 0.3-0.7; vegetation and bare ground below 0), or when it
#: is darker than :data:`WATER_DARK` reflectance in the near and short-wave infrared (dark, humic lakes, whose
#: NIR may exceed their green: NDWI near 0)
WATER_NDWI, WATER_DARK = 0.2, 0.05
#: the short-wave infrared band centre (nm) of that darkness test (Sentinel-2 B11)
SWIR_NM = 1614.0
#: water-vapour absorption bands (nm): no surface signal, no foam added
ABSORPTION_NM = ((1340.0, 1450.0), (1800.0, 1950.0))
#: stripe period (px) and the number of spectral shapes drawn
PERIOD_PX, N_SHAPES = (8.0, 20.0), 64
#: a class is sand (for the swash zone) when its median is bright and bare: red (665 nm) at least ``SAND_RED`` and
#: 1.6 µm at least ``SAND_SWIR`` reflectance (dry quartz sand reflects 0.2-0.4 from the visible to the short-wave
#: infrared; roofs, asphalt and marsh are darker in the SWIR, most tilled soils in the red) and NDVI below
#: ``SAND_NDVI``
SAND_RED, SAND_SWIR, SAND_NDVI, RED_NM = 0.18, 0.20, 0.20, 665.0
#: wet-sand reflectance factor ``a(λ)`` at moisture 1 (module docstring), at these band centres (nm)
WET_NM, WET_FACTOR = (400.0, 900.0, 1000.0, 1614.0, 2202.0), (0.55, 0.50, 0.45, 0.25, 0.18)
#: moisture ``m`` per swash stripe, and the foam on it (added reflectance at the visible plateau), drawn uniformly
MOISTURE, SWASH_FOAM = (0.5, 1.0), (0.0, 0.10)


@dataclass
class Whitewater:
    """Foam stripes over the water polygons (or swash-zone stripes over the sand polygons), as sparse pixels of the
    reference grid.

    The reflectance a read adds at pixel ``i`` is ``amplitude[i] * shapes[shape[i]]``, in the raster's units.

    Attributes:
        rows, cols: int ``(M,)`` grid pixels with foam (inside water polygons; inside sand polygons for the swash).
        amplitude: float32 ``(M,)`` added reflectance at the visible plateau, in the raster's units (1 for the swash).
        shape: int ``(M,)`` index into ``shapes``.
        shapes: float32 ``(S, C_spec)`` relative added reflectance per spectral band (foam: ``N_SHAPES`` shapes that
            the stripes share; swash: one row per pixel, the added reflectance itself).
        polygon_ids: ``(M,)`` the polygon each pixel lies in. class_index: the class index of each pixel.
    """

    rows: np.ndarray
    cols: np.ndarray
    amplitude: np.ndarray
    shape: np.ndarray
    shapes: np.ndarray
    polygon_ids: np.ndarray
    class_index: np.ndarray

    def __len__(self) -> int:
        return int(len(self.rows))

    def sample(self, max_pixels: int, seed: int) -> np.ndarray:
        """Sorted indices of at most ``max_pixels`` foam pixels (a seeded random subset), to gather as training
        examples; the reads keep every stripe."""
        n = len(self)
        if n <= max_pixels:
            return np.arange(n)
        return np.sort(np.random.default_rng(seed).choice(n, int(max_pixels), replace=False))


class WhitewaterStack:
    """A ``grid.RasterStack`` whose spectral reads carry the foam of a :class:`Whitewater` (everything else is the
    wrapped stack's). Reads cost one bounding-box test over the M foam pixels on top of the stack's read."""

    def __init__(self, stack: Any, foam: Whitewater):
        self._stack = stack
        self._foam = foam

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stack, name)

    def read(self, row_off: int, col_off: int, height: int, width: int) -> Any:
        """``RasterStack.read`` plus the foam on the valid pixels of the window (spectral modality only)."""
        win = self._stack.read(row_off, col_off, height, width)
        f = self._foam
        r, c = f.rows - int(row_off), f.cols - int(col_off)
        inside = np.flatnonzero((r >= 0) & (r < height) & (c >= 0) & (c < width))
        if len(inside):
            r, c = r[inside], c[inside]
            add = f.amplitude[inside, None] * f.shapes[f.shape[inside]]          # (m, C_spec)
            add *= win.valid[r, c][:, None]
            win.arrays[0][:, r, c] += add.T.astype(np.float32)
        return win


def whitewater_shapes(wavelengths_nm: Sequence[float], rng: np.random.Generator, n: int = N_SHAPES) -> np.ndarray:
    """float32 ``(n, C)``: relative foam reflectance per band (module docstring), one random shape per row."""
    wl = np.asarray(wavelengths_nm, float)
    absorbed = _absorbed(wl)
    out = np.empty((n, len(wl)), np.float32)
    for k in range(n):
        tilt = rng.uniform(-0.3, 0.3)
        plateau = 1.0 + tilt * (np.clip(wl, 560.0, 865.0) - 560.0) / (865.0 - 560.0)
        swir1 = rng.uniform(0.1, 0.4)
        falloff = np.interp(wl, [900.0, 1000.0, 1614.0, 2202.0], [1.0, 0.6, swir1, swir1 * rng.uniform(0.3, 0.6)])
        shape = plateau * falloff
        shape[absorbed] = 0.0
        out[k] = shape
    return out


def _absorbed(wl: np.ndarray) -> np.ndarray:
    """bool ``(C,)``: bands inside the water-vapour absorption windows (:data:`ABSORPTION_NM`), which see no
    surface."""
    return np.logical_or.reduce([(wl > lo) & (wl < hi) for lo, hi in ABSORPTION_NM])


def band_near(wl: np.ndarray, centre: float) -> int | None:
    """Index of the band whose centre wavelength (nm, ``(C,)``; NaN = unknown) is nearest ``centre`` nm, or None
    when none lies within :data:`BAND_TOLERANCE_NM`."""
    dist = np.abs(np.asarray(wl, float) - centre)
    if not np.isfinite(dist).any():
        return None
    i = int(np.nanargmin(dist))
    return i if dist[i] <= BAND_TOLERANCE_NM else None


def _normalized_difference(m: np.ndarray, a: int, b: int) -> np.ndarray:
    """``(K,)``: ``(m[:, a] - m[:, b]) / (m[:, a] + m[:, b])`` of class medians ``m`` (NDWI, NDVI), 0-safe."""
    return (m[:, a] - m[:, b]) / np.maximum(m[:, a] + m[:, b], 1e-9)


def water_classes(medians: np.ndarray, wavelengths_nm: Sequence[float], scale: float) -> list[int]:
    """Class indices whose median spectrum is water: NDWI (green - NIR) / (green + NIR) above :data:`WATER_NDWI`,
    or NIR and short-wave infrared (1.6 µm, when there is such a band) both below :data:`WATER_DARK` reflectance.

    Args:
        medians: ``(K, C_spec)`` median raw reflectance per class, in the rasters' units. wavelengths_nm:
            ``(C_spec,)``. scale: raster units of reflectance 1 (:func:`reflectance_scale`).
    Returns:
        the water classes (may be empty); empty when no band lies within 60 nm of 560 or of 842 nm.
    """
    wl = np.asarray(wavelengths_nm, float)
    g, n, s = band_near(wl, GREEN_NM), band_near(wl, NIR_NM), band_near(wl, SWIR_NM)
    if g is None or n is None:
        return []
    m = np.asarray(medians, float)
    ndwi = _normalized_difference(m, g, n)
    dark = (m[:, n] < WATER_DARK * scale) & ((m[:, s] < WATER_DARK * scale) if s is not None else True)
    return [int(k) for k in np.flatnonzero((ndwi > WATER_NDWI) | dark)]


def reflectance_scale(medians: np.ndarray) -> float:
    """Raster units of reflectance 1: 10 000 for scaled integers (Sentinel-2 and Landsat products, BigEarthNet),
    1 for reflectance as a fraction (no class median above 2)."""
    return 10_000.0 if float(np.nanmax(medians)) > 2.0 else 1.0


def plan_whitewater(rows: np.ndarray, cols: np.ndarray, class_index: np.ndarray, polygon_ids: np.ndarray,
                    water: Sequence[int], wavelengths_nm: Sequence[float], scale: float, coverage: float,
                    seed: int) -> Whitewater | None:
    """Foam stripes over the labelled pixels of the ``water`` classes (module docstring).

    Args:
        rows, cols, class_index, polygon_ids: ``(N,)`` the labelled pixels (``labels.LabelledPixels``).
        water: water class indices (:func:`water_classes`). wavelengths_nm: ``(C_spec,)`` band centres.
        scale: raster units of reflectance 1 (:func:`reflectance_scale`). coverage: share of each stripe period
            with foam, in ``(0, 1]``. seed: directions, periods, amplitudes, shapes.
    Returns:
        :class:`Whitewater`, or None without any water pixel.
    """
    rng = np.random.default_rng(seed)
    shapes = whitewater_shapes(wavelengths_nm, rng)
    parts = []
    for sel, stripe, n in _stripes(rows, cols, polygon_ids, class_index, water, coverage, rng):
        amp = rng.uniform(*AMPLITUDE, n) * scale
        kind = rng.integers(0, len(shapes), n)
        parts.append((sel, amp[stripe], kind[stripe]))
    if not parts or not sum(len(p[0]) for p in parts):
        return None
    idx = np.concatenate([p[0] for p in parts])
    return Whitewater(rows[idx], cols[idx], np.concatenate([p[1] for p in parts]).astype(np.float32),
                      np.concatenate([p[2] for p in parts]), shapes, polygon_ids[idx], class_index[idx])


def _stripes(rows: np.ndarray, cols: np.ndarray, polygon_ids: np.ndarray, class_index: np.ndarray,
             classes: Sequence[int], coverage: float, rng: np.random.Generator):
    """Per polygon of ``classes``: ``(indices of its striped pixels, their stripe numbers 0.., number of stripes)``;
    parallel stripes in a random direction, a period of ``PERIOD_PX``, ``coverage`` of each period striped."""
    for pid in np.unique(polygon_ids[np.isin(class_index, list(classes))]):
        sel = np.flatnonzero(polygon_ids == pid)
        r, c = rows[sel].astype(float), cols[sel].astype(float)
        theta, period = rng.uniform(0.0, np.pi), rng.uniform(*PERIOD_PX)
        along = r * np.cos(theta) + c * np.sin(theta) + rng.uniform(0.0, period)
        stripe = np.floor(along / period).astype(np.int64)
        on = (along - stripe * period) < coverage * period
        stripe -= stripe.min()
        yield sel[on], stripe[on], int(stripe.max()) + 1


def sand_classes(medians: np.ndarray, wavelengths_nm: Sequence[float], scale: float,
                 water: Sequence[int]) -> list[int]:
    """Class indices whose median spectrum is dry sand (:data:`SAND_RED`, :data:`SAND_SWIR`, :data:`SAND_NDVI`),
    where the swash zone is drawn; none without a water class (no surf without water) or without red, NIR and
    1.6 µm bands.

    Args:
        medians: ``(K, C_spec)`` median raw reflectance per class, in the rasters' units. wavelengths_nm:
            ``(C_spec,)``. scale: raster units of reflectance 1. water: the water classes (:func:`water_classes`).
    """
    wl = np.asarray(wavelengths_nm, float)
    r, n, s = band_near(wl, RED_NM), band_near(wl, NIR_NM), band_near(wl, SWIR_NM)
    if not water or r is None or n is None or s is None:
        return []
    m = np.asarray(medians, float)
    ndvi = _normalized_difference(m, n, r)
    sand = (m[:, r] >= SAND_RED * scale) & (m[:, s] >= SAND_SWIR * scale) & (ndvi < SAND_NDVI)
    return [int(k) for k in np.flatnonzero(sand) if int(k) not in set(water)]


def wet_sand_factor(wavelengths_nm: Sequence[float], moisture: np.ndarray) -> np.ndarray:
    """float32 ``(M, C)``: the factor ``a(λ)^m`` of wet sand's reflectance (module docstring; Lobell and Asner
    2002), for ``moisture`` ``(M,)`` in [0, 1]; 1 in the water-vapour bands."""
    wl = np.asarray(wavelengths_nm, float)
    a = np.interp(wl, WET_NM, WET_FACTOR)
    a[_absorbed(wl)] = 1.0
    return (a[None, :] ** np.asarray(moisture, float)[:, None]).astype(np.float32)


def plan_swash(rows: np.ndarray, cols: np.ndarray, class_index: np.ndarray, polygon_ids: np.ndarray,
               spectra: np.ndarray, wavelengths_nm: Sequence[float], scale: float, coverage: float,
               seed: int) -> Whitewater | None:
    """The swash zone over sand pixels: stripes of wet sand with foam (module docstring), as a :class:`Whitewater`
    with one added spectrum per pixel.

    Args:
        rows, cols, class_index, polygon_ids: ``(N,)`` the labelled pixels of the sand classes only.
        spectra: ``(N, C_spec)`` their raw reflectance (0 where not valid: nothing is added there).
        wavelengths_nm: ``(C_spec,)``. scale: raster units of reflectance 1. coverage: share of each stripe period
            that is wet, in ``(0, 1]``. seed: directions, periods, moisture, foam.
    Returns:
        :class:`Whitewater` (``shapes[i]`` = the reflectance added at pixel ``i``), or None without a striped pixel.
    """
    rng = np.random.default_rng(seed)
    foam = whitewater_shapes(wavelengths_nm, rng)
    parts = []
    for sel, stripe, n in _stripes(rows, cols, polygon_ids, class_index, np.unique(class_index), coverage, rng):
        wet, amp = rng.uniform(*MOISTURE, n), rng.uniform(*SWASH_FOAM, n) * scale
        kind = rng.integers(0, len(foam), n)
        x = np.asarray(spectra[sel], np.float32)
        added = x * (wet_sand_factor(wavelengths_nm, wet[stripe]) - 1.0) + amp[stripe, None] * foam[kind[stripe]]
        parts.append((sel, np.where(x != 0, added, 0.0).astype(np.float32)))
    if not parts or not sum(len(p[0]) for p in parts):
        return None
    idx = np.concatenate([p[0] for p in parts])
    return Whitewater(rows[idx], cols[idx], np.ones(len(idx), np.float32), np.arange(len(idx)),
                      np.concatenate([p[1] for p in parts]), polygon_ids[idx], class_index[idx])
