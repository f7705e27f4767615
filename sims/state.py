"""The MD state as torch tensors, converted from and to ``ase.Atoms`` at the edge.

Units are ASE's throughout (Å, eV, amu, and ASE's time unit ``Å sqrt(amu/eV)`` for velocities, so
that ``atoms.get_velocities()`` is used unchanged); time steps are given in fs and converted once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from ase import Atoms

from .errors import MissingCellError, SimsInputError

__all__ = ["State", "validate_atoms", "as_atoms"]


def as_atoms(obj) -> Atoms:
    """Return ``obj`` as ``ase.Atoms`` (pymatgen ``Structure``/``Molecule`` converted at the edge)."""
    if isinstance(obj, Atoms):
        return obj
    if type(obj).__module__.startswith("pymatgen"):
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_atoms(obj)
    raise SimsInputError(f"expected ase.Atoms or a pymatgen Structure/Molecule, got {type(obj).__name__}")


def validate_atoms(atoms: Atoms, *, require_masses: bool = True, min_distance: float | None = None) -> None:
    """Raise a clear error for configurations no simulation can start from.

    Parameters
    ----------
    atoms : ase.Atoms
        The configuration.
    require_masses : bool
        Refuse zero or negative masses (needed by integrators, not by neighbour lists).
    min_distance : float, optional
        Refuse pairs of atoms closer than this (Å): overlapping atoms.

    Raises
    ------
    SimsInputError
        NaN/inf positions, bad masses, overlapping atoms.
    MissingCellError
        ``pbc`` set along a direction whose cell vector is zero.
    """
    if not isinstance(atoms, Atoms):
        raise SimsInputError(f"expected ase.Atoms, got {type(atoms).__name__}")
    pos = np.asarray(atoms.positions)
    if not np.isfinite(pos).all():
        bad = np.nonzero(~np.isfinite(pos).all(axis=1))[0]
        raise SimsInputError(f"positions of atoms {bad[:10].tolist()} are not finite")
    lengths = np.linalg.norm(np.asarray(atoms.cell[:]), axis=1)
    missing = np.asarray(atoms.pbc) & (lengths < 1e-12)
    if missing.any():
        raise MissingCellError(f"pbc={atoms.pbc.tolist()} but cell vectors {np.nonzero(missing)[0].tolist()} "
                               "are zero; set a cell or pbc=False")
    if require_masses:
        masses = atoms.get_masses()
        if not (masses > 0).all():
            bad = np.nonzero(~(masses > 0))[0]
            raise SimsInputError(f"masses must be > 0 amu; atoms {bad[:10].tolist()} have {masses[bad[:10]].tolist()}")
    if min_distance is not None and len(atoms) > 1:
        from .neighbors import neighbor_list

        i, j, _ = neighbor_list(atoms, min_distance)
        if len(i):
            raise SimsInputError(f"atoms {int(i[0])} and {int(j[0])} are closer than {min_distance} Å "
                                 f"({len(i) // 2} overlapping pairs)")


@dataclass
class State:
    """Positions, velocities and the fixed data of a system, as tensors on one device.

    Attributes
    ----------
    positions : torch.Tensor
        ``(N, 3)`` Å, not wrapped into the cell (so that image shifts and MSDs stay valid).
    velocities : torch.Tensor
        ``(N, 3)`` Å per ASE time unit (``ase.units.fs`` of them make one fs).
    masses : torch.Tensor
        ``(N,)`` amu.
    numbers : torch.Tensor
        ``(N,)`` int64 atomic numbers.
    cell : torch.Tensor
        ``(3, 3)`` Å, rows are cell vectors.
    pbc : torch.Tensor
        ``(3,)`` bool.
    """

    positions: torch.Tensor
    velocities: torch.Tensor
    masses: torch.Tensor
    numbers: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor

    @classmethod
    def from_atoms(cls, atoms, *, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> "State":
        """Build a state from ``ase.Atoms`` (velocities from its momenta; zero if absent)."""
        atoms = as_atoms(atoms)
        validate_atoms(atoms)

        def t(x) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype, device=device)

        return cls(positions=t(atoms.positions), velocities=t(atoms.get_velocities()), masses=t(atoms.get_masses()),
                   numbers=torch.as_tensor(atoms.numbers, dtype=torch.long, device=device),
                   cell=t(atoms.cell[:]), pbc=torch.as_tensor(np.asarray(atoms.pbc), device=device))

    def to_atoms(self) -> Atoms:
        """Return the state as ``ase.Atoms`` (positions as stored, velocities set)."""
        atoms = Atoms(numbers=self.numbers.cpu().numpy(), positions=self.positions.detach().cpu().double().numpy(),
                      cell=self.cell.detach().cpu().double().numpy(), pbc=self.pbc.cpu().numpy())
        atoms.set_masses(self.masses.detach().cpu().double().numpy())
        atoms.set_velocities(self.velocities.detach().cpu().double().numpy())
        return atoms

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return int(self.positions.shape[0])

    def kinetic_energy(self) -> torch.Tensor:
        """Total kinetic energy, eV."""
        return 0.5 * (self.masses[:, None] * self.velocities ** 2).sum()

    def with_(self, **changes) -> "State":
        """Return a copy with some fields replaced (integrators never mutate a state in place)."""
        return replace(self, **changes)
