"""The engine/plugin contract: everything both sides must agree on (stdlib only, never imports torch).

The QGIS plugin imports this module and nothing else from the engine. It declares:

- the names the command line accepts: :data:`PROFILES`, :data:`DEVICES`, :data:`MODALITY_KINDS`,
  :data:`AUXILIARY_KINDS`, and the validation modes of ``train --validation`` (:func:`parse_validation`);
- the process exit codes (:data:`EXIT_OK` ... :data:`EXIT_OUTPUT_EXISTS`);
- the files the engine writes next to an output: :func:`checkpoint_path` (kept for ``--resume``),
  :func:`temporary_name` / :func:`temporary_glob` (renamed on success, left behind only by a killed engine);
- the JSON-lines progress protocol of ``--json-progress``: :data:`EVENTS` and one constructor per event;
- model-file reading and validation from the safetensors header (:func:`read_metadata`, :class:`ModelMetadata`,
  :class:`Category`, :class:`Band`), and :class:`EngineError`, what every engine failure the user can fix raises.
"""

from __future__ import annotations

import glob
import os
import tempfile
from typing import Any

from . import __version__ as ENGINE_VERSION
from .errors import (EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_OK, EXIT_OUTPUT_EXISTS, EXIT_UNEXPECTED, Cancelled,
                     EngineError, OutputExistsError)
from .io.schema import (FILE_KINDS, FORMAT_VERSION, Band, BandStatistics, Category, GridInfo, ModalityInfo,
                        ModelMetadata, read_metadata, verify_tensors)

__all__ = [
    "ENGINE_VERSION", "PROFILES", "DEVICES", "BACKENDS", "COMPILE_MODES", "COMPILE_MIN_PIXELS", "MAX_ENSEMBLE_MEMBERS",
    "PREDICTIONS",
    "COARSE_TO_FINE_MODES", "MODALITY_KINDS",
    "AUXILIARY_KINDS", "CONTEXT_SIGMAS_M", "SAR_KINDS", "FILE_KINDS",
    "FORMAT_VERSION", "EXIT_OK", "EXIT_UNEXPECTED", "EXIT_BAD_INPUT", "EXIT_CANCELLED", "EXIT_OUTPUT_EXISTS",
    "EngineError", "OutputExistsError", "Cancelled", "checkpoint_path", "checkpoint_paths", "temporary_name",
    "temporary_glob", "EVENTS", "progress_event", "log_event", "metric_event", "done_event", "error_event",
    "read_metadata", "read_metadata_dict", "verify_tensors", "ModelMetadata", "ModalityInfo", "Band",
    "BandStatistics", "Category", "GridInfo", "parse_validation", "write_probe_error", "UNCERTAINTY_BANDS",
    "APPLICABILITY_BAND", "AOA_THRESHOLD_TAG", "SUGGEST_MEASURES", "has_applicability", "STRATUM_FIELD", "STRATUM_SIZE_FIELD",
    "REFERENCE_FIELD", "SUGGESTED_CLASS_FIELD",
]

#: Named sets of stage configurations (``engine/config.py``; docs/profiles.md).
PROFILES = ("fast", "paper")
#: ``--device`` values: ``auto`` takes a CUDA GPU when the engine's torch sees one.
DEVICES = ("auto", "cuda", "cpu")
#: ``classify --backend`` values (``models.inference``): ``auto`` = the fast path, ``eager`` = the reference model.
BACKENDS = ("auto", "openvino", "torch", "eager")
#: classify --compile: torch.compile the group network on the CPU ("auto": from COMPILE_MIN_PIXELS pixels on)
COMPILE_MODES = ("auto", "on", "off")
#: classify --coarse-to-fine: run the group network only where neighbouring pixels disagree or are unsure
#: (``engine.predict.coarse_to_fine``); "off" runs it on every pixel
COARSE_TO_FINE_MODES = ("on", "off")
#: below this many pixels "auto" does not compile: Inductor's first compile takes 20-30 s on a 2-core CPU (about
#: 5 s once its cache holds the graph) and classify runs about 10 % faster (docs/benchmarks.md), so it pays off on
#: scenes larger than the 3.8 Mpx Delmarva scene (a Sentinel-2 tile is 120 Mpx)
COMPILE_MIN_PIXELS = 4_000_000
#: train --members: most group networks one model may hold (an ensemble; 1 = one network, the default)
MAX_ENSEMBLE_MEMBERS = 8
#: Read-outs of a trained group network (``NetworkConfig.prediction``; ``classify --prediction``): ``fused`` = the
#: classifier over the three branches' features (paper Eq. 29), ``heads`` = the mean of the branch heads' class
#: probabilities. Both come from the same trained weights, so an existing model can be read out either way.
PREDICTIONS = ("fused", "heads")
#: Modality kinds: spectral reflectance / DN, SAR backscatter in dB or linear power, elevation in metres, and the
#: landscape context the engine derives from the spectral bands (``engine.data.context``; never given as a file).
MODALITY_KINDS = ("spectral", "sar_db", "sar_linear", "elevation", "context")
#: Kinds of ``--aux KIND FILE...``.
AUXILIARY_KINDS = ("sar_db", "sar_linear", "elevation")
#: Landscape context (``pretrain / train --context``): NDWI averaged with Gaussians of these standard deviations,
#: metres, one auxiliary band each (docs/benchmarks.md, "Landscape context as an auxiliary input").
CONTEXT_SIGMAS_M = (100.0, 500.0)
SAR_KINDS = ("sar_db", "sar_linear")
#: Band descriptions of ``classify --uncertainty`` (band 1, band 2).
UNCERTAINTY_BANDS = ("normalised_entropy", "margin")
#: Band description of ``classify --applicability`` and the GeoTIFF tag holding the threshold of the area of
#: applicability (``engine.applicability``): a pixel with a dissimilarity index above it is outside.
APPLICABILITY_BAND = "dissimilarity_index"
AOA_THRESHOLD_TAG = "BDGF_AOA_THRESHOLD"
#: ``suggest --measure`` values: rank by class-probability entropy, by margin, or by the dissimilarity index.
SUGGEST_MEASURES = ("entropy", "margin", "dissimilarity")
#: Fields of the ``sampledesign`` point layer that ``assess`` reads back: the stratum (map class value at design
#: time), its size in pixels, and the reference class the analyst fills in.
STRATUM_FIELD = "stratum"
STRATUM_SIZE_FIELD = "stratum_pixels"
REFERENCE_FIELD = "reference"
#: The predicted-class field of the ``suggest`` point layer (the plugin styles the layer on it).
SUGGESTED_CLASS_FIELD = "pred_class"


