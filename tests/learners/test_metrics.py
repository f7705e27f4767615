"""Our metrics equal scikit-learn's on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from learners.errors import InputError
from learners.metrics import (
    accuracy,
    balanced_accuracy,
    evaluate,
    mae,
    macro_f1,
    outputs_to_proba,
    r2,
    rmse,
    roc_auc,
)


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    y = rng.integers(0, k, size=200)
    y[:k] = np.arange(k)  # every class present
    pred = np.where(rng.random(200) < 0.6, y, rng.integers(0, k, size=200))
    assert accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert balanced_accuracy(y, pred) == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)
    assert macro_f1(y, pred) == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0), abs=1e-12)
    # Rounded scores create ties, which the rank formula must count as halves.
    proba = np.round(rng.dirichlet(np.ones(k), size=200), 1) + 1e-3
    proba /= proba.sum(axis=1, keepdims=True)
    expected = skm.roc_auc_score(y, proba[:, 1] if k == 2 else proba, multi_class="ovr")
    assert roc_auc(y, proba) == pytest.approx(expected, abs=1e-12)


def test_macro_f1_counts_predicted_only_labels_like_sklearn():
    y, pred = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    assert macro_f1(y, pred) == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))


def test_multilabel_metrics_equal_sklearn():
    rng = np.random.default_rng(3)
    y = (rng.random((150, 4)) < 0.4).astype(int)
    scores = np.clip(y * 0.3 + rng.random((150, 4)) * 0.7, 0, 1)
    pred = (scores > 0.5).astype(int)
    assert accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
    assert macro_f1(y, pred) == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert roc_auc(y, scores) == pytest.approx(skm.roc_auc_score(y, scores, average="macro"))


def test_regression_metrics_equal_sklearn():
    rng = np.random.default_rng(4)
    y = rng.normal(size=(100, 2))
    pred = y + rng.normal(scale=0.3, size=y.shape)
    assert mae(y, pred) == pytest.approx(skm.mean_absolute_error(y, pred))
    assert rmse(y, pred) == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert r2(y, pred) == pytest.approx(skm.r2_score(y, pred))
    assert r2(y[:, 0], pred[:, 0]) == pytest.approx(skm.r2_score(y[:, 0], pred[:, 0]))
    # sklearn's convention for a constant target
    assert r2(np.ones(5), np.ones(5)) == skm.r2_score(np.ones(5), np.ones(5)) == 1.0


def test_evaluate_from_logits_equals_sklearn_on_probabilities():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(90, 3))
    y = rng.integers(0, 3, size=90)
    proba = outputs_to_proba(logits, "multiclass")
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    got = evaluate("multiclass", y, logits)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, proba.argmax(1)))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    # A validation set missing a class: AUC over the classes present, renormalised (sklearn's `labels`).
    keep = y != 2
    sub = evaluate("multiclass", y[keep], logits[keep])
    expected = skm.roc_auc_score(y[keep], proba[keep][:, 1] / proba[keep][:, :2].sum(1))
    assert sub["roc_auc"] == pytest.approx(expected)


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="rows"):
        accuracy([0, 1], [0])
    with pytest.raises(InputError, match="empty"):
        mae([], [])
    with pytest.raises(InputError, match="positive and negative"):
        roc_auc(np.zeros(4), np.linspace(0, 1, 4))
    with pytest.raises(InputError, match="unknown task"):
        evaluate("ranking", [0], [[0.0]])
