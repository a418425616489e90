"""BDGF diffusion stage: noise schedule, SpectralDiff 3-D U-Net, BDGF forward process, pretraining, features.

Implements stage P of BDGF (Liu et al., arXiv 2509.23310, paper §3.1, Eqs. 5-10, Alg. 1) on top of the
SpectralDiff DDPM (``SD-diff codes/unet3d.py``, ``diffusion.py``), following ``engine-spec.md`` §1.5-§3.

Conventions
-----------
- The DDPM input is a 1-channel 3-D volume ``(n, 1, S, H, W)``: ``S`` = band axis built by :class:`BandLayout`
  (spec §1.5, paper Eq. 8: ``[auxiliary; spectral]``), ``H, W`` pixels of the reference grid (never
  down-sampled). ``S % 8 == 0``.
- Diffusion steps ``t`` are 0-based (``t = 0..T-1``), as in SpectralDiff (spec notation).
- Every ambiguity resolution of spec §8 is a named option of :class:`DiffusionConfig`.
- Tensors are float32 unless said otherwise. No full-scene array is ever built: pretraining reads random tiles,
  feature extraction reads a window plus a halo (spec §1.6 replaced by windowed reading; architecture.md).

Public API: :class:`DiffusionConfig`, :class:`NoiseSchedule`, :class:`BandLayout`, :class:`SpectralDiffUNet`,
:func:`bdgf_forward`, :func:`pretrain` / :class:`PretrainResult`, :class:`FeatureExtractor`,
:func:`hash_normal`, :func:`receptive_field_radius`, :func:`load_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import Cancelled, EngineError
from .grid import db_to_linear
from .progress import ensure

__all__ = [
    "DiffusionConfig", "NoiseSchedule", "BandLayout", "SinusoidalPositionEmbeddings", "Block3d",
    "SpectralDiffUNet", "ForwardSample", "bdgf_forward", "mask_probability", "hash_normal",
    "receptive_field_radius", "PretrainResult", "pretrain", "load_checkpoint", "FeatureExtractor",
    "SPECTRAL", "SAR", "ELEVATION", "OTHER",
]

# Per-band kinds of the DDPM band axis (spec §1.5 "is_sar" generalised).
SPECTRAL = "spectral"   # Gaussian noise, masked by the adaptive modality masks (incl. padding / resampled bands)
SAR = "sar"             # multiplicative speckle (Eq. 8), never masked
ELEVATION = "elevation"  # auxiliary: Gaussian noise like spectral, never masked
OTHER = "other"          # any other auxiliary kind: Gaussian, never masked

_CHECKPOINT_FORMAT = "bdgf-diffusion-checkpoint/1"


# ------------------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------------------
@dataclass
class DiffusionConfig:
    """All options of the diffusion stage. Defaults = the ``paper`` profile (spec §2.1, §8).

    Architecture / schedule (spec §2.1-§2.3):
        width: base width of the U-Net (16 = SpectralDiff, 4 299 633 parameters). Channels (w, 2w, 4w, 8w).
        T, beta_start, beta_end: linear beta schedule, ``beta_t = linspace(beta_start, beta_end, T)[t]``.
    Band axis (spec §1.5, §8 items 1-3):
        band_mode: ``"compact"`` (zero-pad the end to a multiple of 8) or ``"parity"`` (linearly resample the
            spectral block so that S = ``parity_bands``; Tab. 9 sizes: 256 / 128 / 64).
        parity_bands: target S for ``parity`` mode (multiple of 8).
        clip: spectral / elevation values after robust min-max to [-1, 1] are clipped to [-clip, clip].
        sar_clip: SAR linear intensity divided by its linear p98 is clipped to [0, sar_clip].
    Pretraining (spec §2.1, §1.6, §8 item 19):
        tile: side of the random square training tiles (pixels). batch_size: tiles per iteration.
        iterations: optimiser steps. lr: Adam learning rate. seed: RNG seed (tiles, t, masks, noise).
        min_valid_fraction: a training tile is accepted when at least this fraction of its pixels is valid.
        checkpoint_every: iterations between checkpoints (0 = only on cancel / at the end).
    BDGF forward process (spec §3, §8 items 4-6):
        masking: adaptive modality masking on/off (off automatically when there is no auxiliary band).
        mask_p_scale: drop probability ``p = tanh(progress) * mask_p_scale`` (spec §3.1 M2).
        sar_noise: ``"speckle"`` (multiplicative Gamma speckle, Eq. 8) or ``"gaussian"`` (Concatenate-Diff, §3.4).
        sar_looks: None = per-step ``Gamma(1/beta_t, 1/beta_t)`` (spec §3.2 S1 default); an int L = constant
            ``Gamma(L, L)`` every step (literal Eq. 5 reading; noisy, see spec).
        sar_target: ``"log_speckle"`` (standardised log-speckle z, spec §3.2 S4) or ``"ratio"`` (``prod n - 1``).
    Features (spec §2.4-§2.5, §3.2 S6, §8 items 7-8):
        feature_t: diffusion step of the single noising (paper §4.1: t = 5).
        dedup: drop the duplicated half of feat[0] (spec §2.5); False = parity with Tab. 9 (C_dif = 32·S at w=16).
        bn_mode: ``"eval"`` (running statistics; required for features that do not depend on tiling) or
            ``"train"`` (SpectralDiff's batch statistics; depends on the tile, not exact under tiling).
        feature_halo: halo (pixels) read around every feature window; must be >= receptive radius (13).
    """

    width: int = 16
    T: int = 500
    beta_start: float = 1e-4
    beta_end: float = 0.02
    band_mode: str = "compact"
    parity_bands: int | None = None
    clip: float = 1.5
    sar_clip: float = 3.0
    tile: int = 64
    batch_size: int = 20
    iterations: int = 30000
    lr: float = 1e-4
    seed: int = 0
    min_valid_fraction: float = 0.5
    checkpoint_every: int = 500
    masking: bool = True
    mask_p_scale: float = 1.0
    sar_noise: str = "speckle"
    sar_looks: int | None = None
    sar_target: str = "log_speckle"
    feature_t: int = 5
    dedup: bool = False
    bn_mode: str = "eval"
    feature_halo: int = 16

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`EngineError` naming the first invalid option."""
        def bad(name: str, why: str) -> EngineError:
            return EngineError(f"diffusion option {name}={getattr(self, name)!r}: {why}",
                               "fix the value in the profile or on the command line")
        if self.width < 1:
            raise bad("width", "must be >= 1")
        if self.band_mode not in ("compact", "parity"):
            raise bad("band_mode", "must be 'compact' or 'parity'")
        if self.band_mode == "parity" and (not self.parity_bands or self.parity_bands % 8):
            raise bad("parity_bands", "parity mode needs a target band count that is a multiple of 8")
        if self.sar_noise not in ("speckle", "gaussian"):
            raise bad("sar_noise", "must be 'speckle' or 'gaussian'")
        if self.sar_target not in ("log_speckle", "ratio"):
            raise bad("sar_target", "must be 'log_speckle' or 'ratio'")
        if self.sar_looks is not None and self.sar_looks < 1:
            raise bad("sar_looks", "must be None or >= 1")
        if self.bn_mode not in ("eval", "train"):
            raise bad("bn_mode", "must be 'eval' or 'train'")
        if not (0 <= self.feature_t < self.T):
            raise bad("feature_t", f"must be in 0..{self.T - 1}")
        if self.tile < 8 or self.batch_size < 1 or self.iterations < 0 or self.lr <= 0:
            raise bad("tile", "tile >= 8, batch_size >= 1, iterations >= 0 and lr > 0 are required")
        if not (0.0 <= self.mask_p_scale <= 1.0 / math.tanh(1.0)):
            raise bad("mask_p_scale", "must be in [0, 1/tanh(1)] so that p stays a probability")
        if self.feature_halo < receptive_field_radius():
            raise bad("feature_halo", f"must be >= the U-Net's receptive-field radius {receptive_field_radius()}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of all options."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DiffusionConfig":
        """Inverse of :meth:`to_dict`; unknown keys are ignored (forward compatibility)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def paper(cls, **overrides: Any) -> "DiffusionConfig":
        """``paper`` profile: SpectralDiff settings (width 16, 64² tiles, batch 20, Adam 1e-4; spec §2.1)."""
        return cls(**overrides)

    @classmethod
    def fast(cls, **overrides: Any) -> "DiffusionConfig":
        """``fast`` profile: width 4 (1/16 of the MACs), 32² tiles, batch 4, 100 iterations, Adam lr 1e-3, and the
        duplicated half of feat[0] dropped (``dedup``, spec §2.5: C_dif = 4·S = 64 for 13 Sentinel-2 bands,
        the same information as 8·S).

        Measured on the project's 2-core CPU (torch 2.13, 2 threads; ``scripts/demo.sh``, ``benchmarks/``): about
        0.25 s per iteration on an idle machine (1.2-1.8 s when the machine was shared with other jobs); L1 loss
        0.77 -> 0.36 over 150 iterations on real Delmarva tiles. ``paper`` on the same CPU: ~9.4 s per
        forward+backward of only 2 tiles (a batch of 20 is ~90 s per iteration) and ~90 s of features per
        512x512: GPU only.
        Gives up: model capacity (272 325 vs 4 299 633 parameters), C_dif = 4·S instead of 32·S (an eighth of
        the channels: the classifier is smaller and faster), tile context (32 vs 64 px), and training length
        (a few hundred thousand voxels seen instead of SpectralDiff's >= 30 000 epochs); the higher learning rate
        compensates for the short run. Features stay deterministic and tiling-exact.
        """
        base = dict(width=4, tile=32, batch_size=4, iterations=100, lr=1e-3, checkpoint_every=50, dedup=True)
        base.update(overrides)
        return cls(**base)


def receptive_field_radius() -> int:
    """Spatial receptive-field radius (pixels) of the encoder up to feat[0] (spec §2.3).

    conv0 3x3 (1) + 3 down blocks x [conv1 3x3 (1) + conv2 3x3 (1) + transform 5x5 (2)] = 13.
    """
    return 1 + 3 * (1 + 1 + 2)


# ------------------------------------------------------------------------------------------------------------
# Noise schedule (spec §2.1, §3.2 S3)
# ------------------------------------------------------------------------------------------------------------
class NoiseSchedule:
    """Linear DDPM schedule and speckle log-moments (spec §2.1, §3.2; paper Eqs. 5, 8, 9).

    Attributes (float64 tensors of shape ``(T,)``, index = 0-based step t):
        betas: ``beta_t = linspace(beta_start, beta_end, T)``.
        alphas: ``1 - beta_t``; alpha_bar: ``cumprod(alphas)`` (``alpha_bar_5 = 0.998802``,
            ``alpha_bar_499 = 0.006353``).
        sqrt_ab, sqrt_1mab: ``sqrt(alpha_bar_t)``, ``sqrt(1 - alpha_bar_t)`` (Gaussian branch of Eq. 8).
        shape: per-step Gamma shape ``k_t`` = ``1/beta_t`` (spec S1) or the constant looks ``L``.
        Mcum, Vcum: ``sum_{i<=t} [psi(k_i) - ln k_i]`` and ``sum_{i<=t} psi'(k_i)``: mean and variance of
            ``log prod_{i<=t} n_i`` with ``n_i ~ Gamma(k_i, rate=k_i)`` (spec §3.2 S2-S3).
    """

    def __init__(self, T: int = 500, beta_start: float = 1e-4, beta_end: float = 0.02,
                 sar_looks: int | None = None):
        self.T = int(T)
        self.betas = torch.linspace(beta_start, beta_end, self.T, dtype=torch.float64)
        self.alphas = 1.0 - self.betas
        self.alpha_bar = torch.cumprod(self.alphas, 0)
        self.sqrt_ab = self.alpha_bar.sqrt()
        self.sqrt_1mab = (1.0 - self.alpha_bar).sqrt()
        if sar_looks is None:
            self.shape = 1.0 / self.betas
        else:
            self.shape = torch.full((self.T,), float(sar_looks), dtype=torch.float64)
        mu = torch.digamma(self.shape) - torch.log(self.shape)
        var = torch.polygamma(1, self.shape)
        self.Mcum = torch.cumsum(mu, 0)
        self.Vcum = torch.cumsum(var, 0)

    @classmethod
    def from_config(cls, config: DiffusionConfig) -> "NoiseSchedule":
        return cls(config.T, config.beta_start, config.beta_end, config.sar_looks)

    def speckle_product(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Log-normal speckle product ``prod_{i<=t} n_i = exp(Mcum_t + sqrt(Vcum_t) z)`` (spec §3.2 S3).

        Args:
            t: int64 steps, shape broadcastable to ``z`` (e.g. ``(n,1,1,1,1)``).
            z: standard normal draws (any shape). Returns the product, same shape/dtype as ``z``.
        """
        m = self.Mcum.to(z.device)[t].to(z.dtype)
        v = self.Vcum.to(z.device)[t].to(z.dtype)
        return torch.exp(m + v.sqrt() * z)

    def speckle_product_exact(self, t: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """Reference: ``t+1`` explicit draws ``n_i ~ Gamma(k_i, rate=k_i)`` multiplied; float64 ``(n,)``.

        Unit-test reference for :meth:`speckle_product` (spec §3.2 S3, §9); ``rng`` is a numpy Generator.
        """
        prod = np.ones(n, dtype=np.float64)
        for i in range(t + 1):
            k = float(self.shape[i])
            prod *= rng.gamma(k, 1.0 / k, size=n)
        return prod


def mask_probability(progress: float, mask_p_scale: float = 1.0) -> float:
    """Drop probability of the adaptive modality masks, ``p = tanh(progress) * mask_p_scale``.

    Paper Eq. 7 / Alg. 1 l.2, spec §3.1 (M1: p is the *drop* probability; M2: ``mask_p_scale``).
    ``progress`` in [0, 1] (clamped) is the fraction of the pretraining run done.
    """
    progress = min(max(float(progress), 0.0), 1.0)
    return math.tanh(progress) * float(mask_p_scale)


# ------------------------------------------------------------------------------------------------------------
# Band layout (spec §1.5)
# ------------------------------------------------------------------------------------------------------------
def _kind_of_modality(kind: str) -> str:
    if kind == "spectral":
        return SPECTRAL
    if kind in ("sar_db", "sar_linear", "sar"):
        return SAR
    if kind == "elevation":
        return ELEVATION
    return OTHER


def _attr(stat: Any, name: str) -> float:
    if isinstance(stat, dict):
        return float(stat[name])
    return float(getattr(stat, name))


class BandLayout:
    """The DDPM band axis of length S (spec §1.5; paper Eq. 8: ``[auxiliary; spectral]``).

    Auxiliary bands (SAR, elevation, other; modality order, then file/band order) come first, then the spectral
    block. ``compact`` zero-pads the end to a multiple of 8 (padding bands count as spectral); ``parity``
    linearly resamples the spectral block along the band axis (``align_corners=True``) to ``S - n_aux`` bands.

    Attributes:
        modality_kinds: the stack's modality kinds (``grid.KINDS``) in stack order.
        band_counts: bands per modality in stack order.
        mode, S: band mode and the band-axis length (multiple of 8).
        kinds: per-band kind vector of length S (:data:`SPECTRAL`, :data:`SAR`, :data:`ELEVATION`, :data:`OTHER`).
        n_aux, n_spectral: auxiliary input bands; spectral input bands (before padding / resampling).
        clip, sar_clip: see :class:`DiffusionConfig`.
    """

    def __init__(self, modality_kinds: Sequence[str], band_counts: Sequence[int], mode: str = "compact",
                 parity_bands: int | None = None, clip: float = 1.5, sar_clip: float = 3.0):
        if len(modality_kinds) != len(band_counts):
            raise EngineError("band layout: one band count per modality is required", "")
        self.modality_kinds = list(modality_kinds)
        self.band_counts = [int(c) for c in band_counts]
        self.mode = mode
        self.parity_bands = parity_bands
        self.clip = float(clip)
        self.sar_clip = float(sar_clip)
        kinds = [_kind_of_modality(k) for k in self.modality_kinds]
        self._aux_src: list[tuple[int, int, str]] = []   # (modality index, band, kind) in layout order
        self._spec_src: list[tuple[int, int]] = []
        for m, (k, c) in enumerate(zip(kinds, self.band_counts)):
            for b in range(c):
                if k == SPECTRAL:
                    self._spec_src.append((m, b))
                else:
                    self._aux_src.append((m, b, k))
        self.n_aux = len(self._aux_src)
        self.n_spectral = len(self._spec_src)
        if self.n_spectral == 0:
            raise EngineError("the diffusion stage needs a spectral modality", "add the spectral bands")
        if mode == "compact":
            total = self.n_aux + self.n_spectral
            self.S = int(math.ceil(total / 8) * 8)
            n_spec_out = self.S - self.n_aux
            self._resample = None
        elif mode == "parity":
            if not parity_bands or parity_bands % 8 or parity_bands <= self.n_aux:
                raise EngineError(f"parity band count {parity_bands} must be a multiple of 8 larger than the "
                                  f"{self.n_aux} auxiliary bands", "choose e.g. 64, 128 or 256")
            self.S = int(parity_bands)
            n_spec_out = self.S - self.n_aux
            self._resample = _linear_resample_matrix(self.n_spectral, n_spec_out)
        else:
            raise EngineError(f"unknown band mode {mode!r}", "use 'compact' or 'parity'")
        self.kinds: list[str] = [k for (_, _, k) in self._aux_src] + [SPECTRAL] * n_spec_out

    # -- helpers -----------------------------------------------------------------------------------------
    @property
    def has_auxiliary(self) -> bool:
        """True when the band axis holds at least one auxiliary band (masking is meaningful)."""
        return self.n_aux > 0

    def kind_mask(self, kind: str) -> np.ndarray:
        """Boolean ``(S,)`` vector, True where ``kinds == kind``."""
        return np.array([k == kind for k in self.kinds], dtype=bool)

    @classmethod
    def from_stack(cls, stack: Any, config: DiffusionConfig) -> "BandLayout":
        """Layout for a ``grid.RasterStack`` (uses ``stack.modalities[i].kind`` and ``stack.band_counts``)."""
        return cls([m.kind for m in stack.modalities], list(stack.band_counts), config.band_mode,
                   config.parity_bands, config.clip, config.sar_clip)

    def to_dict(self) -> dict[str, Any]:
        return {"modality_kinds": self.modality_kinds, "band_counts": self.band_counts, "mode": self.mode,
                "parity_bands": self.parity_bands, "clip": self.clip, "sar_clip": self.sar_clip,
                "S": self.S, "kinds": self.kinds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BandLayout":
        return cls(d["modality_kinds"], d["band_counts"], d["mode"], d.get("parity_bands"),
                   d.get("clip", 1.5), d.get("sar_clip", 3.0))

    def check_stack(self, stack: Any) -> None:
        """Raise :class:`EngineError` when ``stack`` does not have the modalities / bands of this layout."""
        kinds = [m.kind for m in stack.modalities]
        counts = list(stack.band_counts)
        if [_kind_of_modality(k) for k in kinds] != [_kind_of_modality(k) for k in self.modality_kinds] \
                or counts != self.band_counts:
            raise EngineError(
                f"the input rasters ({list(zip(kinds, counts))}) do not match the pretrained model's bands "
                f"({list(zip(self.modality_kinds, self.band_counts))})",
                "give the same spectral and auxiliary rasters, in the same order, as for pretraining")

    # -- assembly ----------------------------------------------------------------------------------------
    def assemble(self, window: Any, stats: Sequence[Sequence[Any]]) -> np.ndarray:
        """Normalised DDPM input for one window (spec §1.3, §1.5).

        Args:
            window: ``grid.StackWindow``: ``arrays`` = one float32 ``(C_m, h, w)`` per modality (SAR in dB),
                ``valid`` bool ``(h, w)``.
            stats: ``stats[m][b]`` = ``BandStats`` (p2, p98, ...; SAR in dB) per modality and band.
        Returns:
            float32 ``(S, h, w)``: spectral and elevation robust min-max (p2 -> -1, p98 -> 1) clipped to
            ``[-clip, clip]``; SAR ``db_to_linear(x) / db_to_linear(p98_dB)`` clipped to ``[0, sar_clip]`` (the
            percentile commutes with the monotone dB transform); padding bands 0; invalid pixels 0.
        """
        arrays = window.arrays
        valid = np.asarray(window.valid, dtype=bool)
        h, w = valid.shape
        out = np.zeros((self.S, h, w), dtype=np.float32)
        for i, (m, b, k) in enumerate(self._aux_src):
            x = np.asarray(arrays[m][b], dtype=np.float32)
            st = stats[m][b]
            if k == SAR:
                lin = db_to_linear(x)
                scale = max(float(db_to_linear(_attr(st, "p98"))), 1e-12)
                out[i] = np.clip(lin / np.float32(scale), 0.0, self.sar_clip)
            else:
                out[i] = _robust_minmax(x, st, self.clip)
        spec = np.empty((self.n_spectral, h, w), dtype=np.float32)
        for j, (m, b) in enumerate(self._spec_src):
            spec[j] = _robust_minmax(np.asarray(arrays[m][b], dtype=np.float32), stats[m][b], self.clip)
        if self._resample is None:
            out[self.n_aux:self.n_aux + self.n_spectral] = spec
        else:
            out[self.n_aux:] = np.tensordot(self._resample, spec, axes=(1, 0)).astype(np.float32)
        out[:, ~valid] = 0.0
        return out


def _robust_minmax(x: np.ndarray, st: Any, clip: float) -> np.ndarray:
    lo, hi = _attr(st, "p2"), _attr(st, "p98")
    span = hi - lo if hi - lo > 1e-12 else 1.0
    y = (x - np.float32(lo)) * np.float32(2.0 / span) - np.float32(1.0)
    return np.clip(y, -clip, clip).astype(np.float32, copy=False)


def _linear_resample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of 1-D linear interpolation with ``align_corners=True`` (spec §1.5 parity)."""
    w = np.zeros((n_out, n_in), dtype=np.float64)
    if n_in == 1:
        w[:, 0] = 1.0
        return w
    pos = np.linspace(0.0, n_in - 1.0, n_out) if n_out > 1 else np.zeros(1)
    lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
    frac = pos - lo
    w[np.arange(n_out), lo] = 1.0 - frac
    w[np.arange(n_out), lo + 1] += frac
    return w


# ------------------------------------------------------------------------------------------------------------
# SpectralDiff 3-D U-Net (spec §2.2-§2.3)
# ------------------------------------------------------------------------------------------------------------
class SinusoidalPositionEmbeddings(nn.Module):
    """Sinusoidal time embedding (spec §2.2): ``freq_k = exp(-ln(10000) k/(half-1))``, ``[sin, cos]``.

    forward(t: (n,) any numeric dtype) -> (n, dim) float32.
    """

    def __init__(self, dim: int = 32):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        k = torch.arange(half, device=t.device, dtype=torch.float32)
        freq = torch.exp(-math.log(10000.0) * k / (half - 1))
        emb = t.to(torch.float32)[:, None] * freq[None, :]
        return torch.cat([emb.sin(), emb.cos()], dim=-1)


class Block3d(nn.Module):
    """SpectralDiff ``Block3d`` (spec §2.3): ReLU *before* BN, time injection, spectral-only resampling.

    ``h = BN1(ReLU(conv1(x))) + ReLU(Linear(tau))``; ``h = BN2(ReLU(conv2(h)))``; ``return transform(h)``.
    Down: ``transform = Conv3d(out,out,(4,5,5),(2,1,1),(1,2,2))`` halves S. Up: ``conv1`` takes ``2*in``
    channels and ``transform = ConvTranspose3d(...)`` doubles S. H, W are kept.

    forward(x (n, in or 2*in, S, H, W), tau (n, time_dim)) -> (n, out, S/2 or 2S, H, W).
    """

    def __init__(self, in_ch: int, out_ch: int, time_dim: int = 32, up: bool = False):
        super().__init__()
        self.time_mlp = nn.Linear(time_dim, out_ch)
        if up:
            self.conv1 = nn.Conv3d(2 * in_ch, out_ch, 3, padding=1)
            self.transform = nn.ConvTranspose3d(out_ch, out_ch, (4, 5, 5), (2, 1, 1), (1, 2, 2))
        else:
            self.conv1 = nn.Conv3d(in_ch, out_ch, 3, padding=1)
            self.transform = nn.Conv3d(out_ch, out_ch, (4, 5, 5), (2, 1, 1), (1, 2, 2))
        self.conv2 = nn.Conv3d(out_ch, out_ch, 3, padding=1)
        self.bnorm1 = nn.BatchNorm3d(out_ch)
        self.bnorm2 = nn.BatchNorm3d(out_ch)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        h = self.bnorm1(self.relu(self.conv1(x)))
        h = h + self.relu(self.time_mlp(tau))[(...,) + (None,) * 3]
        h = self.bnorm2(self.relu(self.conv2(h)))
        return self.transform(h)


class SpectralDiffUNet(nn.Module):
    """SpectralDiff ``SimpleUnet(_image_channels=1)`` with a width parameter (spec §2.3).

    Channels ``(w, 2w, 4w, 8w)``; width 16 gives exactly 4 299 633 parameters (Tab. 9 "BDGF (P) 4.30 M").
    ``time_mlp = Sinusoid(32) -> Linear(32,32) -> ReLU``; ``conv0 = Conv3d(1, w, 3, p=1)``; 3 down blocks,
    3 up blocks (skip concatenation, spec §2.5 quirk: the first "skip" is the bottleneck itself);
    ``output = Conv3d(w, 1, 1)``.

    forward(x (n,1,S,H,W), t (n,)) -> eps_hat (n,1,S,H,W); ``S % 8 == 0``.
    features(x, t) -> feat[0] = ``cat(h3, h3)`` (n, 16w, S/8, H, W), encoder only.
    """

    def __init__(self, width: int = 16, time_dim: int = 32):
        super().__init__()
        self.width = int(width)
        w = self.width
        down = (w, 2 * w, 4 * w, 8 * w)
        up = (8 * w, 4 * w, 2 * w, w)
        self.time_mlp = nn.Sequential(SinusoidalPositionEmbeddings(time_dim), nn.Linear(time_dim, time_dim),
                                      nn.ReLU())
        self.conv0 = nn.Conv3d(1, down[0], 3, padding=1)
        self.downs = nn.ModuleList([Block3d(down[i], down[i + 1], time_dim) for i in range(3)])
        self.ups = nn.ModuleList([Block3d(up[i], up[i + 1], time_dim, up=True) for i in range(3)])
        self.output = nn.Conv3d(up[-1], 1, 1)

    @property
    def feature_channels(self) -> int:
        """Channels of feat[0] (before flattening the band axis): ``16 * width``."""
        return 16 * self.width

    def _encode(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if x.shape[2] % 8:
            raise ValueError(f"band axis {x.shape[2]} is not a multiple of 8")
        tau = self.time_mlp(t)
        h = self.conv0(x)
        skips = []
        for block in self.downs:
            h = block(h, tau)
            skips.append(h)
        return tau, skips

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tau, skips = self._encode(x, t)
        h = skips[-1]
        for block in self.ups:
            h = block(torch.cat((h, skips.pop()), dim=1), tau)
        return self.output(h)

    def features(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """feat[0] = ``cat(h3, h3)``, shape ``(n, 16*width, S/8, H, W)`` (spec §2.4-§2.5); no decoder pass."""
        _, skips = self._encode(x, t)
        return torch.cat((skips[-1], skips[-1]), dim=1)


# ------------------------------------------------------------------------------------------------------------
# BDGF forward process (spec §3, Alg. 1)
# ------------------------------------------------------------------------------------------------------------
class ForwardSample(NamedTuple):
    """Result of :func:`bdgf_forward` (all ``(n,1,S,h,w)`` unless noted).

    x_t: noised input; target: the U-Net's regression target (eps at Gaussian bands, z or ``prod n - 1`` at SAR
    bands); keep: float mask applied to x_0 (1 = kept); sample_mask: bool ``(n,1,1,1,1)`` (True = spectral part
    dropped); structure_mask: bool ``(n,1,S,h,w)`` (True = voxel dropped; only meaningful at spectral bands).
    """

    x_t: torch.Tensor
    target: torch.Tensor
    keep: torch.Tensor
    sample_mask: torch.Tensor
    structure_mask: torch.Tensor


def bdgf_forward(x0: torch.Tensor, t: torch.Tensor, kinds: Sequence[str], schedule: NoiseSchedule,
                 config: DiffusionConfig, p: float, generator: torch.Generator | None = None,
                 eps: torch.Tensor | None = None, z: torch.Tensor | None = None,
                 apply_masks: bool = True) -> ForwardSample:
    """BDGF forward process q(x_t | x_0) for one batch (paper Eq. 8, Alg. 1; spec §3.1-§3.3).

    - Spectral bands: ``x0 <- (1 - m_s)(1 - m_r) x0`` with ``m_s ~ Bernoulli(p)`` per sample ``(n,1,1,1,1)``
      and ``m_r ~ Bernoulli(p)`` per voxel (1x1x1 structure mask), then ``sqrt(ab_t) x0 + sqrt(1-ab_t) eps``.
      Masking only when ``apply_masks`` and ``config.masking`` and there is an auxiliary band.
    - SAR bands (``sar_noise="speckle"``): ``x_t = sqrt(ab_t) * exp(Mcum_t + sqrt(Vcum_t) z) * x0`` (Eq. 8, S3),
      no additive noise, never masked; target ``z`` (S4) or ``prod n - 1`` (``sar_target="ratio"``).
      ``sar_noise="gaussian"``: like elevation.
    - Elevation / other auxiliary: Gaussian like spectral, never masked; target eps.

    Args:
        x0: ``(n,1,S,h,w)`` normalised input (:meth:`BandLayout.assemble`). t: int64 ``(n,)`` steps.
        kinds: per-band kind vector (length S). p: drop probability (:func:`mask_probability`).
        generator: torch RNG for masks and (when not given) ``eps`` / ``z``.
        eps, z: optional standard-normal fields ``(n,1,S,h,w)`` (feature extraction passes hash noise).
    """
    n, _, S, h, w = x0.shape
    dev, dt = x0.device, x0.dtype
    spectral = torch.tensor([k == SPECTRAL for k in kinds], device=dev).view(1, 1, S, 1, 1)
    sar = torch.tensor([k == SAR for k in kinds], device=dev).view(1, 1, S, 1, 1)
    use_speckle = config.sar_noise == "speckle" and bool(sar.any())
    masked = apply_masks and config.masking and p > 0 and not bool(spectral.all())
    if masked:
        sample_mask = torch.rand((n, 1, 1, 1, 1), generator=generator, device=dev) < p
        structure_mask = torch.rand((n, 1, S, h, w), generator=generator, device=dev) < p
        keep = (~(sample_mask | structure_mask) | ~spectral).to(dt)
        x0 = x0 * keep
    else:
        sample_mask = torch.zeros((n, 1, 1, 1, 1), dtype=torch.bool, device=dev)
        structure_mask = torch.zeros((1, 1, 1, 1, 1), dtype=torch.bool, device=dev).expand(n, 1, S, h, w)
        keep = torch.ones((1, 1, 1, 1, 1), dtype=dt, device=dev).expand(n, 1, S, h, w)
    if eps is None:
        eps = torch.randn(x0.shape, generator=generator, device=dev, dtype=dt)
    tt = t.view(n, 1, 1, 1, 1).to(dev)
    sab = schedule.sqrt_ab.to(dev)[tt].to(dt)
    s1m = schedule.sqrt_1mab.to(dev)[tt].to(dt)
    x_t = sab * x0 + s1m * eps
    target = eps
    if use_speckle:
        if z is None:
            z = torch.randn(x0.shape, generator=generator, device=dev, dtype=dt)
        spk = schedule.speckle_product(tt, z)
        x_t = torch.where(sar, sab * spk * x0, x_t)
        sar_target = z if config.sar_target == "log_speckle" else spk - 1.0
        target = torch.where(sar, sar_target, eps)
    return ForwardSample(x_t, target, keep, sample_mask, structure_mask)


# ------------------------------------------------------------------------------------------------------------
# Counter-based noise for tiling-exact features (spec §3.2 S6)
# ------------------------------------------------------------------------------------------------------------
_M32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """32-bit integer finaliser on int64 tensors holding values in [0, 2^32) (no int64 overflow)."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x2C1B3C6D) & _M32   # < 2^31, so the product stays below 2^63
    x = x ^ (x >> 16)
    x = (x * 0x297A2D39) & _M32
    return x ^ (x >> 15)


def hash_normal(seed: int, bands: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                stream: int = 0) -> torch.Tensor:
    """Standard-normal field that is a pure function of ``(seed, stream, band, global row, global col)``.

    Counter-based hash (3 rounds of a 32-bit integer finaliser) -> two uniforms in (0, 1) -> Box-Muller
    (float64, returned as float32). Because the value at a voxel does not depend on the window, features are
    identical whatever the tiling (spec §2.4 "one random draw for all tiles", made tiling-exact).

    Args:
        bands: int64 ``(S,)``; rows: int64 ``(h,)``; cols: int64 ``(w,)`` (may be negative: outside the grid).
    Returns:
        float32 ``(S, h, w)`` on the device of ``bands``.
    """
    key = _mix32(torch.tensor(int(seed) & _M32, dtype=torch.int64, device=bands.device) + stream * 0x9E3779B9)
    hb = _mix32(key + bands.to(torch.int64)).view(-1, 1, 1)
    hr = _mix32(rows.to(torch.int64) & _M32).view(1, -1, 1)
    hc = _mix32((cols.to(torch.int64) + 0x5BD1E995) & _M32).view(1, 1, -1)
    h1 = _mix32(_mix32(hb ^ hr) + hc)
    h2 = _mix32(h1 + 0x68E31DA4)
    u1 = (h1.to(torch.float64) + 0.5) / 4294967296.0
    u2 = (h2.to(torch.float64) + 0.5) / 4294967296.0
    return (torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)).to(torch.float32)


# ------------------------------------------------------------------------------------------------------------
# Checkpoints (safetensors + JSON metadata; no pickle)
# ------------------------------------------------------------------------------------------------------------
def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"optim.{idx}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    return tensors, {"param_groups": sd["param_groups"]}


def _optimizer_load(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                    device: torch.device) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, v in tensors.items():
        if name.startswith("optim."):
            _, idx, k = name.split(".", 2)
            state.setdefault(int(idx), {})[k] = v if k == "step" else v.to(device)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _save_checkpoint(path: str, unet: nn.Module, opt: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    tensors = {f"unet.{k}": v.detach().cpu().contiguous() for k, v in unet.state_dict().items()}
    otens, ometa = _optimizer_tensors(opt)
    tensors.update(otens)
    md = {k: json.dumps(v) for k, v in meta.items()}
    md["optimizer"] = json.dumps(ometa)
    md["format"] = _CHECKPOINT_FORMAT
    from .files import atomic_output

    with atomic_output(path, overwrite=True) as tmp:   # a killed run never leaves a half-written checkpoint
        save_file(tensors, tmp, metadata=md)


def load_checkpoint(path: str, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a pretraining checkpoint: ``(tensors, metadata)`` with JSON values decoded.

    Tensors: ``unet.*`` (U-Net state dict) and ``optim.<i>.<name>`` (Adam state). Metadata keys: ``format``,
    ``iteration``, ``config``, ``layout``, ``stats``, ``rng``, ``history``, ``optimizer``.
    """
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device=str(device)) as f:
            raw = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - any reading problem is a user-facing input error
        raise EngineError(f"cannot read diffusion checkpoint {path}: {exc}",
                          "start without --resume or give the checkpoint written by an earlier run") from exc
    if raw.get("format") != _CHECKPOINT_FORMAT:
        raise EngineError(f"{path} is not a diffusion pretraining checkpoint", "start without --resume")
    meta = {k: (v if k == "format" else json.loads(v)) for k, v in raw.items()}
    return tensors, meta


def _stats_to_json(stats: Sequence[Sequence[Any]]) -> list[list[dict[str, float]]]:
    names = ("p2", "p98", "mean", "std", "min", "max")
    return [[{n: _attr(s, n) for n in names if (isinstance(s, dict) and n in s) or hasattr(s, n)} for s in mod]
            for mod in stats]


# ------------------------------------------------------------------------------------------------------------
# Pretraining (spec §2.1, §3.3, Alg. 1)
# ------------------------------------------------------------------------------------------------------------
@dataclass
class PretrainResult:
    """Result of :func:`pretrain`.

    unet: trained :class:`SpectralDiffUNet` (on the training device, eval mode). layout: :class:`BandLayout`.
    config: :class:`DiffusionConfig`. history: ``[(iteration, loss)]`` (iteration 1-based, L1 loss).
    stats: the normalisation statistics used (``stats[m][b]`` BandStats), needed again at extraction.
    iteration: iterations done. seconds: wall time of this call.
    """

    unet: SpectralDiffUNet
    layout: BandLayout
    config: DiffusionConfig
    history: list[tuple[int, float]]
    stats: Any = None
    iteration: int = 0
    seconds: float = 0.0

    def tensors(self) -> dict[str, torch.Tensor]:
        """U-Net state dict (CPU, contiguous) for ``artifact.save_model``; keys prefixed ``unet.``."""
        return {f"unet.{k}": v.detach().cpu().contiguous() for k, v in self.unet.state_dict().items()}

    def metadata(self) -> dict[str, Any]:
        """JSON-able metadata: config, layout, stats, iterations, history."""
        return {"diffusion_config": self.config.to_dict(), "band_layout": self.layout.to_dict(),
                "diffusion_stats": _stats_to_json(self.stats) if self.stats is not None else None,
                "pretrain_iterations": self.iteration, "pretrain_history": [list(h) for h in self.history]}


def _region(stack: Any, window: Any) -> tuple[int, int, int, int]:
    """(row_off, col_off, height, width) of the sampling region: the whole grid or ``window``."""
    H, W = int(stack.grid.height), int(stack.grid.width)
    if window is None:
        return 0, 0, H, W
    if isinstance(window, dict):
        r, c, h, w = window["row_off"], window["col_off"], window["height"], window["width"]
    elif hasattr(window, "row_off"):
        r, c, h, w = window.row_off, window.col_off, window.height, window.width
    else:
        r, c, h, w = window
    r0, c0 = max(int(r), 0), max(int(c), 0)
    r1, c1 = min(int(r) + int(h), H), min(int(c) + int(w), W)
    if r1 <= r0 or c1 <= c0:
        raise EngineError("the pretraining extent does not overlap the rasters", "choose an extent inside them")
    return r0, c0, r1 - r0, c1 - c0


def _draw_tile(stack: Any, layout: BandLayout, stats: Any, region: tuple[int, int, int, int], tile: int,
               rng: np.random.Generator, min_valid: float, max_tries: int = 200) -> np.ndarray:
    r0, c0, h, w = region
    for _ in range(max_tries):
        r = r0 + int(rng.integers(0, h - tile + 1))
        c = c0 + int(rng.integers(0, w - tile + 1))
        win = stack.read(r, c, tile, tile)
        if float(np.mean(win.valid)) >= min_valid:
            return layout.assemble(win, stats)
    raise EngineError(f"no {tile}x{tile} tile with at least {min_valid:.0%} valid pixels was found in "
                      f"{max_tries} random draws", "check the nodata value and the extent of the rasters")


def pretrain(stack: Any, config: DiffusionConfig, stats: Any = None, reporter: Any = None,
             device: str | torch.device = "cpu", checkpoint_path: str | None = None, resume: bool = False,
             window: Any = None) -> PretrainResult:
    """Pretrain the SpectralDiff U-Net with the BDGF forward process (paper Alg. 1; spec §2.1, §3.3).

    Every iteration draws ``batch_size`` random ``tile x tile`` windows from the valid area of the scene (or of
    ``window``) through ``stack.read`` (memory ~ batch x tile, never the scene), assembles them with
    :class:`BandLayout`, draws ``t ~ U{0..T-1}``, applies :func:`bdgf_forward` with masking progress
    ``iteration / (iterations - 1)`` and takes an Adam step on the L1 loss between the U-Net output and the
    target (all voxels). bf16 autocast on CUDA.

    Args:
        stack: ``grid.RasterStack`` (``modalities``, ``band_counts``, ``grid.height/width``, ``read``).
        config: :class:`DiffusionConfig`. stats: ``compute_statistics(stack)`` output (computed when None).
        reporter: ``progress.Reporter``: task "pretrain" with loss; cancellation between iterations.
        device: torch device. checkpoint_path: safetensors checkpoint written every ``checkpoint_every``
            iterations, at the end and on cancel (then :class:`Cancelled` is re-raised).
        resume: continue from ``checkpoint_path`` (model, optimiser, RNG states, history, masking progress).
        window: optional sampling region: ``(row_off, col_off, height, width)`` or an object/dict with those.
    Returns:
        :class:`PretrainResult`. Deterministic for a fixed seed on CPU (torch and numpy generators).
    """
    rep = ensure(reporter)
    t_start = time.monotonic()
    dev = torch.device(device)
    layout = BandLayout.from_stack(stack, config)
    if stats is None:
        from .grid import compute_statistics

        stats = compute_statistics(stack, seed=config.seed, window=window)
    region = _region(stack, window)
    tile = min(config.tile, region[2], region[3])
    if tile < 8:
        raise EngineError(f"the pretraining area ({region[2]}x{region[3]} px) is too small",
                          "use an extent of at least 8x8 pixels")

    from .distributed import info as dist_info
    from .distributed import wrap

    dinfo = dist_info()              # under torchrun: own tiles per process, gradients averaged (DDP)
    torch.manual_seed(config.seed)   # parameter init (identical on every process)
    unet = SpectralDiffUNet(config.width).to(dev)
    model = wrap(unet, dev, find_unused=False)
    opt = torch.optim.Adam(unet.parameters(), lr=config.lr)
    schedule = NoiseSchedule.from_config(config)
    rng = np.random.Generator(np.random.PCG64([config.seed, dinfo.rank]) if dinfo.enabled
                              else np.random.PCG64(config.seed))
    gen = torch.Generator(device=dev)
    gen.manual_seed(config.seed + 1 + 1_000_003 * dinfo.rank)
    history: list[tuple[int, float]] = []
    it = 0
    if resume:
        if not checkpoint_path or not os.path.exists(checkpoint_path):
            raise EngineError(f"no checkpoint to resume from: {checkpoint_path}", "run without --resume")
        tensors, meta = load_checkpoint(checkpoint_path)
        if meta["layout"]["S"] != layout.S or meta["config"]["width"] != config.width:
            raise EngineError(f"checkpoint {checkpoint_path} was written for other bands or width",
                              "resume with the same rasters and profile, or start without --resume")
        unet.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("unet.")})
        unet.to(dev)
        _optimizer_load(opt, tensors, meta["optimizer"], dev)
        it = int(meta["iteration"])
        history = [(int(a), float(b)) for a, b in meta["history"]]
        if dinfo.is_main:
            rng.bit_generator.state = meta["rng"]["numpy"]
            gen.set_state(torch.tensor(meta["rng"]["torch"], dtype=torch.uint8))
        else:   # the checkpoint holds rank 0's generators: other processes re-seed from (seed, rank, iteration)
            rng = np.random.Generator(np.random.PCG64([config.seed, dinfo.rank, it]))
            gen.manual_seed(config.seed + 1 + 1_000_003 * dinfo.rank + it)
        rep.info(f"resuming diffusion pretraining at iteration {it}")

    def save() -> None:
        if checkpoint_path and dinfo.is_main:
            _save_checkpoint(checkpoint_path, unet, opt, {
                "iteration": it, "config": config.to_dict(), "layout": layout.to_dict(),
                "stats": _stats_to_json(stats), "history": history,
                "rng": {"numpy": rng.bit_generator.state, "torch": gen.get_state().tolist()}})

    total = config.iterations
    kinds = layout.kinds
    masking = config.masking and layout.has_auxiliary
    rep.info(f"diffusion pretraining: S={layout.S} bands ({layout.n_aux} auxiliary + {layout.n_spectral} "
             f"spectral, {layout.mode}), width {config.width} "
             f"({sum(p.numel() for p in unet.parameters()):,} parameters), {tile}x{tile} tiles x "
             f"{config.batch_size}, {total} iterations, masking {'on' if masking else 'off'}, device {dev}")
    use_amp = dev.type == "cuda"
    unet.train()
    task = rep.task("pretrain", total)
    try:
        if it:
            task.n = min(it, task.total)
        while it < total:
            rep.check_cancelled()
            x0 = np.stack([_draw_tile(stack, layout, stats, region, tile, rng, config.min_valid_fraction)
                           for _ in range(config.batch_size)])
            x0t = torch.from_numpy(x0).to(dev)[:, None]
            t = torch.randint(0, config.T, (config.batch_size,), generator=gen, device=dev)
            p = mask_probability(it / max(total - 1, 1), config.mask_p_scale)
            fs = bdgf_forward(x0t, t, kinds, schedule, config, p, generator=gen)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
                pred = model(fs.x_t, t)
            loss = F.l1_loss(pred.float(), fs.target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1
            lv = float(loss.detach())
            history.append((it, lv))
            if not math.isfinite(lv):
                raise EngineError(f"diffusion pretraining diverged at iteration {it} (loss {lv})",
                                  "lower the learning rate or check the input statistics")
            if config.checkpoint_every and it % config.checkpoint_every == 0 and it < total:
                save()
            task.update(1, loss=lv, p_mask=round(p, 3))
    except Cancelled:
        save()
        raise
    finally:
        task.close()
    save()
    unet.eval()
    return PretrainResult(unet, layout, config, history, stats, it, time.monotonic() - t_start)


# ------------------------------------------------------------------------------------------------------------
# Feature extraction (spec §2.4-§2.5, §3.2 S6)
# ------------------------------------------------------------------------------------------------------------
class FeatureExtractor:
    """Diffusion features ``f_dif`` of any window, exact under tiling (spec §2.4-§2.5; paper §4.1, t = 5).

    The input is noised once at ``t = feature_t`` with the BDGF forward process without masks (spec §3.2 S6)
    using :func:`hash_normal` noise keyed by (seed, band, global row, global col), run through the encoder
    (:meth:`SpectralDiffUNet.features`) with BatchNorm in ``bn_mode`` (default eval), and feat[0]
    ``(16w, S/8, h, w)`` is flattened C-major to ``(16w·S/8, h, w)`` (channel ``c·(S/8)+s``), or to
    ``(8w·S/8, h, w)`` with ``dedup`` (spec §2.5). A halo of ``config.feature_halo >= 13`` pixels is read around
    every window and cropped afterwards, so results do not depend on the window (with ``bn_mode="eval"``).

    Args:
        unet: trained :class:`SpectralDiffUNet`. layout: :class:`BandLayout`. config: :class:`DiffusionConfig`.
        stats: normalisation statistics (``stats[m][b]``). device: torch device.
    Attributes:
        halo (pixels), channels (C_dif = ``2·w·S``, or ``w·S`` with dedup; 32·S at width 16), device.
    """

    def __init__(self, unet: SpectralDiffUNet, layout: BandLayout, config: DiffusionConfig, stats: Any,
                 device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.unet = unet.to(self.device)
        self.layout = layout
        self.config = config
        self.stats = stats
        self.schedule = NoiseSchedule.from_config(config)
        self.halo = int(config.feature_halo)
        self.seed = int(config.seed)

    @classmethod
    def from_pretrain(cls, result: PretrainResult, device: str | torch.device = "cpu") -> "FeatureExtractor":
        return cls(result.unet, result.layout, result.config, result.stats, device)

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], metadata: dict[str, Any],
                     device: str | torch.device = "cpu") -> "FeatureExtractor":
        """Rebuild from :meth:`PretrainResult.tensors` / :meth:`PretrainResult.metadata` (e.g. a model file)."""
        config = DiffusionConfig.from_dict(metadata["diffusion_config"])
        layout = BandLayout.from_dict(metadata["band_layout"])
        unet = SpectralDiffUNet(config.width)
        unet.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("unet.")})
        return cls(unet, layout, config, metadata["diffusion_stats"], device)

    @property
    def channels(self) -> int:
        """C_dif: diffusion-feature channels per pixel (``2·width·S``; ``width·S`` with dedup)."""
        c = self.unet.feature_channels // (2 if self.config.dedup else 1)
        return c * self.layout.S // 8

    def noised_input(self, x: torch.Tensor, row0: int, col0: int) -> torch.Tensor:
        """``x_t`` at ``t = feature_t`` for an assembled array ``x (S, h, w)`` whose top-left pixel is at global
        ``(row0, col0)``; no masks (spec §3.2 S6). Returns ``(1, 1, S, h, w)`` float32 on the device."""
        S, h, w = x.shape
        bands = torch.arange(S, device=self.device)
        rows = torch.arange(h, device=self.device) + row0
        cols = torch.arange(w, device=self.device) + col0
        eps = hash_normal(self.seed, bands, rows, cols, stream=0)[None, None]
        z = hash_normal(self.seed, bands, rows, cols, stream=1)[None, None]
        t = torch.full((1,), self.config.feature_t, dtype=torch.int64, device=self.device)
        fs = bdgf_forward(x[None, None].to(self.device, torch.float32), t, self.layout.kinds, self.schedule,
                          self.config, 0.0, eps=eps, z=z, apply_masks=False)
        return fs.x_t

    @torch.no_grad()
    def features_for_array(self, x: np.ndarray | torch.Tensor, row_off: int, col_off: int) -> torch.Tensor:
        """Features of the core of an assembled array that already includes the halo.

        Args:
            x: ``(S, h + 2·halo, w + 2·halo)`` float32 from :meth:`BandLayout.assemble`.
            row_off, col_off: global grid offsets of the *core* (first non-halo pixel).
        Returns:
            float32 ``(C_dif, h, w)`` torch tensor on :attr:`device`.
        """
        x = torch.as_tensor(x)
        S, hh, ww = x.shape
        hal = self.halo
        if S != self.layout.S or hh <= 2 * hal or ww <= 2 * hal:
            raise ValueError(f"expected (S={self.layout.S}, h+2*{hal}, w+2*{hal}), got {tuple(x.shape)}")
        xt = self.noised_input(x, row_off - hal, col_off - hal)
        t = torch.full((1,), self.config.feature_t, dtype=torch.int64, device=self.device)
        was_training = self.unet.training
        saved_momentum = {}
        if self.config.bn_mode == "eval":
            self.unet.eval()
        else:  # SpectralDiff quirk: batch statistics; momentum 0 keeps the running statistics unchanged
            self.unet.train()
            for m in self.unet.modules():
                if isinstance(m, nn.BatchNorm3d):
                    saved_momentum[m] = m.momentum
                    m.momentum = 0.0
        try:
            if self.device.type == "cuda":   # exact fp32 (no TF32) and deterministic kernels: tiling-exact
                with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True,
                                                allow_tf32=False):
                    f = self.unet.features(xt, t)[0]          # (16w, S/8, H, W)
            else:
                f = self.unet.features(xt, t)[0]
        finally:
            for m, mom in saved_momentum.items():
                m.momentum = mom
            self.unet.train(was_training)
        if self.config.dedup:
            f = f[: f.shape[0] // 2]
        f = f[:, :, hal:hh - hal, hal:ww - hal]
        return f.reshape(-1, hh - 2 * hal, ww - 2 * hal).float().contiguous()

    def window_features(self, stack: Any, row_off: int, col_off: int, height: int, width: int) -> torch.Tensor:
        """Features of a window of the reference grid: reads ``window + halo`` via ``stack.read`` (zero-filled
        outside the grid, spec §1.4), assembles and extracts. Returns float32 ``(C_dif, height, width)``."""
        hal = self.halo
        win = stack.read(row_off - hal, col_off - hal, height + 2 * hal, width + 2 * hal)
        x = self.layout.assemble(win, self.stats)
        return self.features_for_array(x, row_off, col_off)
