"""Tests of :mod:`graphs.index` and :mod:`graphs.search` on a subset of the bundled glycans.

References: brute-force exact GED over every (query, graph) pair (:func:`graphs.ged.
graph_edit_distance`, itself checked against networkx in test_ged.py), and the WL kernel of
:func:`graphs.query.top_k` on the original graphs.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from graphs.costs import ChemicalCosts, UniformCosts
from graphs.errors import IndexStateError, InputError, UnknownMetricError
from graphs.ged import graph_edit_distance
from graphs.index import GraphIndex
from graphs.query import top_k
from graphs.search import index_top_k, within


@pytest.fixture(scope="module")
def glycans():
    """60 bundled glycans of at most 12 residues, drawn with a fixed seed, with their strings."""
    from reprs.datasets import load_glycans
    from reprs.glycans import build_glycan_graphs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = load_glycans(level="Kingdom")
    sample = table.sample(400, random_state=0)["glycan"].tolist()
    graphs, _ = build_glycan_graphs(sample, errors="skip")
    pairs = [(s, g) for s, g in zip(sample, graphs) if g is not None and len(g) <= 12][:60]
    return [s for s, _ in pairs], [g for _, g in pairs]


@pytest.fixture(scope="module")
def index(glycans, tmp_path_factory):
    names, graphs = glycans
    return GraphIndex.build(graphs, tmp_path_factory.mktemp("index"), names=names,
                            labels=[f"L{i % 3}" for i in range(len(graphs))])


def _brute_force(query, graphs, costs):
    return np.array([graph_edit_distance(query, g, costs=costs).distance for g in graphs])


def test_round_trip_keeps_what_the_metrics_read(glycans, index):
    names, graphs = glycans
    again = GraphIndex.open(index.path)
    assert again.key == index.key and again.n_graphs == len(graphs)
    assert list(again.names) == names and again.labels[4] == "L1"
    for i in (0, 7, 31):
        rebuilt = again.graph(i)
        assert sorted(d["label"] for _, d in rebuilt.nodes(data=True)) == sorted(
            d["label"] for _, d in graphs[i].nodes(data=True))
        for costs in (ChemicalCosts(), UniformCosts()):
            assert graph_edit_distance(rebuilt, graphs[i], costs=costs).distance == pytest.approx(0)


def test_wl_from_the_index_equals_top_k_on_the_graphs(glycans, index):
    _, graphs = glycans
    for q in (graphs[2], graphs[40]):
        ours = top_k(q, index, "wl", k=8)
        reference = top_k(q, graphs, "wl", k=8)
        np.testing.assert_allclose(ours.scores, reference.scores, rtol=1e-12)
        np.testing.assert_array_equal(ours.indices, reference.indices)


@pytest.mark.parametrize("k", [1, 5])
def test_certified_ged_top_k_equals_brute_force(glycans, index, k):
    _, graphs = glycans
    for q in (graphs[0], graphs[17], graphs[45]):
        result = index_top_k(q, index, "ged", k)
        assert result.certified and result.certified_rows.all() and result.exact.all()
        reference = _brute_force(q, graphs, ChemicalCosts())
        expected = np.sort(reference)[:k]
        np.testing.assert_allclose(result.scores, expected, atol=1e-6)
        # Rows closer than the k-th distance are the same graphs (ties at the k-th may differ).
        strict = result.scores < expected[-1] - 1e-6
        assert set(result.indices[strict]) == set(np.flatnonzero(reference < expected[-1] - 1e-6))
        # The filter saved work: fewer exact solves than graphs.
        assert result.n_exact < len(graphs)


def test_range_query_equals_brute_force(glycans, index):
    _, graphs = glycans
    q = graphs[9]
    reference = _brute_force(q, graphs, ChemicalCosts())
    threshold = float(np.sort(reference)[6])
    result = within(q, index, "ged", threshold)
    assert result.certified
    assert set(result.indices) == set(np.flatnonzero(reference <= threshold + 1e-6))
    np.testing.assert_allclose(result.scores, reference[result.indices], atol=1e-6)


def test_unit_cost_index_and_the_query_dispatch(glycans, tmp_path):
    _, graphs = glycans
    idx = GraphIndex.build(graphs[:30], tmp_path / "u", kernels=(), ged_costs=UniformCosts())
    q = graphs[33]
    result = top_k(q, idx, "ged", k=4)
    reference = _brute_force(q, graphs[:30], UniformCosts())
    np.testing.assert_allclose(result.scores, np.sort(reference)[:4], atol=1e-6)
    with pytest.raises(IndexStateError, match="no WL features"):
        top_k(q, idx, "wl", k=3)


def test_add_equals_building_on_all_graphs(glycans, tmp_path):
    names, graphs = glycans
    grown = GraphIndex.build(graphs[:20], tmp_path / "a", names=names[:20]).add(
        graphs[20:35], names=names[20:35])
    whole = GraphIndex.build(graphs[:35], tmp_path / "b", names=names[:35])
    assert grown.key == whole.key and grown.n_graphs == 35
    q = graphs[50]
    np.testing.assert_allclose(grown.wl_similarities(q), whole.wl_similarities(q), rtol=1e-12)
    a = index_top_k(q, grown, "ged", 3)
    b = index_top_k(q, whole, "ged", 3)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


def test_time_budget_returns_flagged_bounds(glycans, index):
    _, graphs = glycans
    result = index_top_k(graphs[3], index, "ged", 10, time_budget=1e-4)
    assert result.status == "time_budget" and not result.certified
    assert len(result.indices) == 10
    assert (result.lower_bounds <= result.scores + 1e-9).all()
    assert not result.certified_rows[~result.exact].any()


def test_corrupted_partial_and_mismatched_indexes_are_refused(glycans, tmp_path):
    _, graphs = glycans
    path = tmp_path / "idx"
    GraphIndex.build(graphs[:10], path)
    data = bytearray((path / "ged.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "ged.npz").write_bytes(bytes(data))
    with pytest.raises(IndexStateError, match="does not match the hash.*rebuild"):
        GraphIndex.open(path)
    GraphIndex.build(graphs[:10], path)
    (path / "manifest.json").unlink()
    with pytest.raises(IndexStateError, match="partly written.*rebuild"):
        GraphIndex.open(path)
    GraphIndex.build(graphs[:10], path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexStateError, match="version"):
        GraphIndex.open(path)
    GraphIndex.build(graphs[:10], path, kernels=())
    with pytest.raises(IndexStateError, match="built for GED costs.*rebuild"):
        GraphIndex.open(path, ged_costs=UniformCosts())
    with pytest.raises(IndexStateError, match="without \\['wl'\\]"):
        GraphIndex.open(path, kernels=("wl",))
    with pytest.raises(IndexStateError, match="no index"):
        GraphIndex.open(tmp_path / "nothing")


def test_fingerprints_other_than_bits_are_refused_not_truncated(tmp_path):
    # The index stores 'x' as uint8 bits: a continuous feature (0.12, 1.61) came back as 0 and 1.
    import networkx as nx

    g = nx.Graph()
    g.add_node(0, label="C", x=np.array([0.12, 1.0]))
    g.add_node(1, label="O", x=np.array([0.0, 1.0]))
    g.add_edge(0, 1, label="-", x=np.array([1.0]))
    with pytest.raises(InputError, match="graph 0, node 0: 'x' must be a 1-D binary fingerprint"):
        GraphIndex.build([g], tmp_path / "a", ged_costs=UniformCosts())
    g.nodes[0]["x"] = np.array([0.0, 1.0])
    g.edges[0, 1]["x"] = np.array([1.61])
    with pytest.raises(InputError, match=r"graph 0, edge \(0, 1\): 'x' must be"):
        GraphIndex.build([g], tmp_path / "b", kernels=(), ged_costs=None)
    g.edges[0, 1]["x"] = np.array([1.0])
    index = GraphIndex.build([g, g.copy()], tmp_path / "c", ged_costs=UniformCosts())
    np.testing.assert_array_equal(index.graph(1).nodes[1]["x"], [0.0, 1.0])


def test_bad_queries(glycans, index):
    _, graphs = glycans
    with pytest.raises(InputError, match="k must be an integer from 1 to the 60"):
        index_top_k(graphs[0], index, "ged", 61)
    with pytest.raises(IndexStateError, match="built for GED costs"):
        index_top_k(graphs[0], index, "ged", 3, costs=UniformCosts())
    with pytest.raises(UnknownMetricError):
        index_top_k(graphs[0], index, "dmeasure", 3)
    with pytest.raises(UnknownMetricError, match="features of"):
        GraphIndex.build(graphs[:3], index.path.parent / "x", kernels=("shortest_path",))
    with pytest.raises(InputError, match="time_budget"):
        index_top_k(graphs[0], index, "ged", 3, time_budget=0)


def test_certified_knn_graph_equals_brute_force_and_resumes(glycans, index, tmp_path):
    from graphs.search import knn_graph

    _, graphs = glycans
    out = tmp_path / "knn.npz"
    result = knn_graph(index, 3, out, rows=[0, 17], chunk=1)
    for i in (0, 17):
        reference = _brute_force(graphs[i], graphs, ChemicalCosts())
        reference[i] = np.inf
        np.testing.assert_allclose(result["distances"][i], np.sort(reference)[:3], atol=1e-6)
        assert i not in result["indices"][i] and result["certified"][i]
    assert (result["indices"][1] == -1).all()
    again = knn_graph(index, 3, out, rows=[0, 17], chunk=1)  # every chunk done: nothing recomputed
    np.testing.assert_array_equal(again["seconds"][[0, 17]], result["seconds"][[0, 17]])
    with pytest.raises(InputError, match="another job"):
        knn_graph(index, 2, out, rows=[0, 17], chunk=1)
    with pytest.raises(InputError, match="k must be an integer from 1 to 59"):
        knn_graph(index, 60, tmp_path / "x.npz")


@pytest.mark.parametrize("module", ["iupac.py", "macromolecules.py", "fingerprints.py", "inputs.py", "glycans.py",
                                    "monomers.py", "glycan_monomers.csv"])
def test_the_bundled_index_goes_stale_when_any_code_between_string_and_graph_changes(module, monkeypatch):
    # The parser (reprs.iupac), the graph builder and the monomer fingerprints decide the graphs as
    # much as reprs.glycans does: an edit to any of them must make a cached index stale.
    from pathlib import Path

    from graphs.index import dataset_source

    before = dataset_source("glycans")["code"]
    read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read(self) + (b"\n# edited" if self.name == module else b""))
    assert dataset_source("glycans")["code"] != before


def test_the_index_of_a_csv_of_glycans_goes_stale_when_the_code_or_monomer_table_changes(tmp_path, monkeypatch):
    # A CSV's strings become graphs through the same parser, monomer table and fingerprints as the
    # bundled set; its source recorded the file's bytes only, so after an edit of the monomer table
    # the cached index of the old graphs was still opened as current. A .jsonl holds built graphs.
    from pathlib import Path

    import pandas as pd

    from graphs.index import dataset_source

    csv, jsonl = tmp_path / "g.csv", tmp_path / "g.jsonl"
    pd.DataFrame({"glycan": ["Gal(b1-4)GlcNAc", "Man(a1-3)Man"]}).to_csv(csv, index=False)
    jsonl.write_text("")
    before, built = dataset_source(str(csv)), dataset_source(str(jsonl))
    read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read(self) + (
        b"\n# edited" if self.name == "glycan_monomers.csv" else b""))
    assert dataset_source(str(csv)) != before
    assert dataset_source(str(jsonl)) == built


def test_the_index_of_a_csv_of_glycans_goes_stale_when_glyles_changes(tmp_path, monkeypatch):
    # A CSV may name monomers outside the bundled table (Man3Me4Me); GlyLES builds their SMILES,
    # hence their fingerprints, when the graphs are built. The source recorded RDKit's version but
    # not GlyLES's, so after a GlyLES upgrade the cached index of the old fingerprints was still
    # opened as current. The bundled glycans never reach GlyLES (every name is in the table).
    import importlib.metadata

    import pandas as pd

    import reprs.monomers
    from graphs.index import dataset_source
    from reprs.glycans import glycan_graph

    calls = []
    resolve = reprs.monomers._glyles_smiles
    monkeypatch.setattr(reprs.monomers, "_glyles_smiles", lambda name: calls.append(name) or resolve(name))
    bundled_library = reprs.monomers.glycan_library()
    fresh = reprs.monomers.MonomerLibrary(bundled_library.table, aliases=bundled_library.aliases,
                                          resolver=reprs.monomers.resolve_glycan_monomer, kind="glycan")
    glycan_graph("Man3Me4Me(a1-3)Man", library=fresh)  # a library without the process's resolved names
    assert calls == ["Man3Me4Me"]  # the graph's SMILES come from GlyLES

    csv = tmp_path / "g.csv"
    pd.DataFrame({"glycan": ["Man3Me4Me(a1-3)Man"]}).to_csv(csv, index=False)
    before, bundled = dataset_source(str(csv)), dataset_source("glycans")
    version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "99.0" if name == "glyles" else version(name))
    assert dataset_source(str(csv)) != before
    assert dataset_source("glycans") == bundled


def test_a_changed_dataset_gets_a_new_cached_index_and_an_explicit_one_is_refused(tmp_path, monkeypatch):
    import pandas as pd

    from graphs.index import dataset_index

    monkeypatch.setenv("MATREP_INDEX_DIR", str(tmp_path / "cache"))
    csv = tmp_path / "g.csv"
    pd.DataFrame({"glycan": ["Gal(b1-4)GlcNAc", "Man(a1-3)Man"]}).to_csv(csv, index=False)
    first = dataset_index(str(csv))
    assert first.path.parent == tmp_path / "cache" and dataset_index(str(csv)).key == first.key
    built = dataset_index(str(csv), path=tmp_path / "explicit")
    pd.DataFrame({"glycan": ["Gal(b1-4)GlcNAc", "Fuc(a1-2)Gal"]}).to_csv(csv, index=False)
    second = dataset_index(str(csv))  # stale: the file's hash changed, so another cached index
    assert second.path != first.path and second.key != first.key
    assert list(second.names) == ["Gal(b1-4)GlcNAc", "Fuc(a1-2)Gal"]
    with pytest.raises(IndexStateError, match="not the dataset asked"):
        dataset_index(str(csv), path=built.path)
    (second.path / "graphs.npz").write_bytes(b"x")  # a damaged cached index is rebuilt, not used
    messages = []
    third = dataset_index(str(csv), log=messages.append)
    assert third.key == second.key and "unusable" in messages[0]


@pytest.mark.parametrize("module", ["wl.py", "ged_bounds.py", "index.py", "costs.py"])
def test_an_index_goes_stale_when_the_code_of_its_stored_features_changes(module, tmp_path, monkeypatch):
    # The stored WL / GED filter features and the graph encoding come from graphs code that only
    # the VERSION constant guarded: after an edit there an index of old features was opened as
    # current and compared with a query's new ones. Such an index is refused, and a cached
    # dataset index is rebuilt once.
    from pathlib import Path

    import pandas as pd

    from graphs.index import dataset_index

    monkeypatch.setenv("MATREP_INDEX_DIR", str(tmp_path / "cache"))
    csv = tmp_path / "g.csv"
    pd.DataFrame({"glycan": ["Gal(b1-4)GlcNAc", "Man(a1-3)Man"]}).to_csv(csv, index=False)
    first = dataset_index(str(csv))
    read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read(self) + (
        b"\n# edited" if self.name == module and self.parent.name == "graphs" else b""))
    with pytest.raises(IndexStateError, match="built by other code.*rebuild"):
        GraphIndex.open(first.path)
    messages = []
    second = dataset_index(str(csv), log=messages.append)
    assert "unusable" in messages[0] and "other code" in messages[0]
    assert second.key != first.key and list(second.names) == list(first.names)
    assert dataset_index(str(csv)).key == second.key  # rebuilt once, then current
