"""Tests of :mod:`graphs.ged` and :mod:`graphs.costs`.

Every exact distance is checked against ``networkx.graph_edit_distance`` run with the same costs,
written here as plain Python callables on scipy's own ``rogerstanimoto``/``jaccard``, so that the
reference shares no code with our vectorised cost matrices. Bounds are checked to bracket the
exact value, node maps are re-priced by an independent Python loop, and the small cases that have a
closed form (one substitution, one added leaf, a reversed arc) are checked analytically.
"""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest
from scipy.spatial.distance import cdist, jaccard, rogerstanimoto

from graphs.costs import CallableCosts, ChemicalCosts, CostModel, EditCosts, UniformCosts
from graphs.errors import InputError, InputTypeError, UnknownMetricError
from graphs.ged import GEDResult, graph_edit_distance

TOL = 1e-6  # the exact solver's certified absolute gap (graphs.ged.GAP_TOL)

# ---------------------------------------------------------------------------------------------
# Graph fixtures built in code


def _attach_attributes(G: nx.Graph, rng: np.random.Generator, n_bits: int = 16) -> nx.Graph:
    """Labels from small alphabets (so that ties and exact matches occur) and binary fingerprints
    drawn from small libraries (identical fingerprints for equal labels, as for monomers)."""
    node_lib = (np.random.default_rng(7).random((4, n_bits)) < 0.3).astype(float)
    edge_lib = (np.random.default_rng(8).random((3, n_bits)) < 0.3).astype(float)
    for v in G:
        c = int(rng.integers(4))
        G.nodes[v]["label"] = "ABCD"[c]
        G.nodes[v]["x"] = node_lib[c]
    for e in G.edges:
        c = int(rng.integers(3))
        G.edges[e]["label"] = "abc"[c]
        G.edges[e]["x"] = edge_lib[c]
    return G


def _random_graph(rng: np.random.Generator, n: int, *, directed: bool, tree: bool) -> nx.Graph:
    seed = int(rng.integers(2**31))
    if tree:
        G = nx.random_labeled_tree(n, seed=seed) if n else nx.Graph()
        if directed:  # arcs towards the root, as glycans point to their reducing end
            G = nx.bfs_tree(G, 0).reverse() if n else nx.DiGraph()
    else:
        G = nx.gnp_random_graph(n, 0.45, seed=seed, directed=directed)
    return _attach_attributes(G, rng)


def _glycan_like(rng: np.random.Generator, n: int, n_bits: int = 128) -> nx.DiGraph:
    """A directed tree of monomers (arcs child -> parent) with 128-bit Morgan-like fingerprints
    from a library of 12 monomers and 4 linkages; at most 3 children per monomer."""
    mono = (np.random.default_rng(11).random((12, n_bits)) < 0.12).astype(float)
    link = (np.random.default_rng(12).random((4, n_bits)) < 0.12).astype(float)
    G = nx.DiGraph(name=f"glycan-like-{n}")
    c = int(rng.integers(12))
    G.add_node(0, label=f"M{c}", x=mono[c])
    for v in range(1, n):
        parents = [u for u in range(max(0, v - 5), v) if G.in_degree(u) < 3]
        u = parents[int(rng.integers(len(parents)))]
        c, lk = int(rng.integers(12)), int(rng.integers(4))
        G.add_node(v, label=f"M{c}", x=mono[c])
        G.add_edge(v, u, label=f"L{lk}", x=link[lk])
    return G


# ---------------------------------------------------------------------------------------------
# Independent reference costs: plain callables for networkx, built on scipy.spatial.distance


