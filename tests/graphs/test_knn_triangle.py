"""Triangle bounds and the certified exact-GED k-nearest-neighbour graph (:mod:`graphs.search`).

References: exact GED of every ordered pair of a glycan subset (:func:`graphs.ged.
graph_edit_distance`, checked against networkx in test_ged.py): the brute-force k nearest
neighbours, the symmetry and the triangle inequality the bounds rely on (proof in
:mod:`graphs.ged_bounds`, section "Metric").
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from graphs.costs import ChemicalCosts, UniformCosts
from graphs.errors import IndexStateError, InputError
from graphs.ged import graph_edit_distance
from graphs.index import GraphIndex
from graphs.search import NeighbourTable, knn_graph


def _glycans(n: int, max_nodes: int, seed: int) -> list:
    from reprs.datasets import load_glycans
    from reprs.glycans import build_glycan_graphs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = load_glycans(level="Kingdom")
    sample = table.sample(8 * n, random_state=seed)["glycan"].tolist()
    graphs, _ = build_glycan_graphs(sample, errors="skip")
    return [g for g in graphs if g is not None and 2 <= len(g) <= max_nodes][:n]


def _all_pairs(graphs: list, costs, method: str = "exact", what: str = "distance",
               symmetric: bool = False) -> np.ndarray:
    """``what`` of every ordered pair (``symmetric``: of i < j only, mirrored)."""
    n = len(graphs)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1 if symmetric else 0, n):
            if i != j:
                out[i, j] = getattr(graph_edit_distance(graphs[i], graphs[j], costs=costs,
                                                        method=method), what)
    return np.triu(out) + np.triu(out, 1).T if symmetric else out


@pytest.fixture(scope="module")
def small():
    """24 glycans of 2 to 9 residues with the exact GED of every ordered pair (GLAMOUR's costs)."""
    graphs = _glycans(24, 9, seed=3)
    return graphs, _all_pairs(graphs, ChemicalCosts())


@pytest.mark.parametrize("uniform", [False, True])
def test_ged_is_a_metric_and_triangle_bounds_never_exceed_it(small, uniform):
    graphs, exact = small
    costs = UniformCosts() if uniform else ChemicalCosts()
    if uniform:
        graphs = graphs[:16]
        exact = _all_pairs(graphs, costs)
    upper = _all_pairs(graphs, costs, "bipartite", "upper_bound")
    lower = _all_pairs(graphs, costs, "bipartite", "lower_bound")
    n = len(graphs)
    np.testing.assert_allclose(exact, exact.T, atol=2e-6)
    assert (upper >= exact - 1e-9).all() and (lower <= exact + 1e-6).all()
    # Every triple: the exact triangle inequality, and both bounds the search derives from it.
    through = exact[:, :, None] + exact[None, :, :]  # [q, p, y] = d(q, p) + d(p, y)
    assert (exact[:, None, :] <= through + 2e-6).all()
    for left in (exact, lower):
        bound = left[:, :, None] - upper[None, :, :]  # [q, p, y] = LB(q, p) - UB(p, y)
        assert (bound <= exact[:, None, :] + 2e-6).all()
    assert n ** 3 >= 4000
    # The bound is not vacuous: it beats 0 on many triples.
    assert ((exact[:, :, None] - upper[None, :, :]) > 1.0).mean() > 0.1


def test_neighbour_table_lists_upper_bounds_of_similar_graphs(small, tmp_path):
    graphs, exact = small
    index = GraphIndex.build(graphs, tmp_path / "index")
    table = NeighbourTable(index, 5)
    for p in (0, 7, 20):
        ys = table.similar(p)
        assert len(ys) == 5 and p not in ys.tolist() and table.similar(p) is ys  # kept
        ubs = table.upper(p, ys)
        assert (ubs >= exact[p, ys] - 1e-9).all()
        np.testing.assert_array_equal(table.upper(int(ys[0]), np.array([p])), ubs[:1])  # symmetric
    assert table.built == 3 and table.pairs <= 15
    with pytest.raises(InputError, match="m must be"):
        NeighbourTable(index, 0)
    with pytest.raises(IndexStateError, match="WL and GED"):
        NeighbourTable(GraphIndex.build(graphs, tmp_path / "bare", kernels=()), 3)


def _check_knn(result: dict, exact: np.ndarray, k: int) -> None:
    n = len(exact)
    reference = exact + np.diag(np.full(n, np.inf))
    assert result["certified"].all()
    np.testing.assert_allclose(result["distances"], np.sort(reference, axis=1)[:, :k], atol=2e-6)
    for i in range(n):  # ties may pick other graphs: each listed one is at its listed distance
        assert i not in result["indices"][i]
        assert len(set(result["indices"][i].tolist())) == k
        np.testing.assert_allclose(exact[i, result["indices"][i]], result["distances"][i],
                                   atol=2e-6)


def test_knn_graph_with_triangle_bounds_equals_brute_force(small, tmp_path):
    graphs, exact = small
    index = GraphIndex.build(graphs, tmp_path / "index")
    with_bounds = knn_graph(index, 5, tmp_path / "a.npz", neighbours=6, chunk=7)
    _check_knn(with_bounds, exact, 5)
    without = knn_graph(index, 5, tmp_path / "b.npz", neighbours=0, chunk=7)
    _check_knn(without, exact, 5)
    # The triangle bounds replace work, never add any.
    assert with_bounds["n_bounds"].sum() + with_bounds["n_lp"].sum() <= (
        without["n_bounds"].sum() + without["n_lp"].sum())
    with pytest.raises(InputError, match="neighbours must be"):
        knn_graph(index, 5, tmp_path / "c.npz", neighbours=-1)
    bare = GraphIndex.build(graphs, tmp_path / "bare", kernels=())
    with pytest.raises(IndexStateError, match="neighbours=0"):
        knn_graph(bare, 5, tmp_path / "c.npz", neighbours=3)
    _check_knn(knn_graph(bare, 5, tmp_path / "d.npz"), exact, 5)  # default: no table


def test_knn_graph_with_a_time_budget_marks_what_it_could_not_certify(small, tmp_path):
    graphs, exact = small
    index = GraphIndex.build(graphs, tmp_path / "index")
    cut = knn_graph(index, 5, tmp_path / "cut.npz", neighbours=0, chunk=7, time_budget=1e-9)
    assert not cut["certified"].any()
    n = len(exact)
    for i in range(n):
        listed = cut["indices"][i]
        assert (listed >= 0).all() and i not in listed
        truth = exact[i, listed]
        flags = cut["exact"][i]
        np.testing.assert_allclose(cut["distances"][i][flags], truth[flags], atol=2e-6)
        assert (cut["distances"][i][~flags] <= truth[~flags] + 2e-6).all()  # lower bounds
    roomy = knn_graph(index, 5, tmp_path / "roomy.npz", neighbours=6, chunk=7, time_budget=600)
    _check_knn(roomy, exact, 5)
    assert roomy["exact"].all()
    with pytest.raises(InputError, match="time_budget"):
        knn_graph(index, 5, tmp_path / "bad.npz", time_budget=-1)


def test_knn_graph_resumes_after_an_interruption(small, tmp_path, monkeypatch):
    import graphs.search as search

    graphs, exact = small
    index = GraphIndex.build(graphs, tmp_path / "index")
    out = tmp_path / "knn.npz"
    real, calls, crashed = search._knn_rows, [], []

    def crash_on_third_task(*args):
        calls.append(args[2])
        if len(calls) == 3 and not crashed:
            crashed.append(True)
            raise RuntimeError("simulated crash")
        return real(*args)

    monkeypatch.setattr(search, "_knn_rows", crash_on_third_task)
    with pytest.raises(RuntimeError, match="simulated crash"):
        knn_graph(index, 4, out, chunk=5)
    saved = dict(np.load(out))
    done = np.concatenate(calls[:2])
    assert np.isfinite(saved["seconds"][done]).all() and np.isnan(saved["distances"][10:]).all()
    calls.clear()
    result = knn_graph(index, 4, out, chunk=5)
    assert sorted(int(c[0]) for c in calls) == [10, 15, 20]  # the two finished tasks are skipped
    np.testing.assert_array_equal(result["seconds"][done], saved["seconds"][done])
    _check_knn(result, exact, 4)


@pytest.mark.slow
def test_exact_10nn_graph_of_200_glycans_equals_brute_force(tmp_path):
    graphs = _glycans(200, 14, seed=5)
    # GED is symmetric (checked on every ordered pair above): one solve per unordered pair.
    exact = _all_pairs(graphs, ChemicalCosts(), symmetric=True)
    index = GraphIndex.build(graphs, tmp_path / "index")
    _check_knn(knn_graph(index, 10, tmp_path / "knn.npz", n_jobs=2, chunk=25), exact, 10)
