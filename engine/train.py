"""Stage S: patch gathering, group-network training (mutual learning), random-forest baseline.

Data flow (spec §1.3-§1.4, §5.1): labelled pixels (``data.labels.read_polygons``) are split by polygon, capped
per class, grouped by grid cell, and for each cell the window around its pixels (plus the patch margin) goes
through :func:`engine.data.windows.read_window` (one read with the diffusion halo, normalised inputs, diffusion
features of that window only) and the ``P x P`` patches around the labelled pixels are kept. No full-scene
array (image or feature map) is ever built: memory is bounded by one window plus the gathered patches.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from .contract import parse_validation
from .data.inputs import ClassifierInputs
from .data.windows import Window, WindowInputs, read_window
from .errors import Cancelled, EngineError
from .io.artifact import load_checkpoint, load_optimizer, save_checkpoint, save_model
from .io.schema import ModelMetadata
from .metrics import accuracy_metrics, confusion_matrix
from .models.classifier import TrainedModel
from .models.diffusion import FeatureExtractor
from .models.network import GroupEnsemble, GroupNetwork, other_readout, set_prediction
from .progress import Reporter, ensure


@dataclass
class TrainingConfig:
    """Supervised training options (spec §5.1; ambiguity register §8 item 18). Defaults = ``paper``.

    Attributes:
        patch_size: odd patch side P (paper §4.1: 9).
        batch_size, epochs, lr, milestones, gamma, weight_decay, grad_clip: Adam + MultiStepLR (spec §5.1).
        max_train_per_class / max_val_per_class: caps on the labelled pixels used per class (seeded random
            subset); analysts' polygons hold far more pixels than the paper's 100 per class.
        validation_fraction: share of each class's polygons held out for validation (split by polygon).
        pca_components: spectral inputs with more bands than this are reduced by PCA (spec §1.3); 0 = never.
        early_stopping, patience: in :func:`train_network` with validation data, restore the weights of the epoch
            with the lowest validation loss (stop after ``patience`` epochs without a lower one); in
            :func:`cross_validate` only the held-out loss per epoch is recorded, for the final fit's epoch count.
        checkpoint_every: epochs between checkpoints (0 = only on cancel).
        gather_tile: tile side (pixels) used to gather patches.
        rf_trees: trees of the random-forest baseline (0 = no baseline).
        seed: split, subsampling, initialisation and shuffling.
        sampling: ``"balanced"`` (default): every labelled pixel of the training polygons is in the pool and each
            epoch draws ``samples_per_epoch`` patches with equal total probability per class (with replacement),
            so a class of 12 pixels weighs as much as one of 2,000; ``"capped"``: the former behaviour, at most
            ``max_train_per_class`` random pixels per class, each seen once per epoch.
        samples_per_epoch: patches drawn per epoch with ``"balanced"`` (0 = ``max_train_per_class`` x classes).
        max_train_pixels: memory bound on the labelled pixels gathered (all of them below it; above it a random
            subset). Each pixel costs ``P² (4 C_spec + 4 C_aux + 2 C_dif)`` bytes (:func:`pixel_bytes`; 14.6 KiB
            for 13 Sentinel-2 bands and the ``fast`` C_dif = 64), so 250 000 pixels ≈ 3.5 GiB.
        augment: random flip/rotation of each training patch (the 8 symmetries of the square, the same for
            every input of the patch); labels are unchanged because the centre pixel stays the centre.
        spectral_jitter: std of a random per-patch, per-band gain and offset (z-score units) on the spectral
            input (0 = off).
        edge_weight: sampling weight of pixels within ``edge_radius`` pixels of their polygon's edge relative to
            interior pixels of the same class (1 = uniform); their patches hold the neighbouring land cover.
        class_balance: how far balanced sampling evens out the classes (:func:`sampling_weights`): 1 = equal
            shares, 0.5 = shares proportional to the square root of the pixel counts, 0 = proportional.
        guidance_dropout: probability that a training patch's diffusion features ``f_dif`` are set to 0 (a
            modality dropout of the guidance, so that the branches also learn from the spectral / SAR inputs
            alone; prediction always sees the features). 0 = off (default); docs/benchmarks.md, "Training recipe
            options", for what it did under cross-validation.
        auxiliary_dropout: probability that a training patch's auxiliary input ``x_aux`` (SAR, elevation; z-scores)
            is set to 0, its scene mean (a modality dropout, so that the network cannot rest on the auxiliary bands
            alone where a few polygons per class happen to differ there; prediction always sees them). Draws no
            random numbers without an auxiliary modality. docs/benchmarks.md, "SAR in the `fast` profile".
        mix_share, mix_max: share of training patches blended with a patch of another class of the same batch,
            with a weight drawn uniformly from ``[0, mix_max)`` (``mix_max`` < 0.5, so the patch's own class
            dominates and keeps its label): synthetic mixed pixels, as at a beach / water or field / forest
            boundary (:func:`mix_patches`). 0 = off.
        mix_guidance_max: > 0: the diffusion features ``f_dif`` of a mixed patch are blended with their own weight,
            drawn from ``[0, mix_guidance_max)`` (may exceed 0.5), instead of the spectra's: the U-Net's receptive
            field (±13 px) mixes a boundary pixel's features with its neighbours' far more than its own spectrum,
            so the network learns to trust the spectra where the two disagree. 0 = the spectra's weight.
        mix_edge_share: share of the mixed patches whose partner lies across a straight line instead of being
            blended over the whole patch (:func:`edge_weights`): the centre pixel keeps its own spectrum and
            label, pure partner pixels lie 0.5-2.5 px away, as beside a real boundary, which polygons drawn
            inside fields and forests never show. docs/benchmarks.md, "Forest edges that grow into fields".
        mix_edge_transition: width (pixels) over which the diffusion features of a boundary-mixed patch change
            from the patch's own to the partner's (``transition_px`` of :func:`edge_weights`). The ``fast``
            profile uses 13, the U-Net encoder's receptive-field radius (``models.unet.receptive_field_radius``);
            across the scene's own boundaries the features change over about 12 px
            (``benchmarks/edge_profile.py``; docs/benchmarks.md, "How wide a boundary is in the diffusion
            features").
        validation: ``"cv:K"`` (K-fold cross-validation grouped by polygon, then one refit on all polygons),
            ``"holdout:F"`` (a share F of each class's polygons held out, then one refit on all polygons) or
            ``"none"`` (one fit on all polygons, no accuracy); see :func:`parse_validation`.
        cv_block_size: > 0: cross-validation folds grouped by spatial blocks of this many grid pixels instead of
            by polygon (``data.labels.polygon_folds``), so that neighbouring polygons do not leak.
        pseudo_share: > 0: share of the training draws taken from pseudo-labelled pixels (:func:`pseudo_labelled`):
            up to ``pseudo_pixels`` unlabelled pixels drawn at random over the scene (:func:`sample_unlabelled`),
            labelled by a random forest trained on the centre-pixel inputs of the same training pixels where its
            class probability is at least ``pseudo_min_confidence``. 0 = off (the paper's recipe).
        pseudo_min_confidence, pseudo_pixels: see ``pseudo_share``. Each unlabelled pixel costs the memory of a
            labelled one (``max_train_pixels``).
        pseudo_class_balance: ``class_balance`` among the pseudo-labelled pixels (default 0: drawn in proportion
            to their counts, so a class the teacher labels rarely, where it is least reliable, is not drawn up to
            the share of a common one; the polygons' own draws stay balanced).
        readout_margin: after cross-validation (or a hold-out), the final model is read out by the mean of its
            branch heads instead of its fused classifier (or back) when that read-out's pooled held-out OA is at
            least this much higher on the same folds (:func:`choose_readout`); 1 = never (the model's own
            read-out, the paper's Eq. 29). The ``fast`` profile uses 0.01.
        whitewater: > 0: share of the water polygons' pixels covered by drawn foam stripes (surf, breaking waves;
            ``data.whitewater``), whose patches and diffusion features join the training as water pixels (at most
            ``whitewater_pixels``; training only, never held out), and the same share of the dry-sand polygons'
            pixels under swash-zone stripes (wet sand and foam), trained as sand (at most ``whitewater_pixels``
            more). Needs the spectral bands' centre wavelengths (Sentinel-2 band names or wavelength tags) and a
            class whose median spectrum is water. 0 = off (the paper's recipe).
    """

    patch_size: int = 9
    batch_size: int = 64
    epochs: int = 200
    lr: float = 4e-4
    milestones: tuple = (50, 100, 150)
    gamma: float = 0.5
    weight_decay: float = 0.0
    grad_clip: float = 15.0
    max_train_per_class: int = 2000
    max_val_per_class: int = 2000
    validation_fraction: float = 0.3
    pca_components: int = 30
    early_stopping: bool = False
    patience: int = 20
    checkpoint_every: int = 10
    gather_tile: int = 128
    rf_trees: int = 200
    seed: int = 0
    sampling: str = "balanced"
    samples_per_epoch: int = 0
    max_train_pixels: int = 250_000
    augment: bool = True
    spectral_jitter: float = 0.0
    edge_weight: float = 1.0
    class_balance: float = 1.0
    guidance_dropout: float = 0.0
    auxiliary_dropout: float = 0.0
    mix_share: float = 0.0
    mix_max: float = 0.4
    mix_guidance_max: float = 0.0
    mix_edge_share: float = 0.0
    mix_edge_transition: float = 4.0
    edge_radius: int = 2
    validation: str = "cv:5"
    cv_block_size: int = 0
    pseudo_share: float = 0.0
    pseudo_min_confidence: float = 0.9
    pseudo_pixels: int = 20_000
    pseudo_class_balance: float = 0.0
    whitewater: float = 0.0
    whitewater_pixels: int = 2000
    readout_margin: float = 1.0

    def __post_init__(self) -> None:
        if self.patch_size < 1 or self.patch_size % 2 != 1:
            raise EngineError(f"Patch size must be odd, got {self.patch_size}", "Use e.g. 9.")
        check_whitewater(self.whitewater)
        if self.epochs < 1:
            raise EngineError(f"Epochs must be at least 1, got {self.epochs}", "Use e.g. 30 (fast) or 200 (paper).")
        self.milestones = tuple(int(m) for m in self.milestones)
        if self.sampling not in ("balanced", "capped"):
            raise EngineError(f"Unknown sampling {self.sampling!r}", "Use 'balanced' or 'capped'.")
        parse_validation(self.validation)
        check_mixing(self.mix_share, self.mix_max, self.mix_guidance_max)
        if not 0.0 <= float(self.readout_margin) <= 1.0:
            raise EngineError(f"readout_margin must lie in [0, 1], got {self.readout_margin}",
                              "Use e.g. 0.01 (one percentage point of OA), or 1 to keep the model's own read-out.")
        if not float(self.mix_edge_transition) > 0.0:
            raise EngineError(f"mix_edge_transition must be above 0 pixels, got {self.mix_edge_transition}",
                              "Use e.g. 13, the U-Net's receptive-field radius.")
        if not 0.0 <= float(self.mix_edge_share) <= 1.0:
            raise EngineError(f"mix_edge_share must lie in [0, 1], got {self.mix_edge_share}",
                              "Use 1 (every mixed patch a straight boundary), or 0 to blend whole patches.")
        for name in ("guidance_dropout", "auxiliary_dropout"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise EngineError(f"{name} must lie in [0, 1), got {getattr(self, name)}",
                                  "Use e.g. 0.5, or 0 to switch it off.")
        self.pseudo_share = check_pseudo_share(self.pseudo_share)
        if (not 0.0 < self.pseudo_min_confidence <= 1.0 or self.pseudo_pixels < 0
                or not 0.0 <= self.pseudo_class_balance <= 1.0):
            raise EngineError(f"Pseudo-labels need 0 < pseudo_min_confidence <= 1 and pseudo_pixels >= 0, got "
                              f"{self.pseudo_min_confidence} and {self.pseudo_pixels} (pseudo_class_balance "
                              f"{self.pseudo_class_balance}: 0 to 1)",
                              "Use e.g. pseudo_min_confidence=0.9, pseudo_pixels=20000.")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ------------------------------------------------------------------------------------------------------------
# Patch gathering (spec §1.4): tile by tile, features only for the windows that hold labelled pixels
# ------------------------------------------------------------------------------------------------------------
@dataclass
class PatchSet:
    """Gathered patches: ``spec (N, C_spec, P, P)`` float32, ``aux (N, C_aux, P, P)`` float32 or None,
    ``dif (N, C_dif, P, P)`` float16 (raw, unscaled), ``y (N,)`` int64 class index, ``centre (N, C)`` centre-pixel
    spectral + auxiliary inputs (for the random forest)."""

    spec: np.ndarray
    aux: np.ndarray | None
    dif: np.ndarray
    y: np.ndarray
    centre: np.ndarray = field(default=None)

    def split(self, n: int) -> tuple["PatchSet", "PatchSet"]:
        """The first ``n`` patches and the rest (views, no copy)."""
        def part(sl: slice) -> PatchSet:
            return PatchSet(self.spec[sl], None if self.aux is None else self.aux[sl], self.dif[sl], self.y[sl],
                            self.centre[sl])
        return part(slice(0, n)), part(slice(n, len(self.y)))

    def concat(self, other: "PatchSet") -> "PatchSet":
        """These patches followed by ``other``'s (copies)."""
        return PatchSet(np.concatenate([self.spec, other.spec]),
                        None if self.aux is None else np.concatenate([self.aux, other.aux]),
                        np.concatenate([self.dif, other.dif]), np.concatenate([self.y, other.y]),
                        np.concatenate([self.centre, other.centre]))


def split_training_pixels(pixels: Any, config: TrainingConfig, seed: int, reporter: Reporter | None = None
                          ) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
    """Training / validation pixels: split by polygon (``data.labels.split_by_polygon``), then at most
    ``max_train_per_class`` / ``max_val_per_class`` random pixels per class.

    Returns:
        ``(train_idx, val_idx, split report, y (N,) int64 network class index of every labelled pixel)``.
    """
    from .data.labels import split_by_polygon

    rep = ensure(reporter)
    train_idx, val_idx, split_report = split_by_polygon(pixels, config.validation_fraction, seed, reporter=rep)
    rng = np.random.default_rng(seed)
    train_idx = train_idx[cap_per_class(pixels.values[train_idx], config.max_train_per_class, rng)]
    val_idx = val_idx[cap_per_class(pixels.values[val_idx], config.max_val_per_class, rng)] \
        if len(val_idx) else val_idx
    index_of = {int(c.value): i for i, c in enumerate(pixels.classes)}
    y_all = np.array([index_of[int(v)] for v in pixels.values], np.int64)
    rep.info(f"{len(train_idx)} training and {len(val_idx)} validation pixels used "
             f"(at most {config.max_train_per_class} / {config.max_val_per_class} per class)")
    return train_idx, val_idx, split_report, y_all


def gather_patches(stack: Any, rows: np.ndarray, cols: np.ndarray, y: np.ndarray, extractor: FeatureExtractor,
                   inputs: ClassifierInputs, patch_size: int, tile: int = 128, reporter: Reporter | None = None,
                   stage: str = "gather") -> tuple[PatchSet, np.ndarray, np.ndarray]:
    """Gather ``P x P`` patches of the network inputs around pixels (grid row/col), tile by tile.

    For each ``tile x tile`` cell of the grid holding requested pixels, reads the bounding box of those pixels
    plus the patch margin and the diffusion halo once, normalises the inputs and computes the diffusion
    features of that box only. Pixels at the scene border get zero-padded patches (spec §1.4).

    Returns:
        ``(patches, feat_min (C_dif,), feat_max (C_dif,))``: the raw features' per-channel min / max over the
        valid pixels of the gathered windows (used to scale them to [0, 1]).
    """
    rep = ensure(reporter)
    n = len(rows)
    P = int(patch_size)
    m = P // 2
    Cd = extractor.channels
    spec_out = aux_out = None
    dif_out = np.zeros((n, Cd, P, P), np.float16)
    fmin = torch.full((Cd,), float("inf"))
    fmax = torch.full((Cd,), float("-inf"))
    groups = gather_windows(rows, cols, P, tile, stack.grid.width)
    task = rep.task(stage, len(groups), unit="tile")
    try:
        for idx, window in groups:
            r, c = rows[idx], cols[idx]
            r0, c0 = window.row_off, window.col_off
            spec, aux, f, valid_np = read_window(stack, extractor, inputs, window)
            f = f.cpu()                                                   # (Cd, h, w)
            valid = torch.from_numpy(valid_np)
            if valid.any():
                fv = f[:, valid]
                fmin = torch.minimum(fmin, fv.min(dim=1).values)
                fmax = torch.maximum(fmax, fv.max(dim=1).values)
            f = f * valid.to(f.dtype)
            ps, pa, pf = WindowInputs(spec, aux, f.numpy(), valid_np).patches(r - r0, c - c0, P)
            if spec_out is None:
                spec_out = np.zeros((n,) + ps.shape[1:], np.float32)
                if aux is not None:
                    aux_out = np.zeros((n, aux.shape[0], P, P), np.float32)
            spec_out[idx] = ps
            if aux is not None:
                aux_out[idx] = pa
            dif_out[idx] = pf.astype(np.float16)
            task.update(1)
    finally:
        task.close()
    centre = spec_out[:, :, m, m]
    if aux_out is not None:
        centre = np.concatenate([centre, aux_out[:, :, m, m]], axis=1)
    fmin = torch.where(torch.isfinite(fmin), fmin, torch.zeros_like(fmin))
    fmax = torch.where(torch.isfinite(fmax), fmax, torch.ones_like(fmax))
    return PatchSet(spec_out, aux_out, dif_out, y.astype(np.int64), centre), fmin, fmax


def check_whitewater(value: float) -> float:
    """``value`` as a float when it is a valid whitewater share (``TrainingConfig.whitewater``), 0 to 1.

    Raises:
        EngineError: outside [0, 1]."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise EngineError(f"The whitewater share must lie between 0 and 1, got {value}",
                          "Use e.g. 0.5 (half of each water polygon under drawn foam stripes), or 0 for none.")
    return value


def gather_whitewater(stack: Any, pixels: Any, extractor: FeatureExtractor, inputs: ClassifierInputs,
                      config: TrainingConfig, reporter: Reporter | None = None
                      ) -> tuple[PatchSet, np.ndarray] | None:
    """Patches of the surf (``config.whitewater``; ``data.whitewater``): foam-striped water pixels, labelled water,
    and, where a class is dry sand, the swash zone (wet sand and foam stripes) over its pixels, labelled sand.

    Finds the water and sand classes from the median raw spectra of up to 500 labelled pixels per class, draws the
    stripes over their polygons, and gathers up to ``config.whitewater_pixels`` striped pixels of each kind through
    a stack whose reads carry the stripes, so that their diffusion features see them too.

    Returns:
        ``(patches, polygon_ids (M,))`` (each pixel's source polygon, so that cross-validation keeps it out of
        training when that polygon is held out), or None (off, no band wavelengths, no water class); the log
        says which.
    """
    from .data.labels import spectra_at
    from .data.whitewater import plan_whitewater, reflectance_scale, sand_classes, water_classes
    from .io.schema import Band

    rep = ensure(reporter)
    if not config.whitewater:
        return None
    wl = [Band.of_stack_band(0, stack.modalities[0].kind, i).wavelength_nm for i in stack.band_info[0]]
    if any(w is None for w in wl):
        rep.info("Whitewater: off (the spectral bands' centre wavelengths are not known: name Sentinel-2 bands B02 "
                 "... or tag them with a wavelength)")
        return None
    y = pixels.class_index()
    rng = np.random.default_rng(config.seed)
    probe = np.concatenate([rng.permutation(np.flatnonzero(y == k))[:500] for k in range(len(pixels.classes))])
    ok, values = spectra_at(stack, pixels.rows[probe], pixels.cols[probe])
    # a class without a valid probed pixel gets NaN: never water, and left out of the reflectance scale
    medians = np.stack([np.median(values[ok & (y[probe] == k)], axis=0) if np.any(ok & (y[probe] == k))
                        else np.full(values.shape[1], np.nan, np.float32) for k in range(len(pixels.classes))])
    scale = reflectance_scale(medians)
    water = water_classes(medians, wl, scale)
    if not water:
        rep.info("Whitewater: off (no class has the spectrum of water: median NDWI above 0.2, or NIR and SWIR "
                 "below 5 % reflectance)")
        return None
    foam = plan_whitewater(pixels.rows, pixels.cols, y, pixels.polygon_ids, water, wl, scale, config.whitewater,
                           config.seed)
    parts = [] if foam is None else [_gather_stripes(stack, foam, extractor, inputs, config, rep,
                                                     "foam stripes", pixels.classes)]
    sand = sand_classes(medians, wl, scale, water)
    swash = _gather_swash(stack, pixels, sand, wl, scale, extractor, inputs, config, rep) if sand else None
    if swash is not None:
        parts.append(swash)
    if not parts:
        return None
    patches = parts[0][0] if len(parts) == 1 else parts[0][0].concat(parts[1][0])
    return patches, np.concatenate([p[1] for p in parts])


def _gather_stripes(stack: Any, stripes: Any, extractor: FeatureExtractor, inputs: ClassifierInputs,
                    config: TrainingConfig, rep: Reporter, what: str, classes: Sequence[Any]
                    ) -> tuple[PatchSet, np.ndarray]:
    """Patches of up to ``config.whitewater_pixels`` pixels of a ``data.whitewater.Whitewater``, read through a stack
    that carries every stripe, and their polygon ids; logged as ``what``."""
    from .data.whitewater import WhitewaterStack

    pick = stripes.sample(config.whitewater_pixels, config.seed)
    names = ", ".join(classes[int(k)].name for k in np.unique(stripes.class_index))
    rep.info(f"Whitewater: {what} over {config.whitewater:.0%} of the {names} polygons; {len(pick)} of their "
             f"{len(stripes)} striped pixels join the training as {names}")
    patches, _, _ = gather_patches(WhitewaterStack(stack, stripes), stripes.rows[pick], stripes.cols[pick],
                                   stripes.class_index[pick], extractor, inputs, config.patch_size, config.gather_tile,
                                   rep, stage="gather whitewater")
    return patches, stripes.polygon_ids[pick]


def _gather_swash(stack: Any, pixels: Any, sand: Sequence[int], wl: Sequence[float], scale: float,
                  extractor: FeatureExtractor, inputs: ClassifierInputs, config: TrainingConfig, rep: Reporter
                  ) -> tuple[PatchSet, np.ndarray] | None:
    """The swash zone over the ``sand`` classes' pixels (``data.whitewater.plan_swash``), gathered as sand."""
    from .data.labels import spectra_at
    from .data.whitewater import plan_swash

    y = pixels.class_index()
    sel = np.flatnonzero(np.isin(y, list(sand)))
    ok, values = spectra_at(stack, pixels.rows[sel], pixels.cols[sel])
    # invalid pixels get 0: plan_swash adds nothing there (and the stack's reads mask them anyway)
    swash = plan_swash(pixels.rows[sel], pixels.cols[sel], y[sel], pixels.polygon_ids[sel],
                       np.where(ok[:, None], values, 0.0), wl, scale, config.whitewater, config.seed + 1)
    if swash is None:
        return None
    return _gather_stripes(stack, swash, extractor, inputs, config, rep, "swash-zone stripes (wet sand and foam)",
                           pixels.classes)


#: training's patch gathering runs the U-Net encoder in OpenVINO (``models.inference.openvino_extractor``) when
#: the windows it reads hold at least this many pixels: on the 2-core CPU the eager encoder takes about 45 µs a
#: pixel on these small windows, OpenVINO's 4-9x less, and converting it 1.5 s
GATHER_OPENVINO_MIN_PIXELS = 50_000


def gather_windows(rows: np.ndarray, cols: np.ndarray, patch_size: int, tile: int, grid_width: int
                   ) -> list[tuple[np.ndarray, Window]]:
    """The windows :func:`gather_patches` reads: for each ``tile x tile`` cell of the grid holding requested
    pixels, ``(indices of those pixels (n,), their bounding box grown by the patch margin P // 2)``; the reader
    adds the diffusion halo."""
    m = int(patch_size) // 2
    key = (rows // tile).astype(np.int64) * (grid_width // tile + 1) + cols // tile
    order = np.argsort(key, kind="stable")
    ks = key[order]
    bounds = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1], True])
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        idx = order[a:b]
        r, c = rows[idx], cols[idx]
        r0, c0 = int(r.min()) - m, int(c.min()) - m
        out.append((idx, Window(r0, c0, int(r.max()) - r0 + m + 1, int(c.max()) - c0 + m + 1)))
    return out


def cap_per_class(y: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``cap`` random samples per class value in ``y`` (sorted)."""
    keep = []
    for v in np.unique(y):
        idx = np.flatnonzero(y == v)
        if cap and len(idx) > cap:
            idx = rng.choice(idx, cap, replace=False)
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


# ------------------------------------------------------------------------------------------------------------
# Training loop (spec §5.1)
# ------------------------------------------------------------------------------------------------------------
def patch_tensors(ps: PatchSet, model: TrainedModel) -> dict[str, torch.Tensor]:
    """A patch set as training tensors: spectral / auxiliary as they are, diffusion features scaled to [0, 1]
    with the model's per-channel min / max (float16), class indices ``y``."""
    lo, hi = model.feat_min[:, None, None], model.feat_max[:, None, None]
    span = (hi - lo).clamp_min(1e-6)
    dif = torch.from_numpy(ps.dif)
    nonzero = (dif != 0).any(dim=1, keepdim=True)   # zero-padded / invalid pixels stay 0 after scaling
    scaled = torch.empty(dif.shape, dtype=torch.float16)
    for i in range(0, len(dif), 2048):
        d = dif[i:i + 2048].float()
        scaled[i:i + 2048] = (((d - lo) / span) * nonzero[i:i + 2048]).half()
    return {"spec": torch.from_numpy(ps.spec), "aux": None if ps.aux is None else torch.from_numpy(ps.aux),
            "dif": scaled, "y": torch.from_numpy(ps.y)}


def patch_view(data: dict, index: np.ndarray, weights: np.ndarray | None = None) -> dict:
    """A subset of a patch-tensor dict (:func:`patch_tensors`) by row ``index`` without copying the patches;
    optional sampling ``weights`` aligned with ``index`` (:func:`sampling_weights`)."""
    out = {**data, "index": torch.as_tensor(np.asarray(index, np.int64))}
    out["weights"] = None if weights is None else torch.as_tensor(np.asarray(weights, np.float64))
    return out


def view_labels(data: dict) -> np.ndarray:
    """int64 ``(N,)`` class indices of a patch dict or :func:`patch_view`."""
    y = data["y"] if data.get("index") is None else data["y"][data["index"]]
    return y.numpy()


def _batch(data: dict, idx: torch.Tensor, device: torch.device, config: "TrainingConfig | None" = None,
           gen: torch.Generator | None = None) -> tuple:
    """``(x_spec, x_aux, f_dif, y)`` of patches ``idx`` on ``device``; with a ``config``, augmented as it says
    (training batches); without, as stored (evaluation)."""
    if data.get("index") is not None:
        idx = data["index"][idx]
    xs, fd, y = data["spec"][idx], data["dif"][idx].float(), data["y"][idx]
    xa = None if data["aux"] is None else data["aux"][idx]
    if config is not None:
        if config.augment or config.spectral_jitter:
            xs, xa, fd = augment_patches(xs, xa, fd, gen, config.spectral_jitter, flips=config.augment)
        if config.mix_share:
            xs, xa, fd = mix_patches(xs, xa, fd, y, gen, config.mix_share, config.mix_max, config.mix_guidance_max,
                                     config.mix_edge_share, config.mix_edge_transition)
        if config.guidance_dropout:
            fd = _drop_whole_patches(fd, config.guidance_dropout, gen)
        if config.auxiliary_dropout and xa is not None:
            xa = _drop_whole_patches(xa, config.auxiliary_dropout, gen)
    return (xs.to(device), None if xa is None else xa.to(device), fd.to(device), y.to(device))


def _drop_whole_patches(x: torch.Tensor, p: float, gen: torch.Generator | None) -> torch.Tensor:
    """Modality dropout of one input ``x (N, C, P, P)``: each patch is set to 0 as a whole (every channel and
    pixel) with probability ``p``, else kept unchanged (``TrainingConfig.guidance_dropout`` /
    ``auxiliary_dropout``). Draws ``N`` random numbers from ``gen``."""
    return x * (torch.rand(len(x), 1, 1, 1, generator=gen) >= p)


@torch.no_grad()
def evaluate(net: GroupNetwork, data: dict, device: torch.device, batch_size: int = 512
             ) -> tuple[np.ndarray, float]:
    """Predicted class indices ``(N,)`` and the mean cross-entropy of the predicted class probabilities
    (``GroupNetwork.log_probabilities``) on a patch set."""
    net.eval()
    preds, loss_sum, n = [], 0.0, len(view_labels(data))
    for i in range(0, n, batch_size):
        idx = torch.arange(i, min(i + batch_size, n))
        xs, xa, fd, y = _batch(data, idx, device)
        logp = net.log_probabilities(net(xs, xa, fd))
        loss_sum += float(torch.nn.functional.nll_loss(logp, y, reduction="sum"))
        preds.append(logp.argmax(1).cpu())
    return (torch.cat(preds).numpy() if preds else np.zeros(0, np.int64)), loss_sum / max(n, 1)


class _LossStep(torch.nn.Module):
    """``forward(x_spec, x_aux, f_dif, y) -> loss`` (Eq. 29) of a group network, one module for DDP."""

    def __init__(self, net: GroupNetwork):
        super().__init__()
        self.net = net

    def forward(self, x_spec, x_aux, f_dif, y):
        return self.net.loss(self.net(x_spec, x_aux, f_dif), y).loss


def train_network(net: GroupNetwork, train: dict, val: dict | None, config: TrainingConfig, device: torch.device,
                  reporter: Reporter | None = None, checkpoint_path: str | None = None, resume: bool = False,
                  carry: tuple[dict, dict] | None = None) -> list[dict]:
    """Train the group network with Adam + MultiStepLR and the mutual-learning loss (spec §5.1, Eqs. 25-29).

    A ``models.network.GroupEnsemble`` is trained member by member (:func:`train_members`); ``carry`` =
    ``(tensors, state)`` that every checkpoint of this network also holds (the finished members' weights).

    Validation (polygon-held-out) after every epoch: loss and OA. The final model is the last epoch, unless
    ``config.early_stopping``: then the weights of the epoch with the lowest validation loss are restored
    (selection on validation data, never on test data). Checkpoints (safetensors: network + optimiser tensors,
    JSON epoch / history / RNG state) every ``checkpoint_every`` epochs, on cancel and after the last epoch (the
    caller removes it once the model file is written); ``resume`` continues.

    Returns:
        history: one dict per epoch ``{"epoch", "loss", "val_loss", "val_oa", "lr", "seconds"}``.
    """
    from .distributed import info as dist_info
    from .distributed import wrap

    if isinstance(net, GroupEnsemble):
        return train_members(net, train, val, config, device, reporter, checkpoint_path, resume)
    rep = ensure(reporter)
    dinfo = dist_info()          # under torchrun: each process takes its share of every batch (DDP)
    net.to(device)
    model = wrap(_LossStep(net), device)   # loss inside forward: DDP sees the temperature layers used there
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(config.milestones), gamma=config.gamma)
    gen = torch.Generator().manual_seed(config.seed + 17)
    n = epoch_samples(config, view_labels(train)) if train.get("weights") is not None else len(view_labels(train))
    n_batches = max(math.ceil(n / config.batch_size), 1)
    history: list[dict] = []
    epoch0 = 0
    best = (float("inf"), None)
    if resume and checkpoint_path:
        epoch0, history = _resume(checkpoint_path, net, opt, sched, gen, device)
        rep.info(f"Resuming supervised training after epoch {epoch0}")
    task = rep.task("train", config.epochs * n_batches, unit="batch")
    task.n = min(epoch0 * n_batches, task.total)

    def save(epoch: int) -> None:
        if checkpoint_path and dinfo.is_main:
            tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
            tensors["rng.torch"] = gen.get_state().clone()
            tensors.update(carry[0] if carry else {})
            save_checkpoint(checkpoint_path, "train", tensors, opt, {"epoch": epoch, "history": history,
                                                                     "scheduler": sched.state_dict(),
                                                                     **(carry[1] if carry else {})})

    epoch = epoch0
    try:
        for epoch in range(epoch0, config.epochs):
            t0 = time.monotonic()
            loss_sum = _train_epoch(model, net, opt, train, config, device, gen, dinfo,
                                    lambda loss, e=epoch + 1: task.update(1, epoch=e, loss=loss))
            sched.step()
            rec = {"epoch": epoch + 1, "loss": loss_sum / max(n, 1), "lr": opt.param_groups[0]["lr"]}
            if val is not None and len(view_labels(val)):
                pred, vloss = evaluate(net, val, device)
                rec["val_loss"] = vloss
                rec["val_oa"] = float(np.mean(pred == view_labels(val)))
                if config.early_stopping and vloss < best[0]:
                    best = (vloss, {k: v.detach().clone() for k, v in net.state_dict().items()})
            rec["seconds"] = time.monotonic() - t0
            history.append(rec)
            rep.metric("epoch", epoch + 1, loss=rec["loss"], val_loss=rec.get("val_loss"), val_oa=rec.get("val_oa"))
            if config.checkpoint_every and (epoch + 1) % config.checkpoint_every == 0 and epoch + 1 < config.epochs:
                save(epoch + 1)
            if (config.early_stopping and val is not None and len(history) > config.patience
                    and min(h.get("val_loss", np.inf) for h in history[-config.patience:]) > best[0]):
                rep.info(f"Early stopping after epoch {epoch + 1}: no lower validation loss for "
                         f"{config.patience} epochs")
                break
    except Cancelled:
        save(epoch)
        raise
    finally:
        task.close()
    if config.early_stopping and best[1] is not None:
        net.load_state_dict(best[1])
        best_epoch = int(np.argmin([h.get("val_loss", np.inf) for h in history])) + 1
        rep.info(f"Early stopping: using the weights of epoch {best_epoch} (lowest validation loss)")
    # the trained weights stay on disk until the caller has written the model file (and removes this checkpoint):
    # a cancel between here and then resumes straight to writing (epoch = config.epochs: nothing left to train)
    save(config.epochs)
    net.eval()
    return history


def member_seed(seed: int, index: int) -> int:
    """Training seed of ensemble member ``index`` (0-based): member 0 draws its batches and augmentations with
    ``seed`` itself, as a single network of that seed does; the others' seeds are spread apart."""
    return int(seed) + 7919 * int(index)


def train_members(ens: GroupEnsemble, train: dict, val: dict | None, config: TrainingConfig, device: torch.device,
                  reporter: Reporter | None = None, checkpoint_path: str | None = None, resume: bool = False
                  ) -> list[dict]:
    """Train each member of a ``models.network.GroupEnsemble`` in turn with :func:`train_network` on the same
    patches, member ``i`` with seed :func:`member_seed` ``(config.seed, i)`` (its sampling and augmentation draws;
    the initial weights were drawn when the ensemble was built, dropout draws from torch's global generator).

    One checkpoint serves the whole ensemble: while member ``i`` trains it holds member ``i``'s state as a single
    network's and the finished members' weights (``member<j>.*``), with ``"member": i``; ``resume`` loads the
    finished members and continues member ``i`` where it stopped.

    Returns:
        history: one dict per epoch, the members' mean ``loss`` / ``val_loss`` / ``val_oa`` and summed ``seconds``.
    """
    rep = ensure(reporter)
    start, histories = 0, []
    resume = bool(resume and checkpoint_path and os.path.exists(checkpoint_path))
    if resume:
        tensors, state = load_checkpoint(checkpoint_path, "train")
        start, histories = int(state.get("member", 0)), list(state.get("member_histories", []))
        for j in range(start):
            prefix = f"member{j}."
            ens.members[j].load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
    for i in range(start, len(ens.members)):
        rep.info(f"Ensemble member {i + 1} of {len(ens.members)} (seed {member_seed(config.seed, i)})")
        done = {f"member{j}.{k}": v.detach().cpu() for j in range(i) for k, v in ens.members[j].state_dict().items()}
        histories.append(train_network(ens.members[i], train, val,
                                       dataclasses.replace(config, seed=member_seed(config.seed, i)), device, rep,
                                       checkpoint_path, resume and i == start,
                                       carry=(done, {"member": i, "member_histories": histories})))
    ens.eval()
    return _mean_history(histories)


def _mean_history(histories: Sequence[list[dict]]) -> list[dict]:
    """Per-epoch mean of the members' histories (the epochs all of them ran), ``seconds`` summed."""
    out = []
    for recs in zip(*histories):
        rec = dict(recs[0])
        for key in ("loss", "val_loss", "val_oa"):
            values = [r[key] for r in recs if r.get(key) is not None]
            if values:
                rec[key] = float(np.mean(values))
        rec["seconds"] = float(sum(r.get("seconds", 0.0) for r in recs))
        out.append(rec)
    return out


def _train_epoch(model: torch.nn.Module, net: GroupNetwork, opt: torch.optim.Optimizer, train: dict,
                 config: TrainingConfig, device: torch.device, gen: torch.Generator, dinfo: Any,
                 on_batch: Any) -> float:
    """One epoch over shuffled batches (each process its share under torchrun); returns the summed loss
    (loss x batch size). ``on_batch(loss)`` is called after every optimiser step (progress, cancellation)."""
    net.train()
    if train.get("weights") is not None:     # class-balanced draws from every labelled pixel
        n = epoch_samples(config, view_labels(train))
        perm = torch.multinomial(train["weights"], n, replacement=True, generator=gen)
    else:
        n = len(view_labels(train))
        perm = torch.randperm(n, generator=gen)
    loss_sum = 0.0
    for bi in range(max(math.ceil(n / config.batch_size), 1)):
        idx = perm[bi * config.batch_size:(bi + 1) * config.batch_size]
        if dinfo.enabled and len(idx) >= dinfo.world:
            idx = idx[dinfo.rank::dinfo.world]
        if len(idx) == 0:
            continue
        if len(idx) == 1:          # BatchNorm needs two samples: reuse the last batch's neighbour
            idx = torch.cat([idx, perm[:1]])
        xs, xa, fd, y = _batch(train, idx, device, config, gen)
        loss = model(xs, xa, fd, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        opt.step()
        loss_sum += float(loss.detach()) * len(idx)
        on_batch(float(loss.detach()))
    return loss_sum


def _resume(path, net, opt, sched, gen, device) -> tuple[int, list]:
    """Load a training checkpoint into the network, optimiser, scheduler and generator: ``(epoch, history)``."""
    tensors, state = load_checkpoint(path, "train")
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    load_optimizer(opt, tensors, state["optimizer"], device)
    sched.load_state_dict(state["scheduler"])
    gen.set_state(tensors["rng.torch"])
    return int(state["epoch"]), state["history"]


# ------------------------------------------------------------------------------------------------------------
# Baseline and metrics
# ------------------------------------------------------------------------------------------------------------
def validate(net: GroupNetwork, val: dict, train_ps: PatchSet, val_ps: PatchSet, classes: Sequence[Any],
             config: TrainingConfig, seed: int, device: torch.device, is_main: bool = True,
             reporter: Reporter | None = None) -> tuple[dict | None, dict | None, dict]:
    """Accuracy of the trained network on the held-out polygons and of the random-forest baseline.

    Returns:
        ``(accuracy_metrics or None, baseline accuracy_metrics or None, {"oa", "aa", "kappa", "rf_*"})``; both are
        None without validation pixels (a warning says why).
    """
    rep = ensure(reporter)
    values = [int(c.value) for c in classes]
    names = [c.name for c in classes]
    accuracy = baseline = None
    if len(val_ps.y):
        pred, _ = evaluate(net, val, device)
        accuracy = accuracy_metrics(confusion_matrix(val_ps.y, pred, list(range(len(classes)))), values, names)
        if config.rf_trees and is_main:
            rep.info("Random-forest baseline on the same training pixels")
            baseline = random_forest_baseline(train_ps, val_ps, len(classes), config.rf_trees, seed, names)
            baseline["labels"] = values
    else:
        rep.warning("No validation polygons (every class has a single polygon): no accuracy is reported. "
                    "Digitize at least two polygons per class.")
    metrics = {}
    if accuracy:
        metrics.update(oa=accuracy["oa"], aa=accuracy["aa"], kappa=accuracy["kappa"])
        rep.metric("val_oa", accuracy["oa"], aa=accuracy["aa"], kappa=accuracy["kappa"], model="BDGF")
    if baseline:
        metrics.update(rf_oa=baseline["oa"], rf_aa=baseline["aa"], rf_kappa=baseline["kappa"])
        rep.metric("rf_val_oa", baseline["oa"], aa=baseline["aa"], kappa=baseline["kappa"], model="RandomForest")
    return accuracy, baseline, metrics


def random_forest_baseline(train: PatchSet, val: PatchSet, n_classes: int, trees: int = 200, seed: int = 0,
                           names: Sequence[str] | None = None) -> dict:
    """Random forest (scikit-learn) on the centre-pixel spectral + auxiliary inputs of the same training pixels,
    evaluated on the same validation pixels. Returns ``accuracy_metrics`` of the validation predictions plus
    ``seconds``."""
    from sklearn.ensemble import RandomForestClassifier

    t0 = time.monotonic()
    rf = RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=-1)
    rf.fit(train.centre, train.y)
    pred = rf.predict(val.centre)
    labels = list(range(n_classes))
    acc = accuracy_metrics(confusion_matrix(val.y, pred, labels), labels, names)
    acc["seconds"] = time.monotonic() - t0
    return acc


# ------------------------------------------------------------------------------------------------------------
# Validation modes, class-balanced sampling, augmentation (issue: training that beats the random forest)
# ------------------------------------------------------------------------------------------------------------
def d4_transform(x: torch.Tensor | None, k: int) -> torch.Tensor | None:
    """Symmetry ``k`` (0..7) of the square on the last two axes: rotation by ``(k mod 4)·90°``, after a
    left-right flip when ``k >= 4``. ``k = 0`` is the identity; the centre pixel of an odd patch stays put."""
    if x is None:
        return None
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1)) if k % 4 else x


def augment_patches(xs: torch.Tensor, xa: torch.Tensor | None, fd: torch.Tensor, gen: torch.Generator,
                    jitter: float = 0.0, flips: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Random flip/rotation per patch (``flips``: one of the 8 symmetries, the same for ``x_spec (B,C_spec,P,P)``,
    ``x_aux (B,C_aux,P,P)`` and ``f_dif (B,C_dif,P,P)``), plus an optional spectral gain/offset jitter of std
    ``jitter`` per patch and band. The centre pixel, hence the label, is unchanged."""
    ks = torch.randint(0, 8 if flips else 1, (xs.shape[0],), generator=gen)
    xs, fd = xs.clone(), fd.clone()
    xa = None if xa is None else xa.clone()
    for k in range(1, 8):
        m = (ks == k).to(xs.device)
        if bool(m.any()):
            xs[m], fd[m] = d4_transform(xs[m], k), d4_transform(fd[m], k)
            if xa is not None:
                xa[m] = d4_transform(xa[m], k)
    if jitter:
        b, c = xs.shape[:2]
        gain = 1.0 + jitter * torch.randn(b, c, 1, 1, generator=gen)
        offset = jitter * torch.randn(b, c, 1, 1, generator=gen)
        xs = xs * gain.to(xs.device) + offset.to(xs.device)
    return xs, xa, fd


def check_mixing(share: float, max_weight: float, guidance_max: float = 0.0) -> None:
    """Raise EngineError unless ``0 <= share <= 1``, ``0 <= max_weight < 0.5`` and ``0 <= guidance_max < 1``
    (:func:`mix_patches`)."""
    if not 0.0 <= max_weight < 0.5 or not 0.0 <= share <= 1.0:
        raise EngineError(f"Patch mixing needs 0 <= mix_max < 0.5 and 0 <= mix_share <= 1, got mix_max={max_weight}, "
                          f"mix_share={share}", "Use e.g. mix_share=0.5, mix_max=0.4: below 0.5 the label still holds.")
    if not 0.0 <= guidance_max < 1.0:
        raise EngineError(f"Patch mixing needs 0 <= mix_guidance_max < 1, got mix_guidance_max={guidance_max}",
                          "Use e.g. 0.6, or 0 to blend the diffusion features with the spectra's weight.")


def mix_patches(xs: torch.Tensor, xa: torch.Tensor | None, fd: torch.Tensor, y: torch.Tensor,
                gen: torch.Generator | None, share: float, max_weight: float, guidance_max: float = 0.0,
                edge_share: float = 0.0, edge_transition: float = 4.0
                ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Synthetic mixed pixels: a share of the patches blended with a patch of another class.

    Each patch ``i`` is paired with patch ``j`` of a random permutation of the batch; where ``y[j] != y[i]`` and a
    Bernoulli(``share``) draw says so, every input becomes ``(1 - w) x_i + w x_j`` with ``w ~ U(0, max_weight)``,
    the same ``w`` for ``x_spec (B,C_spec,P,P)`` and ``x_aux (B,C_aux,P,P)``, and for ``f_dif (B,C_dif,P,P)``
    unless ``guidance_max > 0``: then ``f_dif`` gets its own weight ``w_dif ~ U(0, guidance_max)``. Labels are
    unchanged: with ``max_weight < 0.5`` the patch's own class still dominates every pixel's spectrum. Linear
    mixing is the linear spectral mixture model of reflectance at sub-pixel boundaries (z-scoring is affine, so a
    mixture of z-scored reflectance is the z-score of the mixture); for the diffusion features it is an
    approximation. The features come from a U-Net encoder that sees ±13 px (spec §2.3,
    ``models.unet.receptive_field_radius``), so near a boundary they mix the neighbouring land cover far more than
    the pixel's own spectrum does: a ``w_dif`` beyond 0.5 shows the network such pixels, whose label is the
    spectrum's (docs/benchmarks.md, "Training recipe options"). With ``edge_share > 0`` that share of the blended
    patches takes per-pixel weights instead, ``(B, 1, P, P)`` from :func:`edge_weights`: the partner across a
    straight line, the centre pixel pure, the diffusion features changing over ``edge_transition`` px
    (docs/benchmarks.md, "Forest edges that grow into fields").

    Raises:
        EngineError: ``max_weight`` outside ``[0, 0.5)``, ``share`` outside ``[0, 1]`` or ``guidance_max`` outside
            ``[0, 1)``.
    """
    check_mixing(share, max_weight, guidance_max)
    n = xs.shape[0]
    partner = torch.randperm(n, generator=gen)
    chosen = (torch.rand(n, generator=gen) < share) & (y[partner] != y)
    w = torch.rand(n, generator=gen) * max_weight * chosen
    w_dif = torch.rand(n, generator=gen) * guidance_max * chosen if guidance_max else w
    p = xs.shape[-1]
    w, w_dif = w.view(n, 1, 1, 1).expand(n, 1, p, p).clone(), w_dif.view(n, 1, 1, 1).expand(n, 1, p, p).clone()
    if edge_share:
        edge = chosen & (torch.rand(n, generator=gen) < edge_share)
        ws, wf = edge_weights(n, p, gen, edge_transition)
        w[edge], w_dif[edge] = ws[edge], wf[edge]

    def blend(x: torch.Tensor | None, weight: torch.Tensor) -> torch.Tensor | None:
        if x is None:
            return None
        return x + weight.to(x.device, x.dtype) * (x[partner] - x)
    return blend(xs, w), blend(xa, w), blend(fd, w_dif)


def edge_weights(n: int, patch: int, gen: torch.Generator | None, transition_px: float = 4.0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Partner weights of a straight boundary through each of ``n`` patches of ``patch x patch`` px.

    A line at a random angle and at ``d ~ U(0.5, patch/2)`` px from the centre pixel's centre; the partner covers
    the far side. Spectral weight ``clip(u - d + 0.5, 0, 1)`` (``u``: distance along the line's normal, pixels):
    pure partner pixels beyond the line, a mixed pixel on it, the centre pixel pure (so its label holds).
    Diffusion-feature weight ``clip((u - d) / transition_px + 0.5, 0, 1)``: the U-Net sees ±13 px, so features
    change over several pixels around a boundary and the centre's carry some of the partner.

    Returns:
        ``(w_spec, w_dif)``, each float32 ``(n, 1, patch, patch)`` in ``[0, 1]``.
    """
    theta = torch.rand(n, generator=gen) * (2 * math.pi)
    d = 0.5 + torch.rand(n, generator=gen) * (patch / 2 - 0.5)
    c = torch.arange(patch, dtype=torch.float32) - (patch - 1) / 2
    u = (c.view(1, 1, patch) * torch.cos(theta).view(n, 1, 1) + c.view(1, patch, 1) * torch.sin(theta).view(n, 1, 1)
         - d.view(n, 1, 1))
    return (u + 0.5).clamp(0, 1).unsqueeze(1), (u / transition_px + 0.5).clamp(0, 1).unsqueeze(1)


def edge_pixels(rows: np.ndarray, cols: np.ndarray, polygon_ids: np.ndarray, radius: int = 2) -> np.ndarray:
    """bool ``(N,)``: True for labelled pixels with a pixel within ``radius`` (Chebyshev distance, grid pixels)
    that is not a labelled pixel of the same polygon, i.e. whose patch reaches the polygon's edge."""
    n = len(rows)
    if n == 0:
        return np.zeros(0, bool)
    r = int(radius)
    width = int(cols.max()) + 2 * r + 2
    key = (rows.astype(np.int64) + r) * width + cols.astype(np.int64) + r
    order = np.argsort(key)
    ks, ps = key[order], polygon_ids[order]
    edge = np.zeros(n, bool)
    for dr in range(-r, r + 1):
        for dc in range(-r, r + 1):
            if dr or dc:
                q = key + dr * width + dc
                i = np.clip(np.searchsorted(ks, q), 0, n - 1)
                edge |= ~((ks[i] == q) & (ps[i] == polygon_ids))
    return edge


#: trees of the random forest that gives the pseudo-labels: fixed (not ``rf_trees``), so that every torchrun
#: process fits the same forest, whether or not it reports the baseline
PSEUDO_TREES = 100


def check_pseudo_share(value: float) -> float:
    """``value`` as a float when it is a valid pseudo-label share (``TrainingConfig.pseudo_share``), 0 to < 1.

    Raises:
        EngineError: outside [0, 1); the message names the value and ``--pseudo-labels``."""
    v = float(value)
    if not 0.0 <= v < 1.0:
        raise EngineError(f"The pseudo-label share must be at least 0 and below 1, got {value}",
                          "Use e.g. --pseudo-labels 0.7 (70 % of the training draws), or 0 for none.")
    return v


def sample_unlabelled(grid_shape: tuple[int, int], window: tuple[int, int, int, int] | None, rows: np.ndarray,
                      cols: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` grid pixels drawn uniformly at random without replacement from the grid (``(height, width)``)
    or from ``window`` ``(row_off, col_off, height, width)``, none of them a labelled pixel ``(rows, cols)``.

    Returns int32 ``(rows (M,), cols (M,))``, row-major sorted, ``M <= n`` (validity is not checked here:
    ``data.labels.valid_at``)."""
    r0, c0, h, w = (0, 0, *grid_shape) if window is None else window
    width = int(grid_shape[1])
    total = int(h) * int(w)
    if n <= 0 or total <= 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    flat = np.random.default_rng(seed).choice(total, size=min(total, int(n) + len(rows)), replace=False)
    rr, cc = r0 + flat // w, c0 + flat % w
    free = ~np.isin(rr.astype(np.int64) * width + cc, rows.astype(np.int64) * width + cols)
    rr, cc = rr[free][:n], cc[free][:n]
    order = np.lexsort((cc, rr))
    return rr[order].astype(np.int32), cc[order].astype(np.int32)


def pseudo_labelled(view: dict, unlabelled: dict, centre: np.ndarray, teacher: Any, config: "TrainingConfig",
                    reporter: Reporter | None = None) -> dict:
    """A training view (:func:`patch_view` with sampling weights) extended by pseudo-labelled pixels.

    The ``teacher`` (a scikit-learn classifier fitted on the centre-pixel inputs of the view's labelled pixels,
    class indices as labels) predicts the unlabelled pixels' ``centre (M, C)`` inputs; those whose highest class
    probability is at least ``config.pseudo_min_confidence`` join with that class. They are drawn with a total
    share ``config.pseudo_share`` of the draws, balanced among themselves by ``config.pseudo_class_balance``; the
    labelled pixels keep their relative weights in the rest. Self-training with a teacher of another kind
    (Yarowsky 1995; Lee 2013, "Pseudo-label"): the random forest classifies from the pixel's own inputs and is
    sure of many pixels whose surroundings no polygon shows (forest beside a road, a field beside a hedge), where
    the group network, which also reads the patch and the diffusion features, has no example of its own
    (docs/benchmarks.md, "Pseudo-labels"). Returns a new patch dict and view (labelled first), copying the
    selected patches; ``view`` unchanged when none is selected or ``view`` has no sampling weights.
    """
    if view.get("weights") is None or not config.pseudo_share or not len(centre):
        return view
    prob = teacher.predict_proba(centre)
    sel = np.flatnonzero(prob.max(axis=1) >= config.pseudo_min_confidence)
    if not len(sel):
        return view
    labels = np.asarray(teacher.classes_)[prob[sel].argmax(axis=1)].astype(np.int64)
    idx = view["index"]
    y_l = view["y"][idx].numpy()
    ensure(reporter).info(f"Pseudo-labels: {len(sel)} of {len(centre)} unlabelled pixels, per class "
                          f"{np.bincount(labels, minlength=int(max(y_l.max(), labels.max())) + 1).tolist()}, "
                          f"{config.pseudo_share:.0%} of the training draws")

    def cat(key: str) -> torch.Tensor | None:
        if view[key] is None:
            return None
        return torch.cat([view[key][idx], unlabelled[key][torch.from_numpy(sel)].to(view[key].dtype)])
    data = {"spec": cat("spec"), "aux": cat("aux"), "dif": cat("dif"),
            "y": torch.cat([torch.from_numpy(y_l), torch.from_numpy(labels)])}
    w_l = view["weights"].numpy()
    w = np.concatenate([w_l / w_l.sum() * (1.0 - config.pseudo_share),
                        sampling_weights(labels, None, 1.0, config.pseudo_class_balance) * config.pseudo_share])
    return patch_view(data, np.arange(len(w)), w)


def check_class_balance(value: float) -> float:
    """``value`` as a float when it is a valid class balance (:func:`sampling_weights`), 0 to 1.

    Raises:
        EngineError: outside [0, 1]; the message names the value, ``--class-balance`` and ``class_balance``.
    """
    if not 0.0 <= float(value) <= 1.0:
        raise EngineError(f"Class balance {value} is outside 0-1 (--class-balance; class_balance of the training "
                          "configuration)",
                          "Use 1 (every class drawn equally often, the default), 0.5 (in proportion to the square "
                          "root of its pixel count) or 0 (in proportion to its pixel count).")
    return float(value)


def sampling_weights(y: np.ndarray, edge: np.ndarray | None = None, edge_weight: float = 1.0,
                     class_balance: float = 1.0) -> np.ndarray:
    """float64 ``(N,)`` draw probabilities of the labelled pixels ``y (N,)`` (class indices).

    Class ``c`` with ``n_c`` pixels gets the total share ``n_c^(1-b) / sum_k n_k^(1-b)`` with
    ``b = class_balance``: 1 = every class present the same share (1 / classes), 0 = shares proportional to the
    pixel counts (plain random draws), 0.5 = square-root balancing (a class of 40 pixels is drawn about 3 times
    less often than one of 400, not as often). Within a class, edge pixels (:func:`edge_pixels`) weigh
    ``edge_weight`` against 1 for the others.

    Raises:
        EngineError: ``class_balance`` outside [0, 1]."""
    class_balance = check_class_balance(class_balance)
    w = np.ones(len(y), np.float64)
    if edge is not None and edge_weight != 1.0:
        w = np.where(edge, float(edge_weight), 1.0)
    present, counts = np.unique(y, return_counts=True)
    share = counts.astype(np.float64) ** (1.0 - class_balance)
    share /= share.sum()
    for c, s_c in zip(present, share):
        m = y == c
        w[m] *= s_c / w[m].sum()
    return w


def epoch_samples(config: TrainingConfig, y: np.ndarray) -> int:
    """Patches drawn per epoch with balanced sampling: ``samples_per_epoch``, or when 0,
    ``max_train_per_class`` x the number of classes in ``y`` (the budget of the former capped sampling)."""
    return int(config.samples_per_epoch) or int(config.max_train_per_class) * max(len(np.unique(y)), 1)


def pixel_bytes(n_spectral: int, n_auxiliary: int, n_diffusion: int, patch_size: int) -> int:
    """Memory of one gathered training patch: ``P² (4 C_spec + 4 C_aux + 2 C_dif)`` bytes (float32 inputs,
    float16 diffusion features)."""
    return int(patch_size ** 2 * (4 * n_spectral + 4 * n_auxiliary + 2 * n_diffusion))


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95 % confidence interval (Student t, ``n - 1`` degrees of freedom; 0 for n = 1).
    """
    from scipy import stats

    v = np.asarray([x for x in values if x is not None], np.float64)
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), 0.0
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(half)


def fit_random_forest(x_train: np.ndarray, y_train: np.ndarray, trees: int, seed: int):
    """scikit-learn random forest on centre-pixel inputs ``(N, C_spec + C_aux)`` (the report's baseline)."""
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=-1).fit(x_train, y_train)


def _cv_key(fold: np.ndarray, n_folds: int, y: np.ndarray, config: TrainingConfig, identity: dict | None) -> str:
    """SHA-256 of what decides a cross-validation's results: fold assignment and count, labels, training
    configuration and ``identity`` (JSON-able). ``rf_trees`` is left out: under torchrun only the main process fits
    the random forest, and every process must accept the same checkpoint."""
    import hashlib
    import json

    h = hashlib.sha256(np.ascontiguousarray(fold, np.int64).tobytes())
    h.update(np.ascontiguousarray(y, np.int64).tobytes())
    settings = {"n_folds": int(n_folds), "config": dataclasses.replace(config, rf_trees=0).to_dict(),
                "identity": identity}
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _cv_resume(path: str, key: str, n_folds: int, rep: Reporter) -> list[dict]:
    """The finished folds of a ``cv`` checkpoint when it belongs to this cross-validation (``key``), else ``[]``
    (nothing to resume: no file, or a warning that the settings changed)."""
    import os

    if not os.path.exists(path):
        return []
    _, state = load_checkpoint(path, "cv")
    if state.get("key") != key:
        rep.warning(f"The cross-validation checkpoint {path} was made with other polygons or settings: every fold "
                    "runs again")
        return []
    folds = list(state.get("folds") or [])[:n_folds]
    rep.info(f"Resuming cross-validation: {len(folds)} of {n_folds} folds finished")
    return folds


def edge_counts(y: np.ndarray, pred: np.ndarray, rf_pred: np.ndarray | None, edge: np.ndarray,
                alt_pred: np.ndarray | None = None) -> dict:
    """Held-out pixels and correct predictions at polygon edges and inside polygons, of BDGF and the random forest.

    Args:
        y, pred, rf_pred: reference, BDGF and random-forest class indices ``(n,)`` (``rf_pred`` may be None);
        edge: bool ``(n,)``, True within ``edge_radius`` px of the pixel's polygon edge (:func:`edge_pixels`).
        alt_pred: BDGF's other read-out ``(n,)`` (:func:`held_out_readouts`), or None.
    Returns:
        ``{"edge"|"interior": {"n", "bdgf", "rf", "alternative"}}`` (counts; ``rf`` None without a random forest,
        ``alternative`` without ``alt_pred``)."""
    out = {}
    for part, mask in (("edge", edge), ("interior", ~edge)):
        out[part] = {"n": int(mask.sum()), "bdgf": int((pred[mask] == y[mask]).sum()),
                     "rf": None if rf_pred is None else int((rf_pred[mask] == y[mask]).sum()),
                     "alternative": None if alt_pred is None else int((alt_pred[mask] == y[mask]).sum())}
    return out


def edge_accuracy(per_fold: Sequence[dict | None], radius: int) -> dict | None:
    """Pooled held-out OA at polygon edges (within ``radius`` px) and inside polygons over the folds' counts
    (:func:`edge_counts`): ``{"radius", "edge"|"interior": {"n", "bdgf_oa", "rf_oa", "alternative_oa"}}`` (the
    last for BDGF's other read-out, None unless every fold has it); None when a fold lacks
    them (a fold resumed from an older checkpoint) or there is no fold. The map's errors are at boundaries, where
    the patch and the diffusion features see beyond the polygon, so this tells how much the pooled OA owes to
    polygon interiors."""
    counts = list(per_fold)
    if not counts or not all(counts):
        return None
    out: dict = {"radius": int(radius)}
    for part in ("edge", "interior"):
        n = sum(c[part]["n"] for c in counts)
        rf, alt = [c[part]["rf"] for c in counts], [c[part].get("alternative") for c in counts]
        out[part] = {"n": n, "bdgf_oa": sum(c[part]["bdgf"] for c in counts) / n if n else None,
                     "rf_oa": sum(rf) / n if n and None not in rf else None,
                     "alternative_oa": sum(alt) / n if n and None not in alt else None}
    return out


def synthetic_folds(fold: np.ndarray, polygon_ids: np.ndarray, source_polygons: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(fold (N + M,), train_only (N + M,) bool)``: the folds of ``N`` labelled pixels (``polygon_ids (N,)``)
    followed by ``M`` synthetic pixels that take the fold of their source polygon (``source_polygons (M,)``), and
    the mask of the synthetic ones, for :func:`cross_validate`."""
    fold_of = dict(zip(polygon_ids.tolist(), fold.tolist()))
    extra = np.array([fold_of[int(p)] for p in source_polygons], fold.dtype)
    return np.r_[fold, extra], np.r_[np.zeros(len(fold), bool), np.ones(len(extra), bool)]


def other_prediction(net: GroupNetwork | GroupEnsemble) -> str | None:
    """The read-out a trained network does not use (``"heads"`` for ``"fused"`` and back), or None when its branch
    heads did not learn the classes (``NetworkConfig.heads_trained``)."""
    return other_readout(net.config.prediction) if net.config.heads_trained else None


def held_out_readouts(net: GroupNetwork | GroupEnsemble, data: dict, device: torch.device) -> dict[str, np.ndarray]:
    """Predicted class indices ``(N,)`` of a patch set under the network's own read-out and, when its heads are
    trained, under the other one too (``{"fused": ..., "heads": ...}``; :func:`evaluate` with
    ``models.network.set_prediction``). The network keeps its own read-out afterwards."""
    own, other = net.config.prediction, other_prediction(net)
    out = {own: evaluate(net, data, device)[0]}
    if other is not None:
        try:
            set_prediction(net, other)
            out[other] = evaluate(net, data, device)[0]
        finally:
            set_prediction(net, own)
    return out


def _score_readouts(rec: dict, pooled: dict, net: Any, held_out: dict, y: np.ndarray, labels: Sequence,
                    names: Sequence[str], device: torch.device) -> tuple[np.ndarray, np.ndarray | None]:
    """Score a fold's network on its held-out pixels under its own read-out (``rec["bdgf"]``) and the other one
    (``rec["alternative"]``, when its heads are trained); adds their confusion matrices to ``pooled``. Returns the
    own and the other read-out's class indices ``(n,)`` (the other None without trained heads)."""
    readouts = held_out_readouts(net, held_out, device)
    other = next((p for p in readouts if p != net.config.prediction), None)
    if other is not None:
        rec["alternative_prediction"] = other
    for model, pred in (("bdgf", readouts[net.config.prediction]), ("alternative", readouts.get(other))):
        if pred is not None:
            cm = confusion_matrix(y, pred, list(range(len(labels))))
            pooled[model] += cm
            rec[model] = accuracy_metrics(cm, labels, names)
    return readouts[net.config.prediction], readouts.get(other)


def _cv_summaries(folds: list[dict], pooled: dict, models: list[str], labels: Sequence, names: Sequence[str]
                  ) -> dict:
    """``{"folds", "n_folds", model: summary}``: each model's pooled metrics plus the mean and 95 % interval of
    its per-fold OA / AA / kappa; the alternative read-out only when every fold has it (folds resumed from an
    older checkpoint may not)."""
    out = {"folds": folds, "n_folds": len(folds)}
    if folds and all("alternative" in r and "alternative_prediction" in r for r in folds):
        models = [*models, "alternative"]
        out["alternative_prediction"] = folds[0]["alternative_prediction"]
    for model in models:
        summary = accuracy_metrics(pooled[model], labels, names)
        for key in ("oa", "aa", "kappa"):
            vals = [r[model][key] for r in folds if r[model][key] is not None]
            mean, half = mean_ci95(vals)
            summary[f"{key}_folds"] = {"mean": mean, "ci95": half, "folds": vals}
        out[model] = summary
    return out


def choose_readout(cv: dict | None, margin: float) -> str | None:
    """Pick the final model's read-out from its cross-validation: the other read-out of the same fold networks
    (``cv["alternative"]``, :func:`held_out_readouts`) when its pooled held-out OA is at least ``margin`` above
    the model's own. Then ``cv`` is rewritten in place so that ``"bdgf"`` (summary and every fold) holds the chosen
    read-out's figures and ``"alternative"`` / ``"alternative_prediction"`` the other's, and
    ``cv["readout"] = {"prediction", "oa", "other_oa", "margin"}`` records the choice.

    Why a margin: the read-outs differ most at boundaries that no polygon covers. On the full Sentinel-2 Delmarva
    scene the heads' mean was up to 0.45 points of OA ahead under cross-validation while its map was worse at field
    edges; on the 4-polygon BigEarthNet pair 69_24, whose polygons' edges hold a cover no training polygon shows,
    it was 1.3-5.9 points ahead (docs/benchmarks.md, accuracy section). The chosen read-out's figures come from
    the folds it was chosen on, so they are somewhat optimistic (the better of two); the margin keeps the choice
    to clear gaps.

    Args:
        cv: :func:`cross_validate`'s result (None: no validation, nothing to choose from).
        margin: OA (0-1) by which the other read-out must be ahead; >= 1 never switches.
    Returns:
        The chosen read-out (``contract.PREDICTIONS``) when it is not the model's own, else None.
    """
    alt = (cv or {}).get("alternative")
    if margin >= 1.0 or not alt or cv["bdgf"].get("oa") is None or alt.get("oa") is None:
        return None
    if alt["oa"] < cv["bdgf"]["oa"] + margin:
        return None
    chosen = cv["alternative_prediction"]
    own = other_readout(chosen)
    cv["readout"] = {"prediction": chosen, "oa": alt["oa"], "other_oa": cv["bdgf"]["oa"], "margin": margin}
    cv["bdgf"], cv["alternative"], cv["alternative_prediction"] = alt, cv["bdgf"], own
    for rec in cv["folds"]:
        rec["bdgf"], rec["alternative"], rec["alternative_prediction"] = rec["alternative"], rec["bdgf"], own
        for counts in (rec.get("edge") or {}).values():
            if counts.get("alternative") is not None:
                counts["bdgf"], counts["alternative"] = counts["alternative"], counts["bdgf"]
    for part in (cv.get("edge") or {}).values():
        if isinstance(part, dict) and part.get("alternative_oa") is not None:
            part["bdgf_oa"], part["alternative_oa"] = part["alternative_oa"], part["bdgf_oa"]
    return chosen


def cross_validate(data: dict, centre: np.ndarray, fold: np.ndarray, n_folds: int, make_network: Any,
                   config: TrainingConfig, device: torch.device, labels: Sequence, names: Sequence[str],
                   edge: np.ndarray | None = None, reporter: Reporter | None = None, checkpoint: str | None = None,
                   resume: bool = False, identity: dict | None = None, on_fold: Any = None,
                   unlabelled: dict | None = None, train_only: np.ndarray | None = None) -> dict:
    """K-fold cross-validation of BDGF and of the random forest under the same folds (grouped by polygon).

    For each fold ``f``: a fresh network (``make_network(seed)``) is trained on the pixels with ``fold != f``
    (class-balanced sampling, augmentation: :func:`train_network`; all ``config.epochs``, also with
    ``config.early_stopping``, which only records the held-out loss per epoch) and predicts the pixels with
    ``fold == f``;
    a random forest (``config.rf_trees``; 0 = none) is fitted on the centre-pixel inputs of the same training
    pixels. Pixels with fold -1 are always in training.

    With a ``checkpoint`` path, the finished folds are saved there after each fold (a ``cv`` checkpoint: JSON
    only); ``resume=True`` takes the folds it holds and runs the rest. Each fold has its own seed, so a resumed
    run gives the same figures as an uninterrupted one. The folds are reused only when the fold assignment, the
    labels, ``config`` and ``identity`` (e.g. the network configuration) are those of the checkpoint; otherwise a
    warning says so and every fold runs again.

    Args:
        data: patch tensors of every labelled pixel (``_to_tensors``); centre: ``(N, C)`` centre-pixel inputs;
        fold: int64 ``(N,)`` from ``labels.polygon_folds``; labels / names: class values and names (K).
        on_fold: called after each fold that runs (not one taken from the checkpoint) with ``(held-out indices,
            BDGF class index (n,), random-forest class index (n,) or None)``.
        unlabelled: with ``config.pseudo_share``, patch tensors of unlabelled pixels plus their ``"centre"``
            ``(M, C)`` inputs: each fold's network also trains on those its own random forest (fitted on the
            fold's training pixels only, never the held-out ones) is sure of (:func:`pseudo_labelled`).
        train_only: bool ``(N,)``: synthetic pixels (e.g. :func:`gather_whitewater`'s, with their source
            polygon's fold): in the network's training when their fold is not held out, never held out themselves,
            never in the random forest's training.
    Each fold's network is also read out the other way (:func:`held_out_readouts`: the branch heads' mean for the
    fused classifier and back), at the cost of one more forward pass over the held-out pixels: ``"alternative"``.

    Returns:
        ``{"folds": [{"fold", "n", "bdgf": metrics, "rf": metrics, "alternative": metrics, "alternative_prediction",
        "history", "edge"}], "bdgf": summary, "rf": summary, "alternative": summary, "alternative_prediction":
        "heads" | "fused", "edge": edge_accuracy(...), "epoch_val_loss": [mean over folds per epoch]}``
        (the alternative keys only when the heads are trained, ``NetworkConfig.heads_trained``; ``edge``:
        held-out OA at polygon edges and inside polygons, :func:`edge_accuracy`, with ``edge``); ``metrics`` =
        ``metrics.accuracy_metrics`` (OA, AA, kappa, per-class producer's / user's accuracy, confusion matrix);
        ``summary`` = the pooled confusion matrix's metrics plus ``{"oa"|"aa"|"kappa": {"mean", "ci95",
        "folds": [...]}}`` over folds.
    """
    from .distributed import info as dist_info

    rep = ensure(reporter)
    y = view_labels(data)
    k_labels = list(range(len(labels)))
    pooled = {m: np.zeros((len(labels),) * 2, np.int64) for m in ("bdgf", "rf", "alternative")}
    folds, curves = [], []
    key = _cv_key(fold, n_folds, y, config, identity)
    done = _cv_resume(checkpoint, key, n_folds, rep) if resume and checkpoint else []
    for f in range(n_folds):
        if f < len(done):
            rec = done[f]
            rep.info(f"Cross-validation fold {f + 1}/{n_folds}: taken from the checkpoint")
            for model in pooled:
                if model in rec:
                    pooled[model] += np.asarray(rec[model]["confusion_matrix"], np.int64)
            curves.append([h.get("val_loss") for h in rec["history"]])
            folds.append(rec)
            continue
        synthetic = np.zeros(len(fold), bool) if train_only is None else train_only
        tr, te = np.flatnonzero(fold != f), np.flatnonzero((fold == f) & ~synthetic)
        tr_rf = tr[~synthetic[tr]]
        rep.info(f"Cross-validation fold {f + 1}/{n_folds}: {len(tr)} training, {len(te)} held-out pixels")
        cfg = dataclasses.replace(config, seed=config.seed * 1000 + f)
        train_view = patch_view(data, tr, sampling_weights(y[tr], None if edge is None else edge[tr],
                                                           config.edge_weight, config.class_balance))
        if unlabelled is not None and config.pseudo_share:
            teacher = fit_random_forest(centre[tr_rf], y[tr_rf], PSEUDO_TREES, cfg.seed)
            train_view = pseudo_labelled(train_view, unlabelled, unlabelled["centre"], teacher, cfg, rep)
        net = make_network(cfg.seed)
        # held-out loss per epoch only when it is used (early stopping picks the final fit's epoch count from its
        # mean over the folds): it costs a pass over the fold. The fold's own network keeps its last epoch: its
        # weights chosen on the held-out pixels would make the figures measured on them optimistic.
        history = train_network(net, train_view, patch_view(data, te) if config.early_stopping else None,
                                dataclasses.replace(cfg, early_stopping=False), device, rep)
        curves.append([h.get("val_loss") for h in history])
        rec = {"fold": f + 1, "n": int(len(te)), "history": history}
        pred, alt_pred = _score_readouts(rec, pooled, net, patch_view(data, te), y[te], labels, names, device)
        rf_pred = None
        if config.rf_trees:
            rf_pred = fit_random_forest(centre[tr_rf], y[tr_rf], config.rf_trees, cfg.seed).predict(centre[te])
            cm = confusion_matrix(y[te], rf_pred, k_labels)
            pooled["rf"] += cm
            rec["rf"] = accuracy_metrics(cm, labels, names)
        if edge is not None:
            rec["edge"] = edge_counts(y[te], np.asarray(pred), rf_pred, edge[te], alt_pred)
        if on_fold is not None:
            on_fold(te, np.asarray(pred), rf_pred)
        folds.append(rec)
        if checkpoint and dist_info().is_main:
            save_model(checkpoint, {}, ModelMetadata(kind="checkpoint", state={"stage": "cv", "key": key,
                                                                                 "folds": folds}), overwrite=True)
        rep.metric("cv_fold", f + 1, oa=rec["bdgf"]["oa"], kappa=rec["bdgf"]["kappa"],
                   rf_oa=(rec.get("rf") or {}).get("oa"), rf_kappa=(rec.get("rf") or {}).get("kappa"))
    out = _cv_summaries(folds, pooled, ["bdgf"] + (["rf"] if config.rf_trees else []), labels, names)
    out["edge"] = edge_accuracy([r.get("edge") for r in folds], config.edge_radius)
    n_ep = min(len(c) for c in curves) if curves else 0
    out["epoch_val_loss"] = [float(np.mean([c[e] for c in curves])) for e in range(n_ep)
                             if all(c[e] is not None for c in curves)]
    return out
