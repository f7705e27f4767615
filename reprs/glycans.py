"""Glycans as macromolecule graphs.

:func:`glycan_graph` turns an IUPAC-condensed glycan (glycowork's dialect, or the older GlycoBase
spelling of the GLAMOUR tables) into a directed graph: one node per monosaccharide, one edge per
glycosidic bond pointing from the child (non-reducing side) to its parent. Node features are Morgan
fingerprints of the monosaccharide SMILES, edge features a Morgan fingerprint of the bond fragment
plus an encoding of the carbon positions, following GLAMOUR (arXiv:2103.02565).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import networkx as nx
import numpy as np

from reprs.errors import GlycanParseError, InputError, InputTypeError
from reprs.iupac import Linkage, ParsedGlycan, parse_iupac, write_iupac
from reprs.macromolecules import macromolecule_graph, monomer_fingerprint
from reprs.monomers import MonomerLibrary, glycan_library

__all__ = ["glycan_graph", "glycan_string", "linkage_features", "BOND_SMILES", "N_POSITIONS"]

#: Bond fragments by anomeric state, the three bond types of GLAMOUR's glycan bond table:
#: the anomeric carbon with its ring neighbour and the glycosidic oxygen, alpha / beta / unknown.
BOND_SMILES = {"a": "C[C@H](OC)CC", "b": "C[C@@H](OC)CC", "?": "CC(OC)CC", "": "CC(OC)CC"}
#: Carbon positions encoded on edges: slot 0 = unknown ('?'), slots 1..11 = carbon number.
N_POSITIONS = 12


def _positions(values: tuple[str, ...]) -> np.ndarray:
    encoding = np.zeros(N_POSITIONS)
    for value in values:
        slot = 0 if value == "?" else int(value)
        encoding[slot if slot < N_POSITIONS else 0] = 1.0
    return encoding


@lru_cache(maxsize=4096)
def linkage_features(link: Linkage, linkage: str = "full") -> np.ndarray:
    """Feature vector of a glycosidic bond.

    Parameters
    ----------
    link : Linkage
        The parsed linkage.
    linkage : {"full", "anomer"}
        ``"anomer"``: the 16-bit Morgan fingerprint (radius 3, chirality) of the alpha/beta/unknown
        bond fragment only, as GLAMOUR. ``"full"``: that fingerprint followed by a one-hot donor
        carbon and a multi-hot acceptor carbon (``N_POSITIONS`` slots each; slot 0 = unknown,
        ambiguous acceptors such as ``3/6`` set every candidate).

    Returns
    -------
    numpy.ndarray
        Read-only (cached), length 16 (``"anomer"``) or 16 + 2 * N_POSITIONS (``"full"``).
    """
    fragment = monomer_fingerprint(BOND_SMILES[link.anomer], 3, 16)
    if linkage == "anomer":
        return fragment
    features = np.concatenate([fragment, _positions((link.donor,)), _positions(link.acceptor)])
    features.setflags(write=False)
    return features


def _edge_attributes(link: Linkage, linkage: str) -> dict[str, Any]:
    return {
        "label": (link.anomer or "-") if linkage == "anomer" else str(link),
        "linkage": str(link),
        "anomer": link.anomer,
        "donor_pos": link.donor,
        "acceptor_pos": "/".join(link.acceptor),
        "x": linkage_features(link, linkage),
    }


def glycan_graph(
    glycan: str,
    *,
    fingerprint: Any = None,
    linkage: str = "full",
    library: MonomerLibrary | None = None,
    on_unknown: str = "raise",
) -> nx.DiGraph:
    """Build the macromolecule graph of a glycan.

    Parameters
    ----------
    glycan : str
        IUPAC-condensed glycan, reducing end last, e.g.
        ``"Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc"``. Older GlycoBase names (``NeuNAc``,
        ``ManOP``) are accepted through the library's aliases and rules.
    fingerprint : featurizer or callable, optional
        Monomer SMILES -> feature vector; default Morgan with chirality, radius 3, 128 bits
        (GLAMOUR's choice).
    linkage : {"full", "anomer"}
        ``"full"`` (default): edge ``label`` is the whole linkage (``"b1-4"``) and ``x`` encodes the
        positions too. ``"anomer"``: GLAMOUR's convention exactly, edge ``label`` is the anomeric
        state only (``"a"``, ``"b"``, ``"?"``; ``"-"`` for non-glycosidic bonds) and ``x`` the
        16-bit bond fingerprint.
    library : MonomerLibrary, optional
        Monomer names -> SMILES; default :func:`reprs.monomers.glycan_library`.
    on_unknown : {"raise", "zero"}
        Unresolvable monomers raise :class:`~reprs.errors.UnknownMonomerError` (default) or get
        a zero vector and are listed in ``G.graph["unknown_monomers"]``.

    Returns
    -------
    networkx.DiGraph
        Nodes ``0..n-1`` in the order the residues appear in the string (the reducing end is the
        last, ``G.graph["root"]``), with attributes ``label``, ``smiles``, ``x``; edges
        child -> parent with ``label``, ``linkage``, ``anomer``, ``donor_pos``, ``acceptor_pos``
        (strings, ``"?"`` unknown; alternatives such as ``3/6`` in ascending order) and ``x``.
        Floating substituents (``{...}``, parent unknown) are nodes without edges, flagged ``floating=True`` with their
        ``linkage``; the graph is then disconnected on purpose.

    Raises
    ------
    GlycanParseError
        For malformed strings (the message names the position).
    UnknownMonomerError
        For an unknown monosaccharide when ``on_unknown="raise"``.

    Example
    -------
    >>> G = glycan_graph("Gal(b1-4)GlcNAc")
    >>> [G.nodes[n]["label"] for n in G], G.edges[0, 1]["label"], G.nodes[0]["x"].shape
    (['Gal', 'GlcNAc'], 'b1-4', (128,))
    """
    if not isinstance(glycan, str):
        raise InputTypeError(f"glycan must be an IUPAC-condensed str, got {type(glycan).__name__}")
    if linkage not in ("full", "anomer"):
        raise InputError(f"linkage must be 'full' or 'anomer', got {linkage!r}")
    parsed = parse_iupac(glycan)
    library = library or glycan_library()
    _check_positions(glycan, parsed, library)
    bonds = [(child, parent, _edge_attributes(link, linkage)) for child, parent, link in parsed.bonds]
    graph = macromolecule_graph(
        parsed.residues,
        bonds,
        library,
        fingerprint=fingerprint,
        on_unknown=on_unknown,
        name=glycan,
    )
    graph.graph["root"] = parsed.root
    for child, link in parsed.floating:
        graph.nodes[child].update(floating=True, linkage=str(link))
    return graph


@lru_cache(maxsize=4096)
def carbon_count(smiles: str) -> int:
    """Highest carbon number a linkage may name on a monomer: its backbone and N-acyl carbons.

    The carbons joined by C-C bonds (the backbone; alditols and inositols included), together
    with those of acyl groups on its nitrogens, which sialic-acid nomenclature numbers on from
    the backbone: Neu5Gc's glycolyl hydroxyl is O-11 (``Neu5Gc(a2-11)Neu5Gc`` in echinoderm
    gangliosides). So 5 for a pentose, 6 for a hexose, 8 for GlcNAc, 11 for Neu5Ac and Neu5Gc.
    Substituents bonded through oxygen (O-methyl, O-acetyl, sulfate) do not count.

    Parameters
    ----------
    smiles : str
        The monomer's SMILES (from the monomer library).

    Returns
    -------
    int
        0 for a monomer without carbon (sulfate, phosphate).
    """
    from rdkit import Chem
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise InputError(f"invalid monomer SMILES {smiles!r}")
    element = np.array([atom.GetAtomicNum() for atom in mol.GetAtoms()])
    if not (element == 6).any():
        return 0
    skeleton = np.isin(element, (6, 7))  # carbon and nitrogen: backbone and N-acyl groups
    pairs = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()], dtype=int)
    pairs = pairs.reshape(-1, 2)
    pairs = pairs[skeleton[pairs].all(axis=1)]
    n = len(element)
    graph = coo_array((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    return int(np.bincount(component[element == 6]).max())


def _check_positions(glycan: str, parsed: ParsedGlycan, library: MonomerLibrary) -> None:
    """Refuse a linkage position beyond its residue's carbons (``Gal(b1-99)GlcNAc``).

    Residues the library cannot resolve, and residues without carbon, are not checked.
    """
    counts = []
    for name in parsed.residues:
        smiles = library.resolve(name)
        counts.append(carbon_count(smiles) if smiles else 0)
    links = [(child, parent, link) for child, parent, link in parsed.bonds]
    links += [(child, None, link) for child, link in parsed.floating]
    for child, parent, link in links:
        # The linkage text follows its child residue: "(" anomer donor "-" acceptor/acceptor...
        start = parsed.offsets[child] + len(parsed.residues[child]) + 1 + len(link.anomer)
        places = [(child, link.donor, start, "donor")]
        offset = start + len(link.donor) + 1
        for value in glycan[offset:glycan.index(")", offset)].split("/"):  # as written, for the positions
            if parent is not None:
                places.append((parent, value, offset, "acceptor"))
            offset += len(value) + 1
        for residue, value, position, role in places:
            carbons = counts[residue]
            if value != "?" and carbons and not 1 <= int(value) <= carbons:
                name = parsed.residues[residue]
                raise GlycanParseError(
                    f"linkage position {value} of {role} residue '{name}' is beyond its carbons: "
                    f"'{name}' has carbons 1-{carbons} (backbone and N-acyl)",
                    glycan,
                    position,
                )


def glycan_string(graph: nx.DiGraph) -> str:
    """Write a glycan graph back as a canonical IUPAC-condensed string.

    Isomorphic glycans (same residues, same linkages, branches in any order) give the same
    string, so ``glycan_string(glycan_graph(s))`` is a canonical form of ``s``.

    Raises
    ------
    InputError
        If the graph is not a glycan tree (no single reducing end, a residue with two parents).
    """
    nodes = list(graph.nodes)
    index = {node: i for i, node in enumerate(nodes)}
    floating = [
        (index[n], Linkage.parse(graph.nodes[n]["linkage"]))
        for n in nodes
        if graph.nodes[n].get("floating")
    ]
    floating_ids = {i for i, _ in floating}
    roots = [n for n in nodes if graph.out_degree(n) == 0 and index[n] not in floating_ids]
    if len(roots) != 1 or any(graph.out_degree(n) > 1 for n in nodes):
        raise InputError(
            "graph is not a glycan tree: it needs exactly one reducing end (found "
            f"{len(roots)}) and at most one parent per residue"
        )
    bonds = [(index[c], index[p], Linkage.parse(d["linkage"])) for c, p, d in graph.edges(data=True)]
    names = [graph.nodes[n]["label"] for n in nodes]
    return write_iupac(names, bonds, index[roots[0]], floating)


def build_glycan_graphs(glycans, *, errors: str = "raise", progress: bool = False,
                        **options) -> tuple[list, list[tuple[int, str]]]:
    """Build graphs for many glycan strings.

    Parameters
    ----------
    glycans : iterable of str
        IUPAC-condensed glycans.
    errors : {"raise", "skip"}
        Raise on the first bad string, or skip it and record ``(row, message)`` in the failures.
    progress : bool
        Draw a progress bar (tqdm, on stderr) over the glycans.
    **options
        Passed to :func:`glycan_graph` (``linkage``, ``on_unknown``, ``fingerprint``, ``library``).

    Returns
    -------
    graphs : list of networkx.DiGraph or None
        One entry per input, None where it failed (only with ``errors="skip"``).
    failures : list of (int, str)
        Row and error message of each failure.
    """
    from reprs.errors import MatrepError

    if errors not in ("raise", "skip"):
        raise InputError(f"errors must be 'raise' or 'skip', got {errors!r}")
    if progress:
        from tqdm.auto import tqdm

        glycans = tqdm(glycans, desc="glycan graphs", unit="glycan")
    graphs, failures = [], []
    for row, glycan in enumerate(glycans):
        try:
            graphs.append(glycan_graph(glycan, **options))
        except MatrepError as err:
            if errors == "raise":
                raise
            graphs.append(None)
            failures.append((row, str(err).splitlines()[0]))
    return graphs, failures


def glycan_coverage(glycans, library: MonomerLibrary | None = None) -> dict[str, Any]:
    """How much of a glycan collection the monomer library resolves.

    Returns
    -------
    dict
        ``n_glycans``, ``n_parsed`` (well-formed strings), ``n_resolved`` (glycans whose every
        monomer resolves), ``n_buildable`` (of those, the glycans whose linkage positions all
        exist on their residues: what :func:`glycan_graph` builds), ``glycan_coverage``
        (= n_resolved / n_parsed), ``n_monomers`` (distinct names), ``n_monomers_resolved``,
        ``unresolved`` (name -> number of glycans using it, most used first).
    """
    from reprs.errors import ParseError

    library = library or glycan_library()
    residue_sets, parsed_glycans = [], []
    n_glycans = 0
    for glycan in glycans:
        n_glycans += 1
        try:
            parsed = parse_iupac(glycan)
        except ParseError:
            continue
        residue_sets.append(set(parsed.residues))
        parsed_glycans.append((glycan, parsed))
    names = set().union(*residue_sets) if residue_sets else set()
    known = {name for name in names if name in library}
    usage: dict[str, int] = {}
    for residues in residue_sets:
        for name in residues - known:
            usage[name] = usage.get(name, 0) + 1
    n_resolved = sum(residues <= known for residues in residue_sets)
    n_buildable = 0
    for residues, (glycan, parsed) in zip(residue_sets, parsed_glycans):
        if residues <= known:
            try:
                _check_positions(glycan, parsed, library)
            except GlycanParseError:
                continue
            n_buildable += 1
    return {
        "n_glycans": n_glycans,
        "n_parsed": len(residue_sets),
        "n_resolved": n_resolved,
        "n_buildable": n_buildable,
        "glycan_coverage": n_resolved / len(residue_sets) if residue_sets else float("nan"),
        "n_monomers": len(names),
        "n_monomers_resolved": len(known),
        "unresolved": dict(sorted(usage.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def write_glycan_monomer_table(path=None) -> dict[str, str]:
    """Regenerate the bundled monomer table from every monomer of glycowork's glycans.

    Each name is resolved afresh (GlyLES, then our modification rules); names that do not resolve
    are written with an empty SMILES so that the library does not retry them. The file is
    written atomically; default path: the bundled ``reprs/data/glycan_monomers.csv``.
    """
    import csv
    import io
    from importlib import resources

    from reprs.glycan_taxonomy import load_glycans
    from reprs.fileio import atomic_write
    from reprs.monomers import GLYCAN_TABLE, build_glycan_table

    names = set()
    for glycan in load_glycans(level="Domain")["glycan"]:
        names.update(parse_iupac(glycan).residues)
    table = build_glycan_table(names)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "smiles"])
    writer.writerows(sorted(table.items()))
    atomic_write(path or resources.files("reprs").joinpath("data", GLYCAN_TABLE), buffer.getvalue())
    return table


def glycan_dataset_summary(level: str = "Kingdom") -> dict[str, Any]:
    """Build graphs for every glycan of :func:`reprs.datasets.load_glycans` and summarise.

    Returns
    -------
    dict
        The keys of :func:`glycan_coverage` plus ``level``, ``n_graphs`` (built with
        ``on_unknown="raise"``, so glycans with unresolved monomers are not counted),
        ``graph_seconds``, ``mean_nodes``, ``max_nodes`` and ``classes`` (label -> count).
    """
    import time

    from reprs.glycan_taxonomy import load_glycans

    frame = load_glycans(level=level)
    start = time.perf_counter()
    graphs, _ = build_glycan_graphs(frame["glycan"], errors="skip")
    seconds = time.perf_counter() - start
    built = [g for g in graphs if g is not None]
    sizes = np.array([g.number_of_nodes() for g in built])
    summary = glycan_coverage(frame["glycan"])
    summary.update(
        level=level,
        n_graphs=len(built),
        graph_seconds=seconds,
        mean_nodes=float(sizes.mean()) if len(sizes) else 0.0,
        max_nodes=int(sizes.max()) if len(sizes) else 0,
        classes=frame["label"].value_counts().to_dict(),
    )
    return summary
