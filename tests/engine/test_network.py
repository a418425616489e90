"""Tests of engine.models.network: parameter parity with paper Tab. 9 (spec §4.6), shapes (spec §4.5), every ablation
switch (paper Tab. 2), mutual-learning options ML1–ML4 (spec §4.4) and a tiny learning check."""

import json

import pytest
import torch

from engine.models.network import (AdaptiveTemperature, GroupEnsemble, GroupNetwork, MutualLearningLoss, NetworkConfig,
                            NetworkOutput, grad_reverse, set_prediction)

torch.set_num_threads(1)
B, CD = 4, 16           # batch, small C_dif for forward tests


def _inputs(cs=30, ca=4, cd=CD, p=9, b=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(b, cs, p, p, generator=g)
    xa = torch.randn(b, ca, p, p, generator=g) if ca else None
    fd = torch.rand(b, cd, p, p, generator=g) if cd else None
    return xs, xa, fd


@pytest.mark.parametrize("cs,ca,cd,k,paper,spec", [
    (30, 4, 8192, 7, 16.38e6, 16_994_737),      # Augsburg (Tab. 9: 16.38 M; spec §4.6: 16.995 M)
    (10, 4, 2048, 13, 6.15e6, 5_965_197),       # LCZ HK   (Tab. 9: 6.15 M;  spec §4.6: 5.965 M)
])
def test_parameter_parity_with_paper_table9(cs, ca, cd, k, paper, spec):
    net = GroupNetwork(cs, ca, cd, k)            # construct and count only: no forward at C_dif=8192
    counts = net.parameter_counts()
    total = counts["total"]
    assert abs(total - paper) / paper < 0.05
    assert abs(total - spec) / spec < 1e-3
    if cd == 8192:   # spec §4.6 branch split 14.27 / 2.58 / 0.14 M
        assert round(counts["cnn"] / 1e6, 2) == 14.27
        assert round(counts["transformer"] / 1e6, 2) == 2.58
        assert round(counts["mamba"] / 1e6, 2) == 0.14


def test_output_shapes_spec_4_5():
    net = GroupNetwork(30, 4, CD, 7)
    xs, xa, fd = _inputs()
    out = net(xs, xa, fd)
    assert isinstance(out, NetworkOutput)
    assert out.logits.shape == (B, 7)
    assert set(out.branch_logits) == {"transformer", "cnn", "mamba"}
    assert all(v.shape == (B, 7) for v in out.branch_logits.values())
    assert all(v.shape == (B, 64) for v in out.branch_features.values())
    # intermediate shapes of §4.5
    fmap, f_cnn = net.cnn(xs, xa, fd)
    assert fmap.shape == (B, 64, 9, 9) and f_cnn.shape == (B, 64)
    assert net.transformer.tok_spec(xs).shape == (B, 4, 64)
    assert net.dif_tokens(fd).shape == (B, 81, 64)
    assert net.mamba.seq_spec(xs).shape == (B, 30, 9, 9)
    assert net.mamba.seq_spec.mamba.d_model == 81
    net.eval()
    with torch.no_grad():
        proba = torch.softmax(net(xs, xa, fd).logits.float(), dim=-1)
    assert proba.shape == (B, 7) and torch.allclose(proba.sum(-1), torch.ones(B))


ABLATIONS = {
    "full": {},
    "cnn_only": dict(use_transformer=False, use_mamba=False),
    "transformer_only": dict(use_cnn=False, use_mamba=False),
    "mamba_only": dict(use_cnn=False, use_transformer=False),
    "cnn_transformer": dict(use_mamba=False),
    "cnn_mamba": dict(use_transformer=False),
    "transformer_mamba": dict(use_cnn=False),
    "no_cnn_guidance": dict(cnn_guidance=False),
    "no_transformer_guidance": dict(transformer_guidance=False),
    "no_mamba_guidance": dict(mamba_guidance=False),
    "no_guidance": dict(cnn_guidance=False, transformer_guidance=False, mamba_guidance=False),
    "no_mutual": dict(mutual_learning=False),
    "ml_fixed_t": dict(ml_temperature="fixed"),
    "ml_no_grl_literal": dict(ml_grl=False, ml_softened=False, branch_ce=False, ml_detach_target=True),
    "hct_cross_dif_proj_no_gate": dict(cross_kv_include_query=True, mamba_dif_proj=True, mamba_gate="none"),
    "fast": "fast",
}


@pytest.mark.parametrize("n_aux", [4, 0])
@pytest.mark.parametrize("name", list(ABLATIONS))
def test_every_ablation_switch_forward_backward(name, n_aux):
    cfg = NetworkConfig.fast() if ABLATIONS[name] == "fast" else NetworkConfig(**ABLATIONS[name])
    torch.manual_seed(0)
    net = GroupNetwork(10, n_aux, CD, 5, cfg)
    if n_aux == 0:
        assert not any("aux" in k or "alpha" in k for k in net.state_dict())
    xs, xa, fd = _inputs(cs=10, ca=n_aux, p=cfg.patch_size)
    if not cfg.any_guidance:
        fd = None
    out = net(xs, xa, fd)
    assert out.logits.shape == (B, 5)
    assert tuple(out.branch_logits) == cfg.branches
    res = net.loss(out, torch.tensor([0, 1, 2, 3]))
    assert torch.isfinite(res.loss)
    res.loss.backward()
    no_grad = [k for k, p in net.named_parameters() if p.grad is None]
    # every module gets a gradient (λ of the CAMs starts at 0 but is trained); the per-branch heads only do when
    # the loss uses them (mutual learning on with >= 2 branches)
    if not net.loss_fn.enabled:
        no_grad = [k for k in no_grad if not k.startswith("heads.")]
    assert not no_grad, no_grad


def test_config_roundtrip_and_validation():
    cfg = NetworkConfig.fast(use_mamba=False, patch_size=7)
    d = cfg.to_dict()
    json.dumps(d)
    assert NetworkConfig.from_dict(d) == cfg
    assert NetworkConfig.from_dict({**d, "future_option": 1}).extra == {"future_option": 1}
    with pytest.raises(ValueError):
        NetworkConfig(patch_size=8)
    with pytest.raises(ValueError):
        NetworkConfig(use_cnn=False, use_transformer=False, use_mamba=False)
    net = GroupNetwork(5, 2, 8, 3, cfg)
    xs, xa, fd = _inputs(cs=5, ca=2, cd=8, p=7)
    assert net(xs, xa, fd).logits.shape == (B, 3)
    with pytest.raises(ValueError):
        net(xs, None, fd)


def test_temperature_init_and_gradient_reversal():
    t = AdaptiveTemperature()
    u = torch.randn(6, 2)
    assert torch.allclose(t(u), torch.ones(6, 1), atol=1e-5)
    x = torch.ones(3, requires_grad=True)
    (grad_reverse(x) * 2).sum().backward()
    assert torch.all(x.grad == -2)
    # ML2: with GRL the temperature bias moves opposite to plain gradient descent on L
    cfg_grl, cfg_plain = NetworkConfig(), NetworkConfig(ml_grl=False)
    g = torch.Generator().manual_seed(1)
    out = NetworkOutput(torch.randn(8, 5, generator=g),
                        {k: torch.randn(8, 5, generator=g) * 3 for k in ("transformer", "cnn", "mamba")},
                        {k: torch.randn(8, 16, generator=g) for k in ("transformer", "cnn", "mamba")})
    y = torch.randint(0, 5, (8,), generator=g)
    grads = []
    for cfg in (cfg_grl, cfg_plain):
        loss_fn = MutualLearningLoss(("transformer", "cnn", "mamba"), cfg)
        loss_fn(out, y).loss.backward()
        grads.append(loss_fn.temperatures["cnn_transformer"].fc.bias.grad.clone())
    assert grads[0].item() == pytest.approx(-grads[1].item())
    assert grads[1].item() > 0          # plain descent would shrink T (spec §4.4 ML2)


def test_loss_decreases_on_separable_batch():
    torch.manual_seed(0)
    cfg = NetworkConfig.fast()
    net = GroupNetwork(6, 2, 8, 3, cfg)
    y = torch.arange(12) % 3
    p = cfg.patch_size
    xs = torch.randn(12, 6, p, p) * 0.3 + y[:, None, None, None].float()
    xa = torch.randn(12, 2, p, p) * 0.3 - y[:, None, None, None].float()
    fd = torch.rand(12, 8, p, p) + y[:, None, None, None].float() * 0.5
    opt = torch.optim.Adam(net.parameters(), lr=4e-4 * 5)   # includes the loss's temperature FCs
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = net.loss(net(xs, xa, fd), y).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    # 20 steps: BatchNorm's running statistics (momentum 0.1) must settle before eval mode predicts well
    net.eval()
    with torch.no_grad():
        assert (net(xs, xa, fd).logits.argmax(-1) == y).float().mean() >= 0.9


def test_prediction_rules_fused_and_mean_of_the_branch_heads():
    """``fused`` = softmax(z_total) (Eq. 29); ``heads`` = the mean of the heads' softmax, by hand for one pixel."""
    z_total = torch.tensor([[2.0, 0.0, -1.0]])
    heads = {"cnn": torch.tensor([[1.0, 1.0, 1.0]]), "transformer": torch.tensor([[0.0, 3.0, 0.0]]),
             "mamba": torch.tensor([[5.0, 0.0, 0.0]])}
    out = NetworkOutput(z_total, heads, {})
    assert NetworkConfig.paper().prediction == "fused" and NetworkConfig.fast().prediction == "fused"
    fused = GroupNetwork(6, 0, 8, 3, NetworkConfig.fast(prediction="fused")).log_probabilities(out).exp()
    e = torch.exp(torch.tensor([2.0, 0.0, -1.0]))
    assert torch.allclose(fused[0], e / e.sum())
    mean = GroupNetwork(6, 0, 8, 3, NetworkConfig.fast(prediction="heads")).log_probabilities(out).exp()
    third = torch.full((3,), 1 / 3)
    t = torch.exp(torch.tensor([0.0, 3.0, 0.0]))
    m = torch.exp(torch.tensor([5.0, 0.0, 0.0]))
    assert torch.allclose(mean[0], (third + t / t.sum() + m / m.sum()) / 3)
    assert int(fused.argmax()) == 0 and int(mean.argmax()) == 0
    # the rule decides the class where the fused head and the heads disagree
    out2 = NetworkOutput(torch.tensor([[0.0, 4.0, 0.0]]), {k: torch.tensor([[4.0, 0.0, 0.0]]) for k in heads}, {})
    assert int(GroupNetwork(6, 0, 8, 3, NetworkConfig.fast(prediction="heads")).log_probabilities(out2).argmax()) == 0
    with pytest.raises(ValueError, match="prediction"):
        NetworkConfig.fast(prediction="vote")


def test_set_prediction_switches_a_trained_network_between_its_two_read_outs():
    """The same weights read out by the fused classifier (Eq. 29) or by the mean of the branch heads
    (``classify --prediction``); for an ensemble every member follows."""
    torch.manual_seed(0)
    xs, _, fd = _inputs(cs=6, ca=0, cd=8, p=5)
    single, ensemble = NetworkConfig.fast(), NetworkConfig.fast(members=2)
    for net in (GroupNetwork(6, 0, 8, 3, single), GroupEnsemble(6, 0, 8, 3, ensemble)):
        net.eval()
        with torch.no_grad():
            fused = net.log_probabilities(net(xs, None, fd))
            set_prediction(net, "heads")
            heads = net.log_probabilities(net(xs, None, fd))
            members = list(getattr(net, "members", [net]))
            assert all(m.config.prediction == "heads" for m in members)
            by_hand = torch.stack([m.log_probabilities(m(xs, None, fd)).exp() for m in members]).mean(0)
            assert torch.allclose(heads.exp(), by_hand, atol=1e-6)
            out = members[0](xs, None, fd)
            mean_of_heads = torch.stack([torch.softmax(z, 1) for z in out.branch_logits.values()]).mean(0)
            assert torch.allclose(members[0].log_probabilities(out).exp(), mean_of_heads, atol=1e-6)
            assert not torch.allclose(heads, fused)
            set_prediction(net, "fused")
            assert torch.equal(net.log_probabilities(net(xs, None, fd)), fused)
    assert NetworkConfig.fast().heads_trained
    for untrained in (NetworkConfig.fast(branch_ce=False), NetworkConfig.fast(mutual_learning=False),
                      NetworkConfig.fast(use_cnn=False, use_mamba=False)):
        assert not untrained.heads_trained
        with pytest.raises(ValueError, match="branch heads were not trained"):
            set_prediction(GroupNetwork(6, 0, 8, 3, untrained), "heads")
    with pytest.raises(ValueError, match="prediction must be one of"):
        set_prediction(GroupNetwork(6, 0, 8, 3, NetworkConfig.fast()), "vote")
