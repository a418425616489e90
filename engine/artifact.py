"""Model files: safetensors tensors + the engine's JSON metadata (no pickle anywhere).

A model file is a plain safetensors file whose ``__metadata__["bdgf"]`` is a JSON string holding the
engine's metadata (see :mod:`engine.header`). :func:`save_model` writes it atomically; :func:`load_model`
validates the header first (clear refusal of corrupt, truncated, foreign or newer files) and then loads the
tensors with ``safetensors.torch``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from . import __version__
from .errors import EngineError
from .files import atomic_output
from .header import FORMAT, FORMAT_VERSION, METADATA_KEY, read_metadata


def save_model(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any],
               overwrite: bool = False) -> None:
    """Write a model file atomically.

    Args:
        path: output ``.safetensors`` file.
        tensors: name -> tensor (any device; non-contiguous tensors are made contiguous and moved to CPU).
            Tensors sharing storage are copied (safetensors refuses shared memory).
        metadata: JSON-serialisable dict (classes, inputs, configuration, statistics...). ``format``,
            ``format_version``, ``engine_version`` and ``created`` (UTC ISO 8601) are added.
        overwrite: replace an existing file.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        EngineError: the metadata is not JSON-serialisable or a value is not a tensor.
    """
    meta = dict(metadata)
    meta.update(format=FORMAT, format_version=FORMAT_VERSION, engine_version=__version__,
                created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())
    try:
        text = json.dumps(meta, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise EngineError(f"Model metadata for {path} is not JSON-serialisable: {exc}",
                          "this is a bug in the engine; please report it") from exc
    flat: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise EngineError(f"Model entry {name!r} for {path} is not a tensor ({type(t).__name__})",
                              "this is a bug in the engine; please report it")
        flat[name] = t.detach().to("cpu").contiguous().clone()
    with atomic_output(path, overwrite) as tmp:
        save_file(flat, tmp, metadata={METADATA_KEY: text})


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"
               ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a model file written by :func:`save_model`.

    Args:
        path: the ``.safetensors`` model file.
        device: where to put the tensors (``"cpu"``, ``"cuda"``, ``torch.device``).

    Returns:
        ``(tensors, metadata)``: name -> tensor on ``device``, and the metadata dict.

    Raises:
        EngineError: missing, corrupt, truncated, foreign (not written by this engine) or newer-format file.
    """
    p = os.fspath(path)
    metadata = read_metadata(p)
    try:
        tensors = load_file(p, device=str(device))
    except Exception as exc:  # safetensors raises SafetensorError / OSError
        raise EngineError(f"Cannot load the tensors of model file {p}: {exc}",
                          "the file is damaged; copy it again or re-train") from exc
    return tensors, metadata