def _nx_costs(costs: CostModel) -> dict:
    """networkx keyword arguments giving the same edit costs as ``costs``."""
    if isinstance(costs, UniformCosts):
        return dict(
            node_subst_cost=lambda a, b: costs.node_sub * (a["label"] != b["label"]),
            node_del_cost=lambda a: costs.node_indel,
            node_ins_cost=lambda a: costs.node_indel,
            edge_subst_cost=lambda a, b: costs.edge_sub * (a["label"] != b["label"]),
            edge_del_cost=lambda a: costs.edge_indel,
            edge_ins_cost=lambda a: costs.edge_indel,
        )
    if isinstance(costs, ChemicalCosts):
        dist = {"rogerstanimoto": rogerstanimoto, "jaccard": jaccard}[costs.distance]

        def sub(a, b):
            return costs.sub * dist(a["x"].astype(bool), b["x"].astype(bool))

        return dict(
            node_subst_cost=sub, edge_subst_cost=sub,
            node_del_cost=lambda a: costs.indel, node_ins_cost=lambda a: costs.indel,
            edge_del_cost=lambda a: costs.indel, edge_ins_cost=lambda a: costs.indel,
        )
    raise TypeError(costs)


def _path_cost(G1, G2, node_map, kw) -> float:
    """Cost of the cheapest edit path consistent with ``node_map``, by a plain loop."""
    f = {u: v for u, v in node_map if u is not None}
    image = {v for u, v in node_map if u is not None and v is not None}
    cost = sum(kw["node_subst_cost"](G1.nodes[u], G2.nodes[v]) if v is not None
               else kw["node_del_cost"](G1.nodes[u]) for u, v in f.items())
    cost += sum(kw["node_ins_cost"](G2.nodes[v]) for v in G2 if v not in image)
    hit = set()
    for u, v in G1.edges:
        a, b = f[u], f[v]
        if a is not None and b is not None and G2.has_edge(a, b):
            hit.add((a, b) if G2.is_directed() else frozenset((a, b)))
            cost += min(kw["edge_subst_cost"](G1.edges[u, v], G2.edges[a, b]),
                        kw["edge_del_cost"](G1.edges[u, v]) + kw["edge_ins_cost"](G2.edges[a, b]))
        else:
            cost += kw["edge_del_cost"](G1.edges[u, v])
    for a, b in G2.edges:
        if ((a, b) if G2.is_directed() else frozenset((a, b))) not in hit:
            cost += kw["edge_ins_cost"](G2.edges[a, b])
    return cost


def _check_node_map(G1, G2, r: GEDResult) -> None:
    left = [u for u, _ in r.node_map if u is not None]
    right = [v for _, v in r.node_map if v is not None]
    assert sorted(left, key=repr) == sorted(G1.nodes, key=repr)
    assert sorted(right, key=repr) == sorted(G2.nodes, key=repr)
    assert all(u is not None or v is not None for u, v in r.node_map)


# networkx's search is not exact when a substitution can cost exactly a deletion plus an insertion
# (networkx issue #8099: its assignment fix-up assumes strict preferences), so the models compared
# with it keep substitutions strictly cheaper; ties are checked against brute force below.
COST_MODELS = [
    UniformCosts(),
    UniformCosts(node_sub=2.0, node_indel=1.5, edge_sub=0.5, edge_indel=1.0),
    ChemicalCosts(),
    ChemicalCosts(sub=2.0, indel=1.5, distance="jaccard"),
]


def _pair_set(directed: bool, tree: bool, count: int, sizes: tuple[int, int], seed: int):
    """Seeded pairs of one family; sizes drawn uniformly in the closed interval ``sizes``."""
    rng = np.random.default_rng([seed, int(directed), int(tree)])
    pairs = []
    for _ in range(count):
        n1, n2 = (int(rng.integers(sizes[0], sizes[1] + 1)) for _ in range(2))
        pairs.append((_random_graph(rng, n1, directed=directed, tree=tree),
                      _random_graph(rng, n2, directed=directed, tree=tree)))
    return pairs


# Sizes keep networkx (whose A* search grows steeply with size, worst on directed cyclic graphs)
# to ~30 s for the 240 default pairs; the slow run goes to 7 nodes everywhere.
FAMILIES = {
    "undirected-trees": (False, True, (1, 7)),
    "directed-trees": (True, True, (1, 7)),
    "undirected-cyclic": (False, False, (2, 6)),
    "directed-cyclic": (True, False, (2, 5)),
}


