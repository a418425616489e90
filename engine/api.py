"""Python API of the engine: one function per command (``engine/cli.py`` is a thin layer over these).

Each function checks its outputs before any work (an existing file is never replaced unless ``overwrite``),
writes outputs through temporary names renamed on success, reports progress through a
``progress.Reporter`` (cancellation between iterations / batches / tiles) and returns the outputs dict that
the command line sends in its ``done`` event.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import math
import os
from typing import Any, Sequence

import numpy as np
import torch

from . import __version__
from .contract import PREDICTIONS, checkpoint_path, checkpoint_paths, parse_validation
from .data.context import ContextSpec, context_inputs
from .data.grid import Modality, RasterStack, compute_statistics
from .errors import EngineError
from .files import check_output
from .checks import check_disk_space, check_outputs_writable
from .io.schema import Band, Category, GridInfo, ModalityInfo, ModelMetadata, read_metadata
from .progress import Reporter, ensure


# ------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------
def _device(name: str | None, rep: Reporter) -> torch.device:
    from .device import resolve_device

    return torch.device(resolve_device(name or "auto", rep))


def _extent(extent: Any) -> tuple[Sequence[float] | None, Any]:
    if extent is None:
        return None, None
    if isinstance(extent, dict):
        return extent["bounds"], extent.get("crs")
    return extent, None


def _window(stack: RasterStack, extent: Any) -> tuple[int, int, int, int] | None:
    """The extent as an integer (row_off, col_off, height, width) window of the stack's grid, or None."""
    bounds, crs = _extent(extent)
    if bounds is None:
        return None
    w = stack.grid.window_for_bounds(bounds, crs)
    win = (int(w.row_off), int(w.col_off), int(w.height), int(w.width))
    if win[2] <= 0 or win[3] <= 0:
        raise EngineError(f"The extent {tuple(bounds)} does not overlap the rasters",
                          "Choose an extent inside the input rasters.")
    return win


def _modalities_info(stack: RasterStack, stats: Any) -> list[ModalityInfo]:
    """Every input band's identity (file, band, description, name, wavelength) and statistics, per modality."""
    out = []
    for mi, (m, infos) in enumerate(zip(stack.modalities, stack.band_info)):
        bands = [Band.of_stack_band(mi, m.kind, info, stats[mi][bi]) for bi, info in enumerate(infos)]
        out.append(ModalityInfo(m.kind, m.name, [os.path.basename(p) for p in m.paths], m.nodata, bands))
    return out


def model_metadata(kind: str, profile: str, stack: RasterStack, stats: Any, window: Any, seed: int) -> ModelMetadata:
    """The metadata every model file of ``kind`` starts with: profile, seed, band identities and statistics of
    ``stack``, and its reference grid (bounds of ``window`` when given)."""
    g = stack.grid if window is None else stack.grid.crop(window)
    return ModelMetadata(kind=kind, profile=profile, seed=int(seed), modalities=_modalities_info(stack, stats),
                         grid=GridInfo(stack.grid.crs.to_wkt(), tuple(stack.grid.res), tuple(g.bounds)))


def _match_inputs(meta: ModelMetadata, modalities: Sequence[Modality], stack: RasterStack, path: str,
                  rep: Reporter, band_order: str = "name") -> list[Modality] | None:
    """Match the inputs to a model's modalities and bands (:func:`engine.checks.match_bands`).

    Returns:
        The modalities with ``band_order`` set when some bands come in another order (open the stack again with
        them), else None (nothing is logged when the order is right).
    Raises:
        EngineError: other modality kinds; a different band count; a missing or unknown band (lists the bands the
            model expects).
    """
    from .checks import match_bands

    want = meta.modalities
    kinds = [m.kind for m in modalities]
    if [m.kind for m in want] != kinds:
        raise EngineError(
            f"The inputs ({', '.join(kinds)}) do not match the modalities of {os.path.basename(path)} "
            f"({', '.join(m.kind for m in want)})",
            "Give the same kinds of rasters, in the same order, as when the model was trained.")
    out, changed = [], False
    for mi, (info, m, infos) in enumerate(zip(want, modalities, stack.band_info)):
        given = [Band.of_stack_band(mi, m.kind, i) for i in infos]
        idx = match_bands(info, given, band_order, os.path.basename(path), rep)
        out.append(dataclasses.replace(m, band_order=idx) if idx is not None else m)
        changed = changed or idx is not None
    return out if changed else None


def _open_matched(meta: ModelMetadata, modalities: list[Modality], grid: Any, path: str, rep: Reporter,
                  band_order: str = "name") -> tuple[RasterStack, list[Modality]]:
    """The inputs as a stack whose bands are in the model's order (reopened, quietly, when reordered)."""
    stack = RasterStack(modalities, grid, reporter=rep)
    try:
        reordered = _match_inputs(meta, modalities, stack, path, rep, band_order)
    except BaseException:
        stack.close()
        raise
    if reordered is None:
        return stack, modalities
    stack.close()
    return RasterStack(reordered, stack.grid), reordered


def _context_spec(wanted: bool | Sequence[float], pmeta: ModelMetadata | None, pretrained: str | None,
                  rep: Reporter) -> dict | None:
    """The landscape context a run uses (``data.context.ContextSpec`` as a dict, or None): the pretrained file's
    when it has one, else ``wanted``: True for the default scales (``contract.CONTEXT_SIGMAS_M``), a sequence of
    Gaussian standard deviations in metres for those, False for none.

    Raises:
        EngineError: ``wanted`` with a pretrained file that has no context (its U-Net never saw the bands) or other
            scales; scales that are not positive.
    """
    scales = None if isinstance(wanted, bool) else [float(v) for v in wanted]
    if pmeta is not None:
        name = os.path.basename(pretrained)
        if pmeta.context is None and wanted is not False:
            raise EngineError(f"{name} was pretrained without landscape context",
                              "Pretrain again with --context (QGIS: Landscape context), or train without it.")
        if pmeta.context is not None and scales and scales != pmeta.context["sigma_m"]:
            raise EngineError(f"--context {' '.join(f'{v:g}' for v in scales)}: {name} was pretrained with the "
                              f"context scales {' '.join(f'{v:g}' for v in pmeta.context['sigma_m'])} m",
                              "Leave the scales out (the pretrained file's are used), or pretrain again with them.")
        if pmeta.context is not None and wanted is False:
            rep.info(f"Landscape context: on, as in {name}")
        return pmeta.context
    if wanted is False:
        return None
    return (ContextSpec(sigma_m=scales) if scales else ContextSpec()).validate().to_dict()   # before any work


def _training_pixels(training: str, class_field: str, stack: RasterStack, window: Any, rep: Reporter,
                     **options: Any) -> Any:
    """The polygons' labelled pixels on the stack's grid (inside ``window``), read before any long step.

    A class without a labelled pixel in the area (the rasters', or the extent's: handled the same way, so a
    raster clipped to the study area behaves like the whole raster with an extent) is left out of the model with
    a warning naming it; fewer than two classes left is refused, naming the classes without pixels.
    """
    from .data.labels import drop_invalid, read_polygons

    pixels = read_polygons(training, class_field, stack.grid, window=window, reporter=rep, min_classes=0,
                           allow_empty_classes=True, **options)
    pixels = drop_invalid(pixels, stack, reporter=rep, allow_empty_classes=True)
    counts = pixels.counts()
    absent = [c for c in pixels.classes if counts.get(c.value, 0) == 0]
    kept = [c for c in pixels.classes if counts.get(c.value, 0) > 0]
    where = "inside the extent" if window is not None else "in the rasters' area"
    names = ", ".join(f"{c.name} (value {c.value})" for c in absent)
    if len(kept) < 2:
        raise EngineError(f"Only {len(kept)} class(es) of {os.path.basename(training)} have labelled pixels {where}"
                          + (f"; no labelled pixel for {names}" if absent else ""),
                          "A polygon labels the pixels whose centre it covers: enlarge the polygons (or the extent), "
                          "or digitize polygons of at least two classes over the rasters.")
    if absent:
        rep.warning(f"Class(es) without labelled pixels {where} are left out of the model: {names}")
        pixels.classes = kept
    return pixels


