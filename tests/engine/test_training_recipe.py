"""Training recipe: cross-validation folds grouped by polygon, the final model on every polygon, class-balanced
sampling and label-preserving flip/rotation augmentation (real Delmarva crop polygons where labels matter)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.contract import read_metadata_dict
from engine.errors import EngineError
from engine.data.grid import Modality, RasterStack
from engine.data.labels import polygon_folds, read_polygons
from engine.train import augment_patches, d4_transform, edge_pixels, mean_ci95, parse_validation, sampling_weights
from tests.engine.conftest import embedded_result

torch.set_num_threads(1)
# 192 x 128 px around the Water and Cropland polygons (as in test_pipeline)
EXTENT = (441130, 4172060, 443050, 4173340)


@pytest.fixture(scope="module")
def crop_pixels(delmarva_bands, delmarva_polygons):
    with RasterStack([Modality(delmarva_bands, "spectral")]) as stack:
        return read_polygons(delmarva_polygons, "class_id", stack.grid)


def test_cv_folds_never_share_a_polygon(crop_pixels):
    px = crop_pixels
    n_poly = {c.value: len(np.unique(px.polygon_ids[px.values == c.value])) for c in px.classes}
    for seed in (0, 1):
        fold, k, report = polygon_folds(px, 5, seed)
        assert k == min(5, min(n for n in n_poly.values() if n >= 2))
        for pid in np.unique(px.polygon_ids):
            assert len(np.unique(fold[px.polygon_ids == pid])) == 1, pid     # a polygon sits in one fold
        for c in px.classes:
            sel = px.values == c.value
            if n_poly[c.value] >= 2:      # every fold holds out some polygon of every class that has >= K
                assert set(np.unique(fold[sel])) == set(range(k)), c.name
            else:                         # a single polygon is never held out
                assert np.all(fold[sel] == -1)
        assert report["never_held_out"] == [v for v, n in n_poly.items() if n == 1]
    # by spatial block: polygons whose first pixel shares a 256 px block share a fold
    fold, k, _ = polygon_folds(px, 3, 0, block_size=256)
    assert k >= 2
    first = {int(p): int(np.flatnonzero(px.polygon_ids == p)[0]) for p in np.unique(px.polygon_ids)}
    by_block: dict = {}
    for p, i in first.items():
        by_block.setdefault((px.rows[i] // 256, px.cols[i] // 256), set()).add(int(fold[i]))
    assert all(len(f) == 1 for f in by_block.values())


def test_balanced_sampling_gives_each_class_its_share():
    y = np.r_[np.zeros(12), np.ones(2000), np.full(300, 2)].astype(np.int64)
    w = sampling_weights(y)
    draws = torch.multinomial(torch.as_tensor(w), 60_000, replacement=True,
                              generator=torch.Generator().manual_seed(0)).numpy()
    share = np.bincount(y[draws], minlength=3) / len(draws)
    np.testing.assert_allclose(share, [1 / 3] * 3, atol=0.01)
    # edge pixels weighted 3:1 within their class, class shares unchanged
    edge = np.zeros(len(y), bool)
    edge[12:512] = True
    w = sampling_weights(y, edge, 3.0)
    assert w[12] == pytest.approx(3 * w[600])
    np.testing.assert_allclose([w[y == c].sum() for c in range(3)], [1 / 3] * 3)


def test_partial_class_balance_interpolates_between_equal_and_proportional_shares():
    y = np.r_[np.zeros(16), np.ones(1600), np.full(400, 2)].astype(np.int64)
    shares = lambda b: np.array([sampling_weights(y, class_balance=b)[y == c].sum() for c in range(3)])  # noqa: E731
    np.testing.assert_allclose(shares(0.0), np.bincount(y) / len(y))
    np.testing.assert_allclose(shares(0.5), np.array([4, 40, 20]) / 64)    # square roots of 16, 1600, 400
    np.testing.assert_allclose(shares(1.0), [1 / 3] * 3)
    with pytest.raises(EngineError, match="class_balance"):
        sampling_weights(y, class_balance=1.5)


def test_edge_pixels_are_those_near_the_polygon_edge():
    rows, cols = np.meshgrid(np.arange(10), np.arange(10), indexing="ij")
    edge = edge_pixels(rows.ravel(), cols.ravel(), np.zeros(100, np.int64), radius=2).reshape(10, 10)
    expected = np.ones((10, 10), bool)
    expected[2:8, 2:8] = False
    np.testing.assert_array_equal(edge, expected)


def test_augmentation_keeps_labels():
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(64, 5, 9, 9, generator=g)
    # the 8 symmetries are distinct and keep the centre pixel (the labelled one) in place
    outs = [d4_transform(xs[:1], k) for k in range(8)]
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8
    assert all(torch.equal(o[..., 4, 4], xs[:1, :, 4, 4]) for o in outs)
    # the same transform for every input of a patch (spectral, auxiliary, diffusion features)
    data = {"spec": xs, "aux": xs[:, :2].clone(), "dif": xs[:, :3].half(),
            "y": torch.randint(0, 4, (64,), generator=g)}
    s, a, f = augment_patches(data["spec"], data["aux"], data["dif"].float(), g)
    assert torch.equal(a, s[:, :2]) and torch.allclose(f, s[:, :3].half().float())
    assert torch.equal(s[..., 4, 4], xs[..., 4, 4])
    assert not torch.equal(s, xs)                       # something was flipped or rotated
    s2, _, _ = augment_patches(xs, None, xs[:, :1], g, jitter=0.1)
    assert not torch.equal(s2[..., 4, 4], xs[..., 4, 4])   # spectral jitter changes values, not the geometry


def test_guidance_dropout_zeroes_whole_feature_patches_and_keeps_the_rest():
    from engine.train import TrainingConfig, _batch

    g = torch.Generator().manual_seed(0)
    data = {"spec": torch.randn(2000, 4, 5, 5, generator=g), "aux": None,
            "dif": (torch.rand(2000, 6, 5, 5, generator=g) + 0.1).half(),
            "y": torch.randint(0, 3, (2000,), generator=g)}
    idx = torch.arange(2000)
    cfg = TrainingConfig(augment=False, guidance_dropout=0.25)
    xs, _, fd, y = _batch(data, idx, torch.device("cpu"), cfg, gen=g)
    dropped = (fd == 0).flatten(1).all(1)
    kept = (fd != 0).flatten(1).all(1)
    assert bool((dropped | kept).all())                  # a patch loses all of its features or none
    assert 0.2 < float(dropped.float().mean()) < 0.3
    assert torch.equal(fd[kept], data["dif"][kept].float())
    assert torch.equal(xs, data["spec"]) and torch.equal(y, data["y"])
    _, _, fd0, _ = _batch(data, idx, torch.device("cpu"), gen=g)
    assert torch.equal(fd0, data["dif"].float())         # off by default


def test_auxiliary_dropout_zeroes_whole_sar_patches_and_draws_nothing_without_sar():
    from engine.config import get_profile
    from engine.train import TrainingConfig, _batch

    g = torch.Generator().manual_seed(3)
    n = 2000
    data = {"spec": torch.randn(n, 4, 5, 5, generator=g), "aux": torch.randn(n, 2, 5, 5, generator=g),
            "dif": (torch.rand(n, 6, 5, 5, generator=g) + 0.1).half(), "y": torch.randint(0, 3, (n,), generator=g)}
    cfg = TrainingConfig(augment=False, auxiliary_dropout=0.5)
    xs, xa, fd, y = _batch(data, torch.arange(n), torch.device("cpu"), cfg, gen=g)
    dropped = (xa == 0).flatten(1).all(1)
    assert bool((dropped | (xa == data["aux"]).flatten(1).all(1)).all())   # all of a patch's SAR or none
    assert 0.45 < float(dropped.float().mean()) < 0.55
    assert torch.equal(xs, data["spec"]) and torch.equal(fd, data["dif"].float()) and torch.equal(y, data["y"])
    # a spectral-only data set: no random number is drawn, so its training is the same with the option on
    no_aux = dict(data, aux=None)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    _batch(no_aux, torch.arange(n), torch.device("cpu"), cfg, gen=g1)
    _batch(no_aux, torch.arange(n), torch.device("cpu"), TrainingConfig(augment=False), gen=g2)
    assert torch.equal(g1.get_state(), g2.get_state())
    assert get_profile("fast").training.auxiliary_dropout == 0.5
    assert get_profile("paper").training.auxiliary_dropout == 0
    with pytest.raises(EngineError, match="auxiliary_dropout"):
        TrainingConfig(auxiliary_dropout=1.0)


def test_mixed_pixels_blend_other_classes_below_half_and_keep_labels():
    from engine.train import TrainingConfig, _batch, mix_patches

    g = torch.Generator().manual_seed(1)
    n = 3000
    y = torch.randint(0, 3, (n,), generator=g)
    # every input of a patch holds its class index + its own number / 100_000: a blend is traceable
    base = y.float()[:, None, None, None] + torch.arange(n).float()[:, None, None, None] / 100_000
    data = {"spec": base.expand(n, 4, 5, 5).clone(), "aux": base.expand(n, 2, 5, 5).clone(),
            "dif": base.expand(n, 6, 5, 5).half(), "y": y}
    xs, xa, fd, y_out = _batch(data, torch.arange(n), torch.device("cpu"),
                               TrainingConfig(augment=False, mix_share=0.5, mix_max=0.4), gen=g)
    assert torch.equal(y_out, y)                                      # labels unchanged
    changed = (xs != data["spec"]).flatten(1).any(1)
    # half of the patches are drawn, of which the ~2/3 paired with another class are blended
    assert 0.28 < float(changed.float().mean()) < 0.39
    shift = (xs - data["spec"])[:, 0, 2, 2]
    assert float(shift.abs().max()) < 0.4 * 2.03                       # weight < 0.4 of a difference <= 2.03
    # the same weight for every input of a patch, constant over the patch
    assert torch.allclose(xa[:, 0, 2, 2] - data["aux"][:, 0, 2, 2], shift, atol=1e-5)
    assert torch.allclose(fd[:, 0, 2, 2] - data["dif"][:, 0, 2, 2].float(), shift, atol=2e-2)
    assert torch.equal(xs, xs[:, :1, :1, :1].expand_as(xs))
    with pytest.raises(EngineError, match="mix_max"):
        mix_patches(data["spec"], None, data["dif"].float(), y, g, share=0.5, max_weight=0.5)
    with pytest.raises(EngineError, match="mix_max=0.6"):
        TrainingConfig(mix_max=0.6)                                   # refused before any work


def test_mixed_pixels_give_the_diffusion_features_their_own_weight():
    from engine.train import TrainingConfig, _batch

    g = torch.Generator().manual_seed(2)
    n = 4000
    y = torch.randint(0, 2, (n,), generator=g)
    # class 0 patches hold 0, class 1 patches hold 1: the shift of a blended input is +-its weight
    base = y.float()[:, None, None, None]
    data = {"spec": base.expand(n, 4, 5, 5).clone(), "aux": None, "dif": base.expand(n, 6, 5, 5).half(), "y": y}
    xs, _, fd, y_out = _batch(data, torch.arange(n), torch.device("cpu"),
                              TrainingConfig(augment=False, mix_share=1.0, mix_max=0.4, mix_guidance_max=0.8), gen=g)
    assert torch.equal(y_out, y)
    w_spec = (xs - data["spec"])[:, 0, 2, 2].abs()
    w_dif = (fd - data["dif"].float())[:, 0, 2, 2].abs()
    blended = w_spec > 0
    assert 0.4 < float(blended.float().mean()) < 0.6                  # pairs of different classes only
    assert float(w_spec.max()) < 0.4                                  # the spectra keep their label
    assert torch.equal(w_dif > 0, blended)                            # the same patches, ...
    assert float(w_dif.max()) > 0.7 and float(w_dif.max()) < 0.8 + 1e-3   # ... their own weight, beyond 0.5
    assert float((w_dif[blended] - w_spec[blended]).abs().mean()) > 0.1
    with pytest.raises(EngineError, match="mix_guidance_max=1.0"):
        TrainingConfig(mix_guidance_max=1.0)


def test_boundary_mixing_puts_the_partner_across_a_straight_line_and_keeps_the_centre_pure():
    from engine.train import TrainingConfig, _batch, edge_weights

    g = torch.Generator().manual_seed(3)
    n = 4000
    y = torch.randint(0, 2, (n,), generator=g)
    base = y.float()[:, None, None, None]          # class 0 patches hold 0, class 1 patches 1
    data = {"spec": base.expand(n, 4, 5, 5).clone(), "aux": None, "dif": base.expand(n, 6, 5, 5).half(), "y": y}
    cfg = TrainingConfig(augment=False, mix_share=1.0, mix_max=0.4, mix_guidance_max=0.6, mix_edge_share=1.0)
    xs, _, fd, y_out = _batch(data, torch.arange(n), torch.device("cpu"), cfg, gen=g)
    assert torch.equal(y_out, y)
    w_spec = (xs - data["spec"])[:, 0].abs()        # (n, 5, 5): the partner's weight per pixel
    w_dif = (fd - data["dif"].float())[:, 0].abs()
    blended = w_spec.flatten(1).amax(1) > 0
    assert 0.4 < float(blended.float().mean()) < 0.6
    edge = blended & (w_spec.flatten(1).amax(1) > 0.999)       # pure partner pixels: a boundary, not a blend
    assert float(edge.float().mean() / blended.float().mean()) > 0.6
    assert float(w_spec[edge][:, 2, 2].abs().max()) == 0.0      # the centre pixel keeps its own spectrum
    assert 0.2 < float(w_dif[edge][:, 2, 2].max()) <= 0.375 + 1e-3   # its features carry some of the partner
    # the partner side is a half-plane: its weight never falls moving away from the centre along the far side
    ws, wf = edge_weights(500, 5, g)
    assert ws.shape == wf.shape == (500, 1, 5, 5) and float(ws[:, 0, 2, 2].max()) == 0.0
    full = ws[:, 0] > 0.999
    rows, cols = torch.meshgrid(torch.arange(5) - 2, torch.arange(5) - 2, indexing="ij")
    for k in range(500):
        if full[k].any():
            r, c = rows[full[k]].float().mean(), cols[full[k]].float().mean()   # direction of the partner
            proj = rows * r + cols * c
            assert float((ws[k, 0] * (proj < 0)).max()) == 0.0        # nothing on the centre's far side
    with pytest.raises(EngineError, match="mix_edge_share"):
        TrainingConfig(mix_edge_share=1.5)


def test_the_diffusion_features_of_a_boundary_change_over_the_configured_width():
    from engine.train import TrainingConfig, _batch

    n = 3000
    y = torch.arange(n) % 2
    base = y.float()[:, None, None, None]
    data = {"spec": base.expand(n, 3, 5, 5).clone(), "aux": None, "dif": base.expand(n, 4, 5, 5).half(), "y": y}
    slopes = {}
    for width in (4.0, 13.0):
        cfg = TrainingConfig(augment=False, mix_share=1.0, mix_edge_share=1.0, mix_edge_transition=width)
        xs, _, fd, _ = _batch(data, torch.arange(n), torch.device("cpu"), cfg, gen=torch.Generator().manual_seed(5))
        w_spec = (xs - data["spec"])[:, 0].abs()
        w_dif = (fd - data["dif"].float())[:, 0].abs()
        edge = w_spec.flatten(1).amax(1) > 0.999
        centre = w_dif[edge][:, 2, 2]
        # the line lies 0.5-2.5 px from the centre: its features carry 0.5 - d / width of the partner
        assert float(centre.min()) >= 0.5 - 2.5 / width - 2e-3 and float(centre.max()) <= 0.5 - 0.5 / width + 2e-3
        slopes[width] = float((w_dif[edge].amax((1, 2)) - w_dif[edge].amin((1, 2))).mean())
        assert float(w_spec[edge][:, 2, 2].max()) == 0.0             # the centre's spectrum stays its own
    assert slopes[13.0] < 0.5 * slopes[4.0]                           # a wider ramp changes less across 5 px
    with pytest.raises(EngineError, match="mix_edge_transition"):
        TrainingConfig(mix_edge_transition=0)


def test_validation_option_and_interval():
    assert parse_validation("cv:5") == ("cv", 5.0)
    assert parse_validation("holdout:0.25") == ("holdout", 0.25)
    assert parse_validation("none") == ("none", 0.0)
    for bad in ("cv:1", "cv:2.5", "holdout:1", "kfold", "none:3"):
        with pytest.raises(EngineError, match="Validation"):
            parse_validation(bad)
    mean, half = mean_ci95([0.9, 0.92, 0.94])
    assert mean == pytest.approx(0.92) and half == pytest.approx(4.303 * 0.02 / np.sqrt(3), rel=1e-3)


def test_final_model_sees_every_polygon(delmarva_bands, delmarva_polygons, tmp_path, monkeypatch):
    """Cross-validation fits never see their held-out polygons, nor the whitewater pixels drawn over them; the
    final fit sees every labelled pixel and every whitewater pixel; no whitewater pixel is ever held out."""
    import engine.train as training
    from engine import api

    calls, foam = [], []
    real, real_foam = training.train_network, training.gather_whitewater

    def spy(net, train, val, config, *a, **k):
        calls.append((train["index"].numpy().copy(), None if val is None else val["index"].numpy().copy()))
        return real(net, train, val, config, *a, **k)

    def foam_spy(*a, **k):
        got = real_foam(*a, **k)
        foam.append(got)
        return got

    monkeypatch.setattr(training, "train_network", spy)
    monkeypatch.setattr(training, "gather_whitewater", foam_spy)
    held_out = []
    real_eval = training.evaluate
    readouts = []
    monkeypatch.setattr(training, "evaluate",
                        lambda net, data, *a, **k: (held_out.append(data["index"].numpy().copy()),
                                                    readouts.append(net.config.prediction),
                                                    real_eval(net, data, *a, **k))[2])
    out = api.train(Modality(delmarva_bands, "spectral"), [], delmarva_polygons, "class_id",
                    str(tmp_path / "m.safetensors"), iterations=1, epochs=1, validation="cv:3", device="cpu",
                    extent=EXTENT, report=str(tmp_path / "report.html"), overrides={"readout_margin": 0.0})
    with RasterStack([Modality(delmarva_bands, "spectral")]) as stack:
        from engine.api import _training_pixels, _window
        from engine.progress import ensure
        px = _training_pixels(delmarva_polygons, "class_id", stack, _window(stack, EXTENT), ensure(None))
    fold, k, _ = polygon_folds(px, 3, 0)
    (patches, foam_polygons), = foam                 # the fast profile draws whitewater over the Water polygon(s)
    n, m = len(px), len(foam_polygons)
    water = [i for i, c in enumerate(px.classes) if c.name == "Water"]
    assert m > 0 and np.all(patches.y == water[0]) and set(foam_polygons.tolist()) <= set(px.polygon_ids.tolist())
    foam_fold = np.array([fold[px.polygon_ids == p][0] for p in foam_polygons])
    assert k == 2 and len(calls) == k + 1       # 2 folds (fewest polygons of a held-out class: 2) + final fit
    for f, (tr, _) in enumerate(calls[:-1]):    # each fold's fit sees none of its held-out polygons
        np.testing.assert_array_equal(np.sort(tr), np.r_[np.flatnonzero(fold != f), n + np.flatnonzero(foam_fold != f)])
        assert not set(px.polygon_ids[tr[tr < n]].tolist()) & set(px.polygon_ids[fold == f].tolist())
        # each fold's network is read out twice on the same held-out pixels (never a whitewater pixel): by its
        # fused classifier, then by its branch heads' mean
        np.testing.assert_array_equal(held_out[2 * f], np.flatnonzero(fold == f))
        np.testing.assert_array_equal(held_out[2 * f + 1], held_out[2 * f])
    final, val = calls[-1]
    assert val is None and np.array_equal(np.sort(final), np.arange(n + m))
    assert set(px.polygon_ids[final[final < n]].tolist()) == set(np.unique(px.polygon_ids).tolist())
    assert 0 <= out["metrics"]["oa"] <= 1 and "rf_oa" in out["metrics"]
    assert readouts == ["fused", "heads"] * k and len(held_out) == 2 * k
    # readout_margin 0: the final model keeps whichever read-out the folds put ahead, and its figures are that one's
    own, other = out["metrics"]["prediction"], out["metrics"]["alt_prediction"]
    assert {own, other} == {"fused", "heads"} and out["metrics"]["oa"] >= out["metrics"]["alt_oa"] >= 0
    assert read_metadata_dict(str(tmp_path / "m.safetensors"))["network_config"]["prediction"] == own
    # the report's held-out OA at polygon edges: the held-out pixels within 2 px of their polygon's edge
    report = embedded_result((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert any(note.startswith(f"Whitewater: {m} pixels of the Water polygons") for note in report["notes"])
    cv_section = next(sec for sec in report["sections"] if sec["title"] == "Cross-validation grouped by polygon")
    assert cv_section["table"]["columns"][-1] == "BDGF OA, " + ("heads' mean" if other == "heads" else "fused classifier")
    assert f"classify --prediction {other}" in cv_section["text"]
    assert ("chosen on these folds" in cv_section["text"]) == (own == "heads")
    kept = report["settings"]["prediction"]
    assert kept.startswith("the mean of its branch heads" if own == "heads" else "its fused classifier")
    assert kept.endswith("(chosen by cross-validation)") == (own == "heads")
    alt_folds = [row[-1] for row in cv_section["table"]["rows"][:k]]
    assert all(0 <= v <= 1 for v in alt_folds) and cv_section["table"]["rows"][k][-1] == pytest.approx(
        float(np.mean(alt_folds)))
    section = next(sec for sec in report["sections"] if sec["title"] == "Held-out accuracy at polygon edges")
    (_, n_edge, oa_edge, rf_edge), (_, n_inside, oa_inside, _) = section["table"]["rows"]
    edge = edge_pixels(px.rows, px.cols, px.polygon_ids, 2)[fold >= 0]      # every held-out pixel, once
    assert n_edge == int(edge.sum()) and n_inside == int((~edge).sum()) and 0 < n_edge < len(edge)
    assert out["metrics"]["edge_oa"] == oa_edge and out["metrics"]["rf_edge_oa"] == rf_edge
    assert (n_edge * oa_edge + n_inside * oa_inside) / len(edge) == pytest.approx(out["metrics"]["oa"])


def test_the_swash_zone_trains_as_the_beach_it_is_drawn_over(delmarva_bands, delmarva_polygons, tmp_path,
                                                              monkeypatch):
    """On the crop's coast (one water, salt-marsh and beach polygon), the fast profile's whitewater adds foam-striped
    water pixels and swash-zone (wet sand and foam) beach pixels, each from its own polygon and with its own class
    (their spectra: test_whitewater.py), and the training report says so."""
    import engine.train as training
    from engine import api

    got, real = [], training.gather_whitewater
    monkeypatch.setattr(training, "gather_whitewater", lambda *a, **k: (got.append(real(*a, **k)), got[-1])[1])
    coast = (446800, 4170100, 448000, 4171700)
    api.train(Modality(delmarva_bands, "spectral"), [], delmarva_polygons, "class_id", str(tmp_path / "m.safetensors"),
              iterations=1, epochs=1, validation="none", device="cpu", extent=coast,
              report=str(tmp_path / "report.html"))
    (patches, polygon_ids), = got
    with RasterStack([Modality(delmarva_bands, "spectral")]) as stack:
        from engine.api import _training_pixels, _window
        from engine.progress import ensure
        px = _training_pixels(delmarva_polygons, "class_id", stack, _window(stack, coast), ensure(None))
    names = [c.name for c in px.classes]
    water, beach = names.index("Water"), names.index("Beach / sand")
    assert set(patches.y.tolist()) == {water, beach}
    for k in (water, beach):       # each synthetic pixel is of its own polygon's class
        assert set(px.values[np.isin(px.polygon_ids, polygon_ids[patches.y == k])].tolist()) == {px.classes[k].value}
    report = embedded_result((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert any(n.startswith(f"Whitewater: {len(polygon_ids)} pixels of the Water and Beach / sand polygons")
               for n in report["notes"])


def test_the_fast_profile_hides_the_sar_from_half_of_the_training_patches(ben_pair_87_48, tmp_path, monkeypatch):
    """api.train on the real Sentinel-1 + Sentinel-2 pair 87_48: about half of the training batches' patches reach
    the network with their whole SAR input at 0 (the scene mean), the spectra never; the log says so."""
    import io

    import engine.train as training
    from engine import api
    from engine.progress import Reporter

    shares, real = [], training._batch

    def spy(data, idx, device, config=None, gen=None):
        xs, xa, fd, y = real(data, idx, device, config, gen)
        if config is not None:
            shares.append(((xa == 0).flatten(1).all(1).float().mean().item(), (xs == 0).flatten(1).all(1).any().item()))
        return xs, xa, fd, y

    monkeypatch.setattr(training, "_batch", spy)
    log = io.StringIO()
    api.train(Modality(ben_pair_87_48["s2"], "spectral"), [Modality(ben_pair_87_48["s1"], "sar_db")],
              ben_pair_87_48["polygons"], "class_id", str(tmp_path / "m.safetensors"), iterations=1, epochs=2,
              validation="none", device="cpu", reporter=Reporter(json_mode=True, stream=log))
    assert shares and not any(spectral_zero for _, spectral_zero in shares)
    assert 0.35 < float(np.mean([s for s, _ in shares])) < 0.65
    assert "the auxiliary input hidden from 50% of the training patches" in log.getvalue()


def test_the_read_out_switches_only_when_the_folds_put_it_ahead_by_the_margin():
    """``choose_readout``: the other read-out of the same fold networks is kept only when its pooled OA is at least
    the margin ahead; then every BDGF figure (pooled, per fold, at polygon edges) is the chosen read-out's and the
    model's own moves to the alternative."""
    from engine.metrics import accuracy_metrics
    from engine.train import choose_readout, edge_accuracy

    labels, names = [1, 2], ["Water", "Forest"]

    def metrics(wrong):              # a held-out fold of 50 px per class, ``wrong`` water pixels mapped as forest
        return accuracy_metrics(np.array([[50 - wrong, wrong], [0, 50]]), labels, names)

    def cv(fused_wrong, heads_wrong):
        folds = [{"fold": 1, "bdgf": metrics(fused_wrong), "alternative": metrics(heads_wrong),
                  "alternative_prediction": "heads",
                  "edge": {"edge": {"n": 20, "bdgf": 20 - fused_wrong, "rf": 18, "alternative": 20 - heads_wrong},
                           "interior": {"n": 80, "bdgf": 80, "rf": 80, "alternative": 80}}}]
        return {"folds": folds, "bdgf": dict(folds[0]["bdgf"]), "alternative": dict(folds[0]["alternative"]),
                "alternative_prediction": "heads", "edge": edge_accuracy([folds[0]["edge"]], 2)}

    level = cv(fused_wrong=2, heads_wrong=1)             # heads 1 point ahead: below a 2-point margin
    assert choose_readout(level, 0.02) is None and level["bdgf"]["oa"] == pytest.approx(0.98)
    assert choose_readout(cv(2, 1), 1.0) is None         # 1 = never switch
    assert choose_readout({"bdgf": {"oa": 0.9}}, 0.0) is None     # heads not trained: nothing to choose from
    ahead = cv(fused_wrong=10, heads_wrong=1)            # 0.90 against 0.99
    assert choose_readout(ahead, 0.02) == "heads"
    assert ahead["bdgf"]["oa"] == pytest.approx(0.99) and ahead["alternative"]["oa"] == pytest.approx(0.90)
    assert ahead["alternative_prediction"] == "fused" and ahead["readout"]["prediction"] == "heads"
    fold = ahead["folds"][0]
    assert fold["bdgf"]["oa"] == pytest.approx(0.99) and fold["alternative_prediction"] == "fused"
    assert fold["edge"]["edge"]["bdgf"] == 19 and ahead["edge"]["edge"]["bdgf_oa"] == pytest.approx(19 / 20)
    assert ahead["edge"]["edge"]["alternative_oa"] == pytest.approx(10 / 20)


