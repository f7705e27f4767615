"""Atomistic configurations as networks: bonds under periodic boundaries, glass statistics and
local environments.

A configuration (``ase.Atoms`` or a pymatgen ``Structure``/``Molecule``) becomes a
``networkx.Graph`` whose nodes are atoms and whose edges are bonds: pairs of atoms closer than a
species-pair cutoff, periodic images included (arXiv:2111.07452 casts silica glass this way).
Cutoffs are given in Å or taken from the first minimum of the partial radial distribution
function (the rule of :func:`reprs.structure.rdf_first_minimum`). A cation-only network joins two
cations that share a bridging anion (the Si-Si network of silica through bridging oxygens).
Node degrees by species, the bridging / non-bridging anion fractions and the subgraph within
``k`` bonds of an atom ("local environment") are computed from the network. The RDF, the
coordination count on atoms and the crystalline polymorphs that the glass is compared with
(alpha-quartz, beta-cristobalite, coesite) live in the base layer, :mod:`reprs.structure`, and
are re-exported here.

Graph conventions (matrep): node ``"label"`` = element symbol, node ``"x"`` = ``[Z]``, plus
``"element"``, ``"index"`` (atom index in the input) and ``"position"`` (Cartesian, Å); edge
``"length"`` (Å), ``"label"`` (e.g. ``"O-Si"``) and ``"x"`` = ``[length]``; graph ``"name"``,
``"cutoffs"`` (the cutoffs used, Å, keyed by sorted species pairs) and ``"bridge"``.

The neighbour search is ASE's vectorised ``neighbor_list`` (cell-list binning, all periodic
images).

References
----------
.. [1] arXiv:2111.07452 (silica glass configurations as networks compared with the D-measure).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from reprs.atoms import as_atoms
from reprs.errors import InputError, InputTypeError
from reprs.structure import CRYSTAL_REFERENCES, crystal_reference, rdf, rdf_first_minimum

__all__ = [
    "CRYSTAL_REFERENCES",
    "network",
    "partial_rdf",
    "rdf_first_minimum",
    "node_degrees",
    "coordination_statistics",
    "bridging_fractions",
    "local_environment",
    "local_environments",
    "crystal_reference",
]

Pair = tuple[str, str]


# --- structures and cutoffs --------------------------------------------------------------------


def _prepared_atoms(structure: Any, pbc: bool | Sequence[bool] | None):
    """ase.Atoms with the requested periodicity, validated (:func:`reprs.atoms.as_atoms`): non-finite
    positions raise, and so does a periodic direction without a cell."""
    from ase import Atoms

    atoms = structure
    if pbc is not None:  # the requested periodicity is the one to validate
        atoms = (structure if isinstance(structure, Atoms) else as_atoms(structure)).copy()
        atoms.pbc = pbc
    return as_atoms(atoms)


def _symbols(atoms) -> np.ndarray:
    return np.array(atoms.get_chemical_symbols())


def _check_pair(pair: Any, present: set[str]) -> Pair:
    if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
        raise InputTypeError(f"a species pair must be a tuple of two symbols, got {pair!r}")
    absent = [s for s in pair if s not in present]
    if absent:
        raise InputError(
            f"species {absent} of pair {pair} not in the structure; present: {sorted(map(str, present))}"
        )
    return pair


def partial_rdf(
    structures: Any | Iterable[Any],
    pair: Pair,
    *,
    r_max: float = 6.0,
    bins: int = 300,
    pbc: bool | Sequence[bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Partial radial distribution function g_ab(r), averaged over frames.

    :func:`reprs.structure.rdf` on ASE or pymatgen input; its docstring states the normalisation
    (Faber-Ziman for two species, ``N_b - 1`` neighbours for like pairs, so g -> 1 at large r).

    Parameters
    ----------
    structures : ase.Atoms, pymatgen Structure, or an iterable of them
        Periodic configurations (a volume is needed).
    pair : (str, str)
        Centre and neighbour species, e.g. ``("Si", "O")``.
    r_max : float, optional
        Largest distance, Å.
    bins : int, optional
        Number of bins of width ``r_max / bins`` Å.
    pbc : bool or sequence of 3 bool, optional
        Override the structures' periodicity.

    Returns
    -------
    r, g : numpy.ndarray
        Bin centres (Å) and g_ab(r), shape ``(bins,)``.

    Raises
    ------
    MissingCellError
        If a frame has no cell (the density is undefined).
    InputError
        For an unknown species, ``r_max <= 0`` or ``bins < 1``.
    """
    frames = [_prepared_atoms(frame, pbc) for frame in _frames(structures)]
    for atoms in frames:
        _check_pair(pair, set(_symbols(atoms)))
    result = rdf(frames, r_max=r_max, bins=bins, species=pair)
    return result.r, result.g


