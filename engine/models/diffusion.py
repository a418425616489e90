"""BDGF diffusion process: configuration, noise schedule beta_t, forward process, hash noise, features.

Implements the diffusion side of BDGF (Liu et al., arXiv 2509.23310, paper §3.1, Eqs. 5-10) on top of the
SpectralDiff DDPM, following ``engine-spec.md`` §2-§3. The U-Net is :mod:`engine.models.unet`, the band axis
:class:`engine.data.inputs.BandLayout`, the pretraining loop :mod:`engine.pretrain`.

Conventions
-----------
- The DDPM input is a 1-channel 3-D volume ``(n, 1, S, H, W)``; ``S % 8 == 0``.
- Diffusion steps ``t`` are 0-based (``t = 0..T-1``), as in SpectralDiff (spec notation).
- Every ambiguity resolution of spec §8 is a named option of :class:`DiffusionConfig`.
- Tensors are float32 unless said otherwise.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from ..data.inputs import SAR, SPECTRAL, BandLayout
from ..errors import EngineError
from .unet import SpectralDiffUNet, receptive_field_radius

__all__ = ["DiffusionConfig", "NoiseSchedule", "mask_probability", "ForwardSample", "bdgf_forward",
           "hash_normal", "FeatureExtractor"]


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
        if self.band_mode == "parity" and self.parity_bands is not None and (
                self.parity_bands < 8 or self.parity_bands % 8):
            raise bad("parity_bands", "parity mode needs a target band count that is a multiple of 8 "
                                      "(or None: chosen from the band count, see data.inputs.parity_band_count)")
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
        """``paper`` profile: SpectralDiff settings (width 16, 64² tiles, batch 20, Adam 1e-4; spec §2.1) with the
        ``parity`` band layout (spec §1.5: S from ``data.inputs.parity_band_count``, 256 for Augsburg, 64 for
        LCZ HK), which gives Tab. 9's C_dif = 32·S and classifier sizes; ``band_mode="compact"`` overrides it."""
        return cls(**{"band_mode": "parity", **overrides})

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
        No adaptive modality masking (``masking=False``; paper Eq. 7 and Alg. 1 keep it in ``paper``): its drop
        probability ``tanh(progress)`` is a curriculum for tens of thousands of iterations, and in 100 it has the
        U-Net spend most of its short run on inputs whose spectral bands are dropped (p = 0.76 at the end), while
        feature extraction never drops them. On the Sentinel-1 + Sentinel-2 benchmark pair 69_24 the features of
        a masked pretraining gave 0.918 cross-validated OA against 0.987 unmasked (pretraining seed 0; docs/
        benchmarks.md, "SAR in the `fast` profile"). Without an auxiliary modality masking is off in both profiles
        (spec §3.1).
        """
        base = dict(width=4, tile=32, batch_size=4, iterations=100, lr=1e-3, checkpoint_every=50, dedup=True,
                    masking=False)
        base.update(overrides)
        return cls(**base)


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


def _mix32_u32(x: np.ndarray) -> np.ndarray:
    """:func:`_mix32` on uint32 numpy arrays: wrap-around multiplication is the ``& (2^32 - 1)`` of the int64 form."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x2C1B3C6D)
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x297A2D39)
    return x ^ (x >> np.uint32(15))


def _hash_u32(seed: int, stream: int, bands: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two 32-bit hashes of :func:`hash_normal` computed on uint32 numpy arrays (CPU): the same bits as the
    int64 torch form at half the memory traffic and without the masks (3x faster; a tile's noise is ~8 % of its
    diffusion features on the CPU otherwise)."""
    def u32(t: torch.Tensor, add: int = 0) -> np.ndarray:
        return ((t.numpy().astype(np.int64) + add) & _M32).astype(np.uint32)

    with np.errstate(over="ignore"):
        key = _mix32_u32(np.array(((int(seed) & _M32) + stream * 0x9E3779B9) & _M32, np.uint32))
        hb = _mix32_u32(key + u32(bands))[:, None, None]
        hr = _mix32_u32(u32(rows))[None, :, None]
        hc = _mix32_u32(u32(cols, 0x5BD1E995))[None, None, :]
        h1 = _mix32_u32(_mix32_u32(hb ^ hr) + hc)
        h2 = _mix32_u32(h1 + np.uint32(0x68E31DA4))
    return torch.from_numpy(h1.astype(np.int64)), torch.from_numpy(h2.astype(np.int64))


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
    if bands.device.type == "cpu":
        h1, h2 = _hash_u32(seed, stream, bands, rows, cols)
    else:
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
    def from_pretrain(cls, result: Any, device: str | torch.device = "cpu") -> "FeatureExtractor":
        """From an :class:`engine.pretrain.PretrainResult` (U-Net, layout, config, statistics)."""
        return cls(result.unet, result.layout, result.config, result.stats, device)

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], metadata: Any,
                     device: str | torch.device = "cpu") -> "FeatureExtractor":
        """Rebuild from a model file's ``unet.*`` tensors and its :class:`engine.io.schema.ModelMetadata`."""
        config = DiffusionConfig.from_dict(metadata.diffusion.config)
        layout = BandLayout.from_dict(metadata.diffusion.band_layout)
        unet = SpectralDiffUNet(config.width)
        unet.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("unet.")})
        return cls(unet, layout, config, metadata.statistics(), device)

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
    def features_for_array(self, x: np.ndarray | torch.Tensor, row_off: int, col_off: int,
                           encoder: Any = None) -> torch.Tensor:
        """Features of the core of an assembled array that already includes the halo.

        Args:
            x: ``(S, h + 2·halo, w + 2·halo)`` float32 from :meth:`BandLayout.assemble`.
            row_off, col_off: global grid offsets of the *core* (first non-halo pixel).
            encoder: optional compiled U-Net encoder ``x_t (1, 1, S, H, W) -> feat[0]`` used instead of
                :meth:`SpectralDiffUNet.features` with ``bn_mode="eval"`` (``models.inference``).
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
            elif encoder is not None and self.config.bn_mode == "eval":
                f = encoder(xt)[0]
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
