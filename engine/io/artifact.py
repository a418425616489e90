"""One file format for models and checkpoints: safetensors tensors + :class:`~engine.io.schema.ModelMetadata`.

Pretrained diffusion models, trained classifiers and the checkpoints of a running pretraining / training are all
plain safetensors files whose ``__metadata__["bdgf"]`` is the JSON of a :class:`ModelMetadata` (see
:mod:`engine.io.schema`, torch-free). :func:`save_model` writes atomically (temporary name, renamed on success)
and records the SHA-256 of the tensors' data section; :func:`load_model` validates the metadata first (clear
refusal of corrupt, truncated, foreign or newer files), checks that checksum, then loads the tensors.
No pickle anywhere.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import struct
from typing import Any

import torch
from safetensors.torch import load_file, save

from .. import __version__
from ..errors import EngineError
from ..files import atomic_output
from .schema import HINT_DAMAGED, METADATA_KEY, ModelMetadata, read_metadata, verify_tensors

__all__ = ["save_model", "load_model", "save_checkpoint", "load_checkpoint", "optimizer_tensors",
           "load_optimizer"]


def _flat(path: Any, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    flat: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise EngineError(f"Model entry {name!r} for {path} is not a tensor ({type(t).__name__})",
                              "this is a bug in the engine; please report it")
        flat[name] = t.detach().to("cpu").contiguous().clone()   # safetensors refuses shared storage
    return flat


def save_model(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: ModelMetadata,
               overwrite: bool = False) -> ModelMetadata:
    """Write a model (or checkpoint) file atomically.

    Args:
        path: output ``.safetensors`` file.
        tensors: name -> tensor (any device; copied to CPU and made contiguous).
        metadata: the file's :class:`ModelMetadata`; ``engine_version``, ``created`` (UTC ISO 8601) and
            ``tensors_sha256`` are filled in here.
        overwrite: replace an existing file.

    Returns:
        The metadata as written.
    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        EngineError: a value is not a tensor, or the metadata is not JSON-serialisable.
    """
    blob = save(_flat(path, tensors))            # serialised once; the data section does not depend on metadata
    (n,) = struct.unpack("<Q", blob[:8])
    metadata.engine_version = __version__
    metadata.created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    metadata.tensors_sha256 = hashlib.sha256(blob[8 + n:]).hexdigest()
    try:
        text = metadata.to_json()
    except (TypeError, ValueError) as exc:
        raise EngineError(f"Model metadata for {path} is not JSON-serialisable: {exc}",
                          "this is a bug in the engine; please report it") from exc
    header = _header_with_metadata(blob[8:8 + n], text)
    with atomic_output(path, overwrite) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(struct.pack("<Q", len(header)))
            fh.write(header)
            fh.write(memoryview(blob)[8 + n:])
    return metadata


def _header_with_metadata(header_json: bytes, text: str) -> bytes:
    """The safetensors JSON header with ``__metadata__ = {"bdgf": text}``, space-padded to 8 bytes."""
    import json

    header = json.loads(header_json.decode("utf-8"))
    header["__metadata__"] = {METADATA_KEY: text}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return raw + b" " * (-len(raw) % 8)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu"
               ) -> tuple[dict[str, torch.Tensor], ModelMetadata]:
    """Load a file written by :func:`save_model`.

    Args:
        path: the ``.safetensors`` file. device: where to put the tensors.

    Returns:
        ``(tensors, metadata)``: name -> tensor on ``device``, and the validated :class:`ModelMetadata`.
    Raises:
        EngineError: missing, corrupt, truncated, foreign (not written by this engine) or newer-format file,
            invalid metadata, tensors that do not match their checksum, or non-finite weights.
    """
    p = os.fspath(path)
    metadata = read_metadata(p)
    verify_tensors(p, metadata)
    try:
        tensors = load_file(p, device=str(device))
    except Exception as exc:  # safetensors raises SafetensorError / OSError
        raise EngineError(f"Cannot load the tensors of model file {p}: {exc}", HINT_DAMAGED) from exc
    check_finite(p, tensors)
    return tensors, metadata


def check_finite(path: str, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse weights that are NaN or infinite (a diverged training, or a damaged file with a fresh checksum):
    such a model would classify every pixel as one class with NaN confidence.

    Raises:
        EngineError: naming the file and the first non-finite tensor.
    """
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise EngineError(f"Model file {path} holds non-finite weights (NaN or infinity): {bad} of {t.numel()} "
                              f"values of tensor {name!r}",
                              "The training diverged or the file is damaged: copy it again, or train again (another "
                              "seed, or fewer epochs).")


# ----------------------------------------------------------------------------------------------------------------
# checkpoints: the same format, kind "checkpoint", the loop state in ``metadata.state``
# ----------------------------------------------------------------------------------------------------------------
def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser's state as tensors ``optim.<param index>.<name>`` plus its JSON param groups."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"optim.{idx}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    return tensors, {"param_groups": sd["param_groups"]}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                   device: torch.device) -> None:
    """Inverse of :func:`optimizer_tensors` (``step`` counters stay on the CPU, as torch keeps them)."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, v in tensors.items():
        if name.startswith("optim."):
            _, idx, k = name.split(".", 2)
            state.setdefault(int(idx), {})[k] = v if k == "step" else v.to(device)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(path: str, stage: str, tensors: dict[str, torch.Tensor], opt: torch.optim.Optimizer,
                    state: dict[str, Any]) -> None:
    """Write the checkpoint of a running ``stage`` (``pretrain`` | ``train``) atomically (replacing the last one).

    Args:
        tensors: the model's state (e.g. ``unet.*`` or ``net.*``); the optimiser's tensors are added.
        state: JSON-able loop state (iteration / epoch, history, RNG states...); ``stage`` and the optimiser's
            param groups are added.
    """
    otens, ometa = optimizer_tensors(opt)
    meta = ModelMetadata(kind="checkpoint", state=dict(state, stage=stage, optimizer=ometa))
    save_model(path, {**tensors, **otens}, meta, overwrite=True)


def load_checkpoint(path: str, stage: str, device: str | torch.device = "cpu"
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint` for ``stage``: ``(tensors, state)``.

    Raises:
        EngineError: no such file, not a checkpoint, or a checkpoint of another stage.
    """
    if not path or not os.path.exists(path):
        raise EngineError(f"No checkpoint to resume from: {path}", "Run without --resume.")
    tensors, meta = load_model(path, device)
    if meta.kind != "checkpoint" or meta.state.get("stage") != stage:
        raise EngineError(f"{path} is not a {stage} checkpoint", "Run without --resume.")
    return tensors, meta.state