def _frames(structures: Any) -> list[Any]:
    from ase import Atoms

    if isinstance(structures, Atoms) or hasattr(structures, "sites"):  # one ASE/pymatgen object
        return [structures]
    frames = list(structures)
    if not frames:
        raise InputError("no structures given")
    return frames


def _resolve_cutoffs(
    atoms, cutoffs: Mapping[Pair, float | Literal["rdf"]], rdf_options: Mapping[str, Any]
) -> dict[Pair, float]:
    if not isinstance(cutoffs, Mapping) or not cutoffs:
        raise InputTypeError(
            "cutoffs must be a non-empty mapping {(species, species): radius in Å or 'rdf'}, "
            f"got {cutoffs!r}"
        )
    present = set(_symbols(atoms))
    resolved: dict[Pair, float] = {}
    for pair, value in cutoffs.items():
        a, b = _check_pair(pair, present)
        if isinstance(value, str):
            if value != "rdf":
                raise InputError(
                    f"cutoff for {pair} must be a radius in Å or 'rdf', got {value!r}"
                )
            try:
                radius = rdf_first_minimum(*partial_rdf(atoms, (a, b), **rdf_options))
            except InputError as err:
                raise InputError(
                    f"cutoff 'rdf' for {pair}: {err}; e.g. cutoffs={{{pair!r}: 2.0}} (Å)"
                ) from err
        else:
            radius = float(value)
            if not (math.isfinite(radius) and radius > 0):
                raise InputError(
                    f"cutoff for {pair} must be a positive radius in Å, got {value!r}"
                )
        key = tuple(sorted((a, b)))
        if key in resolved and resolved[key] != radius:
            raise InputError(f"conflicting cutoffs for {key}: {resolved[key]} and {radius} Å")
        resolved[key] = radius  # type: ignore[index]
    return resolved


# --- networks ----------------------------------------------------------------------------------


