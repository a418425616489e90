"""Supervised stage: classifier inputs, patch gathering, group-network training, random-forest baseline.

Data flow (spec §1.3-§1.4, §5.1): labelled pixels (``labels.read_polygons``) are split by polygon, capped per
class, grouped by grid tile, and for each tile the stack window (plus the patch margin and the diffusion halo)
is read once; the spectral / auxiliary inputs are normalised (:class:`ClassifierInputs`), the diffusion
features are computed for that window only (``diffusion.FeatureExtractor``) and the ``P x P`` patches around the
labelled pixels are kept. No full-scene array (image or feature map) is ever built: memory is bounded by one
tile plus the gathered patches.

The trained model (:class:`TrainedModel`) bundles the U-Net, the group network, the input normalisation, the
diffusion-feature scaling and the classes, and is what ``artifact.save_model`` writes.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from .diffusion import FeatureExtractor, _optimizer_load, _optimizer_tensors
from .errors import Cancelled, EngineError
from .grid import StackWindow, extract_patches
from .metrics import accuracy_metrics, confusion_matrix
from .network import GroupNetwork, NetworkConfig
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
        early_stopping, patience: optional selection of the epoch with the lowest validation loss.
        checkpoint_every: epochs between checkpoints (0 = only on cancel).
        gather_tile: tile side (pixels) used to gather patches.
        rf_trees: trees of the random-forest baseline (0 = no baseline).
        seed: split, subsampling, initialisation and shuffling.
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

    def __post_init__(self) -> None:
        if self.patch_size < 1 or self.patch_size % 2 != 1:
            raise EngineError(f"Patch size must be odd, got {self.patch_size}", "Use e.g. 9.")
        if self.epochs < 1:
            raise EngineError(f"Epochs must be at least 1, got {self.epochs}", "Use e.g. 30 (fast) or 200 (paper).")
        self.milestones = tuple(int(m) for m in self.milestones)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ------------------------------------------------------------------------------------------------------------
# Inputs of the group network (spec §1.3)
# ------------------------------------------------------------------------------------------------------------
class ClassifierInputs:
    """Normalises stack windows into the group network's spectral and auxiliary inputs (spec §1.3).

    Spectral bands: per-band z-score (sample mean / std of ``grid.compute_statistics``); with more bands than
    ``pca_components``, PCA (whitened, fitted on a sample of z-scored valid pixels) to that many components.
    Auxiliary bands (SAR in dB, elevation in metres): per-band z-score. Invalid pixels (nodata, outside the
    grid) are 0 after normalisation, which is the zero padding of spec §1.4.

    Args:
        band_counts: bands per modality (spectral first).
        stats: ``stats[m][b]`` with ``mean`` / ``std`` (BandStats or dicts).
        pca_components, pca_mean, pca_scale: optional PCA basis ``(n_comp, C_spec)``, ``(C_spec,)``,
            ``(n_comp,)`` (1 / sqrt(explained variance)).
    """

    def __init__(self, band_counts: Sequence[int], stats: Sequence[Sequence[Any]],
                 pca_components: np.ndarray | None = None, pca_mean: np.ndarray | None = None,
                 pca_scale: np.ndarray | None = None):
        self.band_counts = [int(c) for c in band_counts]
        get = (lambda s, n: float(s[n]) if isinstance(s, dict) else float(getattr(s, n)))
        self.mean = [np.array([get(s, "mean") for s in mod], np.float32) for mod in stats]
        self.std = [np.array([max(get(s, "std"), 1e-6) for s in mod], np.float32) for mod in stats]
        self.pca_components = pca_components
        self.pca_mean = pca_mean
        self.pca_scale = pca_scale

    @property
    def n_spectral(self) -> int:
        """C_spec given to the network (PCA components when PCA is on)."""
        return int(self.pca_components.shape[0]) if self.pca_components is not None else self.band_counts[0]

    @property
    def n_auxiliary(self) -> int:
        """C_aux: all auxiliary bands concatenated (0 without auxiliary modality)."""
        return int(sum(self.band_counts[1:]))

    def fit_pca(self, stack: Any, n_components: int, seed: int = 0, sample_pixels: int = 50_000,
                window: Any = None) -> None:
        """Fit a whitened PCA on z-scored spectral pixels sampled from valid blocks (scikit-learn)."""
        from sklearn.decomposition import PCA

        rng = np.random.default_rng(seed)
        H, W = stack.grid.height, stack.grid.width
        r0, c0, h, w = (0, 0, H, W) if window is None else window
        block, got, samples = 64, 0, []
        for _ in range(400):
            r = r0 + int(rng.integers(0, max(h - block, 0) + 1))
            c = c0 + int(rng.integers(0, max(w - block, 0) + 1))
            win = stack.read(r, c, min(block, h), min(block, w))
            z = (win.arrays[0] - self.mean[0][:, None, None]) / self.std[0][:, None, None]
            px = z[:, win.valid].T
            samples.append(px)
            got += len(px)
            if got >= sample_pixels:
                break
        data = np.concatenate(samples)[:sample_pixels]
        n = min(int(n_components), data.shape[1], len(data))
        pca = PCA(n_components=n, whiten=True, random_state=seed).fit(data)
        self.pca_components = pca.components_.astype(np.float32)
        self.pca_mean = pca.mean_.astype(np.float32)
        self.pca_scale = (1.0 / np.sqrt(np.maximum(pca.explained_variance_, 1e-12))).astype(np.float32)

    def transform(self, window: StackWindow) -> tuple[np.ndarray, np.ndarray | None]:
        """``(x_spec (C_spec, h, w), x_aux (C_aux, h, w) | None)`` float32, 0 where invalid."""
        valid = window.valid
        spec = (window.arrays[0] - self.mean[0][:, None, None]) / self.std[0][:, None, None]
        if self.pca_components is not None:
            c, h, w = spec.shape
            flat = spec.reshape(c, -1).T - self.pca_mean
            spec = ((flat @ self.pca_components.T) * self.pca_scale).T.reshape(-1, h, w)
        spec = np.where(valid, spec, 0.0).astype(np.float32)
        aux = None
        if len(window.arrays) > 1:
            parts = [(a - m[:, None, None]) / s[:, None, None]
                     for a, m, s in zip(window.arrays[1:], self.mean[1:], self.std[1:])]
            aux = np.where(valid, np.concatenate(parts), 0.0).astype(np.float32)
        return spec, aux

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        if self.pca_components is not None:
            out = {"pca.components": torch.from_numpy(self.pca_components),
                   "pca.mean": torch.from_numpy(self.pca_mean), "pca.scale": torch.from_numpy(self.pca_scale)}
        return out

    @classmethod
    def from_tensors(cls, band_counts: Sequence[int], stats: Any, tensors: dict[str, torch.Tensor]) -> "ClassifierInputs":
        if "pca.components" in tensors:
            return cls(band_counts, stats, tensors["pca.components"].numpy(), tensors["pca.mean"].numpy(),
                       tensors["pca.scale"].numpy())
        return cls(band_counts, stats)


def read_window_inputs(stack: Any, extractor: FeatureExtractor, inputs: ClassifierInputs, row_off: int,
                       col_off: int, height: int, width: int
                       ) -> tuple[np.ndarray, np.ndarray | None, torch.Tensor, np.ndarray]:
    """Every network input of a grid window from one read of the window plus the diffusion halo.

    Returns:
        ``x_spec (C_spec, h, w)`` and ``x_aux (C_aux, h, w) | None`` float32 numpy arrays (normalised, 0 where
        invalid; :class:`ClassifierInputs`), the raw (unscaled) diffusion features ``(C_dif, h, w)`` float32 on
        the extractor's device (spec §2.4), and ``valid`` bool ``(h, w)``.
    """
    hal = extractor.halo
    big = stack.read(row_off - hal, col_off - hal, height + 2 * hal, width + 2 * hal)
    f = extractor.features_for_array(extractor.layout.assemble(big, extractor.stats), row_off, col_off)
    inner = StackWindow([a[:, hal:hal + height, hal:hal + width] for a in big.arrays],
                        big.valid[hal:hal + height, hal:hal + width], row_off, col_off)
    spec, aux = inputs.transform(inner)
    return spec, aux, f, inner.valid


# ------------------------------------------------------------------------------------------------------------
# Trained model: everything needed to classify (spec §4, issue "model file")
# ------------------------------------------------------------------------------------------------------------
class TrainedModel:
    """U-Net feature extractor + group network + input normalisation + classes.

    Attributes:
        extractor: ``diffusion.FeatureExtractor`` (C_dif channels, halo pixels).
        inputs: :class:`ClassifierInputs`. net: ``network.GroupNetwork`` (eval mode after training).
        feat_min, feat_max: ``(C_dif,)`` float32 per-channel min / max of the diffusion features over the
            training windows: features are scaled to [0, 1] with them (spec §1.3 ``max_min``).
        classes: list of ``labels.ClassInfo``-like dicts ``{"value", "name", "color", "label"}``; network class
            index ``k`` is ``classes[k]``.
        patch_size: P.
    """

    def __init__(self, extractor: FeatureExtractor, inputs: ClassifierInputs, net: GroupNetwork,
                 feat_min: torch.Tensor, feat_max: torch.Tensor, classes: list[dict], patch_size: int):
        self.extractor = extractor
        self.inputs = inputs
        self.net = net
        self.feat_min = feat_min.float()
        self.feat_max = feat_max.float()
        self.classes = classes
        self.patch_size = int(patch_size)

    @property
    def device(self) -> torch.device:
        return self.extractor.device

    @property
    def margin(self) -> int:
        """Patch margin P // 2 (pixels)."""
        return self.patch_size // 2

    def scale_features(self, f: torch.Tensor, valid: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``(C_dif, h, w)`` raw features -> [0, 1]-scaled, 0 where ``valid`` is False."""
        lo = self.feat_min.to(f.device)[:, None, None]
        span = (self.feat_max.to(f.device) - self.feat_min.to(f.device)).clamp_min(1e-6)[:, None, None]
        v = torch.as_tensor(valid, device=f.device)
        return ((f - lo) / span) * v.to(f.dtype)

    def window_inputs(self, stack: Any, row_off: int, col_off: int, height: int, width: int
                      ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, np.ndarray]:
        """All network inputs of a window (one read of window + diffusion halo).

        Returns:
            ``x_spec (C_spec, h, w)``, ``x_aux (C_aux, h, w) | None``, ``f_dif (C_dif, h, w)`` float32 tensors on
            the model's device (0 where invalid), and ``valid`` bool ``(h, w)``.
        """
        spec, aux, f, valid = read_window_inputs(stack, self.extractor, self.inputs, row_off, col_off, height, width)
        dev = self.device
        f = self.scale_features(f, valid)
        return (torch.from_numpy(spec).to(dev), None if aux is None else torch.from_numpy(aux).to(dev), f, valid)

    # -- model file ------------------------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        out = {f"unet.{k}": v.detach().cpu().contiguous() for k, v in self.extractor.unet.state_dict().items()}
        out.update({f"net.{k}": v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()})
        out.update(self.inputs.tensors())
        out["features.min"] = self.feat_min.cpu().contiguous()
        out["features.max"] = self.feat_max.cpu().contiguous()
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], metadata: dict, device: Any = "cpu") -> "TrainedModel":
        """Rebuild from a model file's tensors and metadata (see :meth:`tensors` and ``api.train``)."""
        extractor = FeatureExtractor.from_tensors(tensors, metadata, device)
        band_counts = [m["band_count"] for m in metadata["modalities"]]
        inputs = ClassifierInputs.from_tensors(band_counts, metadata["statistics"], tensors)
        ncfg = NetworkConfig.from_dict(metadata["network_config"])
        net = GroupNetwork(inputs.n_spectral, inputs.n_auxiliary, extractor.channels, len(metadata["classes"]), ncfg)
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        net.to(extractor.device).eval()
        extractor.unet.eval()
        return cls(extractor, inputs, net, tensors["features.min"], tensors["features.max"],
                   metadata["classes"], metadata["training_config"]["patch_size"])


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
    key = (rows // tile).astype(np.int64) * (stack.grid.width // tile + 1) + cols // tile
    order = np.argsort(key, kind="stable")
    ks = key[order]
    bounds = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1], True])
    task = rep.task(stage, len(bounds) - 1, unit="tile")
    try:
        for a, b in zip(bounds[:-1], bounds[1:]):
            idx = order[a:b]
            r, c = rows[idx], cols[idx]
            r0, c0 = int(r.min()) - m, int(c.min()) - m
            h, w = int(r.max()) - r0 + m + 1, int(c.max()) - c0 + m + 1
            spec, aux, f, valid_np = read_window_inputs(stack, extractor, inputs, r0, c0, h, w)
            f = f.cpu()                                                   # (Cd, h, w)
            valid = torch.from_numpy(valid_np)
            if valid.any():
                fv = f[:, valid]
                fmin = torch.minimum(fmin, fv.min(dim=1).values)
                fmax = torch.maximum(fmax, fv.max(dim=1).values)
            f = f * valid.to(f.dtype)
            lr, lc = r - r0, c - c0
            ps = extract_patches(spec, lr, lc, P)
            if spec_out is None:
                spec_out = np.zeros((n,) + ps.shape[1:], np.float32)
                if aux is not None:
                    aux_out = np.zeros((n, aux.shape[0], P, P), np.float32)
            spec_out[idx] = ps
            if aux is not None:
                aux_out[idx] = extract_patches(aux, lr, lc, P)
            dif_out[idx] = extract_patches(f.numpy(), lr, lc, P).astype(np.float16)
            task.update(1)
    finally:
        task.close()
    centre = spec_out[:, :, m, m]
    if aux_out is not None:
        centre = np.concatenate([centre, aux_out[:, :, m, m]], axis=1)
    fmin = torch.where(torch.isfinite(fmin), fmin, torch.zeros_like(fmin))
    fmax = torch.where(torch.isfinite(fmax), fmax, torch.ones_like(fmax))
    return PatchSet(spec_out, aux_out, dif_out, y.astype(np.int64), centre), fmin, fmax


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
def _to_tensors(ps: PatchSet, model: TrainedModel) -> dict[str, torch.Tensor]:
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


