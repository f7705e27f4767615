"""Metrics (scikit-learn's, behind our checks) against values worked out by hand on small inputs,
and the edge cases our checks add: empty, non-finite, one class, one sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

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

#: Three classes, two samples each; one-vs-rest AUCs by counting ordered (positive, negative) pairs
#: (a tie counts one half): class 0: 7.5/8, class 1: 6/8, class 2: 6.5/8, macro mean 2.5/3.
Y3 = np.array([0, 1, 2, 0, 1, 2])
P3 = np.array([[.8, .1, .1], [.1, .8, .1], [.1, .1, .8], [.3, .4, .3], [.3, .3, .4], [.2, .5, .3]])


def test_multiclass_label_metrics_by_hand():
    y, pred = np.array([0, 1, 2, 2]), np.array([0, 2, 2, 2])
    assert accuracy(y, pred) == 0.75
    assert balanced_accuracy(y, pred) == pytest.approx(2 / 3)  # recalls 1, 0, 1
    assert macro_f1(y, pred) == pytest.approx((1 + 0 + 0.8) / 3)  # class 2: 2 tp / (2*2 + 1 fp)
    # A label only ever predicted counts with F1 = 0: (2/3 + 1 + 0) / 3.
    assert macro_f1([0, 0, 1, 1], [0, 2, 1, 1]) == pytest.approx(5 / 9)
    # One class only: accuracy and balanced accuracy are that class's recall.
    assert accuracy([1, 1, 1], [1, 0, 1]) == balanced_accuracy([1, 1, 1], [1, 0, 1]) == pytest.approx(2 / 3)


def test_roc_auc_by_hand():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert roc_auc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == 0.875  # a tie is half a pair
    assert roc_auc([0, 0, 1, 1], np.array([[0.9, 0.1], [0.5, 0.5], [0.5, 0.5], [0.1, 0.9]])) == 0.875
    assert roc_auc(Y3, P3) == pytest.approx(2.5 / 3)
    assert roc_auc(np.array(["a", "b", "c"] * 2)[[0, 1, 2, 0, 1, 2]], P3, classes=["a", "b", "c"]) == \
        pytest.approx(2.5 / 3)
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    assert roc_auc(y, np.array([[.9, .2], [.1, .3], [.6, .4], [.4, .1]])) == pytest.approx((1 + 1) / 2)


def test_multiclass_roc_auc_of_scores_that_are_no_probabilities():
    """One-vs-rest ROC-AUC ranks each class by its own column, so any per-class scores serve (an SVM's
    decision values, as benchmarks/glycan_classification.py scores WL-SVM): sklearn's multi_class="ovr"
    demands rows summing to 1 and raised ValueError for them. Reference: the mean of scikit-learn's binary
    AUCs of each class, and its own "ovr" where the scores are probabilities."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 60)
    scores = rng.normal(size=(60, 4)) + 0.8 * np.eye(4)[y]
    expected = np.mean([roc_auc_score(y == c, scores[:, c]) for c in range(4)])
    assert roc_auc(y, scores) == pytest.approx(expected, rel=1e-12)
    labels = np.array(["w", "x", "y", "z"])
    assert roc_auc(labels[y], scores, classes=labels) == pytest.approx(expected, rel=1e-12)
    proba = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    assert roc_auc(y, proba) == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"), rel=1e-12)
    with pytest.raises(InputError, match="not among classes"):
        roc_auc(np.r_[y, 7], np.r_[scores, scores[:1]], classes=np.arange(4))
    with pytest.raises(InputError, match="cover 3 classes .* names 4"):
        roc_auc(y, scores[:, :3], classes=np.arange(4))


def test_binary_roc_auc_refuses_labels_outside_its_two_classes():
    """A binary score's labels outside ``classes`` were counted as negatives: [0, 1, 2, 2] scored 0.667 where
    the two classes alone score 1.0. Refused by name, as the multiclass path refuses them."""
    assert roc_auc([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]) == 1.0
    with pytest.raises(InputError, match=r"not among classes: \[2\]"):
        roc_auc([0, 1, 2, 2], [0.1, 0.9, 0.95, 0.85])
    with pytest.raises(InputError, match="cover 2 classes .* names 3"):
        roc_auc(["a", "b", "a"], [0.1, 0.9, 0.2], classes=["a", "b", "c"])


