"""Accuracy assessment of a classification raster against reference polygons (torch-free).

:func:`assess` rasterises the reference polygons onto the classification's own grid (through
:func:`engine.labels.read_polygons`), reads the classified values at the reference pixels tile by tile, counts
the mapped pixels per class in a windowed pass over the raster, and returns the confusion matrix, accuracy
figures (:func:`engine.metrics.accuracy_metrics`) and Olofsson et al. (2014) area-adjusted estimates
(:func:`engine.metrics.area_adjusted`) as one JSON-serialisable dict. Memory is bounded by the number of
reference pixels plus one window of the raster.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from typing import Any, Sequence

import numpy as np

from . import __version__
from .errors import EngineError
from .progress import Reporter, ensure

#: side of the square windows read from the classification raster (pixels; multiple of the 256 GeoTIFF tiles).
WINDOW = 2048
#: More different values than this in a "classification" means it is an image band, not a class map.
MAX_MAP_CLASSES = 1000


def pixel_area_m2(crs, transform, height: int | None = None) -> tuple[float, str]:
    """Area of one pixel in m² and a note on how it was obtained.

    Projected CRS: |det(transform)| times the square of the linear unit factor. Geographic CRS: approximated
    on the WGS84 sphere-equivalent at the grid's centre latitude (a warning note is returned).
    """
    det = abs(transform.a * transform.e - transform.b * transform.d)
    if crs is None:
        return det, "the raster has no CRS; pixel area taken in squared raster units"
    if crs.is_geographic:
        lat = transform.f + transform.e * (height or 0) / 2.0
        m_per_deg = 111_319.49079327357
        return det * m_per_deg ** 2 * math.cos(math.radians(lat)), (
            "the raster is in a geographic CRS; pixel area approximated at the centre latitude "
            f"{lat:.4f}° (use a projected equal-area CRS for exact areas)")
    try:
        factor = float(crs.linear_units_factor[1])
    except Exception:
        factor = 1.0
    return det * factor ** 2, ""


def _norm(text: Any) -> str:
    return " ".join(str(text).split()).casefold()


def _match_classes(ref_classes: Sequence[Any], map_entries: list[dict], integer_field: bool,
                   path: str, field: str, warn) -> dict[int, int]:
    """Map each reference ClassInfo value to a raster value. Unmatched text classes get fresh values."""
    map_values = {e["value"] for e in map_entries}
    by_name = {_norm(e["name"]): e["value"] for e in map_entries}
    out: dict[int, int] = {}
    unmatched = []
    for c in ref_classes:
        label = getattr(c, "label", c.value)
        if integer_field:
            out[int(c.value)] = int(c.value)
            continue
        key = _norm(label)
        if key in by_name:
            out[int(c.value)] = by_name[key]
        elif key.lstrip("-").isdigit() and int(key) in map_values:
            out[int(c.value)] = int(key)
        else:
            unmatched.append((c, label))
    if not integer_field and unmatched and len(unmatched) == len(ref_classes):
        names = ", ".join(repr(e["name"]) for e in map_entries) or "none"
        raise EngineError(
            f"No class of field {field!r} matches a class name of the classification {path} "
            f"(reference classes: {', '.join(repr(str(l)) for _, l in unmatched)}; map class names: {names})",
            "use an integer class field holding the raster values, or the class names the classification was "
            "trained with")
    fresh = max(list(map_values) + list(out.values()) + [0]) + 1
    for c, label in unmatched:
        warn(f"Reference class {label!r} has no class of that name in the classification; "
             "it is counted as a reference-only class (never mapped)")
        out[int(c.value)] = fresh
        fresh += 1
    return out


def assess(classification_path: str, reference_path: str, class_field: str, layer: str | None = None,
           reporter: Reporter | None = None, extent: Sequence[float] | None = None, extent_crs: Any = None
           ) -> dict[str, Any]:
    """Assess a classification raster against reference polygons.

    Args:
        classification_path: single-band integer GeoTIFF (class values, 0 = nodata), e.g. from ``classify``.
        reference_path: polygon file (GeoPackage, Shapefile, GeoJSON...), any CRS (reprojected to the raster).
        class_field: attribute with the reference class. Integer fields are matched to raster values; text
            fields to the raster's class names (``BDGF_CLASSES`` tag, GDAL category names or QML labels).
        layer: layer name in a multi-layer file.
        reporter: progress / log / cancellation.
        extent: optional (xmin, ymin, xmax, ymax) restricting the assessment (in ``extent_crs``, default the
            raster CRS).

    Returns:
        JSON-serialisable dict: ``kind`` ("assessment"), ``created`` (UTC ISO), ``engine_version``, ``inputs``,
        ``grid`` (crs, width, height, pixel_area_m2), ``classes`` ([{value, name, color}]), ``samples``
        (reference pixels, pixels ignored on nodata, used), ``accuracy`` (accuracy_metrics: n, oa, aa, kappa,
        per_class PA/UA/F1, confusion_matrix rows = reference, columns = map), ``area`` (area_adjusted:
        Olofsson estimates with 95 % CI, areas in m² and ha), ``map_pixel_counts`` and ``warnings``.

    Raises:
        EngineError: unreadable raster or polygons, unknown field, no reference pixel on classified pixels,
            text classes that match no class name.
        Cancelled: the reporter's cancel token was set.
    """
    from .data.grid import ReferenceGrid
    from .data.labels import read_polygons
    from .io.rasters import read_class_entries

    rep = ensure(reporter)
    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        rep.warning(msg)

    cpath = os.path.abspath(os.fspath(classification_path))
    rpath = os.fspath(reference_path)
    grid = ReferenceGrid.from_raster(cpath)
    nodata = _class_raster_nodata(cpath)
    window = None
    if extent is not None:
        window = grid.window_for_bounds(extent, extent_crs)
    r0, c0 = (int(window.row_off), int(window.col_off)) if window is not None else (0, 0)
    h, w = (int(window.height), int(window.width)) if window is not None else (grid.height, grid.width)
    area_px, area_note = pixel_area_m2(grid.crs, grid.transform, grid.height)
    if area_note:
        warn(area_note)

    map_entries = read_class_entries(cpath)
    rep.info(f"Reading reference polygons {rpath} (field {class_field!r})")
    pixels = read_polygons(rpath, class_field, grid, layer=layer, window=window, reporter=rep, min_classes=1,
                           allow_empty_classes=True)
    rep.check_cancelled()
    integer_field = all(isinstance(getattr(c, "label", c.value), (int, np.integer)) for c in pixels.classes)
    value_map = _match_classes(pixels.classes, map_entries, integer_field, cpath, class_field, warn)
    ref_values = np.vectorize(value_map.get, otypes=[np.int64])(np.asarray(pixels.values, dtype=np.int64)) \
        if len(pixels.values) else np.zeros(0, np.int64)
    rows = np.asarray(pixels.rows, dtype=np.int64)
    cols = np.asarray(pixels.cols, dtype=np.int64)
    n_ref = int(rows.size)
    if n_ref == 0:
        raise EngineError(f"No reference polygon of {rpath} covers a pixel of {cpath}",
                          "check that the reference polygons overlap the classification (and the CRS)")

    map_at_ref = _values_at(cpath, grid, rows, cols, rep)
    valid = (map_at_ref > 0) & (map_at_ref < 65536)
    if nodata is not None and nodata != 0:
        valid &= map_at_ref != int(nodata)
    n_ignored = _check_on_map(valid, n_ref, rpath, cpath, warn)

    counts = _map_pixel_counts(cpath, (r0, c0, h, w), nodata, rep)
    names, colors = _names_and_colors(map_entries, pixels.classes, value_map)
    labels, acc, area = _accuracy_and_area(ref_values[valid], map_at_ref[valid], counts, names, area_px, warn)
    for name, value in (("oa", acc["oa"]), ("aa", acc["aa"]), ("kappa", acc["kappa"])):
        rep.metric(name, value)
    return {
        "kind": "assessment",
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "engine_version": __version__,
        "inputs": {"classification": cpath, "reference": os.path.abspath(rpath), "class_field": class_field,
                   "layer": layer, "extent": list(extent) if extent is not None else None},
        "grid": {"crs": _crs_text(grid.crs), "width": grid.width, "height": grid.height,
                 "window": [r0, c0, h, w], "pixel_area_m2": area_px},
        "classes": [{"value": v, "name": names.get(v, str(v)), "color": colors.get(v, "")} for v in labels],
        "samples": {"reference_pixels": n_ref, "ignored_nodata": n_ignored, "used": int(valid.sum()),
                    "polygons": int(np.unique(np.asarray(pixels.polygon_ids)[valid]).size)
                    if getattr(pixels, "polygon_ids", None) is not None else None},
        "accuracy": acc,
        "area": area,
        "map_pixel_counts": {str(v): int(counts[v]) for v in labels},
        "warnings": warnings,
        "notes": ["Accuracy figures count reference pixels; pixels of one polygon are not independent samples.",
                  "Area-adjusted estimates follow Olofsson et al. (2014) with map classes as strata; they assume "
                  "the reference pixels are a random sample within each mapped class."],
    }


def _accuracy_and_area(ref: np.ndarray, mapped: np.ndarray, counts: np.ndarray, names: dict, area_px: float,
                       warn: Any) -> tuple[list[int], dict, dict | None]:
    """``(class values, accuracy_metrics, area_adjusted or None)`` of reference / map values at the used pixels."""
    from .metrics import accuracy_metrics, area_adjusted, confusion_matrix

    labels = sorted(set(np.nonzero(counts)[0].tolist()) | set(np.unique(ref).tolist())
                    | set(np.unique(mapped).tolist()))
    label_names = [names.get(v, str(v)) for v in labels]
    cm = confusion_matrix(ref, mapped, labels)
    acc = accuracy_metrics(cm, labels, label_names)
    map_counts = counts[labels]
    area = area_adjusted(cm, map_counts, area_px, labels, label_names) if map_counts.sum() > 0 else None
    if area is not None and area.get("unsampled_map_classes"):
        warn("Map classes without reference pixels (no area-adjusted estimate for them): "
             + ", ".join(names.get(v, str(v)) for v in area["unsampled_map_classes"]))
    return labels, acc, area


def _check_on_map(valid: np.ndarray, n_ref: int, rpath: str, cpath: str, warn: Any) -> int:
    """Number of reference pixels on nodata (warned); raises when none is on a classified pixel."""
    n_ignored = int((~valid).sum())
    if n_ignored:
        warn(f"{n_ignored} of {n_ref} reference pixels fall on nodata (0 or outside 1..65535) in the "
             "classification and are ignored")
    if not valid.any():
        raise EngineError(f"All {n_ref} reference pixels of {rpath} fall on nodata pixels of {cpath}",
                          "check that the classification covers the reference polygons")
    return n_ignored


def _class_raster_nodata(cpath: str) -> float | None:
    """The nodata value of a one-band integer class raster.

    Raises:
        EngineError: the raster has several bands or is not of an integer type (an image, not a class map).
    """
    import rasterio

    with rasterio.open(cpath) as src:
        if src.count != 1:
            raise EngineError(f"Classification {cpath} has {src.count} bands, so it is not a classification: a "
                              "classified raster has one band of class values",
                              "choose the classified GeoTIFF written by Classify, not the imagery")
        if not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
            raise EngineError(f"Classification {cpath} is not an integer class raster (type {src.dtypes[0]})",
                              "choose the classified GeoTIFF written by Classify (or any integer class raster)")
        return src.nodata


def _values_at(cpath: str, grid: Any, rows: np.ndarray, cols: np.ndarray, rep: Reporter) -> np.ndarray:
    """Raster values (int64) at grid pixels ``(rows, cols)``, read window by window."""
    import rasterio
    from rasterio.windows import Window

    out = np.zeros(rows.size, dtype=np.int64)
    tile_id = (rows // WINDOW) * (grid.width // WINDOW + 1) + cols // WINDOW
    order = np.argsort(tile_id, kind="stable")
    ids, starts = np.unique(tile_id[order], return_index=True)
    bounds = list(starts[1:]) + [order.size]
    with rasterio.open(cpath) as src, rep.task("reference pixels", len(ids), unit="tile") as task:
        for start, stop in zip(starts, bounds):
            idx = order[start:stop]
            tr, tc = int(rows[idx[0]] // WINDOW) * WINDOW, int(cols[idx[0]] // WINDOW) * WINDOW
            th, tw = min(WINDOW, grid.height - tr), min(WINDOW, grid.width - tc)
            block = src.read(1, window=Window(tc, tr, tw, th))
            out[idx] = block[rows[idx] - tr, cols[idx] - tc]
            task.update(1)
    return out


def _map_pixel_counts(cpath: str, box: tuple[int, int, int, int], nodata: float | None, rep: Reporter
                      ) -> np.ndarray:
    """Pixels per class value (``(65536,)`` int64, nodata and 0 zeroed) in ``box = (row, col, height, width)``.

    Raises:
        EngineError: more than ``MAX_MAP_CLASSES`` values (an image band, not a class map).
    """
    import rasterio
    from rasterio.windows import Window

    r0, c0, h, w = box
    counts = np.zeros(65536, dtype=np.int64)
    windows = [(r, c, min(WINDOW, r0 + h - r), min(WINDOW, c0 + w - c))
               for r in range(r0, r0 + h, WINDOW) for c in range(c0, c0 + w, WINDOW)]
    with rasterio.open(cpath) as src, rep.task("map pixel counts", len(windows), unit="window") as task:
        for r, c, wh, ww in windows:
            flat = src.read(1, window=Window(c, r, ww, wh)).ravel()
            if np.issubdtype(flat.dtype, np.signedinteger) or flat.dtype.itemsize > 2:
                flat = flat[(flat >= 0) & (flat < 65536)]
            binc = np.bincount(flat, minlength=1)
            counts[: binc.size] += binc[:65536]
            task.update(1)
    counts[0] = 0
    if nodata is not None and 0 < nodata < 65536 and float(nodata).is_integer():
        counts[int(nodata)] = 0
    if int(np.count_nonzero(counts)) > MAX_MAP_CLASSES:   # an image band (reflectance, DN), not a class map
        raise EngineError(f"Classification {cpath} holds {int(np.count_nonzero(counts))} different values, so it is "
                          f"not a class map (more than {MAX_MAP_CLASSES} classes)",
                          "choose the classified GeoTIFF written by Classify, not an image band")
    return counts


def _names_and_colors(map_entries: list[dict], ref_classes: Sequence[Any], value_map: dict) -> tuple[dict, dict]:
    """Class names and colours by map value: the raster's, then the reference classes' (reference-only classes
    and classes of an unnamed raster)."""
    names = {e["value"]: e["name"] for e in map_entries}
    colors = {e["value"]: e["color"] for e in map_entries}
    for c in ref_classes:
        v = value_map[int(c.value)]
        names.setdefault(v, str(getattr(c, "name", None) or getattr(c, "label", v)))
        if getattr(c, "color", None):
            colors.setdefault(v, c.color)
    return names, colors


def _crs_text(crs) -> str:
    if crs is None:
        return ""
    try:
        epsg = crs.to_epsg()
        if epsg:
            return f"EPSG:{epsg}"
    except Exception:
        pass
    return crs.to_wkt()


def assess_to_files(classification: str, reference: str, class_field: str, *, layer: str | None = None,
                    report: str | None = None, table: str | None = None, json_path: str | None = None,
                    overwrite: bool = False, reporter: Reporter | None = None,
                    extent: Sequence[float] | None = None, extent_crs: Any = None,
                    title: str | None = None, stratum_field: str | None = None) -> dict[str, Any]:
    """Run :func:`assess` and write the requested reports (the ``assess`` command; ``api.assess`` wraps it).

    Args:
        classification, reference, class_field, layer, extent, extent_crs: as in :func:`assess`.
        report: HTML report path; table: CSV path; json_path: JSON path (each optional, written atomically).
        overwrite: replace existing reports (checked before any work).

    Returns:
        Outputs dict for the ``done`` event: ``report`` / ``table`` / ``json`` (absolute paths, when written) and
        ``metrics`` (``oa``, ``aa``, ``kappa``, ``n``, and ``area_adjusted_oa`` when available).

    Raises:
        OutputExistsError: a report exists and ``overwrite`` is false (before any work).
        EngineError, Cancelled: as :func:`assess`.
    """
    from .files import check_output
    from .io.reports import write_csv_table, write_html_report, write_json_report

    for p in (report, table, json_path):
        if p:
            check_output(p, overwrite)
    rep = ensure(reporter)
    from .io.points import geometry_type

    if "Point" in geometry_type(os.fspath(reference), layer):   # a labelled sample (sampling.design_sample)
        from .sampling import STRATUM_FIELD, assess_points

        if extent is not None:
            rep.warning("The extent is not used with reference points: every labelled point is assessed")
        result = assess_points(classification, reference, class_field, layer=layer,
                               stratum_field=stratum_field or STRATUM_FIELD, reporter=rep)
    else:
        result = assess(classification, reference, class_field, layer=layer, reporter=rep, extent=extent,
                        extent_crs=extent_crs)
    rep.check_cancelled()
    title = title or f"Accuracy assessment of {os.path.basename(os.fspath(classification))}"
    result["title"] = title
    outputs: dict[str, Any] = {}
    if report:
        outputs["report"] = write_html_report(report, result, title, overwrite)
    if table:
        outputs["table"] = write_csv_table(table, result, overwrite)
    if json_path:
        outputs["json"] = write_json_report(json_path, result, overwrite)
    acc = result["accuracy"]
    outputs["metrics"] = {"oa": acc["oa"], "aa": acc["aa"], "kappa": acc["kappa"], "n": acc["n"]}
    if result.get("area"):
        outputs["metrics"]["area_adjusted_oa"] = result["area"]["oa"]
    return outputs
