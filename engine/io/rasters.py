"""Classified GeoTIFF output: streamed tiles, colour table, category names, QML sidecar.

:class:`ClassificationWriter` writes the classification (and optionally a confidence raster and a
per-class probability stack) tile by tile through temporary files (:mod:`engine.files`); the outputs appear
under their final names only when the ``with`` block succeeds, together with:

- a GDAL colour table (entry 0 transparent) and band description ``class``;
- GDAL category names in the PAM sidecar ``CLASSES.tif.aux.xml`` (``<CategoryNames>``; rasterio has no API
  for them, GDAL and QGIS read them from the sidecar, the GeoTIFF format has no place for them);
- a ``BDGF_CLASSES`` dataset tag (JSON list of ``{"value", "name", "color"}``) that :mod:`engine.assessment`
  reads back;
- a QGIS style sidecar ``CLASSES.qml`` (paletted renderer with the class names), which QGIS loads as the
  layer's default style.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from typing import Any, Iterable
from xml.sax.saxutils import quoteattr

import numpy as np

from ..contract import AOA_THRESHOLD_TAG, APPLICABILITY_BAND
from ..errors import EngineError
from ..files import AtomicOutput, write_text
from .schema import DEFAULT_PALETTE
from ..progress import Reporter, ensure

#: nodata of the confidence and probability rasters (class rasters use 0).
FLOAT_NODATA = float("nan")
CLASSES_TAG = "BDGF_CLASSES"


def class_entries(classes: Iterable[Any]) -> list[dict[str, Any]]:
    """Normalise :class:`~engine.io.schema.Category` objects or dicts to ``[{"value", "name", "color"}]``.

    Missing names become the value as text; missing or invalid colours get a default palette colour.

    Raises:
        EngineError: a value outside 1..65535 or a repeated value.
    """
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, c in enumerate(classes):
        get = c.get if isinstance(c, dict) else (lambda k, d=None, c=c: getattr(c, k, d))
        value = int(get("value"))
        if not 1 <= value <= 65535:
            raise EngineError(f"Class value {value} is outside 1..65535", "class values must be 1..65535; 0 is nodata")
        if value in seen:
            raise EngineError(f"Class value {value} is given twice", "each class needs its own value")
        seen.add(value)
        name = get("name") or str(value)
        color = get("color") or ""
        if not _valid_color(color):
            color = DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)]
        out.append({"value": value, "name": str(name), "color": color.lower()})
    return sorted(out, key=lambda e: e["value"])


def _valid_color(color: str) -> bool:
    if not isinstance(color, str) or len(color) != 7 or not color.startswith("#"):
        return False
    try:
        int(color[1:], 16)
    except ValueError:
        return False
    return True


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def class_dtype(classes: Iterable[Any]) -> str:
    """``"uint8"`` when every class value is <= 255, else ``"uint16"``."""
    entries = class_entries(classes)
    top = max((e["value"] for e in entries), default=1)
    return "uint8" if top <= 255 else "uint16"


def qml_text(classes: Iterable[Any]) -> str:
    """A QGIS (3.22+) layer style with a paletted renderer on band 1 for ``classes`` (nodata 0 transparent)."""
    entries = class_entries(classes)
    lines = "\n".join(
        f'        <paletteEntry value="{e["value"]}" color="{e["color"]}" label={quoteattr(e["name"])} alpha="255"/>'
        for e in entries)
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="AllStyleCategories" hasScaleBasedVisibilityFlag="0">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <rasterTransparency/>
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <colorPalette>
{lines}
      </colorPalette>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" colorizeStrength="100"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


def qml_path(raster_path: str | os.PathLike) -> str:
    """The QML sidecar QGIS loads as default style: ``CLASSES.tif`` -> ``CLASSES.qml``."""
    return os.path.splitext(os.fspath(raster_path))[0] + ".qml"


def write_qml(path: str | os.PathLike, classes: Iterable[Any], overwrite: bool = True) -> str:
    """Write a QGIS paletted-renderer style (``.qml``) for ``classes`` atomically. Returns the path."""
    return write_text(path, qml_text(classes), overwrite=overwrite)


def write_category_names(raster_path: str, classes: Iterable[Any], band: int = 1) -> None:
    """Put GDAL category names for ``classes`` into the PAM sidecar ``raster_path + ".aux.xml"``.

    The list covers values 0..max (empty names for unused values), as GDAL expects. An existing sidecar is
    kept and only its ``<CategoryNames>`` for ``band`` is replaced. Call it after the raster is closed.
    """
    entries = class_entries(classes)
    names = [""] * (max((e["value"] for e in entries), default=0) + 1)
    for e in entries:
        names[e["value"]] = e["name"]
    aux = raster_path + ".aux.xml"
    root = None
    if os.path.exists(aux):
        try:
            root = ET.parse(aux).getroot()
        except ET.ParseError:
            root = None
    if root is None or root.tag != "PAMDataset":
        root = ET.Element("PAMDataset")
    node = next((b for b in root.findall("PAMRasterBand") if b.get("band") == str(band)), None)
    if node is None:
        node = ET.SubElement(root, "PAMRasterBand", band=str(band))
    for old in node.findall("CategoryNames"):
        node.remove(old)
    cats = ET.Element("CategoryNames")
    for n in names:
        ET.SubElement(cats, "Category").text = n
    node.insert(0, cats)
    ET.indent(root)
    ET.ElementTree(root).write(aux, encoding="UTF-8", xml_declaration=False)


def read_class_entries(raster_path: str | os.PathLike) -> list[dict[str, Any]]:
    """Class values, names and colours of a classification raster, or ``[]`` if it has none.

    Looks, in order, at the ``BDGF_CLASSES`` tag, the PAM category names (``.aux.xml``) and the QML sidecar
    (paletted ``paletteEntry`` labels). Needs only rasterio and the standard library.
    """
    import rasterio

    p = os.fspath(raster_path)
    try:
        with rasterio.open(p) as src:
            tag = src.tags().get(CLASSES_TAG)
    except Exception:
        tag = None
    if tag:
        try:
            return class_entries(json.loads(tag))
        except (ValueError, TypeError, EngineError):
            pass
    aux = p + ".aux.xml"
    if os.path.exists(aux):
        try:
            root = ET.parse(aux).getroot()
            for band in root.findall("PAMRasterBand"):
                if band.get("band") == "1" and band.find("CategoryNames") is not None:
                    names = [c.text or "" for c in band.find("CategoryNames").findall("Category")]
                    entries = [{"value": v, "name": n} for v, n in enumerate(names) if v > 0 and n]
                    if entries:
                        return class_entries(entries)
        except (ET.ParseError, EngineError, ValueError):
            pass
    qml = qml_path(p)
    if os.path.exists(qml):
        try:
            root = ET.parse(qml).getroot()
            entries = [{"value": int(float(e.get("value"))), "name": e.get("label") or e.get("value"),
                        "color": (e.get("color") or "")[:7]}
                       for e in root.iter("paletteEntry") if float(e.get("value", "0")) > 0]
            if entries:
                return class_entries(entries)
        except (ET.ParseError, EngineError, ValueError, TypeError):
            pass
    return []


class ClassificationWriter:
    """Streams a classification (and optional confidence / probabilities) to GeoTIFF, tile by tile.

    Use as a context manager::

        with ClassificationWriter(out, crs, transform, w, h, classes, overwrite=False,
                                  confidence_path=conf, probabilities_path=prob, reporter=r) as wr:
            for tile in tiles:
                wr.write(row_off, col_off, values, confidence, probabilities)

    Outputs are tiled 256x256 DEFLATE GeoTIFFs. Classes: smallest unsigned type (uint8 if every value <= 255,
    else uint16), nodata 0, colour table, category names (PAM sidecar), ``BDGF_CLASSES`` tag; QML sidecar
    written on success. Confidence: float32, 1 band (maximum class probability). Probabilities: float32, one
    band per class in ``classes`` order (sorted by value), band descriptions = class names. Uncertainty: float32,
    band 1 ``normalised_entropy``, band 2 ``margin`` (``suggest.entropy_margin`` of the probabilities). Applicability:
    float32, 1 band ``dissimilarity_index`` (``applicability``), the threshold of the area of applicability in the
    ``BDGF_AOA_THRESHOLD`` tag. Float nodata is
    NaN and is written wherever the class value is 0. If the block raises (including ``Cancelled``), no file
    is left behind and existing outputs are untouched.

    Args:
        path: classification GeoTIFF.
        crs: rasterio CRS (or anything ``rasterio.crs.CRS.from_user_input`` takes).
        transform: affine transform of the grid.
        width, height: grid size in pixels.
        classes: ClassInfo-like objects or dicts with ``value``, ``name``, ``color`` (``#rrggbb``).
        overwrite: replace existing outputs.
        confidence_path: optional confidence GeoTIFF.
        probabilities_path: optional probability-stack GeoTIFF.
        uncertainty_path: optional two-band uncertainty GeoTIFF (needs the probabilities in :meth:`write`).
        reporter: for log lines and cancellation checks.
        applicability_path: optional dissimilarity-index GeoTIFF (needs ``dissimilarity`` in :meth:`write`).
        applicability_threshold: DI threshold of the area of applicability, written as a tag.

    Raises:
        OutputExistsError: an output exists and ``overwrite`` is false (raised by the constructor).
        EngineError: invalid class values, or two outputs with the same path.
    """

    def __init__(self, path, crs, transform, width: int, height: int, classes, overwrite: bool = False,
                 confidence_path=None, probabilities_path=None, reporter: Reporter | None = None,
                 uncertainty_path=None, applicability_path=None, applicability_threshold: float | None = None):
        self.classes = class_entries(classes)
        if not self.classes:
            raise EngineError(f"No classes for {path}", "the model has no classes; re-train it")
        self.reporter = ensure(reporter)
        self.width, self.height = int(width), int(height)
        self.crs, self.transform = crs, transform
        self.dtype = class_dtype(self.classes)
        self.overwrite = overwrite
        paths = [os.path.abspath(os.fspath(p)) for p in (path, confidence_path, probabilities_path, uncertainty_path,
                                                         applicability_path) if p]
        if len(set(paths)) != len(paths):
            raise EngineError(f"The same file is given for two outputs: {paths}", "give each output its own name")
        # check every target before creating anything
        from ..files import check_output

        for p in paths:
            check_output(p, overwrite)
        check_output(qml_path(path), overwrite=True)
        self.path = paths[0]
        self.outputs: dict[str, AtomicOutput] = {"output": AtomicOutput(path, overwrite)}
        if confidence_path:
            self.outputs["confidence"] = AtomicOutput(confidence_path, overwrite)
        if probabilities_path:
            self.outputs["probabilities"] = AtomicOutput(probabilities_path, overwrite)
        if uncertainty_path:
            self.outputs["uncertainty"] = AtomicOutput(uncertainty_path, overwrite)
        if applicability_path:
            self.outputs["applicability"] = AtomicOutput(applicability_path, overwrite)
        self.applicability_threshold = applicability_threshold
        self._ds: dict[str, Any] = {}

    # -- context --------------------------------------------------------------------------------
    def __enter__(self) -> "ClassificationWriter":
        import rasterio

        base = dict(driver="GTiff", width=self.width, height=self.height, crs=self.crs, transform=self.transform,
                    tiled=True, blockxsize=256, blockysize=256, compress="deflate", BIGTIFF="IF_SAFER")
        try:
            ds = rasterio.open(self.outputs["output"].tmp, "w", count=1, dtype=self.dtype, nodata=0,
                               predictor=2, **base)
            self._ds["output"] = ds
            ds.set_band_description(1, "class")
            top = max(e["value"] for e in self.classes)
            cmap = {v: (0, 0, 0, 0) for v in range(top + 1)}
            for e in self.classes:
                cmap[e["value"]] = (*_rgb(e["color"]), 255)
            ds.write_colormap(1, cmap)
            ds.update_tags(**{CLASSES_TAG: json.dumps(self.classes)})
            if "confidence" in self.outputs:
                c = rasterio.open(self.outputs["confidence"].tmp, "w", count=1, dtype="float32",
                                  nodata=FLOAT_NODATA, predictor=3, **base)
                self._ds["confidence"] = c
                c.set_band_description(1, "confidence")
            if "uncertainty" in self.outputs:
                from ..suggest import UNCERTAINTY_BANDS

                un = rasterio.open(self.outputs["uncertainty"].tmp, "w", count=2, dtype="float32",
                                   nodata=FLOAT_NODATA, predictor=3, interleave="band", **base)
                self._ds["uncertainty"] = un
                for i, name in enumerate(UNCERTAINTY_BANDS, start=1):
                    un.set_band_description(i, name)
            if "applicability" in self.outputs:
                ap = rasterio.open(self.outputs["applicability"].tmp, "w", count=1, dtype="float32",
                                   nodata=FLOAT_NODATA, predictor=3, **base)
                self._ds["applicability"] = ap
                ap.set_band_description(1, APPLICABILITY_BAND)
                if self.applicability_threshold is not None:
                    ap.update_tags(**{AOA_THRESHOLD_TAG: repr(float(self.applicability_threshold))})
            if "probabilities" in self.outputs:
                k = len(self.classes)
                pr = rasterio.open(self.outputs["probabilities"].tmp, "w", count=k, dtype="float32",
                                   nodata=FLOAT_NODATA, predictor=3, interleave="band", **base)
                self._ds["probabilities"] = pr
                for i, e in enumerate(self.classes, start=1):
                    pr.set_band_description(i, e["name"])
                pr.update_tags(**{CLASSES_TAG: json.dumps(self.classes)})
        except BaseException:
            self._abort()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            self._close()
            write_category_names(self.outputs["output"].tmp, self.classes)
            for out in self.outputs.values():
                out.commit()
            write_qml(qml_path(self.path), self.classes, overwrite=True)
        except BaseException:
            self._abort()
            raise
        self.reporter.log("info", "Wrote " + ", ".join(o.path for o in self.outputs.values()))

    def _close(self) -> None:
        errors = []
        for ds in self._ds.values():
            try:
                ds.close()
            except Exception as exc:  # pragma: no cover - disk full etc.
                errors.append(exc)
        self._ds.clear()
        if errors:
            raise errors[0]

    def _abort(self) -> None:
        try:
            self._close()
        except Exception:
            pass
        for out in self.outputs.values():
            if not out.done:
                out.discard()

    @property
    def paths(self) -> dict[str, str]:
        """Output name (``output``, ``confidence``, ``probabilities``, ``uncertainty``, ``applicability``) ->
        final path."""
        return {k: o.path for k, o in self.outputs.items()}

    # -- writing --------------------------------------------------------------------------------
    def write(self, row_off: int, col_off: int, class_values: np.ndarray, confidence: np.ndarray | None = None,
              probabilities: np.ndarray | None = None, dissimilarity: np.ndarray | None = None) -> None:
        """Write one tile.

        Args:
            row_off, col_off: tile origin on the grid (pixels).
            class_values: (h, w) unsigned integer class values, 0 = nodata.
            confidence: (h, w) float32 maximum class probability, or None (ignored without a confidence output).
            probabilities: (K, h, w) float32 per-class probabilities in class-value order, or None.
            dissimilarity: (h, w) float32 dissimilarity index, or None.

        Raises:
            Cancelled: the reporter's cancel token is set.
            EngineError: the tile lies outside the grid or shapes disagree.
        """
        self.reporter.check_cancelled()
        if "output" not in self._ds:
            raise EngineError("ClassificationWriter.write called outside its with block", "engine bug")
        from rasterio.windows import Window

        values = np.asarray(class_values)
        if values.ndim != 2:
            raise EngineError(f"class tile must be (h, w), got shape {values.shape}", "engine bug")
        h, w = values.shape
        if row_off < 0 or col_off < 0 or row_off + h > self.height or col_off + w > self.width:
            raise EngineError(f"tile ({row_off}, {col_off}, {h}, {w}) is outside the {self.height}x{self.width} grid",
                              "engine bug")
        win = Window(col_off, row_off, w, h)
        self._ds["output"].write(values.astype(self.dtype, copy=False), 1, window=win)
        invalid = values == 0
        if "confidence" in self._ds and confidence is not None:
            c = np.asarray(confidence, dtype=np.float32)
            if c.shape != (h, w):
                raise EngineError(f"confidence tile shape {c.shape} != {(h, w)}", "engine bug")
            c = np.where(invalid, np.float32(FLOAT_NODATA), c)
            self._ds["confidence"].write(c, 1, window=win)
        if "probabilities" in self._ds and probabilities is not None:
            p = np.asarray(probabilities, dtype=np.float32)
            if p.shape != (len(self.classes), h, w):
                raise EngineError(f"probability tile shape {p.shape} != {(len(self.classes), h, w)}", "engine bug")
            p = np.where(invalid[None], np.float32(FLOAT_NODATA), p)
            self._ds["probabilities"].write(p, window=win)
        if "uncertainty" in self._ds and probabilities is not None:
            from ..suggest import entropy_margin

            entropy, margin = entropy_margin(np.asarray(probabilities, dtype=np.float32), ~invalid)
            self._ds["uncertainty"].write(np.stack([entropy, margin]), window=win)
        if "applicability" in self._ds and dissimilarity is not None:
            d = np.asarray(dissimilarity, dtype=np.float32)
            if d.shape != (h, w):
                raise EngineError(f"dissimilarity tile shape {d.shape} != {(h, w)}", "engine bug")
            self._ds["applicability"].write(np.where(invalid, np.float32(FLOAT_NODATA), d), 1, window=win)
