"""Tests of :mod:`graphs.ged_bounds`: the multiset lower bounds never exceed the exact GED.

The reference is :func:`graphs.ged.graph_edit_distance` (exact, certified; itself checked against
networkx in tests/graphs/test_ged.py) and, on the smallest pairs, networkx's own exact GED.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from graphs.costs import CallableCosts, ChemicalCosts, UniformCosts
from graphs.errors import InputError, InputTypeError
from graphs.ged import graph_edit_distance
from graphs.ged_bounds import filter_features, multiset_lower_bounds

_MONO = (np.random.default_rng(11).random((8, 64)) < 0.15).astype(float)
_LINK = (np.random.default_rng(12).random((4, 24)) < 0.2).astype(float)


def _tree(rng: np.random.Generator, n: int, n_labels: int = 8) -> nx.DiGraph:
    """A glycan-like directed tree (arcs child -> parent) with labels and fingerprints tied."""
    G = nx.DiGraph()
    for v in range(n):
        c = int(rng.integers(n_labels))
        G.add_node(v, label=f"M{c}", x=_MONO[c])
        if v:
            u = int(rng.integers(max(0, v - 3), v))
            lk = int(rng.integers(4))
            G.add_edge(v, u, label=f"L{lk}", x=_LINK[lk])
    return G


def _graph(rng: np.random.Generator, n: int) -> nx.Graph:
    """An undirected random graph with few labels (so that classes repeat)."""
    G = nx.gnp_random_graph(n, 0.5, seed=int(rng.integers(2**31)))
    for v in G:
        c = int(rng.integers(3))
        G.nodes[v].update(label="ABC"[c], x=_MONO[c])
    for e in G.edges:
        c = int(rng.integers(2))
        G.edges[e].update(label="ab"[c], x=_LINK[c])
    return G


def _check_never_above(queries, dataset, costs) -> np.ndarray:
    """Assert LB <= exact GED for every (query, graph) pair; return the ratios LB / GED."""
    features = filter_features(dataset, costs)
    ratios = []
    for q in queries:
        bounds = multiset_lower_bounds(q, features, costs)
        for g, bound in zip(dataset, bounds):
            exact = graph_edit_distance(q, g, costs=costs)
            assert exact.optimal
            assert bound <= exact.distance + 1e-9, (bound, exact.distance)
            if exact.distance > 0:
                ratios.append(bound / exact.distance)
            else:
                assert bound == 0.0
    return np.asarray(ratios)


@pytest.mark.parametrize("costs", [ChemicalCosts(), UniformCosts(),
                                   UniformCosts(node_sub=3.0, node_indel=1.0, edge_sub=0.5,
                                                edge_indel=2.0)],
                         ids=["chemical", "unit", "uneven"])
def test_never_above_exact_on_glycan_like_trees(costs):
    rng = np.random.default_rng(0)
    dataset = [_tree(rng, int(n)) for n in rng.integers(1, 9, size=24)] + [nx.DiGraph()]
    queries = [_tree(rng, int(n)) for n in (1, 3, 5, 7, 9)] + [dataset[3]]
    ratios = _check_never_above(queries, dataset, costs)
    assert len(ratios) > 100
    # A filter that is always 0 would pass the line above: it must also be informative.
    assert np.median(ratios) > 0.5


@pytest.mark.parametrize("costs", [ChemicalCosts(), UniformCosts()], ids=["chemical", "unit"])
def test_never_above_exact_on_undirected_random_graphs(costs):
    rng = np.random.default_rng(1)
    dataset = [_graph(rng, int(n)) for n in rng.integers(0, 7, size=20)]
    queries = [_graph(rng, int(n)) for n in (2, 4, 6)]
    _check_never_above(queries, dataset, costs)


def test_never_above_networkx_exact_on_tiny_graphs():
    rng = np.random.default_rng(2)
    dataset = [_tree(rng, int(n), n_labels=3) for n in (1, 2, 3, 4)]
    query = _tree(rng, 4, n_labels=3)
    bounds = multiset_lower_bounds(query, filter_features(dataset, UniformCosts()), UniformCosts())
    for g, bound in zip(dataset, bounds):
        reference = nx.graph_edit_distance(
            query, g, node_match=lambda a, b: a["label"] == b["label"],
            edge_match=lambda a, b: a["label"] == b["label"])
        assert bound <= reference + 1e-9


def test_unit_costs_give_at_least_the_label_multiset_closed_form():
    """With unit costs the multiset part is |n1 - n2| + min(n1, n2) - common labels (the LSAP
    optimum) for nodes and for edges; the degree term can only raise the edge part."""
    rng = np.random.default_rng(3)
    dataset = [_tree(rng, int(n), n_labels=4) for n in rng.integers(1, 10, size=30)]
    query = _tree(rng, 6, n_labels=4)
    bounds = multiset_lower_bounds(query, filter_features(dataset, UniformCosts()), UniformCosts())

    def part(a, b):
        common = sum(min(a.count(x), b.count(x)) for x in set(a))
        return abs(len(a) - len(b)) + min(len(a), len(b)) - common

    for g, bound in zip(dataset, bounds):
        nodes = part([d["label"] for _, d in query.nodes(data=True)],
                     [d["label"] for _, d in g.nodes(data=True)])
        edges = part([d["label"] for *_, d in query.edges(data=True)],
                     [d["label"] for *_, d in g.edges(data=True)])
        assert bound >= nodes + edges - 1e-6


def test_degree_term_counts_edges_that_must_move():
    """A 5-node star and a 5-node path with all labels equal: the multisets agree, but the sorted
    degree sequences (4,1,1,1,1) and (2,2,2,1,1) differ by 4, so at least 2 edges are deleted or
    inserted (module docstring)."""
    star, path = nx.star_graph(4), nx.path_graph(5)
    for G in (star, path):
        nx.set_node_attributes(G, "C", "label")
        nx.set_edge_attributes(G, "-", "label")
    bound = multiset_lower_bounds(star, filter_features([path], UniformCosts()), UniformCosts())[0]
    assert bound == pytest.approx(2.0, abs=1e-6)
    assert bound <= graph_edit_distance(star, path, costs=UniformCosts()).distance + 1e-9


def test_identical_graph_bound_is_zero_and_a_substitution_is_exact():
    G = _tree(np.random.default_rng(4), 5)
    H = G.copy()
    other = 7 if G.nodes[2]["label"] != "M7" else 6
    H.nodes[2].update(label=f"M{other}", x=_MONO[other])
    feats = filter_features([G, H], ChemicalCosts())
    bounds = multiset_lower_bounds(G, feats, ChemicalCosts())
    assert bounds[0] == 0.0
    # One substituted node: positive, and at most that substitution's cost.
    exact = graph_edit_distance(G, H, costs=ChemicalCosts()).distance
    assert 0 < bounds[1] <= exact + 1e-9


def test_new_vocabulary_ids_are_kept_when_extending():
    rng = np.random.default_rng(5)
    first = [_tree(rng, 4) for _ in range(5)]
    more = [_tree(rng, 6, n_labels=8) for _ in range(5)]
    a = filter_features(first, ChemicalCosts())
    b = filter_features(more, ChemicalCosts(), vocabulary=a.vocabulary)
    na = len(a.vocabulary["nodes"])
    np.testing.assert_array_equal(b.vocabulary["nodes"].values[:na], a.vocabulary["nodes"].values)
    whole = filter_features(first + more, ChemicalCosts())
    q = _tree(rng, 5)
    np.testing.assert_allclose(
        multiset_lower_bounds(q, b, ChemicalCosts()),
        multiset_lower_bounds(q, whole, ChemicalCosts(), select=np.arange(5, 10)))


def test_bad_input():
    G = _tree(np.random.default_rng(6), 3)
    feats = filter_features([G], ChemicalCosts())
    with pytest.raises(InputTypeError, match="ChemicalCosts and UniformCosts"):
        filter_features([G], CallableCosts())
    with pytest.raises(InputError, match="made for"):
        multiset_lower_bounds(G, feats, UniformCosts())
    with pytest.raises(InputTypeError, match="networkx graph"):
        multiset_lower_bounds("Gal", feats, ChemicalCosts())
    bare = nx.DiGraph()
    bare.add_node(0, label="M0")
    with pytest.raises(InputError, match="no 'x' attribute"):
        multiset_lower_bounds(bare, feats, ChemicalCosts())


@pytest.mark.slow
def test_never_above_exact_on_thousands_of_pairs():
    rng = np.random.default_rng(7)
    for costs in (ChemicalCosts(), UniformCosts()):
        dataset = [_tree(rng, int(n)) for n in rng.integers(1, 13, size=80)]
        queries = [_tree(rng, int(n)) for n in rng.integers(1, 13, size=20)]
        _check_never_above(queries, dataset, costs)  # 1,600 pairs per cost model
