"""SpectralDiff 3-D U-Net (spec §2.2-§2.3): the denoiser of the diffusion stage and the source of its features.

The input is a 1-channel 3-D volume ``(n, 1, S, H, W)`` (band axis S from
:class:`engine.data.inputs.BandLayout`, ``S % 8 == 0``); H and W are pixels of the reference grid and are never
down-sampled, so the encoder's receptive field is what the feature halo must cover.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["receptive_field_radius", "SinusoidalPositionEmbeddings", "Block3d", "SpectralDiffUNet"]


def receptive_field_radius() -> int:
    """Spatial receptive-field radius (pixels) of the encoder up to feat[0] (spec §2.3).

    conv0 3x3 (1) + 3 down blocks x [conv1 3x3 (1) + conv2 3x3 (1) + transform 5x5 (2)] = 13.
    """
    return 1 + 3 * (1 + 1 + 2)


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
