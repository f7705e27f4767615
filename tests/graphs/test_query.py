"""graphs.query: pairwise matrices and top-k, serial, on processes and on a real Dask cluster.

References: a plain double loop over the metric, GraKeL called directly, networkx's exact graph
edit distance.
"""

from __future__ import annotations

import tracemalloc
import warnings
from dataclasses import dataclass

import dask.distributed as distributed
import grakel
import networkx as nx
import numpy as np
import pytest

from graphs import dmeasure, ged
from graphs.errors import (
    EmptyDatasetError,
    InputError,
    InputTypeError,
    NonOptimalWarning,
    UnknownMetricError,
)
from graphs.kernels import GraphKernel
from graphs.query import PairMetric, metric_names, pairwise, top_k


def labelled_trees(seed: int, count: int, n_min: int = 1, n_max: int = 7) -> list[nx.Graph]:
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(count):
        n = int(rng.integers(n_min, n_max + 1))
        g = nx.random_labeled_tree(n, seed=int(rng.integers(2**31))) if n > 1 else nx.empty_graph(1)
        for v in g:
            g.nodes[v]["label"] = str(rng.choice(["Glc", "Gal", "Man"]))
            g.nodes[v]["x"] = rng.integers(0, 2, 5).astype(float)
        for u, v in g.edges():
            g.edges[u, v]["label"] = str(rng.choice(["a1-4", "b1-4"]))
        graphs.append(g)
    return graphs


# Module-level metrics: picklable for joblib and Dask.
def size_gap(a: nx.Graph, b: nx.Graph) -> float:
    """Asymmetric on purpose: node gap plus a penalty only when ``a`` has more edges."""
    more_edges = a.number_of_edges() > b.number_of_edges()
    return abs(a.number_of_nodes() - b.number_of_nodes()) + 0.5 * more_edges


def label_jaccard(a: nx.Graph, b: nx.Graph) -> float:
    la = set(nx.get_node_attributes(a, "label").values())
    lb = set(nx.get_node_attributes(b, "label").values())
    return 1.0 - len(la & lb) / len(la | lb)


@dataclass(frozen=True)
class Bound:
    """A result that may be a bound, with GEDResult's two fields."""

    distance: float
    optimal: bool


def bound_when_large(a: nx.Graph, b: nx.Graph) -> Bound:
    return Bound(float(len(a) + len(b)), optimal=len(a) + len(b) < 10)


def brute(graphs, metric, rows=None):
    rows = graphs if rows is None else rows
    return np.array([[metric(a, b) for b in graphs] for a in rows], dtype=float)


GRAPHS = labelled_trees(0, 23)


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        )
        with distributed.Client(cluster) as c:
            yield c
        cluster.close()


# ---- pairwise ---------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [1, 4, 7, 100, None])
def test_pairwise_callable_equals_double_loop(block):
    np.testing.assert_array_equal(pairwise(GRAPHS, size_gap, block=block), brute(GRAPHS, size_gap))


@pytest.mark.parametrize("block", [1, 5, 64])
def test_symmetric_metric_computes_one_triangle(block):
    calls = []

    def counted(a, b):
        calls.append(1)
        return label_jaccard(a, b)

    out = pairwise(GRAPHS, PairMetric(counted, symmetric=True), block=block)
    n = len(GRAPHS)
    assert len(calls) == n * (n + 1) // 2
    np.testing.assert_array_equal(out, brute(GRAPHS, label_jaccard))
    calls.clear()
    pairwise(GRAPHS, counted, block=block)  # a bare callable is not assumed symmetric
    assert len(calls) == n * n


