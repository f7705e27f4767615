"""reprs: representation builders for molecules, macromolecules and materials.

Macromolecule graphs (monomers as nodes, bonds as edges), glycan parsing, monomer libraries,
converters to PyTorch Geometric and GraKeL, and bundled datasets.

The package's names load on first use (PEP 562), so that ``sims`` can import the base layer
(:mod:`reprs.errors` and the other modules named in ``BASE_LAYER``) without RDKit, glycowork or
GraKeL being imported with it.
"""

from __future__ import annotations

from reprs.lazy import lazy_exports

#: Modules that ``sims`` may import: errors, atoms conversion and validation, atomic file and frame
#: I/O, config and command-line values, and the one RDF, coordination count and set of reference
#: crystals of atomistic configurations. They import nothing of ``reprs`` outside this set
#: (tests/test_layout.py).
BASE_LAYER = ("reprs.errors", "reprs.atoms", "reprs.fileio", "reprs.config", "reprs.structure", "reprs.lazy")

_LAZY = {
    "errors": ("reprs.errors", None),
    "glass": ("reprs.glass", None),
    "cg_mapping": ("reprs.cg_mapping", None),
    "to_grakel": ("reprs.convert", "to_grakel"),
    "to_pyg": ("reprs.convert", "to_pyg"),
    "glycan_graph": ("reprs.glycans", "glycan_graph"),
    "glycan_string": ("reprs.glycans", "glycan_string"),
    "macromolecule_graph": ("reprs.macromolecules", "macromolecule_graph"),
    "peptide_graph": ("reprs.macromolecules", "peptide_graph"),
    "MonomerLibrary": ("reprs.monomers", "MonomerLibrary"),
    "glycan_library": ("reprs.monomers", "glycan_library"),
    "peptide_library": ("reprs.monomers", "peptide_library"),
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
