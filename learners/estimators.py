"""scikit-learn-style GNN estimators over lists of networkx graphs.

``GNNClassifier(kind="gine", epochs=100, seed=0).fit(graphs, y)`` builds a
:class:`learners.models.GraphModel` sized from the graphs' feature widths and trains it with
:class:`learners.trainer.Trainer`; ``predict``, ``predict_proba`` and ``score`` follow scikit-learn's
conventions (``classes_``, accuracy / R^2 scores), and ``get_params`` / ``clone`` work.
"""

from __future__ import annotations

import os
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator

from learners.data import feature_widths, graph_data_digest, graphs_to_data
from learners.errors import InputError, NotFittedError
from learners.metrics import TASKS, accuracy, macro_f1, outputs_to_proba, r2
from learners.models import (RELATIONAL_KINDS, GraphModel, check_kind_options, graph_inputs, relation_table,
                             task_loss, unread_settings)
from learners.splits import random_split, stratified_split
from learners.trainer import Trainer, _atomic_torch_save, supervised_step

__all__ = ["GNNClassifier", "GNNRegressor", "GNNMultiTaskClassifier", "save_estimator", "load_estimator"]

_FORMAT = "matrep-gnn-estimator-1"


def _forward(model: torch.nn.Module, batch: Any) -> torch.Tensor:
    return model(*graph_inputs(batch))