def network(
    structure: Any,
    cutoffs: Mapping[Pair, float | Literal["rdf"]],
    *,
    bridge: str | None = None,
    pbc: bool | Sequence[bool] | None = None,
    name: str | None = None,
    rdf_options: Mapping[str, Any] | None = None,
) -> nx.Graph:
    """Bond network of an atomistic configuration under periodic boundaries.

    Parameters
    ----------
    structure : ase.Atoms or pymatgen Structure/Molecule
        The configuration (not modified).
    cutoffs : mapping {(species, species): float or "rdf"}
        Bond cutoff per unordered species pair, Å; pairs not listed are never bonded.
        ``"rdf"`` takes the first minimum of this structure's partial RDF
        (:func:`partial_rdf` with ``rdf_options``, then :func:`rdf_first_minimum`); the value
        used is in the returned graph's ``"cutoffs"``.
    bridge : str, optional
        If given (e.g. ``"O"``), return the cation network instead: only atoms of the other
        species, two of them joined when they are both bonded to one atom of species ``bridge``
        (Si-O-Si becomes Si-Si). Only cation-``bridge`` cutoffs are used, so a cutoff of another
        pair (Si-Si, O-O) is refused. Edge ``"n_bridges"`` counts the shared bridges (2 for an
        edge-sharing pair), ``"bridges"`` lists them, ``"length"`` is the cation-cation
        distance through the first bridge, Å.
    pbc : bool or sequence of 3 bool, optional
        Periodicity; default: the structure's own (``Structure``: periodic; ``Molecule``: not).
    name : str, optional
        Graph ``"name"``; default ``atoms.info["name"]`` or the chemical formula.
    rdf_options : mapping, optional
        Keyword arguments of :func:`partial_rdf` for ``"rdf"`` cutoffs (``r_max``, ``bins``).

    Returns
    -------
    networkx.Graph
        Nodes are atom indices of the input (all atoms, or the non-bridge atoms).

    Raises
    ------
    MissingCellError
        If periodicity is requested along an axis without a cell vector.
    InputError
        For an unknown species, a non-positive cutoff, a ``bridge`` absent from the structure or
        with a cutoff of a pair that is not cation-``bridge``, an ``"rdf"`` cutoff whose g(r) has no
        minimum after its first peak (pass a cutoff in Å instead), or a cell so small that two
        atoms bond through more than one periodic image (or an atom to its own image): the
        network would misstate the topology, so repeat the cell (``atoms.repeat``) first.
    InputTypeError
        For an unsupported structure type or a malformed cutoff mapping.

    Example
    -------
    >>> quartz = crystal_reference("alpha-quartz", repeat=(2, 2, 2))
    >>> g = network(quartz, {("Si", "O"): 2.0})
    >>> g.number_of_nodes(), g.number_of_edges()
    (72, 96)
    >>> network(quartz, {("Si", "O"): 2.0}, bridge="O").number_of_edges()
    48
    """
    from ase.neighborlist import neighbor_list

    atoms = _prepared_atoms(structure, pbc)
    resolved = _resolve_cutoffs(atoms, cutoffs, rdf_options or {})
    symbols = _symbols(atoms)
    if bridge is not None:
        _check_bridge(bridge, symbols, resolved)
    i, j, d, vectors = neighbor_list("ijdD", atoms, dict(resolved))
    _check_single_image(i, j, len(atoms))
    half = i < j
    label = name if name is not None else atoms.info.get("name", atoms.get_chemical_formula())
    graph = nx.Graph(name=str(label), cutoffs=resolved, bridge=bridge)
    numbers = atoms.numbers
    positions = atoms.positions
    if bridge is None:
        nodes = np.arange(len(atoms))
        _add_atom_nodes(graph, nodes, symbols, numbers, positions)
        pair_labels = ["-".join(sorted(p)) for p in zip(symbols[i[half]], symbols[j[half]])]
        graph.add_edges_from(
            (int(u), int(v), {"length": float(r), "label": lab, "x": np.array([r])})
            for u, v, r, lab in zip(i[half], j[half], d[half], pair_labels)
        )
        return graph
    nodes = np.flatnonzero(symbols != bridge)
    _add_atom_nodes(graph, nodes, symbols, numbers, positions)
    _add_bridged_edges(graph, i, j, vectors, symbols, bridge)
    return graph


def _check_bridge(bridge: str, symbols: np.ndarray, cutoffs: Mapping[Pair, float]) -> None:
    """Refuse a bridge species absent from the structure, and cutoffs of pairs that are not
    bridge-cation bonds: the cation network is built from those bonds only, so a Si-Si or O-O
    cutoff would be ignored without a word."""
    if bridge not in set(symbols):
        raise InputError(f"bridge species {bridge!r} not in the structure; present: "
                         f"{sorted(set(symbols.tolist()))}")
    unused = [pair for pair in cutoffs if pair.count(bridge) != 1]
    if unused:
        shown = ", ".join("-".join(pair) for pair in unused)
        raise InputError(
            f"cutoffs for {shown}: with bridge={bridge!r} two cations are joined when both bond to one "
            f"{bridge} atom, so only cation-{bridge} cutoffs are used; leave the others out, or build the "
            "atom network (bridge=None) to bond these pairs directly"
        )


