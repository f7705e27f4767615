"""Evaluation metrics of graph-level classification and regression: scikit-learn's, behind our checks.

The numbers are :mod:`sklearn.metrics`' own; this module adds what the trainer needs around them:
validation of our inputs with :class:`~learners.errors.InputError` (mismatched rows, empty or
non-finite input, a class without positives for ROC-AUC), the choice of metrics that belong to a
task, and scoring from raw model outputs (logits) in :func:`evaluate`.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import expit, softmax
from sklearn import metrics as skm

from learners.errors import InputError

__all__ = [
    "TASKS",
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "roc_auc",
    "mae",
    "rmse",
    "r2",
    "evaluate",
    "outputs_to_proba",
    "METRIC_MODES",
]

#: Prediction tasks every learner understands.
TASKS = ("multiclass", "multilabel", "regression")


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim == 0 or y_pred.ndim == 0:
        raise InputError(f"y_true and the predictions must be arrays, got shapes {y_true.shape} and {y_pred.shape}")
    if y_true.shape[0] != y_pred.shape[0]:
        raise InputError(f"y_true has {y_true.shape[0]} rows but the predictions have {y_pred.shape[0]}")
    if y_true.shape[0] == 0:
        raise InputError("cannot score an empty set of predictions")
    for name, a in (("y_true", y_true), ("the predictions", y_pred)):
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            raise InputError(f"{name} contain {int((~np.isfinite(a)).sum())} NaN or infinite values")
    return y_true, y_pred


def accuracy(y_true, y_pred) -> float:
    """Fraction of exactly right predictions (rows of a multilabel indicator must match entirely)."""
    return float(skm.accuracy_score(*_pair(y_true, y_pred)))


def balanced_accuracy(y_true, y_pred) -> float:
    """Mean per-class recall over the classes present in ``y_true`` (``balanced_accuracy_score``)."""
    with warnings.catch_warnings():
        # A predicted class absent from y_true is simply a wrong prediction here (documented above).
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(skm.balanced_accuracy_score(*_pair(y_true, y_pred)))


def macro_f1(y_true, y_pred) -> float:
    """Unweighted mean of per-label F1 scores (``f1_score(average="macro", zero_division=0)``).

    Multiclass: over the union of labels in ``y_true`` and ``y_pred``; multilabel (2-D 0/1
    indicators): over the columns. A label without any true or predicted member counts as 0.
    """
    return float(skm.f1_score(*_pair(y_true, y_pred), average="macro", zero_division=0))


def _check_both_sides(positive: np.ndarray, what: str) -> None:
    n_pos = int(positive.sum())
    if n_pos == 0 or n_pos == positive.size:
        raise InputError(f"ROC-AUC needs both positive and negative examples of every scored class; "
                         f"{what} has {'no' if n_pos == 0 else 'only'} positive examples")


def roc_auc(y_true, proba, classes=None) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``).

    Parameters
    ----------
    y_true : array
        Class indices ``0..K-1`` (or labels listed in ``classes``), or a 2-D multilabel indicator.
    proba : array
        ``(n,)`` positive-class scores for a binary task, ``(n, K)`` class probabilities or any
        per-class scores (an SVM's decision values; multiclass: one-vs-rest, macro-averaged, each
        class ranked by its own column, which for probabilities is ``multi_class="ovr"``;
        multilabel: macro over columns).
    classes : sequence, optional
        The labels of ``proba``'s columns; default ``0..K-1``.

    Raises
    ------
    InputError
        A scored class without positive or without negative examples (one class only),
        multiclass scores for classes absent from ``y_true``, a label of ``y_true`` not among
        ``classes``, or a column count other than the number of classes.
    """
    y_true, proba = _pair(y_true, proba)
    if y_true.ndim == 2:
        for j in range(y_true.shape[1]):
            _check_both_sides(y_true[:, j].astype(bool), f"column {j}")
        return float(skm.roc_auc_score(y_true, proba, average="macro"))
    if proba.ndim == 2 and proba.shape[1] == 2:
        proba = proba[:, 1]
    classes = np.arange(proba.shape[1] if proba.ndim == 2 else 2) if classes is None else np.asarray(classes)
    n_scored = proba.shape[1] if proba.ndim == 2 else 2  # a 1-D array: the second class's scores of two
    if n_scored != len(classes):
        raise InputError(f"the scores cover {n_scored} classes (columns; a 1-D array: 2) but classes names "
                         f"{len(classes)}")
    # (a binary task's third label was counted a negative, a multiclass one's an all-negative row)
    unknown = ~np.isin(y_true, classes)
    if unknown.any():
        raise InputError(f"y_true holds labels that are not among classes: {np.unique(y_true[unknown]).tolist()[:10]}")
    if proba.ndim == 1:
        positive = y_true == classes[1]
        _check_both_sides(positive, f"class {classes[1]!r}")
        return float(skm.roc_auc_score(positive, proba))
    present = np.isin(classes, y_true)
    if not present.all():
        raise InputError(f"one-vs-rest ROC-AUC needs every class in y_true; missing {classes[~present].tolist()}")
    # One-vs-rest on the binarised labels (scikit-learn's multilabel path): the number multi_class="ovr"
    # gives for probabilities, which it alone demands sum to 1 (decision values raised its ValueError).
    return float(skm.roc_auc_score((y_true[:, None] == classes[None, :]).astype(int), proba, average="macro"))


