"""Protein-glycan binding regression: a GNN glycan encoder met by a protein encoder, per pair.

GlycanML's interaction task (arXiv:2405.16206) predicts a lectin's binding to a glycan from both.
No protein language model weights are available offline, so the protein enters through a feature
vector per protein (:func:`reprs.glycan_tasks.sequence_composition`: amino-acid and dipeptide
composition) and a two-layer MLP; the glycan through a :class:`learners.models.GraphModel` whose
head outputs an embedding. The prediction is an MLP of the two embeddings and their product.

Items of the trainer are pair indices; each batch encodes only the distinct glycans and proteins
its pairs name, so an epoch costs one GNN pass per pair batch, not per pair.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from learners.data import feature_widths, graphs_to_data
from learners.errors import InputError, NotFittedError
from learners.models import RELATIONAL_KINDS, GraphModel, relation_table
from learners.trainer import Trainer

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
        g = self.encoder(glycans.x, glycans.edge_index, glycans.edge_attr, glycans.batch)[glycan_index]
        p = self.protein(proteins)[protein_index]
        return self.out(torch.cat([g, p, g * p], dim=1))[:, 0]


class BindingRegressor:
    """Fit and predict binding values of (glycan, protein) pairs; targets standardised in training.

    Parameters
    ----------
    kind, hidden, layers, dropout, min_relation_count
        Glycan encoder (:class:`learners.models.GraphModel`; ``hidden`` is also the embedding width).
    epochs, batch_size, lr, weight_decay, device, dtype, seed
        :class:`learners.trainer.Trainer` (``batch_size`` counts pairs).
    """

    def __init__(self, *, kind: str = "rgcn", hidden: int = 32, layers: int = 3, dropout: float = 0.0,
                 min_relation_count: int = 5, epochs: int = 5, batch_size: int = 512, lr: float = 1e-3,
                 weight_decay: float = 1e-4, device: Any = "cpu", dtype: torch.dtype = torch.float32,
                 seed: int = 0) -> None:
        self.kind, self.hidden, self.layers, self.dropout = kind, hidden, layers, dropout
        self.min_relation_count, self.epochs, self.batch_size, self.lr = min_relation_count, epochs, batch_size, lr
        self.weight_decay, self.device, self.dtype, self.seed = weight_decay, device, dtype, seed

    def _collate(self, items: Sequence[tuple[int, int, float]]) -> dict:
        from torch_geometric.data import Batch

        pairs = np.asarray(items, dtype=float)
        g, p = pairs[:, 0].astype(int), pairs[:, 1].astype(int)
        g_unique, g_index = np.unique(g, return_inverse=True)
        p_unique, p_index = np.unique(p, return_inverse=True)
        return {"glycans": Batch.from_data_list([self.data_[i] for i in g_unique]),
                "proteins": self.proteins_[p_unique], "glycan_index": torch.as_tensor(g_index),
                "protein_index": torch.as_tensor(p_index), "y": torch.as_tensor(pairs[:, 2], dtype=self.dtype)}

    @staticmethod
    def _step(model: PairModel, batch: dict):
        out = model(batch["glycans"], batch["proteins"], batch["glycan_index"], batch["protein_index"])
        return nn.functional.mse_loss(out, batch["y"]), out, batch["y"]

    def fit(self, graphs: Sequence[Any], proteins: np.ndarray, pairs: np.ndarray, y: np.ndarray) -> BindingRegressor:
        """Train on ``pairs[:, 0]`` (index into ``graphs``), ``pairs[:, 1]`` (row of ``proteins``) -> ``y``.

        Raises
        ------
        InputError
            Mismatched lengths, indices out of range, non-finite targets or features.
        """
        pairs, y, proteins = np.asarray(pairs), np.asarray(y, dtype=float), np.asarray(proteins, dtype=float)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) != len(y) or len(y) == 0:
            raise InputError(f"pairs must be (n, 2) with n = len(y) > 0; got {pairs.shape} and {y.shape}")
        if pairs[:, 0].min() < 0 or pairs[:, 0].max() >= len(graphs) or pairs[:, 1].min() < 0 \
                or pairs[:, 1].max() >= len(proteins):
            raise InputError("a pair index is out of range of the graphs or the protein features")
        if not (np.isfinite(y).all() and np.isfinite(proteins).all()):
            raise InputError("binding targets and protein features must be finite")
        in_dim, edge_dim = feature_widths(graphs)
        self.data_ = graphs_to_data(graphs, dtype=self.dtype, edge_dim=edge_dim)
        self.proteins_ = torch.as_tensor(proteins, dtype=self.dtype)
        self.y_mean_, self.y_std_ = float(y.mean()), float(y.std()) or 1.0
        relations = None
        if self.kind in RELATIONAL_KINDS:
            used = np.unique(pairs[:, 0])
            relations = relation_table(torch.cat([self.data_[i].edge_attr for i in used]), min_count=self.min_relation_count)
        encoder = GraphModel(kind=self.kind, in_dim=in_dim, edge_dim=edge_dim, n_outputs=self.hidden, task="regression",
                             hidden=self.hidden, layers=self.layers, dropout=self.dropout, relations=relations,
                             seed=self.seed, dtype=self.dtype)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(self.seed)
            self.model_ = PairModel(encoder, proteins.shape[1]).to(dtype=self.dtype)
        items = [(int(a), int(b), float(v)) for (a, b), v in zip(pairs, (y - self.y_mean_) / self.y_std_)]
        self.trainer_ = Trainer(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                                device=self.device, dtype=self.dtype, seed=self.seed)
        self.trainer_.fit(self.model_, items, None, step=self._step, collate=self._collate)
        return self

    def predict(self, pairs: np.ndarray) -> np.ndarray:
        """Binding values of ``pairs`` (same indexing as in :meth:`fit`)."""
        if not hasattr(self, "model_"):
            raise NotFittedError("this BindingRegressor is not fitted yet; call fit first")
        items = [(int(a), int(b), 0.0) for a, b in np.asarray(pairs)]
        out = self.trainer_.predict(self.model_, items, lambda m, b: self._step(m, b)[1], collate=self._collate)
        return out * self.y_std_ + self.y_mean_
