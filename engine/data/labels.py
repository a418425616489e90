"""Training / reference polygons -> labelled pixels on the reference grid, classes, split by polygon.

Source: engine spec §1.2 (train/test split; here by polygon, never by pixel, to avoid spatial leakage between
neighbouring pixels of one polygon) and ``docs/architecture.md`` (geodata API, class-value conventions).

Polygons are read with fiona from any OGR vector format (GeoPackage, Shapefile, GeoJSON, ...), reprojected to
the grid CRS with :func:`rasterio.warp.transform_geom` and rasterized one polygon at a time inside the polygon's
own window (:func:`rasterio.features.rasterize`, pixel centre inside, or all touched). Memory is proportional to
the labelled pixels, never to the scene.

Class values: integer class fields keep their values (must be 1..65535; 0 is nodata); text class fields get
values 1..K in sorted order. The network class index of a pixel is the position of its value in the sorted class
list (:meth:`LabelledPixels.class_index`).
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import EngineError
from ..io.schema import DEFAULT_PALETTE, Category
from ..progress import ensure
from .grid import ReferenceGrid, as_window, crs_equal, crs_name

__all__ = ["ClassInfo", "LabelledPixels", "read_polygons", "split_by_polygon", "drop_invalid", "read_qml_style",
           "DEFAULT_PALETTE"]

_POLYGON_TYPES = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class ClassInfo(Category):
    """A :class:`~engine.io.schema.Category` (raster value 1..65535, name, colour ``"#rrggbb"``) read from
    polygons, with the ``label`` it has in the class field (an int, or the text of a text field)."""

    label: Any = None

    def to_dict(self) -> dict:
        return {**super().to_dict(), "label": self.label}

    @classmethod
    def from_dict(cls, d: dict) -> "ClassInfo":
        """Inverse of :meth:`to_dict` (``label`` defaults to the value)."""
        return cls(int(d["value"]), str(d.get("name", d["value"])), str(d.get("color") or "#808080"),
                   d.get("label", int(d["value"])))


@dataclass
class LabelledPixels:
    """Labelled pixels on the reference grid (memory ~ labelled pixels, never the scene).

    Attributes:
        rows, cols: int32 ``(N,)`` pixel positions on the reference grid (row-major sorted).
        values: uint16 ``(N,)`` class value of each pixel.
        polygon_ids: int64 ``(N,)`` feature id (fid) of the polygon each pixel comes from.
        classes: :class:`ClassInfo` sorted by value (network index = position in this list).
        report: counts per class, polygons outside the grid, dropped conflicts, ... (plain data).
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    polygon_ids: np.ndarray
    classes: list
    report: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def class_index(self) -> np.ndarray:
        """int64 ``(N,)`` network class index: position of each pixel's value in the sorted class list."""
        vals = np.array([c.value for c in self.classes], dtype=np.int64)
        return np.searchsorted(vals, self.values.astype(np.int64)).astype(np.int64)

    def subset(self, idx: Any) -> "LabelledPixels":
        """Pixels selected by an index or boolean mask (classes and report are shared)."""
        return LabelledPixels(self.rows[idx], self.cols[idx], self.values[idx], self.polygon_ids[idx],
                              self.classes, dict(self.report))

    def counts(self) -> dict:
        """{class value: pixel count} for every class (0 where none)."""
        u, n = np.unique(self.values, return_counts=True)
        d = {int(c.value): 0 for c in self.classes}
        d.update({int(a): int(b) for a, b in zip(u, n)})
        return d


# ---------------------------------------------------------------------------------------------------------------
# styles
# ---------------------------------------------------------------------------------------------------------------

