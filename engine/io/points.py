"""Point layers: write sample / suggestion points, read labelled points (fiona; torch-free).

:func:`write_points` writes a point layer (GeoPackage, GeoJSON or Shapefile, chosen by the extension) into a
temporary folder next to the target and moves it into place only when complete, so a failed or cancelled run
leaves no half-written layer and an existing layer is replaced only with ``overwrite``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Sequence

from ..errors import EngineError
from ..files import check_output

DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix")


def driver_for(path: str) -> str:
    """The OGR driver for ``path``'s extension.

    Raises:
        EngineError: an extension other than .gpkg, .geojson/.json or .shp.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in DRIVERS:
        raise EngineError(f"Cannot write a point layer to {path}", "use a .gpkg, .geojson or .shp file name")
    return DRIVERS[ext]


def write_points(path: str, crs_wkt: str, xs: Sequence[float], ys: Sequence[float],
                 schema: Sequence[tuple[str, str]], records: Sequence[dict[str, Any]], layer: str | None = None,
                 overwrite: bool = False) -> str:
    """Write points with attributes atomically.

    Args:
        path: target file (.gpkg, .geojson, .shp). crs_wkt: the coordinates' CRS as WKT.
        xs, ys: (N,) coordinates in that CRS. schema: [(field name, fiona type such as "int", "float",
            "str:64")]. records: N dicts of field values (None = null).
        layer: layer name (GeoPackage); default the file's stem.
        overwrite: replace an existing file.

    Returns:
        The absolute path.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false. EngineError: unsupported extension.
    """
    import fiona
    from fiona.crs import CRS

    target = check_output(path, overwrite)
    driver = driver_for(target)
    folder, name = os.path.split(target)
    stem = os.path.splitext(name)[0]
    work = tempfile.mkdtemp(prefix=f".{stem}.partial-", dir=folder)
    try:
        tmp = os.path.join(work, name)
        meta = {"driver": driver, "crs": CRS.from_wkt(crs_wkt) if crs_wkt else None,
                "schema": {"geometry": "Point", "properties": dict(schema)}}
        if driver == "GPKG":
            meta["layer"] = layer or stem
        with fiona.open(tmp, "w", **meta) as dst:
            dst.writerecords({"geometry": {"type": "Point", "coordinates": (float(x), float(y))},
                              "properties": rec} for x, y, rec in zip(xs, ys, records))
        parts = [f for f in os.listdir(work)]
        if driver == "ESRI Shapefile":
            for ext in _SHAPEFILE_PARTS:
                old = os.path.join(folder, stem + ext)
                if os.path.exists(old) and stem + ext not in parts:
                    os.remove(old)
        for f in parts:
            os.replace(os.path.join(work, f), os.path.join(folder, f))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def read_points(path: str, fields: Sequence[str], layer: str | None = None, crs_wkt: str | None = None
                ) -> dict[str, Any]:
    """Read point coordinates and attributes, reprojected to ``crs_wkt`` when given.

    Args:
        path: a point layer (any OGR format). fields: attribute names to read (each must exist).
        layer: layer name in a multi-layer file. crs_wkt: target CRS of the coordinates.

    Returns:
        ``{"x": [...], "y": [...], "fid": [...], <field>: [...]}`` for the features with a point geometry
        (multipoints: their first point), plus ``"field_types": {field: fiona type}``.

    Raises:
        EngineError: unreadable file, a missing field, or a layer that is not made of points.
    """
    import fiona
    from fiona.transform import transform as fiona_transform

    try:
        src = fiona.open(path, layer=layer)
    except Exception as exc:  # noqa: BLE001 - fiona raises several types
        raise EngineError(f"Cannot read the point layer {path}: {exc}", "give a GeoPackage, Shapefile or GeoJSON") from exc
    with src:
        props = src.schema["properties"]
        missing = [f for f in fields if f not in props]
        if missing:
            raise EngineError(f"Field(s) {missing} not in {path} (fields: {', '.join(props)})",
                              "choose existing fields of the point layer")
        out: dict[str, Any] = {"x": [], "y": [], "fid": [], **{f: [] for f in fields}}
        out["field_types"] = {f: props[f] for f in fields}
        for feat in src:
            geom = feat.geometry
            if geom is None:
                continue
            if geom["type"] == "Point":
                x, y = geom["coordinates"][:2]
            elif geom["type"] == "MultiPoint" and geom["coordinates"]:
                x, y = geom["coordinates"][0][:2]
            else:
                raise EngineError(f"{path} holds {geom['type']} features, not points",
                                  "give the point layer written by the sample design (or any point layer)")
            out["x"].append(float(x))
            out["y"].append(float(y))
            out["fid"].append(feat.id)
            for f in fields:
                out[f].append(feat.properties.get(f))
        src_wkt = src.crs_wkt
    if crs_wkt and src_wkt and out["x"]:
        out["x"], out["y"] = fiona_transform(src_wkt, crs_wkt, out["x"], out["y"])
    return out


def point_fields(path: str, layer: str | None = None) -> list[str]:
    """Attribute names of a vector layer.

    Raises:
        EngineError: the file cannot be read.
    """
    import fiona

    try:
        with fiona.open(path, layer=layer) as src:
            return list(src.schema["properties"])
    except Exception as exc:  # noqa: BLE001 - fiona raises several types
        raise EngineError(f"Cannot read the point layer {path}: {exc}", "give a GeoPackage, Shapefile or GeoJSON") from exc


def geometry_type(path: str, layer: str | None = None) -> str:
    """The layer's declared geometry type (``Point``, ``Polygon``, ``MultiPolygon``...), or "" if unreadable."""
    import fiona

    try:
        with fiona.open(path, layer=layer) as src:
            return str(src.schema.get("geometry") or "")
    except Exception:  # noqa: BLE001
        return ""
