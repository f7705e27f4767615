"""Atomistic configurations as networks: bonds under periodic boundaries, glass statistics,
local environments and crystalline SiO2 references.

A configuration (``ase.Atoms`` or a pymatgen ``Structure``/``Molecule``) becomes a
``networkx.Graph`` whose nodes are atoms and whose edges are bonds: pairs of atoms closer than a
species-pair cutoff, periodic images included (arXiv:2111.07452 casts silica glass this way).
Cutoffs are given in Å or taken from the first minimum of the partial radial distribution
function. A cation-only network joins two cations that share a bridging anion (the Si-Si network
of silica through bridging oxygens). Coordination statistics, the bridging / non-bridging anion
fractions and the subgraph within ``k`` bonds of an atom ("local environment") are computed from
the network, and the three crystalline polymorphs that the glass is compared with (alpha-quartz,
beta-cristobalite, coesite) are built from their published crystal structures.

Graph conventions (matrep): node ``"label"`` = element symbol, node ``"x"`` = ``[Z]``, plus
``"element"``, ``"index"`` (atom index in the input) and ``"position"`` (Cartesian, Å); edge
``"length"`` (Å), ``"label"`` (e.g. ``"O-Si"``) and ``"x"`` = ``[length]``; graph ``"name"``,
``"cutoffs"`` (the cutoffs used, Å) and ``"bridge"``.

The neighbour search is ASE's vectorised ``neighbor_list`` (cell-list binning, all periodic
images).

References
----------
.. [1] arXiv:2111.07452 (silica glass configurations as networks compared with the D-measure).
.. [2] L. Levien, C. T. Prewitt, D. J. Weidner, Am. Mineral. 65, 920-930 (1980): alpha-quartz at
   1 atm (AMCSD 0000789).
.. [3] R. W. G. Wyckoff, Z. Kristallogr. 62, 189-200 (1925): ideal beta-cristobalite, Fd-3m.
.. [4] L. Levien, C. T. Prewitt, Am. Mineral. 66, 324-333 (1981): coesite at 1 atm, isotropic
   refinement (AMCSD 0000816).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from reprs.errors import InputError, InputTypeError, MissingCellError
from reprs.featurizers.inputs import as_atoms

__all__ = [
    "CRYSTAL_REFERENCES",
    "network",
    "partial_rdf",
    "rdf_first_minimum",
    "coordination_numbers",
    "coordination_statistics",
    "bridging_fractions",
    "local_environment",
    "local_environments",
    "crystal_reference",
]

#: Crystalline SiO2 polymorphs: space group (number, ASE setting), cell parameters
#: (a, b, c in Å; alpha, beta, gamma in degrees), asymmetric unit (species, fractional xyz),
#: published X-ray density (g/cm^3; AMCSD entries) and source.
CRYSTAL_REFERENCES: dict[str, dict[str, Any]] = {
    "alpha-quartz": {
        "spacegroup": 154,  # P3_221
        "setting": 1,
        "cellpar": (4.9160, 4.9160, 5.4054, 90.0, 90.0, 120.0),
        # Levien et al. give Si (0.4697, 0, 0) and O (0.4135, 0.2669, 0.1191) with the origin of
        # their symmetry operators (AMCSD 0000789); the International Tables origin used by ASE
        # is shifted by -1/3 along c (their 'y,x,2/3-z' is ITA's 'y,x,-z').
        "basis": (("Si", (0.4697, 0.0, 2.0 / 3.0)), ("O", (0.4135, 0.2669, 0.1191 - 1.0 / 3.0))),
        "density": 2.646,
        "source": "Levien, Prewitt & Weidner, Am. Mineral. 65, 920 (1980), P = 1 atm",
    },
    "beta-cristobalite": {
        "spacegroup": 227,  # Fd-3m, origin choice 1
        "setting": 1,
        "cellpar": (7.12, 7.12, 7.12, 90.0, 90.0, 90.0),
        # The ideal C9 model: Si on a diamond lattice, O midway (straight Si-O-Si). The real
        # high-temperature phase is disordered about it; a sets lengths only, not the network.
        "basis": (("Si", (0.0, 0.0, 0.0)), ("O", (0.125, 0.125, 0.125))),
        "density": None,  # no measured value goes with the ideal model (2.21 g/cm^3 from a)
        "source": "Wyckoff, Z. Kristallogr. 62, 189 (1925), ideal Fd-3m model",
    },
    "coesite": {
        "spacegroup": 15,  # C2/c, unique axis b
        "setting": 1,
        "cellpar": (7.1356, 12.3692, 7.1736, 90.0, 120.34, 90.0),
        "basis": (
            ("Si", (0.14033, 0.10833, 0.07227)),
            ("Si", (0.50682, 0.15799, 0.54077)),
            ("O", (0.0, 0.0, 0.0)),
            ("O", (0.5, 0.11630, 0.75)),
            ("O", (0.26600, 0.12340, 0.94010)),
            ("O", (0.31140, 0.10380, 0.32820)),
            ("O", (0.01720, 0.21170, 0.47820)),
        ),
        "density": 2.921,
        "source": "Levien & Prewitt, Am. Mineral. 66, 324 (1981), P = 1 atm",
    },
}

Pair = tuple[str, str]


# --- structures and cutoffs --------------------------------------------------------------------


def _prepared_atoms(structure: Any, pbc: bool | Sequence[bool] | None):
    """ase.Atoms with the requested periodicity; raise if a periodic direction has no cell."""
    atoms = as_atoms(structure)
    if pbc is not None:
        atoms = atoms.copy()
        atoms.pbc = pbc
    lengths = np.linalg.norm(np.asarray(atoms.cell), axis=1)
    missing = [axis for axis in range(3) if atoms.pbc[axis] and lengths[axis] == 0]
    if missing or (atoms.pbc.any() and atoms.cell.rank < atoms.pbc.sum()):
        raise MissingCellError(
            f"periodic boundaries requested along axes {np.flatnonzero(atoms.pbc).tolist()} but "
            f"the structure has no cell there (cell lengths {lengths.round(3).tolist()} Å); "
            "set a cell or pass pbc=False"
        )
    return atoms


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

    ``g_ab(r) = V n_ab(r) / (N_a N_b V_shell(r))`` (Faber-Ziman normalisation), with ``n_ab`` the
    number of (a, b) pairs (a != b atoms) whose distance falls in the shell, periodic images
    included (so ``r_max`` may exceed half the cell), and ``V_shell`` the exact shell volume.
    Frames are averaged with equal weight.

    Parameters
    ----------
    structures : ase.Atoms, pymatgen Structure, or an iterable of them
        Periodic configurations (a volume is needed).
    pair : (str, str)
        Species, e.g. ``("Si", "O")``.
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
    from ase.neighborlist import neighbor_list

    if not (math.isfinite(r_max) and r_max > 0) or int(bins) < 1:
        raise InputError(f"need r_max > 0 Å and bins >= 1, got r_max={r_max}, bins={bins}")
    frames = _frames(structures)
    edges = np.linspace(0.0, r_max, int(bins) + 1)
    shell = 4.0 / 3.0 * math.pi * np.diff(edges**3)
    g = np.zeros(int(bins))
    for frame in frames:  # a loop over frames; each frame is one vectorised neighbour search
        atoms = _prepared_atoms(frame, pbc)
        if atoms.cell.rank < 3:
            raise MissingCellError("partial_rdf needs a 3-D cell to define the density")
        symbols = _symbols(atoms)
        a, b = _check_pair(pair, set(symbols))
        i, j, d = neighbor_list("ijd", atoms, r_max)
        keep = (symbols[i] == a) & (symbols[j] == b)
        counts, _ = np.histogram(d[keep], bins=edges)
        n_a, n_b = np.count_nonzero(symbols == a), np.count_nonzero(symbols == b)
        g += atoms.cell.volume * counts / (n_a * n_b * shell)
    return 0.5 * (edges[1:] + edges[:-1]), g / len(frames)


def rdf_first_minimum(r: np.ndarray, g: np.ndarray, *, smooth: float = 0.1) -> float:
    """Position (Å) of the first minimum of g(r) after its first peak.

    g is smoothed by a moving average over ``smooth`` Å (statistical noise would otherwise make
    the first dip a minimum). The first peak is the first local maximum above the ideal-gas value
    1; the minimum is the first bin after it where the smoothed g stops decreasing. Where the
    minimum is flat (a crystal's empty gap between shells), the middle of the flat region is
    returned, i.e. the point farthest from both shells. The rule presumes a physical first
    shell (liquids, glasses, crystals); for structures without one, such as random points, the
    noise at small ``r`` makes the answer meaningless.

    Parameters
    ----------
    r, g : numpy.ndarray
        Bin centres (Å, evenly spaced) and g(r), as from :func:`partial_rdf`.
    smooth : float, optional
        Width of the moving average, Å (0 for none).

    Returns
    -------
    float
        Cutoff radius, Å.

    Raises
    ------
    InputError
        If g never exceeds 1 or has no minimum after its first peak within ``r``.
    """
    r = np.asarray(r, dtype=float)
    g = np.asarray(g, dtype=float)
    width = max(1, int(round(smooth / (r[1] - r[0])))) if smooth > 0 else 1
    gs = np.convolve(g, np.ones(width) / width, mode="same")
    above = np.flatnonzero(gs > 1.0)
    if not len(above):
        raise InputError("g(r) never exceeds 1: no coordination shell within r_max")
    start = above[0]
    rising = np.flatnonzero(np.diff(gs[start:]) < 0)  # first descent marks the first peak
    if not len(rising):
        raise InputError("g(r) has no maximum within r_max; increase r_max")
    peak = start + rising[0]
    climbs = np.flatnonzero(np.diff(gs[peak:]) > 0)
    if not len(climbs):
        raise InputError("g(r) has no minimum after its first peak within r_max; increase r_max")
    low = peak + climbs[0]  # last bin of the descent: the minimum
    tol = 1e-9 * max(1.0, gs[peak])
    flat = np.flatnonzero(np.abs(gs[peak : low + 1] - gs[low]) <= tol)
    first_flat = peak + flat[0]
    return float(0.5 * (r[first_flat] + r[low]))


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
            radius = rdf_first_minimum(*partial_rdf(atoms, (a, b), **rdf_options))
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
        (:func:`partial_rdf` with ``rdf_options``, then :func:`rdf_first_minimum`).
    bridge : str, optional
        If given (e.g. ``"O"``), return the cation network instead: only atoms of the other
        species, two of them joined when they are both bonded to one atom of species ``bridge``
        (Si-O-Si becomes Si-Si). Edge ``"n_bridges"`` counts the shared bridges (2 for an
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
        For an unknown species, a non-positive cutoff, or a cell so small that two atoms bond
        through more than one periodic image (or an atom to its own image): the network would
        misstate the topology, so repeat the cell (``atoms.repeat``) first.
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
    if bridge not in set(symbols):
        raise InputError(f"bridge species {bridge!r} not in the structure; present: "
                         f"{sorted(set(symbols.tolist()))}")
    nodes = np.flatnonzero(symbols != bridge)
    _add_atom_nodes(graph, nodes, symbols, numbers, positions)
    _add_bridged_edges(graph, i, j, vectors, symbols, bridge)
    return graph


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


def coordination_numbers(graph: nx.Graph, element: str, neighbour: str | None = None) -> np.ndarray:
    """Number of bonded neighbours (of species ``neighbour``, or any) of each ``element`` atom.

    Parameters
    ----------
    graph : networkx.Graph
        A network from :func:`network` (node attribute ``"element"``).
    element : str
        Central species.
    neighbour : str, optional
        Count only neighbours of this species.

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
        cn = coordination_numbers(graph, element, neighbour)
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


# --- crystal references ------------------------------------------------------------------------


def crystal_reference(name: str, *, repeat: tuple[int, int, int] = (1, 1, 1)):
    """A crystalline SiO2 polymorph from its published structure (see ``CRYSTAL_REFERENCES``).

    Parameters
    ----------
    name : {"alpha-quartz", "beta-cristobalite", "coesite"}
        Polymorph.
    repeat : tuple of 3 int, optional
        Supercell multiples of the conventional cell.

    Returns
    -------
    ase.Atoms
        Periodic structure; ``info["name"]`` and ``info["source"]`` say what it is.

    Raises
    ------
    InputError
        For an unknown name or a non-positive repeat.

    Example
    -------
    >>> atoms = crystal_reference("coesite")
    >>> atoms.get_chemical_formula(), round(float(atoms.get_volume()), 1)
    ('O32Si16', 546.4)
    """
    from ase.spacegroup import crystal

    if name not in CRYSTAL_REFERENCES:
        raise InputError(f"unknown polymorph {name!r}; known: {sorted(CRYSTAL_REFERENCES)}")
    reps = tuple(int(n) for n in repeat)
    if len(reps) != 3 or min(reps) < 1:
        raise InputError(f"repeat must be three positive integers, got {repeat!r}")
    data = CRYSTAL_REFERENCES[name]
    species, basis = zip(*data["basis"])
    atoms = crystal(
        list(species),
        basis=list(basis),
        spacegroup=data["spacegroup"],
        setting=data["setting"],
        cellpar=list(data["cellpar"]),
    ).repeat(reps)
    atoms.info.update(name=name, source=data["source"])
    return atoms
