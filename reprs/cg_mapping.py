"""Coarse-grained (CG) mappings of a molecule: which atoms make each bead, and where the bead sits.

A :class:`CGMapping` assigns every atom to exactly one bead and gives each atom a weight within its
bead (weights of a bead sum to 1), so a bead's position is the weighted centre of its atoms:
masses for the centre of mass, equal weights for the geometric centre, or all weight on one atom
(the alpha carbon). The constructors:

- :func:`user_mapping`: beads given as lists of atom indices (or one bead index per atom);
- :func:`heavy_atom_mapping`: one bead per heavy atom, each hydrogen with the heavy atom it is
  closest to;
- :func:`girvan_newman_mapping`: the heavy-atom bond graph cut into ``n_beads`` communities by
  Girvan-Newman edge-betweenness division (Girvan & Newman, PNAS 99, 7821 (2002); networkx), the
  partitioning the CGVAE paper uses for its chignolin mappings (Wang et al., ICML 2022,
  arXiv:2201.12176, sec. 5); hydrogens follow their heavy atom;
- :func:`alpha_carbon_mapping`: one bead per residue, placed on its alpha carbon.

Beads are ordered by their lowest atom index. Each bead has a symbol, the element of its atom of
largest weight (the heaviest atom for mass and geometric centres, the alpha carbon for
:func:`alpha_carbon_mapping`; then the heaviest, then the first): CG frames (:meth:`CGMapping.check_frame`) carry these symbols, so a
frame whose beads come in another order than the mapping's is refused wherever the symbols differ.

Bonds (:func:`covalent_bonds`): atoms closer than ``scale`` times the sum of their covalent radii
(ASE's table, Cordero et al., Dalton Trans. 2008, 2832; ``scale`` 1.3 as in the CGVAE authors' graph
metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
from ase import Atoms

from .atoms import as_atoms
from .errors import InputError

__all__ = ["CGMapping", "user_mapping", "heavy_atom_mapping", "girvan_newman_mapping", "alpha_carbon_mapping",
           "covalent_bonds", "bond_matrix"]

Centre = Literal["mass", "geometric"]


@dataclass(frozen=True, eq=False)
class CGMapping:
    """Atoms to beads: ``assignment[i]`` is atom ``i``'s bead, ``weights[i]`` its weight in it.

    Build it with one of the module's constructors, which validate their input; the fields are
    read-only arrays.

    Attributes
    ----------
    assignment : numpy.ndarray
        ``(n_atoms,)`` int, bead index of each atom, ``0 .. n_beads - 1``, every bead non-empty.
    weights : numpy.ndarray
        ``(n_atoms,)`` float, non-negative, summing to 1 over each bead's atoms.
    bead_symbols : tuple of str
        Element of each bead's atom of largest weight (then the heaviest, then the first).
    """

    assignment: np.ndarray
    weights: np.ndarray
    bead_symbols: tuple[str, ...]

    @property
    def n_beads(self) -> int:
        return len(self.bead_symbols)

    @property
    def n_atoms(self) -> int:
        return int(self.assignment.shape[0])

    def matrix(self) -> np.ndarray:
        """``(n_beads, n_atoms)`` weights: bead positions are ``matrix() @ positions``."""
        m = np.zeros((self.n_beads, self.n_atoms))
        m[self.assignment, np.arange(self.n_atoms)] = self.weights
        return m

    def bead_positions(self, positions: Any) -> np.ndarray:
        """Bead centres (Å) of ``positions`` ``(..., n_atoms, 3)`` Å (an ``ase.Atoms``, one frame or a stack).

        Raises
        ------
        InputError
            Another number of atoms than the mapping's, non-finite coordinates, or a periodic
            ``ase.Atoms`` whose molecule the cell boundary splits (bead centres are plain weighted means
            of the positions: a wrapped frame put a split bead 0.67 Å off its centre and beads on either
            side a cell length apart).
        """
        if isinstance(positions, Atoms):
            positions = _whole(as_atoms(positions)).positions
        x = np.asarray(positions, dtype=float)
        if x.ndim < 2 or x.shape[-2:] != (self.n_atoms, 3):
            raise InputError(f"positions of shape {x.shape} do not fit the mapping: expected (..., {self.n_atoms}, 3)")
        if not np.isfinite(x).all():
            bad = np.argwhere(~np.isfinite(x))[0]
            raise InputError(f"non-finite coordinate at index {tuple(int(k) for k in bad)}; positions must be finite")
        return self.matrix() @ x

    def cg_frame(self, atoms: Atoms) -> Atoms:
        """The CG frame of ``atoms``: one pseudo-atom per bead, symbol :attr:`bead_symbols`, at its centre,
        in the cell and with the periodicity of ``atoms`` (a CG RDF or a backmap check needs them)."""
        return Atoms(self.bead_symbols, positions=self.bead_positions(atoms), cell=atoms.cell, pbc=atoms.pbc)

    def check_frame(self, cg: Any, bonds: Any = None) -> np.ndarray:
        """Bead positions ``(n_beads, 3)`` Å of a CG frame, after checking it against the mapping.

        Parameters
        ----------
        cg : ase.Atoms
            One bead per atom, in the mapping's order with its bead symbols.
        bonds : array-like, optional
            The molecule's atom bonds ``(E, 2)``; two beads are bonded when a bond links their atoms.
            Needed for a periodic frame (any ``pbc``) of more than one bead: bead positions are read as
            they are, so the molecule must be whole (the rule of :meth:`bead_positions`).

        Raises
        ------
        InputError
            Another number of beads, a bead whose symbol differs from the mapping's bead in the same
            place (beads out of order, or a frame of another mapping), non-finite coordinates, or a
            periodic frame whose molecule the cell boundary splits (two bonded beads whose displacement
            is not its minimum image; a wrapped ethanol frame gave backmapped bonds of 8.9 Å) or that
            comes without ``bonds`` to tell.
        """
        atoms = as_atoms(cg)
        if len(atoms) != self.n_beads:
            raise InputError(f"the CG frame has {len(atoms)} beads but the mapping has {self.n_beads}; "
                             "give the frame of this mapping, one bead per line in the mapping's order")
        symbols = atoms.get_chemical_symbols()
        wrong = [k for k, (a, b) in enumerate(zip(symbols, self.bead_symbols)) if a != b]
        if wrong:
            k = wrong[0]
            raise InputError(f"bead {k} of the CG frame is {symbols[k]} but the mapping's bead {k} is "
                             f"{self.bead_symbols[k]} ({len(wrong)} beads differ); the frame's beads must come in "
                             f"the mapping's order {list(self.bead_symbols)}")
        if np.asarray(atoms.pbc).any() and self.n_beads > 1:
            if bonds is None or not np.size(bonds):
                raise InputError("the CG frame is periodic but no bonds were given to tell whether the cell boundary "
                                 "splits its molecule; give the molecule's bonds (a backmapping model built with "
                                 "bonds), or an unwrapped frame without periodicity (frame.pbc = False)")
            pairs = self.assignment[np.asarray(bonds, dtype=np.int64).reshape(-1, 2)]
            pairs = np.unique(np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1), axis=0)
            _whole(atoms, bonds=pairs, what="beads", need="backmapping needs a whole molecule")
        return np.asarray(atoms.positions, dtype=float)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, for saving beside a model."""
        return {"assignment": self.assignment.tolist(), "weights": self.weights.tolist(),
                "bead_symbols": list(self.bead_symbols)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CGMapping:
        """The mapping :meth:`to_dict` wrote (checked again)."""
        return _make(np.asarray(d["assignment"]), np.asarray(d["weights"], dtype=float), tuple(d["bead_symbols"]))


def _make(assignment: np.ndarray, weights: np.ndarray, bead_symbols: tuple[str, ...]) -> CGMapping:
    n_beads = len(bead_symbols)
    if assignment.min(initial=0) < 0 or assignment.max(initial=-1) >= n_beads:
        raise InputError(f"bead indices must be in 0..{n_beads - 1}")
    sums = np.bincount(assignment, weights=weights, minlength=n_beads)
    if (weights < 0).any() or not np.allclose(sums, 1.0, atol=1e-9):
        raise InputError("the weights of each bead's atoms must be >= 0 and sum to 1")
    assignment, weights = assignment.astype(np.int64), weights.astype(float)
    assignment.flags.writeable = False
    weights.flags.writeable = False
    return CGMapping(assignment, weights, tuple(bead_symbols))


def _weights(atoms: Atoms, assignment: np.ndarray, n_beads: int, centre: str) -> np.ndarray:
    if centre == "mass":
        w = np.asarray(atoms.get_masses(), dtype=float)
    elif centre == "geometric":
        w = np.ones(len(atoms))
    else:
        raise InputError(f"centre must be 'mass' or 'geometric', got {centre!r}")
    return w / np.bincount(assignment, weights=w, minlength=n_beads)[assignment]


def _from_assignment(atoms: Atoms, assignment: np.ndarray, centre: str, weights: np.ndarray | None = None) -> CGMapping:
    # Beads renumbered by their lowest atom index, so equal partitions give equal mappings.
    first = np.full(assignment.max() + 1, len(atoms))
    np.minimum.at(first, assignment, np.arange(len(atoms)))
    used = np.flatnonzero(first < len(atoms))
    order = used[np.argsort(first[used])]
    renumber = np.empty(assignment.max() + 1, dtype=np.int64)
    renumber[order] = np.arange(order.size)
    assignment = renumber[assignment]
    n_beads = order.size
    masses = np.asarray(atoms.get_masses(), dtype=float)
    symbols = np.asarray(atoms.get_chemical_symbols())
    w = _weights(atoms, assignment, n_beads, centre) if weights is None else weights
    # The bead's symbol: its atom of largest weight, then the heaviest, then the lowest index.
    ranked = np.lexsort((np.arange(len(atoms)), -masses, -w, assignment))
    heads = ranked[np.searchsorted(assignment[ranked], np.arange(n_beads))]
    return _make(assignment, w, tuple(symbols[heads].tolist()))


def user_mapping(atoms: Any, beads: Sequence[Sequence[int]] | Sequence[int] | np.ndarray, *,
                 centre: Centre = "mass") -> CGMapping:
    """A mapping given by the user: a list of beads (atom indices each), or one bead index per atom.

    Parameters
    ----------
    atoms : ase.Atoms
        The molecule (its masses weight ``centre="mass"``).
    beads : list of lists of int, or sequence of int
        ``[[0, 1, 2], [3, 4]]``: every atom in exactly one bead; or ``[0, 0, 0, 1, 1]``: the bead of
        each atom (every bead index from 0 to the largest used).
    centre : {"mass", "geometric"}

    Raises
    ------
    InputError
        An atom in no bead, an atom in two beads, an index out of range, an empty bead.

    Examples
    --------
    >>> from ase.build import molecule
    >>> user_mapping(molecule("CH3CH2OH"), [[0, 3, 4, 5], [1, 6, 7], [2, 8]]).bead_symbols
    ('C', 'C', 'O')
    """
    atoms = as_atoms(atoms)
    n = len(atoms)
    if len(beads) and all(np.ndim(b) == 1 for b in beads):
        assignment = np.full(n, -1)
        for k, bead in enumerate(beads):
            idx = np.asarray(bead, dtype=np.int64)
            if idx.size == 0:
                raise InputError(f"bead {k} is empty; every bead needs at least one atom")
            if idx.min() < 0 or idx.max() >= n:
                raise InputError(f"bead {k} names atom {int(idx.max() if idx.max() >= n else idx.min())}, but the "
                                 f"molecule has atoms 0..{n - 1}")
            dup = np.unique(idx, return_counts=True)
            twice = dup[0][dup[1] > 1].tolist() + idx[assignment[idx] >= 0].tolist()
            if twice:
                a = int(twice[0])
                other = k if assignment[a] < 0 else int(assignment[a])
                raise InputError(f"atom {a} is assigned twice (beads {other} and {k}); each atom belongs to "
                                 "exactly one bead")
            assignment[idx] = k
    else:
        assignment = np.asarray(beads)
        if assignment.ndim != 1 or not np.issubdtype(assignment.dtype, np.integer) or assignment.size != n:
            raise InputError(f"beads must be a list of atom-index lists or {n} bead indices (one per atom), "
                             f"got shape {np.shape(beads)}")
        if assignment.min() < 0:
            raise InputError(f"atom {int(np.argmin(assignment))} has a negative bead index")
        missing = np.setdiff1d(np.arange(assignment.max() + 1), assignment)
        if missing.size:
            raise InputError(f"bead {int(missing[0])} has no atoms; number the beads 0..n_beads-1 without gaps")
    unassigned = np.flatnonzero(assignment < 0)
    if unassigned.size:
        raise InputError(f"atoms {unassigned.tolist()} are in no bead; every atom must belong to exactly one bead")
    return _from_assignment(atoms, assignment, centre)


def _whole(atoms: Atoms, scale: float = 1.3, *, bonds: np.ndarray | None = None, what: str = "atoms",
           need: str = "bead centres need a whole molecule") -> Atoms:
    """``atoms``, refused when a bond crosses the periodic cell boundary, i.e. the molecule is not whole
    in its positions: a bonded pair whose displacement as it is differs from its minimum image.

    The bonds are ``bonds`` ``(E, 2)`` when given (the beads of a CG frame), else the rule of
    :func:`covalent_bonds` (``scale``) under the minimum image along the periodic axes.
    """
    if not np.asarray(atoms.pbc).any():
        return atoms
    if bonds is None:
        from ase.data import covalent_radii
        from ase.neighborlist import neighbor_list

        i, j, vectors = neighbor_list("ijD", atoms, scale * covalent_radii[atoms.numbers])
        per_bond = 2  # each bond once from either end
    else:
        from ase.geometry import find_mic

        i, j = np.asarray(bonds, dtype=np.int64).reshape(-1, 2).T
        vectors = find_mic(atoms.positions[j] - atoms.positions[i], atoms.cell, atoms.pbc)[0]
        per_bond = 1
    broken = np.flatnonzero(np.abs(vectors - (atoms.positions[j] - atoms.positions[i])).max(axis=1, initial=0) > 1e-6)
    if broken.size:
        a, b = int(i[broken[0]]), int(j[broken[0]])
        raise InputError(f"the molecule is split by the periodic cell boundary ({what} {a} and {b} are bonded across "
                         f"it; {broken.size // per_bond} such bonds): {need}. Unwrap it first "
                         f"(each of its {what} at the minimum image of its bonded neighbour)")
    return atoms


def covalent_bonds(numbers: Any, positions: Any, *, scale: float = 1.3) -> np.ndarray:
    """Bonded pairs ``(E, 2)``, ``i < j``: distance below ``scale`` times the sum of covalent radii.

    Parameters
    ----------
    numbers : array_like
        ``(n,)`` atomic numbers.
    positions : array_like
        ``(n, 3)`` Å.
    scale : float
    """
    adjacency = bond_matrix(numbers, positions, scale=scale)
    i, j = np.nonzero(np.triu(adjacency, 1))
    return np.stack([i, j], axis=1)


def bond_matrix(numbers: Any, positions: Any, *, scale: float = 1.3) -> np.ndarray:
    """Boolean adjacency ``(..., n, n)`` of the covalent bond graph of each frame of ``positions`` ``(..., n, 3)`` Å.

    The rule of :func:`covalent_bonds`; the diagonal is False.
    """
    from ase.data import covalent_radii

    x = np.asarray(positions, dtype=float)
    radii = covalent_radii[np.asarray(numbers, dtype=np.int64)]
    d = np.linalg.norm(x[..., :, None, :] - x[..., None, :, :], axis=-1)
    adjacency = d < scale * (radii[:, None] + radii[None, :])
    n = radii.size
    adjacency[..., np.arange(n), np.arange(n)] = False
    return adjacency


def _heavy_and_owner(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Heavy-atom indices, and for each atom the heavy atom it belongs to (itself, or a hydrogen's nearest)."""
    numbers = atoms.numbers
    heavy = np.flatnonzero(numbers > 1)
    if heavy.size == 0:
        raise InputError("the molecule has no heavy atoms to build beads on")
    d = np.linalg.norm(atoms.positions[:, None, :] - atoms.positions[None, heavy, :], axis=-1)
    owner = heavy[np.argmin(d, axis=1)]
    owner[heavy] = heavy
    return heavy, owner


def heavy_atom_mapping(atoms: Any, *, centre: Centre = "mass") -> CGMapping:
    """One bead per heavy atom, with the hydrogens closest to it (a united-atom mapping).

    Examples
    --------
    >>> from ase.build import molecule
    >>> heavy_atom_mapping(molecule("CH3CH2OH")).n_beads
    3
    """
    atoms = _whole(as_atoms(atoms))  # hydrogens go to the nearest heavy atom in the positions as they are
    heavy, owner = _heavy_and_owner(atoms)
    rank = np.full(len(atoms), -1)
    rank[heavy] = np.arange(heavy.size)
    return _from_assignment(atoms, rank[owner], centre)


def girvan_newman_mapping(atoms: Any, n_beads: int, *, centre: Centre = "mass", scale: float = 1.3) -> CGMapping:
    """``n_beads`` beads from Girvan-Newman communities of the heavy-atom bond graph; H with their heavy atom.

    The bond graph's edge of highest betweenness is removed until the graph has ``n_beads``
    connected components (networkx's ``girvan_newman``, deterministic for a given atom order).

    Raises
    ------
    InputError
        ``n_beads`` < 1 or more than the heavy atoms, or a heavy-atom graph that is not connected
        into fewer components than ``n_beads``.
    """
    import networkx as nx
    from networkx.algorithms.community import girvan_newman

    atoms = _whole(as_atoms(atoms), scale)  # hydrogens and bonds from the positions as they are
    heavy, owner = _heavy_and_owner(atoms)
    if not (isinstance(n_beads, (int, np.integer)) and 1 <= n_beads <= heavy.size):
        raise InputError(f"n_beads must be an integer from 1 to the {heavy.size} heavy atoms, got {n_beads!r}")
    graph = nx.Graph()
    graph.add_nodes_from(heavy.tolist())
    bonds = covalent_bonds(atoms.numbers[heavy], atoms.positions[heavy], scale=scale)
    graph.add_edges_from(heavy[bonds].tolist())
    parts = [set(c) for c in nx.connected_components(graph)]
    if len(parts) > n_beads:
        raise InputError(f"the heavy-atom bond graph already has {len(parts)} components, more than n_beads={n_beads}")
    if len(parts) < n_beads:
        for division in girvan_newman(graph):
            if len(division) >= n_beads:
                parts = [set(c) for c in division]
                break
    label = np.full(len(atoms), -1)
    for k, part in enumerate(parts):
        label[list(part)] = k
    return _from_assignment(atoms, label[owner], centre)


def alpha_carbon_mapping(atoms: Any, residues: Sequence[int] | None = None,
                         alpha_carbons: Sequence[int] | None = None) -> CGMapping:
    """One bead per residue, at its alpha carbon (weight 1 on CA, 0 on the residue's other atoms).

    Parameters
    ----------
    atoms : ase.Atoms
        A peptide; read from PDB, ASE gives ``arrays["residuenumbers"]`` and ``arrays["atomtypes"]``,
        which are used when ``residues`` and ``alpha_carbons`` are not given.
    residues : sequence of int, optional
        Residue number of each atom (any integers; beads follow their first appearance).
    alpha_carbons : sequence of int, optional
        Index of one alpha carbon per residue.

    Raises
    ------
    InputError
        No residue information, a residue without exactly one alpha carbon.
    """
    atoms = as_atoms(atoms)
    if residues is None:
        if "residuenumbers" not in atoms.arrays:
            raise InputError("give residues= (one residue number per atom), or atoms read from a PDB file")
        residues = atoms.arrays["residuenumbers"]
    if alpha_carbons is None:
        if "atomtypes" not in atoms.arrays:
            raise InputError("give alpha_carbons= (the CA atom of each residue), or atoms read from a PDB file")
        alpha_carbons = np.flatnonzero(np.char.strip(atoms.arrays["atomtypes"].astype(str)) == "CA")
    residues = np.asarray(residues)
    if residues.shape != (len(atoms),):
        raise InputError(f"residues must give one residue number per atom ({len(atoms)}), got shape {residues.shape}")
    _, first, assignment = np.unique(residues, return_index=True, return_inverse=True)
    assignment = np.argsort(np.argsort(first))[assignment]
    ca = np.asarray(alpha_carbons, dtype=np.int64)
    counts = np.bincount(assignment[ca], minlength=first.size)
    if ca.size != first.size or (counts != 1).any():
        k = int(np.flatnonzero(counts != 1)[0]) if (counts != 1).any() else 0
        raise InputError(f"each residue needs exactly one alpha carbon; residue bead {k} has {int(counts[k])}")
    weights = np.zeros(len(atoms))
    weights[ca] = 1.0
    return _from_assignment(atoms, assignment, "geometric", weights=weights)
