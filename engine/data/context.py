"""Landscape context: a water index averaged over hundreds of metres, derived from the spectral bands.

Why: a pixel's spectrum and its 5 x 5 patch can fit a class that belongs elsewhere in the landscape. On the
Delmarva scene the two structural errors of the map are of that kind: salt marsh drawn along inland forest edges
(no tide reaches there) and built-up drawn on the line between beach and marsh (no settlement on the barrier
islands). Whether a pixel lies near open water or far inland is decided at a scale of hundreds of metres, beyond the
patch and beyond the diffusion U-Net's receptive field (about ±13 px). The context gives that scale to the network as
auxiliary bands (docs/benchmarks.md, "Landscape context as an auxiliary input"; not part of the paper, which has no
input beyond the patch: an engine option, recorded in the model file so that ``classify`` derives it again).

What: McFeeters' (1996) NDWI ``(green - NIR) / (green + NIR)`` per valid pixel (green about 560 nm, NIR about
842 nm: Sentinel-2 B03 and B08), averaged with Gaussians of standard deviation ``sigma_m`` metres (default 100 and
500 m). The average is a normalised convolution (nodata and the scene border do not pull it towards 0) computed on
a coarse grid of about ``sigma_m[0] / 2`` metres (block means of the reference grid), written as a float32 GeoTIFF
in GDAL's memory file system, and read onto the reference grid by the stack like any auxiliary raster (bilinear
upsampling). Memory: the coarse grid plus one block of rows of the spectral bands, never the whole scene.

Torch-free (numpy, scipy.ndimage, rasterio).
"""

from __future__ import annotations

import contextlib
import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from scipy.ndimage import gaussian_filter

from ..contract import CONTEXT_SIGMAS_M
from ..errors import EngineError
from ..io.schema import Band
from .grid import Modality, RasterStack, ReferenceGrid, default_grid
from .whitewater import BAND_TOLERANCE_NM, GREEN_NM, NIR_NM, band_near

__all__ = ["ContextSpec", "LandscapeContext", "context_inputs", "context_band_indices", "CONTEXT_FILE"]

#: file name of the derived raster (the model file records its bands under this name)
CONTEXT_FILE = "landscape_context.tif"
#: rows of the reference grid read at a time while the context is computed (times the coarse factor)
_ROW_BLOCK = 256


@dataclass
class ContextSpec:
    """How the landscape context is derived; stored in the model file as ``context``.

    Attributes:
        index: ``"ndwi"`` (McFeeters 1996; the only index so far).
        sigma_m: Gaussian standard deviations in metres, one output band each (default 100 and 500 m).
    """

    index: str = "ndwi"
    sigma_m: list = field(default_factory=lambda: list(CONTEXT_SIGMAS_M))

    def to_dict(self) -> dict:
        return {"index": self.index, "sigma_m": [float(s) for s in self.sigma_m]}

    @classmethod
    def from_dict(cls, d: dict) -> "ContextSpec":
        """The spec of a model file's ``context``, validated (:meth:`validate`)."""
        return cls(str(d.get("index", "ndwi")), [float(s) for s in d.get("sigma_m") or []]).validate()

    def validate(self) -> "ContextSpec":
        """Raises EngineError for an unknown index, or other than 1 to 4 scales of 10 to 20 000 m; returns self."""
        if self.index != "ndwi":
            raise EngineError(f"Landscape context index {self.index!r} is not one this engine can derive",
                              "Use a model file written by this engine version, or update the plugin.")
        if not 1 <= len(self.sigma_m) <= 4 or not all(10.0 <= s <= 20_000.0 for s in self.sigma_m):
            raise EngineError(f"Landscape context scales {self.sigma_m} m: give 1 to 4 scales of 10 to 20 000 m",
                              "e.g. --context 100 500 (the default).")
        return self

    def describe(self) -> str:
        """``NDWI, Gaussians of 100, 500 m``: how logs and the training report name it."""
        return f"NDWI, Gaussians of {', '.join(f'{s:g}' for s in self.sigma_m)} m"

    def band_descriptions(self) -> list[str]:
        return [f"NDWI, Gaussian {s:g} m" for s in self.sigma_m]


def context_band_indices(band_info: Sequence[dict]) -> tuple[int, int]:
    """0-based positions of the green and the near-infrared band among the spectral bands.

    Args:
        band_info: ``RasterStack.band_info[0]`` (the spectral modality, in stack order).
    Raises:
        EngineError: no band within 60 nm of 560 nm or of 842 nm (names the wavelengths that were found).
    """
    wl = [Band.of_stack_band(0, "spectral", i).wavelength_nm for i in band_info]
    known = np.array([np.nan if w is None else w for w in wl], float)
    picks = [band_near(known, GREEN_NM), band_near(known, NIR_NM)]
    if None in picks:
        found = ", ".join(f"{w:g} nm" for w in known if np.isfinite(w)) or "none"
        raise EngineError(f"Landscape context needs a green band (about {GREEN_NM:g} nm) and a near-infrared band "
                          f"(about {NIR_NM:g} nm) within {BAND_TOLERANCE_NM:g} nm; the spectral bands' known "
                          f"wavelengths: {found}",
                          "Name Sentinel-2 bands B03 and B08 (file name or band description) or tag each band "
                          "with its wavelength, or train without landscape context.")
    return picks[0], picks[1]


def _metres_per_unit(grid: ReferenceGrid) -> float:
    """Metres per CRS unit along the grid axes (degrees: at the grid's centre latitude)."""
    if grid.crs.is_geographic:
        b = grid.bounds
        return 111_320.0 * math.cos(math.radians(0.5 * (b.bottom + b.top)))
    factor = grid.crs.linear_units_factor[1] if grid.crs.linear_units_factor else 1.0
    return float(factor)


