"""The MD state as torch tensors, converted from and to ``ase.Atoms`` at the edge.

Units are ASE's throughout (Å, eV, amu, and ASE's time unit ``Å sqrt(amu/eV)`` for velocities, so
that ``atoms.get_velocities()`` is used unchanged); time steps are given in fs and converted once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from ase import Atoms

from reprs.atoms import as_atoms

from .errors import SimsInputError
from .neighbors import neighbor_list

__all__ = ["State", "validate_atoms", "check_unconstrained", "as_atoms", "centred"]


def validate_atoms(atoms: Atoms, *, require_masses: bool = True, min_distance: float | None = None) -> Atoms:
    """Return ``atoms`` as ``ase.Atoms`` (:func:`reprs.atoms.as_atoms`), refusing configurations no
    simulation can start from.

    Parameters
    ----------
    atoms : ase.Atoms or pymatgen Structure / Molecule
        The configuration.
    require_masses : bool
        Refuse zero or negative masses (needed by integrators, not by neighbour lists).
    min_distance : float, optional
        Refuse pairs of atoms closer than this (Å): overlapping atoms.

    Raises
    ------
    InputError
        No atoms, NaN/inf positions or cell (:func:`reprs.atoms.as_atoms`).
    MissingCellError
        ``pbc`` set along a direction whose cell vector is zero.
    SimsInputError
        Bad masses, overlapping atoms.
    """
    atoms = as_atoms(atoms)
    if require_masses:
        masses = atoms.get_masses()
        if not (masses > 0).all():
            bad = np.nonzero(~(masses > 0))[0]
            raise SimsInputError(f"masses must be > 0 amu; atoms {bad[:10].tolist()} have {masses[bad[:10]].tolist()}")
    if min_distance is not None and len(atoms) > 1:
        i, j, _ = neighbor_list(atoms, min_distance)
        if len(i):
            raise SimsInputError(f"atoms {int(i[0])} and {int(j[0])} are closer than {min_distance} Å "
                                 f"({len(i) // 2} overlapping pairs)")
    return atoms


def check_unconstrained(atoms: Atoms, what: str = "sims dynamics") -> None:
    """Refuse ``atoms`` that carry ASE constraints (``FixAtoms``, ``FixCartesian``, ``FixedPlane``, ...), which
    ``what`` does not apply.

    The state of a run is positions, velocities and masses only: the constraints were dropped without a word,
    so "fixed" atoms moved (a Cu(111) slab with its bottom layer fixed: 0.14 Å in 20 Langevin steps) and the
    temperature counted degrees of freedom that were meant to be frozen. Single points
    (:func:`sims.energy_and_forces`) are not refused: they return the unconstrained forces, as
    ``atoms.get_forces(apply_constraint=False)`` does.

    Raises
    ------
    SimsInputError
        Naming the constraints and how to go on.
    """
    constraints = getattr(atoms, "constraints", None)
    if constraints:
        names = sorted({type(c).__name__ for c in constraints})
        raise SimsInputError(f"the structure carries ASE constraints ({', '.join(names)}), which {what} does not "
                             "apply: the constrained atoms would move freely. Remove them (atoms.set_constraint()) "
                             "to simulate every atom, or run constrained dynamics with ASE's own integrators")


def centred(atoms: Atoms, dtype: torch.dtype) -> Atoms:
    """``atoms``, or below float64 ``dtype`` a copy translated in float64 so that its positions' centroid is at
    the origin.

    Cast to float32, a coordinate ``x`` is rounded by up to ``6e-8 |x|``: 10^4 Å from the origin that is
    6e-4 Å, and Lennard-Jones argon forces came out 2e-3 (relative) away from float64's (1.4e-4 at 10^3 Å),
    although the pair vectors, the only thing a translation-invariant potential reads, are short. For a
    single-point computation with a potential :func:`sims.potentials.translation_safe` says this changes
    nothing else; a periodic system is not wrapped atom by atom (a bonded force field without periodic
    bonds, e.g. OpenMM's default, would see its molecules broken).
    """
    if dtype == torch.float64:
        return atoms
    moved = atoms.copy()
    moved.positions = atoms.positions - atoms.positions.mean(0)
    return moved


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
        atoms = validate_atoms(atoms)

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

    def volume(self) -> torch.Tensor:
        """Cell volume, Å^3 (needs three independent cell vectors)."""
        return torch.abs(torch.linalg.det(self.cell))

    def kinetic_stress(self) -> torch.Tensor:
        """The kinetic (ideal-gas) part of the stress, ``-sum_i m_i v_i v_i^T / V``, eV/Å^3, 3x3.

        ASE's sign convention (positive = tensile), as ``atoms.get_stress(include_ideal_gas=True)``
        adds it; the pressure is minus a third of the trace of the total stress.
        """
        mv = self.masses[:, None] * self.velocities
        return -(mv.T @ self.velocities) / self.volume()

    def with_(self, **changes) -> "State":
        """Return a copy with some fields replaced (integrators never mutate a state in place)."""
        return replace(self, **changes)