class _GNNEstimator(BaseEstimator):
    """Shared fit / predict machinery; subclasses encode targets and decode outputs."""

    _default_monitor = "loss"

    def __init__(
        self,
        *,
        kind: str = "gine",
        hidden: int = 64,
        layers: int = 3,
        readout: str = "mean",
        dropout: float = 0.0,
        min_relation_count: int = 5,
        composition: str = "mult",
        num_bases: int | None = 8,
        epochs: int = 100,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        schedule: str = "cosine",
        patience: int | None = None,
        validation_fraction: float = 0.0,
        monitor: str | None = None,
        clip_norm: float | None = 5.0,
        device: Any = "cpu",
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
        run_dir: str | None = None,
        resume: bool = False,
        progress: bool = False,
    ) -> None:
        self.kind, self.hidden, self.layers, self.readout, self.dropout = kind, hidden, layers, readout, dropout
        self.min_relation_count, self.composition, self.num_bases = min_relation_count, composition, num_bases
        self.epochs, self.batch_size, self.lr, self.weight_decay = epochs, batch_size, lr, weight_decay
        self.schedule, self.patience, self.validation_fraction, self.monitor = schedule, patience, validation_fraction, monitor
        self.clip_norm, self.device, self.dtype, self.seed = clip_norm, device, dtype, seed
        self.run_dir, self.resume, self.progress = run_dir, resume, progress
        if not 0.0 <= validation_fraction < 1.0:
            raise InputError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        check_kind_options(self)

    # subclass hooks ------------------------------------------------------------------------
    def _loss(self, task: str):
        return partial(task_loss, task)

    def _metrics(self):
        return None

    def _encode(self, y: np.ndarray) -> tuple[np.ndarray, str, int]:
        raise NotImplementedError

    def _monitor_of(self, task: str) -> str:
        """The validation score of early stopping and of the best epoch when ``monitor`` is None."""
        return self._default_monitor

    def _split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        train, val = random_split(len(y), (1 - self.validation_fraction, self.validation_fraction), seed=self.seed)
        return train, val

    # public --------------------------------------------------------------------------------
    def fit(self, graphs: Sequence[Any], y: Any, *, val: tuple[Sequence[Any], Any] | None = None):
        """Train on ``graphs`` with targets ``y``.

        Parameters
        ----------
        graphs : list of networkx.Graph
            Node ``x`` of one width (and edge ``x`` of one width for edge-aware kinds).
        y : array-like
            Classifier: labels ``(n,)`` (any hashable values) or a 0/1 indicator ``(n, K)``
            (multilabel). Regressor: targets ``(n,)`` or ``(n, T)``.
        val : (graphs, y), optional
            A validation set scored every epoch (early stopping on ``monitor``); otherwise
            ``validation_fraction`` of the training graphs is held out (none by default).

        Returns
        -------
        self
        """
        check_kind_options(self)  # again: set_params (a grid search) changes settings after __init__
        in_dim, edge_dim = feature_widths(graphs)
        y = np.asarray(y)
        if len(y) != len(graphs):
            raise InputError(f"got {len(graphs)} graphs but {len(y)} targets")
        held_out = val is None and self.validation_fraction > 0
        train_idx, val_idx = self._split(y) if held_out else (np.arange(len(y)), None)
        # What the encoding learns (the regressor's target mean and scale, the classes) comes from the
        # training part alone: the held-out part must not shape the targets it is scored on.
        _, task, n_out = self._encode(y[train_idx])
        data = graphs_to_data(graphs, self._encode_more(y), dtype=self.dtype, edge_dim=edge_dim)
        if val is not None:
            v_in, v_edge = feature_widths(val[0])
            if v_in != in_dim or v_edge not in (None, edge_dim):
                raise InputError(f"validation graphs have widths {(v_in, v_edge)}, training graphs {(in_dim, edge_dim)}")
            val_data = graphs_to_data(val[0], self._encode_more(np.asarray(val[1])), dtype=self.dtype, edge_dim=edge_dim)
        elif held_out:
            data, val_data = [data[i] for i in train_idx], [data[i] for i in val_idx]
        else:
            val_data = None
        self.n_features_in_, self.edge_dim_, self.task_ = in_dim, edge_dim, task
        self.relations_ = None
        if self.kind in RELATIONAL_KINDS:
            if edge_dim is None:
                raise InputError(f"kind {self.kind!r} needs edge features (one relation per distinct edge feature row)")
            edges = torch.cat([d.edge_attr for d in data])
            self.relations_ = relation_table(edges, min_count=self.min_relation_count,
                                             edge_dir=torch.cat([d.edge_dir for d in data])).tolist()
        self.model_ = self._new_model(n_out)
        self.trainer_ = self._new_trainer(self.monitor or (self._monitor_of(task) if val_data is not None else "loss"))
        self.trainer_.fit(self.model_, data, val_data, step=supervised_step(graph_inputs, self._loss(task)),
                          task=task if task in TASKS else None, metrics=self._metrics(),
                          data_key=graph_data_digest(data, val_data))
        self.history_ = self.trainer_.history_
        return self

    def _new_model(self, n_outputs: int) -> GraphModel:
        return GraphModel(
            kind=self.kind, in_dim=self.n_features_in_, edge_dim=self.edge_dim_, n_outputs=n_outputs, task=self.task_,
            hidden=self.hidden, layers=self.layers, readout=self.readout, dropout=self.dropout, seed=self.seed,
            dtype=self.dtype, relations=None if getattr(self, "relations_", None) is None else torch.tensor(self.relations_),
            composition=self.composition, num_bases=self.num_bases,
        )

    def _new_trainer(self, monitor: str) -> Trainer:
        return Trainer(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            schedule=self.schedule, patience=self.patience, monitor=monitor, clip_norm=self.clip_norm,
            device=self.device, dtype=self.dtype, seed=self.seed, run_dir=self.run_dir, resume=self.resume,
            progress=self.progress,
        )

    def _outputs(self, graphs: Sequence[Any]) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(graphs, y) first")
        in_dim, edge_dim = feature_widths(graphs)
        expected = self.model_.edge_dim
        if in_dim != self.n_features_in_ or (expected is not None and edge_dim not in (None, expected)):
            raise InputError(
                f"graphs have node/edge feature widths {(in_dim, edge_dim)}, the model was fitted on "
                f"{(self.n_features_in_, self.edge_dim_)}"
            )
        data = graphs_to_data(graphs, dtype=self.dtype, edge_dim=expected)
        return self.trainer_.predict(self.model_, data, _forward)


