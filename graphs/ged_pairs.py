"""Graph edit distance between the graphs of one index, from work done once per element class,
per graph and per star: the pair solver of certified searches (:mod:`graphs.search`).

A search over an index computes the bounds of :func:`graphs.ged.graph_edit_distance` for
hundreds of pairs per query. Called on two networkx graphs, each call rebuilds what does not
depend on the pair: the graphs' index arrays, the fingerprints behind the edit costs, and the
optimal edge assignment between every two nodes' stars (Riesen and Bunke's local structure,
:func:`graphs.ged._local_edge_costs`), which was the largest part of a call. Here

* element costs are one table per element kind over the index's element classes
  (:class:`graphs.ged_bounds.ElementVocabulary`: elements the cost model cannot tell apart), made
  by one cost-model call; a pair's cost arrays are slices of it;
* each graph's arrays are built once, from the index's flat arrays (no networkx graph);
* a node's star is its *signature*: the sorted multiset of (direction, class) of its incident
  edges. The edge assignment between two stars depends on their signatures only, so it is solved
  once per signature pair (the bundled glycans have 1,515 signatures) and kept.

The problem handed to the solver is the one :func:`graphs.ged._problem` builds from the graphs
:meth:`graphs.index.GraphIndex.graph` returns (same node order, same edge order, same cost values),
so the bounds and distances are the same numbers, bit for bit (``tests/graphs/test_ged_pairs.py``
compares them on many pairs); the only difference is the constant by which
:func:`graphs.ged._star_assignments` shifts weights, one for the whole index here (one plus the
largest edge cost) instead of one per pair, which equals it whenever an edge deletion is the
dearest edge operation (GLAMOUR's costs: always).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import networkx as nx
import numpy as np

from graphs.costs import EditCosts
from graphs.errors import InputTypeError
from graphs.ged import (GEDResult, _check_graph, _checked, _Problem, _slots, _solve,
                        _star_assignments)
from graphs.ged_bounds import _attribute, _classify

__all__ = ["PairSolver", "pair_solver"]

_KINDS = ("nodes", "edges")


@dataclass(frozen=True)
class _Side:
    """One graph as the solver sees it: element classes, edges and node signatures."""

    nodes: list
    classes: np.ndarray  # (n,) node class ids
    src: np.ndarray
    dst: np.ndarray
    edge_classes: np.ndarray  # (m,)
    edge_id: np.ndarray  # (n, n) edge between two nodes, -1 where none
    signatures: np.ndarray  # (n,) star signature ids


class PairSolver:
    """Graph edit distances between indexed graphs (and outside queries), see the module docstring.

    Parameters
    ----------
    index : GraphIndex
        Built with GED features (``ged_costs``); its costs are the solver's.

    Attributes
    ----------
    n_signatures : int
        Distinct node signatures seen so far.
    prepared : bool
        :meth:`prepare` has run: every star assignment between indexed graphs is kept.
    """

    def __init__(self, index):
        self.index, self.costs = index, index.ged_costs
        self.key = index.key
        self.directed = bool(index.arrays["directed"])
        self._attr = _attribute(self.costs)
        vocab = index.ged.vocabulary
        self._values = {kind: list(vocab[kind].values) for kind in _KINDS}
        self._lookup = {kind: dict(vocab[kind].lookup) for kind in _KINDS}
        self._tables: dict = {}
        self._make_tables()
        # The index's element types (label and fingerprint) -> classes (what the costs read).
        attrs = index._type_attrs
        self._type_class = {}
        for kind, key in (("nodes", "node"), ("edges", "edge")):
            ids, _ = _classify([_items_graph(attrs[key], kind)], self._attr, kind,
                               self._lookup[kind], self._values[kind])
            self._type_class[kind] = ids
        self._sides: dict[int, _Side] = {}
        self._signature_ids: dict[tuple, int] = {}
        self._stars: list[tuple[np.ndarray, np.ndarray]] = []  # (classes, kinds) per signature
        self._star_arrays = None
        self._local = np.full((0, 0), np.nan)
        self.prepared = False
        # Any positive shift keeps each star assignment's optimum (_star_assignments).
        edge = self._tables["edges"]
        self._shift = 1.0 + max(float(edge.sub.max(initial=0.0)),
                                float(edge.delete.max(initial=0.0)),
                                float(edge.insert.max(initial=0.0)))

    @property
    def n_signatures(self) -> int:
        return len(self._stars)

    def _make_tables(self) -> None:
        """Cost tables over all classes, and the 1/s granularity of every cost value in them."""
        for kind in _KINDS:
            items = _items_list(self._values[kind], self._attr, kind)
            price = (self.costs.node_costs if kind == "nodes" else self.costs.edge_costs)(items,
                                                                                         items)
            n = len(items)
            self._tables[kind] = _checked(price, n, n, kind[:-1])
        arrays = [np.ravel(x) for kind in _KINDS for x in self._tables[kind]]
        values, inverse = np.unique(np.concatenate(arrays), return_inverse=True)
        # _Problem.scale's test, once per distinct value: ok[v, s - 1] when s * value is integral.
        scaled = np.arange(1, 65)[None, :] * values[:, None]
        self._ok = np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1.0, scaled)
        ids, at = [], 0
        for x in arrays:
            ids.append(inverse[at:at + len(x)])
            at += len(x)
        self._value_ids = {}
        for kind in _KINDS:
            n = len(self._values[kind])
            sub, delete, insert = ids[:3] if kind == "nodes" else ids[3:]
            self._value_ids[kind] = (sub.reshape(n, n), delete, insert)

    def side(self, i: int) -> _Side:
        """Indexed graph ``i`` (built once, then kept)."""
        found = self._sides.get(i)
        if found is None:
            a = self.index.arrays
            n0, n1 = int(a["node_ptr"][i]), int(a["node_ptr"][i + 1])
            e0, e1 = int(a["edge_ptr"][i]), int(a["edge_ptr"][i + 1])
            src, dst = a["edge_src"][e0:e1], a["edge_dst"][e0:e1]
            if not self.directed:  # networkx reports {u, v} from the earlier node, as (u, v)
                src, dst = np.minimum(src, dst), np.maximum(src, dst)
            # GraphIndex.graph adds the edges in stored order; networkx lists them by first node
            order = np.argsort(src, kind="stable")
            found = self._sides[i] = self._make_side(
                list(range(n1 - n0)), self._type_class["nodes"][a["node_type"][n0:n1]],
                src[order], dst[order], self._type_class["edges"][a["edge_type"][e0:e1][order]])
        return found

    def encode(self, G: nx.Graph) -> _Side:
        """A graph outside the index (a query); new element classes get their costs computed.

        Raises
        ------
        InputTypeError
            ``G`` is not a simple networkx graph, or is directed and the index not (or the
            other way round).
        InputError
            Self-loops, or an element without the attribute the costs read.
        """
        _check_graph(G, "the query")
        if G.is_directed() != self.directed:
            raise InputTypeError(
                f"the query is {'directed' if G.is_directed() else 'undirected'} but the index "
                f"holds {'directed' if self.directed else 'undirected'} graphs; convert the query")
        index = {v: k for k, v in enumerate(G.nodes)}
        edges = list(G.edges(data=True))
        classes = {}
        for kind in _KINDS:
            known = len(self._values[kind])
            classes[kind], _ = _classify([G], self._attr, kind, self._lookup[kind],
                                         self._values[kind])
            if len(self._values[kind]) > known:
                self._make_tables()
        uv = np.array([(index[u], index[v]) for u, v, _ in edges], dtype=np.int64).reshape(-1, 2)
        return self._make_side(list(G.nodes), classes["nodes"], uv[:, 0], uv[:, 1],
                               classes["edges"])

    def _make_side(self, nodes, classes, src, dst, edge_classes) -> _Side:
        n, m = len(nodes), len(src)
        edge_id = np.full((n, n), -1, dtype=np.int64)
        edge_id[src, dst] = np.arange(m)
        if not self.directed:
            edge_id[dst, src] = np.arange(m)
        node, edge, kind, count = _slots(src, dst, n, self.directed)
        # A signature lists its incidences sorted by (direction, class): equal stars, equal keys.
        cls = edge_classes[edge]
        order = np.lexsort((cls, kind, node))
        cls, kind = cls[order], kind[order]
        code = (2 * cls + kind).tolist()
        bounds = np.concatenate([[0], np.cumsum(count)]).tolist()
        signatures = np.empty(n, dtype=np.int64)
        for v in range(n):  # once per graph
            key = tuple(code[bounds[v]:bounds[v + 1]])
            found = self._signature_ids.get(key)
            if found is None:
                found = self._signature_ids[key] = len(self._stars)
                self._stars.append((cls[bounds[v]:bounds[v + 1]], kind[bounds[v]:bounds[v + 1]]))
                self._star_arrays = None
            signatures[v] = found
        return _Side(nodes, np.asarray(classes, np.int64), np.asarray(src, np.int64),
                     np.asarray(dst, np.int64), np.asarray(edge_classes, np.int64), edge_id,
                     signatures)

    def problem(self, a: _Side, b: _Side) -> _Problem:
        """The problem :func:`graphs.ged._problem` builds for the two graphs."""
        nodes, edges = self._tables["nodes"], self._tables["edges"]
        p = _Problem(
            directed=self.directed, nodes1=a.nodes, nodes2=b.nodes,
            src1=a.src, dst1=a.dst, src2=b.src, dst2=b.dst,
            node=EditCosts(nodes.sub[a.classes[:, None], b.classes], nodes.delete[a.classes],
                           nodes.insert[b.classes]),
            edge=EditCosts(edges.sub[a.edge_classes[:, None], b.edge_classes],
                           edges.delete[a.edge_classes], edges.insert[b.edge_classes]),
            edge_id2=b.edge_id)
        present = np.zeros(len(self._ok), dtype=bool)
        for kind, (x, y) in (("nodes", (a.classes, b.classes)),
                             ("edges", (a.edge_classes, b.edge_classes))):
            sub, delete, insert = self._value_ids[kind]
            present[sub[x[:, None], y]] = True
            present[delete[x]] = True
            present[insert[y]] = True
        ok = self._ok[present].all(axis=0)
        p.__dict__["scale"] = int(np.argmax(ok)) + 1 if ok.any() else None  # _Problem.scale
        return p

    def local(self, a: _Side, b: _Side) -> np.ndarray:
        """:func:`graphs.ged._local_edge_costs` of the pair, from the kept star assignments."""
        L = self._local_table()[a.signatures[:, None], b.signatures]
        missing = np.isnan(L)
        if missing.any():
            I, K = np.nonzero(missing)
            s = len(self._stars)
            self._fill(*np.divmod(np.unique(a.signatures[I] * s + b.signatures[K]), s))
            L = self._local[a.signatures[:, None], b.signatures]
        return L

    def prepare(self) -> float:
        """Build every indexed graph's arrays and the star assignment of every two signatures
        now, for a process about to answer many queries: about 6 s of CPU for the 1,515 x 1,515
        signature pairs of the bundled glycans, less than solving them as queries meet them.
        Returns the seconds it took (0 once done)."""
        start = time.perf_counter()
        if not self.prepared:
            for i in range(self.index.n_graphs):
                self.side(i)
            s = len(self._stars)
            self._fill(*np.divmod(np.flatnonzero(np.isnan(self._local_table()[:s, :s])), s))
            self.prepared = True
        return time.perf_counter() - start

    def _local_table(self) -> np.ndarray:
        """The kept star assignments, with room for every signature seen (NaN: not solved)."""
        s = len(self._stars)
        if len(self._local) < s:  # doubling
            grown = np.full((max(2 * len(self._local), s, 256),) * 2, np.nan)
            grown[:len(self._local), :len(self._local)] = self._local
            self._local = grown
        return self._local

    def _fill(self, I: np.ndarray, K: np.ndarray) -> None:
        """Solve and keep the star assignments of signature pairs (I[j], K[j])."""
        if self._star_arrays is None:
            cls = [c for c, _ in self._stars]
            self._star_arrays = (np.concatenate(cls), np.concatenate([k for _, k in self._stars]),
                                 np.array([len(c) for c in cls], dtype=np.int64))
        # Chunks of 500: the matching's time grows faster than linearly with the blocks of one
        # call (a quarter of an hour for all pairs at once, 5 s in chunks of 300 to 1,000).
        for at in range(0, len(I), 500):
            i, k = I[at:at + 500], K[at:at + 500]
            self._local[i, k] = _star_assignments(self._star_arrays, self._star_arrays, i, k,
                                                  self._tables["edges"], self._shift)

    def ged(self, a: _Side, b: _Side, method: str = "exact",
            timeout: float | None = None) -> GEDResult:
        """``graph_edit_distance(G_a, G_b, costs=index costs, method=method, timeout=timeout)``."""
        start = time.perf_counter()
        return _solve(self.problem(a, b), method, timeout, start, self.local(a, b))


def _items_list(values: list, attr: str, kind: str) -> list:
    """One element per class, as the cost model reads them (``(node, attrs)`` or ``(u, v, attrs)``)."""
    return [(i, {attr: v}) if kind == "nodes" else (i, i, {attr: v}) for i, v in enumerate(values)]


def _items_graph(attrs: list, kind: str) -> nx.Graph:
    """A graph holding one element per index type (its nodes, or its edges), for _classify."""
    G = nx.MultiDiGraph()
    if kind == "nodes":
        G.add_nodes_from((t, a) for t, a in enumerate(attrs))
    else:
        G.add_edges_from((t, t, a) for t, a in enumerate(attrs))
    return G


_SOLVERS: dict = {}  # id(index) -> PairSolver: one per opened index per process


def pair_solver(index) -> PairSolver:
    """The process's :class:`PairSolver` of ``index`` (made on first use, remade if it changed)."""
    solver = _SOLVERS.get(id(index))
    if solver is None or solver.index is not index or solver.key != index.key:
        solver = _SOLVERS[id(index)] = PairSolver(index)
    return solver

