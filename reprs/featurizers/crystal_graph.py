"""Crystal graphs: atoms as nodes, periodic neighbours within a cutoff as edges.

Each atom i gets a directed edge to every periodic image of every atom j with
``0 < |r_j + S @ cell - r_i| < r_cut`` (ASE's vectorised ``neighbor_list``), so a small cell yields
several edges between the same pair (different images) and loops to an atom's own images; the
graph is therefore a ``networkx.MultiDiGraph`` (a ``DiGraph`` subclass), edges keyed by image.
Distances are expanded on Gaussians as edge features, as in CGCNN.

References
----------
T. Xie, J. C. Grossman, "Crystal Graph Convolutional Neural Networks for an Accurate and
Interpretable Prediction of Material Properties", Phys. Rev. Lett. 120, 145301 (2018).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np

from reprs.atoms import as_atoms
from reprs.convert import float_dtype
from reprs.errors import InputError
from reprs.featurizers.base import Featurizer
from reprs.featurizers.composition import ELEMENT_PROPERTIES, element_property_table

__all__ = ["CrystalGraph", "NeighborList", "NeighborTruncationWarning", "periodic_neighbors", "unanswered_edges"]

#: Distances closer than this (Angstrom) count as one shell when reporting split shells.
SHELL_TOL = 1e-6


class NeighborTruncationWarning(UserWarning):
    """``max_neighbors`` dropped neighbours within the cutoff."""


@dataclass(frozen=True)
class NeighborList:
    """Directed periodic neighbour list, sorted by centre, distance, neighbour and image.

    Attributes
    ----------
    center, neighbor : numpy.ndarray of int, shape (n_edges,)
        Atom indices of the edge i -> j.
    image : numpy.ndarray of int, shape (n_edges, 3)
        Cell offset S of the neighbour's image: its position is ``r_j + S @ cell``.
    distance : numpy.ndarray of float, shape (n_edges,)
        Edge length (Angstrom).
    n_cut : numpy.ndarray of int, shape (n_atoms,)
        Neighbours within the cutoff dropped by ``max_neighbors``, per atom.
    split_shell : numpy.ndarray of bool, shape (n_atoms,)
        True where the cut fell inside a shell of equal distances (within :data:`SHELL_TOL`), so
        which equidistant neighbours were kept depends on the tie-break (neighbour index, image).
    """

    center: np.ndarray
    neighbor: np.ndarray
    image: np.ndarray
    distance: np.ndarray
    n_cut: np.ndarray
    split_shell: np.ndarray


def periodic_neighbors(atoms: Any, r_cut: float, max_neighbors: int | None = None) -> NeighborList:
    """Neighbours of every atom within ``r_cut``, through periodic images where ``atoms.pbc``.

    Parameters
    ----------
    atoms : ase.Atoms or pymatgen Structure / Molecule
        The structure (cell needed in the periodic directions).
    r_cut : float
        Cutoff radius (Angstrom); pairs with distance below it are neighbours.
    max_neighbors : int or None
        Keep only the nearest ``max_neighbors`` of each atom (ties broken by neighbour index, then
        image); what is dropped is counted in ``n_cut`` and ``split_shell``, never hidden.

    Returns
    -------
    NeighborList

    Raises
    ------
    MissingCellError
        If a periodic direction has no cell vector.
    InputError
        For a non-finite position or cell, or no atoms (:func:`reprs.atoms.as_atoms`).
    """
    from ase.neighborlist import neighbor_list

    atoms = as_atoms(atoms)
    i, j, d, S = neighbor_list("ijdS", atoms, float(r_cut), self_interaction=False)
    order = np.lexsort((S[:, 2], S[:, 1], S[:, 0], j, d, i))
    i, j, d, S = i[order], j[order], d[order], S[order]
    n_atoms = len(atoms)
    n_cut = np.zeros(n_atoms, dtype=int)
    split = np.zeros(n_atoms, dtype=bool)
    if max_neighbors is not None and len(i):
        first = np.searchsorted(i, i, side="left")
        rank = np.arange(len(i)) - first
        keep = rank < max_neighbors
        n_cut = np.bincount(i[~keep], minlength=n_atoms)
        # the last kept edge of a truncated atom is followed by its first dropped one
        last_kept = np.flatnonzero((rank == max_neighbors - 1) & (n_cut[i] > 0))
        split[i[last_kept]] = np.abs(d[last_kept + 1] - d[last_kept]) < SHELL_TOL
        i, j, d, S = i[keep], j[keep], d[keep], S[keep]
    return NeighborList(i, j, S, d, n_cut, split)


def unanswered_edges(center: np.ndarray, neighbor: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Mask of the periodic edges ``i -> (j, S)`` whose reverse ``j -> (i, -S)`` is not in the list.

    Without ``max_neighbors`` a periodic neighbour list is symmetric and the mask all False; a cut
    keeps ``i -> j`` where ``j`` is among ``i``'s nearest but drops ``j -> i`` where ``i`` is not among
    ``j``'s. Loops to an atom's own images answer each other (``S`` and ``-S``).

    Parameters
    ----------
    center, neighbor : numpy.ndarray of int, shape (n_edges,)
    image : numpy.ndarray of int, shape (n_edges, 3)
        Cell offset of the neighbour's image.

    Returns
    -------
    numpy.ndarray of bool, shape (n_edges,)
    """
    image = np.asarray(image, dtype=np.int64).reshape(-1, 3)
    forward = np.column_stack([center, neighbor, image]).astype(np.int64)
    reverse = np.column_stack([neighbor, center, -image]).astype(np.int64)
    _, key = np.unique(np.concatenate([forward, reverse]), axis=0, return_inverse=True)
    key = key.ravel()
    return ~np.isin(key[len(forward):], key[: len(forward)])


