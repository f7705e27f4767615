"""Crystal graphs: neighbour sets equal pymatgen's get_all_neighbors; truncation is reported."""

from __future__ import annotations

import warnings
from collections import Counter

import networkx as nx
import numpy as np
import pytest
from ase import Atoms
from pymatgen.core import Lattice, Structure

from reprs import errors
from reprs.featurizers import CrystalGraph, NeighborTruncationWarning, periodic_neighbors
from tests.reprs.featurizer_inputs import bundled_structure, copper, methanol, quartz, silicon


def _pymatgen_neighbors(structure: Structure, r_cut: float) -> set:
    return {
        (i, n.index, tuple(int(s) for s in n.image), round(float(n.nn_distance), 6))
        for i, neighbours in enumerate(structure.get_all_neighbors(r_cut))
        for n in neighbours
    }


def _ours(structure: Structure, r_cut: float) -> set:
    nbrs = periodic_neighbors(structure.to_ase_atoms(), r_cut)
    return set(zip(nbrs.center.tolist(), nbrs.neighbor.tolist(), map(tuple, nbrs.image.tolist()), np.round(nbrs.distance, 6).tolist()))


TRICLINIC = Structure(
    Lattice.from_parameters(3.1, 4.2, 5.3, 71.0, 83.0, 102.0),
    ["Na", "Cl", "Cl"],
    [[0.1, 0.2, 0.3], [0.55, 0.45, 0.8], [0.9, 0.05, 0.15]],
)


@pytest.mark.parametrize(
    ("structure", "r_cut"),
    [(quartz(), 3.2), (quartz(), 5.0), (bundled_structure("LiFePO4"), 3.5), (TRICLINIC, 6.0), (bundled_structure("Si"), 4.0)],
    ids=["quartz-3.2", "quartz-5.0", "LiFePO4", "triclinic", "Si"],
)
def test_neighbor_sets_equal_pymatgen_get_all_neighbors(structure, r_cut):
    ours = _ours(structure, r_cut)
    assert ours == _pymatgen_neighbors(structure, r_cut)
    graph = CrystalGraph(r_cut=r_cut).featurize(structure)
    edges = {(a, b, key, round(d["distance"], 6)) for a, b, key, d in graph.edges(keys=True, data=True)}
    assert edges == ours


def test_fcc_copper_coordination_shells_and_small_cell_images():
    # fcc, a = 3.6 A: 12 neighbours at a/sqrt(2) = 2.546 A, then 6 at a = 3.6 A; the one-atom cell
    # means every edge is a loop to an image of atom 0, keyed by its cell offset
    graph = CrystalGraph(r_cut=3.0).featurize(copper())
    assert graph.number_of_nodes() == 1 and graph.number_of_edges() == 12
    np.testing.assert_allclose([d for *_, d in graph.edges(data="distance")], 3.6 / np.sqrt(2), rtol=1e-12)
    assert len({key for _, _, key in graph.edges(keys=True)}) == 12
    assert CrystalGraph(r_cut=3.7).featurize(copper()).number_of_edges() == 18


def test_periodic_images_supercell_has_the_same_environments():
    cg = CrystalGraph(r_cut=4.0)

    def environments(graph):
        return Counter(
            (graph.nodes[a]["label"], tuple(sorted(round(d, 6) for *_, d in graph.out_edges(a, data="distance"))))
            for a in graph.nodes
        )

    cell = environments(cg.featurize(silicon()))
    supercell = environments(cg.featurize(silicon().repeat((2, 1, 1))))
    assert {k: 2 * v for k, v in cell.items()} == supercell


def test_max_neighbors_reports_what_was_cut():
    cg = CrystalGraph(r_cut=3.7, max_neighbors=12)  # copper: 12 + 6 within 3.7 A
    with pytest.warns(NeighborTruncationWarning, match="dropped 6"):
        graph = cg.featurize(copper())
    assert graph.number_of_edges() == 12 and graph.graph["n_cut"] == 6 and graph.graph["split_shells"] == 0
    assert graph.nodes[0]["n_cut"] == 6
    assert max(d for *_, d in graph.edges(data="distance")) < 3.0  # the nearest were kept
    with pytest.warns(NeighborTruncationWarning, match="1 cuts inside an equidistant shell"):
        graph = CrystalGraph(r_cut=3.0, max_neighbors=8).featurize(copper())
    assert graph.graph["split_shells"] == 1 and graph.graph["n_cut"] == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing cut, nothing said
        assert CrystalGraph(r_cut=3.0, max_neighbors=12).featurize(copper()).graph["n_cut"] == 0