def test_the_verdict_compares_bdgf_and_the_random_forest_fold_by_fold():
    from engine.api import _verdict

    def result(oa_folds, kappa):
        mean, half = mean_ci95(oa_folds)
        return {"oa": mean, "kappa": kappa, "oa_folds": {"mean": mean, "ci95": half, "folds": oa_folds}}

    ahead = [0.99, 0.98, 0.99, 0.97, 0.985]
    behind = [0.96, 0.955, 0.965, 0.94, 0.95]
    assert _verdict(result(ahead, 0.98), result(behind, 0.95)).startswith("BDGF is more accurate")
    assert _verdict(result(behind, 0.95), result(ahead, 0.98)).startswith("The random forest wins")
    # pooled figures favour BDGF, but the folds disagree: level, with the paired interval stated
    text = _verdict(result([0.99, 0.95, 0.99], 0.95), result([0.97, 0.98, 0.975], 0.94))
    assert text.startswith("BDGF and the random forest are level") and "includes zero" in text
    # 2 folds (69_24 of the accuracy benchmark): the random forest ahead in both, by 15 points pooled; the
    # t-interval of 1 degree of freedom includes zero, so it is named as ahead, not as the winner, and the fold
    # OAs are listed instead of a mean ± a 200 % interval
    one_class = {"names": ["Water", "Forest", "Peat bog"], "confusion_matrix": [[0, 0, 0], [0, 258, 45], [0, 0, 0]]}
    text = _verdict({**result([0.681, 1.0], None), **one_class}, result([0.993, 1.0], None))
    assert "kappa not meaningful (every held-out pixel is Forest)" in text
    assert text.startswith("The random forest is ahead in 1 of 2 folds (level in the other) and pooled")
    text = _verdict(result([0.681, 0.97], 0.0), result([0.993, 1.0], 0.0))
    assert text.startswith("The random forest is ahead in every fold (2 of 2)") and "too few to be sure" in text
    assert "folds 68.1%, 97.0%" in text and "Consider the random forest" in text
    assert "--pseudo-labels 0.7" in text          # the option that lifted this pair; not advised again when on
    # one hold-out fold whose held-out pixels are all forest: kappa is undefined (None), OA decides
    text = _verdict({**result([0.95], None), **one_class}, result([0.99], None))
    assert text.startswith("The random forest wins") and "kappa not meaningful" in text
    assert _verdict({**result([0.99], None), **one_class}, result([0.95], None)).startswith("BDGF is more accurate")
    assert "pseudo-labels" not in _verdict(result([0.681, 0.97], 0.0), result([0.993, 1.0], 0.0), pseudo_labels=True)
    # the other read-out of the same fold networks beats the forest (69_24 with the heads' mean): advised first
    heads = {"prediction": "heads", "oa": 0.9976, "kappa": None}
    text = _verdict(result([0.681, 0.97], 0.0), result([0.993, 1.0], 0.0), alternative=heads)
    assert "Read out by the mean of its branch heads, the same model gets OA 99.8% on these folds" in text
    assert "--prediction heads" in text and text.index("Read out by") < text.index("Consider the random forest")
    assert "Read out by" not in _verdict(result([0.681, 0.97], 0.0), result([0.993, 1.0], 0.0),
                                         alternative={**heads, "oa": 0.90})
    text = _verdict(result([0.993, 1.0], 0.9), result([0.681, 0.97], 0.8))
    assert text.startswith("BDGF is ahead in every fold") and "Consider" not in text
    # a single fold (hold-out): the pooled figures decide
    assert _verdict(result([0.97], 0.95), result([0.96], 0.94)).startswith("BDGF is more accurate")
    assert _verdict(result([0.97], 0.95), None) == ""