def _batch(data: dict, idx: torch.Tensor, device: torch.device) -> tuple:
    aux = None if data["aux"] is None else data["aux"][idx].to(device)
    return data["spec"][idx].to(device), aux, data["dif"][idx].to(device).float(), data["y"][idx].to(device)


@torch.no_grad()
def evaluate(net: GroupNetwork, data: dict, device: torch.device, batch_size: int = 512
             ) -> tuple[np.ndarray, float]:
    """Predicted class indices ``(N,)`` and the mean cross-entropy of the final logits on a patch set."""
    net.eval()
    preds, loss_sum, n = [], 0.0, len(data["y"])
    for i in range(0, n, batch_size):
        idx = torch.arange(i, min(i + batch_size, n))
        xs, xa, fd, y = _batch(data, idx, device)
        logits = net(xs, xa, fd).logits.float()
        loss_sum += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
        preds.append(logits.argmax(1).cpu())
    return (torch.cat(preds).numpy() if preds else np.zeros(0, np.int64)), loss_sum / max(n, 1)


class _LossStep(torch.nn.Module):
    """``forward(x_spec, x_aux, f_dif, y) -> loss`` (Eq. 29) of a group network, one module for DDP."""

    def __init__(self, net: GroupNetwork):
        super().__init__()
        self.net = net

    def forward(self, x_spec, x_aux, f_dif, y):
        return self.net.loss(self.net(x_spec, x_aux, f_dif), y).loss