def _check_single_image(i: np.ndarray, j: np.ndarray, n_atoms: int) -> None:
    """Refuse bonds to an atom's own image and pairs bonded through several images."""
    if np.any(i == j):
        raise InputError(
            f"atom {int(i[np.argmax(i == j)])} is bonded to its own periodic image: the cell is "
            "too small for the cutoffs; repeat it (atoms.repeat) before building the network"
        )
    unique, counts = np.unique(i.astype(np.int64) * n_atoms + j, return_counts=True)
    if np.any(counts > 1):
        key = int(unique[np.argmax(counts > 1)])
        raise InputError(
            f"atoms {key // n_atoms} and {key % n_atoms} are bonded through {counts.max()} "
            "periodic images: the cell is too small for the cutoffs; repeat it (atoms.repeat) first"
        )


def _add_atom_nodes(graph, nodes, symbols, numbers, positions) -> None:
    graph.add_nodes_from(
        (
            int(k),
            {
                "label": str(symbols[k]),
                "element": str(symbols[k]),
                "index": int(k),
                "position": positions[k].copy(),
                "x": np.array([float(numbers[k])]),
            },
        )
        for k in nodes
    )


def _add_bridged_edges(graph, i, j, vectors, symbols, bridge: str) -> None:
    """Join cations sharing a bridge, vectorised over all (cation, bridge, cation) triples."""
    keep = (symbols[i] == bridge) & (symbols[j] != bridge)
    b, c, vec = i[keep], j[keep], vectors[keep]  # bridge b -> cation c, vector b->c (Å)
    order = np.lexsort((c, b))
    b, c, vec = b[order], c[order], vec[order]
    # For every bond k, pair it with the later bonds of the same bridge (a ragged arange).
    group_end = np.searchsorted(b, b, side="right")
    partners = group_end - np.arange(len(b)) - 1
    left = np.repeat(np.arange(len(b)), partners)
    offsets = np.arange(len(left)) - np.repeat(np.cumsum(partners) - partners, partners)
    right = left + 1 + offsets
    u, v = c[left], c[right]
    lengths = np.linalg.norm(vec[right] - vec[left], axis=1)
    bridges = b[left]
    if len(u) and np.any(u == v):
        raise InputError(
            f"atom {int(u[np.argmax(u == v)])} is bridged to its own periodic image: the cell is "
            "too small; repeat it (atoms.repeat) first"
        )
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    keys = lo.astype(np.int64) * len(symbols) + hi
    _, first, inverse, counts = np.unique(
        keys, return_index=True, return_inverse=True, return_counts=True
    )
    # Bridges of one pair must join the same two images: lo -> hi vectors agree.
    link = (vec[right] - vec[left]) * np.where(u < v, 1.0, -1.0)[:, None]
    mismatch = np.linalg.norm(link - link[first][inverse], axis=1) > 1e-6
    if np.any(mismatch):
        k = int(first[inverse[np.argmax(mismatch)]])
        raise InputError(
            f"atoms {int(lo[k])} and {int(hi[k])} are bridged through different periodic images: "
            "the cell is too small; repeat it (atoms.repeat) first"
        )
    shared_bridges = np.split(bridges[np.argsort(inverse, kind="stable")], np.cumsum(counts)[:-1])
    for k, shared in zip(first, shared_bridges):  # one pass per edge to attach its attributes
        a, z = str(symbols[lo[k]]), str(symbols[hi[k]])
        graph.add_edge(
            int(lo[k]),
            int(hi[k]),
            length=float(lengths[k]),
            label=f"{a}-{bridge}-{z}",
            x=np.array([lengths[k]]),
            n_bridges=len(shared),
            bridges=[int(s) for s in np.sort(shared)],
        )