def test_spatial_block_folds_are_given_in_metres(delmarva_bands, delmarva_polygons, tmp_path):
    """``train(cv_block=M)``: folds grouped by M-metre blocks of the 10 m grid (M / 10 px); refused without
    cross-validation or on a grid in degrees."""
    from engine import api
    from engine.data.grid import ReferenceGrid
    from engine.io.schema import read_metadata
    from engine.progress import Reporter

    utm = ReferenceGrid.from_bounds("EPSG:32618", 10.0, EXTENT)
    rep = Reporter(quiet=True)
    assert api._block_pixels(2000, utm, "cv:5", rep) == 200 and api._block_pixels(25, utm, "cv:5", rep) == 3
    assert api._block_pixels(0, utm, "holdout:0.3", rep) == 0
    with pytest.raises(EngineError, match="needs cross-validation"):
        api._block_pixels(2000, utm, "holdout:0.3", rep)
    with pytest.raises(EngineError, match="degrees"):
        api._block_pixels(2000, ReferenceGrid.from_bounds("EPSG:4326", 1e-4, (-75.6, 37.6, -75.5, 37.7)), "cv:5", rep)
    out = tmp_path / "m.safetensors"
    api.train(Modality(delmarva_bands, "spectral"), [], delmarva_polygons, "class_id", str(out), iterations=1,
              epochs=1, validation="cv:2", cv_block=500, device="cpu", extent=EXTENT)
    split = read_metadata(out).report["split"]
    assert split["by"] == "spatial block of 50 px" and split["folds"] == 2
    assert read_metadata(out).training_config["cv_block_size"] == 50


