"""Glycan graphs against glycowork's own graphs and against direct RDKit fingerprints."""

from __future__ import annotations

import re

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import AllChem

from reprs import glycan_graph
from reprs.convert import from_glycowork
from reprs.datasets import load_glycans
from reprs.errors import GlycanParseError, UnknownMonomerError
from reprs.glycans import BOND_SMILES, build_glycan_graphs, carbon_count, glycan_coverage, glycan_dataset_summary
from reprs.iupac import parse_iupac

@pytest.fixture(scope="module")
def glycans() -> list[str]:
    return load_glycans(level="Domain")["glycan"].tolist()


def _same_topology(ours: nx.DiGraph, glycan: str) -> bool:
    from glycowork.motif.graph import glycan_to_nxGraph

    theirs = from_glycowork(glycan_to_nxGraph(glycan))
    return nx.is_isomorphic(
        ours,
        theirs,
        node_match=lambda a, b: a["label"] == b["label"],
        edge_match=lambda a, b: _unordered(a["label"]) == _unordered(b["label"]),
    )


def _unordered(label: str):
    """A linkage label with its acceptor alternatives as a set: glycowork keeps ``b1-4/3`` as
    written, ours reads ``b1-3/4``."""
    head, _, acceptors = label.rpartition("-")
    return head, frozenset(acceptors.split("/"))


def _impossible_linkages(glycans: list[str]) -> list[str]:
    """Glycans of glycowork's table that link to a carbon a pentose (arabinose, xylose, their amino
    and furanose forms) does not have: Ara(b1-6)Ara, [Gal(b1-6)]Araf, and Kdo(b1-8)AraN / Ara4N, the
    reverse of LPS' Ara4N(b1-8)Kdo. Found by name, independently of glycan_graph's carbon count."""
    pentose = re.compile(r"^(Ara|Xyl|Lyx|Rib)")
    return [
        g for g in glycans
        if any(pentose.match(parsed.residues[parent]) and any(a != "?" and int(a) > 5 for a in link.acceptor)
               for parsed in [parse_iupac(g)] for _, parent, link in parsed.bonds)
    ]


def _check_topology(sample: list[str]) -> None:
    """Our topology equals glycowork's; glycans with impossible linkage positions are refused instead."""
    impossible = set(_impossible_linkages(sample))
    for g in impossible:
        with pytest.raises(GlycanParseError, match="beyond its carbons"):
            glycan_graph(g, on_unknown="zero")
    mismatches = [g for g in sample if g not in impossible
                  and not _same_topology(glycan_graph(g, on_unknown="zero"), g)]
    assert not mismatches, f"{len(mismatches)} glycans differ from glycowork, e.g. {mismatches[:3]}"


def test_topology_equals_glycowork_on_500_glycans(glycans):
    rng = np.random.default_rng(2103)
    _check_topology([glycans[i] for i in rng.choice(len(glycans), 500, replace=False)])


@pytest.mark.slow
def test_topology_equals_glycowork_on_all_glycans(glycans):
    _check_topology(glycans)


def test_node_fingerprints_equal_direct_rdkit():
    graph = glycan_graph("Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc6S(b1-2)Man")
    for _, data in graph.nodes(data=True):
        bits = AllChem.GetMorganFingerprintAsBitVect(Chem.MolFromSmiles(data["smiles"]), 3, nBits=128, useChirality=True)
        expected = np.zeros(128)
        DataStructs.ConvertToNumpyArray(bits, expected)
        np.testing.assert_array_equal(data["x"], expected)


def test_edge_features_are_bond_fingerprint_plus_positions():
    graph = glycan_graph("Gal(b1-3/6)GlcNAc(a1-?)Man")
    x = graph.edges[0, 1]["x"]
    bits = AllChem.GetMorganFingerprintAsBitVect(Chem.MolFromSmiles(BOND_SMILES["b"]), 3, nBits=16, useChirality=True)
    expected = np.zeros(16)
    DataStructs.ConvertToNumpyArray(bits, expected)
    np.testing.assert_array_equal(x[:16], expected)
    donor, acceptor = x[16:28], x[28:40]
    assert np.flatnonzero(donor).tolist() == [1]
    assert np.flatnonzero(acceptor).tolist() == [3, 6]
    assert np.flatnonzero(graph.edges[1, 2]["x"][28:40]).tolist() == [0]  # '?' = unknown slot
    # alpha and beta fragments differ only by chirality, which the fingerprint must see
    assert not np.array_equal(graph.edges[0, 1]["x"][:16], graph.edges[1, 2]["x"][:16])


def test_anomer_mode_reproduces_glamour_convention():
    graph = glycan_graph("Gal(b1-4)GlcNAc(a1-3)Man", linkage="anomer")
    assert [graph.edges[e]["label"] for e in graph.edges] == ["b", "a"]
    assert all(graph.edges[e]["x"].shape == (16,) for e in graph.edges)
    assert graph.edges[0, 1]["acceptor_pos"] == "4"  # the positions are still recorded


def test_modified_monomers_resolve_with_their_modification():
    graph = glycan_graph("Gal3S(b1-4)GlcNAc6S(b1-2)Man6P(a1-3)Rha3Me(a1-2)Kdo")
    mols = [Chem.MolFromSmiles(graph.nodes[n]["smiles"]) for n in graph]
    formula = [Chem.rdMolDescriptors.CalcMolFormula(m) for m in mols]
    sulfate, phosphate = Chem.MolFromSmarts("COS(=O)(=O)[OH]"), Chem.MolFromSmarts("COP(=O)([OH])[OH]")
    assert mols[0].HasSubstructMatch(sulfate) and formula[0] == "C6H12O9S"  # Gal + SO3
    assert mols[1].HasSubstructMatch(sulfate) and formula[1] == "C8H15NO9S"  # GlcNAc + SO3
    assert mols[2].HasSubstructMatch(phosphate) and formula[2] == "C6H13O9P"  # Man + PO3H
    assert formula[3] == "C7H14O5"  # 3-O-methyl rhamnose
    assert formula[4] == "C8H14O8"  # Kdo


