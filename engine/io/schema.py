"""The model-file schema: typed, versioned metadata of every file the engine writes (stdlib only).

A model file (pretrained diffusion model, trained classifier or training checkpoint) is a safetensors file: an
8-byte little-endian header length ``N``, ``N`` bytes of JSON, then the tensor data. The JSON maps tensor names to
``{"dtype", "shape", "data_offsets"}`` and holds ``"__metadata__"``, a str -> str mapping whose ``"bdgf"`` entry
is the JSON text of :class:`ModelMetadata`. No pickle anywhere.

Format version 2 (this engine) records, per band, its identity (:class:`Band`: modality index and kind, file,
band index in the file, description, band name such as ``B04``, centre wavelength in nm) and the statistics the
inputs were normalised with; the reference grid (:class:`GridInfo`); the classes (:class:`Category`); the
configuration of every stage; and ``tensors_sha256``, the SHA-256 of the safetensors data section, checked when
the tensors are loaded. Files of format version 1 are migrated on read (:func:`migrate_v1`).

This module never imports torch or numpy, so the QGIS side (through :mod:`engine.contract`) can read and
validate a model file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import EngineError

FORMAT = "bdgf-model"
FORMAT_VERSION = 2
METADATA_KEY = "bdgf"
#: What a file holds: pretrained diffusion weights, a trained classifier, or a run's checkpoint.
FILE_KINDS = ("pretrain", "classifier", "checkpoint")
#: Upper bound for a plausible header (safetensors itself refuses headers above 100 MB).
MAX_HEADER_BYTES = 100 * 1024 * 1024
HINT_MODEL = "choose a model file written by this plugin's Train (or Pretrain) step"
HINT_DAMAGED = "the file is damaged; copy it again or re-train"

#: Centre wavelengths (nm) of the Sentinel-2 MSI bands (Sentinel-2A, ESA spectral response functions).
SENTINEL2_WAVELENGTH_NM = {
    "B01": 442.7, "B02": 492.4, "B03": 559.8, "B04": 664.6, "B05": 704.1, "B06": 740.5, "B07": 782.8,
    "B08": 832.8, "B8A": 864.7, "B09": 945.1, "B10": 1373.5, "B11": 1613.7, "B12": 2202.4,
}
_S2_NAME = re.compile(r"(?:^|[^A-Za-z0-9])B(8A|0?[1-9]|1[0-2])(?=$|[^A-Za-z0-9])", re.IGNORECASE)
_WAVELENGTH = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(nm|nanometers?|um|µm|micrometers?)?\s*$", re.IGNORECASE)
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
#: Qualitative palette (ColorBrewer Paired + Set1 extras) for classes that no style gives a colour.
DEFAULT_PALETTE = (
    "#1f78b4", "#33a02c", "#e31a1c", "#ff7f00", "#6a3d9a", "#b15928", "#a6cee3", "#b2df8a", "#fb9a99",
    "#fdbf6f", "#cab2d6", "#ffff99", "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628",
    "#f781bf", "#999999",
)


def _bad(path: str, what: str) -> EngineError:
    return EngineError(f"The BDGF metadata of {path} is not valid: {what}", HINT_DAMAGED)


@dataclass
class BandStatistics:
    """Statistics of one band in the analysis domain (reflectance / DN, SAR in dB, elevation in metres).

    Computed from a bounded random sample of valid pixels (spec §1.3), so ``min`` / ``max`` are sample extremes.
    """

    p2: float
    p98: float
    mean: float
    std: float
    min: float
    max: float

    def to_dict(self) -> dict:
        return {k: float(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "BandStatistics":
        """Raises KeyError / TypeError / ValueError on a missing or non-numeric entry."""
        return cls(**{k: float(d[k]) for k in ("p2", "p98", "mean", "std", "min", "max")})


def band_name(*texts: str) -> str | None:
    """The Sentinel-2 band name (``B01``..``B12``, ``B8A``) found in a band description or file name, or None."""
    for text in texts:
        match = _S2_NAME.search(text or "")
        if match:
            code = match.group(1).upper()
            return "B8A" if code == "8A" else f"B{int(code):02d}"
    return None


def wavelength_nm(text: str | None) -> float | None:
    """A wavelength tag (``"490"``, ``"490 nm"``, ``"0.49 um"``) in nm, or None when it cannot be read."""
    match = _WAVELENGTH.match(text or "")
    if not match:
        return None
    value, unit = float(match.group(1)), (match.group(2) or "nm").lower()
    return value if unit.startswith("n") else value * 1000.0


@dataclass
class Band:
    """Identity of one input band, in stack order.

    Attributes:
        modality: index of its modality in the stack (0 = spectral). kind: that modality's kind.
        file: file name (no folder). index: 1-based band index in the file. description: the file's band
            description ("" when none). name: band name such as ``B04`` when it can be derived (Sentinel-2), else
            None. wavelength_nm: centre wavelength when known (file tag, or the Sentinel-2 band name).
        statistics: the statistics the inputs were normalised with (None only in checkpoints).
    """

    modality: int
    kind: str
    file: str
    index: int
    description: str = ""
    name: str | None = None
    wavelength_nm: float | None = None
    statistics: BandStatistics | None = None

    @classmethod
    def identify(cls, modality: int, kind: str, file: str, index: int, description: str = "",
                 wavelength: str | None = None, statistics: BandStatistics | None = None) -> "Band":
        """A band with its name and centre wavelength derived from its description, file name and tags."""
        name = band_name(description, os.path.splitext(os.path.basename(file))[0]) if kind == "spectral" else None
        wl = wavelength_nm(wavelength)
        if wl is None and name is not None:
            wl = SENTINEL2_WAVELENGTH_NM.get(name)
        return cls(modality, kind, os.path.basename(file), int(index), description or "", name, wl, statistics)

    @classmethod
    def of_stack_band(cls, modality: int, kind: str, info: dict, statistics: BandStatistics | None = None) -> "Band":
        """:meth:`identify` for one entry of ``RasterStack.band_info`` (``{"file", "band", "description"?,
        "wavelength"?}``)."""
        return cls.identify(modality, kind, info["file"], info["band"], info.get("description", ""),
                            info.get("wavelength"), statistics)

    def label(self) -> str:
        """``file.tif:2 (B04, 664.6 nm)``: how logs and reports name the band."""
        extra = [x for x in (self.description, self.name if self.name != self.description else None,
                             f"{self.wavelength_nm:g} nm" if self.wavelength_nm else None) if x]
        return f"{self.file}:{self.index}" + (f" ({', '.join(extra)})" if extra else "")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["statistics"] = self.statistics.to_dict() if self.statistics else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Band":
        stats = d.get("statistics")
        return cls(int(d["modality"]), str(d["kind"]), str(d["file"]), int(d["index"]), str(d.get("description") or ""),
                   d.get("name"), None if d.get("wavelength_nm") is None else float(d["wavelength_nm"]),
                   BandStatistics.from_dict(stats) if stats else None)


@dataclass
class ModalityInfo:
    """One input modality: kind (``contract.MODALITY_KINDS``), display name, files, nodata and its bands."""

    kind: str
    name: str
    files: list[str]
    nodata: float | None
    bands: list[Band]

    @property
    def band_count(self) -> int:
        return len(self.bands)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "files": list(self.files), "nodata": self.nodata,
                "bands": [b.to_dict() for b in self.bands]}

    @classmethod
    def from_dict(cls, d: dict) -> "ModalityInfo":
        return cls(str(d["kind"]), str(d.get("name") or ""), [str(f) for f in d.get("files") or []],
                   d.get("nodata"), [Band.from_dict(b) for b in d["bands"]])


@dataclass
class GridInfo:
    """The reference grid the model was trained on: CRS (WKT), pixel size (x, y) in CRS units, bounds."""

    crs: str
    res: tuple[float, float]
    bounds: tuple[float, float, float, float]

    def to_dict(self) -> dict:
        return {"crs": self.crs, "res": list(self.res), "bounds": list(self.bounds)}

    @classmethod
    def from_dict(cls, d: dict) -> "GridInfo":
        return cls(str(d["crs"]), tuple(float(v) for v in d["res"]), tuple(float(v) for v in d["bounds"]))


@dataclass(frozen=True)
class Category:
    """One land-cover class: raster value (1..65535; 0 is nodata), display name and colour ``#rrggbb``."""

    value: int
    name: str
    color: str

    def to_dict(self) -> dict:
        return {"value": int(self.value), "name": self.name, "color": self.color}

    @classmethod
    def from_dict(cls, d: dict) -> "Category":
        return cls(int(d["value"]), str(d.get("name", d["value"])), str(d.get("color") or "#808080"))


