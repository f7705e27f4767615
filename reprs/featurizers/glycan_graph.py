"""The glycan macromolecule graph as a featurizer: ``get_featurizer("glycan_graph:linkage=anomer")``.

A thin wrapper of :func:`reprs.glycans.glycan_graph`, so that the glycan graph is configured,
validated, batched, written by ``matrep featurize`` and checked by the featurizer contract suite
like every other representation, with no special case for it anywhere.
"""

from __future__ import annotations

from typing import Any, Literal

from reprs.errors import InputError, InputTypeError
from reprs.featurizers.base import Featurizer

__all__ = ["GlycanGraph"]


class GlycanGraph(Featurizer):
    """Graph of a glycan: monosaccharides as nodes, glycosidic bonds as edges (GLAMOUR's features).

    Parameters
    ----------
    linkage : {"full", "anomer"}, default "full"
        Edge label and features: the whole linkage (``"b1-4"``; bond fingerprint plus donor and
        acceptor carbon positions, 40 values) or, as GLAMOUR, the anomeric state only (16-bit bond
        fingerprint). See :func:`reprs.glycans.glycan_graph`.
    on_unknown : {"raise", "zero"}, default "raise"
        A monomer the library cannot resolve raises :class:`~reprs.errors.UnknownMonomerError`, or
        gets a zero node vector and is listed in ``G.graph["unknown_monomers"]``.

    Notes
    -----
    Inputs are IUPAC-condensed strings (glycowork's dialect). ``n_features`` and
    ``feature_labels`` describe the edge features, as for
    :class:`~reprs.featurizers.MolecularGraph`; node features are the 128-bit Morgan fingerprints
    (radius 3, chirality) of the monomers.

    References
    ----------
    M. Mohapatra et al., "GLAMOUR: Graph Learning over Macromolecule Representations",
    arXiv:2103.02565 (2021).

    Example
    -------
    >>> g = GlycanGraph().featurize("Gal(b1-4)GlcNAc")
    >>> [g.nodes[n]["label"] for n in g], g.edges[0, 1]["label"], g.edges[0, 1]["x"].shape
    (['Gal', 'GlcNAc'], 'b1-4', (40,))
    """

    input_kind = "glycan"
    fixed_length = False

    def __init__(self, *, linkage: Literal["full", "anomer"] = "full", on_unknown: Literal["raise", "zero"] = "raise"):
        self.linkage = linkage
        self.on_unknown = on_unknown
        self._validate()

    def _validate(self) -> None:
        if self.linkage not in ("full", "anomer"):
            raise InputError(f"linkage must be 'full' or 'anomer', got {self.linkage!r}")
        if self.on_unknown not in ("raise", "zero"):
            raise InputError(f"on_unknown must be 'raise' or 'zero', got {self.on_unknown!r}")

    def convert(self, obj: Any) -> str:
        """Return ``obj`` if it is a glycan string (parsing happens in :meth:`featurize`).

        Raises
        ------
        InputTypeError
            For anything but a ``str``.
        """
        if not isinstance(obj, str):
            cls = type(obj)
            raise InputTypeError(
                f"expected an IUPAC-condensed glycan str such as 'Gal(b1-4)GlcNAc', got {cls.__module__}.{cls.__qualname__}"
            )
        return obj

    @property
    def n_features(self) -> int:
        from reprs.glycans import N_POSITIONS

        return 16 if self.linkage == "anomer" else 16 + 2 * N_POSITIONS

    def feature_labels(self) -> list[str]:
        """Edge-feature labels: bond-fragment fingerprint bits, then (``"full"``) donor and acceptor carbons."""
        from reprs.glycans import N_POSITIONS

        labels = [f"bond_fp_{k}" for k in range(16)]
        if self.linkage == "full":
            carbons = ["?", *(str(k) for k in range(1, N_POSITIONS))]  # slot 0 holds unknown positions
            labels += [f"donor_C{c}" for c in carbons] + [f"acceptor_C{c}" for c in carbons]
        return labels

    def _featurize(self, glycan: str) -> Any:
        from reprs.glycans import glycan_graph

        return glycan_graph(glycan, linkage=self.linkage, on_unknown=self.on_unknown)
