"""Graph files: every graph type the project builds round-trips through write_graphs/read_graphs
with its nodes, edges and every attribute (numpy arrays by value, dtype and shape)."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest
from ase.build import bulk

from reprs.errors import InputError
from reprs.featurizers.crystal_graph import CrystalGraph
from reprs.featurizers.molecular_graph import MolecularGraph
from reprs.glass import crystal_reference, local_environment, network
from reprs.glycans import glycan_graph
from reprs.graphio import read_graphs, write_graphs
from reprs.macromolecules import peptide_graph


def _quartz():
    atoms = crystal_reference("alpha-quartz", repeat=(2, 2, 2))
    atoms.rattle(stdev=0.05, seed=0)
    return atoms


BUILDERS = {
    "glycan": lambda: glycan_graph("Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc"),
    "glycan_floating": lambda: glycan_graph("{Fuc(a1-?)}Gal(b1-4)GlcNAc"),
    "glycan_unknown": lambda: glycan_graph("Foo(b1-4)GlcNAc", on_unknown="zero"),
    "peptide": lambda: peptide_graph("GAVK"),
    "glass_network": lambda: network(_quartz(), {("Si", "O"): "rdf"}),
    "cation_network": lambda: network(_quartz(), {("Si", "O"): 2.0}, bridge="O"),
    "local_environment": lambda: local_environment(network(_quartz(), {("Si", "O"): 2.0}), 0, 2),
    "crystal_graph": lambda: CrystalGraph(r_cut=3.0).featurize(bulk("NaCl", "rocksalt", a=5.64)),
    "molecular_graph": lambda: MolecularGraph().featurize("CC(=O)Oc1ccccc1C(=O)O"),
}


def _assert_same_value(ours, theirs, where):
    assert type(ours) is type(theirs), f"{where}: {type(ours).__name__} != {type(theirs).__name__}"
    if isinstance(ours, np.ndarray):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, where
        np.testing.assert_array_equal(ours, theirs, err_msg=where)
    elif isinstance(ours, dict):
        assert list(ours) == list(theirs), where
        for key in ours:
            _assert_same_value(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs), where
        for k, (a, b) in enumerate(zip(ours, theirs)):
            _assert_same_value(a, b, f"{where}[{k}]")
    else:
        assert ours == theirs, where


def assert_same_graph(read: nx.Graph, built: nx.Graph) -> None:
    assert type(read) is type(built)
    _assert_same_value(read.graph, built.graph, "graph")
    assert list(read.nodes) == list(built.nodes)
    for node in built.nodes:
        _assert_same_value(read.nodes[node], built.nodes[node], f"node {node!r}")
    if built.is_multigraph():
        edges_built = list(built.edges(keys=True, data=True))
        edges_read = list(read.edges(keys=True, data=True))
    else:
        edges_built, edges_read = list(built.edges(data=True)), list(read.edges(data=True))
    assert [e[:-1] for e in edges_read] == [e[:-1] for e in edges_built]
    for ours, theirs in zip(edges_read, edges_built):
        _assert_same_value(ours[-1], theirs[-1], f"edge {theirs[:-1]!r}")


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_every_graph_type_round_trips(kind, tmp_path):
    built = BUILDERS[kind]()
    assert isinstance(built, nx.Graph) and built.number_of_nodes() > 0
    path = write_graphs([built, built], tmp_path / "graphs.jsonl")
    read = read_graphs(path)
    assert len(read) == 2
    for graph in read:
        assert_same_graph(graph, built)


def test_glass_cutoffs_keep_their_tuple_keys(tmp_path):
    built = network(_quartz(), {("Si", "O"): 2.0, ("O", "O"): 2.7})
    (read,) = read_graphs(write_graphs([built], tmp_path / "g.jsonl"))
    assert read.graph["cutoffs"] == {("O", "Si"): 2.0, ("O", "O"): 2.7}


def test_arrays_keep_dtype_and_shape_and_tags_are_not_confused(tmp_path):
    graph = nx.Graph(
        empty=np.zeros((0, 3)),
        flags=np.array([True, False]),
        counts=np.arange(4, dtype=np.int32).reshape(2, 2),
        tagged={"__array__": [1, 2]},  # a user's dict that looks like a tag stays a dict
        nested=[(1, "a"), {"k": (2.5, None)}],
    )
    graph.add_node((0, 1), x=np.float32(1.5))
    graph.add_edge((0, 1), "b", weight=np.int64(3))
    (read,) = read_graphs(write_graphs([graph], tmp_path / "g.jsonl"))
    expected = dict(graph.graph)
    _assert_same_value(read.graph, expected, "graph")
    assert list(read.nodes) == [(0, 1), "b"] and read.nodes[(0, 1)]["x"] == 1.5
    assert read.edges[(0, 1), "b"]["weight"] == 3


def test_files_written_before_dtypes_were_kept_still_read(tmp_path):
    old = {"directed": False, "multigraph": False, "graph": {"name": "old"},
           "nodes": [{"id": 0, "x": {"__array__": [1, 2]}}], "edges": []}
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(old) + "\n")
    (read,) = read_graphs(path)
    assert read.nodes[0]["x"].dtype == np.float64 and read.nodes[0]["x"].tolist() == [1.0, 2.0]


def test_unwritable_attributes_are_refused(tmp_path):
    with pytest.raises(InputError, match="set"):
        write_graphs([nx.Graph(tags={"a", "b"})], tmp_path / "g.jsonl")
    with pytest.raises(InputError, match="dtype object"):
        write_graphs([nx.Graph(x=np.array([object()]))], tmp_path / "g.jsonl")
    assert not (tmp_path / "g.jsonl").exists()
