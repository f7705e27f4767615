"""Atomistic inputs converted and validated at the edge, once, for the four packages.

Every public function of matrep that takes a configuration of atoms (featurizers, crystal graphs,
glass networks, :class:`sims.State`, :func:`sims.neighbor_list`, the neural potentials' batches)
passes it through :func:`as_atoms`: one conversion (``ase.Atoms``, pymatgen ``Structure`` /
``Molecule``) and one validation, so that bad coordinates raise instead of giving a silently wrong
answer (a glass network of a structure with a NaN position used to be a graph with no edges).

This module is in ``reprs``' base layer (``reprs.BASE_LAYER``): ``sims`` imports it, so it
imports nothing of ``reprs`` but :mod:`reprs.errors`, and pymatgen only when given a pymatgen
object.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from reprs.errors import InputError, InputTypeError, MissingCellError

__all__ = ["as_atoms", "as_frames"]


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _from_pymatgen(obj: Any) -> Atoms:
    from pymatgen.core import IMolecule, IStructure

    if not isinstance(obj, (IStructure, IMolecule)):
        raise InputTypeError(f"expected ase.Atoms or a pymatgen Structure/Molecule, got {_type_name(obj)}")
    if not obj.is_ordered:
        raise InputError(f"{obj.composition.reduced_formula}: disordered structure (partial occupancies); "
                         "order it first, e.g. with pymatgen's OrderDisorderedStructureTransformation")
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_atoms(obj)


def _first_bad_row(values: np.ndarray) -> int:
    return int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])


def as_atoms(obj: Any, *, require_cell: bool = False) -> Atoms:
    """Return ``obj`` as ``ase.Atoms``, refusing configurations no computation can use.

    pymatgen objects are converted with ``AseAtomsAdaptor`` (a ``Structure`` keeps its lattice and
    its periodicity, ``lattice.pbc``: all three directions unless set otherwise; a ``Molecule`` has
    no cell); pymatgen is imported only
    for them. ``ase.Atoms`` is returned as is, never copied or modified, so callers must not change
    it in place.

    Parameters
    ----------
    obj : ase.Atoms or pymatgen Structure / Molecule
        The configuration (positions and cell in Å).
    require_cell : bool
        Require a three-dimensional cell, periodic in all three directions (crystals, glasses,
        periodic featurizers).

    Returns
    -------
    ase.Atoms

    Raises
    ------
    InputError
        For a structure without atoms, a non-finite (NaN or infinite) position (the message names
        the first such atom) or cell vector, or a disordered pymatgen structure.
    MissingCellError
        For periodic directions without independent, non-zero cell vectors (periodic data needs a
        cell), and, with
        ``require_cell``, for a cell that is not three-dimensional or not periodic in all
        directions (a ``Molecule``, ``ase.Atoms`` with ``pbc=False``).
    InputTypeError
        For any other type (a SMILES string, a file name, ...).

    Examples
    --------
    >>> from ase.build import bulk
    >>> as_atoms(bulk("Si"), require_cell=True).get_chemical_formula()
    'Si2'
    >>> import numpy as np
    >>> bad = bulk("Si"); bad.positions[1, 0] = np.nan
    >>> as_atoms(bad)
    Traceback (most recent call last):
    ...
    reprs.errors.InputError: atom 1 (Si) has a non-finite position [nan, 1.3575, 1.3575] Å; ...
    """
    if isinstance(obj, Atoms):
        atoms = obj
    elif type(obj).__module__.startswith("pymatgen"):  # pymatgen is heavy: import it for its objects only
        atoms = _from_pymatgen(obj)
    else:
        raise InputTypeError(f"expected ase.Atoms or a pymatgen Structure/Molecule, got {_type_name(obj)}")
    if len(atoms) == 0:
        raise InputError("structure has no atoms")
    positions = np.asarray(atoms.positions, dtype=float)
    if not np.isfinite(positions).all():
        k = _first_bad_row(positions)
        n_bad = int((~np.isfinite(positions).all(axis=1)).sum())
        raise InputError(f"atom {k} ({atoms[k].symbol}) has a non-finite position "
                         f"[{', '.join(f'{x:.8g}' for x in positions[k])}] Å; "
                         f"{n_bad} of {len(atoms)} atoms do; positions must be finite numbers")
    cell = np.asarray(atoms.cell[:], dtype=float)
    if not np.isfinite(cell).all():
        k = _first_bad_row(cell)
        raise InputError(f"cell vector {k} is not finite: [{', '.join(f'{x:.8g}' for x in cell[k])}] Å")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any() and np.linalg.matrix_rank(cell[pbc]) < pbc.sum():
        raise MissingCellError(f"periodic directions {np.flatnonzero(pbc).tolist()} need independent, non-zero cell "
                               f"vectors; got cell {cell.tolist()} Å (set the cell, or pbc=False for a molecule)")
    if require_cell and (atoms.cell.rank < 3 or not pbc.all()):
        raise MissingCellError("a periodic structure is needed: a 3-D cell and pbc=True in all directions "
                               f"(got cell rank {atoms.cell.rank}, pbc={pbc.tolist()})")
    return atoms


def as_frames(frames: Any, *, require_cell: bool = False) -> list[Atoms]:
    """A trajectory (one configuration or an iterable of them) as a non-empty list of checked ``ase.Atoms``.

    Each frame goes through :func:`as_atoms` (same checks, same ``require_cell``); an error names
    the frame.

    Raises
    ------
    InputError
        No frames, or a frame :func:`as_atoms` refuses (the message starts with ``frame k:``).
    """
    if isinstance(frames, Atoms) or type(frames).__module__.startswith("pymatgen"):
        frames = [frames]
    elif isinstance(frames, (str, bytes)) or not hasattr(frames, "__iter__"):
        raise InputTypeError(f"expected ase.Atoms or an iterable of them, got {_type_name(frames)}")
    out = []
    for k, frame in enumerate(frames):
        try:
            out.append(as_atoms(frame, require_cell=require_cell))
        except (InputError, InputTypeError) as err:
            raise type(err)(f"frame {k}: {err}") from None
    if not out:
        raise InputError("no frames given; pass an ase.Atoms or a non-empty list of them")
    return out