# ----------------------------------------------------------------------------------------------------------------
# files written next to an output
# ----------------------------------------------------------------------------------------------------------------
def checkpoint_path(output: str, stage: str = "") -> str:
    """The checkpoint a run writes for ``output``: ``OUTPUT.checkpoint.safetensors``.

    Inside ``train``, ``stage="pretrain"`` (pretraining first, when no pretrained model is given) adds ``.pre``
    and ``stage="cv"`` (the finished cross-validation folds) adds ``.cv``.
    """
    path = f"{output}.checkpoint.safetensors"
    return path + {"pretrain": ".pre", "cv": ".cv"}.get(stage, "")


def checkpoint_paths(output: str) -> list[str]:
    """Every checkpoint a run for ``output`` may leave (kept after a cancelled run for ``--resume``)."""
    return [checkpoint_path(output), checkpoint_path(output, "pretrain"), checkpoint_path(output, "cv")]


def temporary_name(path: str, pid: int | None = None) -> str:
    """The temporary name an output is written under before the rename: ``<dir>/.<stem>.partial-<pid><ext>``."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.partial-{os.getpid() if pid is None else pid}{ext}")


def temporary_glob(path: str, pid: int) -> list[str]:
    """Temporaries of ``path`` (and their GDAL sidecars) left by the engine process ``pid``."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(stem)}.partial-{pid}{ext}*"))


# ----------------------------------------------------------------------------------------------------------------
# JSON-lines progress protocol (``--json-progress``): one object per line on stdout, nothing else
# ----------------------------------------------------------------------------------------------------------------
#: Event names and their fields (besides ``event``).
EVENTS = {
    "progress": ("stage", "value", "eta_s"),     # value 0..100; extra fields (loss, epoch...) may follow
    "log": ("level", "message"),                  # level "info" | "warning"
    "metric": ("name", "value"),                  # extra fields (aa, kappa, val_oa...) may follow
    "done": ("outputs",),                         # option name -> file written, plus "metrics"
    "error": ("message", "hint"),
}


def progress_event(stage: str, value: float, eta_s: float | None = None, **extra: Any) -> dict:
    """``{"event": "progress", "stage", "value" (0-100, 2 decimals), "eta_s" (seconds), ...}``."""
    ev = {"event": "progress", "stage": stage, "value": round(float(value), 2),
          "eta_s": None if eta_s is None else round(float(eta_s), 1)}
    ev.update(extra)
    return ev


def log_event(level: str, message: str) -> dict:
    return {"event": "log", "level": level, "message": message}


def metric_event(name: str, value: Any, **extra: Any) -> dict:
    ev = {"event": "metric", "name": name, "value": value}
    ev.update(extra)
    return ev


def done_event(outputs: dict[str, Any]) -> dict:
    return {"event": "done", "outputs": outputs}


def error_event(message: str, hint: str = "") -> dict:
    return {"event": "error", "message": message, "hint": hint}


# ----------------------------------------------------------------------------------------------------------------
# model files
# ----------------------------------------------------------------------------------------------------------------
def read_metadata_dict(path: str) -> dict:
    """A model file's validated metadata as its format-2 JSON dict (what ``python -m engine info`` prints).

    Raises:
        EngineError: missing, damaged, foreign or newer-format file (see :func:`read_metadata`).
    """
    return read_metadata(path).to_dict()


def has_applicability(meta: dict) -> bool:
    """Whether a classifier's metadata (:func:`read_metadata_dict`) says the file holds its training pixels (the
    area of applicability of ``classify --applicability`` and ``suggest --measure dissimilarity``)."""
    return bool((meta.get("report") or {}).get("applicability"))


def write_probe_error(folder: str) -> str:
    """Why a new file cannot be created in the existing folder ``folder``, or "" when it can.

    A real temporary file is created and removed: permission bits say nothing for root, ACLs or read-only
    mounts. Shared by the engine's output checks and the plugin's pre-flight. Raises nothing.
    """
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".bdgf-write-test-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def parse_validation(text: str) -> tuple[str, float]:
    """``"none"`` -> ("none", 0); ``"holdout:F"`` -> ("holdout", F), 0 < F < 1; ``"cv:K"`` -> ("cv", K), K >= 2.

    Raises:
        EngineError: any other text.
    """
    t = str(text).strip().lower()
    kind, _, arg = t.partition(":")
    try:
        if kind == "none" and not arg:
            return "none", 0.0
        if kind == "holdout" and 0.0 < float(arg) < 1.0:
            return "holdout", float(arg)
        if kind == "cv" and int(arg) >= 2 and float(arg) == int(arg):
            return "cv", float(int(arg))
    except ValueError:
        pass
    raise EngineError(f"Validation {text!r} not understood",
                      "Use none, holdout:F with 0 < F < 1 (e.g. holdout:0.3) or cv:K with K >= 2 (e.g. cv:5).")
