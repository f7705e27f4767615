"""Evaluation metrics of graph-level classification and regression, vectorised in numpy.

Each metric follows scikit-learn's definition exactly (the tests compare them with
``sklearn.metrics`` on the same inputs); they live here so that the trainer can score every
epoch without converting conventions, and so that :func:`evaluate` can pick the metrics that
belong to a task from raw model outputs (logits).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

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
    if y_true.shape[0] != y_pred.shape[0]:
        raise InputError(f"y_true has {y_true.shape[0]} rows but the predictions have {y_pred.shape[0]}")
    if y_true.shape[0] == 0:
        raise InputError("cannot score an empty set of predictions")
    return y_true, y_pred


def accuracy(y_true, y_pred) -> float:
    """Fraction of exactly right predictions (rows of a multilabel indicator must match entirely)."""
    y_true, y_pred = _pair(y_true, y_pred)
    hits = y_true == y_pred
    if hits.ndim > 1:
        hits = hits.all(axis=1)
    return float(hits.mean())


def balanced_accuracy(y_true, y_pred) -> float:
    """Mean per-class recall over the classes present in ``y_true`` (sklearn's definition)."""
    y_true, y_pred = _pair(y_true, y_pred)
    classes, true_idx = np.unique(y_true, return_inverse=True)
    hits = np.bincount(true_idx, weights=(y_true == y_pred).astype(float), minlength=len(classes))
    return float(np.mean(hits / np.bincount(true_idx, minlength=len(classes))))


def _f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    # sklearn sets F1 = 0 for a label with no true and no predicted members (zero_division=0).
    denom = 2 * tp + fp + fn
    return float(np.mean(np.divide(2 * tp, denom, out=np.zeros_like(tp, dtype=float), where=denom > 0)))


def macro_f1(y_true, y_pred) -> float:
    """Unweighted mean of per-label F1 scores.

    Multiclass: over the union of labels in ``y_true`` and ``y_pred``; multilabel (2-D 0/1
    indicators): over the columns. Labels without any true or predicted member count as 0, as
    in ``sklearn.metrics.f1_score(average="macro", zero_division=0)``.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if y_true.ndim == 2:
        t, p = y_true.astype(bool), y_pred.astype(bool)
        tp = (t & p).sum(axis=0).astype(float)
        return _f1_from_counts(tp, (~t & p).sum(axis=0).astype(float), (t & ~p).sum(axis=0).astype(float))
    labels, inverse = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    t_idx, p_idx = inverse[: len(y_true)], inverse[len(y_true):]
    k = len(labels)
    tp = np.bincount(t_idx[t_idx == p_idx], minlength=k).astype(float)
    return _f1_from_counts(tp, np.bincount(p_idx, minlength=k) - tp, np.bincount(t_idx, minlength=k) - tp)


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    # Mann-Whitney U statistic with mid-ranks for ties: the area under the ROC curve.
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise InputError("ROC-AUC needs both positive and negative examples of every scored class")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc(y_true, proba, classes=None) -> float:
    """Area under the ROC curve.

    Parameters
    ----------
    y_true : array
        Class indices ``0..K-1`` (or labels listed in ``classes``), or a 2-D multilabel indicator.
    proba : array
        ``(n,)`` positive-class scores for a binary task, ``(n, K)`` class probabilities
        (multiclass: one-vs-rest, macro-averaged, as ``sklearn.metrics.roc_auc_score(...,
        multi_class="ovr")``; multilabel: macro over columns).
    classes : sequence, optional
        The labels of ``proba``'s columns; default ``0..K-1``.
    """
    y_true, proba = _pair(y_true, proba)
    if y_true.ndim == 2:
        return float(np.mean([_binary_auc(y_true[:, j].astype(bool), proba[:, j]) for j in range(y_true.shape[1])]))
    if proba.ndim == 2 and proba.shape[1] == 2:
        proba = proba[:, 1]
    classes = np.arange(proba.shape[1] if proba.ndim == 2 else 2) if classes is None else np.asarray(classes)
    if proba.ndim == 1:
        return _binary_auc(y_true == classes[1], proba)
    present = np.isin(classes, y_true)
    if not present.all():
        raise InputError(
            f"one-vs-rest ROC-AUC needs every class in y_true; missing {classes[~present].tolist()}"
        )
    return float(np.mean([_binary_auc(y_true == c, proba[:, j]) for j, c in enumerate(classes)]))


def mae(y_true, y_pred) -> float:
    """Mean absolute error (averaged over all outputs)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true, y_pred) -> float:
    """Root of the mean squared error (over all outputs)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination, uniformly averaged over outputs (sklearn's ``r2_score``)."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = y_true.reshape(len(y_true), -1).astype(float)
    y_pred = y_pred.reshape(len(y_pred), -1).astype(float)
    ss_res = ((y_true - y_pred) ** 2).sum(axis=0)
    ss_tot = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    # sklearn's conventions for a constant target: 1 if predicted exactly, else 0.
    score = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), np.where(ss_res == 0, 1.0, 0.0))
    return float(score.mean())


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
}


def outputs_to_proba(outputs: np.ndarray, task: str) -> np.ndarray:
    """Model outputs (logits) -> probabilities: softmax (multiclass), sigmoid (multilabel)."""
    if task == "multiclass":
        shifted = outputs - outputs.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=1, keepdims=True)
    if task == "multilabel":
        return 1.0 / (1.0 + np.exp(-outputs))
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
        where a class of the scored set has no positive or no negative member); regression: mae,
        rmse, r2.
    """
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; choose one of {TASKS}")
    y_true, outputs = np.asarray(y_true), np.asarray(outputs, dtype=float)
    if task == "regression":
        y_pred = outputs.reshape(y_true.shape)
        return {"mae": mae(y_true, y_pred), "rmse": rmse(y_true, y_pred), "r2": r2(y_true, y_pred)}
    proba = outputs_to_proba(outputs, task)
    if task == "multiclass":
        y_pred = proba.argmax(axis=1)
        scores = {
            "accuracy": accuracy(y_true, y_pred),
            "balanced_accuracy": balanced_accuracy(y_true, y_pred),
            "macro_f1": macro_f1(y_true, y_pred),
        }
        # One-vs-rest AUC over the classes present in this set, renormalised as sklearn does
        # when given ``labels``: only defined when at least two classes are present.
        present = np.unique(y_true)
        if len(present) >= 2:
            sub = proba[:, present] / proba[:, present].sum(axis=1, keepdims=True)
            scores["roc_auc"] = roc_auc(y_true, sub, classes=present)
        return scores
    y_pred = (proba > 0.5).astype(int)
    scores = {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred)}
    scorable = (y_true.min(axis=0) == 0) & (y_true.max(axis=0) == 1)
    if scorable.any():
        scores["roc_auc"] = roc_auc(y_true[:, scorable], proba[:, scorable])
    return scores

