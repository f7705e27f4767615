"""Featurizers: one API over fingerprints, DScribe descriptors, molecular, crystal and glycan graphs, and composition.

Every featurizer takes keyword-only hyperparameters, has a pure ``featurize(obj)``,
``featurize_many(objs, n_jobs=1, progress=True, errors="raise")``, ``feature_labels()``,
``n_features`` and scikit-learn's ``fit``/``transform``. :func:`get_featurizer` builds one from
text (``"morgan:radius=2,n_bits=2048"``); :func:`featurize_inputs` runs one over files for the CLI.
"""

from __future__ import annotations

from reprs.featurizers.atomistic import ACSF, LMBTR, MBTR, SOAP, CoulombMatrix, EwaldSumMatrix, SineMatrix
from reprs.featurizers.base import Failure, FeaturizationWarning, Featurizer
from reprs.featurizers.composition import ElementProperty, FractionalComposition
from reprs.featurizers.crystal_graph import CrystalGraph, NeighborTruncationWarning, periodic_neighbors
from reprs.featurizers.files import FeaturizeSummary, featurize_inputs
from reprs.featurizers.fingerprints import (
    AtomPairFingerprint,
    FeatureMorganFingerprint,
    MACCSKeys,
    MorganFingerprint,
    RDKitFingerprint,
    TopologicalTorsionFingerprint,
    morgan_fingerprint,
)
from reprs.featurizers.glycan_graph import GlycanGraph
from reprs.featurizers.inputs import as_atoms, as_composition, as_mol, as_structure, mol_from_smiles
from reprs.featurizers.molecular_graph import MolecularGraph
from reprs.featurizers.registry import available_featurizers, get_featurizer, register_featurizer

__all__ = [
    "Featurizer",
    "Failure",
    "FeaturizationWarning",
    "get_featurizer",
    "register_featurizer",
    "available_featurizers",
    "featurize_inputs",
    "FeaturizeSummary",
    "mol_from_smiles",
    "as_mol",
    "as_atoms",
    "as_structure",
    "as_composition",
    "morgan_fingerprint",
    "MorganFingerprint",
    "FeatureMorganFingerprint",
    "RDKitFingerprint",
    "MACCSKeys",
    "AtomPairFingerprint",
    "TopologicalTorsionFingerprint",
    "MolecularGraph",
    "GlycanGraph",
    "SOAP",
    "ACSF",
    "MBTR",
    "LMBTR",
    "CoulombMatrix",
    "SineMatrix",
    "EwaldSumMatrix",
    "CrystalGraph",
    "NeighborTruncationWarning",
    "periodic_neighbors",
    "ElementProperty",
    "FractionalComposition",
]
