"""Protein-glycan binding regression: a GNN glycan encoder met by a protein encoder, per pair.

GlycanML's interaction task (arXiv:2405.16206) predicts a lectin's binding to a glycan from both.
No protein language model weights are available offline, so the protein enters through a feature
vector per protein (:func:`reprs.glycan_tasks.sequence_composition`: amino-acid and dipeptide
composition) and a two-layer MLP; the glycan through a :class:`learners.models.GraphModel` whose
head outputs an embedding. The prediction is an MLP of the two embeddings and their product.

Items of the trainer are pair indices; each batch encodes only the distinct glycans and proteins
its pairs name, so an epoch costs one GNN pass per pair batch, not per pair.

Early stopping: validation pairs (given, or whole proteins or whole glycans held out of the
training pairs, as the test split holds out whole lectins) are scored every epoch by the
:class:`learners.trainer.Trainer`; training stops after ``patience`` epochs without improvement
and the weights of the best epoch are restored.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from learners.data import data_digest, feature_widths, graph_data_digest, graphs_to_data
from learners.errors import InputError, NotFittedError
from learners.models import RELATIONAL_KINDS, GraphModel, check_kind_options, graph_inputs, relation_table
from learners.trainer import Trainer
from sims.integrators import make_generator, seeded_init

__all__ = ["PairModel", "BindingRegressor"]


class PairModel(nn.Module):
    """``f(glycan, protein) = MLP([g, p, g * p])`` with ``g`` a GNN embedding and ``p`` an MLP embedding.

    Parameters
    ----------
    encoder : GraphModel
        Glycan encoder; its ``n_outputs`` is the embedding width.
    protein_dim : int
        Width of the protein feature vectors.
    """

    def __init__(self, encoder: GraphModel, protein_dim: int) -> None:
        super().__init__()
        width = encoder.n_outputs
        self.encoder = encoder
        self.protein = nn.Sequential(nn.Linear(protein_dim, width), nn.ReLU(), nn.Linear(width, width))
        self.out = nn.Sequential(nn.Linear(3 * width, width), nn.ReLU(), nn.Linear(width, 1))

    def forward(self, glycans: Any, proteins: torch.Tensor, glycan_index: torch.Tensor,
                protein_index: torch.Tensor) -> torch.Tensor:
        """Predictions ``(n_pairs,)`` for pairs ``(glycans[glycan_index], proteins[protein_index])``."""
        g = self.encoder(*graph_inputs(glycans))[glycan_index]
        p = self.protein(proteins)[protein_index]
        return self.out(torch.cat([g, p, g * p], dim=1))[:, 0]


def _collate(data: list, proteins: torch.Tensor, dtype: torch.dtype, items: Sequence[tuple[int, int, float]]) -> dict:
    """A batch of pairs: the distinct glycans and proteins it names, and each pair's index into them."""
    from torch_geometric.data import Batch

    pairs = np.asarray(items, dtype=float)
    g, p = pairs[:, 0].astype(int), pairs[:, 1].astype(int)
    g_unique, g_index = np.unique(g, return_inverse=True)
    p_unique, p_index = np.unique(p, return_inverse=True)
    return {"glycans": Batch.from_data_list([data[i] for i in g_unique]),
            "proteins": proteins[p_unique], "glycan_index": torch.as_tensor(g_index),
            "protein_index": torch.as_tensor(p_index), "y": torch.as_tensor(pairs[:, 2], dtype=dtype)}


#: validation_groups -> the column of ``pairs`` whose values are held out whole.
_GROUPS = {"protein": 1, "glycan": 0}
#: Validation scores that ``monitor`` may name.
MONITORS = ("loss", "spearman", "mae", "rmse", "r2")


def _pair_metrics(y: np.ndarray, out: np.ndarray) -> dict:
    """Validation scores of standardised binding values: :func:`learners.metrics.evaluate`'s and Spearman's rho."""
    from scipy.stats import spearmanr

    from learners.metrics import evaluate

    scores = evaluate("regression", y, out)
    # Constant predictions (an untrained or collapsed model) rank nothing: rho is undefined there
    # and scored 0, no better than chance, rather than NaN (which the trainer reads as divergence).
    varies = len(y) > 1 and np.ptp(out) > 0 and np.ptp(y) > 0
    scores["spearman"] = float(spearmanr(y, out).statistic) if varies else 0.0
    return scores