def test_multilabel_metrics_by_hand():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    pred = np.array([[1, 0], [0, 0], [1, 1], [0, 1]])
    assert accuracy(y, pred) == 0.5  # whole rows
    assert macro_f1(y, pred) == pytest.approx((1 + 0.5) / 2)


def test_regression_metrics_by_hand():
    y, pred = np.array([1.0, 2, 3, 4]), np.array([1.0, 2, 3, 6])
    assert mae(y, pred) == 0.5 and rmse(y, pred) == 1.0
    assert r2(y, pred) == pytest.approx(1 - 4 / 5)
    y2 = np.array([[1.0, 0], [2, 0], [3, 1], [4, 1]])
    p2 = np.array([[1.0, 0], [2, 0], [3, 1], [6, 0]])
    assert mae(y2, p2) == pytest.approx(3 / 8)
    assert rmse(y2, p2) == pytest.approx(math.sqrt(5 / 8))  # over all outputs, not a mean of roots
    assert r2(y2, p2) == pytest.approx((0.2 + 0.0) / 2)
    assert r2([1.0, 1.0], [1.0, 1.0]) == 1.0 and r2([1.0, 1.0], [1.0, 2.0]) == 0.0  # constant target


def test_evaluate_from_logits_by_hand():
    logits = np.log(P3) + 3.0  # softmax undoes the log, whatever the shift
    np.testing.assert_allclose(outputs_to_proba(logits, "multiclass"), P3, rtol=1e-12)
    np.testing.assert_allclose(outputs_to_proba(np.array([[0.0, np.log(3)]]), "multilabel"), [[0.5, 0.75]])
    got = evaluate("multiclass", Y3, logits)
    # All classes present: scikit-learn's one-vs-rest AUC of the softmax probabilities (P3's exact
    # ties come back from the softmax split by round-off, so it is compared on the same numbers).
    from sklearn.metrics import roc_auc_score
    assert got["accuracy"] == 0.5
    assert got["roc_auc"] == pytest.approx(roc_auc_score(Y3, outputs_to_proba(logits, "multiclass"), multi_class="ovr"))
    # A set missing class 2: each present class scored by its own probability against the rest,
    # by hand: class 0 (.7, .3 vs .2, .1) 4/4, class 1 (.5, .25 vs .2, .3) 3/4; macro 7/8.
    # Renormalising over classes 0 and 1 first (p1 / (p0 + p1): .71, .71 vs .22, .5 for class 1)
    # would give 1: the labels present would decide how the scores are scaled.
    p = np.array([[.7, .2, .1], [.2, .5, .3], [.3, .3, .4], [.1, .25, .65]])
    assert evaluate("multiclass", np.array([0, 1, 0, 1]), np.log(p))["roc_auc"] == pytest.approx(7 / 8)
    assert "roc_auc" not in evaluate("multiclass", np.array([0, 0]), logits[:2])  # one class: undefined
    assert evaluate("regression", np.array([1.0, 2, 3, 4]), np.array([1.0, 2, 3, 6])) == \
        pytest.approx({"mae": 0.5, "rmse": 1.0, "r2": 0.2})
    assert set(evaluate("regression", np.array([1.0]), np.array([2.0]))) == {"mae", "rmse"}  # no R^2 of one


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="rows"):
        accuracy([0, 1], [0])
    with pytest.raises(InputError, match="empty"):
        mae([], [])
    with pytest.raises(InputError, match="empty"):
        evaluate("multiclass", np.zeros(0), np.zeros((0, 3)))
    with pytest.raises(InputError, match="NaN"):
        rmse([1.0, 2.0], [1.0, np.nan])
    with pytest.raises(InputError, match="no positive"):
        roc_auc(np.zeros(4), np.linspace(0, 1, 4))
    with pytest.raises(InputError, match="only positive"):
        roc_auc(np.array([[1, 0], [1, 1]]), np.array([[.5, .5], [.5, .5]]))
    with pytest.raises(InputError, match="missing"):
        roc_auc(np.array([0, 1, 0, 1]), np.full((4, 3), 1 / 3))
    with pytest.raises(InputError, match="at least 2"):
        r2([1.0], [1.0])
    with pytest.raises(InputError, match="unknown task"):
        evaluate("ranking", [0], [[0.0]])