class GNNClassifier(_GNNEstimator):
    """Graph classifier (multiclass or multilabel) on a :class:`~learners.models.GraphModel`.

    Parameters
    ----------
    kind, hidden, layers, readout, dropout
        Model (see :class:`learners.models.GraphModel`). A kind refuses a value other than the
        default of a setting it does not read (``min_relation_count``, ``composition``,
        ``num_bases`` below; ``readout`` on ``attentivefp``): :func:`learners.models.check_kind_options`.
    min_relation_count : int
        ``rgcn`` / ``compgcn``: an edge feature row (a linkage type) is a relation of its own when
        it occurs on at least this many training edges, each linkage counted once (not its reverse
        copy); rarer ones share one "other" relation.
    composition : {"mult", "sub", "corr"}
        ``compgcn``: composition of node features with relation embeddings.
    num_bases : int or None
        ``rgcn``: bases of the relation weights (None: a full matrix per relation).
    epochs, batch_size, lr, weight_decay, schedule, patience, monitor, clip_norm, device, dtype, seed, run_dir, resume, progress
        Training (see :class:`learners.trainer.Trainer`); ``monitor`` defaults to
        ``"balanced_accuracy"`` (multiclass) or ``"macro_f1"`` (multilabel, which has no balanced
        accuracy) when there is a validation set.
    validation_fraction : float
        Held out of ``fit``'s graphs (stratified) for early stopping when no ``val`` is given.

    Attributes
    ----------
    classes_ : numpy.ndarray
        Class labels (multiclass) or column indices (multilabel).
    model_, trainer_, history_
        The trained model, its trainer, the per-epoch log.

    Example
    -------
    >>> from reprs.glycans import glycan_graph
    >>> graphs = [glycan_graph(s) for s in ["Gal(b1-4)GlcNAc", "Man(a1-3)Man", "Fuc(a1-2)Gal"]]
    >>> clf = GNNClassifier(kind="gine", epochs=5).fit(graphs, ["a", "b", "a"])
    >>> clf.predict(graphs).shape
    (3,)
    """

    _default_monitor = "balanced_accuracy"

    def _monitor_of(self, task: str) -> str:
        # learners.metrics.evaluate scores multilabel outputs without a balanced accuracy
        return "macro_f1" if task == "multilabel" else self._default_monitor

    def _encode(self, y: np.ndarray) -> tuple[np.ndarray, str, int]:
        if y.ndim == 2:
            if not np.isin(y, (0, 1)).all():
                raise InputError("a 2-D y must be a 0/1 multilabel indicator matrix")
            self.classes_ = np.arange(y.shape[1])
            return self._encode_more(y), "multilabel", y.shape[1]
        if y.ndim != 1:
            raise InputError(f"y must be 1-D labels or a 2-D indicator, got shape {y.shape}")
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise InputError(f"need at least 2 classes to classify, got {self.classes_.tolist()}")
        return codes.astype(np.int64), "multiclass", len(self.classes_)

    def _encode_more(self, y: np.ndarray) -> np.ndarray:
        if y.ndim == 2:
            # 0/1 are exact in either type; in the model's dtype, as the trainer refuses float32 targets for a
            # float64 model (float32 for the others, so that their data digests, the resume keys, stay as they were)
            return y.astype(np.float64 if self.dtype == torch.float64 else np.float32)
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise InputError(f"validation labels not seen in training: {np.unique(y[unknown]).tolist()[:10]}")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if y.ndim == 1:
            return stratified_split(y, (1 - self.validation_fraction, self.validation_fraction), seed=self.seed)
        return super()._split(y)

    def predict_proba(self, graphs: Sequence[Any]) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` (softmax), or per-label probabilities (sigmoid)."""
        return outputs_to_proba(self._outputs(graphs), self.task_)

    def predict(self, graphs: Sequence[Any]) -> np.ndarray:
        """Most probable class per graph, or the 0/1 indicator of labels with probability > 0.5."""
        proba = self.predict_proba(graphs)
        if self.task_ == "multilabel":
            return (proba > 0.5).astype(int)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, graphs: Sequence[Any], y: Any) -> float:
        """Accuracy (exact-match for multilabel), as scikit-learn's classifiers."""
        return accuracy(np.asarray(y), self.predict(graphs))


def _check_targets(y: np.ndarray) -> None:
    if y.ndim not in (1, 2) or not np.issubdtype(y.dtype, np.number) or not np.isfinite(y).all():
        raise InputError("y must be a finite numeric array of shape (n,) or (n, T)")


class GNNRegressor(_GNNEstimator):
    """Graph regressor on a :class:`~learners.models.GraphModel`.

    Targets are standardised (mean 0, unit variance per column, over the training graphs only: not
    over the part ``validation_fraction`` holds out) for training and mapped back on prediction. Parameters as :class:`GNNClassifier`; ``monitor`` defaults to ``"mae"`` when
    there is a validation set (MAE on standardised targets).
    """

    _default_monitor = "mae"

    def _encode(self, y: np.ndarray) -> tuple[np.ndarray, str, int]:
        _check_targets(y)
        self.y_ndim_ = y.ndim
        y2 = y.reshape(len(y), -1).astype(np.float64)
        self.y_mean_, self.y_std_ = y2.mean(axis=0), y2.std(axis=0)
        self.y_std_[self.y_std_ == 0] = 1.0
        return self._encode_more(y), "regression", y2.shape[1]

    def _encode_more(self, y: np.ndarray) -> np.ndarray:
        _check_targets(y)
        # float64: the trainer casts them to the model's dtype; a float32 copy here would round a float64 run's targets
        return ((y.reshape(len(y), -1) - self.y_mean_) / self.y_std_).astype(np.float64)

    def predict(self, graphs: Sequence[Any]) -> np.ndarray:
        """Predicted targets, shape ``(n,)`` or ``(n, T)`` as ``y`` in ``fit``."""
        out = self._outputs(graphs) * self.y_std_ + self.y_mean_
        return out[:, 0] if self.y_ndim_ == 1 else out

    def score(self, graphs: Sequence[Any], y: Any) -> float:
        """Coefficient of determination R^2, as scikit-learn's regressors."""
        return r2(np.asarray(y, dtype=float), self.predict(graphs))


class GNNMultiTaskClassifier(_GNNEstimator):
    """Several multiclass tasks on the same graphs: a shared encoder and one head per task.

    GlycanML's multi-task testbed predicts all eight taxonomy levels of a glycan at once
    (arXiv:2405.16206, section 5); the loss is :func:`learners.models.multitask_loss`, the tasks'
    cross-entropies scaled by their chance level and balanced by a temperature softmax.

    Parameters
    ----------
    temperature : float or None
        Of the loss balancing (None: equal weights on the chance-scaled losses).
    other parameters
        As :class:`GNNClassifier`; ``monitor`` defaults to ``"accuracy"`` (mean over tasks) when
        there is a validation set. ``kind="attentivefp"`` is not available (its head is built in).

    Attributes
    ----------
    classes_ : list of numpy.ndarray
        Classes of each task (column of ``y``).
    task_names_ : list of str
        The columns of ``y`` when it is a pandas DataFrame, else ``"0"``, ``"1"``, ...

    Example
    -------
    >>> from reprs.glycans import glycan_graph
    >>> graphs = [glycan_graph(s) for s in ["Gal(b1-4)GlcNAc", "Man(a1-3)Man", "Fuc(a1-2)Gal"]]
    >>> y = [["Eukarya", "Animalia"], ["Eukarya", "Fungi"], ["Bacteria", "Bacteria"]]
    >>> GNNMultiTaskClassifier(kind="gin", epochs=5).fit(graphs, y).predict(graphs).shape
    (3, 2)
    """

    _default_monitor = "accuracy"

    def __init__(self, *, temperature: float | None = 2.0, **params: Any) -> None:
        super().__init__(**params)
        self.temperature = temperature
        if temperature is not None and temperature <= 0:
            raise InputError(f"temperature must be > 0 or None, got {temperature}")

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return sorted({*_GNNEstimator._get_param_names(), "temperature"})

    def fit(self, graphs: Sequence[Any], y: Any, *, val: tuple[Sequence[Any], Any] | None = None):
        """Train on ``graphs`` with labels ``y`` of shape ``(n, n_tasks)`` (a DataFrame names the tasks).

        Parameters and return as :meth:`GNNClassifier.fit`; a validation label of a class that
        training never saw is left out of that task's loss. Validation labels in a DataFrame are
        matched to the tasks by column name (as in :meth:`score`), others by position.
        """
        columns = getattr(y, "columns", None)
        width = np.shape(y)[1] if np.ndim(y) == 2 else 0
        self.task_names_ = [str(c) for c in columns] if columns is not None else [str(k) for k in range(width)]
        if val is not None:
            val = (val[0], self._task_columns(val[1]))
        return super().fit(graphs, y, val=val)

    def _task_columns(self, y: Any) -> np.ndarray:
        """``y`` as an array with the tasks' columns in the fitted order: a DataFrame's columns are matched
        by name (taken by position, a reordered table paired one task's labels with another's classes)."""
        columns = getattr(y, "columns", None)
        if columns is None:
            return np.asarray(y)
        names = [str(c) for c in columns]
        if sorted(names) == sorted(self.task_names_) and len(set(names)) == len(names):
            return np.asarray(y)[:, [names.index(name) for name in self.task_names_]]
        if self.task_names_ != [str(k) for k in range(len(self.task_names_))]:
            raise InputError(f"the label columns {names} are not the tasks {self.task_names_} the classifier was "
                             "trained on")
        return np.asarray(y)  # trained on an unnamed array: columns by position

    def _encode(self, y: np.ndarray) -> tuple[np.ndarray, str, tuple[int, ...]]:
        if y.ndim != 2 or y.shape[1] < 1:
            raise InputError(f"y must be a 2-D array of labels, one column per task, got shape {y.shape}")
        self.classes_ = [np.unique(y[:, k]) for k in range(y.shape[1])]
        single = [k for k, c in enumerate(self.classes_) if len(c) < 2]
        if single:
            raise InputError(f"task column(s) {single} have a single class ({self.classes_[single[0]].tolist()}); "
                             "every task needs at least 2 classes in training")
        return self._encode_more(y), "multitask", tuple(len(c) for c in self.classes_)

    def _encode_more(self, y: np.ndarray) -> np.ndarray:
        if y.ndim != 2 or y.shape[1] != len(self.classes_):
            raise InputError(f"y must have {len(self.classes_)} task columns, got shape {y.shape}")
        codes = np.full(y.shape, -1, dtype=np.int64)  # -1: a class never seen in training
        for k, classes in enumerate(self.classes_):
            found = np.isin(y[:, k], classes)
            codes[found, k] = np.searchsorted(classes, y[found, k])
        return codes

    def _split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return random_split(len(y), (1 - self.validation_fraction, self.validation_fraction), seed=self.seed)

    def _loss(self, task: str):
        from learners.models import multitask_loss

        sizes = tuple(len(c) for c in self.classes_)
        return lambda outputs, target: multitask_loss(outputs, target, sizes, temperature=self.temperature)

    def _metrics(self):
        sizes = np.cumsum([0, *(len(c) for c in self.classes_)])

        def metrics(y: np.ndarray, outputs: np.ndarray) -> dict:
            accs, f1s = [], []
            for k in range(len(self.classes_)):
                pred = outputs[:, sizes[k]:sizes[k + 1]].argmax(axis=1)
                accs.append(float(np.mean(pred == y[:, k])))
                seen = y[:, k] >= 0
                f1s.append(macro_f1(y[seen, k], pred[seen]) if seen.any() else 0.0)
            return {"accuracy": float(np.mean(accs)), "macro_f1": float(np.mean(f1s)),
                    **{f"accuracy_{k}": a for k, a in enumerate(accs)}}

        return metrics

    def predict_proba(self, graphs: Sequence[Any]) -> list[np.ndarray]:
        """Per task, class probabilities ``(n, n_classes_k)`` (softmax over that task's head)."""
        out = self._outputs(graphs)
        sizes = np.cumsum([0, *(len(c) for c in self.classes_)])
        return [outputs_to_proba(out[:, sizes[k]:sizes[k + 1]], "multiclass") for k in range(len(self.classes_))]

    def predict(self, graphs: Sequence[Any]) -> np.ndarray:
        """Most probable class of each task, shape ``(n, n_tasks)`` (of object dtype when the tasks' labels
        are of different types, so that an integer label is not turned into a string)."""
        columns = [c[p.argmax(axis=1)] for c, p in zip(self.classes_, self.predict_proba(graphs))]
        if len({c.dtype.kind for c in columns}) > 1:
            columns = [c.astype(object) for c in columns]
        return np.stack(columns, axis=1)

    def score(self, graphs: Sequence[Any], y: Any) -> float:
        """Accuracy averaged over tasks (the columns of a DataFrame ``y`` matched to the tasks by name)."""
        y = self._task_columns(y)
        # Column by column in its own dtype: an object column of numbers is no target type for scikit-learn.
        return float(np.mean([accuracy(np.array(y[:, k].tolist()), np.array(p.tolist()))
                              for k, p in enumerate(self.predict(graphs).T)]))


#: Fitted attributes saved besides the weights, as plain lists and numbers (``weights_only`` loading).
_FITTED = {"GNNClassifier": ("n_features_in_", "edge_dim_", "task_", "history_", "relations_", "classes_"),
           "GNNRegressor": ("n_features_in_", "edge_dim_", "task_", "history_", "relations_", "y_ndim_", "y_mean_",
                            "y_std_"),
           "GNNMultiTaskClassifier": ("n_features_in_", "edge_dim_", "task_", "history_", "relations_", "classes_",
                                      "task_names_"),
           "BindingRegressor": ("n_features_in_", "edge_dim_", "protein_dim_", "relations_", "y_mean_", "y_std_")}
#: Fitted attributes held as arrays (saved as lists); ``classes_`` of a multi-task model is a list of arrays.
_ARRAYS = ("classes_", "y_mean_", "y_std_")


def _plain(value: Any) -> Any:
    """A fitted attribute as plain lists and numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return [v.tolist() for v in value]
    return value


def save_estimator(estimator: Any, path: str | os.PathLike) -> Path:
    """Write a fitted estimator as a format tag, its hyperparameters, fitted attributes and the model's
    state dict (plain data: :func:`load_estimator` reads it with ``weights_only=True``, no pickled code).

    Saves :class:`GNNClassifier`, :class:`GNNRegressor`, :class:`GNNMultiTaskClassifier` and
    :class:`learners.binding.BindingRegressor` (its weights and widths, not its training graphs).

    Raises
    ------
    NotFittedError
        The estimator has not been fitted.
    """
    name = type(estimator).__name__
    if name not in _FITTED:
        raise InputError(f"cannot save a {name}; known: {sorted(_FITTED)}")
    if not hasattr(estimator, "model_"):
        raise NotFittedError(f"this {name} is not fitted yet; nothing to save")
    params = estimator.get_params()
    params.update(dtype=str(params["dtype"]).removeprefix("torch."), device=str(params["device"]))
    fitted = {key: _plain(getattr(estimator, key)) for key in _FITTED[name]}
    # A multi-task model is rebuilt from its head sizes (a list), the binding model from its fitted
    # widths alone, the others from their output width.
    if name == "GNNMultiTaskClassifier":
        n_outputs = list(estimator.model_.head_sizes)
    elif name == "BindingRegressor":
        n_outputs = None
    else:
        n_outputs = estimator.model_.n_outputs
    payload = {"format": _FORMAT, "class": name, "params": params, "fitted": fitted,
               "n_outputs": n_outputs, "state_dict": estimator.model_.state_dict()}
    _atomic_torch_save(payload, Path(path))
    return Path(path)


def load_estimator(path: str | os.PathLike, *, device: Any = None) -> Any:
    """Read a file of :func:`save_estimator` (``weights_only`` loading: no code runs from the file).

    Parameters
    ----------
    device : {"cpu", "cuda", "auto"} or torch.device, optional
        Where the model predicts (its ``device`` parameter); default the one it was trained on.
        A model trained on a GPU loads on a machine without one with ``device="cpu"``.

    Raises
    ------
    InputError
        A missing file, or one not written by :func:`save_estimator` (such as the pickled
        estimators of older matrep versions: retrain those runs, or a trainer checkpoint), or
        one of an estimator class this matrep does not know; a saved or given device that is
        not available here.

    Warns
    -----
    UserWarning
        A file saved with a model setting its kind does not read (``num_bases`` on a ``gine``,
        :func:`learners.models.unread_settings`; estimators accepted them before they were
        refused): the setting had no effect on the saved model, so it is dropped, by name.
    """
    from sims.potentials import read_model_file

    try:
        payload = read_model_file(path, _FORMAT, what="estimator", writer="save_estimator")
    except InputError as err:
        if not Path(path).is_file():
            raise
        raise InputError(f"{err}; a run trained by an older matrep stored a pickle, which is not loaded: "
                         "train it again") from None
    from learners.binding import BindingRegressor

    classes = {"GNNClassifier": GNNClassifier, "GNNRegressor": GNNRegressor,
               "GNNMultiTaskClassifier": GNNMultiTaskClassifier, "BindingRegressor": BindingRegressor}
    if payload.get("class") not in classes:
        raise InputError(f"{str(path)!r} holds a {payload.get('class')!r}, which load_estimator does not read; "
                         f"it reads {', '.join(classes)}")
    cls = classes[payload["class"]]
    params = dict(payload["params"])
    params["dtype"] = getattr(torch, params["dtype"])
    # Saved before such settings were refused (s12): the kind never read them, so the weights are
    # valid without them; dropped (their defaults take the place) so the estimator can be built.
    unread = unread_settings(cls, params)
    if unread:
        warnings.warn(f"{str(path)!r}: {payload['class']}(kind={params.get('kind')!r}) was saved with "
                      f"{', '.join(f'{name}={params[name]!r}' for name in unread)}, which this kind does not "
                      "read (no effect on the model); dropped", UserWarning, stacklevel=2)
        for name in unread:
            del params[name]
    if device is not None:
        params["device"] = device
    estimator = cls(**params)
    for key, value in payload["fitted"].items():
        if key in _ARRAYS and isinstance(value, list):  # the binding model's y_mean_ is a number
            value = [np.asarray(v) for v in value] if cls is GNNMultiTaskClassifier else np.asarray(value)
        setattr(estimator, key, value)
    n_outputs = payload["n_outputs"]
    estimator.model_ = estimator._new_model(tuple(n_outputs) if isinstance(n_outputs, list) else n_outputs)
    try:
        estimator.model_.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        # e.g. an rgcn / compgcn saved before these kinds had inverse relations (weights of other shapes)
        raise InputError(f"{str(path)!r} holds weights of another architecture than this matrep builds for "
                         f"{payload['class']}(kind={params.get('kind')!r}); train the model again ({err})") from None
    estimator.trainer_ = estimator._new_trainer("loss")
    # The model is built on the CPU; the trainer moves each batch to its device, so the model goes there too
    # (fit does this itself; a loaded CUDA estimator met CUDA batches with CPU weights).
    estimator.model_.to(estimator.trainer_.device)
    return estimator
