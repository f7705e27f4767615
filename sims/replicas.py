"""Systems made of non-interacting copies of one molecule (replicas, or walkers of a shared bias).

Biased-sampling methods (:mod:`sims.umbrella`, :mod:`sims.metadynamics`) run many copies of a
small system in one :class:`sims.MD` run: every copy is biased on its own CV and gives its own
samples. The copies must be whole, in order, and identical in masses.
"""

from __future__ import annotations

import numpy as np
import torch

from .cv import CollectiveVariable
from .errors import SimsInputError

__all__ = ["replica_masses", "replica_cv", "replica_frames"]


def replica_masses(atoms, atoms_per_replica: int | None) -> tuple[int, np.ndarray]:
    """``(atoms per replica, masses of one replica in amu)`` of ``atoms``, checked.

    Raises
    ------
    SimsInputError
        The atoms are not whole copies, or the copies differ in masses.
    """
    r = len(atoms) if atoms_per_replica is None else int(atoms_per_replica)
    if r < 1 or len(atoms) % r:
        raise SimsInputError(f"{len(atoms)} atoms are not whole replicas of {atoms_per_replica} atoms")
    masses = atoms.get_masses().reshape(-1, r)
    if not np.allclose(masses, masses[0]):
        raise SimsInputError("all replicas must have the same masses (same molecule in the same atom order)")
    return r, masses[0].copy()


def replica_cv(cv: CollectiveVariable, positions: torch.Tensor, atoms_per_replica: int | None,
               cell: torch.Tensor | None = None) -> torch.Tensor:
    """CV value of each replica, ``(R,)``, from the system's positions ``(N, 3)``."""
    r = atoms_per_replica or positions.shape[0]
    if positions.shape[0] % r:
        raise SimsInputError(f"{positions.shape[0]} atoms are not whole replicas of {r} atoms")
    return cv(positions.reshape(-1, r, 3), cell)


def replica_frames(positions: torch.Tensor, atoms_per_replica: int) -> torch.Tensor:
    """Recorded positions ``(T, N, 3)`` as frames of one replica, ``(R * T, r, 3)``, replica by replica
    (each replica's frames in time order, so consecutive samples are stretches of one trajectory)."""
    n_t = positions.shape[0]
    return positions.reshape(n_t, -1, atoms_per_replica, 3).transpose(0, 1).reshape(-1, atoms_per_replica, 3)