def test_pairwise_kernels_equal_grakel():
    wl = pairwise(GRAPHS, "wl", block=5)
    ref = grakel.kernels.WeisfeilerLehman(normalize=True).fit_transform(
        list(grakel.graph_from_networkx(GRAPHS, node_labels_tag="label"))
    )
    np.testing.assert_array_equal(wl, ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp = pairwise(GRAPHS, "shortest_path")
        ref = grakel.kernels.ShortestPath(normalize=True).fit_transform(
            list(grakel.graph_from_networkx(GRAPHS, node_labels_tag="label"))
        )
    np.testing.assert_allclose(sp, np.nan_to_num(ref), rtol=1e-12, atol=1e-12)
    attr = pairwise(GRAPHS, "propagation_attr", metric_params={"t_max": 3, "seed": 4})
    ref = GraphKernel("propagation_attr", t_max=3, seed=4).fit_transform(GRAPHS)
    np.testing.assert_array_equal(attr, ref)


def test_pairwise_ged_equals_networkx():
    from graphs.costs import UniformCosts

    graphs = labelled_trees(5, 7, n_min=1, n_max=4)
    out, exact = pairwise(graphs, "ged", metric_params={"costs": UniformCosts()}, return_exact=True)

    def same(key):
        return lambda a, b: a[key] == b[key]

    def nx_ged(a, b):
        return nx.graph_edit_distance(a, b, node_match=same("label"), edge_match=same("label"))

    ref = brute(graphs, nx_ged)
    np.testing.assert_allclose(out, ref, atol=1e-6)
    assert exact.all()
    assert ged.graph_edit_distance(graphs[1], graphs[2], costs=UniformCosts()).optimal


def test_pairwise_ged_with_asymmetric_costs_computes_both_orders():
    # Inserting costs twice as much as deleting: GED(a, b) != GED(b, a). The matrix was mirrored
    # from its upper triangle, so its lower triangle held the other order's distances.
    from graphs.costs import CallableCosts

    prices = dict(node_ins_cost=lambda d: 2.0, node_del_cost=lambda d: 1.0,
                  edge_ins_cost=lambda d: 2.0, edge_del_cost=lambda d: 1.0,
                  node_subst_cost=lambda a, b: float(a["label"] != b["label"]))
    graphs = labelled_trees(5, 5, n_min=1, n_max=4)
    out = pairwise(graphs, "ged", metric_params={"costs": CallableCosts(**prices)}, block=2)
    ref = brute(graphs, lambda a, b: nx.graph_edit_distance(a, b, **prices))
    assert not np.allclose(ref, ref.T)  # the test needs an asymmetric case
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_bounds_are_flagged():
    with pytest.warns(NonOptimalWarning, match="bounds, not proven optimal"):
        values = pairwise(GRAPHS, PairMetric(bound_when_large, symmetric=True))
    metric = PairMetric(bound_when_large, symmetric=True)
    values2, exact = pairwise(GRAPHS, metric, return_exact=True)
    sizes = np.array([len(g) for g in GRAPHS])
    np.testing.assert_array_equal(values, sizes[:, None] + sizes[None, :])
    np.testing.assert_array_equal(values2, values)
    np.testing.assert_array_equal(exact, sizes[:, None] + sizes[None, :] < 10)
    with pytest.warns(NonOptimalWarning):
        result = top_k(GRAPHS[0], GRAPHS, bound_when_large, k=len(GRAPHS))
    np.testing.assert_array_equal(result.exact, len(GRAPHS[0]) + sizes[result.indices] < 10)


def test_ged_bounds_flagged_like_ged():
    from graphs.costs import UniformCosts

    graphs = labelled_trees(8, 8, n_min=4, n_max=7)
    params = {"costs": UniformCosts(), "method": "bipartite"}
    _, exact = pairwise(graphs, "ged", metric_params=params, return_exact=True)
    ref = np.array(
        [[ged.graph_edit_distance(a, b, **params).optimal for b in graphs] for a in graphs]
    )
    # Only one triangle is computed: compare it, the other is its mirror.
    upper = np.triu_indices(len(graphs))
    np.testing.assert_array_equal(exact[upper], ref[upper])


def test_progress_bar(capsys):
    pairwise(GRAPHS, size_gap, block=4, progress=True)
    # counted in pairs: a bare callable is not assumed symmetric, so all n * n of them
    err = capsys.readouterr().err
    assert "size_gap: " in err and f"/{len(GRAPHS) ** 2} [" in err
    pairwise(GRAPHS, size_gap, block=4, progress=False)
    assert capsys.readouterr().err == ""


def test_local_processes_equal_serial():
    serial = pairwise(GRAPHS, size_gap, block=6)
    np.testing.assert_array_equal(pairwise(GRAPHS, size_gap, block=6, n_jobs=2), serial)


# ---- Dask -------------------------------------------------------------------------------------


def test_dask_equals_serial(client):
    for metric, block in [(size_gap, 5), (PairMetric(label_jaccard, symmetric=True), 4), ("wl", 6)]:
        serial = pairwise(GRAPHS, metric, block=block)
        on_dask = pairwise(GRAPHS, metric, block=block, client=client)
        np.testing.assert_array_equal(on_dask, serial)
    params = {"t_max": 3, "seed": 2}
    np.testing.assert_array_equal(
        pairwise(GRAPHS, "propagation", metric_params=params, client=client),
        pairwise(GRAPHS, "propagation", metric_params=params),
    )
    for metric in (size_gap, "wl"):
        a = top_k(GRAPHS[3], GRAPHS, metric, k=5, block=4, client=client)
        b = top_k(GRAPHS[3], GRAPHS, metric, k=5, block=4)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.scores, b.scores)


