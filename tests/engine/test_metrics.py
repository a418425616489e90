"""Tests of engine.metrics: equality with scikit-learn and the Olofsson et al. 2014 worked example."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from engine.metrics import accuracy_metrics, area_adjusted, confusion_matrix


@pytest.mark.parametrize("k,seed", [(2, 0), (3, 1), (7, 2), (13, 3)])
def test_metrics_equal_sklearn(k, seed):
    rng = np.random.default_rng(seed)
    labels = np.arange(1, k + 1) * 10          # non-contiguous class values
    y_true = rng.choice(labels, 500)
    # biased predictions: correct 60 % of the time
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.choice(labels, 500))
    cm = confusion_matrix(y_true, y_pred, labels)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=labels))
    m = accuracy_metrics(cm, labels)
    assert m["oa"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    assert m["aa"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred), abs=1e-12)
    assert m["kappa"] == pytest.approx(skm.cohen_kappa_score(y_true, y_pred), abs=1e-12)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(m["users_accuracy"], p, atol=1e-12)
    np.testing.assert_allclose(m["producers_accuracy"], r, atol=1e-12)
    np.testing.assert_allclose(m["f1"], f, atol=1e-12)
    assert m["support"] == s.tolist()
    json.dumps(m)   # JSON-serialisable


def test_missing_classes_give_none_not_nan():
    labels = [1, 2, 3, 4]
    y_true = np.array([1, 1, 2, 2, 4])   # class 3 never in the reference
    y_pred = np.array([1, 2, 2, 3, 1])   # class 4 never predicted, class 3 predicted once
    cm = confusion_matrix(y_true, y_pred, labels)
    m = accuracy_metrics(cm, labels, names=["a", "b", "c", "d"])
    pc = {c["label"]: c for c in m["per_class"]}
    assert pc[3]["producers_accuracy"] is None and pc[3]["users_accuracy"] == 0.0 and pc[3]["f1"] == 0.0
    assert pc[4]["users_accuracy"] is None and pc[4]["producers_accuracy"] == 0.0
    assert m["aa"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert m["kappa"] == pytest.approx(skm.cohen_kappa_score(y_true, y_pred))
    _, _, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(m["f1"], f)
    assert "NaN" not in json.dumps(m)
    # degenerate inputs never raise
    assert accuracy_metrics(np.zeros((3, 3)))["oa"] is None
    assert accuracy_metrics(np.array([[5]]))["kappa"] is None


def test_kappa_is_undefined_when_one_class_has_reference_samples():
    # a cross-validation fold whose held-out pixels are all forest (class 1): scikit-learn's kappa is 0 for any
    # map, right or wrong, since the expected agreement equals the observed one; OA and PA still tell them apart
    labels = [0, 1, 2]
    wrong = accuracy_metrics(confusion_matrix(np.ones(141, int), np.r_[np.ones(100, int), np.full(41, 2)], labels),
                             labels)
    right = accuracy_metrics(confusion_matrix(np.ones(141, int), np.ones(141, int), labels), labels)
    assert skm.cohen_kappa_score(np.ones(141, int), np.r_[np.ones(100, int), np.full(41, 2)]) == 0.0
    assert wrong["kappa"] is None and right["kappa"] is None
    assert wrong["oa"] == pytest.approx(100 / 141) and right["oa"] == 1.0
    # two reference classes: defined again, and scikit-learn's value
    y_true, y_pred = np.r_[np.ones(10, int), np.zeros(5, int)], np.r_[np.ones(9, int), np.zeros(6, int)]
    assert accuracy_metrics(confusion_matrix(y_true, y_pred, labels), labels)["kappa"] == pytest.approx(
        skm.cohen_kappa_score(y_true, y_pred))


# Olofsson et al. 2014 (RSE 148:42-57), section 5 example (their Table 8, rows = map there; transposed here)
OLOFSSON_CM = np.array([[66, 0, 1, 2], [0, 55, 0, 1], [5, 8, 153, 9], [4, 12, 11, 313]])  # rows = reference
OLOFSSON_PIXELS = [200000, 150000, 3200000, 6450000]


def test_olofsson_2014_example():
    r = area_adjusted(OLOFSSON_CM, OLOFSSON_PIXELS, 900.0,
                      names=["deforestation", "forest gain", "stable forest", "stable non-forest"])
    defo = r["per_class"][0]
    assert defo["samples"] == 75
    # published: 21,158 ha ± 6,158 ha (95 % CI, 1.96 x SE with SE rounded to 3,142 ha);
    # exact recomputation: 21,157.8 ha, SE 3,141.6 ha, CI ±6,157.5 ha
    assert defo["area_ha"] == pytest.approx(21158, abs=0.5)
    assert defo["area_ha_ci95"] == pytest.approx(6158, abs=1.0)
    assert defo["area_m2"] == pytest.approx(defo["area_ha"] * 1e4)
    assert defo["users_accuracy"] == pytest.approx(0.88, abs=1e-12)
    assert round(defo["producers_accuracy"], 2) == 0.75
    assert round(r["oa"], 2) == 0.95
    # published CIs: UA 0.88 ± 0.07, PA 0.75 ± 0.21, OA 0.95 ± 0.02
    assert round(defo["users_accuracy_ci95"], 2) == 0.07
    assert round(defo["producers_accuracy_ci95"], 2) == 0.21
    assert round(r["oa_ci95"], 2) == 0.02
    # published remaining areas (ha): gain 11,686 ± 3,756; stable forest 285,770 ± 15,510; non-forest 581,386 ± 16,282
    areas = [c["area_ha"] for c in r["per_class"]]
    cis = [c["area_ha_ci95"] for c in r["per_class"]]
    np.testing.assert_allclose(areas[1:], [11686, 285770, 581386], atol=2)
    np.testing.assert_allclose(cis[1:], [3756, 15510, 16282], atol=2)
    assert sum(areas) == pytest.approx(r["total_area_ha"])
    # proportions: same layout as cm (rows = reference) and sum to 1
    assert np.asarray(r["proportions"]).sum() == pytest.approx(1.0)
    json.dumps(r)


def test_area_adjusted_degenerate_strata():
    cm = np.array([[3, 0, 0], [0, 1, 0], [0, 0, 0]])   # class 2 has 1 sample, class 3 none
    r = area_adjusted(cm, [100, 50, 10], 100.0)
    assert r["per_class"][1]["users_accuracy_se"] is None
    assert r["unsampled_map_classes"] == [2]
    assert "NaN" not in json.dumps(r)


def test_area_adjusted_leaves_out_unsampled_map_classes():
    """A mapped class without reference samples has unknown accuracy: it must not count as 0 % correct."""
    from engine.metrics import area_adjusted

    cm = np.array([[40, 0, 0], [2, 30, 0], [0, 0, 0]])      # rows reference, columns map; class 2 never sampled
    counts = np.array([5000, 3000, 2000])
    full = area_adjusted(cm[:2, :2], counts[:2], 100.0)    # the same two strata without the unsampled class
    res = area_adjusted(cm, counts, 100.0)
    assert res["unsampled_map_classes"] == [2]
    assert abs(res["assessed_area_fraction"] - 0.8) < 1e-12
    assert abs(res["oa"] - full["oa"]) < 1e-12 and res["oa"] > 0.9
    assert res["per_class"][2]["area_ha"] is None and res["per_class"][2]["mapped_area_ha"] == 20.0
    assert abs(res["per_class"][0]["area_ha"] - full["per_class"][0]["area_ha"]) < 1e-9
    assert "left out" in res["note"]
