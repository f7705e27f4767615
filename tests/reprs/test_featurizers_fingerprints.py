"""RDKit fingerprints: values equal RDKit's own functions, and small molecules counted by hand."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import MACCSkeys, rdFingerprintGenerator, rdMolDescriptors

from reprs import errors
from reprs.featurizers import (
    AtomPairFingerprint,
    FeatureMorganFingerprint,
    MACCSKeys,
    MorganFingerprint,
    RDKitFingerprint,
    TopologicalTorsionFingerprint,
    mol_from_smiles,
    morgan_fingerprint,
)

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
MOLECULES = [ASPIRIN, "C[C@H](N)C(=O)O", "c1ccc2ccccc2c1", "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O"]


def _bits(vector) -> np.ndarray:
    out = np.zeros(vector.GetNumBits(), dtype=np.uint8)
    DataStructs.ConvertToNumpyArray(vector, out)
    return out


@pytest.mark.parametrize("smiles", MOLECULES)
@pytest.mark.parametrize("radius", [1, 2, 3])
def test_morgan_equals_rdkit_legacy_function(smiles, radius):
    mol = Chem.MolFromSmiles(smiles)
    with rdBase.BlockLogs():  # the legacy call logs a deprecation notice
        reference = _bits(rdMolDescriptors.GetMorganFingerprintAsBitVect(mol, radius, nBits=1024))
        chiral = _bits(rdMolDescriptors.GetMorganFingerprintAsBitVect(mol, radius, nBits=1024, useChirality=True))
    assert np.array_equal(MorganFingerprint(radius=radius, n_bits=1024).featurize(smiles), reference)
    assert np.array_equal(MorganFingerprint(radius=radius, n_bits=1024, chirality=True).featurize(mol), chiral)
    assert np.array_equal(morgan_fingerprint(smiles, radius, 1024, chirality=True), chiral)


@pytest.mark.parametrize("smiles", MOLECULES)
def test_morgan_function_and_class_defaults_are_rdkits(smiles):
    """The function and the class of one name give the same bits by default, and both equal RDKit's
    Morgan generator with its own defaults (includeChirality=False). The function's default was
    chirality=True, the class's False: they disagreed on every stereocentre."""
    mol = Chem.MolFromSmiles(smiles)
    reference = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048).GetFingerprintAsNumPy(mol)
    assert np.array_equal(morgan_fingerprint(smiles), reference)
    assert np.array_equal(MorganFingerprint().featurize(smiles), reference)
    counts = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048).GetCountFingerprintAsNumPy(mol)
    assert np.array_equal(morgan_fingerprint(smiles, counts=True), counts)


@pytest.mark.parametrize("smiles", MOLECULES)
def test_other_fingerprints_equal_rdkit(smiles):
    mol = Chem.MolFromSmiles(smiles)
    assert np.array_equal(RDKitFingerprint(n_bits=2048).featurize(smiles), _bits(Chem.RDKFingerprint(mol, maxPath=7, fpSize=2048)))
    assert np.array_equal(MACCSKeys().featurize(smiles), _bits(MACCSkeys.GenMACCSKeys(mol)))
    pair = rdFingerprintGenerator.GetAtomPairGenerator(fpSize=512)
    assert np.array_equal(AtomPairFingerprint(n_bits=512, counts=True).featurize(mol), pair.GetCountFingerprintAsNumPy(mol))
    torsion = rdFingerprintGenerator.GetTopologicalTorsionGenerator(fpSize=512)
    assert np.array_equal(TopologicalTorsionFingerprint(n_bits=512).featurize(mol), torsion.GetFingerprintAsNumPy(mol))
    fcfp = rdFingerprintGenerator.GetMorganGenerator(
        radius=2, fpSize=512, atomInvariantsGenerator=rdFingerprintGenerator.GetMorganFeatureAtomInvGen()
    )
    assert np.array_equal(FeatureMorganFingerprint(n_bits=512).featurize(mol), fcfp.GetFingerprintAsNumPy(mol))


