"""Command line: ``python -m engine pretrain | train | classify | assess | info | doctor``.

This is the contract the QGIS plugin drives (``docs/architecture.md``, "Command line"). The module imports
neither torch nor numpy at import time: ``--help``, ``info`` and ``doctor`` work without loading the
deep-learning stack, and ``pretrain`` / ``train`` / ``classify`` import :mod:`engine.api` lazily.

Exit codes: 0 success, 1 unexpected error (traceback on stderr), 2 bad input or usage (:class:`EngineError`),
3 cancelled (SIGINT / SIGTERM), 4 an output exists and ``--overwrite`` was not given.

Cancellation: the first SIGINT / SIGTERM sets the reporter's :class:`CancelToken`; the run stops at the next
``check_cancelled()`` (between tiles / batches / iterations), removes its partial outputs and exits 3. A second
signal raises ``KeyboardInterrupt`` at once (outputs still cleaned up by the ``with`` blocks, exit 3); a third
exits the process immediately.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from typing import Any, Callable, Sequence

from . import __version__
from .contract import (AUXILIARY_KINDS, BACKENDS, COARSE_TO_FINE_MODES, COMPILE_MIN_PIXELS, COMPILE_MODES, DEVICES,
                       EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_OK, EXIT_UNEXPECTED, MAX_ENSEMBLE_MEMBERS, PREDICTIONS,
                       PROFILES, SUGGEST_MEASURES)
from .errors import Cancelled, EngineError
from .progress import CancelToken, Reporter

# Which options of each command are output files (checked for existence before any work).
OUTPUT_OPTIONS = {
    "pretrain": ("output",),
    "train": ("output", "report"),
    "classify": ("output", "confidence", "probabilities", "uncertainty", "applicability"),
    "suggest": ("output",),
    "cleanup": ("output",),
    "sampledesign": ("output",),
    "assess": ("report", "table", "json"),
}


# -- parser ----------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with usage errors reported as an ``error`` event in ``--json-progress`` mode (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if "--json-progress" in sys.argv[1:]:
            sys.stdout.write(json.dumps({"event": "error", "message": f"{self.prog}: {message}",
                                         "hint": f"run `{self.prog} --help` for the options"}) + "\n")
            sys.stdout.flush()
        super().error(message)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows ``(default: X)`` for options whose default is meaningful (not None / False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" not in text and not (action.default is None or action.default is False or action.default == []
                     or action.default is argparse.SUPPRESS)
                and action.option_strings and action.nargs != 0):
            text += " (default: %(default)s)"
        return text


def _common_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("common options")
    g.add_argument("--json-progress", action="store_true",
                   help="write progress, logs, metrics and the result as JSON lines on stdout (used by QGIS)")
    g.add_argument("--device", default="auto", choices=DEVICES,
                   help="compute device: auto uses CUDA when available")
    g.add_argument("--seed", type=int, default=0, help="random seed (sampling, initialisation, split)")
    g.add_argument("--overwrite", action="store_true", help="replace existing output files")
    g.add_argument("--extent", type=float, nargs=4, metavar=("XMIN", "YMIN", "XMAX", "YMAX"),
                   help="restrict processing to this extent (in --extent-crs, default the reference grid's CRS)")
    g.add_argument("--extent-crs", metavar="CRS", help="CRS of --extent (e.g. EPSG:4326 or WKT)")
    g.add_argument("--nodata-spectral", type=float, metavar="V",
                   help="nodata value of the spectral rasters (when the files declare none)")
    g.add_argument("--nodata-aux", type=float, metavar="V",
                   help="nodata value of the auxiliary rasters (when the files declare none)")
    return p


def _inputs_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("input rasters")
    g.add_argument("--spectral", nargs="+", required=True, metavar="FILE",
                   help="spectral raster(s), stacked band-wise in the given order (the first one defines the grid)")
    g.add_argument("--aux", nargs="+", action="append", default=[], metavar=("KIND", "FILE"),
                   help="auxiliary modality: KIND (sar_db | sar_linear | elevation) followed by its raster file(s); "
                        "repeat for several modalities")
    return p


def _add_classify(sub: Any, parents: list) -> None:
    """The ``classify`` sub-command."""
    p = sub.add_parser("classify", parents=parents, formatter_class=_Formatter,
                       help="classify a scene with a trained model",
                       description="Classify the scene tile by tile with a trained model.")
    p.add_argument("--model", required=True, metavar="MODEL.safetensors", help="trained model file")
    p.add_argument("--output", required=True, metavar="CLASSES.tif", help="classified GeoTIFF to write")
    p.add_argument("--band-order", choices=("name", "positional"), default="name",
                   help="name: match the bands to the model's by Sentinel-2 name, description or wavelength "
                        "(reordered when given in another order; a missing or unknown band is refused); "
                        "positional: take them in the given order (files renamed after training)")
    p.add_argument("--confidence", metavar="CONF.tif", help="confidence raster (maximum class probability)")
    p.add_argument("--probabilities", metavar="PROB.tif", help="per-class probability stack")
    p.add_argument("--uncertainty", metavar="UNC.tif",
                   help="uncertainty raster: band 1 normalised entropy (0-1), band 2 margin between the two most "
                        "probable classes (0-1)")
    p.add_argument("--applicability", metavar="AOA.tif",
                   help="area of applicability: the dissimilarity index of every pixel (distance of its inputs to the "
                        "nearest training pixel over the mean distance between training pixels; Meyer and Pebesma "
                        "2021); pixels above the threshold in its BDGF_AOA_THRESHOLD tag are unlike every training "
                        "polygon and the cross-validated accuracy does not hold there")
    p.add_argument("--mask", metavar="POLYGONS", help="classify only inside these polygons")
    p.add_argument("--mask-layer", metavar="NAME", help="layer of a multi-layer mask file")
    p.add_argument("--tile", type=int, metavar="N", help="tile size in pixels (default: from the model)")
    p.add_argument("--batch-size", type=int, metavar="N", help="patches per batch (default: from the model)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="inference: auto = OpenVINO on the CPU when installed, else PyTorch with the exact "
                        "rewrites of the fast path; eager = the reference PyTorch model (slowest)")
    p.add_argument("--compile", choices=COMPILE_MODES, default="auto",
                   help="torch.compile the group network on the CPU (needs a C++ compiler; 20-30 s the first time): "
                        f"auto = from {COMPILE_MIN_PIXELS // 1_000_000} Mpx on; falls back to the uncompiled network")
    p.add_argument("--prediction", choices=PREDICTIONS, default=None,
                   help="read-out of the trained network (default: the model's own, fused unless trained "
                        "otherwise): fused = its classifier over the three branches' features (the paper's Eq. 29); "
                        "heads = the mean of its branch heads' class probabilities. The training report gives both "
                        "under the same cross-validation folds; compare both maps before choosing")
    p.add_argument("--coarse-to-fine", choices=COARSE_TO_FINE_MODES, default="on",
                   help="on: the network classifies every 4th pixel of every 4th row, then only the pixels whose "
                        "neighbours disagree, give their class a probability below 0.97 (0.9 for adjacent "
                        "neighbours) or differ from them spectrally; the others take their neighbours' mean "
                        "probabilities (same classes, a third to half the time); off: every pixel (exact "
                        "probabilities; always off with --backend eager)")


CONTEXT_HELP = ("add the landscape context as auxiliary bands: the water index NDWI (green and near-infrared bands: "
                "Sentinel-2 names or wavelength tags) averaged around each pixel with Gaussians of these standard "
                "deviations (default 100 and 500 m, one band each), derived from the spectral bands over the whole "
                "scene. It tells a pixel near open water from one far inland, which a 5 x 5 patch cannot; classify "
                "derives it again (see docs/profiles.md)")


def _add_train(sub: Any, parents: list) -> None:
    """The ``train`` sub-command (docs/command-line.md)."""
    p = sub.add_parser("train", parents=parents, formatter_class=_Formatter,
                       help="train a classifier from labelled polygons",
                       description="Train the BDGF classifier from training polygons (pretraining first unless "
                                   "--pretrained is given).")
    p.add_argument("--training", required=True, metavar="POLYGONS", help="training polygons (any OGR vector file)")
    p.add_argument("--layer", metavar="NAME", help="layer of a multi-layer vector file")
    p.add_argument("--class-field", required=True, metavar="FIELD",
                   help="class attribute: integer values (1..65535) or text")
    p.add_argument("--name-field", metavar="FIELD", help="text attribute with class names")
    p.add_argument("--class-styles", metavar="STYLES.json",
                   help='JSON object: class label -> {"name": ..., "color": "#rrggbb"}')
    p.add_argument("--pretrained", metavar="PRETRAIN.safetensors", help="pretrained diffusion model to reuse")
    p.add_argument("--output", required=True, metavar="MODEL.safetensors", help="trained model file to write")
    p.add_argument("--report", metavar="REPORT.html", help="training report (validation accuracy, history)")
    p.add_argument("--profile", choices=PROFILES, default="fast", help="configuration profile")
    p.add_argument("--epochs", type=int, metavar="N", help="training epochs (default: from the profile)")
    p.add_argument("--iterations", type=int, metavar="N",
                   help="pretraining iterations when no --pretrained is given (default: from the profile)")
    p.add_argument("--validation", metavar="none|holdout:F|cv:K",
                   help="accuracy estimate before the final model is trained on every polygon: cv:K = K-fold "
                        "cross-validation grouped by polygon (default cv:5, fewer folds when a class has fewer "
                        "polygons), holdout:F = a share F of each class's polygons held out once, none = no "
                        "accuracy (fastest)")
    p.add_argument("--cv-block-size", type=float, default=None, metavar="METRES",
                   help="group the cross-validation folds by square spatial blocks of this side (metres) instead "
                        "of by polygon, so that neighbouring polygons never fall on both sides of a fold (spatial "
                        "autocorrelation); e.g. 2000")
    p.add_argument("--validation-fraction", type=float, default=None, metavar="F",
                   help="same as --validation holdout:F (kept for older scripts)")
    p.add_argument("--class-balance", type=float, default=None, metavar="B",
                   help="how far the sampling evens out the classes: 1 = every class drawn equally often "
                        "(default), 0.5 = in proportion to the square root of its pixel count, 0 = in proportion "
                        "to its pixel count")
    p.add_argument("--pseudo-labels", type=float, default=None, metavar="SHARE",
                   help="share of the training draws taken from unlabelled pixels of the scene that a random "
                        "forest trained on the polygons is at least 90 %% sure of, e.g. 0.7 (default 0: the polygons "
                        "alone). They show the network its classes beside covers no polygon reaches; they also "
                        "carry the forest's own errors (see docs/profiles.md)")
    p.add_argument("--whitewater", type=float, default=None, metavar="SHARE",
                   help="share of each water polygon covered by drawn foam stripes (surf, breaking waves) whose "
                        "pixels train as water, and of each dry-sand polygon covered by swash-zone stripes (wet "
                        "sand and foam) whose pixels train as sand, so that the surf line is not mapped as built-up "
                        "(default: the profile's, 0.5 for fast, 0 for paper; 0 = off). Needs bands with known "
                        "wavelengths (Sentinel-2 names or wavelength tags) and a class whose spectrum is water")
    p.add_argument("--members", type=int, default=None, metavar="N",
                   help=f"train N group networks, each with its own seed, and predict the mean of their class "
                        f"probabilities (an ensemble, 1 to {MAX_ENSEMBLE_MEMBERS}; default 1). Steadier on few "
                        f"polygons per class; 3 members take 2.4-3x the training and classification time "
                        f"(see docs/profiles.md)")
    p.add_argument("--prediction", choices=("auto",) + PREDICTIONS, default="auto",
                   help="the read-out the model keeps: auto (default) = the profile's choice after cross-validation "
                        "(fast: the mean of the branch heads when the folds put it at least 1 point of OA ahead of "
                        "the fused classifier, otherwise the fused classifier; paper: the fused classifier); fused "
                        "= the classifier over the three branches' features (paper Eq. 29); heads = the mean of "
                        "the branch heads' class probabilities. The report gives both under the same folds")
    p.add_argument("--context", nargs="*", type=float, default=None, metavar="METRES",
                   help=CONTEXT_HELP + "; on by itself when the --pretrained file has it")
    p.add_argument("--early-stopping", action="store_true",
                   help="train the final model for the epoch count with the lowest mean held-out loss over the "
                        "validation folds (default: the profile's epochs); the folds' own figures stay those of "
                        "their last epoch")
    p.add_argument("--resume", action="store_true",
                   help="resume an interrupted training from OUTPUT.checkpoint.safetensors (give the same "
                        "inputs and --pretrained)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="overrides",
                   help="change one field of the profile's configuration (repeatable), e.g. "
                        "training.guidance_dropout=0.5 or network.dropout=0.3; for experiments, see "
                        "docs/profiles.md (the model file records every setting)")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m engine`` argument parser (sub-commands pretrain, train, classify, assess, info, doctor)."""
    common, inputs = _common_parent(), _inputs_parent()
    parser = _Parser(prog="python -m engine", formatter_class=_Formatter,
                     description="BDGF engine: Balanced Diffusion-Guided Fusion for multimodal land-cover "
                                 "classification (run from the plugin folder).",
                     epilog="Exit codes: 0 ok, 1 unexpected error, 2 bad input, 3 cancelled, 4 output exists.")
    parser.add_argument("--version", action="version", version=f"BDGF engine {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("pretrain", parents=[inputs, common], formatter_class=_Formatter,
                       help="self-supervised diffusion pretraining on the unlabelled scene",
                       description="Pretrain the spectral diffusion model on the scene (no labels needed).")
    p.add_argument("--output", required=True, metavar="PRETRAIN.safetensors", help="pretrained model file to write")
    p.add_argument("--profile", choices=PROFILES, default="fast", help="configuration profile")
    p.add_argument("--iterations", type=int, metavar="N", help="pretraining iterations (default: from the profile)")
    p.add_argument("--resume", action="store_true", help="resume an interrupted pretraining from its checkpoint")
    p.add_argument("--context", nargs="*", type=float, default=None, metavar="METRES", help=CONTEXT_HELP)

    _add_train(sub, [inputs, common])
    _add_classify(sub, [inputs, common])

    p = sub.add_parser("assess", parents=[common], formatter_class=_Formatter,
                       help="accuracy assessment of a classification against reference polygons",
                       description="Confusion matrix, OA / AA / kappa, per-class accuracy and Olofsson et al. (2014) "
                                   "area-adjusted estimates. --device, --seed and --nodata-* are not used.")
    p.add_argument("--classification", required=True, metavar="CLASSES.tif", help="classified raster")
    p.add_argument("--reference", required=True, metavar="POLYGONS", help="reference polygons (any OGR vector file)")
    p.add_argument("--layer", metavar="NAME", help="layer of a multi-layer vector file")
    p.add_argument("--class-field", required=True, metavar="FIELD",
                   help="reference class attribute: integer raster values, or text class names")
    p.add_argument("--report", metavar="REPORT.html", help="HTML report to write")
    p.add_argument("--table", metavar="TABLE.csv", help="CSV table (confusion matrix, per-class metrics) to write")
    p.add_argument("--json", metavar="REPORT.json", help="JSON report to write")
    p.add_argument("--stratum-field", metavar="FIELD",
                   help="point references: the design's stratum field (default 'stratum', sizes in "
                        "'stratum_pixels'); without it the map classes are the strata")
    _add_analyst_commands(sub, common, inputs)

    p = sub.add_parser("info", formatter_class=_Formatter, help="print a model file's metadata as JSON",
                       description="Print the metadata of a model file as JSON (reads the header only).")
    p.add_argument("model", metavar="MODEL.safetensors", help="model file")
    p.add_argument("--json-progress", action="store_true", help="emit the metadata as a done event (JSON lines)")

    p = sub.add_parser("doctor", formatter_class=_Formatter, help="check the engine environment (torch, CUDA)",
                       description="Print the Python, engine, torch, CUDA and mamba_ssm status as JSON.")
    p.add_argument("--json-progress", action="store_true", help="emit the result as a done event (JSON lines)")
    return parser


