"""The non-generative baseline of backmapping: the nearest training frame, re-placed on the query's beads.

For a query CG frame, the training frame whose beads are closest after optimal superposition
(aligned bead RMSD, :func:`learners.backmap.metrics.aligned_rmsd`) is taken, its atoms moved by the
rotation and translation that superpose its beads on the query's, and each bead's atoms then
shifted together so that their weighted centre is the query's bead exactly (the same recentring
as the CGVAE decoder). It is a lookup table of the training data: as good as the training set
covers the query's CG geometry, and never diverse (one answer per query).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from learners.errors import InputError, NotFittedError
from reprs.cg_mapping import CGMapping

from .metrics import _rotation, aligned_rmsd

__all__ = ["NearestFrameBackmap"]


class NearestFrameBackmap:
    """Backmap by the nearest training frame in aligned CG RMSD.

    Parameters
    ----------
    mapping : reprs.cg_mapping.CGMapping
    chunk : int
        Query frames compared at once (memory: ``chunk x training frames`` 3x3 SVDs).

    Examples
    --------
    >>> from ase.build import molecule
    >>> from reprs.cg_mapping import heavy_atom_mapping
    >>> mol = molecule("CH3CH2OH")
    >>> nn = NearestFrameBackmap(heavy_atom_mapping(mol)).fit(mol.positions[None])
    >>> bool(np.allclose(nn.predict(nn.cg_[:1])[0], mol.positions))
    True
    """

    def __init__(self, mapping: CGMapping, *, chunk: int = 64) -> None:
        if not isinstance(mapping, CGMapping):
            raise InputError(f"mapping must be a reprs.cg_mapping.CGMapping, got {type(mapping).__name__}")
        self.mapping, self.chunk = mapping, int(chunk)

    def fit(self, positions: Any) -> NearestFrameBackmap:
        """Remember training frames ``(T, n_atoms, 3)`` Å and their beads."""
        x = np.asarray(positions, dtype=float)
        self.cg_ = self.mapping.bead_positions(x)
        self.positions_ = x
        return self

    def nearest(self, cg: Any) -> tuple[np.ndarray, np.ndarray]:
        """Index of the nearest training frame and its aligned bead RMSD (Å) for beads ``(M, n_beads, 3)`` Å."""
        if not hasattr(self, "cg_"):
            raise NotFittedError("call fit(training positions) before predict")
        q = np.asarray(cg, dtype=float)
        if q.ndim != 3 or q.shape[1:] != (self.mapping.n_beads, 3) or not len(q) or not np.isfinite(q).all():
            raise InputError(f"CG frames must be finite, of shape (frames >= 1, {self.mapping.n_beads}, 3); got {q.shape}")
        index, dist = [], []
        for start in range(0, len(q), self.chunk):
            r = aligned_rmsd(self.cg_[None], q[start:start + self.chunk, None])
            index.append(r.argmin(1))
            dist.append(r.min(1))
        return np.concatenate(index), np.concatenate(dist)

    def predict(self, cg: Any) -> np.ndarray:
        """FG positions ``(M, n_atoms, 3)`` Å for bead positions ``cg`` ``(M, n_beads, 3)`` Å."""
        q = np.asarray(cg, dtype=float)
        index, _ = self.nearest(q)
        train_cg, train_x = self.cg_[index], self.positions_[index]
        c_train, c_query = train_cg.mean(1, keepdims=True), q.mean(1, keepdims=True)
        rot = _rotation(train_cg - c_train, q - c_query)
        x = (train_x - c_train) @ rot + c_query
        moved = (self.mapping.matrix() @ x)
        return x + (q - moved)[:, self.mapping.assignment]
