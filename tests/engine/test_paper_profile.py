"""The ``paper`` profile reproduces the paper's model: Tab. 9 parameter counts from the profile itself (parity
band layout), profile overrides, the literal forms of Eqs. 24 / 27 / 29, and Eqs. 11, 22-23 and 28 checked
numerically against values computed by hand (plain Python / numpy, not the module under test)."""

import math
import re

import numpy as np
import pytest
import torch

from engine.config import get_profile
from engine.data.inputs import BandLayout, parity_band_count
from engine.models.unet import SpectralDiffUNet
from engine.errors import EngineError
from engine.models.network import (CNNBranch, GroupChannelAttention, GroupNetwork, MambaBranch, MutualLearningLoss,
                            NetworkConfig, NetworkOutput)

torch.set_num_threads(1)


def _c_dif(profile, kinds, counts) -> int:
    """C_dif of the profile's diffusion model for a stack of these modalities (spec §2.5)."""
    cfg = profile.diffusion
    target = cfg.parity_bands or parity_band_count(sum(counts))
    layout = BandLayout(kinds, counts, cfg.band_mode, target if cfg.band_mode == "parity" else None)
    per_band = SpectralDiffUNet(cfg.width).feature_channels // (2 if cfg.dedup else 1)
    return per_band * layout.S // 8


@pytest.mark.parametrize("hs,sar,classes,tab9", [
    (180, 4, 7, 16.38e6),     # Augsburg: 180 HS bands (PCA 30) + 4 SAR, 7 classes (Tab. 9: 16.38 M)
    (10, 4, 13, 6.15e6),      # LCZ HK: 10 MS bands + 4 SAR, 13 classes (Tab. 9: 6.15 M)
])
def test_tab9_parameter_counts_from_the_paper_profile(hs, sar, classes, tab9):
    prof = get_profile("paper")
    assert prof.diffusion.band_mode == "parity"
    c_dif = _c_dif(prof, ["spectral", "sar_db"], [hs, sar])
    c_spec = min(hs, prof.training.pca_components)
    net = GroupNetwork(c_spec, sar, c_dif, classes, prof.network)
    total = net.parameter_counts()["total"]
    assert abs(total - tab9) / tab9 < 0.05, (c_dif, total)
    # the compact layout (the former default) misses Tab. 9 by far more
    compact = get_profile("paper", band_mode="compact")
    small = GroupNetwork(c_spec, sar, _c_dif(compact, ["spectral", "sar_db"], [hs, sar]), classes, compact.network)
    assert abs(small.parameter_counts()["total"] - tab9) / tab9 > 0.15


def test_parity_band_count_reproduces_the_papers_band_axes():
    # spec §1.5: Augsburg 256, Berlin 256, YRE 128, LCZ HK 64
    assert [parity_band_count(n) for n in (184, 248, 167, 14)] == [256, 256, 128, 64]


def test_get_profile_applies_overrides_and_rejects_unknown_ones():
    prof = get_profile("paper", band_mode="compact", epochs=3, patch_size=7, branch_ce=False,
                       **{"profile.tile": 128, "diffusion.tile": 32})
    assert prof.diffusion.band_mode == "compact" and prof.training.epochs == 3
    assert prof.network.patch_size == 7 and prof.training.patch_size == 7
    assert prof.network.branch_ce is False and prof.tile == 128 and prof.diffusion.tile == 32
    assert get_profile("paper").training.epochs == 200          # overrides do not leak into later calls
    # the network and the training cut the same patches: 9 x 9 for paper (§4.1), 5 x 5 for fast (docs/profiles.md)
    assert [(get_profile(n).network.patch_size, get_profile(n).training.patch_size) for n in ("paper", "fast")] \
        == [(9, 9), (5, 5)]
    with pytest.raises(EngineError, match="no_such_field"):
        get_profile("fast", no_such_field=1)
    with pytest.raises(EngineError, match="Patch size must be odd|patch_size must be odd"):
        get_profile("fast", patch_size=8)
    # a stage prefix on the patch size would give the network patches of another size than it was built for
    with pytest.raises(EngineError, match=r"network 5 x 5 px patches and the training 3 x 3.*--set patch_size=N"):
        get_profile("fast", **{"training.patch_size": 3})


def _softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


def test_eq28_kl_direction_and_value_by_hand():
    """L_ab = T^2 KL(q_b || q_a), b the reference (Eq. 28), with a fixed T = 2 and only the (cnn, transformer) pair."""
    cfg = NetworkConfig(use_mamba=False, ml_temperature="fixed", ml_fixed_t=2.0, branch_ce=False)
    za, zb = [1.0, 0.0, -1.0], [0.5, 2.0, 0.0]
    out = NetworkOutput(torch.zeros(1, 3), {"cnn": torch.tensor([za]), "transformer": torch.tensor([zb])},
                        {"cnn": torch.ones(1, 4), "transformer": torch.ones(1, 4)})
    res = MutualLearningLoss(("transformer", "cnn"), cfg)(out, torch.tensor([0]))
    qa, qb = _softmax([v / 2 for v in za]), _softmax([v / 2 for v in zb])
    kl_b_a = sum(b * (math.log(b) - math.log(a)) for a, b in zip(qa, qb))
    kl_a_b = sum(a * (math.log(a) - math.log(b)) for a, b in zip(qa, qb))
    assert res.parts["ml_cnn_transformer"] == pytest.approx(4 * kl_b_a, rel=1e-5)
    assert abs(4 * kl_b_a - 4 * kl_a_b) > 1e-3          # the direction matters for these logits
    ce = -math.log(1 / 3)                               # z_total = 0: uniform
    assert float(res.loss) == pytest.approx(ce + 4 * kl_b_a, rel=1e-5)   # Eq. 29 literal: no branch CE


