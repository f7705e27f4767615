"""learners: graph neural networks on matrep's graph objects, and the shared training loop.

- :class:`GraphModel`: GCN, GIN, GINE, GAT, NNConv (edge-conditioned MPNN), AttentiveFP and the
  relational RGCN and CompGCN behind one constructor, for multiclass, multilabel and regression
  tasks, with one head or one head per task.
- :class:`Trainer`: AdamW, schedules, early stopping, gradient clipping, seeded data order,
  atomic checkpoints with resume, per-epoch JSON log; model-agnostic (a ``step`` hook).
- :class:`GNNClassifier`, :class:`GNNRegressor`, :class:`GNNMultiTaskClassifier`: scikit-learn-style
  estimators on lists of graphs.
- :class:`CGVAE`: generative backmapping of coarse-grained frames (:mod:`learners.backmap`, which also
  holds ``backmap``, the metrics and the nearest-frame baseline).
- :mod:`learners.splits`, :mod:`learners.metrics`, :mod:`learners.attribution`.
"""

from __future__ import annotations

from reprs.lazy import lazy_exports

# Loaded on first use (reprs.lazy): `import learners` and the matrep command stay cheap.
_LAZY = {
    "GraphModel": ("learners.models", "GraphModel"),
    "MODEL_KINDS": ("learners.models", "MODEL_KINDS"),
    "Trainer": ("learners.trainer", "Trainer"),
    "supervised_step": ("learners.trainer", "supervised_step"),
    "GNNClassifier": ("learners.estimators", "GNNClassifier"),
    "GNNRegressor": ("learners.estimators", "GNNRegressor"),
    "DiabaticPaiNN": ("learners.diabatic", "DiabaticPaiNN"),
    "CGVAE": ("learners.backmap.model", "CGVAE"),
    "GNNMultiTaskClassifier": ("learners.estimators", "GNNMultiTaskClassifier"),
}

__all__ = list(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
