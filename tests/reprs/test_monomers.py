"""Monomer libraries: bundled table, GlyLES resolution and our modification rules."""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem.rdMolDescriptors import CalcMolFormula

from reprs.errors import SmilesError, UnknownMonomerError
from reprs.macromolecules import macromolecule_graph, peptide_graph
from reprs.monomers import (
    apply_modifications,
    backbone_numbering,
    glycan_library,
    peptide_library,
    resolve_glycan_monomer,
)


def _canon(smiles):
    return Chem.CanonSmiles(smiles)


def test_bundled_table_rows_match_a_fresh_resolution():
    with resources.files("reprs").joinpath("data", "glycan_monomers.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    rng = np.random.default_rng(0)
    for i in rng.choice(len(rows), 25, replace=False):
        name, smiles = rows[i]["name"], rows[i]["smiles"]
        assert (resolve_glycan_monomer(name) or "") == smiles, name


def test_backbone_numbering_of_neu5ac_and_glucose():
    neu5ac = Chem.MolFromSmiles(glycan_library().smiles("Neu5Ac"))
    numbers = backbone_numbering(neu5ac)
    assert len(numbers) == 9
    c1 = neu5ac.GetAtomWithIdx(numbers[1])
    assert sorted(n.GetSymbol() for n in c1.GetNeighbors()) == ["C", "O", "O"]  # the carboxyl
    assert any(n.GetSymbol() == "N" for n in neu5ac.GetAtomWithIdx(numbers[5]).GetNeighbors())
    glc = Chem.MolFromSmiles(glycan_library().smiles("Glc"))
    assert len(backbone_numbering(glc)) == 6


@pytest.mark.parametrize(
    "core, modifications, named",
    [
        ("Gal", [("3", "S")], "Gal3S"),
        ("Man", [("6", "P")], "Man6P"),
        ("Rha", [("3", "Me")], "Rha3Me"),
        ("Glc", [("2", "NAc"), ("6", "S")], "GlcNAc6S"),
        ("GalNAc", [("4", "S"), ("6", "S")], "GalNAc4S6S"),
        ("Glc", [("2", "N")], "GlcN"),
        ("Gal", [("6", "d")], "Fuc"),
    ],
)
def test_modification_rules_agree_with_glyles(core, modifications, named):
    """Our rules on a GlyLES core equal GlyLES's own reading of the modified name."""
    ours = apply_modifications(glycan_library().smiles(core), modifications)
    if named == "Fuc":  # 6-deoxy-D-galactose is D-Fuc; glycowork's Fuc is L: compare formulas
        assert CalcMolFormula(Chem.MolFromSmiles(ours)) == CalcMolFormula(Chem.MolFromSmiles(glycan_library().smiles("Fuc")))
        return
    assert _canon(ours) == _canon(glycan_library().smiles(named))


def test_unknown_position_goes_on_the_last_free_hydroxyl():
    """GLAMOUR's monomer table writes GlcNAcOS with the sulfate on C6."""
    assert _canon(glycan_library().smiles("GlcNAcOS")) == _canon(glycan_library().smiles("GlcNAc6S"))


@pytest.mark.parametrize("name, named", [("GlcAOS", "GlcA4S"), ("IdoAOS", "IdoA4S"), ("GalAOP", "GalA4P"),
                                         ("GlcAOAc", "GlcA4Ac"), ("GalNAcAOAc", "GalNAcA4Ac")])
def test_unknown_position_skips_the_carboxyl_of_a_uronic_acid(name, named):
    """The last free hydroxyl of a uronic acid is at C4: its C6 is a carboxyl, whose OH took the
    sulfate of GlcAOS (an acyl sulfate) and the acetyl of GlcAOAc (an anhydride). Reference: GlyLES's
    reading of the name with the position written out; the bundled table agrees."""
    assert _canon(resolve_glycan_monomer(name)) == _canon(resolve_glycan_monomer(named))
    assert _canon(glycan_library().smiles(name)) == _canon(resolve_glycan_monomer(named))
    carboxylic_acid = Chem.MolFromSmarts("[CX3](=O)[OX2H1]")
    assert Chem.MolFromSmiles(glycan_library().smiles(name)).HasSubstructMatch(carboxylic_acid)


def test_modification_errors():
    with pytest.raises(SmilesError, match="no free hydroxyl"):
        apply_modifications(glycan_library().smiles("Glc"), [("2", "NAc"), ("2", "S")])
    with pytest.raises(SmilesError, match="invalid core"):
        apply_modifications("C1CC", [("1", "S")])


def test_unknown_names_raise_with_a_hint():
    with pytest.raises(UnknownMonomerError, match="Xyz") as info:
        glycan_library().smiles("Xyz9Q")
    assert isinstance(info.value, KeyError)


def test_peptide_graph_uses_amino_acid_library():
    graph = peptide_graph("GAW")
    assert [graph.nodes[n]["label"] for n in graph] == ["G", "A", "W"]
    assert list(graph.edges) == [(0, 1), (1, 2)]
    assert CalcMolFormula(Chem.MolFromSmiles(graph.nodes[2]["smiles"])) == "C11H12N2O2"  # tryptophan
    assert peptide_graph(["Gly", "Ala"]).nodes[1]["smiles"] == peptide_library().smiles("A")
    with pytest.raises(UnknownMonomerError):
        peptide_graph("GXA")


def test_every_amino_acid_is_a_valid_l_alpha_amino_acid():
    library = peptide_library()
    alpha = Chem.MolFromSmarts("[NX3][CX4:1]C(=O)[OX2H1]")
    for code in "ARNDCQEGHILKMFPSTWYV":
        mol = Chem.MolFromSmiles(library.smiles(code))
        assert mol is not None, code
        match = mol.GetSubstructMatch(alpha)
        assert match, code
        centers = dict(Chem.FindMolChiralCenters(mol, includeUnassigned=True))
        if code == "G":
            assert match[1] not in centers
        else:  # L-amino acids are S at C-alpha, except cysteine (R by CIP priority of sulfur)
            assert centers[match[1]] == ("R" if code == "C" else "S"), code


def test_macromolecule_graph_validates_bonds():
    with pytest.raises(ValueError, match="must join two different monomers"):
        macromolecule_graph(["G", "A"], [(0, 2, {"label": "p", "x": np.zeros(1)})], peptide_library())
    with pytest.raises(ValueError, match="at least one monomer"):
        macromolecule_graph([], [], peptide_library())
