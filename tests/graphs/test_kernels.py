"""graphs.kernels: Gram matrices equal GraKeL's on the same graphs; the explicit WL map too.

The reference is always GraKeL called directly on its own conversion of the networkx graphs
(``grakel.graph_from_networkx``), with nodes named by strings so that our renumbering is exercised.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import grakel
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.decomposition import KernelPCA
from sklearn.exceptions import NotFittedError
from sklearn.svm import SVC

from graphs.errors import EmptyGraphError, InputError, InputTypeError, UnknownMetricError
from graphs.kernels import KERNELS, GraphKernel, WLFeatureMap

LABELS = list("ABCD")
EDGE_LABELS = ["a1-2", "b1-4"]
N_FP = 6  # length of the node feature vectors "x"


def random_graph(rng: np.random.Generator, n: int, *, directed=False, cycle=False, loop=False):
    """A labelled random tree (optionally plus a cycle edge and a self-loop), string node names."""
    tree = nx.random_labeled_tree(n, seed=int(rng.integers(2**31))) if n > 1 else nx.empty_graph(1)
    g = nx.DiGraph() if directed else nx.Graph()
    names = [f"n{i}" for i in rng.permutation(n)]  # node order differs from name order
    g.add_nodes_from(names)
    g.add_edges_from((names[u], names[v]) for u, v in tree.edges())
    if cycle and n > 2 and not g.has_edge(names[0], names[-1]):
        g.add_edge(names[0], names[-1])
    if loop:
        g.add_edge(names[0], names[0])
    for v in g:
        g.nodes[v]["label"] = str(rng.choice(LABELS))
        g.nodes[v]["x"] = rng.integers(0, 2, N_FP).astype(float)
    for u, v in g.edges():
        g.edges[u, v]["label"] = str(rng.choice(EDGE_LABELS))
    return g


def dataset(seed: int, count: int, *, n_min=1, n_max=8, directed=False, loops=False):
    rng = np.random.default_rng(seed)
    return [
        random_graph(
            rng,
            int(rng.integers(n_min, n_max + 1)),
            directed=directed,
            cycle=bool(rng.random() < 0.3),
            loop=loops and bool(rng.random() < 0.2),
        )
        for _ in range(count)
    ]


# Small, fast parameters for every kind; GraKeL's own defaults otherwise.
PARAMS = {
    "wl": {"n_iter": 3},
    "wl_oa": {"n_iter": 3},
    "propagation": {"t_max": 3},
    "propagation_attr": {"t_max": 3},
    "pyramid_match": {"L": 3, "d": 3},
    "odd_sth": {"h": 3},
}


def _labels(graphs) -> set[str]:
    return {lab for g in graphs for _, lab in g.nodes(data="label")}


def _coded(g: nx.Graph, codes: dict) -> nx.Graph:
    g = g.copy()
    nx.set_node_attributes(g, {v: codes[lab] for v, lab in g.nodes(data="label")}, "label")
    return g


def grakel_reference(kind, train, test, *, normalize, seed=0, **params):
    """GraKeL's Gram matrices (train x train, test x train; only the first if ``test`` is None),
    computed directly from grakel.graph_from_networkx input.

    Kernels see graphs as undirected (graphs.kernels docstring), so DiGraphs are made undirected
    with networkx first.
    """
    spec = KERNELS[kind]
    cls = getattr(grakel.kernels, spec.grakel_class)
    if spec.stochastic:
        params["random_state"] = seed
    edge_tag = "label" if spec.edge_labels else None

    if spec.stochastic and spec.node_input == "label":
        # GraKeL draws one random vector per label in set order, which for str labels follows
        # PYTHONHASHSEED; GraphKernel hands it integer codes in sorted label order instead.
        codes = {lab: i for i, lab in enumerate(sorted(_labels(train)))}
        unseen = sorted(_labels(test or []) - set(codes))
        codes.update(zip(unseen, range(len(codes), len(codes) + len(unseen))))
        train, test = ([_coded(g, codes) for g in gs] for gs in (train, test or []))

    def convert(graphs):
        graphs = [g.to_undirected() for g in graphs]
        return list(grakel.graph_from_networkx(graphs, spec.node_input, edge_tag))

    kernel = cls(normalize=normalize, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grams = [kernel.fit_transform(convert(train))]
        if test:
            grams.append(kernel.transform(convert(test)))
    # GraphKernel's documented convention for k(G, G) = 0 (GraKeL's WL one): 0/0 -> 0, not NaN.
    grams = [np.nan_to_num(k, nan=0.0) for k in grams]
    return tuple(grams) if test else grams[0]


def kind_dataset(kind: str):
    # GraKeL's GraphHopper fails on isolated nodes and EdgeHistogram (given edge labels None by
    # reprs.convert.to_grakel) on graphs without edges: their graphs have at least 2 nodes.
    graphs = dataset(1, 26, n_min=2 if KERNELS[kind].requires else 1)
    return graphs[:18], graphs[18:]


@pytest.mark.parametrize("kind", sorted(KERNELS))
@pytest.mark.parametrize("normalize", [True, False])
def test_gram_equals_grakel(kind, normalize):
    train, test = kind_dataset(kind)
    params = PARAMS.get(kind, {})
    backend = "grakel" if kind == "wl" else "auto"  # the explicit map has its own tests below
    kernel = GraphKernel(kind, normalize=normalize, backend=backend, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k_train, k_test = kernel.fit_transform(train), kernel.transform(test)
    ref_train, ref_test = grakel_reference(kind, train, test, normalize=normalize, **params)
    np.testing.assert_allclose(k_train, ref_train, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(k_test, ref_test, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(KERNELS))
def test_kernel_contract(kind):
    """Shapes, symmetry, unit diagonal, positive semi-definiteness, determinism."""
    train, test = kind_dataset(kind)
    params = PARAMS.get(kind, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel = GraphKernel(kind, **params)
        gram = kernel.fit_transform(train)
        cross = kernel.transform(test)
        again = GraphKernel(kind, **params).fit_transform(train)
    assert gram.shape == (len(train), len(train)) and gram.dtype == np.float64
    assert cross.shape == (len(test), len(train))
    assert np.all(np.isfinite(gram)) and np.all(np.isfinite(cross))
    np.testing.assert_allclose(gram, gram.T, atol=1e-12)
    # Unit diagonal, except a graph with k(G, G) = 0 (no edges for shortest_path or
    # edge_histogram): cosine normalisation is undefined there and gives 0, as in GraKeL's WL.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = np.diag(GraphKernel(kind, normalize=False, **params).fit_transform(train))
    np.testing.assert_allclose(np.diag(gram), np.where(raw > 0, 1.0, 0.0), atol=1e-12)
    assert np.linalg.eigvalsh(gram).min() > -1e-8 * len(train)
    np.testing.assert_array_equal(gram, again)
    # Relabelling the nodes of a graph (an isomorphic copy) changes no kernel value.
    renamed = [nx.relabel_nodes(g, {v: f"m{v}" for v in g}) for g in train]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again_renamed = GraphKernel(kind, **params).fit_transform(renamed)
    np.testing.assert_allclose(again_renamed, gram, atol=1e-12)


def test_edge_histogram_transform_with_many_edge_labels():
    # With mostly empty label histograms GraKeL's EdgeHistogram stores counts in an integer sparse
    # matrix, and its Kernel.transform normalised in place (km /= ...): transform raised a numpy
    # casting error (top_k and pairwise with a query set call it). Reference: the cosine of the
    # edge-label count vectors, by hand (each undirected edge counts in both directions, which
    # normalisation cancels). Labels per graph: [a, a, b], [a, c], [c, c], [d].
    graphs = []
    for labels in (["a", "a", "b"], ["a", "c"], ["c", "c"], ["d"]):
        g = nx.path_graph(len(labels) + 1)
        nx.set_node_attributes(g, "C", "label")
        for (u, v), lab in zip(g.edges(), labels):
            g.edges[u, v]["label"] = lab
        graphs.append(g)
    counts = np.array([[2, 1, 0, 0], [1, 0, 1, 0], [0, 0, 2, 0], [0, 0, 0, 1]], dtype=float)
    unit = counts / np.linalg.norm(counts, axis=1, keepdims=True)
    expected = unit @ unit.T
    kernel = GraphKernel("edge_histogram")
    np.testing.assert_allclose(kernel.fit_transform(graphs), expected, atol=1e-12)
    cross = kernel.transform(graphs[1:3])
    assert cross.dtype == np.float64
    np.testing.assert_allclose(cross, expected[1:3], atol=1e-12)
    raw = GraphKernel("edge_histogram", normalize=False).fit(graphs).transform(graphs[1:3])
    np.testing.assert_allclose(raw, 4 * counts[1:3] @ counts.T, atol=1e-12)


@pytest.mark.parametrize("kind", ["neighborhood_hash", "propagation", "propagation_attr"])
def test_stochastic_kinds_follow_seed(kind):
    train, _ = kind_dataset(kind)
    a = GraphKernel(kind, seed=1, **PARAMS.get(kind, {})).fit_transform(train)
    b = GraphKernel(kind, seed=1, **PARAMS.get(kind, {})).fit_transform(train)
    c = GraphKernel(kind, seed=2, **PARAMS.get(kind, {})).fit_transform(train)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("kind", ["neighborhood_hash", "propagation", "propagation_attr"])
def test_unseeded_stochastic_kinds_leave_numpy_global_generator_alone(kind):
    """seed=None went to GraKeL as random_state=None, which is numpy's global generator: computing the
    kernel advanced it (and a np.random.seed of the caller's fixed the 'unseeded' kernel). A local
    generator of fresh entropy now."""
    train, _ = kind_dataset(kind)
    before = np.random.get_state()
    GraphKernel(kind, seed=None, **PARAMS.get(kind, {})).fit_transform(train)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]


def test_stochastic_kinds_do_not_depend_on_hash_seed(tmp_path):
    """A seed gives the same kernel in another process (another PYTHONHASHSEED: a Dask worker)."""
    script = tmp_path / "kernel.py"
    script.write_text(
        "import sys, numpy as np\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_kernels import kind_dataset, PARAMS\n"
        "from graphs.kernels import GraphKernel\n"
        "out = []\n"
        "for kind in ('neighborhood_hash', 'propagation'):\n"
        "    train, test = kind_dataset(kind)\n"
        "    k = GraphKernel(kind, **PARAMS.get(kind, {}))\n"
        "    out += [k.fit_transform(train), k.transform(test)]\n"
        f"np.savez({str(tmp_path / 'out.npz')!r}, *out)\n"
    )
    mine = []
    for kind in ("neighborhood_hash", "propagation"):
        train, test = kind_dataset(kind)
        k = GraphKernel(kind, **PARAMS.get(kind, {}))
        mine += [k.fit_transform(train), k.transform(test)]
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, str(script)], check=True, env=env, timeout=120)
        other = np.load(tmp_path / "out.npz")
        for i, ours in enumerate(mine):
            np.testing.assert_array_equal(other[f"arr_{i}"], ours)


# ---- explicit WL map --------------------------------------------------------------------------


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("n_iter", [1, 2, 5])
@pytest.mark.parametrize("normalize", [True, False])
def test_explicit_wl_equals_grakel(directed, n_iter, normalize):
    graphs = dataset(7 + n_iter, 60, n_max=10, directed=directed, loops=True)
    # Hubs of degree 20: their signatures are too wide to pack into one int64 (the
    # structured-row path of graphs.kernels._sortable).
    rng = np.random.default_rng(n_iter)
    for k in (3, 50):
        hub = nx.star_graph(20, create_using=nx.DiGraph if directed else nx.Graph)
        nx.set_node_attributes(hub, {v: str(rng.choice(LABELS)) for v in hub}, "label")
        graphs[k] = hub
    # The test graphs carry a label the training graphs never have: unseen patterns must count
    # in their own norm only.
    train, test = graphs[:45], graphs[45:]
    for g in test[::3]:
        g.nodes[next(iter(g))]["label"] = "Z"
    kernel = GraphKernel("wl", normalize=normalize, n_iter=n_iter)
    k_train, k_test = kernel.fit_transform(train), kernel.transform(test)
    ref_train, ref_test = grakel_reference("wl", train, test, normalize=normalize, n_iter=n_iter)
    # Same counts and the same normalising expression: equal to the last bit.
    np.testing.assert_array_equal(k_train, ref_train)
    np.testing.assert_array_equal(k_test, ref_test)
    refit = GraphKernel("wl", normalize=normalize, n_iter=n_iter).fit(train).transform(train)
    np.testing.assert_array_equal(refit, k_train)


@st.composite
def small_graphs(draw):
    n = draw(st.integers(1, 7))
    directed = draw(st.booleans())
    g = nx.DiGraph() if directed else nx.Graph()
    g.add_nodes_from((v, {"label": draw(st.sampled_from("AB"))}) for v in range(n))
    pairs = [(u, v) for u in range(n) for v in range(n) if u != v and (directed or u < v)]
    g.add_edges_from(draw(st.lists(st.sampled_from(pairs), max_size=10)) if pairs else [])
    return g


@settings(max_examples=40, deadline=None)
@given(st.lists(small_graphs(), min_size=1, max_size=6), st.integers(1, 3), st.randoms())
def test_explicit_wl_property(graphs, n_iter, random):
    """Any small graphs: equal to GraKeL, and blind to the order and names of nodes."""
    ours = GraphKernel("wl", n_iter=n_iter).fit_transform(graphs)
    # (GraKeL's WL transform of some single graphs fails inside GraKeL: fit_transform only.)
    ref = grakel_reference("wl", graphs, None, normalize=True, n_iter=n_iter)
    np.testing.assert_array_equal(ours, ref)
    shuffled = []
    for g in graphs:
        order = list(g)
        random.shuffle(order)
        h = g.__class__()
        h.add_nodes_from((f"v{v}", g.nodes[v]) for v in order)
        h.add_edges_from((f"v{u}", f"v{v}") for u, v in g.edges())
        shuffled.append(h)
    np.testing.assert_array_equal(GraphKernel("wl", n_iter=n_iter).fit_transform(shuffled), ours)


def test_explicit_wl_features_by_hand():
    # Path C-C-O: iteration 0 counts {C: 2, O: 1}; iteration 1 gives the patterns
    # (C; C), (C; C, O), (O; C), one each. k(G, G) = 2^2 + 1 + 3 * 1 = 8.
    g = nx.Graph([(0, 1), (1, 2)])
    nx.set_node_attributes(g, {0: "C", 1: "C", 2: "O"}, "label")
    fmap = WLFeatureMap(n_iter=1)
    phi = fmap.fit_transform([g]).toarray()
    assert fmap.block_sizes_ == (2, 3)
    assert sorted(phi[0, :2]) == [1.0, 2.0] and sorted(phi[0, 2:]) == [1.0, 1.0, 1.0]
    assert (phi @ phi.T)[0, 0] == 8.0
    # A graph sharing only the label "C" (one node): k = 2 * 1 at iteration 0; its own
    # iteration-1 pattern (C; ) is unseen, so it has no column but counts in its norm: 1 + 1.
    h = nx.Graph()
    h.add_node("x", label="C")
    psi, norms = fmap.transform([h], return_norms=True)
    assert (psi @ phi.T).tolist() == [[2.0]]
    assert norms.tolist() == [2.0]


def test_explicit_wl_scales_to_thousands():
    # Not a timing test: the explicit map handles a few thousand graphs within the fast suite
    # and its Gram matrix still equals GraKeL's.
    graphs = dataset(3, 1500, n_min=2, n_max=14)
    ours = GraphKernel("wl").fit_transform(graphs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = grakel.kernels.WeisfeilerLehman(normalize=True).fit_transform(
            list(grakel.graph_from_networkx(graphs, node_labels_tag="label"))
        )
    np.testing.assert_array_equal(ours, ref)


# ---- scikit-learn -----------------------------------------------------------------------------


def _two_classes(seed: int, count: int, *, labels=("A", "B")):
    """Class 0: labelled paths; class 1: labelled stars with a path tail (a degree >= 3 hub)."""
    rng = np.random.default_rng(seed)
    graphs, y = [], []
    for i in range(count):
        n = int(rng.integers(5, 10))
        if i % 2:
            g = nx.star_graph(3)
            nx.add_path(g, [3, *range(4, n)])
        else:
            g = nx.path_graph(n)
        for v in g:
            g.nodes[v]["label"] = str(rng.choice(labels))
        graphs.append(g)
        y.append(i % 2)
    return graphs, np.array(y)


@pytest.mark.parametrize("kind", ["wl", "wl_oa", "odd_sth", "propagation"])
def test_svc_precomputed(kind):
    train, y_train = _two_classes(0, 40)
    test, y_test = _two_classes(1, 20)
    kernel = GraphKernel(kind)
    svc = SVC(kernel="precomputed", C=10.0).fit(kernel.fit_transform(train), y_train)
    pred = svc.predict(kernel.transform(test))
    # Classes differ by a degree-3 hub, which every kernel here sees ...
    assert (pred == y_test).mean() >= 0.9
    # ... and which a histogram of node labels cannot see (the same SVC is near chance).
    blind = GraphKernel("vertex_histogram")
    svc_blind = SVC(kernel="precomputed", C=10.0).fit(blind.fit_transform(train), y_train)
    assert (svc_blind.predict(blind.transform(test)) == y_test).mean() < 0.7
    # The fitted SVC is the same as one trained on GraKeL's own Gram matrices.
    ref_train, ref_test = grakel_reference(kind, train, test, normalize=True)
    ref = SVC(kernel="precomputed", C=10.0).fit(ref_train, y_train)
    np.testing.assert_allclose(
        svc.decision_function(kernel.transform(test)), ref.decision_function(ref_test), atol=1e-8
    )


def test_kernel_pca_precomputed():
    graphs, y = _two_classes(2, 30, labels=("C",))
    gram = GraphKernel("wl").fit_transform(graphs)
    emb = KernelPCA(n_components=2, kernel="precomputed").fit_transform(gram)
    # Reference: eigenvectors of the doubly centred Gram matrix scaled by sqrt(eigenvalue)
    # (Schoelkopf, Smola and Mueller, Neural Comput. 10, 1299, 1998).
    n = len(graphs)
    c = np.eye(n) - 1.0 / n
    vals, vecs = np.linalg.eigh(c @ gram @ c)
    ref = vecs[:, ::-1][:, :2] * np.sqrt(vals[::-1][:2])
    signs = np.sign((emb * ref).sum(axis=0))
    np.testing.assert_allclose(emb * signs, ref, atol=1e-8)
    # With one node label, structure is all there is: the first component separates the classes.
    first = emb[:, 0]
    assert first[y == 0].max() < first[y == 1].min() or first[y == 1].max() < first[y == 0].min()


def test_sklearn_params_and_clone():
    kernel = GraphKernel("propagation", normalize=False, seed=3, t_max=2, w=0.05)
    params = kernel.get_params()
    assert params == {
        "kind": "propagation",
        "normalize": False,
        "backend": "auto",
        "seed": 3,
        "n_jobs": None,
        "t_max": 2,
        "w": 0.05,
    }
    copy = clone(kernel)
    assert copy.get_params() == params
    train, _ = kind_dataset("propagation")
    np.testing.assert_array_equal(copy.fit_transform(train), kernel.fit_transform(train))
    kernel.set_params(t_max=4)
    assert kernel.params["t_max"] == 4
    with pytest.raises(InputError, match="no parameter"):
        kernel.set_params(bogus=1)


# ---- bad input --------------------------------------------------------------------------------


def test_bad_input():
    good = dataset(0, 3)
    with pytest.raises(UnknownMetricError, match="unknown kernel kind 'wlx'.*known: .*wl"):
        GraphKernel("wlx")
    with pytest.raises(InputError, match="no parameter.*'depth'"):
        GraphKernel("wl", depth=3)
    with pytest.raises(InputError, match="backend"):
        GraphKernel("shortest_path", backend="explicit")
    with pytest.raises(InputError, match="n_iter"):
        WLFeatureMap(n_iter=0)
    with pytest.raises(InputError, match="empty"):
        GraphKernel().fit([])
    with pytest.raises(InputTypeError, match="not one graph"):
        GraphKernel().fit(good[0])
    with pytest.raises(InputTypeError, match=r"graphs\[1\] is str"):
        GraphKernel().fit([good[0], "Gal"])
    with pytest.raises(EmptyGraphError, match=r"graphs\[1\] has no nodes"):
        GraphKernel().fit([good[0], nx.Graph()])
    unlabelled = nx.path_graph(2)
    with pytest.raises(InputError, match="node 0 has no 'label'"):
        GraphKernel().fit([unlabelled])
    with pytest.raises(InputError, match="no 'x'"):
        GraphKernel("propagation_attr").fit([unlabelled])
    lonely = nx.Graph()
    lonely.add_node(0, label="A", x=np.ones(2))
    with pytest.raises(InputError, match="isolated node"):
        GraphKernel("graph_hopper").fit([lonely])
    with pytest.raises(InputError, match="no edges"):
        GraphKernel("edge_histogram").fit([lonely])
    with pytest.raises(InputError, match="edge .* has no 'label'"):
        GraphKernel("edge_histogram").fit([nx.path_graph(2)])
    with pytest.raises(NotFittedError):
        GraphKernel().transform(good)


# ---- real macromolecule graphs ----------------------------------------------------------------

GLYCANS = [
    "Neu5Ac(a2-3)Gal(b1-4)[Fuc(a1-3)]GlcNAc(b1-2)Man",
    "Gal(b1-4)GlcNAc(b1-2)Man(a1-3)[Gal(b1-4)GlcNAc(b1-2)Man(a1-6)]Man(b1-4)GlcNAc(b1-4)GlcNAc",
    "Man(a1-2)Man(a1-3)[Man(a1-6)]Man(a1-6)[Man(a1-3)]Man(b1-4)GlcNAc(b1-4)GlcNAc",
    "Fuc(a1-2)Gal(b1-3)GlcNAc",
    "Gal(b1-4)Glc",
    "Neu5Ac(a2-6)Gal(b1-4)GlcNAc(b1-3)Gal(b1-4)Glc",
    "GalNAc(a1-3)[Fuc(a1-2)]Gal(b1-4)GlcNAc",
    "Glc",
]


@pytest.mark.parametrize("kind", ["wl", "wl_oa", "shortest_path", "propagation_attr"])
def test_glycan_graphs_equal_grakel(kind):
    # GLAMOUR's kernel (PropagationAttr) on the monomers' Morgan fingerprints, and label kernels,
    # on DiGraphs from reprs (edges child -> parent), which the kernels see as undirected.
    from reprs import glycan_graph

    graphs = [glycan_graph(s) for s in GLYCANS]
    train, test = graphs[:6], graphs[6:]
    params = PARAMS.get(kind, {})
    kernel = GraphKernel(kind, **params)
    ref_train, ref_test = grakel_reference(kind, train, test, normalize=True, **params)
    np.testing.assert_allclose(kernel.fit_transform(train), ref_train, rtol=1e-12, atol=1e-12)
    if kind == "shortest_path":  # "Glc" alone has no path: k(G, G) = 0, said once
        with pytest.warns(UserWarning, match="k\\(G, G\\) = 0"):
            cross = kernel.transform(test)
    else:
        cross = kernel.transform(test)
    np.testing.assert_allclose(cross, ref_test, rtol=1e-12, atol=1e-12)
    # The two complex N-glycans (rows 1, 2) share their core: more alike than a disaccharide.
    assert ref_train[1, 2] > ref_train[1, 4]