def test_legacy_glycobase_names_resolve_as_aliases():
    graph = glycan_graph("NeuNAc(a2-3)Gal(b1-4)GlcNAc")
    assert graph.nodes[0]["smiles"] == glycan_graph("Neu5Ac(a2-3)Gal(b1-4)GlcNAc").nodes[0]["smiles"]


def test_unknown_monomer_raises_or_is_recorded():
    with pytest.raises(UnknownMonomerError, match="unknown glycan monomer 'Foo'"):
        glycan_graph("Foo(b1-4)Gal")
    graph = glycan_graph("Foo(b1-4)Gal", on_unknown="zero")
    assert graph.graph["unknown_monomers"] == ["Foo"]
    assert not graph.nodes[0]["x"].any() and graph.nodes[0]["x"].shape == (128,)
    assert graph.nodes[0]["smiles"] is None


def test_custom_fingerprint_is_used():
    graph = glycan_graph("Gal(b1-4)Glc", fingerprint=lambda smiles: [Chem.MolFromSmiles(smiles).GetNumAtoms()])
    assert graph.nodes[0]["x"].tolist() == [12.0]


def test_coverage_of_glycowork_glycans_is_at_least_99_percent(glycans):
    coverage = glycan_coverage(glycans)
    # 23,742 unique well-formed glycans in glycowork 1.11; see reprs/data/README.md.
    assert coverage["n_parsed"] == len(glycans)
    assert coverage["glycan_coverage"] >= 0.99, coverage["unresolved"]


def test_coverage_of_glamour_tables(glamour_dir):
    taxonomy = pd.read_csv(glamour_dir / "glycobase_taxonomy_multiclass.txt")["Glycan"]
    immuno = pd.read_csv(glamour_dir / "glycobase_immuno.txt")["Glycan"]
    assert len(taxonomy) == 8898 and len(immuno) == 1313  # the paper's dataset sizes
    assert glycan_coverage(taxonomy)["glycan_coverage"] >= 0.98
    assert glycan_coverage(immuno)["glycan_coverage"] >= 0.995


def test_build_many_skips_and_records_failures():
    graphs, failures = build_glycan_graphs(["Gal(b1-4)Glc", "Gal(b1-4", "Foo(a1-2)Gal"], errors="skip")
    assert graphs[0] is not None and graphs[1] is None and graphs[2] is None
    assert [row for row, _ in failures] == [1, 2]


def test_dataset_summary_counts(glycans):
    summary = glycan_dataset_summary(level="Domain")
    assert summary["n_glycans"] == len(glycans)
    impossible = _impossible_linkages(glycans)
    assert len(impossible) == 5
    assert summary["n_graphs"] == summary["n_resolved"] - len(impossible)
    assert set(summary["classes"]) >= {"Eukarya", "Bacteria", "Virus"}


@pytest.mark.parametrize(
    "glycan, position",
    [
        ("Gal(b1-99)GlcNAc", 7),  # GlcNAc: carbons 1-6 and its N-acetyl's 7-8
        ("Gal(b1-3/7)Glc", 9),
        ("Gal(b7-4)Glc", 5),
        ("Gal(b0-4)Glc", 5),
        ("Glc(b1-6)Xyl", 7),  # a pentose
        ("Neu5Ac(a2-12)Neu5Ac", 10),  # 9 backbone carbons, then the N-acetyl's 10-11
        ("Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-9)]GlcNAc", 29),
        ("{Fuc(a7-?)}Gal(b1-4)GlcNAc", 6),
        ("Gal(b1-9/3)Glc", 7),  # alternatives are stored in ascending order; the position is as written
    ],
)
def test_linkage_positions_beyond_the_carbons_are_refused(glycan, position):
    with pytest.raises(GlycanParseError, match="beyond its carbons") as info:
        glycan_graph(glycan)
    assert info.value.position == position


@pytest.mark.parametrize(
    "smiles, carbons",
    [
        ("OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O", 6),  # glucose
        ("OC1CO[C@@H](O)[C@H](O)[C@H]1O", 5),  # xylose
        ("CC(=O)N[C@@H]1[C@@H](O)C[C@@](O)(C(=O)O)O[C@H]1[C@H](O)[C@H](O)CO", 11),  # Neu5Ac
        ("COC1C(O)OC(CO)C(O)C1O", 6),  # 3-O-methyl: the ether carbon is not numbered
        ("OS(=O)(=O)O", 0),
    ],
)
def test_carbon_count_of_monomers(smiles, carbons):
    assert carbon_count(smiles) == carbons


def test_valid_high_positions_are_kept():
    # Neu5Gc's glycolyl hydroxyl is O-11 (echinoderm gangliosides, in glycowork's table); Kdo has 8
    # carbons, a heptose 7, an arabinofuranose 5.
    for glycan in ("Neu5Gc(a2-11)Neu5Gc(a2-6)Glc", "Kdo(a2-8)Kdo", "LDManHep(a1-7)LDManHep", "Araf(a1-5)Araf"):
        assert glycan_graph(glycan).number_of_edges() >= 1
