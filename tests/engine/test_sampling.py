"""Sample design and stratified estimators against the worked example of Olofsson et al. (2014).

Olofsson, Foody, Herold, Stehman, Woodcock, Wulder 2014, "Good practices for estimating area and assessing
accuracy of land change", Remote Sensing of Environment 148:42-57, §5 (Tables 8-9): four strata of 30 m pixels
(deforestation 200 000, forest gain 150 000, stable forest 3 200 000, stable non-forest 6 450 000 pixels), a
stratified random sample of 640 units and the published estimates with 95 % intervals.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import EngineError
from engine.metrics import area_adjusted
from engine.sampling import (allocate, draw_stratified_points, olofsson_sample_size, stratified_estimates)

# rows = map class (stratum), columns = reference class (Olofsson et al. 2014, Table 8)
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
OLOFSSON_PIXELS = {1: 200_000, 2: 150_000, 3: 3_200_000, 4: 6_450_000}
PIXEL_AREA_M2 = 900.0


def _olofsson_sample():
    strata, mapped, ref = [], [], []
    for i in range(4):
        for j in range(4):
            n = int(OLOFSSON_COUNTS[i, j])
            strata += [i + 1] * n
            mapped += [i + 1] * n
            ref += [j + 1] * n
    return strata, mapped, ref


def test_olofsson_worked_example_published_estimates():
    s, m, r = _olofsson_sample()
    est = stratified_estimates(s, m, r, OLOFSSON_PIXELS, [1, 2, 3, 4], PIXEL_AREA_M2)
    # published: OA 0.95 ± 0.02
    assert est["oa"] == pytest.approx(0.947, abs=0.0005)
    assert est["oa_ci95"] == pytest.approx(0.018, abs=0.0005)
    pc = {c["label"]: c for c in est["per_class"]}
    published_ua = {1: (0.88, 0.07), 2: (0.73, 0.10), 3: (0.93, 0.04), 4: (0.96, 0.02)}
    published_pa = {1: (0.75, 0.21), 2: (0.85, None), 3: (0.93, 0.03), 4: (0.96, None)}
    published_area_ha = {1: (21_158, 6_158), 2: (11_686, 3_756), 3: (285_770, 15_510), 4: (581_386, 16_282)}
    for k in range(1, 5):
        assert pc[k]["users_accuracy"] == pytest.approx(published_ua[k][0], abs=0.005)
        assert pc[k]["users_accuracy_ci95"] == pytest.approx(published_ua[k][1], abs=0.005)
        assert pc[k]["producers_accuracy"] == pytest.approx(published_pa[k][0], abs=0.005)
        if published_pa[k][1] is not None:  # the paper's PA intervals of classes 2 and 4 carry a rounding slip
            assert pc[k]["producers_accuracy_ci95"] == pytest.approx(published_pa[k][1], abs=0.005)
        assert pc[k]["area_ha"] == pytest.approx(published_area_ha[k][0], abs=1.0)
        # the finite-population correction (omitted in the paper) changes the interval by < 2 ha
        assert pc[k]["area_ha_ci95"] == pytest.approx(published_area_ha[k][1], abs=2.0)
    assert est["total_area_ha"] == pytest.approx(900_000.0)
    # estimated error matrix in area proportions (Table 9), rows = reference, columns = map
    prop = np.array(est["proportions"])
    assert prop[0, 0] == pytest.approx(0.0176, abs=5e-5)
    assert prop[2, 3] == pytest.approx(0.0179, abs=5e-5)
    assert prop.sum() == pytest.approx(1.0)


def test_strata_equal_map_classes_match_olofsson_formulas():
    """With strata = map classes, Stehman's ratio estimators equal Olofsson's Eqs. 5-7 and 10 (up to the fpc)."""
    s, m, r = _olofsson_sample()
    est = stratified_estimates(s, m, r, OLOFSSON_PIXELS, [1, 2, 3, 4], PIXEL_AREA_M2)
    ref = area_adjusted(OLOFSSON_COUNTS.T, list(OLOFSSON_PIXELS.values()), PIXEL_AREA_M2, [1, 2, 3, 4])
    assert est["oa"] == pytest.approx(ref["oa"], rel=1e-12)
    assert est["oa_se"] == pytest.approx(ref["oa_se"], rel=1e-3)
    for a, b in zip(est["per_class"], ref["per_class"]):
        for key in ("users_accuracy", "producers_accuracy", "area_ha"):
            assert a[key] == pytest.approx(b[key], rel=1e-12)
        for key in ("users_accuracy_se", "producers_accuracy_se", "area_proportion_se"):
            assert a[key] == pytest.approx(b[key], rel=1e-3)


def test_strata_differ_from_map_classes():
    """A later map (e.g. cleaned) assessed with the design's strata: stratum weights, not the map's, count."""
    rng = np.random.default_rng(1)
    n = 400
    strata = np.repeat([1, 2], n // 2)
    ref = np.where(strata == 1, rng.choice([1, 2], n, p=[0.9, 0.1]), rng.choice([1, 2], n, p=[0.2, 0.8]))
    mapped = np.where(rng.random(n) < 0.85, ref, 3 - ref)
    sizes = {1: 90_000, 2: 10_000}
    est = stratified_estimates(strata, mapped, ref, sizes, [1, 2])
    w = np.array([0.9, 0.1])
    correct = [np.mean(mapped[strata == h] == ref[strata == h]) for h in (1, 2)]
    assert est["oa"] == pytest.approx(float(w @ correct), rel=1e-12)
    area1 = [np.mean(ref[strata == h] == 1) for h in (1, 2)]
    assert est["per_class"][0]["area_proportion"] == pytest.approx(float(w @ area1), rel=1e-12)
    # the unweighted sample proportion would be badly off (strata were sampled equally)
    assert abs(est["per_class"][0]["area_proportion"] - np.mean(ref == 1)) > 0.1


def test_sample_size_formula_olofsson_example():
    # Olofsson et al. 2014 §5.1.1: W = (0.02, 0.015, 0.32, 0.645), U = (0.7, 0.6, 0.9, 0.95), S(O) = 0.01 -> 641
    assert olofsson_sample_size([0.02, 0.015, 0.32, 0.645], [0.7, 0.6, 0.9, 0.95], 0.01) == 641
    # halving the target standard error quadruples n
    n2 = olofsson_sample_size([0.02, 0.015, 0.32, 0.645], [0.7, 0.6, 0.9, 0.95], 0.005)
    assert 4 * 641 - 4 <= n2 <= 4 * 641
    with pytest.raises(EngineError):
        olofsson_sample_size([0.5, 0.5], [0.9, 90], 0.01)
    with pytest.raises(EngineError):
        olofsson_sample_size([0.5, 0.5], [0.9, 0.9], 0.0)


def test_allocation_minimum_then_proportional():
    w = [0.02, 0.015, 0.32, 0.645]
    sizes = allocate(641, w, minimum=75)
    assert sizes.sum() == 641
    assert sizes[0] == 75 and sizes[1] == 75
    # the remaining 491 split in proportion to the two large strata
    assert sizes[2] == pytest.approx(491 * 0.32 / 0.965, abs=1)
    assert sizes[3] == pytest.approx(491 * 0.645 / 0.965, abs=1)
    assert (allocate(100, w, minimum=50) == 50).all()           # minimums win over the total
    capped = allocate(641, w, minimum=75, available=[10, 10**6, 10**6, 10**6])
    assert capped[0] == 10 and capped.sum() == 641               # a small stratum cannot give more than it has
    assert allocate(10, [0.0, 1.0], minimum=5)[0] == 0            # an empty stratum gets nothing


def test_draw_points_strata_and_minimum_distance():
    strata = np.zeros((200, 300), np.int64)
    strata[:, :150] = 1
    strata[:, 150:] = 2
    strata[80:110, 10:40] = 3           # a rare class of 900 pixels (300 x 300 m)
    strata[:5] = 0                      # nodata rows
    sizes = {1: 40, 2: 40, 3: 5}
    rows, cols, vals, achieved = draw_stratified_points(strata, sizes, (10.0, 10.0), min_distance=100.0, seed=3)
    assert achieved == sizes
    assert (strata[rows, cols] == vals).all()                   # each point lies in its stratum
    assert (rows >= 5).all()                                    # never on nodata
    xy = np.stack([cols * 10.0, rows * 10.0], 1)
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) + np.eye(len(xy)) * 1e9
    assert d.min() >= 100.0
    again = draw_stratified_points(strata, sizes, (10.0, 10.0), min_distance=100.0, seed=3)
    assert (again[0] == rows).all() and (again[1] == cols).all()  # reproducible with the seed
    # too little room: the rare class cannot hold 20 points 100 m apart in a 300 x 300 m block
    _, _, _, short = draw_stratified_points(strata, {3: 20}, (10.0, 10.0), min_distance=100.0, seed=0)
    assert 1 <= short[3] < 20
