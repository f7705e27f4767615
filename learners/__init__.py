"""learners: graph neural networks on matrep's graph objects, and the shared training loop.

- :class:`GraphModel`: GCN, GIN, GINE, GAT, NNConv (edge-conditioned MPNN) and AttentiveFP behind
  one constructor, for multiclass, multilabel and regression tasks.
- :class:`Trainer`: AdamW, schedules, early stopping, gradient clipping, seeded data order,
  atomic checkpoints with resume, per-epoch JSON log; model-agnostic (a ``step`` hook).
- :class:`GNNClassifier`, :class:`GNNRegressor`: scikit-learn-style estimators on lists of graphs.
- :mod:`learners.splits`, :mod:`learners.metrics`, :mod:`learners.attribution`.
"""

from __future__ import annotations

from learners.estimators import GNNClassifier, GNNRegressor
from learners.models import MODEL_KINDS, GraphModel
from learners.trainer import Trainer, supervised_step

__all__ = ["GraphModel", "MODEL_KINDS", "Trainer", "supervised_step", "GNNClassifier", "GNNRegressor"]