def _parse_color(text: str | None) -> str | None:
    """'r,g,b,a[,rgb:...]' (QGIS) or '#rrggbb' -> '#rrggbb'."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("#") and len(text) >= 7:
        return text[:7].lower()
    parts = text.split(",")
    try:
        r, g, b = (int(float(p)) for p in parts[:3])
    except (ValueError, TypeError):
        return None
    return "#{:02x}{:02x}{:02x}".format(*(max(0, min(255, v)) for v in (r, g, b)))


def _symbol_color(symbol: ET.Element) -> str | None:
    for layer in symbol.iter("layer"):
        props: dict[str, str] = {}
        for opt in layer.iter("Option"):
            if opt.get("name") and opt.get("value") is not None:
                props.setdefault(opt.get("name"), opt.get("value"))
        for prop in layer.iter("prop"):
            if prop.get("k"):
                props.setdefault(prop.get("k"), prop.get("v"))
        for key in ("color", "fill_color", "line_color", "outline_color"):
            c = _parse_color(props.get(key))
            if c:
                return c
    return None


def read_qml_style(qml: str) -> dict | None:
    """Parse a QGIS categorized style (QML text).

    Returns:
        ``{"attr": field name, "categories": [{"value": str, "label": str, "color": "#rrggbb"|None}]}`` for a
        ``renderer-v2`` of type ``categorizedSymbol``; ``None`` for any other renderer or unparsable XML.
    """
    try:
        root = ET.fromstring(qml.encode("utf-8") if isinstance(qml, str) else qml)
    except ET.ParseError:
        return None
    rend = root if root.tag == "renderer-v2" else root.find(".//renderer-v2")
    if rend is None or rend.get("type") != "categorizedSymbol":
        return None
    attr = (rend.get("attr") or "").strip().strip('"')
    symbols = {}
    syms = rend.find("symbols")
    if syms is not None:
        for s in syms.findall("symbol"):
            symbols[s.get("name")] = _symbol_color(s)
    cats = []
    cat_parent = rend.find("categories")
    for c in (cat_parent.findall("category") if cat_parent is not None else []):
        cats.append({"value": c.get("value"), "label": c.get("label") or c.get("value"),
                     "color": symbols.get(c.get("symbol"))})
    return {"attr": attr, "categories": cats}


def _layer_style(path: str, layer: str, log) -> tuple[dict | None, str]:
    """Default style of ``layer``: GeoPackage ``layer_styles`` (useAsDefault first), else a sidecar ``.qml``."""
    import fiona

    try:
        if "layer_styles" in fiona.listlayers(path) and layer != "layer_styles":
            best = None
            with fiona.open(path, layer="layer_styles") as st:
                for f in st:
                    p = f.properties
                    if (p.get("f_table_name") or "") != layer or not p.get("styleQML"):
                        continue
                    key = (1 if p.get("useAsDefault") else 0, str(p.get("update_time") or ""))
                    if best is None or key > best[0]:
                        best = (key, p["styleQML"], p.get("styleName") or "")
            if best is not None:
                style = read_qml_style(best[1])
                if style is not None:
                    return style, f"layer_styles '{best[2]}' in {os.path.basename(path)}"
    except Exception as exc:  # a broken style must never stop training
        log("warning", f"Could not read the layer_styles table of {path}: {exc}")
    qml_path = os.path.splitext(path)[0] + ".qml"
    if os.path.exists(qml_path):
        try:
            with open(qml_path, encoding="utf-8") as fh:
                style = read_qml_style(fh.read())
            if style is not None:
                return style, os.path.basename(qml_path)
        except Exception as exc:
            log("warning", f"Could not read the style {qml_path}: {exc}")
    return None, ""


# ---------------------------------------------------------------------------------------------------------------
# reading polygons
# ---------------------------------------------------------------------------------------------------------------

def _int_field(ftype: str) -> bool:
    return ftype.split(":")[0] in ("int", "int32", "int64", "int16", "int8", "integer", "long")


def _fid(feat, i: int) -> int:
    try:
        return int(feat.id)
    except (TypeError, ValueError):
        return i


def read_polygons(path: str, class_field: str, grid: ReferenceGrid, layer: str | None = None,
                  all_touched: bool = False, class_styles: dict | None = None, name_field: str | None = None,
                  window: Any = None, reporter: Any = None, min_classes: int = 2,
                  allow_empty_classes: bool = False) -> LabelledPixels:
    """Rasterize training/reference polygons onto the reference grid.

    Args:
        path: vector file (any OGR format fiona reads: GeoPackage, Shapefile, GeoJSON, ...).
        class_field: integer (values 1..65535 kept) or text field (values 1..K in sorted order).
        grid: the reference grid (polygons are reprojected to its CRS).
        layer: layer name (default: the first layer that is not ``layer_styles``).
        all_touched: label every pixel a polygon touches (default: pixel centre inside the polygon).
        class_styles: ``{label as text: {"name": ..., "color": "#rrggbb"}}`` (e.g. from a QGIS renderer).
        name_field: text field with class names (used when no style names the class).
        window: restrict to (row_off, col_off, height, width) / rasterio Window of the grid.
        reporter: ``progress.Reporter`` for warnings and counts (silent when None).
        min_classes: minimum number of classes with labelled pixels (2 for training).
        allow_empty_classes: keep classes with zero labelled pixels (with a warning) instead of raising.
    Names/colours: ``class_styles``, else the layer's default categorized style (GeoPackage ``layer_styles``
        table, else a ``.qml`` beside the file), else ``name_field``, else ``str(label)`` and
        :data:`DEFAULT_PALETTE`.
    Overlaps: a pixel claimed by polygons of one class is kept once (first polygon); a pixel claimed by
        polygons of different classes is dropped with a warning naming the polygons (fids).
    Returns:
        :class:`LabelledPixels` (grid row/col, class value, polygon fid, classes, report).
    Raises:
        EngineError: missing/unreadable file or layer, class field missing (lists the fields), class value out of
            1..65535 or not integral, non-polygon geometries, no polygon overlapping the grid, a class with zero
            labelled pixels, fewer than ``min_classes`` classes.
    """
    emit = ensure(reporter).log
    path = os.fspath(path)
    layer = _choose_layer(path, layer, emit)
    polys, numeric, skipped_null_geom, skipped_null_class = _read_features(path, layer, class_field, name_field,
                                                                           grid, emit)
    labels = sorted({p[1] for p in polys})
    if len(labels) < min_classes:
        raise EngineError(
            f"Field {class_field!r} of {path} has {len(labels)} class(es) ({', '.join(map(str, labels)) or 'none'}); "
            f"at least {min_classes} are needed", "Digitize polygons of at least two classes.")
    value_of = {lab: (lab if numeric else k + 1) for k, lab in enumerate(labels)}
    arrays, outside, empty = _rasterize(polys, value_of, grid, _domain(grid, window), all_touched)
    _check_rasterized(arrays, polys, outside, empty, path, layer, grid, emit)
    rows, cols, vals, pids, overlaps = _resolve_overlaps(*arrays, grid.width, emit)
    classes, style_src = _classes(labels, value_of, numeric, polys, class_styles, name_field, path, layer,
                                  class_field, emit)
    px_count, poly_count = _check_classes(classes, vals, pids, polys, value_of, path, min_classes,
                                          allow_empty_classes, emit)
    report = {
        "file": path, "layer": layer, "class_field": class_field, "all_touched": bool(all_touched),
        "n_features": len(polys) + len(skipped_null_class) + len(skipped_null_geom),
        "n_polygons": len(polys), "n_polygons_used": int(np.unique(pids).size),
        "outside": outside, "no_pixel": empty, "skipped_no_geometry": skipped_null_geom,
        "skipped_no_class": skipped_null_class, **overlaps, "n_pixels": int(vals.size), "style_source": style_src,
        "classes": [{"value": c.value, "name": c.name, "label": c.label, "color": c.color,
                     "pixels": px_count.get(c.value, 0), "polygons": int(poly_count.get(c.value, 0))}
                    for c in classes],
    }
    emit("info", f"{os.path.basename(path)}: {vals.size} labelled pixels in {report['n_polygons_used']} polygons, "
                 + ", ".join(f"{c['name']}: {c['pixels']} px / {c['polygons']} pol." for c in report["classes"]))
    return LabelledPixels(rows.astype(np.int32), cols.astype(np.int32), vals.astype(np.uint16),
                          pids.astype(np.int64), classes, report)


def _choose_layer(path: str, layer: str | None, emit: Callable) -> str:
    """The layer to read: ``layer`` (checked) or the first one that is not ``layer_styles``."""
    import fiona

    if not os.path.exists(path) and "://" not in path and not path.startswith("/vsi"):
        raise EngineError(f"Polygon file not found: {path}", "Check the path of the training/reference polygons.")
    try:
        layers = fiona.listlayers(path)
    except Exception as exc:
        raise EngineError(f"Cannot read vector file {path}: {exc}",
                          "Use a polygon layer in a format OGR reads (GeoPackage, Shapefile, GeoJSON).") from exc
    if layer is None:
        cand = [lyr for lyr in layers if lyr != "layer_styles"]
        if not cand:
            raise EngineError(f"No vector layer in {path}", "Use a file with a polygon layer.")
        layer = cand[0]
        if len(cand) > 1:
            emit("info", f"{os.path.basename(path)} has {len(cand)} layers; using '{layer}' (choose with --layer)")
    elif layer not in layers:
        raise EngineError(f"Layer {layer!r} not found in {path}", f"Available layers: {', '.join(layers)}.")
    return layer


def _domain(grid: ReferenceGrid, window: Any) -> tuple[int, int, int, int]:
    """(row_off, col_off, height, width) of the grid that may be labelled: the grid, or ``window`` inside it."""
    if window is None:
        return 0, 0, grid.height, grid.width
    r0, c0, h, w = as_window(window)
    r0, c0 = max(r0, 0), max(c0, 0)
    return r0, c0, min(h, grid.height - r0), min(w, grid.width - c0)


def _class_label(value: Any, numeric: bool, fid: int, class_field: str, path: str) -> Any:
    """A feature's class label: an int in 1..65535 for numeric fields, else the text."""
    if not numeric:
        return str(value)
    fl = float(value)
    if not math.isfinite(fl) or fl != int(fl):
        raise EngineError(f"Class value {value!r} of polygon fid {fid} in field {class_field!r} of "
                          f"{path} is not an integer", "Use integer class values 1..65535.")
    if not 1 <= int(fl) <= 65535:
        raise EngineError(f"Class value {int(fl)} of polygon fid {fid} in field {class_field!r} of {path} "
                          f"is outside 1..65535", "Class values must be 1..65535 (0 means nodata).")
    return int(fl)