def test_dask_ged_equals_serial(client):
    from graphs.costs import UniformCosts

    graphs = labelled_trees(9, 6, n_min=2, n_max=5)
    params = {"costs": UniformCosts()}
    np.testing.assert_array_equal(
        pairwise(graphs, "ged", metric_params=params, block=2, client=client),
        pairwise(graphs, "ged", metric_params=params, block=2),
    )


# ---- top-k ------------------------------------------------------------------------------------


def test_top_k_distance_ranks_ascending_with_ties_in_order():
    query = GRAPHS[4]
    result = top_k(query, GRAPHS, size_gap, k=8, block=3)
    scores = brute(GRAPHS, size_gap, rows=[query])[0]
    ref = sorted(range(len(GRAPHS)), key=lambda i: (scores[i], i))[:8]
    assert result.indices.tolist() == ref
    np.testing.assert_array_equal(result.scores, scores[ref])
    assert not result.similarity and result.metric == "size_gap"
    assert len(top_k(query, GRAPHS, size_gap, k=1000).indices) == len(GRAPHS)


@pytest.mark.parametrize("option", [{"exact": False}, {"time_budget": 0.5}])
def test_top_k_on_a_list_refuses_the_index_only_options(option):
    # they steer the certified search of an index; a list's GED takes method and timeout in metric_params
    with pytest.raises(InputError, match="apply to a GraphIndex"):
        top_k(GRAPHS[0], GRAPHS, "ged", k=3, **option)


@pytest.mark.parametrize("kind", ["wl", "propagation", "odd_sth"])
def test_top_k_kernel_equals_grakel_ranking(kind):
    query = labelled_trees(11, 1, n_min=5)[0]
    result = top_k(query, GRAPHS, kind, k=6)
    scores = GraphKernel(kind).fit(GRAPHS).transform([query])[0]
    if kind == "wl":  # and GraKeL itself, fitted on the dataset, the query transformed
        ref = grakel.kernels.WeisfeilerLehman(normalize=True)
        ref.fit(list(grakel.graph_from_networkx(GRAPHS, node_labels_tag="label")))
        q = list(grakel.graph_from_networkx([query], node_labels_tag="label"))
        np.testing.assert_array_equal(scores, ref.transform(q)[0])
    order = sorted(range(len(GRAPHS)), key=lambda i: (-scores[i], i))[:6]
    assert result.indices.tolist() == order
    np.testing.assert_array_equal(result.scores, scores[order])
    assert result.similarity


@pytest.mark.parametrize("call", ["top_k", "pairwise"])
def test_block_is_refused_by_name_for_one_block_grakel_kernels(call):
    """A GraKeL kernel other than the explicit WL is one GraKeL call over the dataset: block= did nothing
    (silently); it is refused, and a WL kernel on the GraKeL backend too. Unset, the answer is unchanged."""
    def run(metric, **kw):
        return top_k(GRAPHS[2], GRAPHS, metric, k=4, **kw) if call == "top_k" else pairwise(GRAPHS, metric, **kw)

    for metric, params in [("propagation", {"t_max": 3, "seed": 2}), ("shortest_path", {}),
                           ("wl", {"backend": "grakel"})]:
        with pytest.raises(InputError, match=f"block=4 does not apply to metric '{metric}'.*leave block unset"):
            run(metric, metric_params=params, block=4)
    assert run("wl", block=4) is not None  # the explicit WL map is cut into blocks
    sp = GraphKernel("shortest_path").fit_transform(GRAPHS)
    if call == "pairwise":
        np.testing.assert_array_equal(run("shortest_path"), sp)