def _compare_with_networkx(pairs) -> None:
    for n, (G1, G2) in enumerate(pairs):
        costs = COST_MODELS[n % len(COST_MODELS)]
        kw = _nx_costs(costs)
        ref = nx.graph_edit_distance(G1, G2, **kw)
        r = graph_edit_distance(G1, G2, costs=costs)
        assert r.optimal and r.status == "optimal", (n, r)
        assert r.distance == pytest.approx(ref, abs=TOL), (n, costs, r, ref)
        assert r.lower_bound <= r.distance <= r.upper_bound + 1e-12
        _check_node_map(G1, G2, r)
        assert _path_cost(G1, G2, r.node_map, kw) == pytest.approx(r.distance, abs=1e-9)
        for method in ("bipartite", "bounds"):
            b = graph_edit_distance(G1, G2, costs=costs, method=method)
            assert b.lower_bound <= ref + TOL and b.upper_bound >= ref - TOL, (n, method, b, ref)
            assert b.distance == b.upper_bound
            assert b.optimal == (b.upper_bound - b.lower_bound <= TOL)
            if isinstance(costs, UniformCosts):  # costs in halves: bounds rounded up to halves
                assert 2 * b.lower_bound == pytest.approx(round(2 * b.lower_bound), abs=1e-12)
            _check_node_map(G1, G2, b)
            assert _path_cost(G1, G2, b.node_map, kw) == pytest.approx(b.upper_bound, abs=1e-9)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_equals_networkx(family):
    """60 seeded pairs per family, 240 in all, with four cost models in turn."""
    directed, tree, sizes = FAMILIES[family]
    _compare_with_networkx(_pair_set(directed, tree, 60, sizes, seed=2024))


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_equals_networkx_large_set(family):
    directed, tree, _ = FAMILIES[family]
    _compare_with_networkx(_pair_set(directed, tree, 150, (3, 7), seed=99))


def _brute_force(G1, G2, kw) -> float:
    """Minimum of the path cost over every partial injective node map (tiny graphs only)."""
    best = np.inf
    for k in range(min(len(G1), len(G2)) + 1):
        for sources in itertools.combinations(list(G1), k):
            for targets in itertools.permutations(list(G2), k):
                f = dict(zip(sources, targets))
                node_map = [(u, f.get(u)) for u in G1] + [(None, v) for v in G2 if v not in targets]
                best = min(best, _path_cost(G1, G2, node_map, kw))
    return best


def test_cost_ties_match_brute_force():
    """Substitutions costing exactly a deletion plus an insertion (disjoint fingerprints under
    Jaccard, sub = 2 indel), where networkx can miss the optimum (issue #8099)."""
    costs = ChemicalCosts(sub=2.0, indel=1.0, distance="jaccard")
    kw = _nx_costs(costs)
    pairs = _pair_set(False, True, 6, (3, 5), seed=7) + _pair_set(True, False, 6, (2, 4), seed=7)
    pairs.append(_pair_set(False, True, 60, (1, 7), seed=2024)[51])  # networkx: 9.083 > 7.778
    for G1, G2 in pairs:
        r = graph_edit_distance(G1, G2, costs=costs)
        assert r.optimal and r.distance == pytest.approx(_brute_force(G1, G2, kw), abs=TOL)
    assert r.distance == pytest.approx(7.0 + 7.0 / 9.0)


# ---------------------------------------------------------------------------------------------
# Analytic cases


def test_identity_and_isomorphic_copies_are_at_zero():
    rng = np.random.default_rng(1)
    graphs = [_glycan_like(rng, 15), _random_graph(rng, 8, directed=False, tree=False),
              _random_graph(rng, 8, directed=True, tree=False)]
    for G in graphs:
        perm = dict(zip(G.nodes, rng.permutation(len(G)).tolist()))
        H = nx.relabel_nodes(G, {v: f"n{perm[v]}" for v in G})
        for costs in (ChemicalCosts(), UniformCosts()):
            for other in (G, H):
                r = graph_edit_distance(G, other, costs=costs)
                assert r.optimal and r.distance == pytest.approx(0.0, abs=1e-9)
                assert r.lower_bound == pytest.approx(0.0, abs=1e-9)