@dataclass
class DiffusionInfo:
    """The diffusion stage of a file: its configuration, band layout (spec §1.5), iterations and loss history."""

    config: dict
    band_layout: dict
    iterations: int = 0
    history: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"config": self.config, "band_layout": self.band_layout, "iterations": int(self.iterations),
                "history": [list(h) for h in self.history]}

    @classmethod
    def from_dict(cls, d: dict) -> "DiffusionInfo":
        return cls(dict(d["config"]), dict(d["band_layout"]), int(d.get("iterations") or 0), list(d.get("history") or []))


@dataclass
class ModelMetadata:
    """Everything a model file says about itself (format version 2).

    Attributes:
        kind: ``pretrain`` | ``classifier`` | ``checkpoint`` (:data:`FILE_KINDS`).
        modalities: the inputs in stack order (spectral first), each with its :class:`Band` list.
        grid: the reference grid (None in checkpoints). profile, seed: the run's profile and seed.
        diffusion: :class:`DiffusionInfo` (pretrain and classifier files).
        classes: :class:`Category` list; network class index k is ``classes[k]`` (classifier files).
        network_config, training_config: the stage configurations (classifier files).
        patch_size: P. halo: pixels read around every prediction tile (diffusion halo + P // 2).
        pca_components: spectral PCA components (None = no PCA). report: the training report's figures.
        training_data: ``{"file", "class_field"}`` of the training polygons. world_size: processes that trained.
        state: a checkpoint's loop state (stage, iteration / epoch, RNG, optimiser groups, history).
        context: how the landscape context modality was derived (``engine.data.context.ContextSpec``: ``{"index",
            "sigma_m"}``), None without one; ``classify`` derives it again from the spectral bands.
        engine_version, created: written by :func:`engine.io.artifact.save_model`.
        tensors_sha256: SHA-256 of the safetensors data section (None for format-1 files).
    """

    kind: str
    modalities: list[ModalityInfo] = field(default_factory=list)
    grid: GridInfo | None = None
    profile: str = "fast"
    seed: int = 0
    diffusion: DiffusionInfo | None = None
    classes: list[Category] = field(default_factory=list)
    network_config: dict | None = None
    training_config: dict | None = None
    patch_size: int | None = None
    halo: int | None = None
    pca_components: int | None = None
    report: dict | None = None
    training_data: dict | None = None
    state: dict | None = None
    world_size: int = 1
    context: dict | None = None
    engine_version: str = ""
    created: str = ""
    tensors_sha256: str | None = None
    format_version: int = FORMAT_VERSION

    # -- views --------------------------------------------------------------------------------------------------
    @property
    def band_counts(self) -> list[int]:
        return [m.band_count for m in self.modalities]

    @property
    def bands(self) -> list[Band]:
        """Every band in stack order."""
        return [b for m in self.modalities for b in m.bands]

    def statistics(self) -> list[list[BandStatistics]]:
        """``stats[m][b]``: the normalisation statistics per modality and band."""
        return [[b.statistics for b in m.bands] for m in self.modalities]

    # -- JSON ---------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"format": FORMAT, "format_version": FORMAT_VERSION, "engine_version": self.engine_version,
             "created": self.created, "kind": self.kind, "profile": self.profile, "seed": int(self.seed),
             "modalities": [m.to_dict() for m in self.modalities],
             "grid": self.grid.to_dict() if self.grid else None,
             "diffusion": self.diffusion.to_dict() if self.diffusion else None,
             "classes": [c.to_dict() for c in self.classes]}
        for name in ("network_config", "training_config", "patch_size", "halo", "pca_components", "report",
                     "training_data", "state", "world_size", "context", "tensors_sha256"):
            d[name] = getattr(self, name)
        return d

    @classmethod
    def from_dict(cls, d: dict, path: str = "<metadata>") -> "ModelMetadata":
        """Typed metadata from its JSON dict (format 1 is migrated first), validated.

        Raises:
            EngineError: foreign file, newer format, or a missing / invalid field (named in the message).
        """
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise EngineError(f"{path} is a safetensors file but not a BDGF model (foreign file: format "
                              f"{d.get('format') if isinstance(d, dict) else None!r})", HINT_MODEL)
        version = d.get("format_version")
        if not isinstance(version, int):
            raise _bad(path, "no format_version")
        if version > FORMAT_VERSION:
            raise EngineError(f"Model file {path} was written by a newer engine version "
                              f"{d.get('engine_version', '?')} (model format {version}; this engine reads "
                              f"format {FORMAT_VERSION} and older)", "update the plugin")
        if version < 2:
            d = migrate_v1(d)
        try:
            meta = cls(
                kind=str(d["kind"]), modalities=[ModalityInfo.from_dict(m) for m in d.get("modalities") or []],
                grid=GridInfo.from_dict(d["grid"]) if d.get("grid") else None, profile=str(d.get("profile", "fast")),
                seed=int(d.get("seed") or 0),
                diffusion=DiffusionInfo.from_dict(d["diffusion"]) if d.get("diffusion") else None,
                classes=[Category.from_dict(c) for c in d.get("classes") or []],
                network_config=d.get("network_config"), training_config=d.get("training_config"),
                patch_size=d.get("patch_size"), halo=d.get("halo"), pca_components=d.get("pca_components"),
                report=d.get("report"), training_data=d.get("training_data"), state=d.get("state"),
                world_size=int(d.get("world_size") or 1), context=d.get("context"),
                engine_version=str(d.get("engine_version", "")), created=str(d.get("created", "")),
                tensors_sha256=d.get("tensors_sha256"), format_version=int(version))
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(path, f"field {exc} is missing or has a wrong type") from exc
        meta.validate(path)
        return meta

    def validate(self, path: str = "<metadata>") -> None:
        """Check what every reader relies on. Raises :class:`EngineError` naming the field."""
        if self.kind not in FILE_KINDS:
            raise _bad(path, f"kind {self.kind!r} is not one of {', '.join(FILE_KINDS)}")
        if self.kind == "checkpoint":
            if not isinstance(self.state, dict) or "stage" not in self.state:
                raise _bad(path, "a checkpoint needs a state with its stage")
            return
        if not self.modalities or self.modalities[0].kind != "spectral":
            raise _bad(path, "the first modality must be spectral")
        for m in self.modalities:
            if not m.bands:
                raise _bad(path, f"the {m.kind} modality has no bands")
            if any(b.statistics is None for b in m.bands):
                raise _bad(path, f"a band of the {m.kind} modality has no statistics")
        if any(m.kind == "context" for m in self.modalities) != isinstance(self.context, dict):
            raise _bad(path, "a landscape context modality needs its 'context' settings, and they need the modality")
        if self.diffusion is None:
            raise _bad(path, "the diffusion stage (config, band layout) is missing")
        if self.kind == "classifier":
            self._validate_classifier(path)

    def _validate_classifier(self, path: str) -> None:
        if len(self.classes) < 2:
            raise _bad(path, f"a classifier needs at least 2 classes, it has {len(self.classes)}")
        values = [c.value for c in self.classes]
        if len(set(values)) != len(values) or not all(1 <= v <= 65535 for v in values):
            raise _bad(path, f"class values {values} must be distinct and in 1..65535")
        bad_colors = [c.color for c in self.classes if not _COLOR.match(c.color)]
        if bad_colors:
            raise _bad(path, f"class colours {bad_colors} are not #rrggbb")
        for name in ("network_config", "training_config", "patch_size", "grid"):
            if getattr(self, name) is None:
                raise _bad(path, f"{name} is missing")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=True)


