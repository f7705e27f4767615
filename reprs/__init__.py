"""reprs: representation builders for molecules, macromolecules and materials.

Macromolecule graphs (monomers as nodes, bonds as edges), glycan parsing, monomer libraries,
converters to PyTorch Geometric and GraKeL, and bundled datasets.
"""

from __future__ import annotations

from reprs import errors, glass
from reprs.convert import to_grakel, to_pyg
from reprs.glycans import glycan_graph, glycan_string
from reprs.macromolecules import macromolecule_graph, peptide_graph
from reprs.monomers import MonomerLibrary, glycan_library, peptide_library

__all__ = [
    "errors",
    "glass",
    "glycan_graph",
    "glycan_string",
    "macromolecule_graph",
    "peptide_graph",
    "MonomerLibrary",
    "glycan_library",
    "peptide_library",
    "to_pyg",
    "to_grakel",
]