def train_network(net: GroupNetwork, train: dict, val: dict | None, config: TrainingConfig, device: torch.device,
                  reporter: Reporter | None = None, checkpoint_path: str | None = None, resume: bool = False) -> list[dict]:
    """Train the group network with Adam + MultiStepLR and the mutual-learning loss (spec §5.1, Eqs. 25-29).

    Validation (polygon-held-out) after every epoch: loss and OA. The final model is the last epoch, unless
    ``config.early_stopping``: then the weights of the epoch with the lowest validation loss are restored
    (selection on validation data, never on test data). Checkpoints (safetensors: network + optimiser tensors,
    JSON epoch / history / RNG state) every ``checkpoint_every`` epochs and on cancel; ``resume`` continues.

    Returns:
        history: one dict per epoch ``{"epoch", "loss", "val_loss", "val_oa", "lr", "seconds"}``.
    """
    from .distributed import info as dist_info
    from .distributed import wrap

    rep = ensure(reporter)
    dinfo = dist_info()          # under torchrun: each process takes its share of every batch (DDP)
    net.to(device)
    model = wrap(_LossStep(net), device)   # loss inside forward: DDP sees the temperature layers used there
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(config.milestones), gamma=config.gamma)
    gen = torch.Generator().manual_seed(config.seed + 17)
    n = len(train["y"])
    n_batches = max(math.ceil(n / config.batch_size), 1)
    history: list[dict] = []
    epoch0 = 0
    best = (float("inf"), None)
    if resume and checkpoint_path:
        epoch0, history = _load_train_checkpoint(checkpoint_path, net, opt, sched, gen, device)
        rep.info(f"Resuming supervised training after epoch {epoch0}")
    task = rep.task("train", config.epochs * n_batches, unit="batch")
    task.n = min(epoch0 * n_batches, task.total)

    def save(epoch: int) -> None:
        if checkpoint_path and dinfo.is_main:
            _save_train_checkpoint(checkpoint_path, net, opt, sched, gen, epoch, history)

    epoch = epoch0
    try:
        for epoch in range(epoch0, config.epochs):
            t0 = time.monotonic()
            net.train()
            perm = torch.randperm(n, generator=gen)
            loss_sum = 0.0
            for bi in range(n_batches):
                idx = perm[bi * config.batch_size:(bi + 1) * config.batch_size]
                if dinfo.enabled and len(idx) >= dinfo.world:
                    idx = idx[dinfo.rank::dinfo.world]
                if len(idx) == 0:
                    continue
                xs, xa, fd, y = _batch(train, idx, device)
                if len(idx) == 1:          # BatchNorm needs two samples: reuse the last batch's neighbour
                    idx = torch.cat([idx, perm[:1]])
                    xs, xa, fd, y = _batch(train, idx, device)
                loss = model(xs, xa, fd, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
                opt.step()
                loss_sum += float(loss.detach()) * len(idx)
                task.update(1, epoch=epoch + 1, loss=float(loss.detach()))
            sched.step()
            rec = {"epoch": epoch + 1, "loss": loss_sum / max(n, 1), "lr": opt.param_groups[0]["lr"]}
            if val is not None and len(val["y"]):
                pred, vloss = evaluate(net, val, device)
                rec["val_loss"] = vloss
                rec["val_oa"] = float(np.mean(pred == val["y"].numpy()))
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
    net.eval()
    return history


def _save_train_checkpoint(path, net, opt, sched, gen, epoch, history) -> None:
    import json

    from safetensors.torch import save_file

    from .files import atomic_output

    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    otens, ometa = _optimizer_tensors(opt)
    tensors.update(otens)
    tensors["rng.torch"] = gen.get_state().clone()
    md = {"format": "bdgf-train-checkpoint/1", "epoch": json.dumps(epoch), "history": json.dumps(history),
          "optimizer": json.dumps(ometa), "scheduler": json.dumps(sched.state_dict())}
    with atomic_output(path, overwrite=True) as tmp:
        save_file(tensors, tmp, metadata=md)


def _load_train_checkpoint(path, net, opt, sched, gen, device) -> tuple[int, list]:
    import json
    import os

    from safetensors import safe_open

    if not os.path.exists(path):
        raise EngineError(f"No training checkpoint to resume from: {path}", "Run without resume.")
    with safe_open(path, framework="pt", device="cpu") as f:
        md = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if md.get("format") != "bdgf-train-checkpoint/1":
        raise EngineError(f"{path} is not a BDGF training checkpoint", "Run without resume.")
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    _optimizer_load(opt, tensors, json.loads(md["optimizer"]), device)
    sched.load_state_dict(json.loads(md["scheduler"]))
    gen.set_state(tensors["rng.torch"])
    return int(json.loads(md["epoch"])), json.loads(md["history"])


# ------------------------------------------------------------------------------------------------------------
# Baseline and metrics
# ------------------------------------------------------------------------------------------------------------
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