def test_one_substitution_and_one_leaf_glycan():
    rng = np.random.default_rng(2)
    G = _glycan_like(rng, 12)
    H = G.copy()
    new_x = 1.0 - G.nodes[5]["x"]  # complement: a different fingerprint
    H.nodes[5]["x"] = new_x
    r = graph_edit_distance(G, H)
    expected = 3.0 * rogerstanimoto(G.nodes[5]["x"].astype(bool), new_x.astype(bool))
    assert expected < 6.0  # substituting beats deleting and inserting the node
    assert r.optimal and r.distance == pytest.approx(expected, abs=1e-9)
    # A new leaf costs one node and one edge insertion (indel 3 each, GLAMOUR's defaults).
    L = G.copy()
    L.add_node("leaf", label="M0", x=G.nodes[0]["x"])
    L.add_edge("leaf", 0, label="L0", x=next(iter(G.edges.values()))["x"])
    r = graph_edit_distance(G, L)
    assert r.optimal and r.distance == pytest.approx(6.0, abs=1e-9)
    assert sum(u is None for u, _ in r.node_map) == 1
    assert all(v is not None for _, v in r.node_map)


def test_arc_direction_matters_only_for_digraphs():
    D = nx.DiGraph([("a", "b")])
    R = nx.DiGraph([("b", "a")])
    for G in (D, R):
        nx.set_node_attributes(G, {"a": "C", "b": "N"}, "label")
        nx.set_edge_attributes(G, "-", "label")
    # Keep the nodes: the arc is deleted and re-inserted (2 x 0.75) ...
    r = graph_edit_distance(D, R, costs=UniformCosts(edge_indel=0.75))
    assert r.optimal and r.distance == pytest.approx(1.5)
    assert set(r.node_map) == {("a", "a"), ("b", "b")}
    # ... unless swapping the nodes (two label substitutions) is cheaper.
    r = graph_edit_distance(D, R, costs=UniformCosts(edge_indel=5.0))
    assert r.optimal and r.distance == pytest.approx(2.0)
    assert set(r.node_map) == {("a", "b"), ("b", "a")}
    r = graph_edit_distance(D.to_undirected(), R.to_undirected(), costs=UniformCosts())
    assert r.optimal and r.distance == pytest.approx(0.0, abs=1e-12)


def test_empty_graphs_cost_whole_deletion():
    rng = np.random.default_rng(3)
    G = _random_graph(rng, 5, directed=False, tree=False)
    E = nx.Graph()
    costs = UniformCosts(node_indel=2.0, edge_indel=0.5)
    whole = 2.0 * G.number_of_nodes() + 0.5 * G.number_of_edges()
    for a, b in ((G, E), (E, G)):
        r = graph_edit_distance(a, b, costs=costs)
        assert r.optimal and r.distance == pytest.approx(whole)
        assert r.distance == pytest.approx(nx.graph_edit_distance(a, b, **_nx_costs(costs)))
    r = graph_edit_distance(E, nx.Graph())
    assert r.optimal and r.distance == 0.0 and r.node_map == ()


def test_symmetric_costs_give_symmetric_distances():
    rng = np.random.default_rng(4)
    pairs = [(_glycan_like(rng, 14), _glycan_like(rng, 11)) for _ in range(3)]
    pairs += [(_random_graph(rng, 7, directed=False, tree=False),
               _random_graph(rng, 6, directed=False, tree=False)) for _ in range(2)]
    for G1, G2 in pairs:
        for costs in (ChemicalCosts(), UniformCosts(node_sub=1.5, edge_indel=2.0)):
            ab = graph_edit_distance(G1, G2, costs=costs)
            ba = graph_edit_distance(G2, G1, costs=costs)
            assert ab.optimal and ba.optimal
            assert ab.distance == pytest.approx(ba.distance, abs=2 * TOL)