def _check_pairs(pairs: np.ndarray, n_graphs: int, n_proteins: int) -> None:
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise InputError(f"pairs must be (n, 2) (glycan index, protein row), got shape {pairs.shape}")
    if not np.issubdtype(pairs.dtype, np.integer):  # int() would truncate 1.9 to glycan 1
        numeric = np.issubdtype(pairs.dtype, np.number) and not np.issubdtype(pairs.dtype, np.complexfloating)
        whole = np.isfinite(pairs) & (pairs == np.round(pairs)) if numeric else np.zeros(pairs.shape, dtype=bool)
        if not whole.all():
            row = int(np.flatnonzero(~whole.all(1))[0])
            raise InputError(f"pairs must hold integer indices (glycan index, protein row); row {row} is "
                             f"{pairs[row].tolist()!r} (dtype {pairs.dtype})")
    if len(pairs) and (pairs[:, 0].min() < 0 or pairs[:, 0].max() >= n_graphs or pairs[:, 1].min() < 0
                       or pairs[:, 1].max() >= n_proteins):
        raise InputError("a pair index is out of range of the graphs or the protein features")


class BindingRegressor(BaseEstimator):
    """Fit and predict binding values of (glycan, protein) pairs; targets standardised in training.

    Saved and read back by :func:`learners.estimators.save_estimator` / ``load_estimator``; a
    loaded model holds no training graphs, so :meth:`predict` is given the graphs and proteins.

    Parameters
    ----------
    kind, hidden, layers, dropout, min_relation_count, composition, num_bases
        Glycan encoder (:class:`learners.models.GraphModel`; ``hidden`` is also the embedding width).
        A kind refuses a value other than the default of a setting it does not read
        (:func:`learners.models.check_kind_options`).
    epochs, batch_size, lr, weight_decay, patience, device, dtype, seed, run_dir, resume, progress
        :class:`learners.trainer.Trainer` (``batch_size`` counts pairs; ``run_dir`` receives its
        checkpoints, from which ``resume=True`` continues; ``patience`` needs validation pairs).
    validation_fraction : float
        Share of the training proteins (or glycans, see ``validation_groups``) whose pairs are held
        out for early stopping when :meth:`fit` gets no ``val``; 0: none.
    validation_groups : {"protein", "glycan"}
        What the held-out share is drawn over: whole proteins (lectins; the split of the binding
        benchmark) or whole glycans. Drawn with :func:`learners.splits.group_split` and ``seed``.
    monitor : {"loss", "spearman", "mae", "rmse", "r2"}
        Validation score of early stopping and of the best epoch (``loss``: mean squared error of
        the standardised targets; the others on the same scale).

    Example
    -------
    >>> model = BindingRegressor(epochs=50, patience=5, validation_fraction=0.1)  # doctest: +SKIP
    >>> model.fit(graphs, protein_features, pairs, y).trainer_.best_epoch_  # doctest: +SKIP

    Attributes
    ----------
    model_, trainer_, history_
        The pair model, its trainer, the per-epoch log (``val_loss``, ``val_spearman``, ... with validation).
    validation_index_ : numpy.ndarray or None
        Rows of ``fit``'s ``pairs`` held out by ``validation_fraction`` (None otherwise).
    """

    def __init__(self, *, kind: str = "rgcn", hidden: int = 32, layers: int = 3, dropout: float = 0.0,
                 min_relation_count: int = 5, composition: str = "mult", num_bases: int | None = 8, epochs: int = 5, batch_size: int = 512, lr: float = 1e-3,
                 weight_decay: float = 1e-4, patience: int | None = None, validation_fraction: float = 0.0,
                 validation_groups: str = "protein", monitor: str = "loss", device: Any = "cpu",
                 dtype: torch.dtype = torch.float32, seed: int = 0, run_dir: str | None = None, resume: bool = False,
                 progress: bool = False) -> None:
        self.kind, self.hidden, self.layers, self.dropout = kind, hidden, layers, dropout
        self.min_relation_count, self.epochs, self.batch_size, self.lr = min_relation_count, epochs, batch_size, lr
        self.composition, self.num_bases = composition, num_bases
        self.weight_decay, self.device, self.dtype, self.seed = weight_decay, device, dtype, seed
        self.run_dir, self.resume, self.progress = run_dir, resume, progress
        self.patience, self.validation_fraction = patience, validation_fraction
        self.validation_groups, self.monitor = validation_groups, monitor
        if not 0.0 <= validation_fraction < 1.0:
            raise InputError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        if validation_groups not in _GROUPS:
            raise InputError(f"validation_groups must be one of {tuple(_GROUPS)}, got {validation_groups!r}")
        if monitor not in MONITORS:
            raise InputError(f"monitor must be one of {MONITORS}, got {monitor!r}")
        check_kind_options(self)

    @staticmethod
    def _step(model: PairModel, batch: dict):
        out = model(batch["glycans"], batch["proteins"], batch["glycan_index"], batch["protein_index"])
        return nn.functional.mse_loss(out, batch["y"]), out, batch["y"]

    def fit(self, graphs: Sequence[Any], proteins: np.ndarray, pairs: np.ndarray, y: np.ndarray, *,
            val: tuple[np.ndarray, np.ndarray] | None = None) -> BindingRegressor:
        """Train on ``pairs[:, 0]`` (index into ``graphs``), ``pairs[:, 1]`` (row of ``proteins``) -> ``y``.

        Parameters
        ----------
        val : (pairs, y), optional
            Validation pairs (indices into the same ``graphs`` and ``proteins``) scored every epoch
            for early stopping and the best epoch's weights; otherwise ``validation_fraction`` of
            the training pairs' proteins (or glycans) is held out, or none.

        Raises
        ------
        InputError
            Mismatched lengths, indices out of range, non-finite targets or features, ``patience``
            or a ``monitor`` other than ``"loss"`` without validation pairs, a held-out share that
            leaves no training or no validation pair.
        """
        check_kind_options(self)  # again: set_params (a grid search) changes settings after __init__
        pairs, y, proteins = np.asarray(pairs), np.asarray(y, dtype=float), np.asarray(proteins, dtype=float)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) != len(y) or len(y) == 0:
            raise InputError(f"pairs must be (n, 2) with n = len(y) > 0; got {pairs.shape} and {y.shape}")
        _check_pairs(pairs, len(graphs), len(proteins))
        if not (np.isfinite(y).all() and np.isfinite(proteins).all()):
            raise InputError("binding targets and protein features must be finite")
        self.validation_index_ = None
        pairs, y, val_pairs, val_y = self._validation(pairs, y, val, len(graphs), len(proteins))
        self.n_features_in_, self.edge_dim_ = feature_widths(graphs)
        self.data_ = graphs_to_data(graphs, dtype=self.dtype, edge_dim=self.edge_dim_)
        self.proteins_ = torch.as_tensor(proteins, dtype=self.dtype)
        self.protein_dim_ = proteins.shape[1]
        self.y_mean_, self.y_std_ = float(y.mean()), float(y.std()) or 1.0
        self.relations_ = None
        if self.kind in RELATIONAL_KINDS:
            used = np.unique(pairs[:, 0])
            self.relations_ = relation_table(torch.cat([self.data_[i].edge_attr for i in used]),
                                             min_count=self.min_relation_count,
                                             edge_dir=torch.cat([self.data_[i].edge_dir for i in used])).tolist()
        self.model_ = self._new_model()
        items = [(int(a), int(b), float(v)) for (a, b), v in zip(pairs, (y - self.y_mean_) / self.y_std_)]
        val_items = None if val_pairs is None else \
            [(int(a), int(b), float(v)) for (a, b), v in zip(val_pairs, (val_y - self.y_mean_) / self.y_std_)]
        self.trainer_ = self._new_trainer(self.monitor if val_items is not None else "loss")
        key = data_digest(graph_data_digest(self.data_), proteins, pairs, y,
                          *(() if val_pairs is None else (val_pairs, val_y)))
        self.trainer_.fit(self.model_, items, val_items, step=self._step, metrics=_pair_metrics,
                          collate=partial(_collate, self.data_, self.proteins_, self.dtype), data_key=key)
        self.history_ = self.trainer_.history_
        return self

    def _validation(self, pairs: np.ndarray, y: np.ndarray, val: tuple | None, n_graphs: int, n_proteins: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(training pairs, targets, validation pairs, targets): ``val`` as given, or a group split."""
        if val is not None:
            val_pairs, val_y = np.asarray(val[0]), np.asarray(val[1], dtype=float)
            if val_pairs.ndim != 2 or val_pairs.shape[1] != 2 or len(val_pairs) != len(val_y) or len(val_y) == 0:
                raise InputError(f"val must be (pairs (n, 2), y (n,)) with n > 0; got {val_pairs.shape} and {val_y.shape}")
            _check_pairs(val_pairs, n_graphs, n_proteins)
            if not np.isfinite(val_y).all():
                raise InputError("validation binding targets must be finite")
            return pairs, y, val_pairs, val_y
        if self.validation_fraction == 0:
            if self.patience is not None or self.monitor != "loss":
                raise InputError(f"patience={self.patience!r} / monitor={self.monitor!r} need validation pairs: give "
                                 "fit(..., val=(pairs, y)) or validation_fraction > 0")
            return pairs, y, None, None
        from learners.splits import group_split

        groups = pairs[:, _GROUPS[self.validation_groups]]
        train, held = group_split(groups, (1 - self.validation_fraction, self.validation_fraction), seed=self.seed)
        if len(train) == 0 or len(held) == 0:
            raise InputError(f"validation_fraction={self.validation_fraction} of {len(np.unique(groups))} "
                             f"{self.validation_groups}s leaves no training or no validation pair")
        self.validation_index_ = held
        return pairs[train], y[train], pairs[held], y[held]

    def _new_model(self, n_outputs: None = None) -> PairModel:
        """The untrained pair model of the fitted widths (``n_outputs``: unused, the output is one value)."""
        relations = None if self.relations_ is None else torch.tensor(self.relations_)
        encoder = GraphModel(kind=self.kind, in_dim=self.n_features_in_, edge_dim=self.edge_dim_, n_outputs=self.hidden,
                             task="regression", hidden=self.hidden, layers=self.layers, dropout=self.dropout,
                             relations=relations, composition=self.composition, num_bases=self.num_bases,
                             seed=self.seed, dtype=self.dtype)
        # The pair layers' own stream (seed, 1): seeded with the encoder's seed they drew the encoder's
        # numbers again (the protein layer's first weights a scaled copy of the glycan encoder's).
        with seeded_init(make_generator((self.seed, 1)).initial_seed()):
            return PairModel(encoder, self.protein_dim_).to(dtype=self.dtype)

    def _new_trainer(self, monitor: str = "loss") -> Trainer:
        return Trainer(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                       patience=self.patience, monitor=monitor, device=self.device, dtype=self.dtype, seed=self.seed,
                       run_dir=self.run_dir, resume=self.resume, progress=self.progress)

    def predict(self, pairs: np.ndarray, graphs: Sequence[Any] | None = None,
                proteins: np.ndarray | None = None) -> np.ndarray:
        """Binding values of ``pairs``: indices into ``graphs`` and rows of ``proteins``.

        Parameters
        ----------
        graphs, proteins : optional
            New glycans and protein features (both, or neither: then the pairs index the training
            ones, as in :meth:`fit`; a loaded model has none and needs both).

        Raises
        ------
        InputError
            Indices out of range, only one of ``graphs`` / ``proteins``, feature widths that differ
            from training, or no training data to index (a loaded model) without them.
        """
        if not hasattr(self, "model_"):
            raise NotFittedError("this BindingRegressor is not fitted yet; call fit first")
        if (graphs is None) != (proteins is None):
            raise InputError("give both graphs and proteins (new pairs' inputs), or neither (the training ones)")
        if graphs is None:
            if not hasattr(self, "data_"):
                raise InputError("this BindingRegressor was loaded from a file and holds no training graphs: "
                                 "call predict(pairs, graphs, proteins)")
            data, features = self.data_, self.proteins_
        else:
            in_dim, edge_dim = feature_widths(graphs)
            proteins = np.asarray(proteins, dtype=float)
            if in_dim != self.n_features_in_ or edge_dim not in (None, self.edge_dim_) \
                    or proteins.ndim != 2 or proteins.shape[1] != self.protein_dim_:
                raise InputError(f"inputs have node/edge/protein widths {(in_dim, edge_dim, proteins.shape[1:])}, the "
                                 f"model was fitted on {(self.n_features_in_, self.edge_dim_, self.protein_dim_)}")
            data = graphs_to_data(graphs, dtype=self.dtype, edge_dim=self.edge_dim_)
            features = torch.as_tensor(proteins, dtype=self.dtype)
        pairs = np.asarray(pairs)
        _check_pairs(pairs, len(data), len(features))
        items = [(int(a), int(b), 0.0) for a, b in pairs]
        out = self.trainer_.predict(self.model_, items, lambda m, b: self._step(m, b)[1],
                                    collate=partial(_collate, data, features, self.dtype))
        return out * self.y_std_ + self.y_mean_