def _add_analyst_commands(sub: Any, common: argparse.ArgumentParser, inputs: argparse.ArgumentParser) -> None:
    """Sub-commands of the analyst's loop: suggest, cleanup, sampledesign (docs/command-line.md)."""
    p = sub.add_parser("suggest", parents=[inputs, common], formatter_class=_Formatter,
                       help="suggest where to digitize new training polygons (uncertainty sampling with diversity)",
                       description="Classify the scene and write the most uncertain locations, a minimum distance "
                                   "apart and balanced over the predicted classes, as a point layer.")
    p.add_argument("--model", required=True, metavar="MODEL.safetensors", help="trained model file")
    p.add_argument("--output", required=True, metavar="POINTS.gpkg", help="point layer to write (.gpkg/.geojson/.shp)")
    p.add_argument("--count", type=int, default=20, metavar="N", help="number of suggestions")
    p.add_argument("--min-distance", type=float, metavar="METRES",
                   help="minimum distance between suggestions in map units (default: one pixel)")
    p.add_argument("--measure", choices=SUGGEST_MEASURES, default="entropy",
                   help="what ranks the locations: entropy or margin of the class probabilities (uncertainty), or "
                        "dissimilarity: the dissimilarity index, i.e. where the scene is least like the training "
                        "polygons (classify --applicability)")
    p.add_argument("--no-balance", action="store_true", help="rank by uncertainty only (no per-class turns)")
    p.add_argument("--mask", metavar="POLYGONS", help="search only inside these polygons")
    p.add_argument("--mask-layer", metavar="NAME", help="layer of a multi-layer mask file")
    p.add_argument("--tile", type=int, metavar="N", help="tile size in pixels (default: from the model)")
    p.add_argument("--batch-size", type=int, metavar="N", help="patches per batch (default: from the model)")

    p = sub.add_parser("cleanup", parents=[common], formatter_class=_Formatter,
                       help="majority filter and sieve (minimum mapping unit) on a classified raster",
                       description="Majority filter, then GDAL sieve; keeps colour table, class names and QML.")
    p.add_argument("--input", required=True, metavar="CLASSES.tif", help="classified raster")
    p.add_argument("--output", required=True, metavar="CLEAN.tif", help="cleaned GeoTIFF to write")
    mmu = p.add_mutually_exclusive_group()
    mmu.add_argument("--mmu-pixels", type=int, metavar="N", help="minimum mapping unit in pixels")
    mmu.add_argument("--mmu-ha", type=float, metavar="HA", help="minimum mapping unit in hectares")
    p.add_argument("--majority", type=int, metavar="W", help="majority filter window (odd number of pixels)")
    p.add_argument("--connectivity", type=int, choices=(4, 8), default=4, help="pixel connectivity of a patch")

    p = sub.add_parser("sampledesign", parents=[common], formatter_class=_Formatter,
                       help="stratified random sample for accuracy assessment (Olofsson et al. 2014)",
                       description="Sample size from a target standard error of OA, allocation with a minimum "
                                   "per class, random points a minimum distance apart, with an empty reference field.")
    p.add_argument("--classification", required=True, metavar="CLASSES.tif", help="class map (the strata)")
    p.add_argument("--output", required=True, metavar="POINTS.gpkg", help="point layer to write (.gpkg/.geojson/.shp)")
    p.add_argument("--target-se", type=float, default=0.01, metavar="SE", help="target standard error of OA")
    p.add_argument("--expected-ua", type=float, default=0.9, metavar="U", help="expected user's accuracy of every class")
    p.add_argument("--expected-ua-class", action="append", default=[], metavar="CLASS=U",
                   help="expected user's accuracy of one class (value or name); repeatable")
    p.add_argument("--min-per-class", type=int, default=50, metavar="N", help="minimum points per class")
    p.add_argument("--total", type=int, metavar="N", help="total sample size instead of the formula")
    p.add_argument("--min-distance", type=float, default=0.0, metavar="METRES", help="minimum distance between points")