# --- statistics --------------------------------------------------------------------------------


def node_degrees(graph: nx.Graph, element: str, neighbour: str | None = None) -> np.ndarray:
    """Degree of each ``element`` node of a network (edges to ``neighbour`` nodes, or to any).

    This counts edges, not distances: on a bond network it equals
    :func:`reprs.structure.coordination_numbers` of the atoms with the same cutoff, and it also
    answers for what has no distance rule, such as a cation network (Si-Si through bridges:
    ``bridge="O"``) or a graph edited after it was built.

    Parameters
    ----------
    graph : networkx.Graph
        A network from :func:`network` (node attribute ``"element"``).
    element : str
        Central species.
    neighbour : str, optional
        Count only edges to nodes of this species.

    Returns
    -------
    numpy.ndarray
        Integer array, one entry per ``element`` node, in node order.

    Raises
    ------
    InputError
        If no node has species ``element``.
    """
    nodes, elements, adjacency = _arrays(graph)
    centres = np.flatnonzero(elements == element)
    if not len(centres):
        raise InputError(f"no {element!r} atoms in the network; present: {sorted(set(elements))}")
    if neighbour is not None:
        adjacency = adjacency @ sp.diags_array((elements == neighbour).astype(float))
    return np.asarray(adjacency[centres].sum(axis=1)).astype(int).ravel()


def coordination_statistics(
    graph: nx.Graph, neighbour: str | None = None
) -> dict[str, dict[int, float]]:
    """Fraction of atoms of each species with each coordination number.

    Parameters
    ----------
    graph : networkx.Graph
        A network from :func:`network`.
    neighbour : str, optional
        Count only neighbours of this species.

    Returns
    -------
    dict
        ``{element: {coordination number: fraction}}``, fractions of each element summing to 1.

    Example
    -------
    >>> g = network(crystal_reference("coesite"), {("Si", "O"): 2.0})
    >>> coordination_statistics(g)
    {'O': {2: 1.0}, 'Si': {4: 1.0}}
    """
    _, elements, _ = _arrays(graph)
    out: dict[str, dict[int, float]] = {}
    for element in sorted(set(elements)):  # a loop over species
        cn = node_degrees(graph, element, neighbour)
        values, counts = np.unique(cn, return_counts=True)
        out[str(element)] = {int(v): float(c) / len(cn) for v, c in zip(values, counts)}
    return out


def bridging_fractions(
    graph: nx.Graph, anion: str = "O", formers: Sequence[str] | None = None
) -> dict[str, float]:
    """Fractions of anions bonded to 0, 1, 2 and more than 2 network formers.

    In silica: ``"bridging"`` O join two Si, ``"non_bridging"`` O hang on one, ``"free"`` O have
    none, and ``"overcoordinated"`` O (triclusters) bond to three or more.

    Parameters
    ----------
    graph : networkx.Graph
        A bond network from :func:`network` (not a cation network).
    anion : str, optional
        The bridging species.
    formers : sequence of str, optional
        Network-former species; default: every species other than ``anion``.

    Returns
    -------
    dict
        Keys ``"free"``, ``"non_bridging"``, ``"bridging"``, ``"overcoordinated"``; values sum
        to 1.

    Raises
    ------
    InputError
        If the network has no ``anion`` atoms.
    """
    _, elements, adjacency = _arrays(graph)
    is_former = (
        np.isin(elements, list(formers)) if formers is not None else elements != anion
    )
    anions = np.flatnonzero(elements == anion)
    if not len(anions):
        raise InputError(f"no {anion!r} atoms in the network; present: {sorted(set(elements))}")
    n_formers = np.asarray(adjacency[anions] @ is_former.astype(float)).astype(int)
    counts = np.bincount(np.minimum(n_formers, 3), minlength=4) / len(anions)
    return dict(zip(("free", "non_bridging", "bridging", "overcoordinated"), counts.tolist()))