def test_gaussian_expansion_and_attributes():
    cg = CrystalGraph(r_cut=4.0, n_gaussians=5, r_min=0.0)  # centres 0, 1, 2, 3, 4 A, width 1 A
    np.testing.assert_allclose(cg.expand_distances(np.array([2.0])), [np.exp(-np.arange(-2, 3) ** 2)], rtol=1e-12)
    assert cg.feature_labels() == ["gauss_0.000A", "gauss_1.000A", "gauss_2.000A", "gauss_3.000A", "gauss_4.000A"]
    graph = cg.featurize(quartz())
    assert isinstance(graph, nx.DiGraph) and graph.graph["name"] == "O6Si3"  # ASE Hill order
    for a, b, data in graph.edges(data=True):
        np.testing.assert_allclose(data["x"], cg.expand_distances(np.array([data["distance"]]))[0])
        assert data["label"] == "-".join(sorted((graph.nodes[a]["label"], graph.nodes[b]["label"])))
    si = next(n for n, d in graph.nodes(data=True) if d["label"] == "Si")
    assert graph.nodes[si]["x"].tolist() == [14, 3, 14, pytest.approx(1.11), 4]  # Z, period, group, r_cov, valence


def test_pyg_output_matches_networkx():
    import torch

    structure = quartz()
    graph = CrystalGraph(r_cut=3.5).featurize(structure)
    data = CrystalGraph(r_cut=3.5, output="pyg").featurize(structure)
    assert data.num_nodes == graph.number_of_nodes() and data.num_edges == graph.number_of_edges()
    edges = {(int(a), int(b), tuple(s.tolist())) for a, b, s in zip(*data.edge_index, data.edge_image)}
    assert edges == set(graph.edges(keys=True))
    assert data.edge_attr.dtype == torch.float32 and data.cell.shape == (1, 3, 3)
    # positions plus image offsets reproduce the stored distances
    pos, cell = data.pos.double(), data.cell[0].double()
    vec = pos[data.edge_index[1]] + data.edge_image.double() @ cell - pos[data.edge_index[0]]
    torch.testing.assert_close(vec.norm(dim=1), data.edge_distance.double(), rtol=1e-5, atol=1e-5)


def test_pyg_output_in_float64_holds_the_float64_distances():
    """The PyG output was always float32, and a float64 model (whose trainer cast it up) trained on
    distances and features rounded to float32 (1e-7 relative). dtype= is honoured: reference, ASE's
    neighbour list distances (float64) of the same pairs, and the networkx output's Gaussians."""
    import torch
    from ase.neighborlist import neighbor_list

    structure = quartz()
    cg = CrystalGraph(r_cut=3.5, output="pyg", dtype=torch.float64)
    data = cg.featurize(structure)
    for name in ("x", "pos", "edge_attr", "edge_distance", "cell"):
        assert getattr(data, name).dtype == torch.float64, name
    from pymatgen.io.ase import AseAtomsAdaptor

    i, j, shift, d = neighbor_list("ijSd", AseAtomsAdaptor.get_atoms(structure), 3.5)
    ase_d = {(int(a), int(b), tuple(int(k) for k in s)): v for a, b, s, v in zip(i, j, shift, d)}
    ours = [ase_d[(int(a), int(b), tuple(s.tolist()))] for a, b, s in zip(*data.edge_index, data.edge_image)]
    np.testing.assert_allclose(data.edge_distance.numpy(), ours, rtol=1e-15, atol=0)
    np.testing.assert_allclose(data.edge_attr.numpy(), cg.expand_distances(np.asarray(ours)), rtol=1e-14, atol=1e-300)
    assert CrystalGraph(r_cut=3.5, output="pyg", dtype="float64").featurize(structure).edge_distance.dtype == torch.float64
    with pytest.raises(errors.InputError, match="dtype must be"):
        CrystalGraph(dtype=torch.float16)


def test_molecules_have_no_images():
    graph = CrystalGraph(r_cut=1.2).featurize(methanol())  # bonds only: C-H 1.09, C-O 1.43 is beyond
    assert all(key == (0, 0, 0) for *_, key in graph.edges(keys=True))
    assert graph.number_of_edges() == 2 * 4  # 3 C-H + 1 O-H, both directions


def test_bad_parameters_and_inputs():
    for bad in (dict(r_cut=0), dict(max_neighbors=0), dict(n_gaussians=1), dict(r_min=5.0), dict(output="dgl"),
                dict(node_properties=["colour"]), dict(gaussian_width=-1.0)):
        with pytest.raises(errors.InputError):
            CrystalGraph(**bad)
    with pytest.raises(errors.InputTypeError, match="ase.Atoms or a pymatgen"):
        CrystalGraph().featurize("SiO2")
    with pytest.raises(errors.InputError, match="no atoms"):
        CrystalGraph().featurize(Atoms())
    with pytest.raises(errors.MissingCellError, match="periodic directions"):
        CrystalGraph().featurize(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]], pbc=True))


def test_missing_element_data_is_refused_not_a_nan_node_feature():
    from pymatgen.core import Element

    argon = Structure(Lattice.cubic(5.26), ["Ar"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    assert np.isnan(Element("Ar").X)  # pymatgen has no Pauling electronegativity for argon
    with pytest.raises(errors.InputError, match="Ar has no 'electronegativity'"):
        CrystalGraph(r_cut=4.0, node_properties=["Z", "electronegativity"]).featurize(argon)
    graph = CrystalGraph(r_cut=4.0, node_properties=["Z", "covalent_radius"]).featurize(argon)
    assert np.isfinite(np.stack([x for _, x in graph.nodes(data="x")])).all()
