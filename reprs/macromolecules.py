"""Macromolecule graphs: monomers as nodes, bonds between them as edges.

The representation of Mohapatra, An and Gomez-Bombarelli (GLAMOUR, arXiv:2103.02565): every
monomer is a node whose feature vector is a Morgan fingerprint of the monomer's SMILES, every bond
an edge (directed child -> parent) with its own features. :func:`macromolecule_graph` serves any
chemistry given a :class:`~reprs.monomers.MonomerLibrary`; :func:`peptide_graph` is the peptide
example and :func:`reprs.glycans.glycan_graph` the glycan one.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

import networkx as nx
import numpy as np

from reprs.errors import InputError
from reprs.monomers import MonomerLibrary, peptide_library

__all__ = ["macromolecule_graph", "peptide_graph", "monomer_fingerprint", "PEPTIDE_BOND_SMILES"]

#: Amide fragment for peptide bonds (C-alpha, carbonyl, N, C-alpha), the same role as GLAMOUR's
#: peptide bond SMILES.
PEPTIDE_BOND_SMILES = "CC(=O)NC"


@lru_cache(maxsize=None)
def monomer_fingerprint(smiles: str, radius: int = 3, n_bits: int = 128) -> np.ndarray:
    """Morgan fingerprint with chirality of a monomer SMILES, as GLAMOUR featurises nodes.

    Parameters
    ----------
    smiles : str
        Monomer SMILES.
    radius : int, default 3
        Morgan radius (GLAMOUR: 3).
    n_bits : int, default 128
        Fingerprint length (GLAMOUR: 128 for monomers, 16 for bonds).

    Returns
    -------
    numpy.ndarray
        Read-only float64 vector of 0/1, shape ``(n_bits,)``; shared between calls (cached).
    """
    from reprs.featurizers.fingerprints import morgan_fingerprint

    bits = morgan_fingerprint(smiles, radius=radius, n_bits=n_bits, chirality=True).astype(np.float64)
    bits.setflags(write=False)
    return bits


def _node_featurizer(fingerprint: Any) -> Callable[[str], np.ndarray]:
    if fingerprint is None:
        return monomer_fingerprint
    if hasattr(fingerprint, "featurize"):
        return lambda smiles: np.asarray(fingerprint.featurize(smiles), dtype=np.float64)
    if callable(fingerprint):
        return lambda smiles: np.asarray(fingerprint(smiles), dtype=np.float64)
    raise InputError(
        f"fingerprint must be None, a featurizer with .featurize(smiles) or a callable, got {fingerprint!r}"
    )


def macromolecule_graph(
    monomers: Sequence[str],
    bonds: Sequence[tuple[int, int, Mapping[str, Any]]],
    library: MonomerLibrary,
    *,
    fingerprint: Any = None,
    on_unknown: str = "raise",
    name: str | None = None,
) -> nx.DiGraph:
    """Build a macromolecule graph from monomer names and bonds.

    Parameters
    ----------
    monomers : sequence of str
        Monomer names, one node each (node ids are their indices).
    bonds : sequence of (child, parent, attributes)
        Directed bonds; ``attributes`` must hold at least ``"label"`` (str) and ``"x"`` (1-D
        array) and may hold more (copied onto the edge).
    library : MonomerLibrary
        Resolves monomer names to SMILES.
    fingerprint : featurizer or callable, optional
        Maps a monomer SMILES to its feature vector; default: Morgan with chirality, radius 3,
        128 bits (:func:`monomer_fingerprint`, as GLAMOUR).
    on_unknown : {"raise", "zero"}
        What to do with a monomer the library cannot resolve: raise
        :class:`~reprs.errors.UnknownMonomerError`, or give it a zero vector, ``smiles=None`` and
        list its name in ``G.graph["unknown_monomers"]``.
    name : str, optional
        Stored as ``G.graph["name"]``.

    Returns
    -------
    networkx.DiGraph
        Node attributes ``label``, ``smiles``, ``x``; edge attributes from ``bonds``.

    Raises
    ------
    InputError
        For an empty monomer list, a bond to a missing node, or a bad ``on_unknown``.
    UnknownMonomerError
        For an unresolvable monomer when ``on_unknown="raise"``.

    Example
    -------
    >>> G = peptide_graph("GA")
    >>> G.nodes[0]["label"], G.edges[0, 1]["label"]
    ('G', 'peptide')
    """
    if on_unknown not in ("raise", "zero"):
        raise InputError(f"on_unknown must be 'raise' or 'zero', got {on_unknown!r}")
    if len(monomers) == 0:
        raise InputError("a macromolecule needs at least one monomer; got none")
    featurize = _node_featurizer(fingerprint)
    graph = nx.DiGraph(name=name, unknown_monomers=[])
    width = None
    unknown_nodes = []
    for index, monomer in enumerate(monomers):
        smiles = library.resolve(monomer)
        if smiles is None:
            if on_unknown == "raise":
                library.smiles(monomer)  # raises with the library's message
            unknown_nodes.append(index)
            graph.graph["unknown_monomers"].append(monomer)
            graph.add_node(index, label=monomer, smiles=None, x=None)
            continue
        x = featurize(smiles)
        width = x.shape[0]
        graph.add_node(index, label=monomer, smiles=smiles, x=x)
    if unknown_nodes:
        if width is None:
            width = featurize("C").shape[0]
        zero = np.zeros(width)
        zero.setflags(write=False)
        for index in unknown_nodes:
            graph.nodes[index]["x"] = zero
    n = len(monomers)
    for child, parent, attributes in bonds:
        if not (0 <= child < n and 0 <= parent < n) or child == parent:
            raise InputError(f"bond ({child}, {parent}) must join two different monomers among 0..{n - 1}")
        graph.add_edge(child, parent, **attributes)
    return graph


def peptide_graph(sequence: str | Sequence[str], *, fingerprint: Any = None, on_unknown: str = "raise") -> nx.DiGraph:
    """Linear peptide as a macromolecule graph (N-terminus first, bonds residue i -> i+1).

    Parameters
    ----------
    sequence : str or sequence of str
        One-letter codes (``"GAV"``) or a list of one- or three-letter codes.

    Returns
    -------
    networkx.DiGraph
        Nodes labelled with one-letter codes; edges labelled ``"peptide"`` with the Morgan
        fingerprint (radius 3, 16 bits) of the amide fragment as ``x``.
    """
    library = peptide_library()
    residues = [library.canonical_name(code) for code in sequence]
    bond = {"label": "peptide", "x": monomer_fingerprint(PEPTIDE_BOND_SMILES, 3, 16)}
    bonds = [(i, i + 1, bond) for i in range(len(residues) - 1)]
    name = "".join(residues) if all(len(r) == 1 for r in residues) else "-".join(residues)
    return macromolecule_graph(
        residues, bonds, library, fingerprint=fingerprint, on_unknown=on_unknown, name=name
    )