def test_small_molecules_counted_by_hand():
    # methane has one heavy atom: one environment at radius 0 and no larger one
    assert MorganFingerprint(radius=2, counts=True).featurize("C").sum() == 1
    # ethanol at radius 0: three different atom environments (CH3, CH2, OH), once each
    counts = MorganFingerprint(radius=0, counts=True).featurize("CCO")
    assert counts.sum() == 3 and counts.max() == 1
    # ethane has one atom pair (C, C at distance 1); butane one 4-atom torsion path, propane none
    assert AtomPairFingerprint().featurize("CC").sum() == 1
    assert TopologicalTorsionFingerprint().featurize("CCCC").sum() == 1
    assert TopologicalTorsionFingerprint().featurize("CCC").sum() == 0
    # bits are the support of the counts (same hashing and folding)
    for smiles in MOLECULES:
        assert np.array_equal(
            MorganFingerprint(counts=True).featurize(smiles) > 0, MorganFingerprint().featurize(smiles) == 1
        )


def test_chirality_and_feature_invariants():
    left, right = "C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O"  # L- and D-alanine
    plain, chiral = MorganFingerprint(), MorganFingerprint(chirality=True)
    assert np.array_equal(plain.featurize(left), plain.featurize(right))
    assert not np.array_equal(chiral.featurize(left), chiral.featurize(right))
    # FCFP types both halogens alike, ECFP tells chlorine from bromine
    assert np.array_equal(FeatureMorganFingerprint().featurize("Clc1ccccc1"), FeatureMorganFingerprint().featurize("Brc1ccccc1"))
    assert not np.array_equal(MorganFingerprint().featurize("Clc1ccccc1"), MorganFingerprint().featurize("Brc1ccccc1"))


def test_smiles_and_mol_inputs_agree_and_atom_order_does_not_matter():
    mol = Chem.MolFromSmiles(ASPIRIN)
    shuffled = Chem.RenumberAtoms(mol, list(np.random.default_rng(0).permutation(mol.GetNumAtoms()).tolist()))
    for featurizer in (MorganFingerprint(), RDKitFingerprint(), MACCSKeys(), AtomPairFingerprint(), TopologicalTorsionFingerprint()):
        reference = featurizer.featurize(ASPIRIN)
        assert np.array_equal(featurizer.featurize(mol), reference)
        assert np.array_equal(featurizer.featurize(shuffled), reference)
        assert np.array_equal(featurizer.featurize(Chem.MolToSmiles(shuffled, canonical=False)), reference)


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [("C1CC", "unclosed ring"), ("c1cccc1", "kekulize"), ("C(C)(C)(C)(C)C", "valence"), ("CC)", "Parse"), ("   ", "empty")],
)
def test_invalid_smiles_raise_with_rdkit_reason(smiles, reason):
    with pytest.raises(errors.SmilesError, match=reason):
        mol_from_smiles(smiles)
    with pytest.raises(errors.SmilesError):
        morgan_fingerprint(smiles, 2, 64)


def test_bad_parameters_and_types():
    with pytest.raises(errors.InputError, match="radius"):
        MorganFingerprint(radius=-1)
    with pytest.raises(errors.InputError, match="n_bits"):
        MorganFingerprint(n_bits=0)
    with pytest.raises(errors.InputError, match="counts"):
        MorganFingerprint(counts="yes")
    with pytest.raises(errors.InputError, match="max_path"):
        RDKitFingerprint(min_path=4, max_path=2)
    with pytest.raises(TypeError):
        MorganFingerprint(2)  # hyperparameters are keyword-only
    with pytest.raises(errors.InputTypeError, match="SMILES string or rdkit.Chem.Mol"):
        MorganFingerprint().featurize(b"CCO")
    with pytest.raises(errors.InputError, match="no atoms"):
        MorganFingerprint().featurize(Chem.Mol())