def _read_features(path: str, layer: str, class_field: str, name_field: str | None, grid: ReferenceGrid,
                   emit: Callable) -> tuple[list, bool, list, list]:
    """``(polygons [(fid, label, name, geometry in the grid CRS)], numeric field, fids without geometry,
    fids without class)``; non-polygon geometries raise :class:`EngineError`."""
    import fiona
    from fiona.errors import FionaError
    from rasterio.warp import transform_geom

    polys, skipped_null_geom, skipped_null_class, bad_geoms = [], [], [], []
    try:
        src = fiona.open(path, layer=layer)
    except (FionaError, OSError, ValueError) as exc:
        raise EngineError(f"Cannot open layer {layer!r} of {path}: {exc}", "Check the file and layer name.") from exc
    with src:
        props = dict(src.schema["properties"])
        for field_name, what in ((class_field, "Class"), (name_field, "Name")):
            if field_name is not None and field_name not in props:
                raise EngineError(f"{what} field {field_name!r} not found in layer {layer!r} of {path}",
                                  f"Available fields: {', '.join(props) or '(none)'}.")
        ftype = props[class_field]
        numeric = _int_field(ftype) or ftype.split(":")[0] in ("float", "double", "real")
        if not src.crs:
            emit("warning", f"{os.path.basename(path)} has no CRS; assuming the grid CRS {crs_name(grid.crs)}")
        same_crs = not src.crs or crs_equal(src.crs, grid.crs)
        for i, feat in enumerate(src):
            fid, geom = _fid(feat, i), feat.geometry
            label = feat.properties.get(class_field)
            if geom is None:
                skipped_null_geom.append(fid)
            elif geom.type not in _POLYGON_TYPES:
                bad_geoms.append((fid, geom.type))
            elif label is None or (isinstance(label, str) and not label.strip()):
                skipped_null_class.append(fid)
            else:
                g = {"type": geom.type, "coordinates": geom.coordinates}
                g = g if same_crs else transform_geom(src.crs, grid.crs, g)
                name = feat.properties.get(name_field) if name_field else None
                polys.append((fid, _class_label(label, numeric, fid, class_field, path), name, g))
    if bad_geoms:
        kinds = Counter(t for _, t in bad_geoms)
        listing = ", ".join(f"fid {f} ({t})" for f, t in bad_geoms[:10]) + (" ..." if len(bad_geoms) > 10 else "")
        raise EngineError(f"Layer {layer!r} of {path} has {len(bad_geoms)} non-polygon geometries "
                          f"({', '.join(f'{n} {t}' for t, n in kinds.items())}): {listing}",
                          "Use a polygon layer (e.g. buffer points/lines in QGIS first).")
    for fids, what in ((skipped_null_geom, "features without geometry"),
                       (skipped_null_class, f"polygons with an empty {class_field!r}")):
        if fids:
            emit("warning", f"{len(fids)} {what} skipped (fid {', '.join(map(str, fids[:20]))})")
    return polys, numeric, skipped_null_geom, skipped_null_class