# ------------------------------------------------------------------------------------------------------------
# pretrain
# ------------------------------------------------------------------------------------------------------------
def pretrain(spectral: Modality, auxiliary: Sequence[Modality], output: str, *, profile: str = "fast",
             iterations: int | None = None, seed: int = 0, device: str | None = "auto", extent: Any = None,
             overwrite: bool = False, resume: bool = False, context: bool | Sequence[float] = False,
             reporter: Reporter | None = None) -> dict:
    """Self-supervised BDGF diffusion pretraining (spec §2-§3) -> a pretrain file (U-Net + metadata).

    ``context``: add the landscape context bands (``data.context``: NDWI averaged over 100 and 500 m, or over the
    given scales in metres, derived from the spectral bands over the whole scene) as an auxiliary modality; the
    file records it, and a training from it and its classifier derive the same bands again.

    A checkpoint ``<output>.checkpoint.safetensors`` is written every ``checkpoint_every`` iterations and on
    cancel; ``resume=True`` continues from it. It is removed after the output is written.

    Raises:
        EngineError: bad inputs (see ``grid``), OutputExistsError: ``output`` exists and not ``overwrite``.
    """
    from .config import get_profile
    from .io.artifact import save_model
    from .pretrain import pretrain as run_pretrain

    rep = ensure(reporter)
    output = os.path.abspath(output)
    check_output(output, overwrite)
    prof = get_profile(profile, seed)
    if iterations:
        prof.diffusion.iterations = int(iterations)
    from .distributed import barrier, setup, teardown

    dinfo, dev = setup(_device(device, rep))
    if dinfo.enabled:
        rep.info(f"torchrun: {dinfo.world} processes, data parallel ({dev.type})")
    spec = _context_spec(context, None, None, rep)
    with context_inputs(spectral, auxiliary, spec, None, rep) as (grid, aux), \
            RasterStack([spectral, *aux], grid, reporter=rep) as stack:
        window = _window(stack, extent)
        rep.info("Computing normalisation statistics")
        stats = compute_statistics(stack, seed=seed, window=window, reporter=rep)
        ckpt = checkpoint_path(output)
        rep.info(f"Diffusion pretraining ({profile} profile, {prof.diffusion.iterations} iterations, "
                 f"checkpoint {ckpt})")
        result = run_pretrain(stack, prof.diffusion, stats, rep, dev, ckpt, resume, window)
        meta = model_metadata("pretrain", profile, stack, stats, window, seed)
        meta.diffusion, meta.context = result.diffusion_info(), spec
        meta.world_size = dinfo.world
        if dinfo.is_main:
            save_model(output, result.tensors(), meta, overwrite=overwrite)
    if dinfo.is_main and os.path.exists(ckpt):
        os.remove(ckpt)
    barrier()
    teardown()
    losses = [h[1] for h in result.history]
    out = {"output": output, "iterations": result.iteration, "seconds": round(result.seconds, 1),
           "final_loss": float(np.mean(losses[-10:])) if losses else None}
    rep.metric("pretrain_loss", out["final_loss"], iterations=result.iteration)
    return out