# ----------------------------------------------------------------------------------------------------------------
# format 1 -> 2
# ----------------------------------------------------------------------------------------------------------------
_V1_LABEL = re.compile(r"^(?P<file>.*?):(?P<index>\d+)(?: \((?P<extra>.*)\))?$")


def _v1_bands(m_index: int, modality: dict, stats: Sequence[dict]) -> list[dict]:
    """Band entries of a format-1 modality from its ``file.tif:band (description, wavelength)`` labels."""
    files = list(modality.get("files") or [])
    labels = list(modality.get("band_descriptions") or [])
    count = int(modality.get("band_count", len(labels)))
    bands = []
    for i in range(count):
        match = _V1_LABEL.match(labels[i]) if i < len(labels) else None
        file = match.group("file") if match else (files[i] if len(files) == count else (files[0] if files else ""))
        index = int(match.group("index")) if match else (1 if len(files) == count else i + 1)
        extra = [x.strip() for x in (match.group("extra") or "").split(",")] if match else []
        wl = next((x for x in extra if wavelength_nm(x) is not None), None)
        desc = next((x for x in extra if x != wl), "")
        band = Band.identify(m_index, modality["kind"], file, index, desc, wl,
                             BandStatistics.from_dict(stats[i]) if i < len(stats) else None)
        bands.append(band.to_dict())
    return bands