def mae(y_true, y_pred) -> float:
    """Mean absolute error (averaged over all outputs)."""
    return float(skm.mean_absolute_error(*_pair(y_true, y_pred)))


def rmse(y_true, y_pred) -> float:
    """Root of the mean squared error over all outputs (the root of ``mean_squared_error``, not the
    mean of per-output roots)."""
    return float(np.sqrt(skm.mean_squared_error(*_pair(y_true, y_pred))))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination, uniformly averaged over outputs (``r2_score``: a constant target
    scores 1 if predicted exactly, else 0).

    Raises
    ------
    InputError
        Fewer than two samples (R^2 is undefined).
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if len(y_true) < 2:
        raise InputError(f"R^2 needs at least 2 samples, got {len(y_true)}")
    return float(skm.r2_score(y_true, y_pred))


#: Whether a larger value is better ("max") or worse ("min"), for early stopping.
METRIC_MODES = {
    "loss": "min",
    "accuracy": "max",
    "balanced_accuracy": "max",
    "macro_f1": "max",
    "roc_auc": "max",
    "mae": "min",
    "rmse": "min",
    "r2": "max",
    "spearman": "max",
}


def outputs_to_proba(outputs: np.ndarray, task: str) -> np.ndarray:
    """Model outputs (logits) -> probabilities: softmax (multiclass), sigmoid (multilabel)."""
    if task == "multiclass":
        return softmax(outputs, axis=1)
    if task == "multilabel":
        return expit(outputs)
    raise InputError(f"probabilities exist for classification tasks only, not {task!r}")


def evaluate(task: str, y_true: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
    """Every metric of ``task`` from targets and raw model outputs.

    Parameters
    ----------
    task : {"multiclass", "multilabel", "regression"}
    y_true : array
        Class indices ``(n,)``, a 0/1 indicator ``(n, K)``, or targets ``(n,)``/``(n, T)``.
    outputs : array
        Logits ``(n, K)`` for classification, predictions for regression.

    Returns
    -------
    dict
        Classification: accuracy, balanced_accuracy (multiclass only), macro_f1, roc_auc (left out
        where a class of the scored set has no positive or no negative member; multiclass: the
        one-vs-rest AUC of each class present in ``y_true`` from its softmax probability,
        macro-averaged); regression: mae, rmse, r2 (left out for a single sample).
    """
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; choose one of {TASKS}")
    y_true, outputs = _pair(y_true, np.asarray(outputs, dtype=float))
    if task == "regression":
        y_pred = outputs.reshape(y_true.shape)
        scores = {"mae": mae(y_true, y_pred), "rmse": rmse(y_true, y_pred)}
        if len(y_true) >= 2:
            scores["r2"] = r2(y_true, y_pred)
        return scores
    proba = outputs_to_proba(outputs, task)
    if task == "multiclass":
        y_pred = proba.argmax(axis=1)
        scores = {
            "accuracy": accuracy(y_true, y_pred),
            "balanced_accuracy": balanced_accuracy(y_true, y_pred),
            "macro_f1": macro_f1(y_true, y_pred),
        }
        # One-vs-rest AUC of each class present in this set, scored by the model's own probability
        # of that class, macro-averaged: scikit-learn's "ovr" on the binarised labels, defined when
        # at least two classes are present. Renormalising the probabilities over the present
        # classes instead would rescale every score by which classes the labels hold.
        present = np.unique(y_true)
        if len(present) >= 2:
            scores["roc_auc"] = roc_auc((y_true[:, None] == present[None, :]).astype(int), proba[:, present])
        return scores
    y_pred = (proba > 0.5).astype(int)
    scores = {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred)}
    scorable = (y_true.min(axis=0) == 0) & (y_true.max(axis=0) == 1)
    if scorable.any():
        scores["roc_auc"] = roc_auc(y_true[:, scorable], proba[:, scorable])
    return scores