def test_bounds_bracket_exact_on_glycan_like_trees():
    rng = np.random.default_rng(5)
    for _ in range(4):
        G1, G2 = _glycan_like(rng, 16), _glycan_like(rng, int(rng.integers(12, 19)))
        exact = graph_edit_distance(G1, G2)
        assert exact.optimal
        bip = graph_edit_distance(G1, G2, method="bipartite")
        lp = graph_edit_distance(G1, G2, method="bounds")
        for b in (bip, lp):
            assert b.lower_bound - TOL <= exact.distance <= b.upper_bound + TOL
            assert b.search_nodes == 0
        assert lp.lower_bound >= bip.lower_bound  # the LP relaxation only raises the bound
        assert lp.upper_bound <= bip.upper_bound  # local search only lowers it
        assert lp.lp_iterations is not None and lp.lp_iterations > 0


def _local_by_lsap(p) -> np.ndarray:
    """Every node pair's edge assignment (Riesen-Bunke's square cost matrix), one scipy
    linear_sum_assignment per pair: the reference of graphs.ged._local_edge_costs."""
    from scipy.optimize import linear_sum_assignment

    local = np.zeros((p.n1, p.n2))
    for i, k in itertools.product(range(p.n1), range(p.n2)):
        # Directed edges are matched out-to-out and in-to-in; undirected ones all together.
        sides = [(p.src1, p.src2), (p.dst1, p.dst2)] if p.directed else [(None, None)]
        for end1, end2 in sides:
            if p.directed:
                E, F = np.nonzero(end1 == i)[0], np.nonzero(end2 == k)[0]
            else:
                E = np.nonzero((p.src1 == i) | (p.dst1 == i))[0]
                F = np.nonzero((p.src2 == k) | (p.dst2 == k))[0]
            a, b = len(E), len(F)
            if a + b == 0:
                continue
            C = np.full((a + b, a + b), np.inf)
            C[:a, :b] = p.edge.sub[np.ix_(E, F)]
            C[np.arange(a), b + np.arange(a)] = p.edge.delete[E]
            C[a + np.arange(b), np.arange(b)] = p.edge.insert[F]
            C[a:, b:] = 0.0
            rows, cols = linear_sum_assignment(C)
            local[i, k] += C[rows, cols].sum()
    return local


def test_batched_local_edge_assignments_equal_one_lsap_per_node_pair():
    """The block-diagonal matching behind the assignment bounds solves every node pair's edge
    assignment (Riesen-Bunke's square cost matrix) exactly: compare with one scipy
    linear_sum_assignment per pair."""
    from graphs.ged import _local_edge_costs, _problem

    rng = np.random.default_rng(13)
    for directed in (False, True):
        G1 = _random_graph(rng, 7, directed=directed, tree=False)
        G2 = _random_graph(rng, 6, directed=directed, tree=False)
        p = _problem(G1, G2, ChemicalCosts(sub=2.0, indel=1.0))
        np.testing.assert_allclose(_local_edge_costs(p), _local_by_lsap(p), rtol=0, atol=1e-12)


# A pair on which csgraph's min_weight_full_bipartite_matching (LAPJVsp) cycled for ever on the
# float weights of its 52 x 52 block graph (ChemicalCosts(sub=3, indel=1), directed, G4 -> G2):
# graph_edit_distance never returned, whatever its timeout. Found by a random search.
_CYCLING_PAIR = {
    "G2": ([[1, 0, 1, 0, 1], [0, 1, 1, 0, 1]],
           [(0, 1, [1, 0, 1, 1, 1]), (1, 0, [0, 0, 1, 0, 1])]),
    "G4": ([[0, 1, 0, 0, 0], [1, 0, 1, 0, 0], [0, 1, 1, 1, 1], [1, 1, 0, 0, 1]],
           [(0, 1, [1, 0, 1, 0, 1]), (0, 3, [0, 0, 0, 0, 0]), (1, 2, [0, 0, 1, 0, 0]),
            (1, 3, [0, 1, 1, 0, 0]), (2, 0, [1, 1, 1, 0, 1]), (2, 1, [0, 0, 1, 1, 0]),
            (2, 3, [1, 1, 0, 1, 1]), (3, 1, [0, 1, 0, 1, 1]), (3, 2, [1, 0, 1, 1, 0])]),
}