# -- argument conversion ------------------------------------------------------------------------------------

def _check_inputs(paths: Sequence[tuple[str, str | None]]) -> None:
    for option, path in paths:
        if path and "://" not in path and not path.startswith("/vsi") and not os.path.exists(path):
            raise EngineError(f"{option} {path}: file not found", f"check the path given to {option}")


def modalities(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """``--spectral`` and ``--aux`` as ``engine.grid.Modality`` objects (spectral, [auxiliary...]).

    Raises:
        EngineError: a missing file, an unknown KIND, or ``--aux KIND`` without files.
    """
    from .data.grid import Modality

    _check_inputs([("--spectral", p) for p in args.spectral])
    spectral = Modality(paths=list(args.spectral), kind="spectral", nodata=args.nodata_spectral, name="spectral")
    aux = []
    names: dict[str, int] = {}
    for group in args.aux or []:
        kind, files = group[0], group[1:]
        if kind not in AUXILIARY_KINDS:
            raise EngineError(f"--aux {kind}: unknown kind {kind!r}",
                              f"write --aux KIND FILE [FILE ...] with KIND one of {', '.join(AUXILIARY_KINDS)}")
        if not files:
            raise EngineError(f"--aux {kind}: no raster file given", "write --aux KIND FILE [FILE ...]")
        _check_inputs([(f"--aux {kind}", p) for p in files])
        names[kind] = names.get(kind, 0) + 1
        name = kind if names[kind] == 1 else f"{kind}_{names[kind]}"
        aux.append(Modality(paths=list(files), kind=kind, nodata=args.nodata_aux, name=name))
    return spectral, aux


def _context_arg(args: argparse.Namespace) -> bool | list[float]:
    """``--context`` as ``api.pretrain / train`` take it: False (absent), True (no scales) or the scales."""
    return False if args.context is None else (list(args.context) or True)


def extent_arg(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--extent`` / ``--extent-crs`` as ``{"bounds": (xmin, ymin, xmax, ymax), "crs": str | None}`` or None."""
    if not args.extent:
        if getattr(args, "extent_crs", None):
            raise EngineError("--extent-crs was given without --extent", "give --extent XMIN YMIN XMAX YMAX too")
        return None
    xmin, ymin, xmax, ymax = args.extent
    if not (xmax > xmin and ymax > ymin):
        raise EngineError(f"--extent {xmin} {ymin} {xmax} {ymax} is empty", "give XMIN YMIN XMAX YMAX with XMIN < XMAX "
                          "and YMIN < YMAX")
    return {"bounds": (xmin, ymin, xmax, ymax), "crs": args.extent_crs or None}


#: Options whose values are files a command reads (an output may never be one of them, even with --overwrite).
INPUT_OPTIONS = ("spectral", "aux", "training", "pretrained", "class_styles", "model", "mask", "classification",
                 "reference", "input")


def _input_files(args: argparse.Namespace) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for opt in INPUT_OPTIONS:
        value = getattr(args, opt, None)
        if not value:
            continue
        if opt == "aux":   # [[KIND, FILE, ...], ...]
            value = [p for group in value for p in group[1:]]
        found["--" + opt.replace("_", "-")] = [value] if isinstance(value, str) else [str(v) for v in value]
    return found


def check_outputs(command: str, args: argparse.Namespace) -> None:
    """Refuse existing outputs (exit 4), outputs that are inputs (even with --overwrite) and duplicated output
    names, before any work."""
    from .checks import check_not_inputs
    from .files import check_output

    check_not_inputs({f"--{opt}": getattr(args, opt, None) for opt in OUTPUT_OPTIONS.get(command, ())},
                     _input_files(args))
    seen: dict[str, str] = {}
    for opt in OUTPUT_OPTIONS.get(command, ()):
        path = getattr(args, opt, None)
        if not path:
            continue
        absolute = os.path.abspath(path)
        if absolute in seen:
            raise EngineError(f"--{seen[absolute]} and --{opt} name the same file {absolute}",
                              "give each output its own file name")
        seen[absolute] = opt
        check_output(path, args.overwrite)


def _load_class_styles(path: str | None) -> dict | None:
    if not path:
        return None
    _check_inputs([("--class-styles", path)])
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise EngineError(f"--class-styles {path} is not a readable JSON file: {exc}",
                          'write a JSON object {"label": {"name": ..., "color": "#rrggbb"}}') from exc
    if not isinstance(data, dict):
        raise EngineError(f"--class-styles {path} is not a JSON object",
                          'write a JSON object {"label": {"name": ..., "color": "#rrggbb"}}')
    return data


# -- commands -----------------------------------------------------------------------------------------

def cmd_pretrain(args: argparse.Namespace, rep: Reporter) -> dict:
    spectral, aux = modalities(args)
    extent = extent_arg(args)
    device = args.device  # resolved (and logged) by engine.api through engine.device.resolve_device
    from . import api

    return api.pretrain(spectral, aux, args.output, profile=args.profile, iterations=args.iterations,
                        seed=args.seed, device=device, extent=extent, overwrite=args.overwrite,
                        resume=args.resume, context=_context_arg(args), reporter=rep)


def cmd_train(args: argparse.Namespace, rep: Reporter) -> dict:
    from .config import parse_override

    if args.members is not None and not 1 <= args.members <= MAX_ENSEMBLE_MEMBERS:
        raise EngineError(f"--members {args.members} is outside 1..{MAX_ENSEMBLE_MEMBERS}",
                          "give e.g. 3, or 1 for a single network")
    items = list(args.overrides) + ([f"network.members={args.members}"] if args.members is not None else [])
    if args.prediction != "auto":      # a fixed read-out: the folds score both but never switch
        items += [f"network.prediction={args.prediction}", "training.readout_margin=1"]
    overrides = dict(parse_override(item, args.profile) for item in items)   # before any work
    spectral, aux = modalities(args)
    extent = extent_arg(args)
    _check_inputs([("--training", args.training), ("--pretrained", args.pretrained)])
    styles = _load_class_styles(args.class_styles)
    if args.validation_fraction is not None and not 0.0 < args.validation_fraction < 1.0:
        raise EngineError(f"--validation-fraction {args.validation_fraction} is outside (0, 1)",
                          "give a fraction such as 0.3")
    device = args.device  # resolved (and logged) by engine.api through engine.device.resolve_device
    from . import api

    return api.train(spectral, aux, args.training, args.class_field, args.output, layer=args.layer,
                     name_field=args.name_field, class_styles=styles, pretrained=args.pretrained,
                     profile=args.profile, epochs=args.epochs, iterations=args.iterations,
                     validation_fraction=args.validation_fraction, validation=args.validation, seed=args.seed,
                     device=device, extent=extent,
                     report=args.report, overwrite=args.overwrite, early_stopping=args.early_stopping,
                     resume=args.resume, class_balance=args.class_balance, cv_block=args.cv_block_size,
                     pseudo_labels=args.pseudo_labels, whitewater=args.whitewater, overrides=overrides,
                     context=_context_arg(args), reporter=rep)


def cmd_classify(args: argparse.Namespace, rep: Reporter) -> dict:
    _check_inputs([("--model", args.model), ("--mask", args.mask)])
    from .io.schema import read_metadata

    read_metadata(args.model)  # refuse a foreign / damaged / newer model before reading any raster
    spectral, aux = modalities(args)
    extent = extent_arg(args)
    for opt in ("tile", "batch_size"):
        v = getattr(args, opt)
        if v is not None and v <= 0:
            raise EngineError(f"--{opt.replace('_', '-')} {v} must be positive", "give a positive number")
    device = args.device  # resolved (and logged) by engine.api through engine.device.resolve_device
    from . import api

    return api.classify(args.model, spectral, aux, args.output, confidence=args.confidence,
                        probabilities=args.probabilities, uncertainty=args.uncertainty,
                        applicability=args.applicability, extent=extent,
                        mask=args.mask, mask_layer=args.mask_layer, device=device,
                        tile=args.tile, batch_size=args.batch_size, overwrite=args.overwrite,
                        band_order=args.band_order, backend=args.backend,
                        compile_mode=args.compile, coarse_to_fine=args.coarse_to_fine == "on",
                        prediction=args.prediction, reporter=rep)


def cmd_assess(args: argparse.Namespace, rep: Reporter) -> dict:
    _check_inputs([("--classification", args.classification), ("--reference", args.reference)])
    extent = extent_arg(args)
    from .assess import assess_to_files

    return assess_to_files(args.classification, args.reference, args.class_field, layer=args.layer,
                           report=args.report, table=args.table, json_path=args.json, overwrite=args.overwrite,
                           reporter=rep, extent=extent["bounds"] if extent else None,
                           extent_crs=extent["crs"] if extent else None, stratum_field=args.stratum_field)


def cmd_suggest(args: argparse.Namespace, rep: Reporter) -> dict:
    _check_inputs([("--model", args.model), ("--mask", args.mask)])
    from .io.schema import read_metadata

    read_metadata(args.model)
    spectral, aux = modalities(args)
    for opt in ("count", "tile", "batch_size"):
        v = getattr(args, opt)
        if v is not None and v <= 0:
            raise EngineError(f"--{opt.replace('_', '-')} {v} must be positive", "give a positive number")
    from . import api

    return api.suggest(args.model, spectral, aux, args.output, count=args.count, min_distance=args.min_distance,
                       measure=args.measure, balance=not args.no_balance, extent=extent_arg(args), mask=args.mask,
                       mask_layer=args.mask_layer, device=args.device, tile=args.tile, batch_size=args.batch_size,
                       overwrite=args.overwrite, reporter=rep)


def cmd_cleanup(args: argparse.Namespace, rep: Reporter) -> dict:
    _check_inputs([("--input", args.input)])
    from .cleanup import cleanup_raster

    return cleanup_raster(args.input, args.output, min_pixels=args.mmu_pixels, min_area_ha=args.mmu_ha,
                          majority=args.majority, connectivity=args.connectivity, overwrite=args.overwrite,
                          reporter=rep)


def _expected_ua(args: argparse.Namespace) -> dict[str, float]:
    out: dict[str, float] = {"*": args.expected_ua}
    for item in args.expected_ua_class:
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise EngineError(f"--expected-ua-class {item!r} is not CLASS=U", "write e.g. --expected-ua-class 3=0.7")
    return out


def cmd_sampledesign(args: argparse.Namespace, rep: Reporter) -> dict:
    _check_inputs([("--classification", args.classification)])
    from .sampling import design_sample

    return design_sample(args.classification, args.output, target_se=args.target_se, expected_ua=_expected_ua(args),
                         min_per_class=args.min_per_class, total=args.total, min_distance=args.min_distance,
                         seed=args.seed, overwrite=args.overwrite, reporter=rep)


def cmd_info(args: argparse.Namespace, rep: Reporter) -> dict:
    """The model file's metadata (:class:`engine.io.schema.ModelMetadata`, format-1 files migrated) as JSON."""
    from .io.schema import read_metadata

    return read_metadata(args.model).to_dict()


def cmd_doctor(args: argparse.Namespace, rep: Reporter) -> dict:
    from .device import doctor_info

    return doctor_info()


COMMANDS: dict[str, Callable[[argparse.Namespace, Reporter], dict]] = {
    "pretrain": cmd_pretrain, "train": cmd_train, "classify": cmd_classify, "assess": cmd_assess,
    "info": cmd_info, "doctor": cmd_doctor,
    "suggest": cmd_suggest, "cleanup": cmd_cleanup, "sampledesign": cmd_sampledesign,
}


def system_error(exc: BaseException) -> tuple[str, str]:
    """(message, hint) for an error the operating system raised: a user can act on it, it is not a bug."""
    import errno

    if isinstance(exc, MemoryError):
        return (f"Out of memory: {exc}".rstrip(": "),
                "Lower --tile / --batch-size (Tile size / Batch size in QGIS), classify a smaller extent, or use the "
                "fast profile.")
    where = exc.filename or ""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return f"No space left on the device while writing {where}", "Free some space or choose another folder."
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"Permission denied: {where} ({reason})",
                "Choose files and folders you can read and write.")
    return f"{reason}: {where}" if where else reason, "Check the files and folders given."


# -- signals and main ---------------------------------------------------------------------------------------

def install_signal_handlers(token: CancelToken) -> Callable[[], None]:
    """SIGINT / SIGTERM (/ SIGBREAK on Windows): first sets ``token``; second raises KeyboardInterrupt; third exits at once (code 3).

    Returns a function restoring the previous handlers. No output is written from the handler (the reporter's
    lock may be held by the interrupted code).
    """
    count = [0]

    def handler(signum: int, frame: Any) -> None:
        count[0] += 1
        name = signal.Signals(signum).name
        if count[0] == 1:
            token.cancel(f"cancelled ({name})")
        elif count[0] == 2:
            raise KeyboardInterrupt(f"{name} received twice")
        else:
            os._exit(EXIT_CANCELLED)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGBREAK", None)):  # SIGBREAK: Windows
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread
            pass

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


GDAL_CACHE_MB = 256   # GDAL block cache of the engine process (MB): keeps peak memory flat in scene size


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (``__main__`` passes it to ``sys.exit``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # GDAL's block cache defaults to 5 % of RAM and fills with every window read, so the process would grow with
    # the scene; windows are read once, so a small cache costs nothing. A user's own setting wins.
    os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))
    json_mode = bool(getattr(args, "json_progress", False))
    token = CancelToken()
    real_stdout = sys.stdout
    from .distributed import info as dist_info

    # under torchrun only rank 0 talks to the user (and writes outputs); the others stay quiet
    rep = Reporter(json_mode=json_mode, stream=real_stdout, cancel=token, quiet=not dist_info().is_main)
    restore = install_signal_handlers(token)
    if json_mode:
        sys.stdout = sys.stderr  # stray prints of libraries must not corrupt the JSON-lines protocol
    try:
        try:
            if args.command in OUTPUT_OPTIONS:
                check_outputs(args.command, args)
                rep.info(f"BDGF engine {__version__}: {args.command}")
            outputs = COMMANDS[args.command](args, rep)
            rep.check_cancelled()
        except EngineError as exc:
            rep.error(exc.message, exc.hint)
            return exc.exit_code
        except (Cancelled, KeyboardInterrupt) as exc:
            rep.log("warning", f"Cancelled: {token.reason or exc or 'interrupted'}; partial outputs were removed")
            return EXIT_CANCELLED
        except (OSError, MemoryError) as exc:  # the system's answer (permissions, disk full, memory): not a bug
            traceback.print_exc(file=sys.stderr)
            rep.error(*system_error(exc))
            return EXIT_BAD_INPUT
        except Exception as exc:  # a bug: message for the user, traceback for the developer
            if type(exc).__name__ == "OutOfMemoryError":   # torch.cuda.OutOfMemoryError
                rep.error(*system_error(MemoryError(str(exc))))
                return EXIT_BAD_INPUT
            traceback.print_exc(file=sys.stderr)
            rep.error(f"Unexpected error: {type(exc).__name__}: {exc}",
                      "this is a bug in the engine; please report it with the traceback from the log")
            return EXIT_UNEXPECTED
        if args.command in ("info", "doctor") and not json_mode:
            real_stdout.write(json.dumps(outputs, indent=2, ensure_ascii=False, default=str) + "\n")
            real_stdout.flush()
        else:
            from .io.reports import sanitize

            rep.done(sanitize(outputs or {}))
        return EXIT_OK
    finally:
        sys.stdout = real_stdout
        restore()
        if dist_info().enabled:   # a failed or cancelled rank also leaves the process group (no-op after success)
            from .distributed import teardown

            teardown()


__all__ = ["build_parser", "main", "modalities", "extent_arg", "check_outputs", "install_signal_handlers"]
