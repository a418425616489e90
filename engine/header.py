"""Model-file header reading (stdlib only: no torch, no numpy).

A model file is a safetensors file: an 8-byte little-endian header length ``N``, ``N`` bytes of JSON, then the
tensor data. The JSON maps tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets
relative to the start of the data section) and may hold ``"__metadata__"``, a str -> str mapping. The engine
keeps its metadata as a JSON string in ``__metadata__["bdgf"]``.

The QGIS side uses :func:`read_metadata` to show a model's classes and inputs without importing torch.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

from .errors import EngineError

FORMAT = "bdgf-model"
FORMAT_VERSION = 1
METADATA_KEY = "bdgf"
#: Upper bound for a plausible header (safetensors itself refuses headers above 100 MB).
MAX_HEADER_BYTES = 100 * 1024 * 1024

_HINT_MODEL = "choose a model file written by this plugin's Train (or Pretrain) step"


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
        raise EngineError(f"Model file {p} does not exist", "check the path; " + _HINT_MODEL)
    if os.path.isdir(p):
        raise EngineError(f"Model file {p} is a folder", _HINT_MODEL)
    try:
        size = os.path.getsize(p)
        with open(p, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise EngineError(f"{p} is not a model file (only {size} bytes)", _HINT_MODEL)
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > MAX_HEADER_BYTES:
                raise EngineError(f"{p} is not a model file (not a safetensors file: "
                                  f"invalid header length {n})", _HINT_MODEL)
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
                          _HINT_MODEL) from exc
    if not isinstance(header, dict):
        raise EngineError(f"{p} is not a model file (not a safetensors file: the header is not a JSON object)",
                          _HINT_MODEL)
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, stop = entry["data_offsets"]
            begin, stop = int(begin), int(stop)
        except (TypeError, KeyError, ValueError) as exc:
            raise EngineError(f"{p} is not a valid model file (tensor {name!r} has no valid data offsets)",
                              _HINT_MODEL) from exc
        if begin < 0 or stop < begin:
            raise EngineError(f"{p} is not a valid model file (tensor {name!r} has invalid data offsets)",
                              _HINT_MODEL)
        end = max(end, stop)
    if size < 8 + n + end:
        raise EngineError(f"Model file {p} is truncated: {size} bytes, expected at least {8 + n + end}",
                          "the copy or download was incomplete; copy the file again or re-train")
    return header


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read the engine's metadata from a model file without loading its tensors.

    Args:
        path: a ``.safetensors`` model file written by :func:`engine.artifact.save_model`.

    Returns:
        The metadata dict (``format``, ``format_version``, ``engine_version``, ``created``, and whatever the
        writer stored: classes, inputs, configuration...).

    Raises:
        EngineError: missing file, not a safetensors file, truncated file, a safetensors file that was not
            written by this engine ("foreign"), or a file written by a newer engine (format_version too high).
    """
    p = os.fspath(path)
    header = read_header(p)
    meta = header.get("__metadata__") or {}
    text = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    if not isinstance(text, str):
        raise EngineError(f"{p} is a safetensors file but not a BDGF model (foreign file: no BDGF metadata)",
                          _HINT_MODEL)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise EngineError(f"The BDGF metadata of {p} is not valid JSON (damaged file)",
                          "copy the file again or re-train") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise EngineError(f"{p} is a safetensors file but not a BDGF model (foreign file: format "
                          f"{data.get('format') if isinstance(data, dict) else None!r})", _HINT_MODEL)
    version = data.get("format_version")
    if not isinstance(version, int):
        raise EngineError(f"The BDGF metadata of {p} has no valid format_version (damaged file)",
                          "copy the file again or re-train")
    if version > FORMAT_VERSION:
        raise EngineError(f"Model file {p} was written by a newer engine version "
                          f"{data.get('engine_version', '?')} (model format {version}; this engine reads "
                          f"format {FORMAT_VERSION} and older)", "update the plugin")
    return data