def migrate_v1(d: dict) -> dict:
    """A format-1 metadata dict (dict literals of engine 0.1) as a format-2 dict."""
    stats = d.get("statistics") or []
    modalities = []
    for i, m in enumerate(d.get("modalities") or []):
        modalities.append({"kind": m["kind"], "name": m.get("name", ""), "files": m.get("files") or [],
                           "nodata": m.get("nodata"), "bands": _v1_bands(i, m, stats[i] if i < len(stats) else [])})
    diffusion = None
    if "diffusion_config" in d:
        diffusion = {"config": d["diffusion_config"], "band_layout": d["band_layout"],
                     "iterations": d.get("pretrain_iterations") or 0, "history": d.get("pretrain_history") or []}
    inputs = d.get("inputs") if isinstance(d.get("inputs"), dict) else {}
    out = {k: d.get(k) for k in ("format", "engine_version", "created", "kind", "profile", "seed", "grid",
                                 "network_config", "training_config", "patch_size", "report", "world_size")}
    out.update(format_version=1, modalities=modalities, diffusion=diffusion,
               classes=[{k: c.get(k) for k in ("value", "name", "color")} for c in d.get("classes") or []],
               halo=(d.get("tile") or {}).get("halo"), pca_components=(d.get("pca") or {}).get("components"),
               training_data={"file": inputs["training"], "class_field": inputs.get("class_field")}
               if "training" in inputs else None, tensors_sha256=None)
    if out["kind"] is None:
        out["kind"] = "classifier" if "network_config" in d else "pretrain"
    return out


