"""Uncertainty measures and "suggest samples" selection (ranking, spacing, class balance)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.suggest import SuggestionPool, entropy_margin, select_diverse


def test_entropy_and_margin_values():
    p = np.array([[1.0, 0.5, 1 / 3, 0.6], [0.0, 0.5, 1 / 3, 0.3], [0.0, 0.0, 1 / 3, 0.1]], np.float32)[:, None, :]
    ent, mar = entropy_margin(p)
    assert ent[0, 0] == pytest.approx(0.0, abs=1e-6)                 # certain
    assert ent[0, 2] == pytest.approx(1.0, abs=1e-6)                 # uniform over K = 3
    assert ent[0, 1] == pytest.approx(math.log(2) / math.log(3), abs=1e-6)
    assert mar[0].tolist() == pytest.approx([1.0, 0.0, 0.0, 0.3], abs=1e-6)
    ent2, _ = entropy_margin(p, valid=np.array([[True, False, True, True]]))
    assert np.isnan(ent2[0, 1]) and not np.isnan(ent2[0, 0])


def _scene(seed=0, h=60, w=80, k=3):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(k, h, w)) * 3
    p = np.exp(logits) / np.exp(logits).sum(0)
    values = np.array([10, 20, 30])
    cls = values[p.argmax(0)]
    cls[:, :5] = 0                     # nodata columns
    return p.astype(np.float32), cls, values


def test_pool_keeps_most_uncertain_per_cell_and_class_across_tiles():
    p, cls, values = _scene()
    pool = SuggestionPool(60, 80, values, cell=10)
    for r0 in (0, 30):                 # two tiles, like classify_scene
        pool.write(r0, 0, cls[r0:r0 + 30], None, p[:, r0:r0 + 30])
    cand = pool.candidates()
    ent, _ = entropy_margin(p, cls > 0)
    # brute force: most uncertain pixel per (10 x 10 cell, predicted class)
    expected = {}
    for r, c in zip(*np.nonzero(cls > 0)):
        key = (r // 10, c // 10, int(p[:, r, c].argmax()))
        if key not in expected or ent[r, c] > ent[expected[key]]:
            expected[key] = (r, c)
    got = {(r // 10, c // 10, f): (r, c) for r, c, f in zip(cand["rows"], cand["cols"], cand["first"])}
    assert got == expected
    assert (cand["cols"] >= 5).all()   # nodata never suggested
    i = 0
    r, c = cand["rows"][i], cand["cols"][i]
    assert cand["p_first"][i] == pytest.approx(np.sort(p[:, r, c])[-1])
    assert cand["p_second"][i] == pytest.approx(np.sort(p[:, r, c])[-2])
    assert cand["second"][i] == np.argsort(p[:, r, c])[-2]


def test_selection_ranking_spacing_and_balance():
    rng = np.random.default_rng(5)
    m = 3000
    rows, cols = rng.integers(0, 500, m), rng.integers(0, 500, m)
    classes = rng.choice([0, 1, 2], m, p=[0.8, 0.15, 0.05])
    score = rng.random(m) + (classes == 0) * 0.5      # class 0 is both common and the most uncertain
    pick = select_diverse(rows, cols, classes, score, 30, min_distance=300.0, pixel_size=(10.0, 10.0))
    assert len(pick) == 30
    assert np.all(np.diff(score[pick]) <= 0)         # ranked by uncertainty
    xy = np.stack([cols[pick] * 10.0, rows[pick] * 10.0], 1)
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) + np.eye(30) * 1e9
    assert d.min() >= 300.0                           # spread over the scene
    counts = np.bincount(classes[pick], minlength=3)
    assert counts.tolist() == [10, 10, 10]            # balanced despite class 0 dominating the ranking
    unbalanced = select_diverse(rows, cols, classes, score, 30, 300.0, (10.0, 10.0), balance=False)
    assert np.bincount(classes[unbalanced], minlength=3)[0] > 20
    # the most uncertain candidate of all is always rank 1
    assert pick[0] == int(np.argmax(score))
    # a class with few candidates gives what it has and the others fill the batch
    few = select_diverse(rows, cols, np.where(classes == 2, 2, classes), score, 30, 300.0, (10.0, 10.0))
    assert len(few) == 30


def test_classification_writer_uncertainty_raster(tmp_path):
    """classify --uncertainty: two named float bands (normalised entropy, margin), NaN on nodata, atomic."""
    import rasterio
    from rasterio.transform import from_origin

    from engine.io.rasters import ClassificationWriter

    p, cls, values = _scene(seed=3, h=40, w=50)
    classes = [{"value": int(v), "name": f"class {v}"} for v in values]
    out, unc = str(tmp_path / "c.tif"), str(tmp_path / "u.tif")
    with ClassificationWriter(out, "EPSG:32618", from_origin(0, 0, 10, 10), 50, 40, classes,
                              uncertainty_path=unc) as w:
        w.write(0, 0, cls[:, :25], None, p[:, :, :25])
        w.write(0, 25, cls[:, 25:], None, p[:, :, 25:])
    with rasterio.open(unc) as src:
        assert src.count == 2 and src.descriptions == ("normalised_entropy", "margin")
        ent, mar = src.read(1), src.read(2)
    want_ent, want_mar = entropy_margin(p, cls > 0)
    assert np.allclose(ent, want_ent, equal_nan=True) and np.allclose(mar, want_mar, equal_nan=True)
    assert np.isnan(ent[cls == 0]).all()
    with pytest.raises(RuntimeError):
        with ClassificationWriter(str(tmp_path / "c2.tif"), "EPSG:32618", from_origin(0, 0, 10, 10), 50, 40,
                                  classes, uncertainty_path=str(tmp_path / "u2.tif")) as w:
            raise RuntimeError("crash mid-way")
    assert not (tmp_path / "u2.tif").exists()                          # nothing half-written
