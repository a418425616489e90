"""Modalities, reference grid, windowed reading onto the grid, valid mask and band statistics.

Source: engine spec §1 (data pipeline: §1.3 normalisation, §1.4 zero padding / patch extraction,
§1.6 tiles) and ``docs/architecture.md`` (geodata API and data conventions).

Every raster is opened once and read through a :class:`rasterio.vrt.WarpedVRT` onto one
:class:`ReferenceGrid`; reads are windowed, so memory is bounded by the window, never by the scene.
Arrays are float32 ``(bands, rows, cols)``; row/column offsets are on the reference grid. SAR bands are
returned in dB whatever the file's kind (``sar_linear`` is converted with ``10·log10(max(x, 1e-10))``).
A window that reaches outside the grid is zero-filled there and marked invalid.

This module does not import torch (``db_to_linear`` accepts torch tensors by duck typing).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from ..contract import MODALITY_KINDS as KINDS
from ..errors import EngineError
from ..io.schema import BandStatistics
from ..progress import ensure


__all__ = [
    "KINDS", "Modality", "ReferenceGrid", "RasterStack", "StackWindow", "BandStats",
    "compute_statistics", "db_to_linear", "linear_to_db",
    "crs_equal", "default_grid",
]


# ---------------------------------------------------------------------------------------------------------------
# CRS and grid
# ---------------------------------------------------------------------------------------------------------------

def crs_equal(a: Any, b: Any) -> bool:
    """Semantic CRS equality (rasterio ``==``, then pyproj ``equals`` ignoring axis order); never string compare."""
    if a is None or b is None:
        return a is None and b is None
    a = a if isinstance(a, CRS) else CRS.from_user_input(a)
    b = b if isinstance(b, CRS) else CRS.from_user_input(b)
    try:
        if a == b:
            return True
    except Exception:  # pragma: no cover - defensive
        pass
    try:
        pa, pb = ProjCRS.from_wkt(a.to_wkt()), ProjCRS.from_wkt(b.to_wkt())
        return pa.is_exact_same(pb) or pa.equals(pb, ignore_axis_order=True)
    except Exception:  # pragma: no cover - defensive
        return False


def crs_name(crs: CRS) -> str:
    try:
        epsg = crs.to_epsg()
    except Exception:  # pragma: no cover
        epsg = None
    if epsg:
        return f"EPSG:{epsg}"
    try:
        return ProjCRS.from_wkt(crs.to_wkt()).name
    except Exception:  # pragma: no cover
        return crs.to_string()[:60]


def as_window(window: Any) -> tuple[int, int, int, int]:
    """(row_off, col_off, height, width) from a rasterio Window or a 4-tuple in that order."""
    if window is None:
        raise ValueError("window is None")
    if isinstance(window, Window):
        return int(window.row_off), int(window.col_off), int(window.height), int(window.width)
    r, c, h, w = window
    return int(r), int(c), int(h), int(w)


@dataclass
class ReferenceGrid:
    """The pixel grid every raster is read onto.

    Attributes:
        crs: :class:`rasterio.crs.CRS` (projected CRS, units metres in practice).
        transform: :class:`affine.Affine` pixel -> CRS coordinates (north-up).
        width, height: grid size in pixels.
    """

    crs: Any
    transform: Affine
    width: int
    height: int

    def __post_init__(self) -> None:
        if not isinstance(self.crs, CRS):
            self.crs = CRS.from_user_input(self.crs)
        if not isinstance(self.transform, Affine):
            self.transform = Affine(*list(self.transform)[:6])
        self.width, self.height = int(self.width), int(self.height)

    # -- geometry -------------------------------------------------------------------------------------------------
    @property
    def res(self) -> tuple[float, float]:
        """(xres, yres) pixel size in CRS units (metres for projected CRSs), positive."""
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    @property
    def bounds(self) -> rasterio.coords.BoundingBox:
        """(left, bottom, right, top) in the grid CRS."""
        from rasterio.transform import array_bounds

        west, south, east, north = array_bounds(self.height, self.width, self.transform)
        return rasterio.coords.BoundingBox(west, south, east, north)

    def window_transform(self, row_off: int, col_off: int) -> Affine:
        """Affine transform of a window whose top-left pixel is (row_off, col_off)."""
        return self.transform * Affine.translation(col_off, row_off)

    def window_for_bounds(self, bounds: Sequence[float], crs: Any = None, clip: bool = True) -> Window:
        """Integer window (whole pixels, rounded outward) covering ``bounds`` = (xmin, ymin, xmax, ymax).

        Args:
            bounds: extent in ``crs`` (default: the grid CRS).
            crs: CRS of ``bounds`` (anything rasterio accepts); reprojected with ``transform_bounds``.
            clip: clip the window to the grid.
        Raises:
            EngineError: the extent does not overlap the grid (when ``clip``) or is empty.
        """
        xmin, ymin, xmax, ymax = [float(v) for v in bounds]
        if crs is not None and not crs_equal(crs, self.crs):
            xmin, ymin, xmax, ymax = transform_bounds(crs, self.crs, xmin, ymin, xmax, ymax, densify_pts=21)
        if not (xmax > xmin and ymax > ymin):
            raise EngineError(f"Empty extent {tuple(bounds)}", "Give the extent as XMIN YMIN XMAX YMAX.")
        inv = ~self.transform
        xs = [xmin, xmax, xmin, xmax]
        ys = [ymin, ymin, ymax, ymax]
        cols, rows = zip(*[inv * (x, y) for x, y in zip(xs, ys)])
        eps = 1e-6
        r0, r1 = math.floor(min(rows) + eps), math.ceil(max(rows) - eps)
        c0, c1 = math.floor(min(cols) + eps), math.ceil(max(cols) - eps)
        if clip:
            r0, c0 = max(r0, 0), max(c0, 0)
            r1, c1 = min(r1, self.height), min(c1, self.width)
            if r1 <= r0 or c1 <= c0:
                raise EngineError(
                    f"Extent {tuple(round(v, 3) for v in bounds)} does not overlap the reference grid "
                    f"{tuple(round(v, 3) for v in self.bounds)} ({crs_name(self.crs)})",
                    "Check the extent and its CRS.")
        return Window(c0, r0, c1 - c0, r1 - r0)

    def crop(self, window: Any) -> "ReferenceGrid":
        """Sub-grid for a window (Window or (row_off, col_off, height, width)); same CRS and resolution."""
        r, c, h, w = as_window(window)
        return ReferenceGrid(self.crs, self.window_transform(r, c), w, h)

    def same_as(self, other: "ReferenceGrid", tol: float = 1e-6) -> bool:
        """Same CRS (semantic), size and transform (within ``tol`` of a pixel)."""
        if (self.width, self.height) != (other.width, other.height) or not crs_equal(self.crs, other.crs):
            return False
        rx, ry = self.res
        a, b = self.transform, other.transform
        return all(abs(x - y) <= tol * max(rx, ry) for x, y in zip(tuple(a)[:6], tuple(b)[:6]))

    # -- (de)serialisation -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain-data form for the model file: ``{"crs": WKT, "transform": [a,b,c,d,e,f], "width", "height"}``."""
        return {"crs": self.crs.to_wkt(), "transform": [float(v) for v in tuple(self.transform)[:6]],
                "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, d: dict) -> "ReferenceGrid":
        """Inverse of :meth:`to_dict`."""
        return cls(CRS.from_wkt(d["crs"]) if not isinstance(d["crs"], CRS) else d["crs"],
                   Affine(*d["transform"][:6]), int(d["width"]), int(d["height"]))

    @classmethod
    def from_raster(cls, path: str) -> "ReferenceGrid":
        """The grid of a raster file. Raises EngineError when missing, unreadable or without CRS."""
        with _open_raster(path) as ds:
            return cls(ds.crs, ds.transform, ds.width, ds.height)

    @classmethod
    def from_bounds(cls, crs: Any, res: float | Sequence[float], bounds: Sequence[float]) -> "ReferenceGrid":
        """Explicit grid: CRS, resolution (metres, one value or (xres, yres)) and extent (xmin, ymin, xmax, ymax).

        The origin is (xmin, ymax); the size is rounded up so the extent is covered.
        """
        xres, yres = (float(res), float(res)) if np.isscalar(res) else (float(res[0]), float(res[1]))
        if xres <= 0 or yres <= 0:
            raise EngineError(f"Resolution must be positive, got {res}", "Give the pixel size in CRS units.")
        xmin, ymin, xmax, ymax = [float(v) for v in bounds]
        if not (xmax > xmin and ymax > ymin):
            raise EngineError(f"Empty extent {tuple(bounds)}", "Give the extent as XMIN YMIN XMAX YMAX.")
        width = max(1, math.ceil((xmax - xmin) / xres - 1e-6))
        height = max(1, math.ceil((ymax - ymin) / yres - 1e-6))
        return cls(CRS.from_user_input(crs), Affine(xres, 0.0, xmin, 0.0, -yres, ymax), width, height)

    def __repr__(self) -> str:
        return (f"ReferenceGrid({crs_name(self.crs)}, res={self.res}, {self.width}x{self.height}, "
                f"origin=({self.transform.c}, {self.transform.f}))")


# ---------------------------------------------------------------------------------------------------------------
# modalities
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Modality:
    """An ordered list of rasters stacked band-wise, with a kind.

    Attributes:
        paths: raster files (any GDAL format); bands are taken in file order, then band order.
        kind: one of :data:`KINDS` (``spectral`` reflectance/DN, ``sar_db`` backscatter in dB, ``sar_linear``
            backscatter as linear intensity, ``elevation`` metres).
        nodata: explicit nodata value, used only for files that declare none.
        name: label for logs and the model file (default: the kind).
        expected_bands: band count the caller declared (checked when opened; EngineError on mismatch).
        categorical: read with nearest-neighbour resampling (class maps, masks).
        band_order: optional reordering of the bands as given: band ``k`` of the modality is the given band
            ``band_order[k]`` (0-based, a permutation; set by ``engine.checks.match_bands``).
    """

    paths: list
    kind: str
    nodata: float | None = None
    name: str = ""
    expected_bands: int | None = None
    categorical: bool = False
    band_order: list | None = None

    def __post_init__(self) -> None:
        if isinstance(self.paths, (str, os.PathLike)):
            self.paths = [self.paths]
        self.paths = [os.fspath(p) for p in self.paths]
        if self.kind not in KINDS:
            raise EngineError(f"Unknown modality kind {self.kind!r}", f"Use one of {', '.join(KINDS)}.")
        if not self.paths:
            raise EngineError(f"Modality {self.name or self.kind!r} has no raster files", "Give at least one file.")
        if not self.name:
            self.name = self.kind


def _open_raster(path: str):
    """Open a raster; EngineError for a missing/unreadable file or a raster without CRS."""
    path = os.fspath(path)
    if not os.path.exists(path) and "://" not in path and not path.startswith("/vsi"):
        raise EngineError(f"Raster file not found: {path}", "Check the path (and that the drive is mounted).")
    try:
        ds = rasterio.open(path)
    except (RasterioIOError, OSError) as exc:
        raise EngineError(f"Cannot read raster {path}: {exc}",
                          "The file is not a raster GDAL can read (corrupt, incomplete or another format).") from exc
    if not ds.crs:
        ds.close()
        raise EngineError(f"Raster {path} has no coordinate reference system",
                          "Assign a CRS (e.g. QGIS 'Assign projection' or gdal_edit.py -a_srs EPSG:xxxx).")
    return ds


def _band_label(path: str, ds, bidx: int) -> tuple[str, dict]:
    """'file.tif:band' plus description / wavelength when the file has them."""
    base = os.path.basename(path)
    desc = (ds.descriptions[bidx - 1] or "") if ds.descriptions else ""
    tags = {}
    try:
        tags = {k.lower(): v for k, v in ds.tags(bidx).items()}
    except Exception:  # pragma: no cover
        pass
    wl = tags.get("wavelength") or tags.get("central_wavelength") or tags.get("wavelength_nm")
    units = tags.get("wavelength_units", "nm" if wl else "")
    extra = [x for x in (desc, f"{wl} {units}".strip() if wl else "") if x]
    label = f"{base}:{bidx}" + (f" ({', '.join(extra)})" if extra else "")
    info = {"file": base, "band": bidx}
    if desc:
        info["description"] = desc
    if wl:
        info["wavelength"] = f"{wl} {units}".strip()
    return label, info


def default_grid(modalities: Sequence[Modality], extent: Sequence[float] | None = None, extent_crs: Any = None,
                 crs: Any = None, res: float | Sequence[float] | None = None) -> ReferenceGrid:
    """Reference grid for a stack.

    By default the grid (CRS, transform, width, height) of the finest-resolution raster of the first (spectral)
    modality (smallest pixel area; the first such file on ties). With ``crs`` and ``res`` (and ``extent``), an
    explicit grid (:meth:`ReferenceGrid.from_bounds`; without ``extent`` the spectral rasters' union extent is
    used). With only ``extent``, the default grid is cropped to the extent (whole pixels).

    Raises:
        EngineError: missing/unreadable file, raster without CRS, extent outside the grid.
    """
    spectral = modalities[0]
    best = None
    union = None
    for p in spectral.paths:
        with _open_raster(p) as ds:
            xr, yr = ds.res
            key = abs(xr * yr)
            if best is None or key < best[0] - 1e-12:
                best = (key, ReferenceGrid(ds.crs, ds.transform, ds.width, ds.height))
            if crs is not None:
                b = transform_bounds(ds.crs, CRS.from_user_input(crs), *ds.bounds, densify_pts=21)
                union = b if union is None else (min(union[0], b[0]), min(union[1], b[1]),
                                                 max(union[2], b[2]), max(union[3], b[3]))
    if crs is not None:
        if res is None:
            raise EngineError("An explicit grid CRS needs a resolution", "Give both the CRS and the pixel size.")
        bounds = union
        if extent is not None:
            bounds = extent
            if extent_crs is not None and not crs_equal(extent_crs, crs):
                bounds = transform_bounds(extent_crs, crs, *extent, densify_pts=21)
        return ReferenceGrid.from_bounds(crs, res, bounds)
    grid = best[1]
    if res is not None:
        raise EngineError("A grid resolution needs an explicit CRS", "Give the CRS together with the resolution.")
    if extent is not None:
        grid = grid.crop(grid.window_for_bounds(extent, extent_crs))
    return grid


# ---------------------------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class StackWindow:
    """One window of a :class:`RasterStack`.

    Attributes:
        arrays: one float32 ``(C_m, h, w)`` array per modality (SAR in dB), 0 where invalid.
        valid: bool ``(h, w)``: finite and not nodata in every band of every modality, and inside the grid.
        row_off, col_off: window origin on the reference grid (may be negative).
    """

    arrays: list
    valid: np.ndarray
    row_off: int = 0
    col_off: int = 0


@dataclass
class _Source:
    path: str
    ds: Any
    vrt: Any
    count: int
    src_nodata: float | None
    method: str


class RasterStack:
    """All modalities opened through WarpedVRT onto one reference grid; windowed reads.

    Args:
        modalities: ``[spectral, aux1, ...]``; the first must have kind ``spectral``.
        grid: the reference grid; default :func:`default_grid` (finest spectral raster).
        reporter: ``progress.Reporter`` told exactly which rasters are reprojected/resampled and how.

    Attributes:
        grid, modalities, band_counts (bands per modality), band_descriptions (per modality, per band:
        ``"file.tif:band (description, wavelength)"``), band_info (same as dicts), kinds (per modality).

    Resampling per raster: nearest when the raster is already on the grid (same CRS, resolution and pixel
    alignment) or the modality is categorical; ``average`` when the source is finer than the grid
    (downsampling); ``bilinear`` otherwise (upsampling / reprojection of continuous data).

    Raises:
        EngineError: first modality not spectral, missing/unreadable file, raster without CRS, band count
            different from ``expected_bands``, raster that does not overlap the grid.

    Not thread-safe (GDAL datasets); use one stack per thread. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, modalities: Sequence[Modality], grid: ReferenceGrid | None = None, reporter: Any = None):
        self._log = ensure(reporter).log
        self.modalities = list(modalities)
        if not self.modalities:
            raise EngineError("No input rasters", "Give at least the spectral rasters.")
        if self.modalities[0].kind != "spectral":
            raise EngineError(f"The first modality must be spectral, got {self.modalities[0].kind!r}",
                              "Put the spectral rasters first; SAR/elevation are auxiliary modalities.")
        for m in self.modalities[1:]:
            if m.kind == "spectral":
                raise EngineError(f"Only one spectral modality is supported; {m.name!r} is spectral too",
                                  "Put all spectral files in one modality.")
        self.grid = grid if grid is not None else default_grid(self.modalities)
        self._sources: list[list[_Source]] = []
        self.band_counts: list[int] = []
        self.band_descriptions: list[list[str]] = []
        self.band_info: list[list[dict]] = []
        try:
            for m in self.modalities:
                self._open_modality(m)
        except BaseException:
            self.close()
            raise
        self._log("info", f"Reference grid: {crs_name(self.grid.crs)}, {self.grid.width} x {self.grid.height} px "
                          f"at {self.grid.res[0]:g} x {self.grid.res[1]:g} m")

    @property
    def kinds(self) -> list[str]:
        return [m.kind for m in self.modalities]

    @property
    def n_bands(self) -> int:
        return int(sum(self.band_counts))

    def _open_modality(self, m: Modality) -> None:
        sources, descs, infos = [], [], []
        g = self.grid
        gxr, gyr = g.res
        for path in m.paths:
            ds = _open_raster(path)
            try:
                sources.append(self._open_source(m, path, ds, g, gxr, gyr))
            except BaseException:
                ds.close()
                raise
            for b in range(1, ds.count + 1):
                label, info = _band_label(path, ds, b)
                descs.append(label)
                infos.append(info)
        self._sources.append(sources)
        n = sum(s.count for s in sources)
        if m.band_order is not None:
            if sorted(m.band_order) != list(range(n)):
                raise EngineError(f"Band order {m.band_order} of modality {m.name!r} is not a permutation of its "
                                  f"{n} bands", "Give each band index once.")
            descs, infos = [descs[i] for i in m.band_order], [infos[i] for i in m.band_order]
        if m.expected_bands is not None and n != int(m.expected_bands):
            raise EngineError(
                f"Modality {m.name!r} has {n} bands in {len(m.paths)} file(s) "
                f"({', '.join(os.path.basename(p) for p in m.paths)}), expected {m.expected_bands}",
                "Give the rasters the model was trained with, in the same order.")
        self.band_counts.append(n)
        self.band_descriptions.append(descs)
        self.band_info.append(infos)

    def _open_source(self, m: Modality, path: str, ds, g: ReferenceGrid, gxr: float, gyr: float) -> _Source:
        name = os.path.basename(path)
        same_crs = crs_equal(ds.crs, g.crs)
        # overlap check in the grid CRS
        try:
            sb = ds.bounds if same_crs else transform_bounds(ds.crs, g.crs, *ds.bounds, densify_pts=21)
        except Exception as exc:
            raise EngineError(f"Cannot transform the extent of {path} from {crs_name(ds.crs)} to "
                              f"{crs_name(g.crs)}: {exc}", "Check the raster's CRS.") from exc
        gb = g.bounds
        ix = min(sb[2], gb.right) - max(sb[0], gb.left)
        iy = min(sb[3], gb.top) - max(sb[1], gb.bottom)
        if ix <= 0 or iy <= 0:
            raise EngineError(
                f"Raster {path} ({crs_name(ds.crs)}, extent {tuple(round(v, 2) for v in ds.bounds)}) does not "
                f"overlap the reference grid (extent {tuple(round(v, 2) for v in gb)} in {crs_name(g.crs)})",
                "Use rasters that cover the same area (and check their CRS).")
        cover = ix * iy / ((gb.right - gb.left) * (gb.top - gb.bottom))
        if cover < 0.999:
            self._log("warning" if cover < 0.99 else "info", f"{m.name}: {name} covers {100 * min(cover, 1):.1f} % of the grid; "
                                 f"pixels outside it are invalid")
        sxr, syr = ds.res if same_crs else ((sb[2] - sb[0]) / ds.width, (sb[3] - sb[1]) / ds.height)
        st = ds.transform
        aligned = (same_crs and abs(st.b) < 1e-12 and abs(st.d) < 1e-12 and abs(sxr - gxr) <= 1e-6 * gxr
                   and abs(syr - gyr) <= 1e-6 * gyr and np.sign(st.e) == np.sign(g.transform.e)
                   and _is_int((st.c - g.transform.c) / gxr) and _is_int((st.f - g.transform.f) / gyr))
        if m.categorical:
            method = Resampling.nearest
            what = "nearest (categorical)"
        elif aligned:
            method = Resampling.nearest
            what = "no resampling (already on the grid)"
        elif sxr < gxr * (1 - 1e-6) or syr < gyr * (1 - 1e-6):
            method = Resampling.average
            what = "downsampled, average"
        else:
            method = Resampling.bilinear
            what = "upsampled, bilinear" if (sxr > gxr * (1 + 1e-6) or syr > gyr * (1 + 1e-6)) else "bilinear"
        src_nodata = ds.nodata if ds.nodata is not None else m.nodata
        msg = f"{m.name}: {name} {sxr:g} x {syr:g} m -> {gxr:g} x {gyr:g} m, {what}"
        if not same_crs:
            msg += f", reprojected from {crs_name(ds.crs)} to {crs_name(g.crs)}"
        elif not aligned and not m.categorical and abs(sxr - gxr) <= 1e-6 * gxr and abs(syr - gyr) <= 1e-6 * gyr:
            msg += " (pixel grid shifted)"
        if ds.nodata is None and m.nodata is not None:
            msg += f", nodata {m.nodata:g} (modality)"
        elif ds.nodata is not None:
            msg += f", nodata {ds.nodata:g} (file)"
        self._log("info", msg)
        kw = {} if src_nodata is None else {"src_nodata": src_nodata}
        vrt = WarpedVRT(ds, crs=g.crs, transform=g.transform, width=g.width, height=g.height,
                        resampling=method, nodata=np.nan, dtype="float32", **kw)
        return _Source(path, ds, vrt, ds.count, src_nodata, str(method.name))

    def read(self, row_off: int, col_off: int, height: int, width: int) -> StackWindow:
        """Read a window of the grid (it may cross the grid border).

        Args:
            row_off, col_off: top-left pixel on the reference grid (may be negative).
            height, width: window size in pixels (> 0).
        Returns:
            :class:`StackWindow`: float32 ``(C_m, height, width)`` per modality (SAR in dB), 0 where invalid;
            ``valid`` bool ``(height, width)``, False outside the grid (zero padding, spec §1.4).
        Memory: O(bands x height x width), independent of the scene.
        """
        row_off, col_off, height, width = int(row_off), int(col_off), int(height), int(width)
        if height <= 0 or width <= 0:
            raise ValueError(f"window size must be positive, got {height}x{width}")
        g = self.grid
        r0, c0 = max(row_off, 0), max(col_off, 0)
        r1, c1 = min(row_off + height, g.height), min(col_off + width, g.width)
        arrays = [np.zeros((n, height, width), np.float32) for n in self.band_counts]
        valid = np.zeros((height, width), bool)
        if r1 <= r0 or c1 <= c0:
            return StackWindow(arrays, valid, row_off, col_off)
        inner = (r0 == row_off and c0 == col_off and r1 - r0 == height and c1 - c0 == width)
        win = Window(c0, r0, c1 - c0, r1 - r0)
        sl = (slice(r0 - row_off, r1 - row_off), slice(c0 - col_off, c1 - col_off))
        ok = np.ones((r1 - r0, c1 - c0), bool)
        for m, sources, arr in zip(self.modalities, self._sources, arrays):
            b = 0
            for s in sources:
                if inner:
                    part = arr[b:b + s.count]
                    s.vrt.read(window=win, out=part)
                else:
                    part = s.vrt.read(window=win, out_dtype="float32")
                    arr[b:b + s.count, sl[0], sl[1]] = part
                    part = arr[b:b + s.count, sl[0], sl[1]]
                ok &= np.isfinite(part).all(axis=0)
                b += s.count
            if m.kind == "sar_linear":
                sub = arr[:, sl[0], sl[1]]
                with np.errstate(invalid="ignore"):
                    np.maximum(sub, 1e-10, out=sub)
                np.log10(sub, out=sub)
                sub *= 10.0
                arr[:, sl[0], sl[1]] = sub
                ok &= np.isfinite(sub).all(axis=0)
        valid[sl] = ok
        for k, m in enumerate(self.modalities):
            if m.band_order is not None:
                arrays[k] = arrays[k][m.band_order]
        if not ok.all():
            for arr in arrays:
                arr[:, ~valid] = 0.0
        return StackWindow(arrays, valid, row_off, col_off)

    def close(self) -> None:
        """Close every VRT and dataset (idempotent)."""
        for sources in getattr(self, "_sources", []):
            for s in sources:
                for obj in (s.vrt, s.ds):
                    try:
                        obj.close()
                    except Exception:  # pragma: no cover
                        pass
        self._sources = []

    def __enter__(self) -> "RasterStack":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def describe(self) -> dict:
        """Plain-data description for the model file: grid, kinds, names, band counts and descriptions."""
        return {"grid": self.grid.to_dict(),
                "modalities": [{"name": m.name, "kind": m.kind, "bands": n, "nodata": m.nodata,
                                "band_descriptions": d, "band_info": i}
                               for m, n, d, i in zip(self.modalities, self.band_counts, self.band_descriptions,
                                                     self.band_info)]}


def _is_int(x: float, tol: float = 1e-6) -> bool:
    return abs(x - round(x)) <= tol


# ---------------------------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------------------------

#: Per-band statistics in the analysis domain: the model-file schema's :class:`BandStatistics`.
BandStats = BandStatistics


def compute_statistics(stack: RasterStack, sample_pixels: int = 100_000, seed: int = 0, window: Any = None,
                       block: int = 8, min_blocks: int = 1024, reporter: Any = None) -> list:
    """Normalisation statistics per modality and band from a bounded random sample of valid pixels (spec §1.3).

    Reads random ``block x block`` windows drawn without replacement from a lattice over the grid (or
    ``window``): at least ``min_blocks`` of them (spread over the scene, so the sample is not spatially clustered)
    and more until ``2 x sample_pixels`` valid pixels are collected or every block was read; then keeps a random
    subset of ``sample_pixels``. Memory: O(sample_pixels x bands), never the scene.

    Args:
        stack: an open :class:`RasterStack`.
        sample_pixels: number of valid pixels to sample.
        seed: random seed (deterministic result for a given seed).
        window: (row_off, col_off, height, width) or rasterio Window restricting the sample.
        block: side of the sampled windows in pixels.
        min_blocks: minimum number of windows read (all of them on small grids).
        reporter: optional Reporter (cancellation checked between blocks).
    Returns:
        ``[[BandStats]]``: per modality, per band (SAR in dB).
    Raises:
        EngineError: no valid pixel (every pixel nodata / non-finite in some band).
    """
    rng = np.random.default_rng(seed)
    r0, c0, H, W = (0, 0, stack.grid.height, stack.grid.width) if window is None else as_window(window)
    block = max(1, min(int(block), H, W))
    nby, nbx = math.ceil(H / block), math.ceil(W / block)
    # random blocks, read in raster order: unbiased, and neighbouring reads hit the same (cached) VRT blocks
    n_first = min(nby * nbx, max(int(min_blocks), math.ceil(2 * int(sample_pixels) / (block * block))))
    perm = rng.permutation(nby * nbx)
    order = np.concatenate([np.sort(perm[:n_first]), perm[n_first:]])
    target = int(sample_pixels)
    chunks: list[np.ndarray] = []
    n = 0
    for i, k in enumerate(order):
        if reporter is not None:
            reporter.check_cancelled()
        if n >= 2 * target and i >= min_blocks:
            break
        by, bx = divmod(int(k), nbx)
        rr, cc = r0 + by * block, c0 + bx * block
        h, w = min(block, r0 + H - rr), min(block, c0 + W - cc)
        win = stack.read(rr, cc, h, w)
        if not win.valid.any():
            continue
        px = np.concatenate([a[:, win.valid] for a in win.arrays], axis=0)   # (bands, n_valid)
        chunks.append(px)
        n += px.shape[1]
    if n == 0:
        files = ", ".join(os.path.basename(p) for m in stack.modalities for p in m.paths)
        raise EngineError(
            f"All pixels are invalid (nodata or not finite in at least one band) in {files}",
            "Check the nodata values (--nodata-spectral / --nodata-aux), the extent and that the rasters overlap.")
    sample = np.concatenate(chunks, axis=1)
    del chunks
    if sample.shape[1] > target:
        sample = sample[:, np.sort(rng.choice(sample.shape[1], target, replace=False))]
    rows = []
    for band in sample:                       # one band at a time in float64: small peak memory
        x = band.astype(np.float64)
        p2, p98 = np.percentile(x, [2, 98])
        rows.append(BandStats(float(p2), float(p98), float(x.mean()), float(x.std()), float(x.min()),
                              float(x.max())))
    out, b = [], 0
    for nb in stack.band_counts:
        out.append(rows[b:b + nb])
        b += nb
    return out


def db_to_linear(x: Any) -> Any:
    """dB -> linear intensity, ``10 ** (x / 10)``. numpy arrays (float32 kept) or torch tensors."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        a = np.asarray(x)
        dt = a.dtype if np.issubdtype(a.dtype, np.floating) else np.float64
        return np.power(dt.type(10.0), a.astype(dt) / dt.type(10.0))
    return 10.0 ** (x / 10.0)


def linear_to_db(x: Any) -> Any:
    """Linear intensity -> dB, ``10 * log10(max(x, 1e-10))`` (numpy)."""
    a = np.asarray(x)
    dt = a.dtype if np.issubdtype(a.dtype, np.floating) else np.float64
    return (10.0 * np.log10(np.maximum(a.astype(dt), 1e-10))).astype(dt)