def _block_sums(ndwi: np.ndarray, valid: np.ndarray, f: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums of NDWI and counts of valid pixels over ``f x f`` blocks of one band of rows ``(rows, W)``."""
    rows = ndwi.shape[0]
    pad_r, pad_c = (-rows) % f, (-width) % f
    v = np.pad(np.where(valid, ndwi, 0.0), ((0, pad_r), (0, pad_c)))
    n = np.pad(valid.astype(np.float32), ((0, pad_r), (0, pad_c)))
    shape = (v.shape[0] // f, f, v.shape[1] // f, f)
    return v.reshape(shape).sum(axis=(1, 3)), n.reshape(shape).sum(axis=(1, 3))


class LandscapeContext:
    """The context bands of a scene as an auxiliary :class:`Modality` on a coarse grid (module docstring).

    Args:
        spectral: the spectral modality (bands identified by name or wavelength tag).
        grid: the reference grid the stack will be read on (the whole scene: the context of a pixel must not
            depend on the extent asked for).
        spec: :class:`ContextSpec`.
        reporter: ``progress.Reporter`` (a progress bar over the rows).

    Attributes:
        modality: ``Modality(kind="context", name="context")`` whose one raster holds ``len(spec.sigma_m)``
            float32 bands of NDWI in [-1, 1] (0 far from any valid pixel).

    Raises:
        EngineError: no green or near-infrared band (:func:`context_band_indices`).

    Use as a context manager (or call :meth:`close`): the raster lives in memory until then.
    """

    def __init__(self, spectral: Modality, grid: ReferenceGrid, spec: ContextSpec, reporter: Any = None):
        from ..progress import ensure

        self._rep = ensure(reporter)
        with RasterStack([spectral], grid) as stack:
            green, nir = context_band_indices(stack.band_info[0])
            res_m = min(grid.res) * _metres_per_unit(grid)
            factor = max(1, int(round(min(spec.sigma_m) / 2.0 / res_m)))
            sums, counts = self._coarse_sums(stack, green, nir, factor)
        sigmas = [s / (res_m * factor) for s in spec.sigma_m]
        weight = [gaussian_filter(counts, s, mode="constant") for s in sigmas]
        bands = np.stack([np.where(w > 1e-3 * factor * factor, gaussian_filter(sums, s, mode="constant")
                                   / np.maximum(w, 1e-6), 0.0) for s, w in zip(sigmas, weight)]).astype(np.float32)
        self.path = f"/vsimem/bdgf_context_{uuid.uuid4().hex}/{CONTEXT_FILE}"
        transform = grid.transform * Affine.scale(factor, factor)
        with rasterio.open(self.path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1],
                           count=bands.shape[0], dtype="float32", crs=grid.crs, transform=transform) as dst:
            dst.write(bands)
            for b, text in enumerate(spec.band_descriptions(), start=1):
                dst.set_band_description(b, text)
        self.modality = Modality(paths=[self.path], kind="context", name="context")
        scene_km = min(grid.width, grid.height) * res_m / 1000.0
        self._rep.info(f"Landscape context: {spec.describe()} on a {res_m * factor:g} m grid, from spectral bands "
                       f"{green + 1} and {nir + 1} (green, near infrared)")
        if scene_km * 1000.0 < 6 * max(spec.sigma_m):
            self._rep.warning(f"The scene is {scene_km:.1f} km across: a landscape context of {max(spec.sigma_m):g} m "
                              "hardly varies over it, so the context says little here")

    def _coarse_sums(self, stack: RasterStack, green: int, nir: int, f: int) -> tuple[np.ndarray, np.ndarray]:
        """Per coarse cell: sum of the valid pixels' NDWI and their count, float32 ``(ceil(H/f), ceil(W/f))``."""
        g = stack.grid
        rows = max(f, _ROW_BLOCK // f * f)
        sums, counts = [], []
        with self._rep.task("context", math.ceil(g.height / rows), "blocks") as task:
            for r in range(0, g.height, rows):
                h = min(rows, g.height - r)
                win = stack.read(r, 0, h, g.width)
                b = win.arrays[0]
                gr, nr = b[green], b[nir]
                ok = win.valid & (gr > 0) & (nr > 0)
                ndwi = (gr - nr) / np.maximum(gr + nr, 1e-6)
                s, n = _block_sums(ndwi, ok, f, g.width)
                sums.append(s)
                counts.append(n)
                task.update(1)
                self._rep.check_cancelled()
        return np.concatenate(sums).astype(np.float32), np.concatenate(counts).astype(np.float32)

    def close(self) -> None:
        try:
            rasterio.shutil.delete(self.path)
        except Exception:   # already gone
            pass

    def __enter__(self) -> "LandscapeContext":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextlib.contextmanager
def context_inputs(spectral: Modality, auxiliary: Sequence[Modality], context: dict | None,
                   grid: ReferenceGrid | None = None, reporter: Any = None):
    """``(reference grid, auxiliary modalities)`` with the landscape context appended when ``context`` is given
    (a :class:`ContextSpec` as stored in the model file), derived over the whole ``grid`` (default: the inputs'
    ``default_grid``) and kept in memory until the block ends. Open the stack on the grid this yields::

        with context_inputs(spectral, aux, meta.context) as (grid, aux), RasterStack([spectral, *aux], grid) as s:

    Raises:
        EngineError: no green or near-infrared band among the spectral bands; an unknown context spec.
    """
    grid = grid if grid is not None else default_grid([spectral, *auxiliary])
    if context is None:
        yield grid, list(auxiliary)
        return
    with LandscapeContext(spectral, grid, ContextSpec.from_dict(context), reporter) as derived:
        yield grid, [*auxiliary, derived.modality]
