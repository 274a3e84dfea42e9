"""Tests for medsafe.stats.calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from medsafe.stats import classification_report
from medsafe.stats.calibration import bootstrap_confusions
from medsafe.stats.intervals import wilson


def _judge(seed: int, n: int = 150, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.integers(0, k, n)
    p = np.where(rng.random(n) < 0.6, t, rng.integers(0, k, n))
    return t, p


def test_point_estimates_match_sklearn() -> None:
    t, p = _judge(0)
    r = classification_report(t, p, n_resamples=200)
    labels = [0, 1, 2, 3]
    assert r["labels"] == labels and r["n"] == 150
    assert r["accuracy"]["value"] == pytest.approx(skm.accuracy_score(t, p))
    assert r["kappa"]["value"] == pytest.approx(skm.cohen_kappa_score(t, p))
    assert r["macro_f1"]["value"] == pytest.approx(
        skm.f1_score(t, p, average="macro", labels=labels, zero_division=0)
    )
    prec, rec, f1, sup = skm.precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    for j, lab in enumerate(labels):
        cls = r["per_class"][str(lab)]
        assert cls["precision"]["value"] == pytest.approx(prec[j])
        assert cls["recall"]["value"] == pytest.approx(rec[j])
        assert cls["f1"]["value"] == pytest.approx(f1[j])
        assert cls["support"] == sup[j]
    assert r["confusion_matrix"] == skm.confusion_matrix(t, p, labels=labels).tolist()
    assert r["mae"]["value"] == pytest.approx(skm.mean_absolute_error(t, p))
    assert r["weighted_kappa_quadratic"]["value"] == pytest.approx(
        skm.cohen_kappa_score(t, p, weights="quadratic")
    )


def test_intervals_wilson_and_bootstrap() -> None:
    t, p = _judge(1)
    r = classification_report(t, p, n_resamples=500, seed=3)
    correct = int(np.sum(t == p))
    assert r["accuracy"]["ci"] == wilson(correct, 150).to_dict()
    for key in ("kappa", "macro_f1", "mae"):
        ci = r[key]["ci"]
        assert ci["lo"] < r[key]["value"] < ci["hi"]
    assert r == classification_report(t, p, n_resamples=500, seed=3)
    bigger = classification_report(np.tile(t, 16), np.tile(p, 16), n_resamples=500, seed=3)
    width = r["kappa"]["ci"]["hi"] - r["kappa"]["ci"]["lo"]
    assert bigger["kappa"]["ci"]["hi"] - bigger["kappa"]["ci"]["lo"] < width / 2


def test_bootstrap_confusions_resample_whole_clusters() -> None:
    t, p = _judge(2, n=40, k=3)
    true, pred = t.astype(np.intp), p.astype(np.intp)
    cm, boot = bootstrap_confusions(true, pred, 3, n_resamples=50, seed=0)
    assert cm.tolist() == skm.confusion_matrix(t, p, labels=[0, 1, 2]).tolist()
    assert boot.shape == (50, 3, 3) and (boot.sum(axis=(1, 2)) == 40).all()
    # three copies of every item in one cluster each: a replicate holds whole clusters only
    tripled = np.repeat(np.arange(40), 3)
    _, grouped = bootstrap_confusions(true[tripled], pred[tripled], 3, clusters=tripled, seed=1)
    assert (grouped % 3 == 0).all() and (grouped.sum(axis=(1, 2)) == 120).all()
    # the random stream does not depend on the block size
    _, first = bootstrap_confusions(true, pred, 3, n_resamples=5, seed=0)
    assert (first == boot[:5]).all()


def test_string_labels_are_nominal_and_json_ready() -> None:
    t = ["safe", "unsafe", "safe", "refuse", "unsafe", "safe"] * 5
    p = ["safe", "safe", "safe", "refuse", "unsafe", "unsafe"] * 5
    r = classification_report(t, p, labels=["safe", "unsafe", "refuse"], n_resamples=100)
    assert "mae" not in r
    assert list(r["per_class"]) == ["safe", "unsafe", "refuse"]
    assert r["kappa"]["value"] == pytest.approx(skm.cohen_kappa_score(t, p))
    json.dumps(r, allow_nan=False)


def test_ordinal_flag_and_validation() -> None:
    t, p = _judge(4)
    assert "mae" not in classification_report(t, p, ordinal=False, n_resamples=50)
    with pytest.raises(ValueError):
        classification_report(["a"], ["b"], ordinal=True)
    with pytest.raises(ValueError):
        classification_report([0, 1], [0, 2], labels=[0, 1])
    with pytest.raises(ValueError):
        classification_report([], [])
    constant = classification_report([1, 1, 1], [1, 1, 1], n_resamples=50)
    assert constant["kappa"]["value"] is None
    json.dumps(constant, allow_nan=False)


def test_macro_f1_leaves_out_a_verdict_no_reference_uses() -> None:
    """An abstention label the judge gives but no human does counts as wrong, with no F1."""
    t = np.array(["a", "a", "b", "b", "c", "c"])
    p = np.array(["a", "x", "b", "b", "c", "a"])
    r = classification_report(t, p, n_resamples=200)
    assert r["per_class"]["x"]["support"] == 0
    assert r["accuracy"]["value"] == pytest.approx(4 / 6)
    assert r["macro_f1"]["value"] == pytest.approx(
        skm.f1_score(t, p, average="macro", labels=["a", "b", "c"], zero_division=0)
    )
    assert r["macro_f1"]["value"] > skm.f1_score(t, p, average="macro", zero_division=0)