def test_eq22_23_group_channel_attention_by_hand():
    torch.manual_seed(0)
    gca = GroupChannelAttention(3, 2)
    with torch.no_grad():
        gca.lam.fill_(0.5)
    f = torch.randn(1, 3, 3, 3)
    x = f[0].reshape(3, 9).numpy().astype(np.float64)

    def proj(conv):
        return conv.weight.detach().reshape(2, 3).numpy() @ x + conv.bias.detach().numpy()[:, None]

    q, k, v = proj(gca.q), proj(gca.k), proj(gca.v)               # (d, P²)
    e = q @ k.T                                                    # (d, d)
    e2 = e.max(axis=1, keepdims=True) - e                          # Eq. 22
    a = np.exp(e2 - e2.max(axis=1, keepdims=True))
    a = a / a.sum(axis=1, keepdims=True)
    expected = 0.5 * (a @ v) + v                                   # Eq. 23
    got = gca(f)[0].reshape(2, 9).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_eq11_cnn_guided_fusion_by_hand():
    """f¹ = β a1 + (1-β) g1 and f² = γ a2 + (1-γ) g2 (Eq. 11), read at the inputs of the next 3-D convolutions."""
    cfg = NetworkConfig.fast(patch_size=9)
    torch.manual_seed(0)
    cnn = CNNBranch(5, 0, 6, cfg).eval()
    with torch.no_grad():
        cnn.beta.fill_(0.3)
        cnn.gamma.fill_(0.8)
    seen = {}
    cnn.pool1.register_forward_hook(lambda m, i, o: seen.__setitem__("a1", o.detach()))
    cnn.pool2.register_forward_hook(lambda m, i, o: seen.__setitem__("a2", o.detach()))
    cnn.guide.register_forward_hook(lambda m, i, o: seen.__setitem__("g", o.detach()))
    cnn.conv3d_2.register_forward_pre_hook(lambda m, i: seen.__setitem__("f1", i[0].detach()))
    cnn.conv3d_3.register_forward_pre_hook(lambda m, i: seen.__setitem__("f2", i[0].detach()))
    cnn(torch.randn(2, 5, 9, 9), None, torch.rand(2, 6, 9, 9))
    g1, g2, _ = seen["g"].split(cfg.d, dim=1)
    b = 2
    f1 = 0.3 * seen["a1"].numpy() + 0.7 * g1.reshape(b, cfg.cnn_c1, cfg.d // cfg.cnn_c1, 9, 9).numpy()
    f2 = 0.8 * seen["a2"].numpy() + 0.2 * g2.reshape(b, cfg.cnn_c2, cfg.d // cfg.cnn_c2, 9, 9).numpy()
    np.testing.assert_allclose(seen["f1"].numpy(), f1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(seen["f2"].numpy(), f2, rtol=1e-5, atol=1e-6)


def test_literal_eq24_and_eq29_forms():
    lit = NetworkConfig.literal(d=32, cnn_c1=8, cnn_c2=16, trans_heads=4, trans_dim_head=16, cross_heads=4)
    gate = MambaBranch(5, 0, 6, lit).gate
    assert [type(m).__name__ for m in gate] == ["Conv2d"]          # G = w11(cat f_CA), as printed
    default_gate = MambaBranch(5, 0, 6, NetworkConfig.fast()).gate
    assert [type(m).__name__ for m in default_gate] == ["Conv2d", "BatchNorm2d", "Sigmoid"]
    loss_fn = MutualLearningLoss(("transformer", "cnn", "mamba"), lit)
    with torch.no_grad():                                          # T = softplus(bias) far above t_max = 10
        for t in loss_fn.temperatures.values():
            t.fc.bias.fill_(50.0)
    g = torch.Generator().manual_seed(0)
    out = NetworkOutput(torch.randn(4, 3, generator=g), {k: torch.randn(4, 3, generator=g) for k in
                        ("transformer", "cnn", "mamba")}, {k: torch.randn(4, 8, generator=g) for k in
                                                           ("transformer", "cnn", "mamba")})
    res = loss_fn(out, torch.tensor([0, 1, 2, 0]))
    assert res.parts["T_cnn_transformer"] == pytest.approx(50.0, rel=1e-4)   # no clamp (Eq. 27 literal)
    assert not any(k.startswith("ce_") for k in res.parts)                   # no per-branch CE (Eq. 29)
    net = GroupNetwork(5, 2, 6, 3, lit)
    net(torch.randn(2, 5, 9, 9), torch.randn(2, 2, 9, 9), torch.rand(2, 6, 9, 9)).logits.sum().backward()


def test_parse_override_types_the_value_like_the_profile_field_and_names_bad_items():
    from engine.config import parse_override

    assert parse_override("training.guidance_dropout=0.5") == ("training.guidance_dropout", 0.5)
    assert parse_override("network.mamba_guidance=false") == ("network.mamba_guidance", False)
    assert parse_override("milestones=10,16") == ("milestones", (10, 16))
    assert parse_override("epochs=3", "paper") == ("epochs", 3)
    prof = get_profile("fast", **dict([parse_override("network.dropout=0.3"), parse_override("class_balance=0.5")]))
    assert prof.network.dropout == 0.3 and prof.training.class_balance == 0.5
    for bad in ("epochs", "no_such_field=1", "diffusion.epochs=3", "fast=1", "epochs=many", "augment=maybe",
                "profile.tile=128"):
        with pytest.raises(EngineError, match=re.escape(repr(bad))):
            parse_override(bad)