class CrystalGraph(Featurizer):
    """Crystal graph of a structure: nodes = atoms, edges = neighbours within ``r_cut``.

    Parameters
    ----------
    r_cut : float, default 5.0
        Neighbour cutoff (Angstrom).
    max_neighbors : int or None, default None
        Keep at most this many nearest neighbours per atom. Anything dropped is reported: a
        :class:`NeighborTruncationWarning`, the graph attribute ``"n_cut"`` (total), node
        attribute ``"n_cut"`` and graph attribute ``"split_shells"`` (atoms whose cut fell inside
        an equidistant shell).
    n_gaussians : int, default 40
        Number of Gaussians in the edge features.
    r_min : float, default 0.0
        First Gaussian centre (Angstrom); centres are ``linspace(r_min, r_cut, n_gaussians)``.
    gaussian_width : float or None, default None
        Width ``w`` (Angstrom) in ``exp(-(d - mu_k)^2 / w^2)`` (CGCNN's form); default the centre
        spacing.
    node_properties : list of str
        Element properties (see :data:`reprs.featurizers.composition.ELEMENT_PROPERTIES`) forming
        the node vector ``"x"``; a structure with an element lacking one of them (NaN in the table,
        e.g. the electronegativity of argon) is refused with ``InputError``.
    output : {"networkx", "pyg"}, default "networkx"
        ``"networkx"``: a ``networkx.MultiDiGraph`` (node attrs ``"label"`` = element symbol,
        ``"x"``, ``"z"``, ``"position"`` (Angstrom), ``"n_cut"``; edge attrs ``"label"`` = sorted
        element pair, ``"x"`` = Gaussian features, ``"distance"`` (Angstrom), ``"image"``; graph attrs
        ``"name"`` (formula), ``"cell"``, ``"pbc"``, ``"n_cut"``, ``"split_shells"``).
        ``"pyg"``: a ``torch_geometric.data.Data`` with ``x``, ``z``, ``pos``, ``edge_index``,
        ``edge_attr``, ``edge_distance``, ``edge_image``, ``edge_dir``, ``cell`` (1, 3, 3), ``n_cut``
        (features, positions and distances in ``dtype``, Angstrom). Its edges are those :func:`learners.data.graphs_to_data` makes
        of the networkx output: each kept edge ``i -> j`` (``edge_index[:, e] = (i, j)``, the image
        ``S`` of ``j`` in ``edge_image``, ``edge_dir`` 0) and, where ``max_neighbors`` dropped the
        reverse ``j -> i``, its copy ``(j, i)`` with image ``-S`` (``edge_dir`` 1) after them. The
        list is symmetric, so under PyG's message passing (``edge_index[0]`` the source,
        ``[1]`` the target) every atom hears each of its kept neighbours and each atom that kept it.
        Without the copies an atom heard only the atoms that kept it: fewer than ``max_neighbors``
        for some.
    dtype : {"float32", "float64"} or torch.dtype, default "float32"
        Float type of the ``"pyg"`` output's ``x``, ``pos``, ``edge_attr``, ``edge_distance`` and
        ``cell`` (the networkx output keeps float64 arrays); a float64 model needs float64 inputs
        (:class:`learners.Trainer` refuses float32 ones).

    Notes
    -----
    ``n_features`` and ``feature_labels`` describe the edge features (the Gaussians);
    ``node_feature_labels`` the node features.

    References
    ----------
    T. Xie, J. C. Grossman, Phys. Rev. Lett. 120, 145301 (2018) (Gaussian distance expansion).

    Example
    -------
    >>> from ase.build import bulk
    >>> g = CrystalGraph(r_cut=3.0).featurize(bulk("Cu", "fcc", a=3.6))
    >>> g.number_of_edges()  # 12 nearest neighbours of fcc copper, all images of atom 0
    12
    """

    input_kind = "atoms"
    fixed_length = False
    #: here a hyperparameter, the float type of the PyG output (the base class's ``dtype`` is the numpy
    #: type of array outputs, which a graph featurizer has none of)
    dtype: Any = "float32"

    def __init__(
        self,
        *,
        r_cut: float = 5.0,
        max_neighbors: int | None = None,
        n_gaussians: int = 40,
        r_min: float = 0.0,
        gaussian_width: float | None = None,
        node_properties: Sequence[str] = ("Z", "period", "group", "covalent_radius", "valence_electrons"),
        output: Literal["networkx", "pyg"] = "networkx",
        dtype: Any = "float32",
    ):
        self.r_cut = r_cut
        self.max_neighbors = max_neighbors
        self.n_gaussians = n_gaussians
        self.r_min = r_min
        self.gaussian_width = gaussian_width
        self.node_properties = node_properties
        self.output = output
        self.dtype = dtype
        self._validate()

    def _validate(self) -> None:
        def number(value: Any) -> bool:
            return not isinstance(value, bool) and isinstance(value, (int, float, np.number))

        if not (number(self.r_cut) and self.r_cut > 0):
            raise InputError(f"r_cut must be a positive number (Angstrom), got {self.r_cut!r}")
        if self.max_neighbors is not None and not (
            number(self.max_neighbors) and int(self.max_neighbors) == self.max_neighbors and self.max_neighbors >= 1
        ):
            raise InputError(f"max_neighbors must be None or an int >= 1, got {self.max_neighbors!r}")
        if not (number(self.n_gaussians) and int(self.n_gaussians) == self.n_gaussians and self.n_gaussians >= 1):
            raise InputError(f"n_gaussians must be an int >= 1, got {self.n_gaussians!r}")
        if not (number(self.r_min) and 0 <= self.r_min < self.r_cut):
            raise InputError(f"r_min must be in [0, r_cut), got {self.r_min!r}")
        if self.gaussian_width is None:
            if self.n_gaussians < 2:
                raise InputError("gaussian_width is needed when n_gaussians == 1")
        elif not (number(self.gaussian_width) and self.gaussian_width > 0):
            raise InputError(f"gaussian_width must be positive (Angstrom), got {self.gaussian_width!r}")
        unknown = [p for p in self.node_properties if p not in ELEMENT_PROPERTIES]
        if isinstance(self.node_properties, str) or unknown or not self.node_properties:
            raise InputError(
                f"node_properties must be a non-empty list from {list(ELEMENT_PROPERTIES)}, "
                f"got {self.node_properties!r}"
            )
        if self.output not in ("networkx", "pyg"):
            raise InputError(f"output must be 'networkx' or 'pyg', got {self.output!r}")
        float_dtype(self.dtype)

    # ---------------------------------------------------------------------------------- features
    def _centers(self) -> np.ndarray:
        return np.linspace(float(self.r_min), float(self.r_cut), int(self.n_gaussians))

    def _width(self) -> float:
        if self.gaussian_width is not None:
            return float(self.gaussian_width)
        centers = self._centers()
        return float(centers[1] - centers[0])

    def expand_distances(self, distance: np.ndarray) -> np.ndarray:
        """Gaussian expansion ``exp(-(d - mu_k)^2 / w^2)``, shape ``(n, n_gaussians)``.

        Parameters
        ----------
        distance : array of float, shape (n,)
            Distances (Angstrom).
        """
        diff = np.asarray(distance, dtype=float)[:, None] - self._centers()[None, :]
        return np.exp(-(diff**2) / self._width() ** 2)

    @property
    def n_features(self) -> int:
        return int(self.n_gaussians)

    def feature_labels(self) -> list[str]:
        """Edge-feature labels ``gauss_{mu}A``."""
        return [f"gauss_{mu:.3f}A" for mu in self._centers()]

    def node_feature_labels(self) -> list[str]:
        """Names of the node features (element properties)."""
        return list(self.node_properties)

    # --------------------------------------------------------------------------------- featurize
    def _featurize(self, atoms: Any) -> Any:
        nbrs = periodic_neighbors(atoms, self.r_cut, None if self.max_neighbors is None else int(self.max_neighbors))
        total_cut = int(nbrs.n_cut.sum())
        if total_cut:
            warnings.warn(
                f"max_neighbors={self.max_neighbors} dropped {total_cut} neighbour entries within "
                f"r_cut={self.r_cut} A from {int((nbrs.n_cut > 0).sum())} of {len(atoms)} atoms of "
                f"{atoms.get_chemical_formula()} ({int(nbrs.split_shell.sum())} cuts inside an "
                "equidistant shell); see the 'n_cut' attributes",
                NeighborTruncationWarning,
                stacklevel=3,
            )
        z = atoms.get_atomic_numbers()
        columns = [list(ELEMENT_PROPERTIES).index(p) for p in self.node_properties]
        node_x = element_property_table()[np.ix_(z, columns)]
        if np.isnan(node_x).any():
            # pymatgen lacks the value (e.g. the electronegativity of argon); a NaN node feature
            # would reach a model and turn its loss into NaN far from the cause
            atom, col = np.argwhere(np.isnan(node_x))[0]
            raise InputError(
                f"element {atoms[int(atom)].symbol} has no {self.node_properties[col]!r} in the element table "
                "(pymatgen's data); choose node_properties without it"
            )
        edge_x = self.expand_distances(nbrs.distance)
        if self.output == "pyg":
            return self._to_pyg(atoms, z, node_x, edge_x, nbrs)
        return self._to_networkx(atoms, z, node_x, edge_x, nbrs)

    def _to_networkx(self, atoms, z, node_x, edge_x, nbrs: NeighborList):
        import networkx as nx

        symbols = atoms.get_chemical_symbols()
        positions = atoms.get_positions()
        graph = nx.MultiDiGraph(
            name=atoms.get_chemical_formula(),
            cell=np.asarray(atoms.cell, dtype=float),
            pbc=atoms.pbc.copy(),
            r_cut=float(self.r_cut),
            n_cut=int(nbrs.n_cut.sum()),
            split_shells=int(nbrs.split_shell.sum()),
        )
        graph.add_nodes_from(
            (a, {"label": symbols[a], "x": node_x[a], "z": int(z[a]), "position": positions[a], "n_cut": int(nbrs.n_cut[a])})
            for a in range(len(atoms))
        )
        pair = ["-".join(sorted((symbols[a], symbols[b]))) for a, b in zip(nbrs.center, nbrs.neighbor)]
        graph.add_edges_from(
            (
                int(a),
                int(b),
                tuple(int(s) for s in image),
                {"label": label, "x": x, "distance": float(dist), "image": tuple(int(s) for s in image)},
            )
            for a, b, image, dist, x, label in zip(nbrs.center, nbrs.neighbor, nbrs.image, nbrs.distance, edge_x, pair)
        )
        return graph

    def _to_pyg(self, atoms, z, node_x, edge_x, nbrs: NeighborList):
        import torch
        from torch_geometric.data import Data

        add = unanswered_edges(nbrs.center, nbrs.neighbor, nbrs.image)
        kept, reverse = np.stack([nbrs.center, nbrs.neighbor]), np.stack([nbrs.neighbor, nbrs.center])
        edge_index = np.concatenate([kept, reverse[:, add]], axis=1)
        dtype = float_dtype(self.dtype)
        return Data(
            x=torch.as_tensor(node_x, dtype=dtype),
            z=torch.as_tensor(z, dtype=torch.long),
            pos=torch.as_tensor(atoms.get_positions(), dtype=dtype),
            edge_index=torch.as_tensor(edge_index, dtype=torch.long),
            edge_attr=torch.as_tensor(np.concatenate([edge_x, edge_x[add]]), dtype=dtype),
            edge_distance=torch.as_tensor(np.concatenate([nbrs.distance, nbrs.distance[add]]), dtype=dtype),
            edge_image=torch.as_tensor(np.concatenate([nbrs.image, -nbrs.image[add]]), dtype=torch.long),
            edge_dir=torch.as_tensor(np.repeat([0, 1], [len(add), int(add.sum())]), dtype=torch.long),
            cell=torch.as_tensor(np.asarray(atoms.cell, dtype=float), dtype=dtype).unsqueeze(0),
            n_cut=torch.as_tensor(nbrs.n_cut, dtype=torch.long),
            name=atoms.get_chemical_formula(),
        )