def test_unlabelled_pixels_are_random_inside_the_window_and_never_labelled():
    from engine.train import sample_unlabelled

    rows, cols = np.divmod(np.arange(0, 400, 3), 20)          # every 3rd pixel of a 20 x 20 window is labelled
    rows, cols = rows + 10, cols + 30
    r, c = sample_unlabelled((100, 100), (10, 30, 20, 20), rows, cols, 1000, seed=0)
    assert len(r) == 400 - len(rows)                          # all the free pixels of the window, once each
    assert r.min() >= 10 and r.max() < 30 and c.min() >= 30 and c.max() < 50
    assert not set(zip(r.tolist(), c.tolist())) & set(zip(rows.tolist(), cols.tolist()))
    r2, c2 = sample_unlabelled((100, 100), None, rows, cols, 50, seed=1)
    assert len(r2) == 50 and len(set(zip(r2.tolist(), c2.tolist()))) == 50
    assert np.array_equal(np.lexsort((c2, r2)), np.arange(50))   # row-major sorted
    again = sample_unlabelled((100, 100), None, rows, cols, 50, seed=1)
    assert np.array_equal(again[0], r2) and np.array_equal(again[1], c2)


def test_pseudo_labels_are_the_confident_teacher_classes_with_their_share_of_the_draws():
    """Only unlabelled pixels the teacher gives at least the threshold join, with its class; they get
    ``pseudo_share`` of the draws (balanced among themselves as ``pseudo_class_balance`` says) and the labelled
    pixels keep their relative weights in the rest."""
    from sklearn.linear_model import LogisticRegression

    from engine.train import TrainingConfig, patch_view, pseudo_labelled

    rng = np.random.default_rng(0)
    n, m = 60, 200
    y = np.repeat([0, 1, 2], 20)
    centre = rng.normal(size=(n, 4)) + 3 * np.eye(3, 4)[y]
    data = {"spec": torch.randn(n, 4, 5, 5), "aux": None, "dif": torch.randn(n, 8, 5, 5).half(),
            "y": torch.from_numpy(y)}
    u_centre = rng.normal(size=(m, 4)) * 2
    unlabelled = {"spec": torch.randn(m, 4, 5, 5), "aux": None, "dif": torch.randn(m, 8, 5, 5).half(),
                  "y": torch.zeros(m, dtype=torch.int64)}
    train_idx = np.arange(0, n, 2)
    w = sampling_weights(y[train_idx])
    teacher = LogisticRegression().fit(centre[train_idx], y[train_idx])
    cfg = TrainingConfig(pseudo_share=0.4, pseudo_min_confidence=0.9, pseudo_class_balance=1.0)
    view = pseudo_labelled(patch_view(data, train_idx, w), unlabelled, u_centre, teacher, cfg)
    prob = teacher.predict_proba(u_centre)
    sel = np.flatnonzero(prob.max(1) >= 0.9)
    assert 0 < len(sel) < m
    k = len(train_idx)
    assert np.array_equal(view["y"][:k].numpy(), y[train_idx])
    assert np.array_equal(view["y"][k:].numpy(), prob[sel].argmax(1))
    assert torch.equal(view["spec"][k:], unlabelled["spec"][torch.from_numpy(sel)])
    assert torch.equal(view["dif"][:k], data["dif"][torch.from_numpy(train_idx)])
    weights = view["weights"].numpy()
    assert weights[k:].sum() == pytest.approx(0.4) and weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(weights[:k] / weights[:k].sum(), w / w.sum())
    for c in np.unique(view["y"][k:].numpy()):                  # class-balanced among the pseudo-labels
        assert weights[k:][view["y"][k:].numpy() == c].sum() == pytest.approx(0.4 / len(np.unique(view["y"][k:])))
    # the default: pseudo-labels drawn in proportion to their counts (the teacher's rare classes are not boosted)
    prop = pseudo_labelled(patch_view(data, train_idx, w), unlabelled, u_centre, teacher,
                           TrainingConfig(pseudo_share=0.4, pseudo_min_confidence=0.9))
    np.testing.assert_allclose(prop["weights"].numpy()[k:], 0.4 / len(sel))
    off = TrainingConfig(pseudo_share=0.0)
    plain = patch_view(data, train_idx, w)
    assert pseudo_labelled(plain, unlabelled, u_centre, teacher, off) is plain
    with pytest.raises(EngineError, match="pseudo-label share"):
        TrainingConfig(pseudo_share=1.0)


