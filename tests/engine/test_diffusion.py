"""Tests of engine/diffusion.py (spec §1.5, §2, §3, §9). Small widths and tiles: 2 shared CPU cores."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from engine.data.grid import BandStats, Modality, RasterStack, StackWindow, compute_statistics
from engine.data.inputs import ELEVATION, SAR, SPECTRAL, BandLayout
from engine.data.windows import Window, read_window
from engine.errors import Cancelled, EngineError
from engine.io.artifact import load_checkpoint
from engine.models.diffusion import (DiffusionConfig, FeatureExtractor, NoiseSchedule, bdgf_forward, hash_normal,
                                     mask_probability)
from engine.models.unet import SpectralDiffUNet, receptive_field_radius
from engine.pretrain import pretrain
from engine.progress import Reporter


def window_features(extractor, stack, row_off, col_off, height, width):
    """Diffusion features (C_dif, h, w) of a grid window (the features part of ``read_window``)."""
    return read_window(stack, extractor, None, Window(row_off, col_off, height, width)).features

torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def s2_stack(delmarva_bands):
    """The real Delmarva Sentinel-2 crop (13 bands, 768 x 768 at 10 m; conftest fixture), spectral only."""
    with RasterStack([Modality(delmarva_bands, "spectral")]) as stack:
        yield stack


def _randomise_bn(unet: SpectralDiffUNet, seed: int = 0) -> None:
    """Give BatchNorm non-trivial running statistics / affine params (eval BN is then not the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in unet.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2)
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.1)


class CancelAfter(Reporter):
    """Quiet reporter whose CancelToken is set when the k-th unit of a task is reported."""

    def __init__(self, k: int):
        super().__init__(quiet=True)
        self.k = k

    def task(self, stage, total, unit="it"):
        task = super().task(stage, total, unit)
        orig = task.update

        def update(n=1, **kw):
            if task.n + n >= self.k:
                self.cancel.cancel("test cancel")
            orig(n, **kw)

        task.update = update
        return task


# ----------------------------------------------------------------------------------------------------------
# U-Net (spec §2.3, §2.5)
# ----------------------------------------------------------------------------------------------------------
def test_unet_parameter_count_width16():
    unet = SpectralDiffUNet(16)
    assert sum(p.numel() for p in unet.parameters()) == 4_299_633
    # per-stage counts of spec §2.3
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert [count(b) for b in unet.downs] == [145_152, 578_048, 2_307_072]
    assert [count(b) for b in unet.ups] == [965_120, 241_920, 60_800]
    assert count(unet.conv0) == 448 and count(unet.output) == 17 and count(unet.time_mlp) == 1056


def test_unet_shapes_and_features_are_bottleneck_entry():
    torch.manual_seed(0)
    unet = SpectralDiffUNet(2)
    _randomise_bn(unet)
    unet.eval()
    x, t = torch.randn(2, 1, 16, 10, 12), torch.tensor([3, 400])
    captured = {}

    def hook(module, inp, out):
        captured["in"] = inp[0].detach()   # returns None: output unchanged

    unet.ups[0].register_forward_hook(hook)
    out = unet(x, t)
    assert out.shape == x.shape
    f = unet.features(x, t)
    assert f.shape == (2, 32, 2, 10, 12)
    # features() is exactly the first decoder block's input in the full forward (feat[0])
    torch.testing.assert_close(f, captured["in"], rtol=0, atol=0)
    # spec §2.5: feat[0] = cat(h3, h3): both halves are identical (dedup loses nothing) and non-trivial
    assert torch.equal(f[:, :16], f[:, 16:])
    assert f[:, :16].std() > 0
    # the time embedding matters
    assert not torch.allclose(unet.features(x, torch.tensor([0, 0])), f)
    with pytest.raises(ValueError):
        unet(torch.randn(1, 1, 12, 8, 8), torch.tensor([1]))