def _rasterize(polys: list, value_of: dict, grid: ReferenceGrid, domain: tuple[int, int, int, int],
               all_touched: bool) -> tuple[list, list, list]:
    """Rasterize polygon by polygon inside ``domain``: ``([rows, cols, values, fids, polygon order] arrays
    (empty lists when nothing is labelled), fids outside the domain, fids without a pixel)``."""
    from rasterio.features import bounds as geom_bounds
    from rasterio.features import rasterize

    d_r0, d_c0, d_h, d_w = domain
    inv = ~grid.transform
    parts: list[list[np.ndarray]] = [[], [], [], [], []]
    outside, empty = [], []
    for k, (fid, label, _, g) in enumerate(polys):
        left, bottom, right, top = geom_bounds(g)
        cs, rs = zip(*[inv * (x, y) for x, y in zip([left, right, left, right], [bottom, bottom, top, top])])
        r0, c0 = max(math.floor(min(rs)) - 1, d_r0), max(math.floor(min(cs)) - 1, d_c0)
        r1, c1 = min(math.ceil(max(rs)) + 1, d_r0 + d_h), min(math.ceil(max(cs)) + 1, d_c0 + d_w)
        if r1 <= r0 or c1 <= c0:
            outside.append(fid)
            continue
        mask = rasterize([(g, 1)], out_shape=(r1 - r0, c1 - c0), transform=grid.window_transform(r0, c0),
                         fill=0, all_touched=all_touched, dtype="uint8")
        rr, cc = np.nonzero(mask)
        if rr.size == 0:
            empty.append(fid)
            continue
        for part, a in zip(parts, ((rr + r0).astype(np.int32), (cc + c0).astype(np.int32),
                                   np.full(rr.size, value_of[label], np.int64), np.full(rr.size, fid, np.int64),
                                   np.full(rr.size, k, np.int64))):
            part.append(a)
    return [np.concatenate(p) for p in parts] if parts[0] else [], outside, empty


