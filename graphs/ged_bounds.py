"""Lower bounds on graph edit distance, vectorised over a whole dataset: the filter of a search.

A similarity search that must be *certified* (``graphs.index.top_k(..., exact=True)``) computes
exact graph edit distances (GED, :mod:`graphs.ged`) only for the candidates whose lower bound does
not already rule them out. The bound here is the first, cheapest tier of that filter: it reads only
each graph's multisets of node and edge *classes*, so one query is compared with every graph of an
index by a few sparse array operations. The second tier is the BRANCH bound of Blumenthal and
Gamper [2]_ (one assignment per pair, ``graph_edit_distance(method="bipartite").lower_bound``),
the third the exact solver.

Element classes
---------------
Two nodes (or two edges) are in the same class when the cost model cannot tell them apart:
:class:`~graphs.costs.ChemicalCosts` reads only the fingerprint ``"x"`` (equal fingerprints:
substitution cost 0), :class:`~graphs.costs.UniformCosts` only the ``"label"``. Other cost models
are refused: the bound is proven for these two only. Both charge one price ``d`` for deleting and
one price ``e`` for inserting any node (and their own pair for edges), which the proof needs.

The bound and its proof
-----------------------
Every edit path is fixed by a partial injective node map (module docstring of :mod:`graphs.ged`),
and its cost splits into node operations and edge operations. (a) The node operations cost at
least the cheapest node assignment with deletions and insertions (an LSAP over nodes alone).
(b) The edge operations: the edges whose end nodes map onto an edge of ``G2`` form a partial
injective map between the edge sets (injective because the node map is and graphs are simple); a
matched pair costs ``min(sub, d + e)``, every other edge is deleted or inserted. So the edge
operations cost at least the cheapest partial injective edge assignment with substitution costs
``min(sub, d + e)``. Hence ``GED >= LB_nodes + LB_edges`` with both terms assignment problems over
element multisets, as in Riesen and Bunke's and Blumenthal's node/edge split bounds [1]_ [2]_.

Each assignment problem is then relaxed into one with a closed form. Write ``A`` for the
elements of ``G1`` (the query) and ``B`` for those of ``G2``, ``n1 = |A|``, ``n2 = |B|``.
Substituting within a class costs at least 0; substituting element ``i`` of ``A`` by an element of
``B`` of another class costs at least ``delta_i``, the smallest substitution cost from ``i``'s class
to any *other* class present in ``G2`` (the "query side" relaxation; the "dataset side" one uses
``delta'_k``, the smallest cost from any other class present in ``G1`` to ``k``'s class). Lowering
costs lowers the optimum, so the relaxed problem's optimum is a lower bound. In the relaxed
problem a maximum same-class matching is optimal, by exchange: if ``i`` in ``A`` and ``k`` in
``B`` share a class and neither is matched within its class, re-matching ``i`` to ``k`` (cost 0)
and giving their former partners to each other or to deletion/insertion never raises the cost:
(deleted, inserted) saves ``d + e``; (deleted, ``k`` crossed from ``i'``) becomes (``i-k``,
``i'`` deleted): ``d + delta_i' -> 0 + d``; (``i`` crossed to ``k'``, inserted) becomes
(``i-k``, ``k'`` inserted): ``delta_i + e -> e``; (crossed, crossed) becomes (``i-k``, ``i'-k'``):
``delta_i + delta_i' -> <= delta_i'``. So ``eq = sum_c min(a_c, b_c)`` same-class pairs are
matched (``a_c``, ``b_c``: multiplicities of class ``c``), the ``n1 - eq`` other elements of ``A``
and the ``n2 - eq`` other elements of ``B`` are deleted, inserted or crossed, and each crossed pair
saves ``s_i = max(0, d + e - delta_i)`` against a deletion plus an insertion. At most
``X = min(n1 - eq, n2 - eq)`` pairs can cross, and the best are those with the largest savings::

    LB = (n1 - eq) d + (n2 - eq) e - (sum of the X largest savings s_i over unmatched i in A)

(a remaining element of ``B`` never has ``i``'s class: a class with unmatched elements on both
sides would contradict the maximum same-class matching). The dataset-side form is the same with
the savings ``s'_k`` of the unmatched elements of ``B``. Both are valid, so their maximum is. With
:class:`~graphs.costs.UniformCosts` (``delta = sub`` for every other class) both equal the LSAP
optimum, ``|n1 - n2| indel + min(sub, 2 indel) (min(n1, n2) - eq)`` per element kind: the
label-multiset bound, tight for that part. The bound ignores where elements sit in the graph; the
BRANCH tier adds each node's incident edges, the exact solver the rest.

Degrees
-------
The edge operations have a second lower bound, from degrees alone (the degree-sequence argument of
the star filters [3]_). Under any node map ``pi``, the edges matched at a node ``u`` correspond one
to one to those matched at ``pi(u)``, so ``|deg1(u) - deg2(pi(u))| <= del(u) + ins(pi(u))``, the
edges deleted at ``u`` and inserted at ``pi(u)``; a deleted (inserted) node has all its edges
deleted (inserted). Summing over all nodes, with a deleted or inserted node paired with degree 0,
``sum |deg1 - deg2| <= 2 (deleted + inserted edges)``. The left side is at least its minimum over
all pairings of the two zero-padded degree sequences, which pairs them in sorted order. For
directed graphs the argument holds for in-degrees and out-degrees separately (an edge counts once
in each), and the two minima add. So at least ``D = ceil(sum_sorted |deg1 - deg2| / 2)`` edges are
deleted or inserted, and the edge operations cost at least ``D min(d, e)``; the edge part of the
bound is the larger of this and the multiset bound, since both bound the same cost.

The bound is computed in floating point; values are lowered by ``1e-9`` relative so that rounding
never lifts one above the exact distance.

Metric
------
Under both supported cost models GED is a pseudometric (zero between graphs the costs cannot tell
apart), which the triangle bounds of :mod:`graphs.search` use. Write ``c(a, b)`` for the cost of
substituting element ``a`` by ``b`` (an edge pair costs ``min(sub, d + e)``, as in every edit path
of :mod:`graphs.ged`) and ``d = e`` for the one deletion and insertion price of each kind.

*Element costs.* ChemicalCosts: ``c = sub * D`` with ``D`` the Rogers-Tanimoto or the Jaccard
dissimilarity of the fingerprints. Rogers-Tanimoto is ``f(R) = 2R / (n + R)`` of the Hamming
distance ``R``; ``f`` is increasing and concave with ``f(0) = 0``, hence subadditive, so
``f(R(a, c)) <= f(R(a, b) + R(b, c)) <= f(R(a, b)) + f(R(b, c))``: a metric; the Jaccard distance
is a metric (Levandowsky and Winter [4]_). UniformCosts: ``c`` is a constant times the discrete
metric on labels. ``min(c, d + e)`` keeps the triangle inequality (``min(x + y, t) <=
min(x, t) + min(y, t)``). Both are symmetric, and ``d = e`` is one constant per kind.

*Symmetry.* The inverse of a node map from ``G1`` to ``G2`` is a node map from ``G2`` to ``G1``
that substitutes the same pairs (edges keep their direction) and deletes what the first inserted;
with symmetric ``c`` and ``d = e`` it costs the same, so ``GED(G1, G2) = GED(G2, G1)``.

*Triangle inequality.* Take optimal node maps ``pi1: G1 -> G2`` and ``pi2: G2 -> G3`` and their
composition ``pi = pi2 o pi1`` (a partial injective map ``G1 -> G3``). Charge each element of
``G1`` and ``G3`` under ``pi`` to disjoint operations of the two paths. A node ``u`` of ``G1``
substituted to ``v`` and on to ``w``: ``c(u, w) <= c(u, v) + c(v, w)``; substituted to ``v`` and
``v`` deleted: ``d <= c(u, v) + d``; deleted by ``pi1``: the same deletion. A node ``w`` of
``G3`` that ``pi`` inserts: its preimage ``v`` under ``pi2`` was inserted by ``pi1``
(``e <= e + c(v, w)``), or ``pi2`` inserts ``w``. Edges alike: an edge ``(u, u')`` of ``G1``
that ``pi`` matches to an edge ``g`` of ``G3``: if ``pi1`` matched it to an edge ``f`` that
``pi2`` matched to ``g``, ``c(e, g) <= c(e, f) + c(f, g)``; otherwise it is deleted by one path
and ``g`` inserted by the other (or ``f`` deleted), and ``c(e, g) <= d + e``; an edge that ``pi``
deletes was deleted, or matched to an edge that ``pi2`` deletes (``d <= c + d``); an edge that
``pi`` inserts likewise. Each operation of the two paths is charged at most once, so
``cost(pi) <= GED(G1, G2) + GED(G2, G3)`` and ``GED(G1, G3) <= cost(pi)``. Hence, for any graphs
``q, p, y``: ``GED(q, y) >= GED(q, p) - GED(p, y) >= LB(q, p) - UB(p, y)`` for any proven lower
bound ``LB`` and any edit-path cost ``UB`` (Bougleux et al. [5]_ state the same for metric
costs). Cost models outside these two are refused by the filter and never get triangle bounds.

References
----------
.. [1] Riesen and Bunke, "Approximate graph edit distance computation by means of bipartite graph
   matching", Image Vis. Comput. 27, 950-959 (2009).
.. [2] Blumenthal and Gamper, "Improved lower bounds for graph edit distance", IEEE Trans. Knowl.
   Data Eng. 30, 503-516 (2018); Blumenthal, Boria, Gamper, Bougleux and Brun, "Comparing heuristics
   for graph edit distance computation", VLDB J. 29, 419-458 (2020).
.. [3] Zeng, Tung, Wang, Feng and Zhou, "Comparing stars: on approximating graph edit distance",
   PVLDB 2, 25-36 (2009): label-multiset filters for graph similarity search.
.. [4] Levandowsky and Winter, "Distance between sets", Nature 234, 34-35 (1971): the Jaccard
   distance is a metric.
.. [5] Bougleux, Brun, Carletti, Foggia, Gauzere and Vento, "Graph edit distance as a quadratic
   assignment problem", Pattern Recognit. Lett. 87, 38-46 (2017).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import networkx as nx
import numpy as np
import scipy.sparse as sp

from graphs.costs import ChemicalCosts, CostModel, UniformCosts
from graphs.errors import InputError, InputTypeError

__all__ = ["ElementVocabulary", "FilterFeatures", "cost_settings", "degree_sequences",
           "filter_features", "multiset_lower_bounds"]

_KINDS = ("nodes", "edges")


def cost_settings(costs: CostModel) -> dict:
    """The parameters that define a supported cost model, as a JSON-able dict.

    Raises
    ------
    InputTypeError
        ``costs`` is neither :class:`ChemicalCosts` nor :class:`UniformCosts`.
    """
    if isinstance(costs, ChemicalCosts):
        return {"model": "ChemicalCosts", "sub": float(costs.sub), "indel": float(costs.indel),
                "distance": costs.distance}
    if isinstance(costs, UniformCosts):
        return {"model": "UniformCosts", "node_sub": float(costs.node_sub),
                "node_indel": float(costs.node_indel), "edge_sub": float(costs.edge_sub),
                "edge_indel": float(costs.edge_indel)}
    raise InputTypeError(
        f"GED lower bounds are proven for ChemicalCosts and UniformCosts only, got "
        f"{type(costs).__name__}; use graphs.query.top_k (no certificate) for other costs"
    )


def _attribute(costs: CostModel) -> str:
    return "x" if isinstance(costs, ChemicalCosts) else "label"


def _key(value: object, attr: str, what: str) -> object:
    """Hashable class key of one element's attribute (a fingerprint's bits, or the label)."""
    if attr == "label":
        return str(value)
    x = np.asarray(value)
    if x.ndim != 1 or not np.isin(x, (0, 1)).all():
        raise InputError(f"{what}: 'x' must be a 1-D binary fingerprint, got shape {x.shape}")
    return (len(x), np.packbits(x.astype(bool)).tobytes())


@dataclass(frozen=True)
class ElementVocabulary:
    """The distinct classes of the nodes (or edges) of a dataset.

    Attributes
    ----------
    attr : str
        ``"x"`` (fingerprints, :class:`ChemicalCosts`) or ``"label"`` (:class:`UniformCosts`).
    values : numpy.ndarray
        One row per class: a (V, n_bits) uint8 fingerprint matrix, or a (V,) str array of labels.
    """

    attr: str
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    @cached_property
    def lookup(self) -> dict:
        """Class key -> class id."""
        return {_key(v, self.attr, "vocabulary"): i for i, v in enumerate(self.values)}

    def items(self, ids: np.ndarray, kind: str) -> list:
        """Representative elements of the classes ``ids``, as a cost model reads them."""
        return _items([{self.attr: self.values[i]} for i in ids], kind)


def _items(attrs: list, kind: str) -> list:
    """``(node, attrs)`` or ``(u, v, attrs)`` items, as ``G.nodes(data=True)`` gives them."""
    return [(i, a) for i, a in enumerate(attrs)] if kind == "nodes" else [
        (i, i, a) for i, a in enumerate(attrs)]


def _classify(graphs: Sequence[nx.Graph], attr: str, kind: str, lookup: dict, values: list):
    """Class ids of every element (nodes or edges) of ``graphs``, growing ``lookup``/``values``.

    Returns the ids (concatenated in graph order) and the element count of each graph.
    """
    ids, sizes = [], np.empty(len(graphs), dtype=np.int64)
    for g_index, g in enumerate(graphs):  # a loop over graphs and their elements, once per build
        elements = g.nodes(data=True) if kind == "nodes" else g.edges(data=True)
        sizes[g_index] = len(elements)
        for item in elements:
            attrs = item[-1]
            if attr not in attrs:
                raise InputError(
                    f"graph {g_index}: {kind[:-1]} {item[:-1]} has no {attr!r} attribute, which the "
                    f"cost model compares"
                )
            key = _key(attrs[attr], attr, f"graph {g_index}, {kind[:-1]} {item[:-1]}")
            found = lookup.get(key)
            if found is None:
                found = lookup[key] = len(values)
                values.append(attrs[attr])
            ids.append(found)
    return np.asarray(ids, dtype=np.int64), sizes


def _vocabulary(values: list, attr: str) -> ElementVocabulary:
    if attr == "label":
        return ElementVocabulary(attr, np.asarray(values, dtype=str))
    widths = {len(np.asarray(v)) for v in values}
    if len(widths) > 1:
        raise InputError(f"fingerprints of different lengths {sorted(widths)} in one dataset; "
                         f"build every graph with the same featurizer")
    matrix = np.asarray(values, dtype=np.uint8).reshape(len(values), widths.pop() if widths else 0)
    return ElementVocabulary(attr, matrix)


@dataclass(frozen=True)
class FilterFeatures:
    """Per-graph class multisets of a dataset, for :func:`multiset_lower_bounds`.

    Attributes
    ----------
    costs : dict
        :func:`cost_settings` of the cost model the classes were made for.
    vocabulary : dict
        ``"nodes"`` and ``"edges"`` -> :class:`ElementVocabulary`.
    counts : dict
        ``"nodes"`` and ``"edges"`` -> scipy.sparse.csr_array of shape (n_graphs, V): how many
        elements of each class every graph has (int64).
    degrees : dict
        ``"in"`` and ``"out"`` (directed graphs) or ``"all"`` (undirected) -> int64 array of shape
        (n_graphs, max nodes): each graph's degree sequence sorted in decreasing order, padded
        with zeros.
    """

    costs: dict
    vocabulary: dict
    counts: dict
    degrees: dict

    @property
    def n_graphs(self) -> int:
        return self.counts["nodes"].shape[0]

    def sizes(self, kind: str) -> np.ndarray:
        """Number of nodes (or edges) of every graph."""
        return np.asarray(self.counts[kind].sum(axis=1)).ravel().astype(np.int64)


def filter_features(graphs: Sequence[nx.Graph], costs: CostModel,
                    vocabulary: dict | None = None) -> FilterFeatures:
    """Class multisets of every graph (see the module docstring).

    Parameters
    ----------
    graphs : sequence of networkx graphs
        The dataset; nodes and edges carry the attribute the cost model reads (``"x"`` or
        ``"label"``).
    costs : ChemicalCosts or UniformCosts
    vocabulary : dict, optional
        Start from these vocabularies (``FilterFeatures.vocabulary`` of an index being extended);
        new classes are appended, so ids already in use keep their meaning.

    Returns
    -------
    FilterFeatures

    Raises
    ------
    InputTypeError
        Another cost model.
    InputError
        An element lacks the attribute, or a fingerprint is not a 1-D binary vector.
    """
    settings = cost_settings(costs)
    attr = _attribute(costs)
    vocabs, counts = {}, {}
    for kind in _KINDS:
        old = vocabulary[kind].values if vocabulary else []
        values = list(old)
        lookup = dict(vocabulary[kind].lookup) if vocabulary else {}
        ids, sizes = _classify(graphs, attr, kind, lookup, values)
        vocabs[kind] = _vocabulary(values, attr)
        rows = np.repeat(np.arange(len(graphs)), sizes)
        counts[kind] = sp.csr_array((np.ones(len(ids), dtype=np.int64), (rows, ids)),
                                    shape=(len(graphs), len(values)))
        counts[kind].sum_duplicates()
    return FilterFeatures(settings, vocabs, counts, degree_sequences(graphs))


def degree_sequences(graphs: Sequence[nx.Graph]) -> dict:
    """Sorted, zero-padded degree sequences (see :attr:`FilterFeatures.degrees`)."""
    directed = any(g.is_directed() for g in graphs)
    width = max((len(g) for g in graphs), default=0)
    kinds = {"in": "in_degree", "out": "out_degree"} if directed else {"all": "degree"}
    out = {}
    for name, attr in kinds.items():
        seqs = [sorted((d for _, d in getattr(g, attr)()), reverse=True) for g in graphs]
        top = max((s[0] for s in seqs if s), default=0)
        # uint8 where degrees allow: the table is (n_graphs, largest graph), 100 wide for glycans
        table = np.zeros((len(graphs), width), dtype=np.uint8 if top < 256 else np.int64)
        for i, seq in enumerate(seqs):
            table[i, : len(seq)] = seq
        out[name] = table
    return out


def _edge_indels(query: nx.Graph, features: FilterFeatures, select) -> np.ndarray:
    """``D`` of the module docstring: fewest edges any edit path deletes or inserts."""
    q = degree_sequences([query])
    if set(q) != set(features.degrees):
        raise InputError("the query is directed and the dataset undirected, or the other way round; "
                         "convert one so both agree")
    total = 0
    for name, table in features.degrees.items():
        if select is not None:
            table = table[select]
        width = max(table.shape[1], q[name].shape[1])
        a = np.zeros((table.shape[0], width), dtype=np.int16 if table.dtype == np.uint8 else np.int64)
        a[:, : table.shape[1]] = table
        b = np.zeros(width, dtype=a.dtype)
        b[: q[name].shape[1]] = q[name][0]
        total = total + np.abs(a - b[None, :]).sum(axis=1, dtype=np.int64)
    return -(-total // 2)


def _indel(costs: CostModel, kind: str) -> tuple[float, float]:
    """(deletion, insertion) price of any element of this kind: one each for both cost models."""
    if isinstance(costs, ChemicalCosts):
        return float(costs.indel), float(costs.indel)
    price = float(costs.node_indel if kind == "nodes" else costs.edge_indel)
    return price, price


def _top_savings(rows: np.ndarray, counts: np.ndarray, savings: np.ndarray, take: np.ndarray,
                 n_rows: int) -> np.ndarray:
    """Per row, the sum of the ``take[row]`` largest savings, each entry available ``counts`` times.

    ``rows``, ``counts`` and ``savings`` describe entries (one per class per graph).
    """
    order = np.lexsort((-savings, rows))
    rows, counts, savings = rows[order], counts[order], savings[order]
    cum = np.cumsum(counts)
    before = cum - counts
    start = np.searchsorted(rows, np.arange(n_rows))  # first entry of each row (rows are sorted)
    row_base = np.concatenate([before, [0]])[start]
    used = np.clip(take[rows] - (before - row_base[rows]), 0, counts)
    return np.bincount(rows, weights=used * savings, minlength=n_rows)


def _kind_bound(query: nx.Graph, features: FilterFeatures, costs: CostModel, kind: str,
                select: np.ndarray | None) -> np.ndarray:
    vocab: ElementVocabulary = features.vocabulary[kind]
    H = features.counts[kind]
    if select is not None:
        H = H[select]
    n = H.shape[0]
    H = sp.csr_array(H)
    values = list(vocab.values)
    q_ids, _ = _classify([query], vocab.attr, kind, dict(vocab.lookup), values)
    cq, a_q = np.unique(q_ids, return_counts=True)
    n1 = int(a_q.sum())
    n2 = np.asarray(H.sum(axis=1)).ravel()
    d, e = _indel(costs, kind)
    if n1 == 0:
        return n2 * e
    reps_q = _items([{vocab.attr: values[c]} for c in cq], kind)
    reps_v = vocab.items(np.arange(len(vocab)), kind)
    if len(vocab):
        price = costs.node_costs(reps_q, reps_v) if kind == "nodes" else costs.edge_costs(reps_q,
                                                                                           reps_v)
        S = np.asarray(price.sub, dtype=np.float64)
    else:
        S = np.zeros((len(cq), 0))
    if kind == "edges":
        S = np.minimum(S, d + e)  # a matched edge pair costs at most a deletion and an insertion
    in_vocab = cq < len(vocab)
    same = np.zeros(S.shape, dtype=bool)
    same[np.flatnonzero(in_vocab), cq[in_vocab]] = True
    S_other = np.where(same, np.inf, S)

    G = np.zeros((n, len(cq)), dtype=np.int64)
    if in_vocab.any():
        G[:, in_vocab] = H[:, cq[in_vocab]].toarray()
    common = np.minimum(a_q[None, :], G)
    eq = common.sum(axis=1)
    X = np.minimum(n1 - eq, n2 - eq)
    base = (n1 - eq) * d + (n2 - eq) * e

    # Query side: delta[g, j] = cheapest substitution of query class j by another class of g.
    rows_h = np.repeat(np.arange(n), np.diff(H.indptr))
    delta = np.full((n, len(cq)), np.inf)
    if H.nnz:
        M = S_other[:, H.indices]  # (|cq|, nnz)
        nonempty = np.diff(H.indptr) > 0
        starts = H.indptr[:-1][nonempty]
        delta[nonempty] = np.minimum.reduceat(M, starts, axis=1).T
    savings_q = np.maximum(0.0, d + e - delta)
    rows_q = np.repeat(np.arange(n), len(cq))
    bound_q = base - _top_savings(rows_q, (a_q[None, :] - common).ravel(), savings_q.ravel(), X, n)

    # Dataset side: delta'[c] = cheapest substitution of another query class by class c.
    delta_v = S_other.min(axis=0) if len(cq) else np.full(len(vocab), np.inf)
    savings_v = np.maximum(0.0, d + e - delta_v)
    column = np.full(len(vocab), -1)
    column[cq[in_vocab]] = np.flatnonzero(in_vocab)
    col = column[H.indices]
    matched = np.where(col >= 0, common[rows_h, np.maximum(col, 0)], 0)
    bound_v = base - _top_savings(rows_h, H.data - matched, savings_v[H.indices], X, n)
    return np.maximum(bound_q, bound_v)


def multiset_lower_bounds(query: nx.Graph, features: FilterFeatures, costs: CostModel, *,
                          select: np.ndarray | None = None) -> np.ndarray:
    """Lower bounds on ``GED(query, G)`` for every graph ``G`` of a dataset, in one pass.

    Parameters
    ----------
    query : networkx graph
        The query; its elements carry the attribute the cost model reads.
    features : FilterFeatures
        The dataset's class multisets (:func:`filter_features`), made for the same costs.
    costs : ChemicalCosts or UniformCosts
        The edit costs of the distance being bounded.
    select : numpy.ndarray of int, optional
        Bound only these graphs of the dataset (default: all).

    Returns
    -------
    numpy.ndarray of float64, shape (n_graphs,) or (len(select),)
        ``LB[g] <= graph_edit_distance(query, G_g, costs=costs).distance`` (same units as the
        costs); the proof is in the module docstring.

    Raises
    ------
    InputTypeError
        ``query`` is not a networkx graph, or ``costs`` is another cost model.
    InputError
        ``features`` were made for other costs, or the query lacks the attribute they compare.

    Examples
    --------
    >>> import networkx as nx
    >>> from graphs.costs import UniformCosts
    >>> G = nx.path_graph(3); nx.set_node_attributes(G, "C", "label")
    >>> nx.set_edge_attributes(G, "-", "label")
    >>> H = nx.path_graph(2); nx.set_node_attributes(H, "N", "label")
    >>> nx.set_edge_attributes(H, "-", "label")
    >>> feats = filter_features([G, H], UniformCosts())
    >>> multiset_lower_bounds(G, feats, UniformCosts()).round(6).tolist()
    [0.0, 4.0]
    """
    if not isinstance(query, nx.Graph):
        raise InputTypeError(f"query must be a networkx graph, got {type(query).__name__}")
    settings = cost_settings(costs)
    if settings != features.costs:
        raise InputError(
            f"the filter features were made for {features.costs}, not for {settings}; rebuild them "
            f"(or the index) with the costs of the query"
        )
    d, e = _indel(costs, "edges")
    edges = np.maximum(_kind_bound(query, features, costs, "edges", select),
                       min(d, e) * _edge_indels(query, features, select))
    bound = _kind_bound(query, features, costs, "nodes", select) + edges
    return np.maximum(bound - 1e-9 * (1.0 + np.abs(bound)), 0.0)