def _reference_unet(u: SpectralDiffUNet, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """SpectralDiff ``SimpleUnet.forward`` written out from spec §2.2-§2.3 with plain functional ops."""
    import torch.nn.functional as F

    half = 16
    freq = torch.exp(-math.log(10000.0) * torch.arange(half) / (half - 1))
    emb = torch.cat([torch.sin(t[:, None].float() * freq), torch.cos(t[:, None].float() * freq)], 1)
    tau = F.relu(F.linear(emb, u.time_mlp[1].weight, u.time_mlp[1].bias))

    def bn(m, h):  # eval-mode BatchNorm
        return F.batch_norm(h, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    def block(b, h, up):
        h = bn(b.bnorm1, F.relu(F.conv3d(h, b.conv1.weight, b.conv1.bias, padding=1)))
        h = h + F.relu(F.linear(tau, b.time_mlp.weight, b.time_mlp.bias))[:, :, None, None, None]
        h = bn(b.bnorm2, F.relu(F.conv3d(h, b.conv2.weight, b.conv2.bias, padding=1)))
        op = F.conv_transpose3d if up else F.conv3d
        return op(h, b.transform.weight, b.transform.bias, stride=(2, 1, 1), padding=(1, 2, 2))

    h = F.conv3d(x, u.conv0.weight, u.conv0.bias, padding=1)
    res = []
    for b in u.downs:
        h = block(b, h, False)
        res.append(h)
    for b in u.ups:
        h = block(b, torch.cat((h, res.pop()), 1), True)
    return F.conv3d(h, u.output.weight, u.output.bias)


def test_unet_matches_functional_reference():
    torch.manual_seed(1)
    unet = SpectralDiffUNet(2)
    _randomise_bn(unet, seed=3)
    unet.eval()
    x, t = torch.randn(2, 1, 8, 9, 7), torch.tensor([0, 499])
    with torch.no_grad():
        torch.testing.assert_close(unet(x, t), _reference_unet(unet, x, t), rtol=1e-5, atol=1e-6)


def test_receptive_field_radius():
    """The halo must cover the encoder's receptive field: a point change moves features only within 13 px."""
    assert receptive_field_radius() == 13
    torch.manual_seed(0)
    unet = SpectralDiffUNet(4).eval()
    x = torch.randn(1, 1, 8, 41, 41, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([5])
    base = unet.features(x, t)
    x2 = x.clone()
    x2[0, 0, 3, 20, 20] = 5.0
    diff = (unet.features(x2, t) - base).abs().amax(dim=(0, 1, 2))
    rows, cols = torch.nonzero(diff > 0, as_tuple=True)
    assert int((rows - 20).abs().max()) == 13 and int((cols - 20).abs().max()) == 13


# ----------------------------------------------------------------------------------------------------------
# schedule and speckle (spec §2.1, §3.2)
# ----------------------------------------------------------------------------------------------------------
def test_schedule_values():
    s = NoiseSchedule()
    assert round(float(s.alpha_bar[5]), 6) == 0.998802
    assert round(float(s.alpha_bar[499]), 6) == 0.006353
    assert round(float(s.alpha_bar[50]), 4) == 0.9456
    assert float(s.sqrt_1mab[5]) == pytest.approx(0.0346, abs=1e-4)
    # speckle log-moments (spec §3.2 S3)
    assert float(s.Mcum[5]) == pytest.approx(-6.0e-4, rel=0.01)
    assert float(s.Vcum[5]) == pytest.approx(1.20e-3, rel=0.01)
    assert float(s.Mcum[499]) == pytest.approx(-2.518, abs=1e-3)
    assert float(s.Vcum[499]) == pytest.approx(5.059, abs=1e-3)


@pytest.mark.parametrize("t", [5, 50, 120])
def test_speckle_lognormal_matches_exact_gamma_loop(t):
    s = NoiseSchedule()
    n = 400_000
    z = torch.randn(n, generator=torch.Generator().manual_seed(t), dtype=torch.float64)
    approx = s.speckle_product(torch.full((n,), t), z).numpy()
    exact = s.speckle_product_exact(t, n, np.random.default_rng(1000 + t))
    var_theory = float(torch.prod(1.0 + s.betas[: t + 1]) - 1.0)
    assert approx.mean() == pytest.approx(1.0, abs=3e-3)
    assert exact.mean() == pytest.approx(1.0, abs=3e-3)
    assert approx.var() == pytest.approx(exact.var(), rel=0.02)
    assert exact.var() == pytest.approx(var_theory, rel=0.02)
    if t == 5:
        assert var_theory == pytest.approx(0.0012, rel=0.01)


# ----------------------------------------------------------------------------------------------------------
# forward process and masking (spec §3.1, §3.3)
# ----------------------------------------------------------------------------------------------------------
def test_mask_probability():
    assert mask_probability(0.0) == 0.0
    assert mask_probability(1.0) == pytest.approx(0.76159, abs=1e-5)
    assert mask_probability(0.5, 0.5) == pytest.approx(0.5 * math.tanh(0.5))
    assert mask_probability(2.0) == mask_probability(1.0)


def test_masking_rates_and_auxiliary_never_masked():
    kinds = [SAR, SAR, ELEVATION] + [SPECTRAL] * 5
    cfg = DiffusionConfig(width=2)
    sched = NoiseSchedule()
    n, h, w, p = 4000, 3, 3, 0.3
    x0 = torch.rand(n, 1, 8, h, w) + 0.5          # strictly positive so that any zeroing is visible
    t = torch.randint(0, 500, (n,), generator=torch.Generator().manual_seed(1))
    fs = bdgf_forward(x0, t, kinds, sched, cfg, p, generator=torch.Generator().manual_seed(2))
    sm, rm, keep = fs.sample_mask.float(), fs.structure_mask[:, :, 3:].float(), fs.keep
    tol_s = 4 * math.sqrt(p * (1 - p) / n)
    assert float(sm.mean()) == pytest.approx(p, abs=tol_s)
    assert float(rm.mean()) == pytest.approx(p, abs=tol_s / math.sqrt(5 * h * w))
    # spectral voxels survive with (1-p)^2; a dropped sample loses its whole spectral part
    assert float(keep[:, :, 3:].mean()) == pytest.approx((1 - p) ** 2, abs=0.01)
    assert bool((keep[fs.sample_mask.view(-1)][:, :, 3:] == 0).all())
    # auxiliary bands are never masked
    assert bool((keep[:, :, :3] == 1).all())
    # SAR: multiplicative speckle, no additive noise; target = standardised log-speckle z
    tt = t.view(n, 1, 1, 1, 1)
    sab = sched.sqrt_ab[tt].float()
    z = fs.target[:, :, :2]
    spk = torch.exp(sched.Mcum[tt].float() + sched.Vcum[tt].float().sqrt() * z)
    torch.testing.assert_close(fs.x_t[:, :, :2], sab * spk * x0[:, :, :2], rtol=1e-5, atol=1e-6)
    assert bool((fs.x_t[:, :, :2] > 0).all())
    # elevation / spectral: Gaussian, x_t = sqrt(ab) * keep * x0 + sqrt(1-ab) * eps, target eps
    s1m = sched.sqrt_1mab[tt].float()
    eps = fs.target[:, :, 2:]
    torch.testing.assert_close(fs.x_t[:, :, 2:], sab * keep[:, :, 2:] * x0[:, :, 2:] + s1m * eps,
                               rtol=1e-5, atol=1e-5)
    assert float(eps.std()) == pytest.approx(1.0, abs=0.02)


def test_masking_off_for_spectral_only_and_options():
    sched = NoiseSchedule()
    x0 = torch.rand(64, 1, 8, 4, 4) + 0.5
    t = torch.full((64,), 10)
    fs = bdgf_forward(x0, t, [SPECTRAL] * 8, sched, DiffusionConfig(width=2), 0.7,
                      generator=torch.Generator().manual_seed(0))
    assert bool((fs.keep == 1).all()) and not bool(fs.sample_mask.any())
    kinds = [SAR] + [SPECTRAL] * 7
    off = bdgf_forward(x0, t, kinds, sched, DiffusionConfig(width=2, masking=False), 0.7,
                       generator=torch.Generator().manual_seed(0))
    assert bool((off.keep == 1).all())
    # the fast profile's 100-iteration pretraining does not mask (docs/benchmarks.md, "SAR in the fast profile"):
    # with SAR it keeps every spectral voxel at the end of its run; paper masks
    fast = bdgf_forward(x0, t, kinds, sched, DiffusionConfig.fast(), mask_probability(1.0),
                        generator=torch.Generator().manual_seed(0))
    assert bool((fast.keep == 1).all())
    paper = bdgf_forward(x0, t, kinds, sched, DiffusionConfig.paper(), mask_probability(1.0),
                         generator=torch.Generator().manual_seed(0))
    assert 0.8 < 1 - float(paper.keep[:, :, 1:].mean()) < 0.97   # 1 - (1 - 0.76)^2 of the spectral voxels dropped
    # sar_noise="gaussian": SAR gets additive noise like spectral (Concatenate-Diff baseline, spec §3.4)
    g = bdgf_forward(x0, t, kinds, sched, DiffusionConfig(width=2, sar_noise="gaussian", masking=False), 0.0,
                     generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(g.x_t[:, :, :1], sched.sqrt_ab[10].float() * x0[:, :, :1]
                               + sched.sqrt_1mab[10].float() * g.target[:, :, :1])
    # sar_target="ratio": target = prod n - 1, consistent with x_t
    r = bdgf_forward(x0, t, kinds, sched, DiffusionConfig(width=2, sar_target="ratio", masking=False), 0.0,
                     generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(r.x_t[:, :, :1], sched.sqrt_ab[10].float() * (r.target[:, :, :1] + 1) * x0[:, :, :1])


# ----------------------------------------------------------------------------------------------------------
# band layout (spec §1.5)
# ----------------------------------------------------------------------------------------------------------
def _stats(p2, p98):
    return BandStats(p2, p98, 0.0, 1.0, p2, p98)


def test_band_layout_compact_order_and_normalisation():
    lay = BandLayout(["spectral", "sar_db", "elevation"], [5, 2, 1])
    assert lay.S == 8 and lay.kinds == [SAR, SAR, ELEVATION] + [SPECTRAL] * 5
    lay2 = BandLayout(["spectral", "sar_linear"], [13, 2])
    assert lay2.S == 16 and lay2.kinds[:2] == [SAR, SAR] and lay2.kinds.count(SPECTRAL) == 14
    h, w = 2, 3
    spec = np.stack([np.full((h, w), 100.0 * (b + 1), np.float32) for b in range(5)])
    spec[0, 0, 0] = 1e6                                      # outlier, clipped
    sar = np.full((2, h, w), -10.0, np.float32)               # dB
    elev = np.full((1, h, w), 50.0, np.float32)
    valid = np.ones((h, w), bool)
    valid[1, 2] = False
    stats = [[_stats(0.0, 200.0 * (b + 1)) for b in range(5)], [_stats(-30.0, -10.0), _stats(-30.0, 0.0)],
             [_stats(0.0, 100.0)]]
    x = lay.assemble(StackWindow([spec, sar, elev], valid), stats)
    assert x.shape == (8, h, w) and x.dtype == np.float32
    assert x[0, 0, 0] == pytest.approx(1.0)                   # -10 dB / p98 -10 dB -> 1.0
    assert x[1, 0, 0] == pytest.approx(0.1, rel=1e-5)          # -10 dB / p98 0 dB -> 0.1 (linear ratio)
    assert x[2, 0, 0] == pytest.approx(0.0)                    # elevation 50 in [0,100] -> 0
    assert x[3, 0, 1] == pytest.approx(0.0)                    # spectral 100 in [0,200] -> 0
    assert x[3, 0, 0] == pytest.approx(lay.clip)               # clipped outlier
    assert np.all(x[:, 1, 2] == 0)                             # invalid pixel


def test_band_layout_parity_resamples_spectral_only():
    lay = BandLayout(["spectral", "sar_db"], [3, 2], mode="parity", parity_bands=16)
    assert lay.S == 16 and lay.kinds == [SAR, SAR] + [SPECTRAL] * 14
    spec = np.stack([np.full((1, 1), v, np.float32) for v in (0.0, 10.0, 20.0)])
    x = lay.assemble(StackWindow([spec, np.zeros((2, 1, 1), np.float32)], np.ones((1, 1), bool)),
                     [[_stats(0.0, 20.0)] * 3, [_stats(-20.0, 0.0)] * 2])
    np.testing.assert_allclose(x[2:, 0, 0], np.linspace(-1, 1, 14), atol=1e-6)   # linear, align_corners
    with pytest.raises(EngineError):
        BandLayout(["spectral"], [3], mode="parity", parity_bands=12)
    assert BandLayout.from_dict(lay.to_dict()).kinds == lay.kinds


def test_config_round_trip_and_validation():
    cfg = DiffusionConfig.fast(seed=3, sar_looks=4)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert DiffusionConfig.from_dict(d) == cfg
    assert DiffusionConfig().width == 16 and DiffusionConfig().batch_size == 20 and DiffusionConfig().lr == 1e-4
    for bad in (dict(band_mode="x"), dict(sar_noise="x"), dict(bn_mode="x"), dict(feature_halo=12),
                dict(band_mode="parity", parity_bands=12), dict(mask_p_scale=2.0)):
        with pytest.raises(EngineError):
            DiffusionConfig(**bad)


# ----------------------------------------------------------------------------------------------------------
# tiling-exact features (spec §2.4, §3.2 S6)
# ----------------------------------------------------------------------------------------------------------
def test_hash_normal_is_standard_normal_and_position_keyed():
    b, r, c = torch.arange(8), torch.arange(-20, 100), torch.arange(50, 170)
    z = hash_normal(7, b, r, c)
    assert abs(float(z.mean())) < 0.01 and float(z.std()) == pytest.approx(1.0, abs=0.01)
    # kurtosis of a normal is 3; neighbouring voxels uncorrelated
    assert float((z ** 4).mean()) == pytest.approx(3.0, abs=0.1)
    assert abs(float((z[:, :, 1:] * z[:, :, :-1]).mean())) < 0.01
    assert abs(float((z[1:] * z[:-1]).mean())) < 0.01
    sub = hash_normal(7, b[2:5], r[30:40], c[5:9])
    assert torch.equal(sub, z[2:5, 30:40, 5:9])
    assert not torch.allclose(hash_normal(8, b, r, c), z)
    assert not torch.allclose(hash_normal(7, b, r, c, stream=1), z)


def _extractor(stack, width=2, seed=0, **kw):
    """Untrained U-Net whose BatchNorm running statistics are calibrated on a real window (so that features
    have unit scale and the t=5 noise visibly changes them), wrapped in a FeatureExtractor."""
    cfg = DiffusionConfig(width=width, seed=seed, **kw)
    layout = BandLayout.from_stack(stack, cfg)
    stats = compute_statistics(stack, sample_pixels=20_000, seed=0)
    torch.manual_seed(0)
    unet = SpectralDiffUNet(width)
    x = torch.from_numpy(layout.assemble(stack.read(64, 64, 64, 64), stats))[None, None]
    for m in unet.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.momentum = 1.0
    with torch.no_grad():
        unet.train()(x, torch.tensor([5]))
    return FeatureExtractor(unet.eval(), layout, cfg, stats)


@pytest.mark.parametrize("row_off,col_off", [(300, 200), (700, -10)])   # interior; across the grid border
def test_tiled_features_equal_untiled_on_sentinel2(s2_stack, row_off, col_off):
    fx = _extractor(s2_stack)
    assert fx.halo >= 16 and fx.channels == 2 * 2 * 16          # 2·w·S, S = 16 (13 bands padded)
    full = window_features(fx, s2_stack, row_off, col_off, 96, 96)
    assert full.shape == (fx.channels, 96, 96) and full.dtype == torch.float32
    assert float(full.std(dim=(1, 2)).mean()) > 0.05
    # sensitivity check: a one-pixel shift of the noise field changes the features far more than 1e-5
    win = s2_stack.read(row_off - fx.halo, col_off - fx.halo, 96 + 2 * fx.halo, 96 + 2 * fx.halo)
    shifted = fx.features_for_array(fx.layout.assemble(win, fx.stats), row_off, col_off + 1)
    assert float((shifted - full).abs().max()) > 1e-2
    for rs, cs in (((0, 48), (0, 48)), ((0, 40), (0, 57))):       # 2x2 tiles, even and uneven splits
        tiled = torch.zeros_like(full)
        for i, r in enumerate(rs):
            for j, c in enumerate(cs):
                hh = (rs[i + 1] if i + 1 < len(rs) else 96) - r
                ww = (cs[j + 1] if j + 1 < len(cs) else 96) - c
                tiled[:, r:r + hh, c:c + ww] = window_features(fx, s2_stack, row_off + r, col_off + c, hh, ww)
        assert float((tiled - full).abs().max()) < 1e-5
    # a smaller halo than the receptive field would change the features at tile boundaries
    fx.halo = 4
    part = window_features(fx, s2_stack, row_off, col_off, 48, 48)
    assert float((part - full[:, :48, :48]).abs().max()) > 1e-3


def test_features_dedup_and_features_for_array(s2_stack):
    fx = _extractor(s2_stack)
    fd = _extractor(s2_stack, dedup=True)
    a = window_features(fx, s2_stack, 100, 100, 24, 20)
    b = window_features(fd, s2_stack, 100, 100, 24, 20)
    assert fd.channels == fx.channels // 2 and b.shape == (fd.channels, 24, 20)
    # C-major flattening (c·S/8 + s): the first half of the channels is the deduplicated block
    torch.testing.assert_close(a[: fd.channels], b, rtol=0, atol=0)
    torch.testing.assert_close(a[fd.channels:], b, rtol=0, atol=0)
    win = s2_stack.read(100 - fx.halo, 100 - fx.halo, 24 + 2 * fx.halo, 20 + 2 * fx.halo)
    c = fx.features_for_array(fx.layout.assemble(win, fx.stats), 100, 100)
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    # the noise is keyed by the global position: the same array at another offset gives other features
    d = fx.features_for_array(fx.layout.assemble(win, fx.stats), 101, 100)
    assert float((a - d).abs().mean()) > 1e-3


# ----------------------------------------------------------------------------------------------------------
# pretraining (spec §2.1, §3.3, Alg. 1)
# ----------------------------------------------------------------------------------------------------------
def _tiny(**kw):
    base = dict(width=2, tile=16, batch_size=4, iterations=6, lr=2e-3, checkpoint_every=2, seed=5)
    base.update(kw)
    return DiffusionConfig(**base)


def test_pretrain_lowers_loss_on_delmarva(s2_stack):
    window = (200, 200, 256, 256)
    stats = compute_statistics(s2_stack, sample_pixels=20_000, seed=0, window=window)
    cfg = _tiny(iterations=40, batch_size=4, tile=16, width=4, lr=3e-3, checkpoint_every=0)
    res = pretrain(s2_stack, cfg, stats, window=window)
    losses = np.array([l for _, l in res.history])
    assert [i for i, _ in res.history] == list(range(1, 41)) and res.iteration == 40
    first, last = losses[:8].mean(), losses[-8:].mean()
    assert last < 0.9 * first, (first, last)
    assert not res.unet.training


def test_pretrain_in_the_cpu_memory_layout_computes_the_same_gradients(s2_stack, monkeypatch):
    """Pretraining on the CPU keeps the U-Net and its inputs channels-last (``pretrain.CPU_MEMORY_FORMAT``, 2x
    faster). Against a float64 reference, the channels-last output and weight gradients are as exact as the
    default layout's (BatchNorm on running statistics, so that only the layout's arithmetic differs); whole runs
    then differ only by that rounding, amplified by Adam, and the U-Net comes back in the default layout."""
    from engine import pretrain as pretrain_module

    assert pretrain_module.CPU_MEMORY_FORMAT == torch.channels_last_3d
    torch.manual_seed(0)
    x = torch.randn(4, 1, 16, 16, 16)
    t = torch.tensor([0, 5, 50, 150])
    nets = [SpectralDiffUNet(4).eval() for _ in range(3)]
    for net in nets[1:]:
        net.load_state_dict(nets[0].state_dict())
    nets[1].to(memory_format=torch.channels_last_3d)
    nets[2].double()
    embed = nets[2].time_mlp[0]                              # the sinusoidal embedding returns float32
    embed.forward = lambda steps, f=embed.forward: f(steps).double()
    kernels = [p for p in nets[1].parameters() if p.ndim == 5]
    assert all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in kernels)
    assert not all(p.is_contiguous() for p in kernels)        # really another layout than the default
    outs = []
    for net, xi in zip(nets, (x, x.contiguous(memory_format=torch.channels_last_3d), x.double())):
        out = net(xi, t)
        (out * xi).mean().backward()
        outs.append(out.detach().double())

    def error(a: torch.Tensor, ref: torch.Tensor) -> float:
        return float((a.double() - ref).abs().max())
    scale = float(outs[2].abs().max())
    assert error(outs[1], outs[2]) <= 10 * error(outs[0], outs[2]) + 1e-6 * scale
    for (name, ref), plain, last in zip(nets[2].named_parameters(), nets[0].parameters(), nets[1].parameters()):
        assert error(last.grad, ref.grad) <= 10 * error(plain.grad, ref.grad) + 1e-5 * float(ref.grad.abs().max()), name

    window = (0, 0, 128, 128)
    stats = compute_statistics(s2_stack, sample_pixels=5_000, seed=0, window=window)
    fast = pretrain(s2_stack, _tiny(), stats, window=window)
    monkeypatch.setattr(pretrain_module, "CPU_MEMORY_FORMAT", torch.contiguous_format)
    plain = pretrain(s2_stack, _tiny(), stats, window=window)
    fast_losses, plain_losses = [l for _, l in fast.history], [l for _, l in plain.history]
    np.testing.assert_allclose(fast_losses, plain_losses, rtol=1e-2)
    assert fast_losses != plain_losses                         # the channels-last path is the one that ran
    assert all(v.is_contiguous() for v in fast.unet.state_dict().values())


def test_pretrain_resume_equals_uninterrupted(s2_stack, tmp_path):
    window = (0, 0, 128, 128)
    stats = compute_statistics(s2_stack, sample_pixels=5_000, seed=0, window=window)
    cfg = _tiny()
    full = pretrain(s2_stack, cfg, stats, window=window)
    ck = str(tmp_path / "ck.safetensors")
    with pytest.raises(Cancelled):
        pretrain(s2_stack, cfg, stats, reporter=CancelAfter(3), checkpoint_path=ck, window=window)
    tensors, meta = load_checkpoint(ck, "pretrain")
    assert meta["iteration"] == 3 and len(meta["history"]) == 3
    with open(ck, "rb") as f:                # the model-file format: safetensors, JSON header, no pickle
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    bdgf = json.loads(header["__metadata__"]["bdgf"])
    assert bdgf["kind"] == "checkpoint" and bdgf["state"]["stage"] == "pretrain"
    with pytest.raises(EngineError, match="not a train checkpoint"):
        load_checkpoint(ck, "train")
    assert any(k.startswith("optim.") for k in tensors)
    resumed = pretrain(s2_stack, cfg, stats, checkpoint_path=ck, resume=True, window=window)
    assert resumed.iteration == 6 and [i for i, _ in resumed.history] == list(range(1, 7))
    np.testing.assert_allclose([l for _, l in resumed.history], [l for _, l in full.history], rtol=1e-5)
    for (k, a), b in zip(full.unet.state_dict().items(), resumed.unet.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)
    # the final checkpoint is the finished run
    assert load_checkpoint(ck, "pretrain")[1]["iteration"] == 6
    with pytest.raises(EngineError):
        pretrain(s2_stack, cfg, stats, checkpoint_path=str(tmp_path / "none.safetensors"), resume=True)


def test_spectral_plus_sar_pretrain_and_features(ben_pair_87_48, tmp_path):
    """Real BigEarthNet-MM pair: Sentinel-2 (12 bands) + Sentinel-1 VV/VH in dB (spec §1.5, §3.2)."""
    s2, s1 = ben_pair_87_48["s2"], ben_pair_87_48["s1"]
    with RasterStack([Modality(s2, "spectral"), Modality(s1, "sar_db")]) as stack:
        stats = compute_statistics(stack, sample_pixels=10_000, seed=0)
        cfg = _tiny(iterations=4, tile=24, mask_p_scale=1.0)
        res = pretrain(stack, cfg, stats, checkpoint_path=str(tmp_path / "c.safetensors"))
        assert res.layout.kinds[:2] == [SAR, SAR] and res.layout.S == 16
        assert all(math.isfinite(l) for _, l in res.history)
        # SAR input is linear intensity scaled by its p98: non-negative, order 1
        x = res.layout.assemble(stack.read(10, 10, 32, 32), stats)
        assert x[:2].min() >= 0 and 0.05 < float(np.median(x[:2])) < 1.5
        from engine.io.artifact import load_model, save_model   # model-file round trip (safetensors + JSON)

        from engine.api import model_metadata

        meta = model_metadata("pretrain", "fast", stack, stats, None, 0)
        meta.diffusion = res.diffusion_info()
        save_model(tmp_path / "pre.safetensors", res.tensors(), meta)
        fx = FeatureExtractor.from_tensors(*load_model(tmp_path / "pre.safetensors"))
        f = window_features(fx, stack, 40, 40, 30, 30)
        assert f.shape == (fx.channels, 30, 30) and bool(torch.isfinite(f).all())
        g = window_features(FeatureExtractor.from_pretrain(res), stack, 40, 40, 30, 30)
        torch.testing.assert_close(f, g, rtol=1e-6, atol=1e-6)