def _arrays(graph: nx.Graph) -> tuple[list, np.ndarray, sp.csr_array]:
    if not isinstance(graph, nx.Graph) or graph.number_of_nodes() == 0:
        raise InputError("expected a non-empty networkx.Graph from reprs.glass.network")
    nodes = list(graph.nodes())
    try:
        elements = np.array([graph.nodes[n]["element"] for n in nodes])
    except KeyError:
        raise InputError(
            "graph nodes lack the 'element' attribute; build the graph with network()"
        ) from None
    adjacency = nx.to_scipy_sparse_array(graph, nodelist=nodes, weight=None, format="csr")
    return nodes, elements, adjacency


# --- local environments ------------------------------------------------------------------------


def local_environments(
    graph: nx.Graph, k: int, centers: Iterable[Any] | None = None, *, element: str | None = None
) -> list[nx.Graph]:
    """Subgraphs induced by the atoms within ``k`` bonds of each centre.

    Each returned graph is a copy with graph attributes ``"center"`` and ``"k"``, node attribute
    ``"shell"`` (bonds from the centre) and ``"name"`` ``"<name>:<center>:k<k>"``. In a periodic
    configuration the shell must not reach the centre's own image, so the cell should be wider
    than about ``2 k`` bond lengths (repeat crystal cells; see :func:`crystal_reference`).

    Parameters
    ----------
    graph : networkx.Graph
        A network from :func:`network`.
    k : int
        Radius in bonds (``k >= 0``).
    centers : iterable of nodes, optional
        Centre atoms; default all nodes (or all of species ``element``).
    element : str, optional
        Take every node of this species as a centre.

    Returns
    -------
    list of networkx.Graph

    Raises
    ------
    InputError
        For ``k < 0``, an unknown centre, or no centre at all.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise InputError(f"k must be an integer >= 0 (bonds), got {k!r}")
    nodes, elements, adjacency = _arrays(graph)
    position = {n: p for p, n in enumerate(nodes)}
    if centers is None:
        rows = np.flatnonzero(elements == element) if element is not None else np.arange(len(nodes))
    else:
        centers = list(centers)  # read twice below: a generator would be empty the second time
        unknown = [c for c in centers if c not in position]
        if unknown:
            raise InputError(f"centre(s) {unknown[:5]} are not nodes of the graph")
        rows = np.array([position[c] for c in centers], dtype=int)
    if not len(rows):
        raise InputError(f"no centres selected (element={element!r})")
    # Depth-limited searches from all centres at once (C loops in scipy).
    shells = csgraph.dijkstra(
        adjacency, directed=False, unweighted=True, indices=rows, limit=k + 0.5
    )
    name = graph.graph.get("name", "")
    out = []
    for row, shell in zip(rows, shells):  # a loop over the returned graphs
        members = np.flatnonzero(np.isfinite(shell))
        sub = graph.subgraph([nodes[m] for m in members]).copy()
        nx.set_node_attributes(sub, {nodes[m]: int(shell[m]) for m in members}, "shell")
        sub.graph.update(center=nodes[row], k=int(k), name=f"{name}:{nodes[row]}:k{k}")
        out.append(sub)
    return out


def local_environment(graph: nx.Graph, center: Any, k: int) -> nx.Graph:
    """The subgraph within ``k`` bonds of one atom; see :func:`local_environments`.

    Example
    -------
    >>> g = network(crystal_reference("beta-cristobalite", repeat=(2, 2, 2)), {("Si", "O"): 2.0})
    >>> env = local_environment(g, 0, 2)  # Si, its 4 O and their 4 other Si
    >>> sorted(nx.get_node_attributes(env, "element").values()).count("Si")
    5
    """
    return local_environments(graph, k, [center])[0]