def _check_rasterized(arrays: list, polys: list, outside: list, empty: list, path: str, layer: str,
                      grid: ReferenceGrid, emit: Callable) -> None:
    """Raise when no pixel is labelled; warn about polygons outside the grid or without a pixel centre."""
    fname = os.path.basename(path)
    if not arrays:
        if polys and len(outside) == len(polys):
            gb = grid.bounds
            raise EngineError(
                f"No polygon of {path} (layer {layer!r}) overlaps the reference grid "
                f"(extent {tuple(round(v, 2) for v in gb)} in {crs_name(grid.crs)})",
                "Check that the polygons and the rasters cover the same area and that the layer's CRS is right.")
        raise EngineError(f"No pixel of the reference grid is labelled by the polygons of {path}",
                          "The polygons may be smaller than a pixel; try all-touched rasterization or larger polygons.")
    if outside:
        emit("warning", f"{len(outside)} polygon(s) of {fname} lie outside the grid and were ignored (fid "
                        f"{', '.join(map(str, outside[:30]))}{' ...' if len(outside) > 30 else ''})")
    if empty:
        emit("warning", f"{len(empty)} polygon(s) of {fname} contain no pixel centre (fid "
                        f"{', '.join(map(str, empty[:30]))}); use all-touched rasterization to keep them")


def _resolve_overlaps(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, pids: np.ndarray, order: np.ndarray,
                      width: int, emit: Callable) -> tuple:
    """One label per pixel: a pixel of several polygons of one class is kept once (first polygon), a pixel
    claimed by different classes is dropped. Returns ``(rows, cols, values, fids, overlap report)``."""
    lin = rows.astype(np.int64) * width + cols
    srt = np.lexsort((order, lin))
    lin, rows, cols, vals, pids = lin[srt], rows[srt], cols[srt], vals[srt], pids[srt]
    first = np.ones(lin.size, bool)
    first[1:] = lin[1:] != lin[:-1]
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    conflict_px = (np.minimum.reduceat(vals, starts) != np.maximum.reduceat(vals, starts))[group]
    n_dup = int((~first & ~conflict_px).sum())
    conflicts_rep = []
    n_conflict = int(np.count_nonzero(first & conflict_px))
    if n_conflict:
        fid_first, val_first = pids[starts][group], vals[starts][group]
        sel = conflict_px & (vals != val_first)
        pairs = np.stack([np.minimum(fid_first[sel], pids[sel]), np.maximum(fid_first[sel], pids[sel])], 1)
        up, cnt = np.unique(pairs, axis=0, return_counts=True)
        conflicts_rep = [{"fids": [int(a), int(b)], "pixels": int(n)} for (a, b), n in zip(up, cnt)]
        listing = "; ".join(f"fid {c['fids'][0]} / fid {c['fids'][1]}: {c['pixels']} px" for c in conflicts_rep[:20])
        emit("warning", f"{n_conflict} pixel(s) claimed by polygons of different classes were dropped ({listing}"
                        f"{' ...' if len(conflicts_rep) > 20 else ''})")
    if n_dup:
        emit("info", f"{n_dup} pixel(s) covered by several polygons of the same class counted once")
    keep = first & ~conflict_px
    report = {"conflict_pixels": n_conflict, "conflicts": conflicts_rep, "duplicate_pixels": n_dup}
    return rows[keep], cols[keep], vals[keep], pids[keep], report


def _style_by_label(path: str, layer: str, class_field: str, numeric: bool, emit: Callable) -> tuple[dict, str]:
    """The layer's default categorized style by class label, and where it came from ({} and "" when none)."""
    style, style_src = _layer_style(path, layer, emit)
    if style is not None and style["attr"].lower() != class_field.lower():
        emit("info", f"The default style of {os.path.basename(path)} is categorized by {style['attr']!r}, not "
                     f"{class_field!r}; its names and colours are not used")
        style = None
    if style is None:
        return {}, ""
    by_label = {}
    for c in style["categories"]:
        v = c["value"]
        if v is None:
            continue
        try:
            by_label[int(float(v)) if numeric else str(v)] = c
        except ValueError:
            continue
    return by_label, style_src


