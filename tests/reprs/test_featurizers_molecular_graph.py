"""MolecularGraph against PyTorch Geometric's ``from_smiles`` and RDKit's molecular weight."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import Descriptors
from torch_geometric.utils import from_smiles
from torch_geometric.utils.smiles import e_map, x_map

from reprs import errors
from reprs.featurizers import MolecularGraph
from reprs.featurizers.molecular_graph import ATOM_FEATURES, BOND_FEATURES

# Aromatic rings, charges, E/Z and tetrahedral stereo, a triple bond, halogens, P and S, and one
# element (Se) that falls into the "other" slot.
SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "C[C@@H](N)C(=O)O",
    "F/C=C/Cl",
    "C#N",
    "C[N+](C)(C)CC(=O)[O-]",
    "OP(=O)(O)OC[C@H]1O[C@@H](n2cnc3c(N)ncnc32)[C@H](O)[C@@H]1O",
    "c1ccsc1Br",
    "[Se]=C=[Se]",
    "O=C1NC(=O)c2ccccc12",
]


def _decode(block: np.ndarray, categories: tuple) -> list:
    """One-hot rows -> category (None for the "other" slot)."""
    index = block.argmax(axis=1)
    assert np.all(block.sum(axis=1) == 1)
    return [categories[i] if i < len(categories) else None for i in index]


def _split(x: np.ndarray, features: dict[str, tuple]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    out, start = {}, 0
    for name, cats in features.items():
        out[name] = x[:, start : start + len(cats) + 1]
        start += len(cats) + 1
    return out, x[:, start:]


def _peer(values: torch.Tensor, mapping: list) -> list:
    return [mapping[int(v)] for v in values]


@pytest.mark.parametrize("given", ["smiles", "mol_with_hydrogen_atoms"])
@pytest.mark.parametrize("hydrogens", [False, True])
@pytest.mark.parametrize("smiles", SMILES)
def test_features_decode_to_pyg_from_smiles(smiles, hydrogens, given):
    # A Mol whose hydrogens are atoms (Chem.AddHs, an embedded conformer, an SDF read with
    # removeHs=False) is the same molecule as its SMILES: hydrogens=False must not keep them as
    # nodes (it did, with num_hs 0 on every heavy atom).
    mol = smiles if given == "smiles" else Chem.AddHs(Chem.MolFromSmiles(smiles))
    ours = MolecularGraph(hydrogens=hydrogens, output="pyg").featurize(mol)
    assert ours.smiles == Chem.MolToSmiles(Chem.MolFromSmiles(smiles))
    peer = from_smiles(smiles, with_hydrogen=hydrogens)
    assert ours.edge_index.shape == peer.edge_index.shape and ours.num_nodes == peer.num_nodes
    assert {tuple(e) for e in ours.edge_index.T.tolist()} == {tuple(e) for e in peer.edge_index.T.tolist()}

    blocks, flags = _split(ours.x.double().numpy(), ATOM_FEATURES)
    symbols = [Chem.GetPeriodicTable().GetElementSymbol(z) for z in _peer(peer.x[:, 0], x_map["atomic_num"])]
    assert _decode(blocks["element"], ATOM_FEATURES["element"]) == [
        s if s in ATOM_FEATURES["element"] else None for s in symbols
    ]
    for ours_name, column, peer_name in [
        ("chirality", 1, "chirality"), ("degree", 2, "degree"), ("formal_charge", 3, "formal_charge"),
        ("num_hs", 4, "num_hs"), ("hybridization", 6, "hybridization"),
    ]:
        categories = ATOM_FEATURES[ours_name]
        expected = [v if v in categories else None for v in _peer(peer.x[:, column], x_map[peer_name])]
        assert _decode(blocks[ours_name], categories) == expected
    assert flags[:, 0].astype(bool).tolist() == _peer(peer.x[:, 7], x_map["is_aromatic"])
    assert flags[:, 1].astype(bool).tolist() == _peer(peer.x[:, 8], x_map["is_in_ring"])

    # PyG stores bond features per directed edge; match them through the edge list
    peer_bonds = {tuple(e): a for e, a in zip(peer.edge_index.T.tolist(), peer.edge_attr.tolist())}
    edge_blocks, edge_flags = _split(ours.edge_attr.double().numpy(), BOND_FEATURES)
    types = _decode(edge_blocks["type"], BOND_FEATURES["type"])
    stereo = _decode(edge_blocks["stereo"], BOND_FEATURES["stereo"])
    for k, edge in enumerate(ours.edge_index.T.tolist()):
        p_type, p_stereo, p_conj = peer_bonds[tuple(edge)]
        assert types[k] == e_map["bond_type"][p_type]
        assert stereo[k] == e_map["stereo"][p_stereo]
        assert bool(edge_flags[k, 0]) == e_map["is_conjugated"][p_conj]


def test_masses_sum_to_rdkit_molecular_weight():
    for smiles in SMILES:
        graph = MolecularGraph(hydrogens=True).featurize(smiles)
        mass = 100.0 * sum(x[-1] for _, x in graph.nodes(data="x"))
        assert mass == pytest.approx(Descriptors.MolWt(Chem.MolFromSmiles(smiles)), rel=1e-12)


def test_networkx_graph_labels_and_stereo():
    graph = MolecularGraph().featurize("F/C=C/Cl")
    featurizer = MolecularGraph()
    assert graph.graph["name"] == Chem.MolToSmiles(Chem.MolFromSmiles("F/C=C/Cl"))
    assert [graph.nodes[i]["label"] for i in graph] == ["F", "C", "C", "Cl"]
    assert graph.edges[1, 2]["label"] == "DOUBLE"
    labels = featurizer.feature_labels()
    assert graph.edges[1, 2]["x"][labels.index("stereo=STEREOE")] == 1.0
    assert len(graph.nodes[0]["x"]) == len(featurizer.node_feature_labels())
    # a selenium atom is "other", not an error
    se = MolecularGraph().featurize("[Se]=C=[Se]").nodes[0]["x"]
    assert se[featurizer.node_feature_labels().index("element=other")] == 1.0


def test_bad_input():
    with pytest.raises(errors.SmilesError):
        MolecularGraph().featurize("C1CC")
    with pytest.raises(errors.InputError, match="hydrogens"):
        MolecularGraph(hydrogens="yes")
    with pytest.raises(errors.InputError, match="output"):
        MolecularGraph(output="dgl")


def test_hydrogen_atoms_of_a_mol_keep_their_node_numbers():
    # Hydrogens between heavy atoms, as an SDF or a conformer writes them: with hydrogens=True node
    # i is atom i of the input; with hydrogens=False only the heavy atoms remain, in their order.
    params = Chem.SmilesParserParams()
    params.removeHs = False
    mol = Chem.MolFromSmiles("[H]OC([H])([H])C([H])([H])[H]", params)
    numbers = [a.GetAtomicNum() for a in mol.GetAtoms()]
    with_h = MolecularGraph(hydrogens=True).featurize(mol)
    assert [with_h.nodes[i]["z"] for i in with_h] == numbers
    heavy = MolecularGraph().featurize(mol)
    assert [heavy.nodes[i]["z"] for i in heavy] == [8, 6, 6]
    assert heavy.graph["name"] == with_h.graph["name"] == "CCO"


def test_pyg_output_in_float64_holds_the_float64_features():
    """The PyG output was always float32 (mass/100 rounded to 1e-7 relative) whatever the model's
    precision. dtype= is honoured: x and edge_attr equal the float64 feature arrays exactly."""
    mol = Chem.MolFromSmiles("OC(=O)c1ccccc1Cl")
    featurizer = MolecularGraph(output="pyg", dtype=torch.float64)
    data = featurizer.featurize(mol)
    assert data.x.dtype == data.edge_attr.dtype == torch.float64
    np.testing.assert_array_equal(data.x.numpy(), featurizer.atom_features(mol))
    np.testing.assert_array_equal(data.edge_attr.numpy()[:mol.GetNumBonds()], featurizer.bond_features(mol))
    masses = np.array([a.GetMass() / 100.0 for a in mol.GetAtoms()])
    assert np.array_equal(data.x.numpy()[:, -1], masses)
    assert not np.array_equal(MolecularGraph(output="pyg").featurize(mol).x.double().numpy()[:, -1], masses)
    with pytest.raises(errors.InputError, match="dtype must be"):
        MolecularGraph(dtype="int64")