# ------------------------------------------------------------------------------------------------------------
# train
# ------------------------------------------------------------------------------------------------------------
def _training_profile(profile: str, seed: int, epochs: int | None, iterations: int | None,
                      validation: str | None, validation_fraction: float | None, class_balance: float | None,
                      pseudo_labels: float | None = None, whitewater: float | None = None,
                      overrides: dict | None = None) -> Any:
    """The named profile with ``overrides`` (:func:`config.get_profile`), then :func:`train`'s options applied
    (``config.Profile``).

    Raises:
        EngineError: an unknown validation mode, a class balance outside [0, 1], a pseudo-label share outside
            [0, 1), a whitewater share outside [0, 1], an unknown or invalid override, or the ``heads`` read-out
            (``NetworkConfig.prediction``) for a network whose branch heads do not learn the classes."""
    from .config import get_profile
    from .train import check_class_balance, check_pseudo_share, check_whitewater

    prof = get_profile(profile, seed, **(overrides or {}))
    tcfg = prof.training
    if epochs:
        tcfg.epochs = int(epochs)
        tcfg.milestones = tuple(m for m in tcfg.milestones if m < tcfg.epochs) or (max(tcfg.epochs // 2, 1),)
    if iterations:
        prof.diffusion.iterations = int(iterations)
    if validation:
        tcfg.validation = str(validation)
    elif validation_fraction is not None:      # the former option: a polygon hold-out of that share
        tcfg.validation = f"holdout:{float(validation_fraction)}" if validation_fraction > 0 else "none"
    parse_validation(tcfg.validation)
    if class_balance is not None:
        tcfg.class_balance = check_class_balance(class_balance)
    if pseudo_labels is not None:
        tcfg.pseudo_share = check_pseudo_share(pseudo_labels)
    if whitewater is not None:
        tcfg.whitewater = check_whitewater(whitewater)
    if prof.network.prediction == "heads" and not prof.network.heads_trained:
        raise EngineError("The read-out 'heads' (the mean of the branch heads) needs branch heads that learn the "
                          "classes, but this network has one branch, or mutual learning or per-branch cross-entropy "
                          "switched off", "Use --prediction fused or auto, or keep the default network.")
    return prof


def _block_pixels(metres: float, grid: Any, validation: str, rep: Reporter) -> int:
    """Side in grid pixels of the spatial blocks of cross-validation (``TrainingConfig.cv_block_size``) for a
    side of ``metres``: ``ceil(metres / coarser pixel size)``; 0 for 0 (folds by polygon).

    Raises:
        EngineError: a negative side; a side without ``cv:K`` validation; a grid in a geographic CRS."""
    metres = float(metres)
    if metres < 0:
        raise EngineError(f"Spatial block size {metres:g} m is negative", "Give a side in metres, e.g. 2000, or 0.")
    if not metres:
        return 0
    if parse_validation(validation)[0] != "cv":
        raise EngineError(f"A spatial block size ({metres:g} m) needs cross-validation, not validation {validation!r}",
                          "Use --validation cv:K (the default), or leave the block size out.")
    if grid.crs.is_geographic:
        raise EngineError(f"Spatial blocks are given in metres, but the reference grid's CRS ({grid.crs}) is in "
                          "degrees", "Reproject the rasters to a projected CRS such as UTM, or leave the block size "
                          "out (folds by polygon).")
    side = max(1, math.ceil(metres / max(grid.res)))
    rep.info(f"Cross-validation folds grouped by spatial blocks of {metres:g} m ({side} x {side} px)")
    return side


def train(spectral: Modality, auxiliary: Sequence[Modality], training: str, class_field: str, output: str, *,
          layer: str | None = None, name_field: str | None = None, class_styles: dict | None = None,
          pretrained: str | None = None, profile: str = "fast", epochs: int | None = None,
          iterations: int | None = None, validation_fraction: float | None = None,
          validation: str | None = None, seed: int = 0,
          device: str | None = "auto", extent: Any = None, report: str | None = None, overwrite: bool = False,
          early_stopping: bool = False, resume: bool = False, class_balance: float | None = None,
          cv_block: float | None = None, pseudo_labels: float | None = None, whitewater: float | None = None,
          overrides: dict | None = None, context: bool | Sequence[float] = False,
          reporter: Reporter | None = None) -> dict:
    """Train the diffusion-guided group network from training polygons -> a model file (and HTML report).

    Without ``pretrained``, the diffusion model is pretrained first on the same rasters (profile iterations or
    ``iterations``). Accuracy comes from ``validation`` (default: the profile's, ``cv:5``): cross-validation folds
    grouped by polygon (``cv:K``), a polygon hold-out (``holdout:F``; ``validation_fraction=F`` is the same) or
    none; a random forest under the same folds is reported beside BDGF. The final model is then trained on every
    labelled pixel of every polygon; it keeps the read-out (fused classifier or branch heads' mean) that the folds
    put ahead by ``TrainingConfig.readout_margin`` (``train.choose_readout``). ``class_balance`` (default: the
    profile's, 1) sets how far the sampling
    evens out the classes (``train.sampling_weights``: 1 = equal shares, 0.5 = square root, 0 = proportional).
    ``cv_block`` (metres, > 0) groups the cross-validation folds by square spatial blocks of that side instead of
    by polygon, so that neighbouring polygons are never split between training and testing
    (``data.labels.polygon_folds``). ``pseudo_labels`` (default: the profile's, 0 for both) is the share of the
    training draws from unlabelled pixels labelled by a random forest trained on the polygons where it is sure
    (``train.pseudo_labelled``); 0 trains on the polygons alone. ``whitewater`` (default: the profile's, 0.5 for
    ``fast``, 0 for ``paper``) is the share of each water polygon covered by drawn foam stripes whose pixels train
    as water (``train.gather_whitewater``), so that the surf line is not mapped as the nearest bright class.
    ``overrides`` (``{"training.guidance_dropout": 0.5}``; ``train --set``) change fields of the profile's stage
    configurations before the options above (:func:`config.get_profile`); the model file records the result.
    ``context`` adds the landscape context bands (:func:`pretrain`); a pretrained file with them turns it on.

    Returns:
        outputs dict: ``output``, ``report``, ``metrics`` (val OA / AA / kappa of BDGF and of the random forest).
    Raises:
        EngineError: bad inputs (rasters, polygons, class field, pretrain file of other modalities); ``cv_block``
            without cross-validation, or on a reference grid in a geographic CRS (degrees).
    """
    from .distributed import barrier, setup, teardown
    from .io.artifact import save_model

    rep = ensure(reporter)
    output = os.path.abspath(output)
    check_output(output, overwrite)
    if report:
        report = os.path.abspath(report)
        check_output(report, overwrite)
    if resume and not any(os.path.exists(p) for p in checkpoint_paths(output)):
        raise EngineError(f"No checkpoint to resume from: {checkpoint_path(output)}",
                          "Give the output file of the interrupted run, or run without --resume.")
    prof = _training_profile(profile, seed, epochs, iterations, validation, validation_fraction, class_balance,
                             pseudo_labels, whitewater, overrides)
    if overrides:
        rep.info("Profile overrides: " + ", ".join(f"{k}={v}" for k, v in overrides.items()))
    tcfg = prof.training
    tcfg.early_stopping = bool(early_stopping)
    if tcfg.early_stopping and parse_validation(tcfg.validation)[0] == "none":
        rep.warning("Early stopping chooses the epoch count from the validation folds: with --validation none it has "
                    f"nothing to choose from, and the final model trains the profile's {tcfg.epochs} epochs")
    dinfo, dev = setup(_device(device, rep))
    if dinfo.enabled:
        rep.info(f"torchrun: {dinfo.world} processes, data parallel ({dev.type})")
    started = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    with contextlib.ExitStack() as scope:
        stack, spec = _training_stack(spectral, auxiliary, pretrained, context, scope, rep)
        window = _window(stack, extent)
        # -- pre-flight: everything that can fail is checked before the long steps ----------------------
        if cv_block is not None:
            tcfg.cv_block_size = _block_pixels(cv_block, stack.grid, tcfg.validation, rep)
        check_outputs_writable([output, report])
        check_disk_space([(output, 64e6), (report, 4e6)])
        pixels = _training_pixels(training, class_field, stack, window, rep, layer=layer, class_styles=class_styles,
                                  name_field=name_field)
        extractor, stats, diffusion = _diffusion_model(stack, pretrained, prof, seed, window, output, resume, dev,
                                                       rep)
        run = _train_classifier(stack, pixels, extractor, stats, prof, seed, window, output, resume, dev, dinfo, rep)
        training_report = _training_report(run, pixels, started, rep, dev, spectral, auxiliary, training,
                                           class_field, pretrained, profile, seed, tcfg)
        training_report["settings"]["landscape_context"] = ContextSpec.from_dict(spec).describe() if spec else "off"
        meta = model_metadata("classifier", profile, stack, stats, window, seed)
        meta.diffusion, meta.classes, meta.context = diffusion, run["model"].classes, spec
        meta.network_config, meta.training_config = prof.network.to_dict(), tcfg.to_dict()
        meta.network_config["prediction"] = run["model"].net.config.prediction     # chosen by _choose_readout
        meta.patch_size, meta.halo = tcfg.patch_size, extractor.halo + tcfg.patch_size // 2
        meta.pca_components = run["model"].inputs.n_spectral if run["model"].inputs.pca_components is not None else None
        meta.report = {k: training_report[k] for k in ("accuracy", "baseline", "history", "split", "settings",
                                                       "created", "applicability", "edge_accuracy")}
        meta.training_data = {"file": os.path.basename(training), "class_field": class_field}
        meta.world_size = dinfo.world
        rep.check_cancelled()    # a cancel after the last epoch keeps the final training's checkpoint for resume
        if dinfo.is_main:
            save_model(output, run["model"].tensors(), meta, overwrite=overwrite)
    if dinfo.is_main:
        for path in checkpoint_paths(output):      # the model file is written: no stage is left to resume
            if os.path.exists(path):
                os.remove(path)
    barrier()
    teardown()
    out = {"output": output, "metrics": run["metrics"]}
    if report and dinfo.is_main:
        from .io.reports import write_html_report

        out["report"] = write_html_report(report, training_report, overwrite=overwrite)
    return out


def _training_stack(spectral: Modality, auxiliary: Sequence[Modality], pretrained: str | None,
                    context: bool | Sequence[float], scope: contextlib.ExitStack,
                    rep: Reporter) -> tuple[RasterStack, dict | None]:
    """``(stack, landscape context spec)`` of a training, both held open by ``scope``: the inputs with the context
    when asked or when the pretrained file has it (:func:`_context_spec`), matched to the pretrained file's bands.

    Raises:
        EngineError: a pretrained file of another kind or other modalities; see :func:`_context_spec`.
    """
    pmeta = read_metadata(pretrained) if pretrained else None   # header only: checked before any work
    if pmeta is not None and pmeta.kind != "pretrain":
        raise EngineError(f"{os.path.basename(pretrained)} is a {pmeta.kind} file, not pretrained diffusion "
                          "weights", "Give a file written by pretrain as --pretrained.")
    spec = _context_spec(context, pmeta, pretrained, rep)
    grid, aux = scope.enter_context(context_inputs(spectral, auxiliary, spec, None, rep))
    mods = [spectral, *aux]
    stack = (_open_matched(pmeta, mods, grid, pretrained, rep)[0] if pmeta is not None
             else RasterStack(mods, grid, reporter=rep))
    return scope.enter_context(stack), spec


def _diffusion_model(stack: RasterStack, pretrained: str | None, prof: Any, seed: int, window: Any, output: str,
                     resume: bool, dev: torch.device, rep: Reporter) -> tuple:
    """``(feature extractor in eval mode, normalisation statistics, DiffusionInfo)``: from the pretrained file,
    or pretrained here first on the same rasters (``prof.diffusion.iterations``)."""
    from .io.artifact import load_model
    from .models.diffusion import FeatureExtractor
    from .pretrain import pretrain as run_pretrain

    if pretrained:
        tensors, pmeta = load_model(pretrained, device="cpu")
        stats = pmeta.statistics()
        extractor = FeatureExtractor.from_tensors(tensors, pmeta, dev)
        diffusion = dataclasses.replace(pmeta.diffusion, history=[])
        rep.info(f"Using the pretrained diffusion model {pretrained} ({diffusion.iterations} iterations)")
    else:
        rep.info("Computing normalisation statistics")
        stats = compute_statistics(stack, seed=seed, window=window, reporter=rep)
        rep.info(f"No pretrained model given: diffusion pretraining first ({prof.diffusion.iterations} "
                 "iterations)")
        pre_ckpt = checkpoint_path(output, "pretrain")
        result = run_pretrain(stack, prof.diffusion, stats, rep, dev, pre_ckpt,
                              bool(resume and os.path.exists(pre_ckpt)), window)
        extractor = FeatureExtractor.from_pretrain(result, dev)
        diffusion = result.diffusion_info(history=False)
        # its checkpoint stays until the model file is written: a resume after a later cancel skips pretraining
    extractor.unet.eval()
    return extractor, stats, diffusion


def _gather_extractor(extractor: Any, pixel_sets: Sequence[tuple[np.ndarray, np.ndarray]], stack: RasterStack,
                      tcfg: Any, rep: Reporter) -> Any:
    """The feature extractor training's patch gathering reads with: the U-Net encoder in OpenVINO on the CPU
    (``models.inference.openvino_extractor``: the same features to float rounding, 4-9x faster) when the windows
    it reads for the ``(rows, cols)`` pixel sets hold at least ``train.GATHER_OPENVINO_MIN_PIXELS``, else
    ``extractor`` itself."""
    from .models.inference import openvino_extractor
    from .train import GATHER_OPENVINO_MIN_PIXELS, gather_windows

    halo = 2 * extractor.halo
    area = sum((w.height + halo) * (w.width + halo) for rows, cols in pixel_sets if len(rows)
               for _, w in gather_windows(rows, cols, tcfg.patch_size, tcfg.gather_tile, stack.grid.width))
    fast = openvino_extractor(extractor) if area >= GATHER_OPENVINO_MIN_PIXELS else None
    if fast is None:
        return extractor
    rep.info(f"Diffusion features of the training pixels: U-Net encoder in OpenVINO ({area / 1e6:.2f} Mpx to read)")
    return fast


def _unlabelled_pixels(stack: RasterStack, pixels: Any, window: Any, tcfg: Any, rep: Reporter
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Valid unlabelled grid pixels for pseudo-labels (``TrainingConfig.pseudo_share``; none when it is 0)."""
    from .data.labels import valid_at
    from .train import sample_unlabelled

    if tcfg.pseudo_share and tcfg.sampling == "capped":
        rep.warning("Pseudo-labels need the balanced sampling (sampling=\"capped\" draws no weights): none are used")
    if not tcfg.pseudo_share or tcfg.sampling == "capped":
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    rows, cols = sample_unlabelled((stack.grid.height, stack.grid.width), window, pixels.rows, pixels.cols,
                                   tcfg.pseudo_pixels, tcfg.seed)
    ok = valid_at(stack, rows, cols) if len(rows) else np.zeros(0, bool)
    rep.info(f"Pseudo-labels: {int(ok.sum())} unlabelled pixels drawn at random over the scene; a random forest on "
             f"the training pixels labels those it gives at least {tcfg.pseudo_min_confidence:.0%}, and they make "
             f"up {tcfg.pseudo_share:.0%} of the training draws")
    return rows[ok], cols[ok]


def _unlabelled_tensors(stack: RasterStack, rows: np.ndarray, cols: np.ndarray, extractor: Any, inputs: Any,
                        model: Any, tcfg: Any, rep: Reporter) -> dict | None:
    """Patch tensors of the unlabelled pixels (features scaled like the labelled ones) plus their ``"centre"``
    inputs, or None without any."""
    from .train import gather_patches, patch_tensors

    if not len(rows):
        return None
    patches, _, _ = gather_patches(stack, rows, cols, np.zeros(len(rows), np.int64), extractor, inputs,
                                   tcfg.patch_size, tcfg.gather_tile, rep, stage="gather unlabelled")
    return {**patch_tensors(patches, model), "centre": patches.centre}


def _train_classifier(stack: RasterStack, pixels: Any, extractor: Any, stats: Any, prof: Any, seed: int,
                      window: Any, output: str, resume: bool, dev: torch.device, dinfo: Any, rep: Reporter) -> dict:
    """Patches of every labelled pixel, validation (``TrainingConfig.validation``: cross-validation grouped by
    polygon, a polygon hold-out, or none), then the final network trained on every polygon (spec §5.1).

    Returns:
        ``{"model": TrainedModel, "history", "split", "accuracy", "baseline", "metrics", "cv", "mode",
        "labelled_pixels", "polygons", "notes"}``.
    """
    from .data.inputs import ClassifierInputs
    from .models.classifier import TrainedModel
    from .models.network import build_network
    from .train import PSEUDO_TREES, edge_pixels, fit_random_forest, gather_patches, gather_whitewater, patch_tensors
    from .train import pseudo_labelled, train_network

    tcfg = prof.training
    classes = [Category(c.value, c.name, c.color) for c in pixels.classes]
    pixels, bound_note = _bound_pixels(pixels, tcfg, rep)
    y_all = pixels.class_index()
    inputs = ClassifierInputs(stack.band_counts, stats)
    if tcfg.pca_components and stack.band_counts[0] > tcfg.pca_components:
        rep.info(f"PCA of the {stack.band_counts[0]} spectral bands to {tcfg.pca_components} components")
        inputs.fit_pca(stack, tcfg.pca_components, seed, window=window)
    u_rows, u_cols = _unlabelled_pixels(stack, pixels, window, tcfg, rep)
    gather = _gather_extractor(extractor, [(pixels.rows, pixels.cols), (u_rows, u_cols)], stack, tcfg, rep)
    patches, fmin, fmax = gather_patches(stack, pixels.rows, pixels.cols, y_all, gather, inputs, tcfg.patch_size,
                                         tcfg.gather_tile, rep)

    def new_network(net_seed: int) -> Any:
        torch.manual_seed(net_seed)
        return build_network(inputs.n_spectral, inputs.n_auxiliary, extractor.channels, len(classes), prof.network)

    net = new_network(seed)
    model = TrainedModel(extractor, inputs, net, fmin, fmax, classes, tcfg.patch_size,
                         _applicability(patches.centre, pixels.polygon_ids, seed, rep))
    edge = edge_pixels(pixels.rows, pixels.cols, pixels.polygon_ids, tcfg.edge_radius)
    foam = gather_whitewater(stack, pixels, gather, inputs, tcfg, rep)
    # foam pixels follow the labelled ones: training only (never held out, never the random forest's)
    extended = patches if foam is None else patches.concat(foam[0])
    n_foam = len(extended.y) - len(y_all)
    edge_all = np.r_[edge, np.zeros(n_foam, bool)]
    data = patch_tensors(extended, model)
    unlabelled = _unlabelled_tensors(stack, u_rows, u_cols, gather, inputs, model, tcfg, rep)
    n_polygons = int(len(np.unique(pixels.polygon_ids)))
    members = f" in {prof.network.members} ensemble members" if prof.network.members > 1 else ""
    rep.info(f"Group network: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters{members}, "
             f"C_spec {inputs.n_spectral}, C_aux {inputs.n_auxiliary}, C_dif {extractor.channels}, "
             f"{len(classes)} classes; {len(y_all)} labelled pixels in {n_polygons} polygons ({int(edge.sum())} "
             f"within {tcfg.edge_radius} px of a polygon edge), {tcfg.sampling} sampling"
             + (", flip/rotation augmentation" if tcfg.augment else "")
             + (f", the auxiliary input hidden from {tcfg.auxiliary_dropout:.0%} of the training patches"
                if tcfg.auxiliary_dropout and inputs.n_auxiliary else ""))
    # what else decides the folds' figures: the network and the diffusion weights the features come from
    unet_sum = float(sum(p.detach().double().sum() for p in extractor.unet.parameters()))
    identity = {"network": prof.network.to_dict(), "diffusion_channels": extractor.channels, "unet_sum": unet_sum}
    cv, split_report, mode = _validation_run(pixels, data, extended.centre, edge_all,
                                             new_network, tcfg, dev, classes, dinfo, rep, checkpoint_path(output, "cv"),
                                             resume, identity, unlabelled,
                                             None if foam is None else foam[1])
    final_cfg = _refit_config(cv, tcfg, rep)
    _choose_readout(cv, net, tcfg.readout_margin, rep)
    rep.info(f"Final model: trained on all {len(y_all)} labelled pixels of all {n_polygons} polygons"
             + (f" and {n_foam} whitewater pixels" if n_foam else ""))
    view = _training_view(data, extended.y, edge_all, final_cfg)
    if unlabelled is not None:
        teacher = fit_random_forest(patches.centre, y_all, PSEUDO_TREES, final_cfg.seed)
        view = pseudo_labelled(view, unlabelled, unlabelled["centre"], teacher, final_cfg, rep)
    history = train_network(net, view, None, final_cfg, dev, rep, checkpoint_path(output),
                            bool(resume and os.path.exists(checkpoint_path(output))))
    accuracy, baseline, metrics = _cv_metrics(cv, rep, pseudo_labels=bool(tcfg.pseudo_share))
    return {"model": model, "history": history, "split": split_report, "accuracy": accuracy,
            "baseline": baseline, "metrics": metrics, "cv": cv, "mode": mode, "labelled_pixels": int(len(y_all)),
            "polygons": n_polygons, "notes": [n for n in (bound_note, _whitewater_note(foam, classes)) if n],
            "epochs": final_cfg.epochs}


def _choose_readout(cv: dict | None, net: Any, margin: float, rep: Reporter) -> None:
    """Switch the final network to the other read-out when cross-validation puts it ``margin`` ahead
    (``train.choose_readout``, which also rewrites ``cv`` so that its BDGF figures are the chosen read-out's);
    logged. The read-out does not change the training, only how the trained network gives its classes."""
    from .models.network import set_prediction
    from .train import choose_readout

    chosen = choose_readout(cv, margin)
    if chosen:
        set_prediction(net, chosen)
        r = cv["readout"]
        rep.info(f"Read-out: {READOUT_WORDS[chosen]}, which cross-validation puts ahead of "
                 f"{READOUT_WORDS[cv['alternative_prediction']]} by at least {r['margin'] * 100:g} point(s) of OA "
                 f"({r['oa']:.1%} against {r['other_oa']:.1%}); the model file keeps it, and classify --prediction "
                 f"{cv['alternative_prediction']} reads the same model out the other way")


def _whitewater_note(foam: tuple | None, classes: Sequence[Any]) -> str:
    """The training report's note on the whitewater pixels (``train.gather_whitewater``), "" without any."""
    if foam is None:
        return ""
    names = " and ".join(classes[int(k)].name for k in np.unique(foam[0].y))
    return (f"Whitewater: {len(foam[1])} pixels of the {names} polygons, with surf drawn over them (foam stripes over "
            f"water; over dry sand, swash-zone stripes of wet sand and foam), each trained as its own polygon's "
            f"class so that surf is not mapped as a bright land class. They are never held out; --whitewater 0 "
            f"(Whitewater share 0 in QGIS) switches them off.")


def _applicability(centre: np.ndarray, polygon_ids: np.ndarray, seed: int, rep: Reporter) -> Any:
    """The training pixels and threshold of the model's area of applicability (``applicability``), logged."""
    from .applicability import fit_applicability

    aoa = fit_applicability(centre, polygon_ids, seed)
    rep.info(f"Area of applicability: dissimilarity-index threshold {aoa.threshold:.3f} (training pixels against "
             f"the other polygons' pixels; {len(aoa.points)} reference pixels kept in the model file)")
    return aoa


def _bound_pixels(pixels: Any, tcfg: Any, rep: Reporter) -> tuple[Any, str]:
    """Every labelled pixel up to ``tcfg.max_train_pixels`` (the memory bound; a random subset above it); with
    ``sampling="capped"``, at most ``max_train_per_class`` per class (the former behaviour)."""
    from .train import cap_per_class

    rng = np.random.default_rng(tcfg.seed)
    n = len(pixels)
    if tcfg.sampling == "capped":
        keep = cap_per_class(pixels.values, tcfg.max_train_per_class, rng)
        return pixels.subset(keep), f"Capped sampling: {len(keep)} of {n} labelled pixels used."
    if tcfg.max_train_pixels and n > tcfg.max_train_pixels:
        keep = np.sort(rng.choice(n, int(tcfg.max_train_pixels), replace=False))
        msg = (f"{n} labelled pixels exceed the memory bound of {tcfg.max_train_pixels} (max_train_pixels): a "
               f"random {len(keep)} are used")
        rep.warning(msg)
        return pixels.subset(keep), msg
    return pixels, ""


def _training_view(data: dict, y: np.ndarray, edge: np.ndarray, tcfg: Any) -> dict:
    """Every gathered pixel, with class-balanced sampling weights unless ``sampling="capped"``."""
    from .train import patch_view, sampling_weights

    idx = np.arange(len(y))
    if tcfg.sampling == "capped":
        return patch_view(data, idx)
    return patch_view(data, idx, sampling_weights(y, edge, tcfg.edge_weight, tcfg.class_balance))


def _validation_run(pixels: Any, data: dict, centre: np.ndarray, edge: np.ndarray, new_network: Any, tcfg: Any,
                    dev: torch.device, classes: list, dinfo: Any, rep: Reporter, checkpoint: str | None = None,
                    resume: bool = False, identity: dict | None = None, unlabelled: dict | None = None,
                    extra_polygons: np.ndarray | None = None) -> tuple[dict | None, dict, str]:
    """``(cross-validation result or None, split report, mode)`` for ``tcfg.validation`` (``train.cross_validate``
    on folds from ``data.labels.polygon_folds``, or a single polygon hold-out fold); the finished folds are
    checkpointed in ``checkpoint`` and, with ``resume``, taken from it when ``identity`` (and the folds, labels
    and training configuration) match (``train.cross_validate``). ``extra_polygons``: the source polygons of
    synthetic training pixels that follow ``pixels`` in ``data`` (whitewater): each takes its polygon's fold, as
    training only. The folds leave torch's random state as they found it, so the final network's weights do not
    depend on the validation (except through the epochs that early stopping takes from the folds)."""
    from .data.labels import polygon_folds, split_by_polygon
    from .train import cross_validate, synthetic_folds

    mode, arg = parse_validation(tcfg.validation)
    fold, n_folds, split_report = None, 0, {"validation": tcfg.validation}
    if mode == "cv":
        fold, n_folds, split_report = polygon_folds(pixels, int(arg), tcfg.seed, tcfg.cv_block_size, reporter=rep)
    elif mode == "holdout":
        _, val_idx, split_report = split_by_polygon(pixels, arg, tcfg.seed, reporter=rep)
        fold = np.full(len(pixels), -1, np.int64)
        fold[val_idx] = 0
        n_folds = 1 if len(val_idx) else 0
    if not n_folds:
        if mode != "none":
            rep.warning("No validation polygons (every class has a single polygon): no accuracy is reported. "
                        "Digitize at least two polygons per class.")
        return None, split_report, mode
    cfg = tcfg if dinfo.is_main else dataclasses.replace(tcfg, rf_trees=0)
    train_only = None
    if extra_polygons is not None:
        fold, train_only = synthetic_folds(fold, pixels.polygon_ids, extra_polygons)
    # the folds' networks draw from torch's global random streams; forked, so that for one seed the final network's
    # weights are the same whatever the validation (none included), unless the folds set its epochs
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        cv = cross_validate(data, centre, fold, n_folds, new_network, cfg, dev, [int(c.value) for c in classes],
                            [c.name for c in classes], edge, rep, checkpoint, resume, identity, unlabelled=unlabelled,
                            train_only=train_only)
    return cv, split_report, mode


def _backend_words(fast: Any) -> str:
    """How classify computes, for the log: ``"openvino f32 (group network: torch)"``, ``"torch f32"``, ``"eager"``."""
    if fast is None:
        return "eager"
    words = f"{fast.name} {fast.precision}"
    net = fast.network + (", compiled" if fast.compiled else "")
    words += f" (group network: {net})" if net != fast.name else ""
    return words + (", coarse-to-fine" if fast.coarse_to_fine else "")


def _refit_config(cv: dict | None, tcfg: Any, rep: Reporter) -> Any:
    """The final fit's configuration: with early stopping and cross-validation, the epoch count with the lowest
    mean held-out loss over the folds; otherwise ``tcfg``."""
    if not (cv and tcfg.early_stopping and cv.get("epoch_val_loss")):
        return tcfg
    best = int(np.argmin(cv["epoch_val_loss"])) + 1
    rep.info(f"Early stopping: the mean held-out loss over the folds is lowest after epoch {best}; the final model "
             f"is trained for {best} epochs")
    return dataclasses.replace(tcfg, epochs=best, early_stopping=False,
                               milestones=tuple(m for m in tcfg.milestones if m < best) or (best,))


def _cv_metrics(cv: dict | None, rep: Reporter, pseudo_labels: bool = False
                ) -> tuple[dict | None, dict | None, dict]:
    """Pooled held-out accuracy of BDGF and of the random forest, the ``done`` metrics, and a plain verdict
    (``pseudo_labels``: whether the run used them, so that the verdict does not advise them again)."""
    from .models.network import other_readout

    if not cv:
        return None, None, {}
    accuracy, baseline = cv["bdgf"], cv.get("rf")
    metrics = {"oa": accuracy["oa"], "aa": accuracy["aa"], "kappa": accuracy["kappa"],
               "oa_ci95": accuracy["oa_folds"]["ci95"], "kappa_ci95": accuracy["kappa_folds"]["ci95"],
               "folds": cv["n_folds"]}
    rep.metric("val_oa", accuracy["oa"], aa=accuracy["aa"], kappa=accuracy["kappa"], model="BDGF")
    if baseline:
        metrics.update(rf_oa=baseline["oa"], rf_aa=baseline["aa"], rf_kappa=baseline["kappa"])
        rep.metric("rf_val_oa", baseline["oa"], aa=baseline["aa"], kappa=baseline["kappa"], model="RandomForest")
    alternative = _alternative(cv)
    if alternative:
        metrics.update(alt_prediction=alternative["prediction"], alt_oa=alternative["oa"],
                       alt_kappa=alternative["kappa"],
                       prediction=other_readout(alternative["prediction"]))
        rep.info(_alternative_words(alternative))
    cv["verdict"] = _verdict(accuracy, baseline, pseudo_labels, alternative)
    if cv["verdict"]:
        (rep.warning if cv["verdict"].startswith("The random forest") else rep.info)(cv["verdict"])
    if cv.get("edge"):
        rep.info(_edge_words(cv["edge"]))
        metrics.update(edge_oa=cv["edge"]["edge"]["bdgf_oa"], rf_edge_oa=cv["edge"]["edge"]["rf_oa"])
    return accuracy, baseline, metrics


def _alternative(cv: dict) -> dict | None:
    """The other read-out of the fold networks (``train.cross_validate``'s ``"alternative"``) as its pooled
    metrics plus ``"prediction"`` (``"heads"`` or ``"fused"``), or None when the heads are not trained."""
    if not cv.get("alternative") or not cv.get("alternative_prediction"):
        return None
    return {**cv["alternative"], "prediction": cv["alternative_prediction"]}


#: How the training report names a read-out (``contract.PREDICTIONS``).
READOUT_WORDS = {"heads": "the mean of its branch heads", "fused": "its fused classifier (the paper's Eq. 29)"}


def _alternative_words(alt: dict) -> str:
    """One log line on the other read-out of the same fold networks (``classify --prediction``)."""
    kappa = f", kappa {alt['kappa']:.3f}" if alt.get("kappa") is not None else ""
    return (f"Read out by {READOUT_WORDS[alt['prediction']]} instead, the same fold networks give OA "
            f"{alt['oa']:.1%}{kappa} (classify --prediction {alt['prediction']}; Prediction in QGIS's Classify). "
            "Cross-validation tests the polygons, not the boundaries between them: compare both maps before "
            "choosing.")


def _verdict(acc: dict, rf: dict | None, pseudo_labels: bool = False, alternative: dict | None = None) -> str:
    """One plain sentence comparing BDGF and the random forest under the same folds (empty without both).

    With two or more folds the comparison is paired: the 95 % Student-t interval of the fold-by-fold OA
    differences (``train.mean_ci95``). When it excludes zero, the one ahead is named as the winner. When it
    includes zero but one model is ahead in the pooled OA and in some folds, behind in none, it is named as
    ahead, with the warning that the folds are too few to be sure (with 2 folds the t-interval is 12.7 standard
    errors wide, so it nearly always includes zero); otherwise the two are called level. Fold OAs are listed
    instead of a mean ± interval when there are fewer than 3 folds. A single fold (hold-out): the pooled OA (and
    kappa, where it is defined) decide. When the random forest is ahead, the advice names the options: the other
    read-out of the same model when it beats the forest's pooled OA (``alternative``, :func:`_alternative`; the
    branch heads' mean did on the 4-polygon benchmark pair 69_24, docs/benchmarks.md), then pseudo-labels (which
    lifted both benchmark pairs where the random forest won) unless ``pseudo_labels`` says they were on."""
    from .train import mean_ci95

    if not rf or acc.get("oa") is None or rf.get("oa") is None:
        return ""
    a, b = acc["oa_folds"], rf["oa_folds"]
    pairs = [(x, y) for x, y in zip(a.get("folds") or [], b.get("folds") or []) if x is not None and y is not None]

    def folds_words(part: dict) -> str:
        values = [v for v in part.get("folds") or [] if v is not None]
        if 1 < len(values) < 3:
            return "folds " + ", ".join(f"{v:.1%}" for v in values)
        return f"fold mean {part['mean']:.1%} ± {part['ci95']:.1%}"

    figures = (f"OA {acc['oa']:.1%} for BDGF ({folds_words(a)}) and {rf['oa']:.1%} for the random forest "
               f"({folds_words(b)}), " + _kappa_words(acc, rf))
    advice = "Consider the random forest for this map, more training polygons, or the paper profile on a GPU."
    if alternative and alternative.get("oa") is not None and alternative["oa"] > rf["oa"]:
        advice = (f"Read out by {READOUT_WORDS[alternative['prediction']]}, the same model gets OA "
                  f"{alternative['oa']:.1%} on these folds, ahead of the forest: classify with --prediction "
                  f"{alternative['prediction']} (Prediction in QGIS's Classify) and compare the maps. " + advice)
    if not pseudo_labels:
        advice += (" Or try pseudo-labels from a random forest (train --pseudo-labels 0.7; Pseudo-label share in "
                   "QGIS), which show the network its classes beside covers that no polygon shows, and compare the "
                   "maps.")
    if len(pairs) > 1:
        d_mean, d_half = mean_ci95([x - y for x, y in pairs])
        difference = f"the fold-by-fold OA difference is {d_mean:+.1%} ± {d_half:.1%} (95 %)"
        if abs(d_mean) <= d_half:
            ahead = {"BDGF": sum(x > y for x, y in pairs), "The random forest": sum(y > x for x, y in pairs)}
            pooled = "BDGF" if acc["oa"] > rf["oa"] else "The random forest" if rf["oa"] > acc["oa"] else ""
            other = {"BDGF": "The random forest", "The random forest": "BDGF"}.get(pooled)
            if pooled and ahead[pooled] and not ahead[other]:
                where = (f"in every fold ({len(pairs)} of {len(pairs)})" if ahead[pooled] == len(pairs) else
                         f"in {ahead[pooled]} of {len(pairs)} folds (level in the "
                         f"{'other' if len(pairs) - ahead[pooled] == 1 else 'others'})")
                text = (f"{pooled} is ahead {where} and pooled: {figures}; but {difference}, so "
                        f"{len(pairs)} folds are too few to be sure. More polygons per class would tell.")
                return f"{text} {advice}" if pooled != "BDGF" else text
            return (f"BDGF and the random forest are level on these polygons: {figures}; {difference}, which "
                    "includes zero. More polygons would separate them.")
        bdgf_ahead = d_mean > 0
    else:
        kappas = (acc.get("kappa"), rf.get("kappa"))
        bdgf_ahead = acc["oa"] >= rf["oa"] and (None in kappas or kappas[0] >= kappas[1])
    if bdgf_ahead:
        return f"BDGF is more accurate than the random forest on the held-out polygons: {figures}."
    return f"The random forest wins on these polygons: {figures}. {advice}"


def _kappa_words(acc: dict, rf: dict) -> str:
    """``"kappa 0.912 and 0.874"``; when every held-out pixel is of one class (the other classes have too few
    polygons to be held out), Cohen's kappa is 0 whatever the map (``metrics.accuracy_metrics`` gives None), so it
    is named as not meaningful instead."""
    support = [sum(row) for row in acc.get("confusion_matrix") or []]
    tested = [name for name, n in zip(acc.get("names") or [], support) if n]
    if len(tested) == 1:
        return f"kappa not meaningful (every held-out pixel is {tested[0]})"
    if acc.get("kappa") is None or rf.get("kappa") is None:
        return "kappa not defined"
    return f"kappa {acc['kappa']:.3f} and {rf['kappa']:.3f}"


def _cv_section(cv: dict, mode: str) -> dict:
    """Training-report section: per-fold OA / AA / kappa of BDGF and the random forest, mean ± 95 % interval."""
    alt = _alternative(cv)
    rows = []
    for r in cv["folds"]:
        rf = r.get("rf") or {}
        rows.append([str(r["fold"]), r["n"], r["bdgf"]["oa"], r["bdgf"]["aa"], r["bdgf"]["kappa"],
                     rf.get("oa"), rf.get("aa"), rf.get("kappa")] + ([r["alternative"]["oa"]] if alt else []))
    for label, part in (("mean", "mean"), ("± 95 % interval", "ci95")):
        row = [label, ""]
        for model in ("bdgf", "rf"):
            row += [(cv.get(model) or {}).get(f"{k}_folds", {}).get(part) for k in ("oa", "aa", "kappa")]
        rows.append(row + ([alt["oa_folds"][part]] if alt else []))
    title = "Cross-validation grouped by polygon" if mode == "cv" else "Polygon hold-out validation"
    text = (f"{cv['n_folds']} fold(s): each fold's held-out pixels come from polygons that fold's model never saw; "
            "the summary above pools every fold's held-out pixels into one confusion matrix, and the final model "
            "is then trained on every polygon. " + cv.get("verdict", ""))
    if cv.get("readout"):
        text += (f" BDGF's figures are those of {READOUT_WORDS[cv['readout']['prediction']]}, the model's read-out, "
                 f"chosen on these folds for being at least {cv['readout']['margin'] * 100:g} point(s) of OA ahead of "
                 "the other.")
    columns = ["fold", "held-out pixels", "BDGF OA", "BDGF AA", "BDGF kappa", "RF OA", "RF AA", "RF kappa"]
    if alt:
        text += " " + _alternative_words(alt)
        columns.append("BDGF OA, " + ("heads' mean" if alt["prediction"] == "heads" else "fused classifier"))
    return {"title": title, "text": text, "table": {"columns": columns, "rows": rows}}


def _edge_words(edge: dict) -> str:
    """One log line: held-out OA at polygon edges and inside polygons (``train.edge_accuracy``)."""
    def part(name: str, words: str) -> str:
        p = edge[name]
        if not p["n"]:
            return f"no held-out pixel {words}"
        rf = f", random forest {p['rf_oa']:.1%}" if p.get("rf_oa") is not None else ""
        return f"{p['n']} held-out px {words}: BDGF OA {p['bdgf_oa']:.1%}{rf}"
    return (part("edge", f"within {edge['radius']} px of their polygon's edge") + "; "
            + part("interior", "further inside"))


def _edge_section(edge: dict) -> dict:
    """Training-report section: held-out OA at polygon edges and inside polygons (``train.edge_accuracy``)."""
    rows = [[label, edge[key]["n"], edge[key]["bdgf_oa"], edge[key].get("rf_oa")]
            for key, label in (("edge", f"within {edge['radius']} px of the polygon edge"),
                               ("interior", "further inside"))]
    return {"title": "Held-out accuracy at polygon edges",
            "text": "Maps go wrong at boundaries, where a pixel's patch and diffusion features already see the land "
                    "cover beyond it. Held-out pixels near their polygon's edge are the closest the polygons come "
                    "to that; a much lower OA there means the map's edges are less sure than the pooled figure.",
            "table": {"columns": ["held-out pixels", "n", "BDGF OA", "RF OA"], "rows": rows}}


def _training_report(run: dict, pixels: Any, started: str, rep: Reporter, dev: torch.device, spectral: Modality,
                     auxiliary: Sequence[Modality], training: str, class_field: str, pretrained: str | None,
                     profile: str, seed: int, tcfg: Any) -> dict:
    """The training report (HTML via ``io.reports``; its figures are also kept in the model file)."""
    return {
        "kind": "training", "title": "BDGF training report", "model_name": "BDGF", "created": started,
        "engine_version": __version__, "classes": [c.to_dict() for c in run["model"].classes],
        "accuracy": run["accuracy"],
        "baseline": {"name": "Random forest", "accuracy": run["baseline"]} if run["baseline"] else None,
        "history": run["history"], "split": run["split"], "labels": pixels.report,
        "sections": ([_cv_section(run["cv"], run["mode"])] if run["cv"] else [])
        + ([_edge_section(run["cv"]["edge"])] if run["cv"] and run["cv"].get("edge") else []),
        "warnings": [msg for level, msg in rep.messages if level == "warning"],
        "inputs": {"spectral": ", ".join(spectral.paths),
                   "auxiliary": "; ".join(f"{m.kind}: {', '.join(m.paths)}" for m in auxiliary) or "none",
                   "training": training, "class_field": class_field, "pretrained": pretrained or "none"},
        "settings": {"profile": profile, "seed": seed, "device": str(dev), "epochs": run["epochs"],
                     "validation": tcfg.validation, "sampling": tcfg.sampling, "augment": tcfg.augment,
                     "patch_size": tcfg.patch_size, "labelled_pixels": run["labelled_pixels"],
                     "polygons": run["polygons"],
                     "prediction": READOUT_WORDS[run["model"].net.config.prediction]
                     + (" (chosen by cross-validation)" if (run["cv"] or {}).get("readout") else "")},
        "notes": ["Accuracy comes from polygons held out of training (cross-validation folds grouped by polygon, or "
                  "a polygon hold-out), so it is not inflated by spatial autocorrelation inside polygons; the final "
                  "model is then trained on every labelled pixel of every polygon.",
                  "The random forest uses the centre-pixel spectral and auxiliary values of the same training "
                  "pixels, under the same folds.",
                  "These figures hold inside the area of applicability: classify --applicability marks the pixels "
                  "whose inputs lie farther from every training pixel than a training pixel lies from the other "
                  "polygons (dissimilarity index above the threshold below; Meyer and Pebesma 2021)."]
        + run["notes"],
        "applicability": run["model"].applicability.summary() if run["model"].applicability is not None else None,
        "edge_accuracy": (run["cv"] or {}).get("edge"),
    }


# ------------------------------------------------------------------------------------------------------------
# classify
# ------------------------------------------------------------------------------------------------------------
def _classifier_and_grid(model: str, mods: Sequence[Modality], device: str | None, rep: Reporter) -> tuple:
    """(tensors, metadata, profile, grid, device) of a classifier model file for ``mods``: the scene's own grid
    (CRS, alignment), resampled to the model's pixel size only when they differ (``checks.scene_grid``, logged).

    Raises:
        EngineError: pretrain-only or foreign model file.
    """
    from .config import get_profile
    from .io.artifact import load_model

    dev = _device(device, rep)
    tensors, meta = load_model(model, device="cpu")
    if meta.kind != "classifier":
        raise EngineError(f"{os.path.basename(model)} is a {meta.kind} file, not a trained "
                          "classifier", "Run train (with this file as the pretrained model) and classify with "
                          "its output model.")
    from .checks import scene_grid

    grid = scene_grid(mods, meta.grid, rep)   # the scene's own grid, at the model's pixel size
    return tensors, meta, get_profile(meta.profile), grid, dev


def _scene_stack(meta: ModelMetadata, spectral: Modality, auxiliary: Sequence[Modality], grid: Any, model: str,
                 band_order: str, scope: contextlib.ExitStack, rep: Reporter) -> RasterStack:
    """The scene's stack on ``grid`` in the model's band order, with the landscape context derived over the whole
    grid when the model has one (held in memory by ``scope``)."""
    grid, aux = scope.enter_context(context_inputs(spectral, auxiliary, meta.context, grid, rep))
    return _open_matched(meta, [spectral, *aux], grid, model, rep, band_order)[0]


def _check_scene(meta: ModelMetadata, stack: RasterStack, window: Any, model: str, rep: Reporter) -> None:
    """A sample of the scene has valid pixels and values on the training data's scale (``engine.checks``)."""
    from .checks import check_value_ranges, scene_statistics

    scene = scene_statistics(stack, window, reporter=rep)
    check_value_ranges(meta.modalities, scene, os.path.basename(model), rep)


def _check_classify_outputs(grid: Any, n_classes: int, output: str, confidence: str | None,
                            probabilities: str | None, uncertainty: str | None, applicability: str | None) -> None:
    """Output folders writable, with room for the rasters (uncompressed upper bound: uint8/uint16 classes,
    float32 confidence, ``n_classes`` float32 probability bands, 2 float32 uncertainty bands, float32
    dissimilarity index)."""
    check_outputs_writable([output, confidence, probabilities, uncertainty, applicability])
    px = float(grid.width) * float(grid.height)
    check_disk_space([(output, px * (1 if n_classes < 255 else 2)), (confidence, px * 4),
                      (probabilities, px * 4 * n_classes), (uncertainty, px * 8), (applicability, px * 4)])


def classify(model: str, spectral: Modality, auxiliary: Sequence[Modality], output: str, *,
             confidence: str | None = None, probabilities: str | None = None, uncertainty: str | None = None,
             applicability: str | None = None, extent: Any = None, mask: str | None = None,
             mask_layer: str | None = None,
             device: str | None = "auto", tile: int | None = None, batch_size: int | None = None,
             overwrite: bool = False, band_order: str = "name", backend: str = "auto", compile_mode: str = "auto",
             coarse_to_fine: bool = True, prediction: str | None = None, reporter: Reporter | None = None) -> dict:
    """Classify a scene (or an extent / mask polygons) with a model file, tile by tile (bounded memory).

    ``prediction`` (``contract.PREDICTIONS``; None = the model's own, ``NetworkConfig.prediction``): read the
    trained network out by its fused classifier (paper Eq. 29) or by the mean of its branch heads, without
    retraining (the training report's cross-validation gives both; :func:`_prediction_check`).

    ``backend`` (``models.inference.BACKENDS``): ``auto`` runs the fast path (OpenVINO on the CPU when installed,
    else the rewritten torch network), ``eager`` the reference model. ``compile_mode`` (``contract.COMPILE_MODES``):
    ``torch.compile`` the group network on the CPU (``auto``: from ``contract.COMPILE_MIN_PIXELS`` pixels on;
    without a C++ compiler it runs uncompiled and the log says why). ``coarse_to_fine`` (not with ``eager``): run
    the group network only where neighbouring pixels disagree, are unsure or differ spectrally
    (``predict.coarse_to_fine``). Under torchrun every process classifies its share of the tiles and rank 0 writes
    the outputs (``predict.classify_scene``).

    Writes a styled classification GeoTIFF (colour table, category names, QML sidecar), and optionally the
    confidence raster, the per-class probability stack and the uncertainty raster (band 1 normalised entropy,
    band 2 margin; ``suggest.entropy_margin``) and the applicability raster (the dissimilarity index of every
    pixel, its area-of-applicability threshold in a tag; ``applicability``). Before any tile is classified: the
    bands are matched to the model's by identity (``band_order="name"``: reordered when given in another order,
    refused when one is missing or unknown; ``"positional"``: as given), a sample of the scene is compared with
    the model's band statistics (another scale refused), and the output folders must be writable with room for
    the outputs. The map is written on the scene's own grid (``checks.scene_grid``).

    Raises:
        EngineError: pretrain-only, foreign, damaged or non-finite model file; inputs that do not match the model;
            a scene without valid pixels or on another scale; an unwritable or full output folder; an applicability
            raster asked of a model file without training pixels (written by an earlier engine); a
            ``prediction`` the model cannot make.
    """
    from .distributed import setup, teardown
    from .io.rasters import ClassificationWriter
    from .models.classifier import TrainedModel
    from .models.inference import InferenceBackend, compile_requested
    from .models.network import set_prediction
    from .predict import classify_scene, polygon_mask_geometries

    rep = ensure(reporter)
    output = os.path.abspath(output)
    for p in (output, confidence, probabilities, uncertainty, applicability):
        if p:
            check_output(p, overwrite)
    mods = [spectral, *auxiliary]
    tensors, meta, prof, grid, dev = _classifier_and_grid(model, mods, device, rep)
    prediction = _prediction_check(meta, prediction, model, rep)
    if applicability:
        from .applicability import require_reference

        require_reference(tensors, model, "has no area of applicability", "leave --applicability out")
    dinfo, dev = setup(dev)
    with contextlib.ExitStack() as scope:
        stack = scope.enter_context(_scene_stack(meta, spectral, auxiliary, grid, model, band_order, scope, rep))
        window = _window(stack, extent)
        _check_scene(meta, stack, window, model, rep)
        out_grid = stack.grid if window is None else stack.grid.crop(window)
        _check_classify_outputs(out_grid, len(meta.classes), output, confidence, probabilities, uncertainty,
                                applicability)
        tm = TrainedModel.from_tensors(tensors, meta, dev)
        set_prediction(tm.net, prediction)
        pixels = out_grid.width * out_grid.height
        if backend != "eager" and dev.type == "cpu" and compile_requested(compile_mode, pixels):
            rep.info("Compiling the group network for the CPU (20-30 s the first time, a few seconds once cached)")
        fast = None if backend == "eager" else InferenceBackend(
            tm, backend, pixels=pixels, compile_mode=compile_mode,
            batch_size=batch_size or prof.batch_size, coarse_to_fine=coarse_to_fine)
        note = fast.compile_note if fast is not None else ""
        if note:
            rep.info(f"The group network runs uncompiled: {note}")
        geoms = polygon_mask_geometries(mask, stack.grid, mask_layer) if mask else None
        rep.info(f"Classifying {out_grid.width} x {out_grid.height} px in tiles of {tile or prof.tile} px "
                 f"({_backend_words(fast)} inference"
                 f"{f', {dinfo.world} processes' if dinfo.enabled else ''})")
        writer_cm = contextlib.nullcontext(None) if not dinfo.is_main else ClassificationWriter(
            output, out_grid.crs, out_grid.transform, out_grid.width, out_grid.height, tm.classes,
            overwrite=overwrite, confidence_path=confidence, probabilities_path=probabilities,
            uncertainty_path=uncertainty, reporter=rep, applicability_path=applicability,
            applicability_threshold=tm.applicability.threshold if applicability else None)
        with writer_cm as writer:
            summary = classify_scene(tm, stack, writer, window, tile or prof.tile, batch_size or prof.batch_size,
                                     geoms, rep, want_probabilities=bool(probabilities or uncertainty),
                                     backend=fast, want_dissimilarity=bool(applicability))
        if fast is not None and fast.coarse_to_fine and not dinfo.enabled:
            rep.info(f"Coarse-to-fine: the group network classified {fast.patches_run} px "
                     f"({100.0 * fast.patches_run / max(1, summary['pixels']):.0f} % of the {summary['pixels']} "
                     "classified, halo pixels of the tiles included); the others took their neighbours' class")
        if fast is not None and fast.compile_note != note:       # a compiled call failed during the run
            rep.warning(f"The group network ran uncompiled from then on: {fast.compile_note}")
    teardown()
    out = {"output": output, "class_counts": summary["class_counts"], "pixels": summary["pixels"]}
    if confidence:
        out["confidence"] = os.path.abspath(confidence)
    if probabilities:
        out["probabilities"] = os.path.abspath(probabilities)
    if uncertainty:
        out["uncertainty"] = os.path.abspath(uncertainty)
    if applicability:
        out["applicability"] = os.path.abspath(applicability)
        out["applicability_threshold"] = tm.applicability.threshold
    if dinfo.is_main:
        out.update(_class_summary(tm.classes, summary, out_grid, tm.applicability.threshold if applicability else None,
                                  rep))
    return out


def _prediction_check(meta: Any, prediction: str | None, model: str, rep: Reporter) -> str:
    """The read-out ``classify`` uses: ``prediction``, or the model's own when None; logged when it is not the
    model's own.

    Raises:
        EngineError: ``prediction`` not in ``contract.PREDICTIONS``, or ``"heads"`` for a model whose branch heads
            did not learn the classes (``NetworkConfig.heads_trained``).
    """
    from .models.network import NetworkConfig

    cfg = NetworkConfig.from_dict(meta.network_config)
    if prediction is None:
        return cfg.prediction
    if prediction not in PREDICTIONS:
        raise EngineError(f"Unknown prediction {prediction!r}", f"Use one of: {', '.join(PREDICTIONS)}.")
    if prediction == "heads" and not cfg.heads_trained:
        raise EngineError(f"{model}: its branch heads were not trained on the classes (one branch, or mutual "
                          "learning or per-branch cross-entropy switched off), so it cannot predict with them",
                          "Leave --prediction out (or use fused), or train a model with the default network.")
    if prediction != cfg.prediction:
        rep.info(f"Prediction: {READOUT_WORDS[prediction]}, not the model's own ({READOUT_WORDS[cfg.prediction]})")
    return prediction


#: Share of a predicted class's pixels outside the area of applicability above which the log advises new polygons.
OUTSIDE_ADVICE_SHARE = 0.5


def _class_summary(classes: Sequence[Any], summary: dict, grid: Any, threshold: float | None,
                   rep: Reporter) -> dict:
    """Log the mapped area of every class and, with the applicability raster, the share of each predicted class
    outside the area of applicability; a warning names the classes mostly outside (``OUTSIDE_ADVICE_SHARE``),
    whose pixels look like no training polygon of any class (Meyer and Pebesma 2021: the map extrapolates there).

    Returns:
        ``{"pixel_area_m2": float | None}`` (None in a geographic CRS) and, with ``threshold``,
        ``{"outside_applicability": int, "outside_by_class": {value: px}}``.
    """
    counts = [summary["class_counts"].get(int(c.value), 0) for c in classes]     # aligned with ``classes``
    total = max(1, summary["pixels"])
    unit = grid.crs.linear_units_factor[1] if grid.crs.is_projected else None
    area = abs(grid.res[0] * grid.res[1]) * unit ** 2 if unit else None
    words = [f"{c.name} {n:,} px" + (f" = {n * area / 1e4:,.1f} ha" if area else "") + f" ({100.0 * n / total:.1f} %)"
             for c, n in zip(classes, counts)]
    rep.info("Mapped area by class: " + "; ".join(words))
    out: dict = {"pixel_area_m2": area}
    if threshold is None:
        return out
    by_class = summary.get("outside_by_class", {})
    out["outside_applicability"] = int(summary.get("outside_applicability", 0))
    out["outside_by_class"] = by_class
    rep.info(f"{out['outside_applicability']:,} of {summary['pixels']:,} classified px "
             f"({100.0 * out['outside_applicability'] / total:.1f} %) lie outside the area of applicability "
             f"(dissimilarity index > {threshold:.3f})")
    shares = sorted(((by_class.get(int(c.value), 0) / n, c.name) for c, n in zip(classes, counts) if n),
                    reverse=True)
    rep.info("Outside the area of applicability, by predicted class: "
             + "; ".join(f"{name} {100.0 * share:.1f} %" for share, name in shares))
    mostly = [f"{name} ({100.0 * share:.0f} %)" for share, name in shares if share > OUTSIDE_ADVICE_SHARE]
    if mostly:
        rep.warning(f"Most pixels mapped as {', '.join(mostly)} look like no training polygon: the map "
                    "extrapolates there. Look at them on the applicability raster and draw polygons of what they "
                    "really are, then train again")
    return out


# ------------------------------------------------------------------------------------------------------------
# suggest (where to digitize next)
# ------------------------------------------------------------------------------------------------------------
def suggest(model: str, spectral: Modality, auxiliary: Sequence[Modality], output: str, *, count: int = 20,
            min_distance: float | None = None, measure: str = "entropy", balance: bool = True, extent: Any = None,
            mask: str | None = None, mask_layer: str | None = None, device: str | None = "auto",
            tile: int | None = None, batch_size: int | None = None, overwrite: bool = False,
            band_order: str = "name", reporter: Reporter | None = None, backend: str = "auto") -> dict:
    """Suggest ``count`` locations for new training polygons (``suggest.suggest_in_scene``) as a point layer.

    The scene (or extent / mask) is classified tile by tile like :func:`classify` (``backend``: its fast path with
    coarse-to-fine by default, ``"eager"`` for the reference model), without writing rasters.

    Returns:
        ``{"output", "count", "candidates", "pixels"}``.

    Raises:
        EngineError: as :func:`classify`; an output format other than .gpkg / .geojson / .shp.
    """
    from .io.points import driver_for, write_points
    from .models.classifier import TrainedModel
    from .models.inference import InferenceBackend
    from .predict import polygon_mask_geometries
    from .suggest import suggest_in_scene, suggestion_records

    rep = ensure(reporter)
    output = check_output(output, overwrite)
    driver_for(output)
    mods = [spectral, *auxiliary]
    tensors, meta, prof, grid, dev = _classifier_and_grid(model, mods, device, rep)
    if measure == "dissimilarity":
        from .applicability import require_reference

        require_reference(tensors, model, "cannot rank by dissimilarity", "rank by entropy or margin")
    with contextlib.ExitStack() as scope:
        stack = scope.enter_context(_scene_stack(meta, spectral, auxiliary, grid, model, band_order, scope, rep))
        window = _window(stack, extent)
        _check_scene(meta, stack, window, model, rep)
        tm = TrainedModel.from_tensors(tensors, meta, dev)
        geoms = polygon_mask_geometries(mask, stack.grid, mask_layer) if mask else None
        height, width = (stack.grid.height, stack.grid.width) if window is None else window[2:]
        fast = None if backend == "eager" else InferenceBackend(
            tm, backend, pixels=int(height) * int(width), compile_mode="off",
            batch_size=batch_size or prof.batch_size, coarse_to_fine=True)
        found = suggest_in_scene(tm, stack, window, count=count, min_distance=min_distance, measure=measure,
                                 balance=balance, tile=tile or prof.tile, batch_size=batch_size or prof.batch_size,
                                 mask_geometries=geoms, reporter=rep, backend=fast)
        crs_wkt = stack.grid.crs.to_wkt()
    schema, records = suggestion_records(found, {int(c.value): c.name for c in tm.classes})
    if len(records) < count:
        rep.warning(f"Only {len(records)} of {count} suggestions fit at the minimum distance")
    write_points(output, crs_wkt, found["x"], found["y"], schema, records, overwrite=overwrite)
    return {"output": output, "count": len(records), "candidates": found["candidates"], "pixels": found["pixels"]}


# ------------------------------------------------------------------------------------------------------------
# assess
# ------------------------------------------------------------------------------------------------------------
def assess(classification: str, reference: str, class_field: str, *, layer: str | None = None,
           report: str | None = None, table: str | None = None, json_path: str | None = None,
           overwrite: bool = False, extent: Any = None, stratum_field: str | None = None,
           reporter: Reporter | None = None) -> dict:
    """Accuracy assessment of a classification raster against reference polygons (``assess.assess``) or a
    labelled point sample (``sampling.assess_points``, stratified estimators; ``stratum_field`` of the design)."""
    from .assess import assess_to_files

    bounds, crs = _extent(extent)
    return assess_to_files(classification, reference, class_field, layer=layer, report=report, table=table,
                           json_path=json_path, overwrite=overwrite, reporter=reporter, extent=bounds,
                           extent_crs=crs, stratum_field=stratum_field)
