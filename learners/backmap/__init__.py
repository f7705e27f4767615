"""Generative backmapping: coarse-grained beads back to all-atom conformations.

- :mod:`learners.backmap.model`: :class:`~learners.backmap.model.CGVAE` (Wang et al., ICML 2022,
  arXiv:2201.12176), its training through :class:`learners.Trainer`, :func:`~learners.backmap.model.backmap`,
  saving and loading, and ``matrep backmap``.
- :mod:`learners.backmap.metrics`: aligned RMSD, bond-graph validity and difference ratio, sample
  diversity, Ramachandran plots.
- :mod:`learners.backmap.baseline`: the nearest training frame re-placed on the query's beads.
"""

from __future__ import annotations

from reprs.lazy import lazy_exports

_LAZY = {
    "CGVAE": ("learners.backmap.model", "CGVAE"),
    "backmap": ("learners.backmap.model", "backmap"),
    "fit_cgvae": ("learners.backmap.model", "fit_cgvae"),
    "save_cgvae": ("learners.backmap.model", "save_cgvae"),
    "load_cgvae": ("learners.backmap.model", "load_cgvae"),
    "NearestFrameBackmap": ("learners.backmap.baseline", "NearestFrameBackmap"),
    "backmap_scores": ("learners.backmap.metrics", "backmap_scores"),
}

__all__ = list(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