def test_pseudo_label_teachers_never_see_the_held_out_polygons(delmarva_bands, delmarva_polygons, tmp_path,
                                                               monkeypatch):
    """With pseudo-labels (``pseudo_labels=0.7``), each fold's random-forest teacher is fitted on that fold's
    labelled training pixels only (never the whitewater ones); every fit trains on them and the fold's whitewater
    pixels plus pseudo-labelled pixels drawn with the configured share."""
    import engine.train as training
    from engine import api

    teachers, views, foam = [], [], []
    real_fit, real_train, real_foam = training.fit_random_forest, training.train_network, training.gather_whitewater
    monkeypatch.setattr(training, "gather_whitewater", lambda *a, **k: foam.append(real_foam(*a, **k)) or foam[-1])

    def fit_spy(x, y, trees, seed):
        if trees == training.PSEUDO_TREES:
            teachers.append(np.asarray(y).copy())
        return real_fit(x, y, trees, seed)

    def train_spy(net, train, val, config, *a, **k):
        views.append((train["y"][train["index"]].numpy().copy(), train["weights"].numpy().copy()))
        return real_train(net, train, val, config, *a, **k)

    monkeypatch.setattr(training, "PSEUDO_TREES", 7)      # the teachers' size, told apart from the baseline's
    monkeypatch.setattr(training, "fit_random_forest", fit_spy)
    monkeypatch.setattr(training, "train_network", train_spy)
    api.train(Modality(delmarva_bands, "spectral"), [], delmarva_polygons, "class_id", str(tmp_path / "m.safetensors"),
              iterations=1, epochs=1, validation="cv:3", device="cpu", extent=EXTENT, pseudo_labels=0.7)
    with RasterStack([Modality(delmarva_bands, "spectral")]) as stack:
        from engine.api import _training_pixels, _window
        from engine.progress import ensure
        px = _training_pixels(delmarva_polygons, "class_id", stack, _window(stack, EXTENT), ensure(None))
    fold, k, _ = polygon_folds(px, 3, 0)
    y = px.class_index()
    assert len(teachers) == k + 1 and len(views) == k + 1
    for f in range(k):
        assert np.array_equal(teachers[f], y[fold != f])          # the teacher never sees the held-out pixels
    assert np.array_equal(teachers[-1], y)                         # the final teacher: every labelled pixel
    (patches, foam_polygons), = foam
    foam_fold = np.array([fold[px.polygon_ids == p][0] for p in foam_polygons])
    for f, (labels, weights) in enumerate(views):
        n_lab = int((fold != f).sum()) if f < k else len(y)
        n_train = n_lab + (int((foam_fold != f).sum()) if f < k else len(foam_polygons))
        assert len(labels) > n_train and np.array_equal(labels[:n_lab], y[fold != f] if f < k else y)
        assert np.all(labels[n_lab:n_train] == patches.y[0])          # the whitewater pixels: water
        assert weights[n_train:].sum() == pytest.approx(0.7)
