"""Tests of :mod:`graphs.ged_pairs`: GED between indexed graphs from kept per-class, per-graph and
per-star work.

References: :func:`graphs.ged.graph_edit_distance` on the graphs :meth:`GraphIndex.graph` rebuilds
(itself checked against networkx in test_ged.py), whose numbers the solver must give bit for bit,
and ``scipy.optimize.linprog`` for the LP relaxation that now goes to HiGHS through highspy.
"""

from __future__ import annotations

import dataclasses
import warnings

import networkx as nx
import numpy as np
import pytest

from graphs.costs import UniformCosts
from graphs.errors import InputTypeError
from graphs.ged import _linear_program, _problem, _relaxation, graph_edit_distance
from graphs.ged_pairs import PairSolver, pair_solver
from graphs.index import GraphIndex


def _same(a, b) -> bool:
    """Two GEDResults equal in every field but the time."""
    return dataclasses.replace(a, seconds=0.0) == dataclasses.replace(b, seconds=0.0)


@pytest.fixture(scope="module")
def glycans():
    from reprs.datasets import load_glycans
    from reprs.glycans import build_glycan_graphs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = load_glycans(level="Kingdom")
    sample = table.sample(300, random_state=7)["glycan"].tolist()
    graphs, _ = build_glycan_graphs(sample, errors="skip")
    return [g for g in graphs if g is not None and 2 <= len(g) <= 12][:36]


@pytest.fixture(scope="module")
def index(glycans, tmp_path_factory):
    return GraphIndex.build(glycans, tmp_path_factory.mktemp("index"))


def test_bipartite_bounds_equal_bit_for_bit_on_every_pair(index):
    graphs = index.graphs()
    lazy, prepared = PairSolver(index), PairSolver(index)
    prepared.prepare()
    assert prepared.prepared and prepared.n_signatures >= lazy.n_signatures
    n = len(graphs)
    for i in range(n):
        for j in range(n):
            ref = graph_edit_distance(graphs[i], graphs[j], costs=index.ged_costs,
                                      method="bipartite")
            for solver in (lazy, prepared):
                got = solver.ged(solver.side(i), solver.side(j), "bipartite")
                assert _same(got, ref), (i, j)
    assert n * n >= 1000


@pytest.mark.parametrize("method", ["bounds", "exact"])
def test_lp_and_exact_tiers_equal_graph_edit_distance(index, method):
    graphs = index.graphs()
    solver = pair_solver(index)
    assert pair_solver(index) is solver  # one per index and process
    rng = np.random.default_rng(3)
    pairs = rng.integers(len(graphs), size=(30, 2))
    seen_lp = 0
    for i, j in pairs.tolist():
        ref = graph_edit_distance(graphs[i], graphs[j], costs=index.ged_costs, method=method)
        got = solver.ged(solver.encode(graphs[i]), solver.side(j), method)
        assert _same(got, ref), (i, j)
        seen_lp += ref.lp_iterations is not None
    assert seen_lp >= 5


def test_lp_relaxation_through_highspy_equals_scipy_linprog(index):
    from scipy.optimize import linprog

    graphs = index.graphs()
    for i, j in [(0, 1), (2, 5), (3, 9), (7, 11), (12, 4), (20, 30)]:
        p = _problem(graphs[i], graphs[j], index.ged_costs)
        lp = _linear_program(p)
        bound, pi, iterations, timed_out = _relaxation(p, lp, float("inf"))
        ref = linprog(lp[0], A_ub=lp[1], b_ub=lp[2], bounds=(0, 1), method="highs")
        assert ref.status == 0 and not timed_out
        assert bound == pytest.approx(ref.fun + p.constant, abs=1e-9)
        assert iterations > 0 and pi.shape == (p.n1,)


def test_query_with_unseen_element_classes_gets_their_costs(index, glycans):
    solver = PairSolver(index)
    query = glycans[0].copy()
    node = next(iter(query.nodes))
    x = np.array(query.nodes[node]["x"], dtype=float)
    x[:5] = 1.0 - x[:5]  # a fingerprint no indexed monomer has
    query.nodes[node]["x"] = x
    classes = len(solver._values["nodes"])
    side = solver.encode(query)
    assert len(solver._values["nodes"]) == classes + 1
    for j in range(0, len(glycans), 5):
        for method in ("bipartite", "bounds"):
            ref = graph_edit_distance(query, glycans[j], costs=index.ged_costs, method=method)
            assert _same(solver.ged(side, solver.side(j), method), ref)
    with pytest.raises(InputTypeError, match="undirected"):
        solver.encode(nx.Graph(glycans[0]))


def test_undirected_uniform_costs(tmp_path):
    rng = np.random.default_rng(11)
    graphs = []
    for _ in range(14):
        g = nx.gnm_random_graph(int(rng.integers(3, 8)), int(rng.integers(2, 9)),
                                seed=int(rng.integers(1 << 30)))
        for v in g:
            g.nodes[v]["label"] = "CNO"[int(rng.integers(3))]
        for u, v in g.edges:
            g.edges[u, v]["label"] = "-="[int(rng.integers(2))]
        graphs.append(g)
    costs = UniformCosts(node_sub=1.0, node_indel=2.0, edge_sub=1.0, edge_indel=1.5)
    index = GraphIndex.build(graphs, tmp_path / "index", kernels=(), ged_costs=costs)
    solver = PairSolver(index)
    rebuilt = index.graphs()
    for i in range(len(graphs)):
        for j in range(len(graphs)):
            for method in ("bipartite", "exact") if (i + j) % 4 == 0 else ("bipartite",):
                ref = graph_edit_distance(rebuilt[i], rebuilt[j], costs=costs, method=method)
                assert _same(solver.ged(solver.side(i), solver.side(j), method), ref), (i, j)
