"""Map clean-up of a classified raster: majority filter and sieve (minimum mapping unit), styling kept.

- :func:`majority_filter`: each pixel takes the most frequent class in a ``size x size`` window (nodata pixels
  do not vote and stay nodata; on a tie the pixel keeps its class). Per-class counts come from
  ``scipy.ndimage.uniform_filter`` on class indicators, in row strips (memory ~ classes x strip, not the scene).
- :func:`sieve`: GDAL's sieve filter (``rasterio.features.sieve``, the algorithm behind ``gdal_sieve.py`` and
  QGIS's *Sieve*): every patch (connected pixels of one class, 4- or 8-connected) smaller than the minimum
  mapping unit is merged into its largest neighbouring patch.
- :func:`cleanup_raster`: majority filter, then sieve (so the result respects the minimum mapping unit), written
  atomically with the input's colour table, category names, ``BDGF_CLASSES`` tag and a QML sidecar.

The sieve needs the whole class raster in memory (1-2 bytes per pixel, plus GDAL's work arrays of 4 bytes per
pixel): about 0.5 GiB for a 10 000 x 10 000 scene.
"""

from __future__ import annotations

import math
import os
import shutil
from typing import Any

import numpy as np

from .errors import EngineError
from .progress import Reporter, ensure

#: most class-indicator values held at once by the majority filter (float32; ~256 MiB).
_MAJORITY_BUDGET = 64 * 1024 * 1024