def _classes(labels: list, value_of: dict, numeric: bool, polys: list, class_styles: dict | None,
             name_field: str | None, path: str, layer: str, class_field: str, emit: Callable
             ) -> tuple[list[ClassInfo], str]:
    """Classes sorted by value, named and coloured by ``class_styles``, the layer's style, ``name_field`` or
    the palette (in that order), and the style's source."""
    styles_in = {str(k): v for k, v in (class_styles or {}).items()}
    style_by_label, style_src = {}, ""
    if any(str(lab) not in styles_in for lab in labels):
        style_by_label, style_src = _style_by_label(path, layer, class_field, numeric, emit)
    names_from_field: dict = defaultdict(Counter)
    if name_field:
        for _, lab, name, _ in polys:
            if name not in (None, ""):
                names_from_field[lab][str(name)] += 1
    classes = []
    for k, lab in enumerate(labels):
        cs = styles_in.get(str(lab)) or {}
        st = style_by_label.get(lab) or {}
        name = cs.get("name") or st.get("label")
        if not name and names_from_field.get(lab):
            common = names_from_field[lab].most_common()
            name = common[0][0]
            if len(common) > 1:
                emit("warning", f"Class {lab}: several names in {name_field!r} ({', '.join(n for n, _ in common)}); "
                                f"using {name!r}")
        name = str(name) if name else str(lab)
        color = _parse_color(cs.get("color")) or st.get("color") or DEFAULT_PALETTE[k % len(DEFAULT_PALETTE)]
        classes.append(ClassInfo(int(value_of[lab]), name, color, lab))
    classes.sort(key=lambda c: c.value)
    return classes, style_src


def _check_classes(classes: list, vals: np.ndarray, pids: np.ndarray, polys: list, value_of: dict, path: str,
                   min_classes: int, allow_empty_classes: bool, emit: Callable) -> tuple[dict, Counter]:
    """Pixel and polygon counts per class value; raise (or warn) on classes without labelled pixels."""
    u, n = np.unique(vals, return_counts=True)
    px_count = {int(a): int(b) for a, b in zip(u, n)}
    poly_count: Counter = Counter(v for v, _f in _pairs(vals, pids))
    polys_of: dict = defaultdict(list)
    for fid, lab, _, _ in polys:
        polys_of[value_of[lab]].append(fid)
    empty_classes = [c for c in classes if px_count.get(c.value, 0) == 0]
    if empty_classes:
        desc = "; ".join(f"{c.name} (value {c.value}, polygons fid {', '.join(map(str, polys_of[c.value][:10]))})"
                         for c in empty_classes)
        if not allow_empty_classes:
            raise EngineError(f"Class(es) with zero labelled pixels in {path}: {desc}",
                              "Their polygons lie outside the grid/extent, are smaller than a pixel or overlap other "
                              "classes; fix or remove them, or use all-touched rasterization.")
        emit("warning", f"Class(es) with zero labelled pixels: {desc}")
    n_with = sum(1 for c in classes if px_count.get(c.value, 0) > 0)
    if n_with < min_classes:
        raise EngineError(f"Only {n_with} class(es) have labelled pixels in {path}; at least {min_classes} needed",
                          "Digitize polygons of at least two classes inside the raster extent.")
    return px_count, poly_count


def _pairs(vals: np.ndarray, pids: np.ndarray):
    """Unique (value, fid) pairs."""
    if vals.size == 0:
        return []
    up = np.unique(np.stack([vals.astype(np.int64), pids.astype(np.int64)], 1), axis=0)
    return [(int(a), int(b)) for a, b in up]


# ---------------------------------------------------------------------------------------------------------------
# validity and split
# ---------------------------------------------------------------------------------------------------------------

def valid_at(stack: Any, rows: np.ndarray, cols: np.ndarray, tile: int = 256) -> np.ndarray:
    """bool ``(N,)``: True where grid pixel ``(rows, cols)`` is valid in every band of the stack (not nodata,
    finite, inside the grid). Reads only the ``tile x tile`` cells holding the pixels, each cropped to their
    bounding box. Memory: one tile."""
    return _read_at(stack, rows, cols, tile, spectra=False)[0]