def test_wl_top_k_never_builds_n_by_n():
    # 4000 graphs: an N x N float64 matrix is 128 MB; one sparse product per query needs far less.
    graphs = labelled_trees(12, 4000, n_min=2, n_max=6)
    query = graphs[17]
    top_k(query, graphs[:10], "wl", k=1)  # imports and first-call caches outside the measurement
    tracemalloc.start()
    result = top_k(query, graphs, "wl", k=3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16e6, f"peak {peak / 1e6:.0f} MB"
    assert result.indices[0] == 17 and result.scores[0] == pytest.approx(1.0)


# ---- bad input --------------------------------------------------------------------------------


def test_bad_input():
    assert {"ged", "dmeasure", "wl", "propagation_attr", "graph_hopper"} <= set(metric_names())
    with pytest.raises(InputError, match="dmeasure has no parameter"):
        pairwise(GRAPHS, "dmeasure", metric_params={"w": 1})
    with pytest.raises(UnknownMetricError, match="unknown metric 'gde'.*known: ged, dmeasure, wl"):
        pairwise(GRAPHS, "gde")
    with pytest.raises(UnknownMetricError):
        top_k(GRAPHS[0], GRAPHS, "nope", k=2)
    with pytest.raises(EmptyDatasetError, match="empty"):
        pairwise([], size_gap)
    with pytest.raises(EmptyDatasetError, match="empty"):
        top_k(GRAPHS[0], [], "wl", k=2)
    with pytest.raises(InputError, match="k must be a positive integer"):
        top_k(GRAPHS[0], GRAPHS, "wl", k=0)
    with pytest.raises(InputError, match="block"):
        pairwise(GRAPHS, size_gap, block=0)
    with pytest.raises(InputError, match="metric_params"):
        pairwise(GRAPHS, size_gap, metric_params={"a": 1})
    with pytest.raises(InputError, match="no parameter"):
        pairwise(GRAPHS, "wl", metric_params={"depth": 2})
    with pytest.raises(InputError, match="symmetric"):
        pairwise(GRAPHS, "wl", symmetric=False)
    with pytest.raises(InputTypeError, match="metric must be"):
        pairwise(GRAPHS, 3)
    with pytest.raises(InputTypeError, match="sequence of networkx graphs"):
        pairwise(GRAPHS[0], size_gap)
    with pytest.raises(InputTypeError, match=r"graphs\[1\] is str"):
        pairwise([GRAPHS[0], "Gal"], size_gap)
    with pytest.raises(InputTypeError, match="query"):
        top_k("Gal", GRAPHS, "wl")


def test_pairwise_dmeasure_equals_d_measure(client):
    graphs = labelled_trees(13, 12, n_min=2, n_max=9)
    ref = brute(graphs, dmeasure.d_measure)
    out = pairwise(graphs, "dmeasure", block=5)
    np.testing.assert_allclose(out, ref, atol=1e-12)
    np.testing.assert_array_equal(pairwise(graphs, "dmeasure", block=5, client=client), out)
    # A DiGraph (one direction per edge, as a glycan's child -> parent) is read without them.
    directed = []
    for g in graphs[:4]:
        d = nx.DiGraph()
        d.add_nodes_from(g)
        d.add_edges_from(g.edges())
        directed.append(d)
    np.testing.assert_allclose(pairwise(directed, "dmeasure"), ref[:4, :4], atol=1e-12)
    # Edge weights: refused by name (they were ignored), read unweighted with weight=None.
    weighted = [g.copy() for g in graphs[:4]]
    for g in weighted:
        nx.set_edge_attributes(g, 2.0, "weight")
    with pytest.raises(InputError, match="pass weight=None"):
        pairwise(weighted, "dmeasure")
    np.testing.assert_allclose(pairwise(weighted, "dmeasure", metric_params={"weight": None}), ref[:4, :4], atol=1e-12)