def majority_filter(classes: np.ndarray, size: int, nodata: int = 0, reporter: Reporter | None = None
                    ) -> np.ndarray:
    """Modal (majority) filter of a class raster.

    Args:
        classes: (H, W) integer class values; ``nodata`` pixels neither vote nor change.
        size: odd window side in pixels (3, 5, 7, ...); 1 returns a copy.
        nodata: the nodata class value.
        reporter: progress (``majority filter`` stage, one step per strip) and cancellation.

    Returns:
        (H, W) array of the same dtype: the most frequent valid class in the window centred on each pixel
        (windows are cut at the raster edge); a pixel keeps its own class when it is among the most frequent.

    Raises:
        EngineError: ``size`` is even or < 1.
        Cancelled: the reporter's cancel token was set.
    """
    from scipy.ndimage import uniform_filter

    if size < 1 or size % 2 == 0:
        raise EngineError(f"Majority filter window {size} is not an odd number >= 1", "use 3, 5, 7, ...")
    out = classes.copy()
    if size == 1:
        return out
    values = [int(v) for v in np.unique(classes) if v != nodata]
    if not values:
        return out
    rep = ensure(reporter)
    height, width = classes.shape
    halo = size // 2
    strip = max(1, min(height, _MAJORITY_BUDGET // max(1, len(values) * width) - 2 * halo))
    starts = list(range(0, height, strip))
    with rep.task("majority filter", len(starts), unit="strip") as task:
        for r0 in starts:
            rep.check_cancelled()
            r1 = min(height, r0 + strip)
            a0, a1 = max(0, r0 - halo), min(height, r1 + halo)
            block = classes[a0:a1]
            best = np.full(block.shape, -1.0, np.float32)
            own = np.zeros(block.shape, np.float32)
            mode = block.copy()
            for v in values:
                is_v = block == v
                # mode="constant": outside the raster counts as nodata (no vote)
                count = uniform_filter(is_v.astype(np.float32), size=size, mode="constant")
                better = count > best + 1e-6
                mode[better] = v
                best = np.maximum(best, count)
                own[is_v] = count[is_v]
            keep = (block == nodata) | (own >= best - 1e-6)
            result = np.where(keep, block, mode)
            out[r0:r1] = result[r0 - a0:r1 - a0]
            task.update(1)
    return out


def sieve(classes: np.ndarray, min_pixels: int, connectivity: int = 4, nodata: int = 0) -> np.ndarray:
    """Remove patches smaller than ``min_pixels`` (GDAL sieve filter through ``rasterio.features.sieve``).

    Args:
        classes: (H, W) integer class values (uint8 / uint16 / int16 / int32).
        min_pixels: minimum mapping unit in pixels; patches with fewer pixels are merged into their largest
            neighbouring patch. 1 or less returns a copy.
        connectivity: 4 (edges) or 8 (edges and corners) for what makes a patch.
        nodata: nodata value: never a patch, never replaced.

    Returns:
        (H, W) sieved array, same dtype.

    Raises:
        EngineError: connectivity not 4 or 8.
    """
    from rasterio.features import sieve as gdal_sieve

    if connectivity not in (4, 8):
        raise EngineError(f"Connectivity {connectivity} is not 4 or 8", "use 4 (edges) or 8 (edges and corners)")
    if min_pixels <= 1:
        return classes.copy()
    work = classes if classes.dtype in (np.uint8, np.uint16, np.int16, np.int32) else classes.astype(np.int32)
    valid = work != nodata
    out = gdal_sieve(work, size=int(min_pixels), mask=valid, connectivity=connectivity)
    out = np.where(valid, out, work)  # nodata stays nodata
    return out.astype(classes.dtype, copy=False)


def min_pixels_for_area(min_area_ha: float, pixel_area_m2: float) -> int:
    """The minimum mapping unit in pixels for an area in hectares: ``ceil(ha · 10⁴ / pixel area)``.

    Raises:
        EngineError: non-positive area or pixel area.
    """
    if not min_area_ha > 0 or not pixel_area_m2 > 0:
        raise EngineError(f"Cannot turn {min_area_ha} ha into pixels of {pixel_area_m2} m²",
                          "give a positive minimum mapping unit")
    return max(1, int(math.ceil(min_area_ha * 1e4 / pixel_area_m2 - 1e-9)))


def _write_like(src: Any, path: str, data: np.ndarray, entries: list[dict], overwrite: bool) -> None:
    """Write ``data`` with ``src``'s grid, nodata, colour table and class tag to ``path`` atomically."""
    import rasterio

    from .files import atomic_output
    from .io.rasters import CLASSES_TAG, write_category_names

    profile = src.profile.copy()
    profile.update(driver="GTiff", count=1, tiled=True, blockxsize=256, blockysize=256, compress="deflate",
                   predictor=2, BIGTIFF="IF_SAFER")
    profile.pop("photometric", None)
    try:
        colormap = src.colormap(1)
    except ValueError:
        colormap = None
    with atomic_output(path, overwrite) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, 1)
            dst.set_band_description(1, src.descriptions[0] or "class")
            if colormap:
                dst.write_colormap(1, colormap)
            tags = src.tags()
            if CLASSES_TAG in tags:
                dst.update_tags(**{CLASSES_TAG: tags[CLASSES_TAG]})
        if entries:
            write_category_names(tmp, entries)


def cleanup_raster(input_path: str, output: str, *, min_pixels: int | None = None,
                   min_area_ha: float | None = None, majority: int | None = None, connectivity: int = 4,
                   overwrite: bool = False, reporter: Reporter | None = None) -> dict[str, Any]:
    """Clean a classified raster: majority filter (``majority`` window), then sieve (minimum mapping unit).

    The output keeps the input's grid, data type, nodata, colour table, category names and ``BDGF_CLASSES``
    tag; its QML sidecar is the input's (copied) or one written from the class names and colours.

    Args:
        input_path: single-band integer class raster (e.g. from ``classify``).
        output: cleaned GeoTIFF (written through a temporary name; never replaced unless ``overwrite``).
        min_pixels: minimum mapping unit in pixels, or ``min_area_ha`` in hectares (not both).
        majority: odd majority-filter window in pixels (None: no majority filter).
        connectivity: 4 or 8, for the sieve's patches.

    Returns:
        ``{"output", "qml", "min_pixels", "majority", "changed_pixels", "changed_fraction", "patches_removed"}``.

    Raises:
        EngineError: not an integer raster, no operation chosen, both MMU forms given, bad window.
        OutputExistsError: ``output`` exists and ``overwrite`` is false (before any work).
    """
    import rasterio
    from scipy.ndimage import label

    from .assess import pixel_area_m2
    from .files import check_output
    from .io.rasters import class_entries, qml_path, read_class_entries, write_qml

    rep = ensure(reporter)
    out_path = check_output(output, overwrite)
    if min_pixels is not None and min_area_ha is not None:
        raise EngineError("Both a minimum mapping unit in pixels and one in hectares were given", "give one of them")
    if min_pixels is None and min_area_ha is None and not majority:
        raise EngineError("Nothing to do: no minimum mapping unit and no majority filter",
                          "give --mmu-pixels N, --mmu-ha A and/or --majority W")
    src_path = os.path.abspath(input_path)
    with rasterio.open(src_path) as src:
        if src.count != 1 or not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
            raise EngineError(f"{src_path} is not a single-band integer class raster ({src.count} bands, "
                              f"{src.dtypes[0]})", "give a classified raster such as the output of classify")
        nodata = int(src.nodata) if src.nodata is not None else 0
        data = src.read(1)
        if min_area_ha is not None:
            area, note = pixel_area_m2(src.crs, src.transform, src.height)
            if note:
                rep.warning(note)
            min_pixels = min_pixels_for_area(min_area_ha, area)
        before = data
        if majority and majority > 1:
            rep.info(f"Majority filter, {majority} x {majority} px window")
            data = majority_filter(data, int(majority), nodata, rep)
        patches_before = _count_patches(data, nodata, connectivity, label)
        if min_pixels and min_pixels > 1:
            rep.info(f"Sieve: patches smaller than {min_pixels} px ({connectivity}-connected) merged")
            data = sieve(data, int(min_pixels), connectivity, nodata)
        patches_after = _count_patches(data, nodata, connectivity, label)
        entries = read_class_entries(src_path)
        rep.check_cancelled()
        _write_like(src, out_path, data, entries, overwrite)
    qml = qml_path(out_path)
    if os.path.isfile(qml_path(src_path)) and qml_path(src_path) != qml:
        shutil.copyfile(qml_path(src_path), qml)
    elif entries:
        write_qml(qml, class_entries(entries))
    changed = int(np.count_nonzero(before != data))
    valid = int(np.count_nonzero(before != nodata))
    return {"output": out_path, "qml": qml if os.path.isfile(qml) else None, "min_pixels": min_pixels,
            "majority": majority, "changed_pixels": changed,
            "changed_fraction": changed / valid if valid else 0.0,
            "patches_removed": patches_before - patches_after}


def _count_patches(data: np.ndarray, nodata: int, connectivity: int, label: Any) -> int:
    """Number of patches (connected components of one class) in ``data``."""
    structure = np.ones((3, 3), int) if connectivity == 8 else None
    return int(sum(label(data == v, structure=structure)[1] for v in np.unique(data) if v != nodata))
