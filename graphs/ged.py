"""Graph edit distance: certified exact values and fast bounds, with any cost model.

The graph edit distance (GED) between ``G1`` and ``G2`` is the minimum total cost of a sequence of
node and edge substitutions, deletions and insertions that turns ``G1`` into ``G2``. Every edit
path is fixed, up to cost, by a partial injective node map ``V1 -> V2``: unmapped nodes of ``G1``
are deleted, unmapped nodes of ``G2`` inserted, and an edge of ``G1`` whose end nodes map onto an
edge of ``G2`` (in the same direction, for directed graphs) is substituted, unless deleting it and
inserting the other is cheaper; all other edges are deleted or inserted. This is the definition
used by ``networkx.graph_edit_distance``, against which the tests check every value.

Three methods, all returning a :class:`GEDResult` that says whether its distance is proven:

``"bipartite"``
    Riesen and Bunke's assignment upper bound [1]_: node costs are augmented with the optimal
    assignment of each node's incident edges, one linear sum assignment (LSAP) over nodes gives a
    node map, and the cost of the edit path it induces is an upper bound. The same local edge
    assignments, halved, give the BRANCH lower bound of Blumenthal and Gamper [2]_ (each edge's
    cost split between its two end nodes; one more LSAP). Milliseconds for glycan-sized graphs.
``"bounds"``
    The bipartite bounds, then the lower bound raised to the linear-programming relaxation of the
    exact model below (one LP, no branching) and the upper bound lowered by rounding the relaxed
    node map and by a greedy-swap local search [5]_ on every candidate map.
``"exact"``
    The same steps, then, if a gap remains, the binary program solved to proven optimality by
    HiGHS (``scipy.optimize.milp``), which on the pairs tried needs one or a few search nodes.

Why a MILP and not A*: the A* / depth-first branch-and-bound searches of networkx and of the
literature expand one node-pair decision at a time from Python, so their cost grows with the number
of partial maps visited, and that number explodes for trees with many similar monomers (networkx
needs 5-120 s for two 10-node trees). The formulation F2 of Lerouge et al. [3]_ has one binary
``x[i, k]`` per node pair and one ``y[e, f]`` per edge pair, linked by constraints "an edge can
only be matched to an edge whose end nodes are matched to its own end nodes"; HiGHS solves it in
compiled code with cuts and presolve. We add the symmetric constraints seen from ``G2``'s side
(each edge of ``G1`` matched at most once around each node of ``G2``): on 40 pairs of 20-residue
glycowork glycans with GLAMOUR's costs they make the LP relaxation integral for 26 pairs instead
of 8, and cut the median MILP time about tenfold (0.05-0.08 s against 0.7-1.0 s, 2 shared cores).
The relaxation is therefore solved first, as a plain LP: when it is integral (or its bound, rounded
up to the costs' granularity, meets the rounded or locally improved upper bound) optimality is
proven without branching. Only ``x`` needs to be integer: once ``x`` is integral each linking
constraint admits at most one edge per edge, so the optimal ``y`` is integral too (with granular
costs ``y`` is declared integer anyway, so that HiGHS sees an integral objective). Edge pairs whose
substitution costs at least a deletion plus an insertion never pay to be matched and get no
variable.

When every cost is a multiple of ``1/s`` for a small integer ``s`` (unit costs: ``s = 1``), every
edit path costs a multiple of ``1/s`` and proven lower bounds are rounded up to the next one.

Results are optimal to within an absolute gap of ``1e-6`` (HiGHS's default absolute MIP gap; the
relative gap is set to 0), and ``optimal`` is True only when ``upper_bound - lower_bound`` is that
small. On ``timeout``, the best edit path and the best proven lower bound found so far are returned
with ``optimal=False``.

Empty graphs are allowed: the distance to a graph with no nodes is the cost of deleting every node
and edge (inserting, in the other direction), and two empty graphs are at distance 0.

References
----------
.. [1] Riesen and Bunke, "Approximate graph edit distance computation by means of bipartite graph
   matching", Image Vis. Comput. 27, 950-959 (2009).
.. [2] Blumenthal and Gamper, "Improved lower bounds for graph edit distance", IEEE Trans. Knowl.
   Data Eng. 30, 503-516 (2018), the BRANCH bound.
.. [3] Lerouge, Abu-Aisheh, Raveaux, Heroux and Adam, "New binary linear programming formulation to
   compute the graph edit distance", Pattern Recognit. 72, 254-265 (2017), formulation F2.
.. [4] Mohapatra, An and Gomez-Bombarelli, arXiv:2103.02565 (GLAMOUR): exact GED with
   fingerprint-based costs between glycan graphs.
.. [5] Riesen and Bunke, "Improving bipartite graph edit distance approximation using various
   search strategies", Pattern Recognit. 48, 1349-1363 (2015): refining the node map of the
   bipartite approximation by search over swapped assignments.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from numbers import Real
from typing import Hashable, Literal

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linear_sum_assignment, milp
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from graphs.costs import ChemicalCosts, CostModel, EditCosts
from graphs.errors import InputError, InputTypeError, UnknownMetricError

__all__ = ["GEDResult", "graph_edit_distance"]

#: Absolute gap under which an upper bound counts as proven optimal (HiGHS's mip_abs_gap default).
GAP_TOL = 1e-6
_METHODS = ("exact", "bipartite", "bounds")


@dataclass(frozen=True)
class GEDResult:
    """Outcome of one graph edit distance computation.

    Attributes
    ----------
    distance : float
        Cost of the edit path given by ``node_map``. It is the graph edit distance only when
        ``optimal`` is True; otherwise it equals ``upper_bound``.
    lower_bound, upper_bound : float
        Proven bounds on the graph edit distance (same units as the costs).
    optimal : bool
        True when ``upper_bound - lower_bound <= 1e-6``, i.e. ``distance`` is proven minimal.
    node_map : tuple of (u, v) pairs
        The edit path's node operations: ``(u, v)`` substitutes node ``u`` of G1 by node ``v`` of
        G2, ``(u, None)`` deletes ``u``, ``(None, v)`` inserts ``v`` (networkx's ``node_path``
        convention). G1's nodes come first in their graph order, then insertions.
    seconds : float
        Wall-clock time of the call, s.
    method : str
        ``"exact"``, ``"bipartite"`` or ``"bounds"``.
    status : str
        ``"optimal"`` (proven), ``"bounds"`` (a cheaper method stopped with a gap) or
        ``"time_limit"`` (the exact solver ran out of time).
    search_nodes : int
        Branch-and-bound nodes explored by HiGHS (0 when no MILP was run).
    lp_iterations : int or None
        Simplex iterations of the LP relaxation; None when none was solved (the assignment bounds
        met, or method ``"bipartite"``). The MILP's own iterations are not reported by scipy.
    """

    distance: float
    lower_bound: float
    upper_bound: float
    optimal: bool
    node_map: tuple[tuple[Hashable | None, Hashable | None], ...]
    seconds: float
    method: str
    status: str
    search_nodes: int = 0
    lp_iterations: int | None = None

    @property
    def gap(self) -> float:
        """``upper_bound - lower_bound`` (0 within tolerance when optimal)."""
        return self.upper_bound - self.lower_bound


@dataclass
class _Problem:
    """Two graphs as index arrays plus their edit-cost arrays."""

    directed: bool
    nodes1: list
    nodes2: list
    src1: np.ndarray
    dst1: np.ndarray
    src2: np.ndarray
    dst2: np.ndarray
    node: EditCosts
    edge: EditCosts
    edge_id2: np.ndarray  # (n2, n2) index of the G2 edge between two nodes, -1 where none

    @property
    def n1(self) -> int:
        return len(self.nodes1)

    @property
    def n2(self) -> int:
        return len(self.nodes2)

    @property
    def m1(self) -> int:
        return len(self.src1)

    @property
    def m2(self) -> int:
        return len(self.src2)

    @cached_property
    def scale(self) -> int | None:
        """Smallest s <= 64 making every cost an integer after multiplying by s, or None.

        Every edit path then costs a multiple of 1/s, so proven lower bounds can be rounded up
        to the next multiple: with unit costs an LP bound of 14.7 proves 15.
        """
        values = np.unique(np.concatenate([np.ravel(a) for a in (*self.node, *self.edge)]))
        # All 64 candidates at once: a per-s loop cost a quarter of a GED search's time.
        scaled = np.arange(1, 65)[:, None] * values[None, :]
        ok = np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1.0, scaled), axis=1)
        return int(np.argmax(ok)) + 1 if ok.any() else None

    def round_up(self, bound: float) -> float:
        """A proven lower bound raised to the next achievable cost (see :attr:`scale`)."""
        s = self.scale
        return bound if s is None or not math.isfinite(bound) else math.ceil(bound * s - 1e-6) / s

    @cached_property
    def incident_indels(self) -> tuple[np.ndarray, np.ndarray]:
        """Cost of deleting every edge at each node of G1, and of inserting those at each of G2."""
        return (np.bincount(np.concatenate([self.src1, self.dst1]),
                            weights=np.concatenate([self.edge.delete, self.edge.delete]),
                            minlength=self.n1),
                np.bincount(np.concatenate([self.src2, self.dst2]),
                            weights=np.concatenate([self.edge.insert, self.edge.insert]),
                            minlength=self.n2))

    @cached_property
    def edge_gain(self) -> np.ndarray:
        """Change of cost when edge e of G1 is matched to edge f of G2: a matched pair replaces
        a deletion and an insertion by the cheaper of a substitution or that deletion and
        insertion, shape (m1, m2)."""
        return np.minimum(self.edge.sub - self.edge.delete[:, None] - self.edge.insert[None, :],
                          0.0)

    @property
    def constant(self) -> float:
        """Cost of deleting all of G1 and inserting all of G2."""
        return float(
            self.node.delete.sum() + self.node.insert.sum()
            + self.edge.delete.sum() + self.edge.insert.sum()
        )


def _check_graph(G: object, name: str) -> None:
    if not isinstance(G, nx.Graph):
        raise InputTypeError(f"{name} must be a networkx Graph or DiGraph, got {type(G).__name__}")
    if G.is_multigraph():
        raise InputTypeError(
            f"{name} is a {type(G).__name__}; graph edit distance here needs a simple Graph or "
            f"DiGraph (merge parallel edges first)"
        )
    loops = list(nx.selfloop_edges(G))
    if loops:
        raise InputError(
            f"{name} has self-loops, e.g. on node {loops[0][0]!r}; remove them (edit costs of "
            f"self-loops are not supported)"
        )


def _checked(costs: EditCosts, n1: int, n2: int, what: str) -> EditCosts:
    """Validate the arrays returned by a cost model."""
    sub, delete, insert = (np.asarray(a, dtype=np.float64) for a in costs)
    for name, arr, shape in (("sub", sub, (n1, n2)), ("delete", delete, (n1,)),
                             ("insert", insert, (n2,))):
        if arr.shape != shape:
            raise InputError(f"{what} cost model returned {name} of shape {arr.shape}, "
                             f"expected {shape}")
        if arr.size and not (np.isfinite(arr).all() and (arr >= 0).all()):
            raise InputError(f"{what} {name} costs must be finite and non-negative; got "
                             f"min {arr.min()}, max {arr.max()}")
    return EditCosts(sub, delete, insert)


def _problem(G1: nx.Graph, G2: nx.Graph, costs: CostModel) -> _Problem:
    _check_graph(G1, "G1")
    _check_graph(G2, "G2")
    if G1.is_directed() != G2.is_directed():
        raise InputTypeError(
            f"G1 is {'directed' if G1.is_directed() else 'undirected'} but G2 is "
            f"{'directed' if G2.is_directed() else 'undirected'}; convert one (G.to_directed() "
            f"or G.to_undirected()) so both agree"
        )
    if not (callable(getattr(costs, "node_costs", None))
            and callable(getattr(costs, "edge_costs", None))):
        raise InputTypeError(
            f"costs must be a cost model with node_costs() and edge_costs() methods "
            f"(ChemicalCosts, UniformCosts, CallableCosts, ...), got {type(costs).__name__}"
        )
    nodes = [list(G1.nodes(data=True)), list(G2.nodes(data=True))]
    edges = [list(G1.edges(data=True)), list(G2.edges(data=True))]
    ends = []
    for G, es in zip((G1, G2), edges):
        index = {v: i for i, v in enumerate(G.nodes)}
        uv = np.array([(index[u], index[v]) for u, v, _ in es], dtype=np.int64).reshape(-1, 2)
        ends.append((uv[:, 0], uv[:, 1]))
    n2 = len(nodes[1])
    edge_id2 = np.full((n2, n2), -1, dtype=np.int64)
    edge_id2[ends[1][0], ends[1][1]] = np.arange(len(edges[1]))
    if not G2.is_directed():
        edge_id2[ends[1][1], ends[1][0]] = np.arange(len(edges[1]))
    return _Problem(
        directed=G1.is_directed(),
        nodes1=[v for v, _ in nodes[0]],
        nodes2=[v for v, _ in nodes[1]],
        src1=ends[0][0], dst1=ends[0][1], src2=ends[1][0], dst2=ends[1][1],
        node=_checked(costs.node_costs(nodes[0], nodes[1]), len(nodes[0]), n2, "node"),
        edge=_checked(costs.edge_costs(edges[0], edges[1]), len(edges[0]), len(edges[1]), "edge"),
        edge_id2=edge_id2,
    )


def _slots(src: np.ndarray, dst: np.ndarray, n: int, directed: bool):
    """Incidences (node, edge, direction) grouped by node, and the number at each node."""
    m = len(src)
    node = np.concatenate([src, dst])
    edge = np.concatenate([np.arange(m), np.arange(m)])
    # Directed edges are matched out-to-out and in-to-in; undirected ones have a single kind.
    kind = np.concatenate([np.zeros(m, np.int64), np.full(m, int(directed), np.int64)])
    order = np.argsort(node, kind="stable")
    node, edge, kind = node[order], edge[order], kind[order]
    return node, edge, kind, np.bincount(node, minlength=n)


def _local_edge_costs(p: _Problem) -> np.ndarray:
    """Optimal assignment cost of the incident edges of every node pair, shape (n1, n2).

    ``L[i, k]`` is the minimum cost of substituting, deleting and inserting the edges around node
    ``i`` of G1 to obtain those around node ``k`` of G2 (Riesen and Bunke's local structure); all
    ``n1 * n2`` assignments in one call of :func:`_star_assignments`.
    """
    n1, n2 = p.n1, p.n2
    _, edge1, kind1, a = _slots(p.src1, p.dst1, n1, p.directed)
    _, edge2, kind2, b = _slots(p.src2, p.dst2, n2, p.directed)
    I, K = np.divmod(np.arange(n1 * n2), n2)
    return _star_assignments((edge1, kind1, a), (edge2, kind2, b), I, K, p.edge).reshape(n1, n2)


def _star_assignments(left: tuple, right: tuple, I: np.ndarray, K: np.ndarray, edge: EditCosts,
                      shift: float | None = None) -> np.ndarray:
    """Optimal edge assignment between the stars ``I[j]`` (left) and ``K[j]`` (right), for all j.

    A star is a group of incidences: ``left = (ref, kind, count)`` lists the incidences grouped
    by star (``count[s]`` of them for star ``s``, in that order), each with the row ``ref`` of
    ``edge`` that prices it and its ``kind`` (directed edges are matched out-to-out and in-to-in).
    Each assignment is Riesen and Bunke's square problem [1]_: ``a`` edge rows plus ``b``
    insertion rows against ``b`` edge columns plus ``a`` deletion columns. All of them are solved
    in one call, as the blocks of one block-diagonal sparse bipartite graph: a minimum-weight
    perfect matching of a block-diagonal graph is the union of the blocks' optima. Returns the
    optimal cost of each pair, shape ``(len(I),)``.

    ``shift`` is the constant added to every weight, so that none is zero (csgraph drops stored
    zeros); default 1 plus the largest weight. Any positive shift keeps every block's optimum
    (each perfect matching of a block uses the same number of entries); the costs are read back
    as matched weight minus the shift, so its value decides their last bits.

    The matching is chosen on the weights rounded to a multiple of a power of two ``q``, 2^-40
    of their largest value: csgraph's LAPJVsp cycles for ever on some float weights whose sums
    round (a 52 x 52 block graph of Rogers-Tanimoto costs, ``ChemicalCosts(sub=3, indel=1)``, never
    returned: tests/graphs/test_ged.py), and on multiples of ``q`` every sum it forms is exact
    (below 2^13 times the largest weight). The costs are read from the unrounded weights of the
    matching: at most ``(a + b) q`` above a block's optimum (4e-10 of the largest weight for
    stars of 100 edges), and equal to it where the weights are multiples of ``q`` already (unit
    and other dyadic costs).
    """
    ref1, kind1, a = left
    ref2, kind2, b = right
    start1, start2 = np.cumsum(a) - a, np.cumsum(b) - b
    ai, bk = a[I], b[K]
    size = ai + bk  # block j: a edge rows + b insertion rows
    if size.sum() == 0:
        return np.zeros(len(I))
    off = np.cumsum(size) - size
    # Every (row edge, column edge) pair of every block: substitutions and free dummy pairs.
    ab = ai * bk
    blk = np.repeat(np.arange(len(I)), ab)
    r, c = np.divmod(np.arange(int(ab.sum())) - np.repeat(np.cumsum(ab) - ab, ab), bk[blk])
    P, Q = start1[I[blk]] + r, start2[K[blk]] + c
    same = kind1[P] == kind2[Q]
    dblk = np.repeat(np.arange(len(I)), ai)  # deletions: one per row edge, on the diagonal
    dr = np.arange(len(dblk)) - np.repeat(np.cumsum(ai) - ai, ai)
    iblk = np.repeat(np.arange(len(I)), bk)  # insertions: one per column edge
    ic = np.arange(len(iblk)) - np.repeat(np.cumsum(bk) - bk, bk)
    Pd, Qi = start1[I[dblk]] + dr, start2[K[iblk]] + ic
    rows = np.concatenate([off[blk[same]] + r[same], off[blk] + ai[blk] + c,
                           off[dblk] + dr, off[iblk] + ai[iblk] + ic])
    cols = np.concatenate([off[blk[same]] + c[same], off[blk] + bk[blk] + r,
                           off[dblk] + bk[dblk] + dr, off[iblk] + ic])
    weight = np.concatenate([edge.sub[ref1[P[same]], ref2[Q[same]]], np.zeros(len(blk)),
                             edge.delete[ref1[Pd]], edge.insert[ref2[Qi]]])
    if shift is None:
        shift = 1.0 + float(weight.max(initial=0.0))
    total = int(size.sum())
    graph = sp.csr_array((weight + shift, (rows, cols)), shape=(total, total))
    rounded = graph.copy()
    q = math.ldexp(1.0, math.frexp(float(rounded.data.max()))[1] - 40)
    rounded.data = np.round(rounded.data / q) * q
    row_ind, col_ind = min_weight_full_bipartite_matching(rounded)
    matched = np.asarray(graph[row_ind, col_ind]).ravel() - shift
    block = np.repeat(np.arange(len(I)), size)
    return np.bincount(block[row_ind], weights=matched, minlength=len(I))


def _node_lsap(p: _Problem, local: np.ndarray, weight: float) -> tuple[float, np.ndarray]:
    """LSAP over nodes with costs ``node + weight * local``; returns its value and node map."""
    n1, n2 = p.n1, p.n2
    deg_del, deg_ins = p.incident_indels
    big = np.zeros((n1 + n2, n1 + n2))
    big[:n1, :n2] = p.node.sub + weight * local
    big[:n1, n2:] = np.inf
    big[n1:, :n2] = np.inf
    big[np.arange(n1), n2 + np.arange(n1)] = p.node.delete + weight * deg_del
    big[n1 + np.arange(n2), np.arange(n2)] = p.node.insert + weight * deg_ins
    rows, cols = linear_sum_assignment(big)
    pi = cols[:n1].copy()  # rows come back sorted, so rows[:n1] are G1's nodes in order
    pi[pi >= n2] = -1
    return float(big[rows, cols].sum()), pi


def _edit_path_costs(p: _Problem, maps: np.ndarray) -> np.ndarray:
    """Exact costs of the cheapest edit paths consistent with a batch of node maps.

    ``maps`` has shape (B, n1): the G2 node of each G1 node, -1 for a deletion; each row must be
    injective. Returns shape (B,).
    """
    maps = np.atleast_2d(maps)
    mapped = maps >= 0
    cost = np.full(len(maps), p.node.insert.sum() + p.edge.delete.sum() + p.edge.insert.sum())
    if p.n2 == 0:
        return cost + p.node.delete.sum()
    safe = np.where(mapped, maps, 0)
    # A substitution replaces the deletion of its G1 node and the insertion of its G2 node.
    cost += np.where(mapped, p.node.sub[np.arange(p.n1), safe] - p.node.insert[safe],
                     p.node.delete).sum(axis=1)
    if p.m1 and p.m2:
        both = mapped[:, p.src1] & mapped[:, p.dst1]
        f = np.where(both, p.edge_id2[safe[:, p.src1], safe[:, p.dst1]], -1)
        cost += np.where(f >= 0, p.edge_gain[np.arange(p.m1), np.maximum(f, 0)], 0.0).sum(axis=1)
    return cost


def _edit_path_cost(p: _Problem, pi: np.ndarray) -> float:
    """Exact cost of the cheapest edit path consistent with one node map ``pi``."""
    return float(_edit_path_costs(p, pi[None, :])[0])


def _local_search(p: _Problem, pi: np.ndarray, max_rounds: int = 200) -> np.ndarray:
    """Steepest descent over the neighbours of a node map: one G1 node moved to a free G2 node or
    deleted, or the images of two G1 nodes swapped (a swap refinement in the spirit of Riesen and
    Bunke [5]_). All neighbours of a round are priced in one batch."""
    if p.n1 == 0 or p.n2 == 0:
        return pi
    I, J = np.triu_indices(p.n1, 1)
    cost = _edit_path_cost(p, pi)
    for _ in range(max_rounds):
        targets = np.append(np.setdiff1d(np.arange(p.n2), pi[pi >= 0]), -1)
        mi, mk = np.repeat(np.arange(p.n1), len(targets)), np.tile(targets, p.n1)
        mi, mk = mi[pi[mi] != mk], mk[pi[mi] != mk]
        si, sj = I[pi[I] != pi[J]], J[pi[I] != pi[J]]
        cands = np.repeat(pi[None, :], len(mi) + len(si), axis=0)
        cands[np.arange(len(mi)), mi] = mk
        rows = len(mi) + np.arange(len(si))
        cands[rows, si], cands[rows, sj] = pi[sj], pi[si]
        costs = _edit_path_costs(p, cands)
        best = int(np.argmin(costs))
        if costs[best] >= cost - 1e-12:
            break
        pi, cost = cands[best], costs[best]
    return pi


def _linear_program(p: _Problem):
    """Formulation F2 of Lerouge et al. (2017), plus G2-side linking rows, as sparse arrays.

    Returns ``c, A, b_upper, integrality`` for ``min c @ z`` s.t. ``A @ z <= b_upper``,
    ``0 <= z <= 1``; the objective omits :attr:`_Problem.constant`.
    """
    n1, n2 = p.n1, p.n2
    nx_ = n1 * n2
    cx = (p.node.sub - p.node.delete[:, None] - p.node.insert[None, :]).ravel()
    cy_full = p.edge.sub - p.edge.delete[:, None] - p.edge.insert[None, :]
    e, f = np.nonzero(cy_full < 0)  # other edge pairs never pay to be matched
    cy = cy_full[e, f]
    ny = len(e)
    yvar = nx_ + np.arange(ny)

    def xi(i, k):
        return i * n2 + k

    rows, cols, vals = [], [], []
    # Each node of G1 (G2) is substituted at most once.
    rows += [np.repeat(np.arange(n1), n2), n1 + np.tile(np.arange(n2), n1)]
    cols += [np.arange(nx_), np.arange(nx_)]
    vals += [np.ones(nx_), np.ones(nx_)]
    nrow = n1 + n2

    def link(key_a, key_b, y, x_terms):
        """Rows sum(y with this key) - sum(x_terms) <= 0, one per distinct (key_a, key_b)."""
        nonlocal nrow
        if len(y) == 0:
            return
        keys, first, inverse = np.unique(key_a * (max(n1, n2, p.m1, p.m2) + 1) + key_b,
                                         return_index=True, return_inverse=True)
        rows.append(nrow + inverse)
        cols.append(y)
        vals.append(np.ones(len(y)))
        for term in x_terms:  # each x term is a function of the key: read it at the key's first y
            rows.append(nrow + np.arange(len(keys)))
            cols.append(term[first])
            vals.append(-np.ones(len(keys)))
        nrow += len(keys)

    s1, d1, s2, d2 = p.src1[e], p.dst1[e], p.src2[f], p.dst2[f]
    if p.directed:
        link(s1, f, yvar, [xi(s1, s2)])  # edges leaving node i matched to (k, l) need i -> k
        link(d1, f, yvar, [xi(d1, d2)])  # edges entering node j matched to (k, l) need j -> l
        link(e, s2, yvar, [xi(s1, s2)])  # the same seen from G2's nodes
        link(e, d2, yvar, [xi(d1, d2)])
    else:
        # Undirected: the edges at node i matched to {k, l} need i -> k or i -> l; each edge
        # pair enters the rows of both its end nodes.
        i, ff, k2 = np.concatenate([s1, d1]), np.concatenate([f, f]), np.concatenate([s2, s2])
        l2 = np.concatenate([d2, d2])
        link(i, ff, np.concatenate([yvar, yvar]), [xi(i, k2), xi(i, l2)])
        k, ee = np.concatenate([s2, d2]), np.concatenate([e, e])
        i1, j1 = np.concatenate([s1, s1]), np.concatenate([d1, d1])
        link(ee, k, np.concatenate([yvar, yvar]), [xi(i1, k), xi(j1, k)])
    A = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                     shape=(nrow, nx_ + ny))
    b_upper = np.zeros(nrow)
    b_upper[: n1 + n2] = 1.0
    # y is integral whenever x is (module docstring), so it can stay continuous; with granular
    # costs it is declared integer all the same, so that HiGHS sees an integral objective and
    # prunes with rounded-up bounds.
    integrality = np.concatenate([np.ones(nx_), np.full(ny, float(p.scale is not None))])
    return np.concatenate([cx, cy]), A, b_upper, integrality


def _highs_options(time_limit: float) -> dict:
    return {} if math.isinf(time_limit) else {"time_limit": max(time_limit, 1e-3)}


_HIGHS = threading.local()  # one HiGHS instance per thread, reused: its set-up is not free


def _relaxation(p: _Problem, lp: tuple, time_limit: float):
    """LP relaxation: lower bound, rounded node map, simplex iterations, whether time ran out.

    Solved by HiGHS through highspy, the solver behind ``scipy.optimize.linprog(method="highs")``,
    without linprog's per-call input checks and conversions (more than half of a glycan LP's
    time), and with the simplex iteration count HiGHS reports.
    """
    import highspy

    c, A, b_upper, _ = lp
    h = getattr(_HIGHS, "solver", None)
    if h is None:
        # highspy.Highs (a subclass) prints a banner when made and installs callbacks that are
        # not used here; its base class is the plain C++ solver (private: fall back if renamed).
        h = _HIGHS.solver = getattr(highspy, "_Highs", highspy.Highs)()
        h.setOptionValue("output_flag", False)
        # Presolve only slows LPs of this size (a third of the time on glycan pairs).
        h.setOptionValue("presolve", "off")
    model = highspy.HighsLp()
    model.num_col_, model.num_row_ = len(c), len(b_upper)
    model.col_cost_ = c
    model.col_lower_, model.col_upper_ = np.zeros(len(c)), np.ones(len(c))
    model.row_lower_, model.row_upper_ = np.full(len(b_upper), -np.inf), b_upper
    A = sp.csc_array(A)
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.num_col_, model.a_matrix_.num_row_ = len(c), len(b_upper)
    model.a_matrix_.start_, model.a_matrix_.index_, model.a_matrix_.value_ = (A.indptr, A.indices,
                                                                              A.data)
    h.passModel(model)
    # HiGHS checks time_limit against its run clock, which adds up over every run() of the reused
    # instance: without the offset, a solver that had already spent more than the time left
    # reported every later LP as timed out at once.
    h.setOptionValue("time_limit", h.getRunTime()
                     + _highs_options(time_limit).get("time_limit", math.inf))
    h.run()
    status, info = h.getModelStatus(), h.getInfo()
    nit = int(info.simplex_iteration_count)
    if status == highspy.HighsModelStatus.kModelEmpty:
        value, x = 0.0, np.zeros(0)
    elif status == highspy.HighsModelStatus.kOptimal:
        value, x = float(info.objective_function_value), np.asarray(h.getSolution().col_value)
    else:
        limits = (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kIterationLimit)
        return -math.inf, None, nit, status in limits
    # The assignment closest to the relaxed node map is a far better upper bound than
    # Riesen-Bunke's on tree-like graphs, for one more LSAP.
    x = x[: p.n1 * p.n2].reshape(p.n1, p.n2)
    rows, cols = linear_sum_assignment(x, maximize=True)
    pi = np.full(p.n1, -1)
    keep = x[rows, cols] > 1e-9
    pi[rows[keep]] = cols[keep]
    return value + p.constant, pi, nit, False


def _branch_and_bound(p: _Problem, lp: tuple, time_limit: float):
    """HiGHS MILP: proven lower bound, best node map, B&B nodes, whether time ran out."""
    c, A, b_upper, integrality = lp
    # mip_rel_gap=0 leaves HiGHS's absolute gap (1e-6) as the only stopping tolerance.
    res = milp(c, integrality=integrality, bounds=Bounds(0, 1),
               constraints=LinearConstraint(A, -np.inf, b_upper),
               options={"mip_rel_gap": 0.0, **_highs_options(time_limit)})
    pi = None
    if res.x is not None:
        x = res.x[: p.n1 * p.n2].reshape(p.n1, p.n2)
        pi = np.where((x > 0.5).any(axis=1), x.argmax(axis=1), -1)
    bound = res.mip_dual_bound
    bound = float(bound) + p.constant if bound is not None and np.isfinite(bound) else -math.inf
    return bound, pi, int(res.mip_node_count or 0), res.status == 1


def _node_map(p: _Problem, pi: np.ndarray) -> tuple:
    pairs = [(u, p.nodes2[k] if k >= 0 else None) for u, k in zip(p.nodes1, pi.tolist())]
    image = set(pi[pi >= 0].tolist())
    return tuple(pairs + [(None, v) for k, v in enumerate(p.nodes2) if k not in image])


def graph_edit_distance(
    G1: nx.Graph,
    G2: nx.Graph,
    *,
    costs: CostModel | None = None,
    method: Literal["exact", "bipartite", "bounds"] = "exact",
    timeout: float | None = None,
) -> GEDResult:
    """Graph edit distance between two graphs, exact or bounded, with certified status.

    Parameters
    ----------
    G1, G2 : networkx.Graph or networkx.DiGraph
        Both undirected or both directed, simple (no multi-edges, no self-loops). Node and edge
        attributes are read by the cost model. Empty graphs are allowed.
    costs : CostModel, optional
        Edit costs; default :class:`graphs.costs.ChemicalCosts` (GLAMOUR's fingerprint costs on
        the ``"x"`` attributes). Also :class:`graphs.costs.UniformCosts`,
        :class:`graphs.costs.CallableCosts` or any object with ``node_costs``/``edge_costs``.
    method : {"exact", "bipartite", "bounds"}, default "exact"
        ``"exact"`` proves optimality (MILP, see the module docstring); ``"bipartite"`` gives the
        Riesen-Bunke upper bound and the BRANCH lower bound (LSAPs only); ``"bounds"`` adds the LP
        relaxation lower bound and improves the upper bound by LP rounding and local search.
    timeout : float, optional
        Wall-clock limit for the whole call, s (None: no limit). The assignment bounds and local
        search (milliseconds) always run; the LP and the MILP get what is left. When it runs out,
        the best bounds so far are returned with ``optimal=False`` and ``status="time_limit"``.

    Returns
    -------
    GEDResult
        ``distance`` (cost of ``node_map``), ``lower_bound``, ``upper_bound``, ``optimal`` and
        solver statistics. ``optimal`` is never True for a mere bound.

    Raises
    ------
    InputTypeError
        A graph is not a simple networkx graph, one is directed and the other not, or ``costs`` is
        not a cost model.
    InputError
        Self-loops; a cost model cannot read the attributes it needs (e.g. no ``"x"`` for
        :class:`ChemicalCosts`); costs that are negative, infinite or of the wrong shape; a
        non-positive ``timeout``.
    UnknownMetricError
        ``method`` is not one of the three above.

    Examples
    --------
    >>> import networkx as nx
    >>> from graphs.costs import UniformCosts
    >>> G = nx.path_graph(3); nx.set_node_attributes(G, "C", "label")
    >>> nx.set_edge_attributes(G, "-", "label")
    >>> H = nx.cycle_graph(3); nx.set_node_attributes(H, "C", "label")
    >>> nx.set_edge_attributes(H, "-", "label")
    >>> r = graph_edit_distance(G, H, costs=UniformCosts())
    >>> r.distance, r.optimal
    (1.0, True)
    """
    start = time.perf_counter()
    if method not in _METHODS:
        raise UnknownMetricError(f"unknown GED method {method!r}; choose one of {_METHODS}")
    if timeout is not None and not (isinstance(timeout, Real) and not isinstance(timeout, bool)
                                    and timeout > 0):
        raise InputError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return _solve(_problem(G1, G2, ChemicalCosts() if costs is None else costs), method, timeout,
                  start)


def _solve(p: _Problem, method: str, timeout: float | None, start: float,
           local: np.ndarray | None = None) -> GEDResult:
    """:func:`graph_edit_distance` of a built problem (``local``: its :func:`_local_edge_costs`,
    when the caller has them already); ``start`` is the call's ``time.perf_counter()``."""
    local = _local_edge_costs(p) if local is None else local
    lower, pi_branch = _node_lsap(p, local, 0.5)
    lower = p.round_up(lower)
    _, pi_rb = _node_lsap(p, local, 1.0)
    upper, pi = math.inf, pi_rb
    nodes, iterations, timed_out = 0, None, False

    def left() -> float:
        return math.inf if timeout is None else timeout - (time.perf_counter() - start)

    def offer(candidate: np.ndarray | None, refine: bool) -> None:
        nonlocal upper, pi
        if candidate is None:
            return
        if refine:
            candidate = _local_search(p, candidate)
        cost = _edit_path_cost(p, candidate)
        if cost < upper:
            upper, pi = cost, candidate

    offer(pi_rb, refine=False)
    offer(pi_branch, refine=False)
    if method != "bipartite" and upper - lower > GAP_TOL:
        offer(pi, refine=True)
    if method != "bipartite" and upper - lower > GAP_TOL:
        lp = _linear_program(p)
        timed_out = left() <= 0
        if not timed_out:
            # The LP relaxation first: on glycans it is often integral, which proves optimality
            # at a fraction of the cost of starting the MILP solver.
            bound, candidate, iterations, timed_out = _relaxation(p, lp, left())
            lower = max(lower, p.round_up(bound))
            offer(candidate, refine=True)
        if method == "exact" and upper - lower > GAP_TOL and not timed_out:
            timed_out = left() <= 0
            if not timed_out:
                bound, candidate, nodes, timed_out = _branch_and_bound(p, lp, left())
                lower = max(lower, p.round_up(bound))
                offer(candidate, refine=False)
    lower = min(lower, upper)  # float noise must not put a proven bound above a real path
    optimal = upper - lower <= GAP_TOL
    status = "optimal" if optimal else ("time_limit" if timed_out else "bounds")
    return GEDResult(
        distance=upper, lower_bound=lower, upper_bound=upper, optimal=optimal,
        node_map=_node_map(p, pi), seconds=time.perf_counter() - start, method=method,
        status=status, search_nodes=nodes, lp_iterations=iterations,
    )