def _cycling_graph(name: str) -> nx.DiGraph:
    nodes, edges = _CYCLING_PAIR[name]
    G = nx.DiGraph()
    G.add_nodes_from((i, {"x": np.array(x)}) for i, x in enumerate(nodes))
    G.add_edges_from((u, v, {"x": np.array(x)}) for u, v, x in edges)
    return G


def test_star_assignments_terminate_on_float_weights_that_cycled():
    """Run in a child process (the old code never returned, and a loop in compiled code cannot be
    interrupted): the edge assignments equal one linear_sum_assignment per node pair and the
    distance equals brute force."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from graphs.ged import _problem

    code = (
        "import json, numpy as np\n"
        "from graphs.costs import ChemicalCosts\n"
        "from graphs.ged import _local_edge_costs, _problem, graph_edit_distance\n"
        "from tests.graphs.test_ged import _cycling_graph\n"
        "G4, G2, costs = _cycling_graph('G4'), _cycling_graph('G2'), ChemicalCosts(sub=3.0, indel=1.0)\n"
        "r = graph_edit_distance(G4, G2, costs=costs)\n"
        "print(json.dumps({'local': _local_edge_costs(_problem(G4, G2, costs)).tolist(),\n"
        "                  'distance': r.distance, 'optimal': r.optimal}))\n"
    )
    root = str(Path(__file__).resolve().parents[2])  # this checkout's graphs and tests
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=env)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    G4, G2, costs = _cycling_graph("G4"), _cycling_graph("G2"), ChemicalCosts(sub=3.0, indel=1.0)
    np.testing.assert_allclose(out["local"], _local_by_lsap(_problem(G4, G2, costs)), rtol=0,
                               atol=1e-12)
    assert out["optimal"]
    assert out["distance"] == pytest.approx(_brute_force(G4, G2, _nx_costs(costs)), abs=TOL)


# ---------------------------------------------------------------------------------------------
# Timeout


def test_timeout_returns_flagged_bounds_never_an_unproven_exact():
    rng = np.random.default_rng(6)
    # Find a pair whose assignment bounds leave a gap, so the exact solver has work to do.
    for _ in range(50):
        G1, G2 = _glycan_like(rng, 22), _glycan_like(rng, 22)
        quick = graph_edit_distance(G1, G2, method="bipartite")
        if not quick.optimal:
            break
    assert not quick.optimal
    r = graph_edit_distance(G1, G2, timeout=1e-9)  # expires before the MILP can start
    assert not r.optimal and r.status == "time_limit"
    assert r.distance == r.upper_bound and r.lower_bound < r.upper_bound
    assert r.search_nodes == 0
    full = graph_edit_distance(G1, G2, timeout=120.0)
    assert full.optimal and full.status == "optimal"
    assert r.lower_bound - TOL <= full.distance <= r.upper_bound + TOL
    # A bounded-but-running MILP: whatever it reached is either proven or flagged.
    mid = graph_edit_distance(G1, G2, timeout=0.02)
    assert mid.optimal == (mid.upper_bound - mid.lower_bound <= TOL)
    assert mid.lower_bound - TOL <= full.distance <= mid.upper_bound + TOL
    if not mid.optimal:
        assert mid.status == "time_limit"


def test_a_timeout_counts_from_the_call_not_from_the_threads_first_lp():
    """The LP relaxation reuses one HiGHS instance per thread, whose run clock adds up over its
    runs: a timeout shorter than the time already spent must not expire at once (it did: every
    LP after the first seconds of a budgeted search came back as timed out, unsolved)."""
    import graphs.ged as ged

    rng = np.random.default_rng(5)
    G1, G2 = _glycan_like(rng, 16), _glycan_like(rng, 16)
    reference = graph_edit_distance(G1, G2, method="bounds")
    assert reference.lp_iterations
    while ged._HIGHS.solver.getRunTime() < 0.5:  # the solver has now run for longer than...
        graph_edit_distance(G1, G2, method="bounds")
    again = graph_edit_distance(G1, G2, method="bounds", timeout=0.4)  # ...this call may take
    assert again.status == reference.status
    assert again.lower_bound == reference.lower_bound
    assert again.lp_iterations == reference.lp_iterations


# ---------------------------------------------------------------------------------------------
# Cost models


def test_chemical_cost_matrices_equal_scipy_cdist():
    rng = np.random.default_rng(8)
    a = (rng.random((6, 32)) < 0.3).astype(float)
    b = (rng.random((5, 32)) < 0.3).astype(float)
    a[0] = 0.0  # all-zero fingerprints: Jaccard is 0 between two of them in scipy
    b[0] = 0.0
    b[1] = a[1]
    items1 = [(i, {"x": v}) for i, v in enumerate(a)]
    items2 = [(i, {"x": v}) for i, v in enumerate(b)]
    for name in ("rogerstanimoto", "jaccard"):
        c = ChemicalCosts(sub=2.5, indel=1.25, distance=name).node_costs(items1, items2)
        ref = 2.5 * cdist(a.astype(bool), b.astype(bool), metric=name)
        np.testing.assert_allclose(c.sub, ref, atol=1e-12)
        assert c.sub[1, 1] == 0.0
        np.testing.assert_array_equal(c.delete, np.full(6, 1.25))
        np.testing.assert_array_equal(c.insert, np.full(5, 1.25))


def test_callable_costs_equal_networkx():
    rng = np.random.default_rng(9)
    kw = dict(
        node_subst_cost=lambda a, b: abs(a["w"] - b["w"]),
        node_del_cost=lambda a: 1.0 + a["w"],
        node_ins_cost=lambda a: 0.5 + a["w"],
        edge_subst_cost=lambda a, b: 0.3 * abs(a["w"] - b["w"]),
        edge_del_cost=lambda a: 0.7,
        edge_ins_cost=lambda a: 0.9,
    )
    for _ in range(6):
        G1, G2 = (nx.gnp_random_graph(int(rng.integers(3, 6)), 0.5, seed=int(rng.integers(999)))
                  for _ in range(2))
        for G in (G1, G2):
            nx.set_node_attributes(G, {v: float(rng.random()) for v in G}, "w")
            nx.set_edge_attributes(G, {e: float(rng.random()) for e in G.edges}, "w")
        r = graph_edit_distance(G1, G2, costs=CallableCosts(**kw))
        assert r.optimal
        assert r.distance == pytest.approx(nx.graph_edit_distance(G1, G2, **kw), abs=TOL)


class _EuclideanCosts(CostModel):
    """A user-defined cost-matrix provider: Euclidean distances between "x" vectors."""

    def _costs(self, items1, items2):
        a = np.array([d["x"] for *_, d in items1]).reshape(len(items1), -1)
        b = np.array([d["x"] for *_, d in items2]).reshape(len(items2), -1)
        sub = cdist(a, b) if len(a) and len(b) else np.zeros((len(a), len(b)))
        return EditCosts(sub, np.full(len(a), 1.0), np.full(len(b), 1.0))

    def node_costs(self, nodes1, nodes2):
        return self._costs(nodes1, nodes2)

    def edge_costs(self, edges1, edges2):
        return self._costs(edges1, edges2)


def test_cost_matrix_provider_equals_networkx():
    rng = np.random.default_rng(10)
    for _ in range(5):
        G1, G2 = (_random_graph(rng, int(rng.integers(3, 6)), directed=True, tree=False)
                  for _ in range(2))
        for G in (G1, G2):
            nx.set_node_attributes(G, {v: rng.random(2) for v in G}, "x")
            nx.set_edge_attributes(G, {e: rng.random(2) for e in G.edges}, "x")
        r = graph_edit_distance(G1, G2, costs=_EuclideanCosts())
        ref = nx.graph_edit_distance(
            G1, G2,
            node_subst_cost=lambda a, b: float(np.linalg.norm(a["x"] - b["x"])),
            edge_subst_cost=lambda a, b: float(np.linalg.norm(a["x"] - b["x"])),
        )
        assert r.optimal and r.distance == pytest.approx(ref, abs=TOL)


# ---------------------------------------------------------------------------------------------
# Bad input


def _labelled_path(n: int, directed: bool = False) -> nx.Graph:
    G = nx.path_graph(n, create_using=nx.DiGraph if directed else nx.Graph)
    return _attach_attributes(G, np.random.default_rng(0))


def test_mixed_directedness_is_rejected():
    with pytest.raises(InputTypeError, match="directed"):
        graph_edit_distance(_labelled_path(3, directed=True), _labelled_path(3))


def test_missing_fingerprint_names_the_element():
    G, H = _labelled_path(3), _labelled_path(3)
    del H.nodes[1]["x"]
    with pytest.raises(InputError, match=r"node 1 .*'x'"):
        graph_edit_distance(G, H)
    H = _labelled_path(3)
    del H.edges[0, 1]["x"]
    with pytest.raises(InputError, match=r"edge \(0, 1\).*'x'"):
        graph_edit_distance(G, H, costs=ChemicalCosts(distance="jaccard"))
    del H.edges[0, 1]["label"]
    with pytest.raises(InputError, match="label"):
        graph_edit_distance(G, H, costs=UniformCosts())


def test_bad_fingerprints_are_rejected():
    G, H = _labelled_path(3), _labelled_path(3)
    H.nodes[0]["x"] = np.full(16, 2.0)
    with pytest.raises(InputError, match="not binary"):
        graph_edit_distance(G, H)
    H = _labelled_path(3)
    for v in H:
        H.nodes[v]["x"] = np.zeros(8)
    with pytest.raises(InputError, match="different lengths"):
        graph_edit_distance(G, H)
    H.nodes[0]["x"] = np.zeros(4)
    with pytest.raises(InputError, match="shape"):
        graph_edit_distance(G, H)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: ChemicalCosts(distance="cosine"), UnknownMetricError, "cosine"),
        (lambda: ChemicalCosts(sub=-1.0), InputError, "sub"),
        (lambda: UniformCosts(edge_indel=float("nan")), InputError, "edge_indel"),
        (lambda: CallableCosts(node_del_cost=3.0), InputError, "node_del_cost"),
    ],
)
def test_bad_cost_parameters(make, error, match):
    with pytest.raises(error, match=match):
        make()


class _BrokenCosts(UniformCosts):
    def edge_costs(self, edges1, edges2):
        c = super().edge_costs(edges1, edges2)
        return EditCosts(c.sub - 5.0, c.delete, c.insert)


def test_bad_calls_are_rejected():
    G, H = _labelled_path(3), _labelled_path(4)
    with pytest.raises(UnknownMetricError, match="astar"):
        graph_edit_distance(G, H, method="astar")
    with pytest.raises(InputError, match="timeout"):
        graph_edit_distance(G, H, timeout=0)
    with pytest.raises(InputTypeError, match="cost model"):
        graph_edit_distance(G, H, costs=lambda a, b: 0.0)
    with pytest.raises(InputTypeError, match="MultiGraph"):
        graph_edit_distance(nx.MultiGraph(G), nx.MultiGraph(H))
    with pytest.raises(InputTypeError, match="networkx"):
        graph_edit_distance(np.eye(3), H)
    loop = G.copy()
    loop.add_edge(0, 0, label="a", x=G.edges[0, 1]["x"])
    with pytest.raises(InputError, match="self-loops"):
        graph_edit_distance(loop, H)
    with pytest.raises(InputError, match="non-negative"):
        graph_edit_distance(G, H, costs=_BrokenCosts())


def test_all_node_pairs_of_a_small_set_are_consistent():
    """Triangle inequality holds for a metric GED (unit costs) on all pairs of a small set."""
    rng = np.random.default_rng(12)
    graphs = [_random_graph(rng, int(rng.integers(2, 7)), directed=False, tree=False)
              for _ in range(6)]
    d = np.array([[graph_edit_distance(a, b, costs=UniformCosts()).distance for b in graphs]
                  for a in graphs])
    np.testing.assert_allclose(d, d.T, atol=2 * TOL)
    for i, j, k in itertools.permutations(range(len(graphs)), 3):
        assert d[i, k] <= d[i, j] + d[j, k] + 3 * TOL