def spectra_at(stack: Any, rows: np.ndarray, cols: np.ndarray, tile: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(valid (N,) bool, spectra (N, C_spec) float32)``: the raw values (the rasters' units, 0 where invalid) of
    the spectral modality at grid pixels ``(rows, cols)``, read as :func:`valid_at` reads."""
    return _read_at(stack, rows, cols, tile, spectra=True)


def _read_at(stack: Any, rows: np.ndarray, cols: np.ndarray, tile: int, spectra: bool
             ) -> tuple[np.ndarray, np.ndarray | None]:
    ok = np.zeros(len(rows), bool)
    values = np.zeros((len(rows), stack.band_counts[0]), np.float32) if spectra else None
    key = (rows.astype(np.int64) // tile) * (stack.grid.width // tile + 1) + cols // tile
    order = np.argsort(key, kind="stable")
    ks = key[order]
    bounds = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        idx = order[a:b]
        r, c = rows[idx], cols[idx]
        r0, c0 = int(r.min()), int(c.min())
        win = stack.read(r0, c0, int(r.max()) - r0 + 1, int(c.max()) - c0 + 1)
        ok[idx] = win.valid[r - r0, c - c0]
        if spectra:
            values[idx] = win.arrays[0][:, r - r0, c - c0].T
    return ok, values


def drop_invalid(pixels: LabelledPixels, stack: Any, tile: int = 256, reporter: Any = None,
                 allow_empty_classes: bool = False) -> LabelledPixels:
    """Remove labelled pixels that are invalid in the stack (nodata / non-finite in any band).

    Reads only the tiles (``tile x tile``, cropped to the labelled pixels' bounding box in each tile) that hold
    labelled pixels. Memory: one tile.

    Raises:
        EngineError: every labelled pixel is invalid, or a class loses all its pixels (unless
            ``allow_empty_classes``).
    """
    emit = ensure(reporter).log
    n = len(pixels)
    if n == 0:
        return pixels
    ok = valid_at(stack, pixels.rows, pixels.cols, tile)
    n_bad = int(n - ok.sum())
    if n_bad == 0:
        return pixels
    if not ok.any():
        raise EngineError(f"All {n} labelled pixels are invalid (nodata or not finite) in the rasters",
                          "Check the nodata values and that the polygons lie on valid image data.")
    out = pixels.subset(ok)
    before, after = pixels.counts(), out.counts()
    lost = [c for c in pixels.classes if before[c.value] > 0 and after[c.value] == 0]
    if lost and not allow_empty_classes:
        raise EngineError("Class(es) with zero labelled pixels after removing invalid pixels: "
                          + ", ".join(f"{c.name} (value {c.value})" for c in lost),
                          "Their polygons lie on nodata; move them onto valid image data.")
    emit("warning", f"{n_bad} labelled pixel(s) on invalid raster pixels (nodata / not finite) were dropped")
    out.report["invalid_pixels"] = n_bad
    return out


def split_by_polygon(pixels: LabelledPixels, validation_fraction: float = 0.3, seed: int = 0,
                     reporter: Any = None) -> tuple:
    """Split labelled pixels into training and validation sets by polygon, stratified by class.

    Per class, the polygons are shuffled (``numpy.random.default_rng(seed)``) and
    ``round(validation_fraction x n_polygons)`` of them (at least 1, at most n-1) go to validation, so no polygon
    has pixels in both sets. A class with a single polygon stays in training (warning).

    Returns:
        ``(train_idx, val_idx, report)``: int64 index arrays into ``pixels`` (sorted) and
        ``{"classes": [{"value", "name", "train_polygons", "val_polygons", "train_pixels", "val_pixels"}], ...}``.
    """
    emit = ensure(reporter).log
    frac = float(validation_fraction)
    if not 0.0 <= frac < 1.0:
        raise EngineError(f"Validation fraction must be in [0, 1), got {validation_fraction}",
                          "Use e.g. 0.3 (30 % of the polygons of each class).")
    rng = np.random.default_rng(seed)
    val_mask = np.zeros(len(pixels), bool)
    rep_classes, single = [], []
    for c in pixels.classes:
        sel = pixels.values == c.value
        fids = np.unique(pixels.polygon_ids[sel])
        n_val = 0
        if fids.size >= 2 and frac > 0:
            n_val = int(min(max(round(frac * fids.size), 1), fids.size - 1))
            val_fids = rng.permutation(fids)[:n_val]
            val_mask |= sel & np.isin(pixels.polygon_ids, val_fids)
        elif fids.size == 1 and frac > 0:
            single.append(c)
        nv = int(np.count_nonzero(sel & val_mask))
        rep_classes.append({"value": c.value, "name": c.name, "train_polygons": int(fids.size - n_val),
                            "val_polygons": n_val, "train_pixels": int(sel.sum()) - nv, "val_pixels": nv})
    if single:
        emit("warning", "Class(es) with a single polygon kept in training only (no validation pixels): "
                        + ", ".join(f"{c.name} (value {c.value})" for c in single))
    train_idx = np.flatnonzero(~val_mask).astype(np.int64)
    val_idx = np.flatnonzero(val_mask).astype(np.int64)
    report = {"validation_fraction": frac, "seed": int(seed), "classes": rep_classes,
              "single_polygon_classes": [c.value for c in single],
              "train_pixels": int(train_idx.size), "val_pixels": int(val_idx.size)}
    emit("info", "Split by polygon: " + ", ".join(
        f"{r['name']}: {r['train_polygons']}/{r['val_polygons']} pol., {r['train_pixels']}/{r['val_pixels']} px"
        for r in rep_classes) + " (train/validation)")
    return train_idx, val_idx, report


def polygon_folds(pixels: LabelledPixels, k: int = 5, seed: int = 0, block_size: int = 0,
                  reporter: Any = None) -> tuple[np.ndarray, int, dict]:
    """Cross-validation folds grouped by polygon (or by spatial block), stratified by class.

    By polygon (``block_size`` 0): for each class, its polygons are shuffled (``default_rng(seed)``) and dealt,
    largest first, to the fold holding the fewest pixels of that class, so folds are balanced in pixels and a
    polygon never has pixels in two folds. The number of folds is ``min(k, fewest polygons of any class)``
    (said in the log); a class with a single polygon is never held out (it is in the training part of every
    fold, warning). By spatial block (``block_size`` > 0 grid pixels): every polygon goes with the
    ``block_size x block_size`` block holding its first pixel, and whole blocks are dealt to the folds, so
    neighbouring polygons are never split between training and testing.

    Returns:
        ``(fold, K, report)``: int64 ``(N,)`` fold of each pixel (-1 = never held out), the number of folds
        (0 when fewer than 2 are possible: no cross-validation) and ``{"folds", "requested", "by", "classes":
        [{"value", "name", "polygons", "pixels_per_fold"}], "never_held_out": [values]}``.
    """
    emit = ensure(reporter).log
    rng = np.random.default_rng(seed)
    n_poly = {c.value: np.unique(pixels.polygon_ids[pixels.values == c.value]) for c in pixels.classes}
    multi = [len(v) for v in n_poly.values() if len(v) >= 2]
    kk = int(min([int(k)] + multi)) if multi else 0
    single = [c for c in pixels.classes if len(n_poly[c.value]) == 1]
    fold = np.full(len(pixels), -1, np.int64)
    if kk >= 2 and block_size and block_size > 0:
        pid_block = {}
        for p in np.unique(pixels.polygon_ids):
            i = int(np.flatnonzero(pixels.polygon_ids == p)[0])
            pid_block[int(p)] = (int(pixels.rows[i]) // block_size, int(pixels.cols[i]) // block_size)
        blocks = sorted(set(pid_block.values()))
        kk = min(kk, len(blocks))
        group = np.array([blocks.index(pid_block[int(p)]) for p in pixels.polygon_ids])
        _deal(group, np.arange(len(pixels)), kk, rng, fold)
    elif kk >= 2:
        for c in pixels.classes:
            if len(n_poly[c.value]) >= 2:
                sel = np.flatnonzero(pixels.values == c.value)
                _deal(pixels.polygon_ids[sel], sel, kk, rng, fold)
    by = f"spatial block of {block_size} px" if block_size else "polygon"
    report = {"folds": kk, "requested": int(k), "by": by,
              "never_held_out": [c.value for c in single], "classes": []}
    for c in pixels.classes:
        sel = pixels.values == c.value
        report["classes"].append({"value": c.value, "name": c.name, "polygons": int(len(n_poly[c.value])),
                                  "pixels_per_fold": [int(np.count_nonzero(sel & (fold == f))) for f in range(kk)]})
    if kk < 2:
        emit("warning", "Cross-validation needs at least two polygons of some class: no validation folds")
    elif kk < int(k):
        emit("warning", f"{kk}-fold cross-validation instead of {k}: the class with the fewest polygons has {kk}")
    else:
        emit("info", f"{kk}-fold cross-validation grouped by {report['by']}")
    if single and kk >= 2:
        emit("warning", "Class(es) with a single polygon are never held out (no accuracy for them): "
                        + ", ".join(f"{c.name} (value {c.value})" for c in single))
    return fold, kk, report


def _deal(group: np.ndarray, rows: np.ndarray, k: int, rng: np.random.Generator, fold: np.ndarray) -> None:
    """Assign whole groups (polygon or block ids of ``rows``) to ``k`` folds, largest first, each to the fold with
    the fewest pixels so far (ties broken by a seeded shuffle)."""
    ids, sizes = np.unique(group, return_counts=True)
    perm = rng.permutation(len(ids))
    ids, sizes = ids[perm], sizes[perm]
    order = np.argsort(-sizes, kind="stable")
    load = np.zeros(k, np.int64)
    for j in order:
        f = int(np.argmin(load + rng.random(k) * 1e-3))
        fold[rows[group == ids[j]]] = f
        load[f] += sizes[j]
