"""Certified similarity search over a :class:`graphs.index.GraphIndex`: top-k and range queries.

Exact graph edit distance (GED) costs milliseconds to seconds per pair, so a query over tens of
thousands of graphs cannot compute it for every pair. Filter-and-verify [1]_ [2]_ computes it only
where needed, in order of a lower bound, through four tiers of increasing cost and strength:

1. the label-multiset bound of :mod:`graphs.ged_bounds`, for every indexed graph at once (a few
   sparse array operations, tens of milliseconds for 23,522 glycans);
2. the BRANCH lower bound of Blumenthal and Gamper (with the bipartite upper bound;
   ``graph_edit_distance(method="bipartite")``, milliseconds per pair), for the candidates the
   first tier leaves; when the two bounds meet, the distance is exact already;
3. the linear-programming relaxation bound (``graph_edit_distance(method="bounds")``), for the
   candidates still in the race;
4. the exact solver (``graph_edit_distance(method="exact")``, whose branch-and-bound is the costly
   part on large glycans).

For a whole k-nearest-neighbour graph (:func:`knn_graph`) every bound a query raises on a graph
``p`` is also passed on, through the triangle inequality (GED is a pseudometric under both
supported cost models: :mod:`graphs.ged_bounds`, section "Metric"), to the graphs listed around
``p`` in a :class:`NeighbourTable`: ``GED(q, y) >= bound(q, p) - UB(p, y)``, an elimination
rule in the spirit of AESA/LAESA [4]_ with the graphs met during the search as pivots.

Tiers 2 to 4 run through :class:`graphs.ged_pairs.PairSolver`, which gives the numbers of
``graph_edit_distance`` on the two graphs, bit for bit, from work kept per element class, per
graph and per star signature (a fraction of the time per pair).

Candidates are taken in order of their best bound so far (a priority queue over tiers). A top-k
query stops as soon as it holds ``k`` exact distances and the k-th is at most the next candidate's
lower bound: every graph not verified has a GED at least that bound, so none can be closer; the
answer is *certified* (to the exact solver's absolute gap, :data:`graphs.ged.GAP_TOL`). Graphs at
exactly the k-th distance are ties: the distances are certified, the choice among tied graphs is
the order in which they were verified. A range query (:func:`within`) verifies every graph whose
bound is within the threshold. With ``time_budget`` a query stops when time is up and says which
answers are certified and which rows are only bounds.

References
----------
.. [1] Zeng, Tung, Wang, Feng and Zhou, "Comparing stars: on approximating graph edit distance",
   PVLDB 2, 25-36 (2009): filter-and-verify with multiset and star bounds.
.. [2] Chang, Feng, Lin, Qin, Zhang and Zhao, "Speeding up GED verification for graph similarity
   search", ICDE 2020, 793-804: best-first verification in order of lower bounds.
.. [3] Blumenthal and Gamper, "Improved lower bounds for graph edit distance", IEEE Trans. Knowl.
   Data Eng. 30, 503-516 (2018).
.. [4] Mico, Oncina and Vidal, "A new version of the nearest-neighbour approximating and
   eliminating search algorithm (AESA) with linear preprocessing time and memory requirements",
   Pattern Recognit. Lett. 15, 9-17 (1994): eliminating candidates by triangle-inequality bounds.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass
from numbers import Real

import networkx as nx
import numpy as np
import scipy.sparse as sp

from graphs.errors import IndexStateError, InputError, InputTypeError, UnknownMetricError
from graphs.ged_bounds import multiset_lower_bounds
from graphs.index import GraphIndex

__all__ = ["NeighbourTable", "SearchResult", "index_top_k", "within", "knn_graph"]

_METRICS = ("ged", "wl")


@dataclass(frozen=True)
class SearchResult:
    """Answer of a search over an index: the fields of :class:`graphs.query.TopK` and a certificate.

    Attributes
    ----------
    indices, scores, exact, metric, similarity
        As in :class:`graphs.query.TopK`: positions in the index, best first, and their scores
        (GED: exact distances where ``exact``, else the best lower bound).
    lower_bounds : numpy.ndarray of float
        Proven lower bound of each row's distance (equal to the score where exact).
    certified_rows : numpy.ndarray of bool
        True where a row is proven to belong to the answer at its rank: its distance is exact and
        no graph left unverified can be closer.
    certified : bool
        Every row certified (and, for a range query, no graph left unverified).
    n_exact : int
        Exact GED computations (tier 4) made.
    n_bounds : int
        BRANCH bound computations (tier 2) made, of which some already proved a distance.
    n_lp : int
        LP relaxation bounds (tier 3) made, of which some already proved a distance.
    seconds : float
        Wall-clock time of the query, s.
    status : str
        ``"certified"``, or ``"time_budget"`` when the budget ran out first.
    """

    indices: np.ndarray
    scores: np.ndarray
    exact: np.ndarray
    metric: str
    similarity: bool
    lower_bounds: np.ndarray
    certified_rows: np.ndarray
    certified: bool
    n_exact: int
    n_bounds: int
    n_lp: int
    seconds: float
    status: str


def _check(query, index, metric, costs):
    if not isinstance(query, nx.Graph):
        raise InputTypeError(f"query must be a networkx graph, got {type(query).__name__}")
    if not isinstance(index, GraphIndex):
        raise InputTypeError(f"index must be a graphs.index.GraphIndex, got {type(index).__name__}")
    if metric not in _METRICS:
        raise UnknownMetricError(f"an index answers metrics {_METRICS}, not {metric!r}")
    if metric == "ged":
        index.check_costs(costs)


def _check_budget(time_budget) -> float:
    if time_budget is None:
        return math.inf
    if isinstance(time_budget, bool) or not isinstance(time_budget, Real) or not time_budget > 0:
        raise InputError(f"time_budget must be a positive number of seconds or None, got "
                         f"{time_budget!r}")
    return float(time_budget)


class _Verifier:
    """Best-first verification: candidates in order of their best lower bound so far.

    Tier-1 bounds sit in one sorted array (read with a pointer: no heap of every graph); graphs
    with a raised bound wait in a heap (an entry whose bound was raised again since is stale and
    skipped). With ``neighbours`` (a :class:`NeighbourTable`), every raised bound of a graph ``p``
    is passed on to the graphs ``y`` listed around ``p`` by the triangle inequality,
    ``GED(q, y) >= GED(q, p) - GED(p, y) >= bound(q, p) - UB(p, y)`` (GED is a metric under the
    supported costs: :mod:`graphs.ged_bounds`, section "Metric").
    """

    def __init__(self, query, index, budget: float, start: float, neighbours=None):
        # graphs.ged (scipy.optimize) is imported by GED searches only: a WL query stays light.
        from graphs.ged import GAP_TOL
        from graphs.ged_pairs import pair_solver

        self.tol = GAP_TOL
        self.query, self.index, self.costs = query, index, index.ged_costs
        # Per-pair GED from work done once per index, graph and star (graphs.ged_pairs): the
        # same bounds as graph_edit_distance on the two graphs, a fraction of the time.
        self.pairs = pair_solver(index)
        self.neighbours = neighbours
        self.lb = multiset_lower_bounds(query, index.ged, self.costs)
        self.side = self.pairs.encode(query)
        self.order = np.lexsort((np.arange(len(self.lb)), self.lb))
        self.pointer, self.heap = 0, []
        self.exact: dict[int, float] = {}
        self.fresh: list[int] = []  # exact distances not yet read by the caller
        self.bound = self.lb.copy()
        # Tier each graph has passed: 0 the multiset bound (and triangle bounds), 1 BRANCH,
        # 2 the LP, 3 exact; ``queued``: in the heap (or exact), so the pointer passes it by.
        self.tier = np.zeros(len(self.lb), dtype=np.int8)
        self.queued = np.zeros(len(self.lb), dtype=bool)
        self.n_exact = self.n_bounds = self.n_lp = 0
        self.deadline = start + budget

    def _top(self) -> None:
        """Drop stale heap entries and pointer entries already queued."""
        while self.heap and (self.heap[0][0] < self.bound[self.heap[0][1]]
                             or self.tier[self.heap[0][1]] == 3):
            heapq.heappop(self.heap)
        while self.pointer < len(self.order) and self.queued[self.order[self.pointer]]:
            self.pointer += 1

    def next_bound(self) -> float:
        self._top()
        a = self.lb[self.order[self.pointer]] if self.pointer < len(self.order) else math.inf
        return min(a, self.heap[0][0]) if self.heap else a

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def _raise(self, i: int, bound: float) -> None:
        if bound > self.bound[i] and self.tier[i] < 3:
            self.bound[i] = bound
            self.queued[i] = True
            heapq.heappush(self.heap, (bound, i))

    def step(self) -> None:
        """Raise the bound of the next candidate one tier, or verify it."""
        self._top()
        from_sorted = not self.heap or (self.pointer < len(self.order)
                                        and self.lb[self.order[self.pointer]] <= self.heap[0][0])
        if from_sorted:
            i = int(self.order[self.pointer])
            self.pointer += 1
        else:
            _, i = heapq.heappop(self.heap)
        popped = float(self.bound[i])
        if self.tier[i] == 0:
            self.n_bounds += 1
            r = self.pairs.ged(self.side, self.pairs.side(i), "bipartite")
        else:
            timeout = self.left()
            # A graph's second turn gets the LP bound (method "bounds"), its third the MILP: many
            # candidates of large glycans leave the race on the LP bound, before any branching.
            method = "bounds" if self.tier[i] < 2 else "exact"
            self.n_lp += method == "bounds"
            self.n_exact += method == "exact"
            r = self.pairs.ged(self.side, self.pairs.side(i), method,
                               timeout if timeout < math.inf else None)
        self.bound[i] = max(self.bound[i], r.lower_bound)
        self.queued[i] = True
        if r.optimal:
            self.tier[i] = 3
            self.exact[i] = r.distance
            self.fresh.append(i)
        else:  # verified next time its turn comes (after a timeout: what the budget allowed)
            self.tier[i] = min(self.tier[i] + 1, 2)
            heapq.heappush(self.heap, (self.bound[i], i))
        b = float(self.bound[i])
        # Every graph still waiting has a bound of at least ``popped``, so a bound that did not
        # rise above it cannot raise another one.
        if self.neighbours is not None and b > popped:
            ys = self.neighbours.similar(i)
            ys = ys[(self.bound[ys] < b) & (self.tier[ys] < 3)]
            if len(ys):
                ubs = self.neighbours.upper(i, ys)
                # Rounding slack: the bound and the edit-path costs are sums of a few floats.
                new = b - ubs - 1e-9 * (1.0 + b + ubs)
                for y, nb in zip(ys.tolist(), new.tolist()):
                    self._raise(y, nb)


def _ged_top_k(query, index, k, budget, start, neighbours=None):
    v = _Verifier(query, index, budget, start, neighbours)
    best: list = []  # max-heap of (-distance, -index) over the k best exact distances
    status = "certified"
    while True:
        for i in v.fresh:
            item = (-v.exact[i], -i)
            if len(best) < k:
                heapq.heappush(best, item)
            elif item > best[0]:
                heapq.heapreplace(best, item)
        v.fresh.clear()
        nxt = v.next_bound()
        if len(best) == k and -best[0][0] <= nxt + v.tol or nxt == math.inf:
            break
        if v.left() <= 0:
            status = "time_budget"
            break
        v.step()
    nxt = v.next_bound()
    rows = sorted((-d, -i) for d, i in best)
    certified_rows = [d <= nxt + v.tol for d, _ in rows]
    if len(rows) < k:  # the budget ran out: fill with the best bounds not yet verified
        seen = {i for _, i in rows}
        pending = [i for _, i in v.heap] + v.order[v.pointer:v.pointer + k].tolist()
        extra = sorted((v.bound[i], i) for i in set(pending) - seen)[: k - len(rows)]
        rows += extra
        certified_rows += [False] * len(extra)
    indices = np.array([i for _, i in rows], dtype=np.int64)
    exact = np.array([i in v.exact for i in indices.tolist()], dtype=bool)
    certified_rows = np.array(certified_rows, dtype=bool) & exact
    return SearchResult(
        indices=indices, scores=np.array([d for d, _ in rows], dtype=float), exact=exact,
        metric="ged", similarity=False, lower_bounds=v.bound[indices],
        certified_rows=certified_rows, certified=bool(certified_rows.all()) and len(rows) == k,
        n_exact=v.n_exact, n_bounds=v.n_bounds, n_lp=v.n_lp, seconds=time.perf_counter() - start,
        status=status), v


def index_top_k(query: nx.Graph, index: GraphIndex, metric: str = "ged", k: int = 10, *,
                exact: bool = True, costs=None, time_budget: float | None = None) -> SearchResult:
    """The ``k`` indexed graphs closest to ``query``, certified for exact GED.

    Also reached as ``graphs.query.top_k(query, index, metric, k, exact=True)``.

    Parameters
    ----------
    query : networkx graph
        With the attributes the index's cost model reads (``"x"`` for ChemicalCosts).
    index : GraphIndex
        Built with GED features (``"ged"``) or WL features (``"wl"``).
    metric : {"ged", "wl"}
        Graph edit distance with the index's costs (smaller is closer), or the normalised WL
        kernel (larger is closer; exact by construction, one sparse product).
    k : int
        Number of answers, 1 to the number of indexed graphs.
    exact : bool
        For ``"ged"``: only True is supported here (certified filter-and-verify); for bounds
        without a certificate use :func:`graphs.query.top_k` on ``index.graphs()``.
    costs : CostModel, optional
        The costs the caller means; refused unless they are the index's.
    time_budget : float, optional
        Seconds after which the search stops and returns what it has (see
        :class:`SearchResult`); None: until certified.

    Returns
    -------
    SearchResult

    Raises
    ------
    InputError
        ``k`` not in 1..n_graphs, ``exact=False`` for GED, a bad ``time_budget``.
    IndexStateError
        The index lacks the features, or was built with other costs.
    UnknownMetricError, InputTypeError
        Another metric; a query or index of the wrong type.
    """
    start = time.perf_counter()
    _check(query, index, metric, costs)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= index.n_graphs:
        raise InputError(f"k must be an integer from 1 to the {index.n_graphs} indexed graphs, "
                         f"got {k!r}")
    budget = _check_budget(time_budget)
    if metric == "wl":
        scores = index.wl_similarities(query)
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        ones = np.ones(len(order), dtype=bool)
        return SearchResult(order, scores[order], ones, "wl", True, scores[order], ones, True, 0, 0,
                            0, time.perf_counter() - start, "certified")
    if not exact:
        raise InputError("the index search of GED is exact and certified; for unproven bounds use "
                         "graphs.query.top_k(query, index.graphs(), 'ged', metric_params=...)")
    return _ged_top_k(query, index, int(k), budget, start)[0]


def within(query: nx.Graph, index: GraphIndex, metric: str, threshold: float, *, costs=None,
           time_budget: float | None = None) -> SearchResult:
    """Every indexed graph within ``threshold`` of ``query`` (GED) or at least that similar (WL).

    Parameters
    ----------
    query, index, costs, time_budget
        As in :func:`index_top_k`.
    metric : {"ged", "wl"}
    threshold : float
        Largest GED (same units as the costs) or smallest normalised WL similarity.

    Returns
    -------
    SearchResult
        All graphs in range, closest first, with exact distances. ``certified`` says that every
        graph whose lower bound is within the threshold was verified (False only when
        ``time_budget`` ran out: then the rows are the graphs proven in range so far).

    Raises
    ------
    InputError
        A threshold that is not a finite number; see :func:`index_top_k`.
    """
    start = time.perf_counter()
    _check(query, index, metric, costs)
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not math.isfinite(threshold):
        raise InputError(f"threshold must be a finite number, got {threshold!r}")
    budget = _check_budget(time_budget)
    if metric == "wl":
        scores = index.wl_similarities(query)
        hit = np.flatnonzero(scores >= threshold)
        order = hit[np.lexsort((hit, -scores[hit]))]
        ones = np.ones(len(order), dtype=bool)
        return SearchResult(order, scores[order], ones, "wl", True, scores[order], ones, True, 0, 0,
                            0, time.perf_counter() - start, "certified")
    v = _Verifier(query, index, budget, start)
    status = "certified"
    while v.next_bound() <= threshold + v.tol:
        if v.left() <= 0:
            status = "time_budget"
            break
        v.step()
    found = sorted((d, i) for i, d in v.exact.items() if d <= threshold + v.tol)
    indices = np.array([i for _, i in found], dtype=np.int64)
    ones = np.ones(len(indices), dtype=bool)
    return SearchResult(
        indices=indices, scores=np.array([d for d, _ in found], dtype=float), exact=ones,
        metric="ged", similarity=False, lower_bounds=v.bound[indices], certified_rows=ones,
        certified=status == "certified", n_exact=v.n_exact, n_bounds=v.n_bounds, n_lp=v.n_lp,
        seconds=time.perf_counter() - start, status=status)


class NeighbourTable:
    """Edit-path upper bounds between similar indexed graphs, computed on demand and kept.

    The triangle bounds of :class:`_Verifier` need, around a graph ``p`` whose distance to the
    query is bounded from below, graphs ``y`` with a known *upper* bound on ``GED(p, y)``: then
    ``GED(q, y) >= bound(q, p) - UB(p, y)``. The graphs listed around ``p`` are its ``m`` most
    similar under the normalised WL kernel (one sparse product with ``p``'s stored features);
    the upper bound of a pair is the cost of the edit path of the bipartite method
    (``graph_edit_distance(method="bipartite").upper_bound``, milliseconds), computed only for
    the pairs a search asks for (those whose bound could still be raised). Which graphs are
    listed only decides how useful the bounds are, never whether they are valid. Everything is
    kept, so a worker answering many queries computes each list and each pair once.

    Parameters
    ----------
    index : GraphIndex
        With WL and GED features.
    m : int
        Graphs listed around each graph.

    Attributes
    ----------
    built, pairs : int
        Lists and pair upper bounds computed so far.
    seconds, seconds_lists : float
        Time spent computing them, all and the lists alone, s.
    """

    def __init__(self, index: GraphIndex, m: int = 10):
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m < index.n_graphs:
            raise InputError(f"m must be an integer from 1 to {index.n_graphs - 1}, got {m!r}")
        if index.wl is None or index.ged is None:
            raise IndexStateError(f"{index.path}: a neighbour table needs WL and GED features; "
                                  f"rebuild the index with kernels=('wl',) and ged_costs")
        self.index, self.m = index, int(m)
        self._lists: dict[int, np.ndarray] = {}
        self._upper: dict[tuple[int, int], float] = {}
        self.built = self.pairs = 0
        self.seconds = self.seconds_lists = 0.0
        self._phi = sp.csr_matrix(index.wl[2], dtype=np.float64)
        self._columns = self._phi.tocsc()
        self._norm = np.sqrt(np.asarray(self._phi.multiply(self._phi).sum(axis=1)).ravel())

    def similar(self, p: int) -> np.ndarray:
        """The ``m`` graphs listed around graph ``p`` (int64, ``p`` left out)."""
        ys = self._lists.get(p)
        if ys is None:
            start = time.perf_counter()
            # Only the feature columns graph p has: a small part of the matrix, and the same
            # numbers as the full product (WL features are counts, so every sum is exact).
            row = self._phi[p]
            dots = self._columns[:, row.indices] @ row.data
            scores = dots / np.maximum(self._norm * self._norm[p], 1e-300)
            scores[p] = -np.inf
            ys = self._lists[p] = np.argpartition(-scores, self.m)[: self.m].astype(np.int64)
            self.built += 1
            self.seconds_lists += time.perf_counter() - start
            self.seconds += time.perf_counter() - start
        return ys

    def upper(self, p: int, ys: np.ndarray) -> np.ndarray:
        """Upper bounds on ``GED(p, y)`` for each of ``ys`` (same units as the costs)."""
        from graphs.ged_pairs import pair_solver

        solver = pair_solver(self.index)
        out = np.empty(len(ys))
        for a, y in enumerate(ys.tolist()):
            pair = (min(p, y), max(p, y))  # GED is symmetric (graphs.ged_bounds, "Metric")
            value = self._upper.get(pair)
            if value is None:
                start = time.perf_counter()
                value = self._upper[pair] = solver.ged(solver.side(p), solver.side(y),
                                                       "bipartite").upper_bound
                self.pairs += 1
                self.seconds += time.perf_counter() - start
            out[a] = value
        return out


_OPEN: dict = {}  # index folder -> GraphIndex, per process: a worker opens an index once


def _opened(path: str, key: str) -> GraphIndex:
    index = _OPEN.get(path)
    if index is None or index.key != key:
        index = _OPEN[path] = GraphIndex.open(path)
        if index.key != key:
            raise IndexStateError(f"{path} changed while a job was using it (key {index.key[:16]}, "
                                  f"expected {key[:16]}); run the job again")
    return index


_TABLES: dict = {}  # (index folder, m) -> NeighbourTable, per process: kept across tasks


def _knn_rows(path: str, key: str, rows: np.ndarray, k: int, neighbours: int,
              budget: float = math.inf):
    """Certified k nearest other graphs of each of ``rows`` (one task of :func:`knn_graph`)."""
    index = _opened(path, key)
    table = None
    if neighbours:
        table = _TABLES.get((path, neighbours))
        if table is None or table.index is not index:
            table = _TABLES[path, neighbours] = NeighbourTable(index, neighbours)
    m = len(rows)
    out = (np.full((m, k), -1, np.int64), np.full((m, k), np.nan), np.zeros(m, bool),
           np.zeros(m), np.zeros(m, np.int64), np.zeros(m, np.int64), np.zeros(m, np.int64),
           np.zeros(m), np.zeros((m, k), bool))
    # A worker answers many queries: every star assignment is solved up front, once per process
    # (seconds), and counted with the table work of its first row.
    from graphs.ged_pairs import pair_solver

    setup = pair_solver(index).prepare()
    for a, i in enumerate(rows.tolist()):
        before = table.seconds if table is not None else 0.0
        r, _ = _ged_top_k(index.graph(i), index, k + 1, budget, time.perf_counter(), table)
        keep = r.indices != i
        keep[np.flatnonzero(keep)[k:]] = False  # i is not among its ties at distance 0: drop the last
        out[0][a], out[1][a], out[8][a] = r.indices[keep][:k], r.scores[keep][:k], r.exact[keep][:k]
        out[2][a], out[3][a], out[4][a] = r.certified, r.seconds, r.n_exact
        out[5][a], out[6][a] = r.n_bounds, r.n_lp
        out[7][a] = (table.seconds if table is not None else 0.0) - before
        if a == 0:
            out[3][a] += setup
            out[7][a] += setup
    return rows, out


def knn_graph(index: GraphIndex, k: int, out, *, rows=None, chunk: int = 64, n_jobs: int = 1,
              client=None, neighbours: int | None = None,
              time_budget: float | None = None) -> dict:
    """Certified exact-GED k-nearest-neighbour graph of the indexed graphs, resumable, on Dask.

    Each graph is a certified top-(k+1) query (:func:`index_top_k`) with itself left out, whose
    lower bounds are raised by the triangle inequality through a :class:`NeighbourTable` (one per
    worker process, its rows built as queries need them and kept for the worker's later tasks):
    the same certified answers, with fewer bound and LP computations (``benchmarks/ged_knn.py``).
    Queries run in chunks, serially, on ``n_jobs`` local processes or on a ``dask.distributed.Client``
    (every worker opens the index folder once, so it must be readable by the workers); after each
    chunk the arrays are saved atomically to ``out`` (``.npz``) with a done-chunks record
    (:mod:`graphs.blockstore`), so a job run again after a crash skips the finished chunks.

    Parameters
    ----------
    index : GraphIndex
        With GED features.
    k : int
        Neighbours per graph, 1 to n_graphs - 1.
    out : path
        ``.npz`` file for the result and its checkpoints.
    rows : sequence of int, optional
        Only these graphs' neighbours (default all); other rows stay -1 / NaN.
    chunk : int
        Queries per task.
    n_jobs, client
        As in :func:`graphs.query.pairwise`.
    neighbours : int, optional
        Graphs listed around each graph in the neighbour table (``m`` of :class:`NeighbourTable`;
        needs the index's WL features); 0: no triangle bounds. Default: 25 (the fastest of those
        measured on the bundled glycans, ``benchmarks/README.md``), or n_graphs - 1 if fewer; 0
        for an index without WL features.
    time_budget : float, optional
        Seconds per query (default: none). A query that runs out keeps what it has: its row is
        not ``certified``, its ``exact`` entries say which distances are exact GEDs (the others
        are lower bounds of graphs not yet verified), as :func:`index_top_k` does with a budget.
        Exact GED is NP-hard and the largest glycans (tens of monomers) can take hours per query;
        a budget keeps the job's wall time bounded and says plainly which rows are not certified.

    Returns
    -------
    dict
        ``indices`` (n, k) and ``distances`` (n, k), nearest first; ``exact`` (n, k) bool: the
        distance is an exact GED (else a lower bound; only in rows cut by ``time_budget``);
        ``certified`` (n,) bool;
        ``seconds`` (n,) wall time of each query, s (with the table rows it built);
        ``n_exact``, ``n_bounds``, ``n_lp`` (n,): exact (MILP), BRANCH and LP computations of each
        query; ``table_seconds`` (n,): the part of ``seconds`` spent building table rows (and, in
        the first row of a worker's first task, preparing its pair solver:
        :meth:`graphs.ged_pairs.PairSolver.prepare`), s.

    Raises
    ------
    InputError
        Bad ``k``, ``chunk``, ``rows``, ``neighbours`` or ``time_budget``; ``out`` not a ``.npz``
        or belonging to another job.
    """
    import hashlib
    import io
    from pathlib import Path

    from graphs.blockstore import Journal
    from reprs.fileio import atomic_write

    if not isinstance(index, GraphIndex) or index.ged is None:
        raise InputTypeError("index must be a GraphIndex built with GED features")
    n = index.n_graphs
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < n:
        raise InputError(f"k must be an integer from 1 to {n - 1}, got {k!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise InputError(f"chunk must be a positive integer, got {chunk!r}")
    if neighbours is None:
        neighbours = min(25, n - 1) if index.wl is not None else 0
    if isinstance(neighbours, bool) or not isinstance(neighbours, (int, np.integer)) \
            or not 0 <= neighbours < n:
        raise InputError(f"neighbours must be an integer from 0 to {n - 1}, got {neighbours!r}")
    if neighbours and index.wl is None:
        raise IndexStateError(f"{index.path} has no WL features, which the neighbour table ranks "
                              f"by; rebuild it with kernels=('wl',) or pass neighbours=0")
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or (rows.size and not (0 <= rows.min() and rows.max() < n)):
        raise InputError(f"rows must be indices of the {n} indexed graphs")
    out = Path(out)
    if out.suffix != ".npz":
        raise InputError(f"out={str(out)!r}: the kNN graph is written as a .npz file")
    chunks = [rows[i:i + chunk] for i in range(0, len(rows), chunk)]
    budget = _check_budget(time_budget)
    key = {"format": 3, "index": index.key, "k": int(k), "chunk": int(chunk),
           "rows": hashlib.sha256(rows.tobytes()).hexdigest(), "time_budget": None if math.isinf(budget) else budget}
    journal = Journal(out, key, len(chunks))
    names = ("indices", "distances", "certified", "seconds", "n_exact", "n_bounds", "n_lp",
             "table_seconds", "exact")
    if journal.resumed and out.is_file():
        with np.load(out) as saved:
            arrays = [saved[name] for name in names]
    else:
        journal.reset()
        arrays = [np.full((n, k), -1, np.int64), np.full((n, k), np.nan), np.zeros(n, bool),
                  np.full(n, np.nan), np.zeros(n, np.int64), np.zeros(n, np.int64),
                  np.zeros(n, np.int64), np.zeros(n), np.zeros((n, k), bool)]
    todo = [c for c, done in zip(chunks, journal.done) if not done]
    ids = {int(c[0]): i for i, c in enumerate(chunks)}
    args = (str(index.path), index.key)
    task = (int(k), int(neighbours), budget)
    if client is not None:
        from dask.distributed import as_completed

        futures = [client.submit(_knn_rows, *args, c, *task, pure=False) for c in todo]
        results = (f.result() for f in as_completed(futures))
    elif n_jobs != 1 and len(todo) > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_knn_rows)(*args, c, *task) for c in todo)
    else:
        results = (_knn_rows(*args, c, *task) for c in todo)
    for done_rows, parts in results:
        for array, part in zip(arrays, parts):
            array[done_rows] = part
        buffer = io.BytesIO()
        np.savez(buffer, **dict(zip(names, arrays)))
        atomic_write(out, buffer.getvalue())
        journal.mark(ids[int(done_rows[0])])
    return dict(zip(names, arrays))