# ----------------------------------------------------------------------------------------------------------------
# reading a file (stdlib)
# ----------------------------------------------------------------------------------------------------------------
def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check the safetensors JSON header of ``path``.

    Returns:
        The header dict (tensor entries and ``__metadata__``).

    Raises:
        EngineError: the file is missing or unreadable, is not a safetensors file (bad header length, header
            not JSON), or is truncated (shorter than the data the header describes).
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise EngineError(f"Model file {p} does not exist", "check the path; " + HINT_MODEL)
    if os.path.isdir(p):
        raise EngineError(f"Model file {p} is a folder", HINT_MODEL)
    try:
        size = os.path.getsize(p)
        with open(p, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise EngineError(f"{p} is not a model file (only {size} bytes)", HINT_MODEL)
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > MAX_HEADER_BYTES:
                raise EngineError(f"{p} is not a model file (not a safetensors file: "
                                  f"invalid header length {n})", HINT_MODEL)
            if 8 + n > size:
                raise EngineError(f"Model file {p} is truncated: its header needs {8 + n} bytes, "
                                  f"the file has {size}",
                                  "the copy or download was incomplete; copy the file again or re-train")
            raw = fh.read(n)
    except OSError as exc:
        raise EngineError(f"Cannot read model file {p}: {exc.strerror or exc}",
                          "check that the file exists and is readable") from exc
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EngineError(f"{p} is not a model file (not a safetensors file: the header is not JSON)",
                          HINT_MODEL) from exc
    if not isinstance(header, dict):
        raise EngineError(f"{p} is not a model file (not a safetensors file: the header is not a JSON object)",
                          HINT_MODEL)
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, stop = entry["data_offsets"]
            begin, stop = int(begin), int(stop)
        except (TypeError, KeyError, ValueError) as exc:
            raise EngineError(f"{p} is not a valid model file (tensor {name!r} has no valid data offsets)",
                              HINT_MODEL) from exc
        if begin < 0 or stop < begin:
            raise EngineError(f"{p} is not a valid model file (tensor {name!r} has invalid data offsets)",
                              HINT_MODEL)
        end = max(end, stop)
    if size < 8 + n + end:
        raise EngineError(f"Model file {p} is truncated: {size} bytes, expected at least {8 + n + end}",
                          "the copy or download was incomplete; copy the file again or re-train")
    return header


def data_sha256(path: str | os.PathLike, header_length: int | None = None) -> str:
    """SHA-256 (hex) of the data section of a safetensors file (everything after the JSON header)."""
    p = os.fspath(path)
    digest = hashlib.sha256()
    with open(p, "rb") as fh:
        if header_length is None:
            (header_length,) = struct.unpack("<Q", fh.read(8))
        fh.seek(8 + header_length)
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_metadata(path: str | os.PathLike, verify: bool = False) -> ModelMetadata:
    """Read and validate a model file's metadata without loading its tensors.

    Args:
        path: a ``.safetensors`` file written by :func:`engine.io.artifact.save_model`.
        verify: also check the tensors' SHA-256 against ``tensors_sha256`` (reads the whole file).

    Returns:
        The :class:`ModelMetadata` (format-1 files are migrated).

    Raises:
        EngineError: missing file, not a safetensors file, truncated file, a safetensors file that was not
            written by this engine ("foreign"), a file of a newer format, invalid metadata, or (``verify``)
            tensors that do not match their checksum.
    """
    p = os.fspath(path)
    header = read_header(p)
    meta = header.get("__metadata__") or {}
    text = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    if not isinstance(text, str):
        raise EngineError(f"{p} is a safetensors file but not a BDGF model (foreign file: no BDGF metadata)",
                          HINT_MODEL)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise EngineError(f"The BDGF metadata of {p} is not valid JSON (damaged file)", HINT_DAMAGED) from exc
    metadata = ModelMetadata.from_dict(data, p)
    if verify:
        verify_tensors(p, metadata)
    return metadata


def verify_tensors(path: str | os.PathLike, metadata: ModelMetadata) -> None:
    """Raise :class:`EngineError` when the data section does not match ``metadata.tensors_sha256``.

    Format-1 files carry no checksum and pass.
    """
    if not metadata.tensors_sha256:
        return
    if data_sha256(path) != metadata.tensors_sha256:
        raise EngineError(f"Model file {os.fspath(path)} is damaged: its tensors do not match their checksum",
                          HINT_DAMAGED)
