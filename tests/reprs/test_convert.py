"""Converters to PyTorch Geometric and GraKeL, and the JSON-lines graph files."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

from reprs import glycan_graph, to_grakel, to_pyg
from reprs.errors import EmptyGraphError, InputError, InputTypeError
from reprs.graphio import read_graphs, write_graphs

GLYCAN = "{Fuc(a1-2)}Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc(b1-2)Man"


def test_to_pyg_keeps_features_and_directed_edges():
    graph = glycan_graph(GLYCAN)
    data = to_pyg(graph, dtype=torch.float64)
    assert data.num_nodes == 6 and data.x.dtype == torch.float64
    np.testing.assert_array_equal(data.x.numpy(), np.stack([graph.nodes[n]["x"] for n in graph]))
    pairs = {tuple(p) for p in data.edge_index.T.tolist()}
    assert pairs == set(graph.edges)  # child -> parent, node ids are row indices
    for k, (u, v) in enumerate(data.edge_index.T.tolist()):
        np.testing.assert_array_equal(data.edge_attr[k].numpy(), graph.edges[u, v]["x"])
    assert to_pyg(graph, undirected=True).edge_index.shape == (2, 2 * graph.number_of_edges())


def test_to_pyg_matches_pyg_own_converter():
    from torch_geometric.utils import from_networkx

    graph = glycan_graph("Gal(b1-4)GlcNAc(b1-2)Man")
    bare = nx.DiGraph()  # PyG's converter tensorises every attribute: give it the vectors only
    bare.add_nodes_from((n, {"x": d["x"]}) for n, d in graph.nodes(data=True))
    bare.add_edges_from((u, v, {"x": d["x"]}) for u, v, d in graph.edges(data=True))
    theirs = from_networkx(bare, group_node_attrs=["x"], group_edge_attrs=["x"])
    ours = to_pyg(graph, dtype=theirs.x.dtype)
    assert torch.equal(ours.x, theirs.x)
    assert torch.equal(ours.edge_index, theirs.edge_index)
    assert torch.equal(ours.edge_attr, theirs.edge_attr)


def test_undirected_to_pyg_stores_a_self_loop_once_as_pyg_does():
    """An undirected self-loop was mirrored onto itself and stored twice (checked on the old code), so
    a message-passing layer summed the node's own message twice; PyG's ``from_networkx`` stores it once.
    Compared as multisets of (source, target, features), PyG interleaving the two directions."""
    from collections import Counter

    from torch_geometric.utils import from_networkx

    graph = nx.Graph()
    graph.add_nodes_from((v, {"x": [float(v), 1.0]}) for v in range(4))
    graph.add_edges_from([(0, 1, {"x": [1.0]}), (1, 1, {"x": [2.0]}), (1, 2, {"x": [3.0]}), (3, 3, {"x": [4.0]})])
    theirs = from_networkx(graph, group_node_attrs=["x"], group_edge_attrs=["x"])
    ours = to_pyg(graph, dtype=theirs.x.dtype)

    def entries(data):
        return Counter(zip(map(tuple, data.edge_index.T.tolist()), map(tuple, data.edge_attr.tolist())))

    assert ours.edge_index.shape == theirs.edge_index.shape == (2, 6)
    assert entries(ours) == entries(theirs)


def test_to_grakel_wl_kernel_equals_grakel_on_networkx_input():
    from grakel.kernels import WeisfeilerLehman
    from grakel.utils import graph_from_networkx

    graphs = [glycan_graph(g) for g in ("Gal(b1-4)GlcNAc(b1-2)Man", "Fuc(a1-2)Gal(b1-4)GlcNAc", GLYCAN)]
    ours = WeisfeilerLehman(n_iter=3, normalize=True).fit_transform([to_grakel(g) for g in graphs])
    undirected = [g.to_undirected() for g in graphs]
    theirs = WeisfeilerLehman(n_iter=3, normalize=True).fit_transform(
        list(graph_from_networkx(undirected, node_labels_tag="label"))
    )
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    assert to_grakel(graphs[2]).get_labels()[0] == "Fuc"  # the isolated floating residue is kept


def test_converters_reject_bad_graphs():
    with pytest.raises(EmptyGraphError):
        to_pyg(nx.Graph())
    with pytest.raises(InputTypeError):
        to_grakel("Gal(b1-4)Glc")
    graph = nx.Graph()
    graph.add_node(0, label="C")
    with pytest.raises(InputError, match="needs an 'x'"):
        to_pyg(graph)


def test_graph_files_round_trip(tmp_path):
    graphs = [glycan_graph(GLYCAN), glycan_graph("Gal(b1-4)Glc", linkage="anomer")]
    path = write_graphs(graphs, tmp_path / "g.jsonl")
    again = read_graphs(path)
    assert [g.graph["name"] for g in again] == [g.graph["name"] for g in graphs]
    for a, b in zip(graphs, again):
        assert list(a.nodes) == list(b.nodes) and list(a.edges) == list(b.edges)
        assert b.is_directed() and a.graph["root"] == b.graph["root"]
        for n in a:
            np.testing.assert_array_equal(a.nodes[n]["x"], b.nodes[n]["x"])
        for e in a.edges:
            assert a.edges[e]["label"] == b.edges[e]["label"]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_undirected_to_pyg_refuses_a_digraph_that_holds_both_directions():
    """A DiGraph with u -> v and v -> u was mirrored into four edges for the pair (checked on the old
    code: edge_index of 4 columns, each direction twice), so message passing summed it twice; PyG's
    own undirected graphs hold each direction once."""
    graph = nx.DiGraph()
    graph.add_nodes_from((v, {"x": [float(v)]}) for v in range(3))
    graph.add_edges_from([(0, 1, {"x": [1.0]}), (1, 0, {"x": [1.0]}), (2, 1, {"x": [2.0]})])
    with pytest.raises(InputError, match=r"already has both 0 -> 1 and back \(1 such pair"):
        to_pyg(graph, undirected=True)
    assert to_pyg(graph).edge_index.shape == (2, 3)  # as stored
    one_way = graph.copy()
    one_way.remove_edge(1, 0)
    assert to_pyg(one_way, undirected=True).edge_index.shape == (2, 4)
