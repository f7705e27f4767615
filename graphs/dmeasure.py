"""The D-measure of network dissimilarity (Schieber et al. 2017), exact and fast.

For a graph with ``N`` nodes let ``p_i(j)`` be the fraction of the other ``N - 1`` nodes at
shortest-path distance ``j`` from node ``i`` (``j = 1 .. N - 1``; a node that ``i`` cannot reach
counts at distance ``N``, as in the authors' R code). With ``mu = mean_i P_i``, the network node
dispersion is

    NND = max(0, H(mu) - (1/N) sum_i H(P_i)) / log(max(2, d + 1))

(``H`` the Shannon entropy in nats, ``d`` the largest finite distance, i.e. the diameter of a
connected graph), and the D-measure of two graphs ``G`` and ``G'`` is (ref. [1])

    D = w1 sqrt(JS(mu, mu') / log 2) + w2 |sqrt(NND) - sqrt(NND')|
        + (w3 / 2) (sqrt(JS(a, a') / log 2) + sqrt(JS(a_c, a_c') / log 2)),

``JS`` the Jensen-Shannon divergence in nats and ``a``, ``a_c`` the alpha-centrality distributions
of the graph and of its complement (below). ``D`` lies in [0, 1]; the default weights
``(0.45, 0.45, 0.10)`` are those of the paper.

Conventions (checked against the authors' R code, ref. [2], and netrd, ref. [3]):

* Graphs of different sizes: ``mu`` of the smaller graph is padded with zeros between its finite
  distances and its unreachable fraction, so that both unreachable fractions share the last bin;
  alpha distributions are padded with leading zeros (ref. [2], function ``D``). Zero bins shared
  by both graphs change no divergence, so every signature can be padded once to a common length.
* Alpha centrality: ``c`` solves ``(I - alpha A^T) c = k / (N - 1)`` with ``k`` the degrees and
  ``alpha = 1 / N``, as igraph's ``alpha.centrality(g, exo=degree(g)/(N-1), alpha=1/N)`` in the R
  code; the distribution is ``sort(c) / N^2`` followed by ``max(0, 1 - sum)``. Because
  ``alpha * rho(A) <= (N - 1) / N < 1`` the system is symmetric positive definite and is solved
  by conjugate gradients to round-off (a sparse LU factorisation takes over if they stall).
  netrd instead sums the first ``niter + 1 = 51`` terms of the Neumann series
  ``sum_m (alpha A)^m k``, which on a complement graph (``alpha rho`` close to 1) is far from
  converged; ``alpha_iterations=50`` reproduces netrd.
* Complement: ``A_c = J - I - A`` is never formed. The exact system
  ``(I - alpha A_c) c = ((1 + alpha) I + alpha A - alpha 1 1^T) c`` is solved with the
  Sherman-Morrison formula on the sparse matrix ``(1 + alpha) I + alpha A``; the truncated series
  uses ``A_c x = (sum(x) - x) - A x``.
* Normalisations: ``JS / log 2`` is the divergence in bits (netrd uses base-2 entropies, the R
  code divides by ``log(2)``); the NND denominator counts the non-empty finite-distance bins as
  the R code does, which equals netrd's ``log(diameter + 1)`` on connected graphs (netrd raises
  on disconnected ones and drops unreachable pairs from ``P_i``).
* netrd returns exactly 0 for any Jensen-Shannon divergence below about 1e-8 (``np.isclose``);
  here none is rounded, so the two part ways only for graphs that close.
* Edge weights: ref. [1] defines the D-measure on distributions of integer distances ``j = 1 ..
  d`` (hops) and alpha centralities seeded by degrees, and the R code reads unweighted edge lists
  (``read.graph(..., format = "edgelist")``, ``shortest.paths(..., algorithm = "unweighted")``,
  ``exo = degree(g)``). netrd weights one term of three: ``nx.to_numpy_array``'s default
  ``weight="weight"`` puts the weights into the alpha centrality of the graph (adjacency and
  exogenous strengths), while its distances and its complement stay unweighted; on two 12-node
  small-world graphs with weights drawn from U(0.1, 3) its D is 0.0793 against 0.0763 unweighted
  (``alpha_iterations=50``), the centrality term alone differing. That mixture has no published
  definition and is not reproduced: a graph whose edges carry ``weight`` values other than 1 (an
  adjacency matrix with entries other than 0 and 1) is refused, and ``weight=None`` says to read
  it unweighted.
* Self-loops and parallel edges are ignored (the R code calls ``simplify``); directed graphs are
  refused.

Per-graph work (all-pairs breadth-first search, two linear solves) lives in
:class:`DMeasureSignature`, computed once, so an ``M x M`` matrix costs ``M`` signatures plus
``M^2 / 2`` cheap comparisons of vectors. The breadth-first searches run bit-parallel: 64 sources
share one machine word, and each level is one gather-and-OR over the edge list.

References
----------
.. [1] T. A. Schieber, L. Carpi, A. Diaz-Guilera, P. M. Pardalos, C. Masoller, M. G. Ravetti,
   "Quantification of network structural dissimilarities", Nat. Commun. 8, 13928 (2017).
.. [2] T. A. Schieber, R code ``d_distance.r``,
   https://github.com/tischieber/Quantifying-Network-Structural-Dissimilarities
.. [3] netrd 0.3.0, ``netrd.distance.DMeasure`` (B. Klein), https://github.com/netsiphd/netrd
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import cg, splu

from graphs.errors import EmptyGraphError, InputError, InputTypeError

__all__ = [
    "DEFAULT_WEIGHTS",
    "DMeasureSignature",
    "DMeasureComponents",
    "d_measure",
    "d_measure_matrix",
]

#: Weights (w1, w2, w3) of ref. [1].
DEFAULT_WEIGHTS: tuple[float, float, float] = (0.45, 0.45, 0.10)

# Bytes allowed for one gathered frontier array (edges x words) in the bit-parallel search.
_GATHER_BYTES = 64 * 2**20
# Words of 64 sources searched together at most.
_MAX_WORDS = 16


class DMeasureComponents(NamedTuple):
    """The D-measure and its three unweighted terms.

    Attributes
    ----------
    distance : float
        ``w1 * node_distance + w2 * dispersion + w3 * centrality``.
    node_distance : float
        ``sqrt(JS(mu, mu') / log 2)``, the first term.
    dispersion : float
        ``|sqrt(NND) - sqrt(NND')|``, the second term.
    centrality : float
        ``(sqrt(JS(a, a')/log 2) + sqrt(JS(a_c, a_c')/log 2)) / 2``, the third term.
    """

    distance: float
    node_distance: float
    dispersion: float
    centrality: float


@dataclass(frozen=True, eq=False)
class DMeasureSignature:
    """Everything the D-measure needs from one graph, computed once.

    Build it with :meth:`from_graph`; compare two with :func:`d_measure`.

    Attributes
    ----------
    n_nodes : int
        Number of nodes ``N``.
    node_distance : numpy.ndarray
        ``mu``, shape ``(N,)``: ``mu[j - 1]`` is the mean fraction of nodes at distance ``j``
        (``j = 1 .. N - 1``) and ``mu[N - 1]`` the mean fraction unreachable. Sums to 1.
    nnd : float
        Network node dispersion, in [0, 1].
    alpha : numpy.ndarray
        Alpha-centrality distribution of the graph, shape ``(N + 1,)``, sums to 1.
    alpha_complement : numpy.ndarray
        The same for the complement graph.
    alpha_iterations : int or None
        ``None`` for the exact centrality, else the number of power-series steps (netrd's
        ``niter``).
    """

    n_nodes: int
    node_distance: np.ndarray
    nnd: float
    alpha: np.ndarray
    alpha_complement: np.ndarray
    alpha_iterations: int | None

    @classmethod
    def from_graph(cls, graph: Any, *, alpha_iterations: int | None = None,
                   weight: str | None = "weight") -> DMeasureSignature:
        """Compute the signature of an undirected graph.

        Parameters
        ----------
        graph : networkx.Graph, scipy.sparse array/matrix or numpy.ndarray
            Undirected graph, or its square symmetric adjacency matrix (non-zero = edge).
        alpha_iterations : int or None, optional
            ``None`` (default): exact alpha centrality. An integer ``n >= 0``: netrd's truncated
            power iteration ``c <- k + A c / N`` repeated ``n`` times (netrd uses 50).
        weight : str or None, optional
            The edge attribute of edge weights (networkx's convention). The D-measure reads
            unweighted graphs, so one with a ``weight`` other than 1 on any edge (a matrix with
            an entry other than 0 and 1) is refused; None reads every edge (non-zero entry) as
            one unweighted edge (module docstring, "Edge weights").

        Returns
        -------
        DMeasureSignature

        Raises
        ------
        EmptyGraphError
            If the graph has no nodes.
        InputError
            If it has a single node (no distance distribution exists), or an adjacency matrix
            is not square and symmetric, or ``alpha_iterations`` is negative, or it has edge
            weights other than 1 and ``weight`` is not None.
        InputTypeError
            For a directed graph or an unsupported type.

        Example
        -------
        >>> import networkx as nx
        >>> sig = DMeasureSignature.from_graph(nx.path_graph(4))
        >>> sig.node_distance.round(3).tolist()
        [0.5, 0.333, 0.167, 0.0]
        """
        iterations = _check_iterations(alpha_iterations)
        adjacency = _adjacency(graph, weight)
        n = adjacency.shape[0]
        counts, unreachable = _distance_histograms(adjacency)
        mu, nnd = _node_dispersion(counts, unreachable, n)
        degree = np.diff(adjacency.indptr).astype(np.float64)
        alpha, alpha_c = _alpha_distributions(adjacency, degree, iterations)
        for array in (mu, alpha, alpha_c):
            array.setflags(write=False)
        return cls(n, mu, nnd, alpha, alpha_c, iterations)


def d_measure(
    graph1: Any,
    graph2: Any,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    *,
    alpha_iterations: int | None = None,
    weight: str | None = "weight",
    components: bool = False,
) -> float | DMeasureComponents:
    """D-measure between two graphs (ref. [1] of the module), in [0, 1].

    Parameters
    ----------
    graph1, graph2 : networkx.Graph, adjacency matrix or DMeasureSignature
        Undirected graphs of any sizes, connected or not; precomputed signatures are used as is.
    weights : sequence of 3 floats, optional
        ``(w1, w2, w3)``, non-negative, summing to 1; default ``(0.45, 0.45, 0.10)``.
    alpha_iterations : int or None, optional
        Alpha-centrality mode for graphs given as graphs (see
        :meth:`DMeasureSignature.from_graph`); signatures must have been computed in the same mode.
    weight : str or None, optional
        The edge attribute of edge weights: graphs with weights other than 1 are refused unless
        it is None (:meth:`DMeasureSignature.from_graph`).
    components : bool, optional
        Return a :class:`DMeasureComponents` with the three unweighted terms instead of a float.

    Returns
    -------
    float or DMeasureComponents

    Raises
    ------
    InputError
        For bad weights, signatures computed with different ``alpha_iterations``, or a weighted
        graph while ``weight`` is not None.

    Example
    -------
    >>> import networkx as nx
    >>> round(d_measure(nx.path_graph(5), nx.star_graph(4)), 4)
    0.2625
    >>> d_measure(nx.cycle_graph(6), nx.cycle_graph(6))
    0.0
    """
    w = _check_weights(weights)
    s1, s2 = (_signature(g, alpha_iterations, weight) for g in (graph1, graph2))
    _check_same_mode([s1, s2])
    stacked = _stack([s1, s2])
    terms = _terms(*(a[:1] for a in stacked), *(a[1:] for a in stacked))
    first, second, third = (float(t[0]) for t in terms)
    distance = w[0] * first + w[1] * second + w[2] * third
    if components:
        return DMeasureComponents(distance, first, second, third)
    return distance


def d_measure_matrix(
    graphs: Sequence[Any],
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    *,
    others: Sequence[Any] | None = None,
    alpha_iterations: int | None = None,
    weight: str | None = "weight",
) -> np.ndarray:
    """Matrix of D-measures between all pairs of graphs, or between two lists of graphs.

    Each graph's :class:`DMeasureSignature` is computed once (``M`` passes); the comparisons are
    vectorised over one row at a time, and only the upper triangle is computed when ``others``
    is not given. Rectangular blocks (``others``) serve blocked or distributed matrices
    (:mod:`graphs.query`).

    Parameters
    ----------
    graphs : sequence of networkx.Graph, adjacency matrices or DMeasureSignature
        At least one graph (rows).
    weights, alpha_iterations, weight
        As in :func:`d_measure`.
    others : sequence, optional
        Column graphs; default ``graphs`` (a symmetric matrix).

    Returns
    -------
    numpy.ndarray
        Shape ``(M, M)`` with a zero diagonal, or ``(M, len(others))``; entries in [0, 1].

    Raises
    ------
    InputError
        If ``graphs`` or ``others`` is empty, or as :func:`d_measure`.

    Example
    -------
    >>> import networkx as nx
    >>> d_measure_matrix([nx.path_graph(5), nx.star_graph(4), nx.path_graph(5)]).round(3)[0]
    array([0.   , 0.263, 0.   ])
    """
    w = _check_weights(weights)
    rows = [_signature(g, alpha_iterations, weight) for g in graphs]
    cols = rows if others is None else [_signature(g, alpha_iterations, weight) for g in others]
    if not rows or not cols:
        raise InputError("d_measure_matrix needs at least one graph on each side, got none")
    _check_same_mode(rows + cols)
    stacked = _stack(rows + cols)
    row_part = tuple(a[: len(rows)] for a in stacked)
    col_part = tuple(a[len(rows) :] for a in stacked)
    out = np.zeros((len(rows), len(cols)))
    for i in range(len(rows)):  # a loop over graphs; each row is vectorised over the columns
        start = i + 1 if others is None else 0
        mine = tuple(a[i : i + 1] for a in row_part)
        first, second, third = _terms(*mine, *(a[start:] for a in col_part))
        out[i, start:] = w[0] * first + w[1] * second + w[2] * third
    return out + out.T if others is None else out


# --- comparison --------------------------------------------------------------------------------


def _stack(signatures: Sequence[DMeasureSignature]) -> tuple[np.ndarray, ...]:
    """Pad the signatures to one common length and stack them (rows = graphs).

    The node-distance vectors keep their unreachable fraction in the last column and the alpha
    distributions are right-aligned, which is the authors' pairwise padding applied once: columns
    that are zero in both graphs of a pair add nothing to a Jensen-Shannon divergence.
    """
    length = max(s.n_nodes for s in signatures)
    mu = np.zeros((len(signatures), length))
    alpha = np.zeros((len(signatures), length + 1))
    alpha_c = np.zeros_like(alpha)
    for row, s in enumerate(signatures):
        mu[row, : s.n_nodes - 1] = s.node_distance[:-1]
        mu[row, -1] = s.node_distance[-1]
        alpha[row, length - s.n_nodes :] = s.alpha
        alpha_c[row, length - s.n_nodes :] = s.alpha_complement
    nnd = np.array([s.nnd for s in signatures])
    return mu, nnd, alpha, alpha_c


def _root_js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``sqrt(JS(p, q) / log 2)`` row-wise (``p`` broadcasts against the rows of ``q``).

    With ``s = p + q``, ``d = p - q`` and ``x = d / s`` each bin contributes
    ``p log(2p/s) + q log(2q/s) = (s/2) log1p(-x^2) + d artanh(x)`` (``s log 2`` where one of
    the two is zero). Both parts are of order ``s x^2`` and add without cancellation, so nearly
    equal distributions (isomorphic graphs, whose sorted centralities differ by round-off) give
    a divergence of order ``x^2`` instead of the ``1e-17`` noise of the entropy-difference form,
    which the square root would lift to ``1e-9``.
    """
    s = p + q
    d = p - q
    x = np.divide(d, s, out=np.zeros(np.broadcast(p, q).shape), where=s > 0)
    inner = np.abs(x) < 1.0
    xi = np.where(inner, x, 0.0)
    terms = np.where(inner, 0.5 * s * np.log1p(-xi * xi) + d * np.arctanh(xi), s * math.log(2.0))
    js = 0.5 * terms.sum(axis=1)
    return np.sqrt(np.clip(js / math.log(2.0), 0.0, None))


def _terms(mu1, nnd1, a1, ac1, mu2, nnd2, a2, ac2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    first = _root_js(mu1, mu2)
    second = np.abs(np.sqrt(nnd1) - np.sqrt(nnd2))
    third = 0.5 * (_root_js(a1, a2) + _root_js(ac1, ac2))
    return first, second, third


# --- validation --------------------------------------------------------------------------------


def _check_weights(weights: Sequence[float]) -> tuple[float, float, float]:
    try:
        w = tuple(float(x) for x in weights)
    except (TypeError, ValueError):
        raise InputTypeError(f"weights must be three numbers, got {weights!r}") from None
    if len(w) != 3 or not all(math.isfinite(x) and x >= 0 for x in w):
        raise InputError(f"weights must be three finite non-negative numbers, got {weights!r}")
    if not math.isclose(sum(w), 1.0, rel_tol=0.0, abs_tol=1e-9):
        raise InputError(f"weights must sum to 1, got {weights!r} (sum {sum(w)!r})")
    return w  # type: ignore[return-value]


def _check_iterations(alpha_iterations: int | None) -> int | None:
    if alpha_iterations is None:
        return None
    if isinstance(alpha_iterations, bool) or not isinstance(alpha_iterations, (int, np.integer)):
        raise InputTypeError(
            f"alpha_iterations must be None or an int, got {type(alpha_iterations).__name__}"
        )
    if alpha_iterations < 0:
        raise InputError(f"alpha_iterations must be >= 0, got {alpha_iterations}")
    return int(alpha_iterations)


def _check_same_mode(signatures: Sequence[DMeasureSignature]) -> None:
    modes = {s.alpha_iterations for s in signatures}
    if len(modes) > 1:
        raise InputError(
            "signatures were computed with different alpha_iterations "
            f"{sorted(modes, key=str)}; recompute them in one mode"
        )


def _signature(graph: Any, alpha_iterations: int | None, weight: str | None) -> DMeasureSignature:
    if isinstance(graph, DMeasureSignature):
        # None is also the default, so only an explicit count can be told apart from the signature's
        if alpha_iterations is not None and graph.alpha_iterations != alpha_iterations:
            raise InputError(f"a signature computed with alpha_iterations={graph.alpha_iterations} was given "
                             f"with alpha_iterations={alpha_iterations}; recompute it with "
                             f"DMeasureSignature.from_graph(graph, alpha_iterations={alpha_iterations})")
        return graph
    return DMeasureSignature.from_graph(graph, alpha_iterations=alpha_iterations, weight=weight)


def _adjacency(graph: Any, weight: str | None) -> sp.csr_array:
    """Binary symmetric CSR adjacency without self-loops (refusing edge weights unless ``weight`` is None)."""
    if isinstance(graph, nx.Graph):
        if graph.is_directed():
            raise InputTypeError(
                "the D-measure is defined for undirected graphs; got a directed graph "
                "(pass graph.to_undirected() to drop directions)"
            )
        n = graph.number_of_nodes()
        if n == 0:
            raise EmptyGraphError("graph has no nodes; the D-measure needs at least 2")
        if weight is not None:
            weighted = [(u, v, w) for u, v, w in graph.edges(data=weight, default=1) if w != 1]
            if weighted:
                u, v, w = weighted[0]
                _refuse_weights(f"{len(weighted)} edges of the graph carry {weight!r} values other than 1 "
                                f"({w!r} on edge ({u!r}, {v!r}))")
        matrix = nx.to_scipy_sparse_array(graph, weight=None, format="csr", dtype=np.float64)
    elif sp.issparse(graph) or isinstance(graph, np.ndarray):
        matrix = sp.csr_array(graph, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise InputError(f"adjacency matrix must be square, got shape {matrix.shape}")
        if matrix.shape[0] == 0:
            raise EmptyGraphError("adjacency matrix is empty; the D-measure needs at least 2 nodes")
    else:
        raise InputTypeError(
            "expected a networkx.Graph, a scipy.sparse adjacency or a numpy adjacency, got "
            f"{type(graph).__module__}.{type(graph).__qualname__}"
        )
    n = matrix.shape[0]
    if n == 1:
        raise InputError("graph has a single node; the D-measure needs at least 2 nodes")
    matrix.setdiag(0)
    matrix.eliminate_zeros()
    # a networkx graph's parallel edges count 2 here; they are simplified, as the R code does
    if weight is not None and not isinstance(graph, nx.Graph) and (matrix.data != 1).any():
        _refuse_weights(f"the adjacency matrix has entries other than 0 and 1 "
                        f"(e.g. {float(matrix.data[matrix.data != 1][0])!r})")
    matrix.data[:] = 1.0
    if (matrix != matrix.T).nnz:
        raise InputError("adjacency matrix is not symmetric; the D-measure needs undirected graphs")
    matrix.sort_indices()
    return matrix


def _refuse_weights(what: str) -> None:
    raise InputError(f"{what}: the D-measure (Schieber et al. 2017, and the authors' code) is defined on "
                     "unweighted networks and reads no edge weights (netrd weights its alpha-centrality term "
                     "alone); pass weight=None to compare the graphs unweighted")


# --- per-graph quantities ----------------------------------------------------------------------


def _distance_histograms(adjacency: sp.csr_array) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-source counts of nodes at each distance, by bit-parallel breadth-first search.

    Returns a list of arrays (one per source block) of shape ``(sources, levels)`` whose column
    ``l`` counts the nodes at distance ``l + 1``, and the number of unreachable nodes per source.
    Bit ``s`` of ``frontier[v]`` says that node ``v`` is in the current BFS shell of source ``s``;
    a shell's successor is the OR of the neighbours' shells minus what was visited.
    """
    n = adjacency.shape[0]
    indptr, indices = adjacency.indptr, adjacency.indices
    has_edges = np.diff(indptr) > 0
    starts = indptr[:-1][has_edges]
    words = int(np.clip(_GATHER_BYTES // (8 * max(len(indices), 1)), 1, _MAX_WORDS))
    block = 64 * words
    counts: list[np.ndarray] = []
    reached = np.zeros(n, dtype=np.int64)
    for first in range(0, n, block):
        sources = np.arange(first, min(n, first + block))
        b = len(sources)
        frontier_bytes = np.zeros((n, words * 8), dtype=np.uint8)
        # np.unpackbits reads bytes big-endian: source k is bit 7 - k % 8 of byte k // 8.
        position = np.arange(b)
        frontier_bytes[sources, position // 8] = (1 << (7 - position % 8)).astype(np.uint8)
        frontier = frontier_bytes.view(np.uint64)
        visited = frontier.copy()
        levels = []
        while True:
            grown = np.zeros_like(frontier)
            if len(starts):
                grown[has_edges] = np.bitwise_or.reduceat(frontier[indices], starts, axis=0)
            frontier = grown & ~visited
            active = np.flatnonzero(frontier.any(axis=1))
            if not len(active):
                break
            visited |= frontier
            bits = np.unpackbits(frontier[active].view(np.uint8), axis=1, count=b)
            levels.append(bits.sum(axis=0, dtype=np.int64))
        shells = np.stack(levels, axis=1) if levels else np.zeros((b, 0), dtype=np.int64)
        counts.append(shells)
        reached[sources] = shells.sum(axis=1)
    return counts, (n - 1) - reached


def _node_dispersion(
    counts: list[np.ndarray], unreachable: np.ndarray, n: int
) -> tuple[np.ndarray, float]:
    """``mu`` (length ``n``) and NND from the distance histograms (R code ``nnd``).

    ``H(mu) - (1/N) sum_i H(P_i)`` equals ``(1/N) sum_ij f(p_ij, mu_j)`` with
    ``f(p, m) = p log(p/m) - p + m >= 0`` (the added ``m - p`` sum to zero over ``i``). Each
    ``f`` is of second order in ``p - m`` and is evaluated without cancellation, so a
    vertex-transitive graph gets NND of order 1e-32 rather than the 1e-16 round-off of the
    entropy difference, which ``sqrt(NND)`` in the D-measure would lift to 1e-8.
    """
    diameter = max(c.shape[1] for c in counts)
    q = unreachable[:, None] / (n - 1)
    totals = np.zeros(diameter)
    for block in counts:
        totals[: block.shape[1]] += block.sum(axis=0) / (n - 1)
    mu = np.zeros(n)
    mu[:diameter] = totals / n
    mu[-1] = q.mean()
    dispersion = _divergence_terms(q, mu[-1:]).sum()
    for block in counts:
        p = np.zeros((block.shape[0], diameter))
        p[:, : block.shape[1]] = block / (n - 1)
        dispersion += _divergence_terms(p, mu[:diameter]).sum()
    # The R code normalises by log(max(2, #{positive finite-distance bins} + 1)): the diameter
    # plus one for a connected graph, the largest finite distance plus one otherwise.
    norm = math.log(max(2, np.count_nonzero(mu[:-1]) + 1))
    return mu, max(0.0, float(dispersion) / n) / norm


def _divergence_terms(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``p log(p/m) - p + m`` for ``m > 0`` (0 where ``m = 0``, where ``p`` is 0 as well)."""
    safe_m = np.where(m > 0, m, 1.0)
    t = p / safe_m - 1.0
    tp = np.where(p > 0, t, 0.0)
    inner = safe_m * ((1.0 + tp) * np.log1p(tp) - tp)
    return np.where(m > 0, np.where(p > 0, inner, m), 0.0)


def _alpha_distributions(
    adjacency: sp.csr_array, degree: np.ndarray, iterations: int | None
) -> tuple[np.ndarray, np.ndarray]:
    n = adjacency.shape[0]
    alpha = 1.0 / n
    degree_c = (n - 1) - degree
    if iterations is None:
        identity = sp.identity(n, format="csr")
        graph_c = _spd_solve(identity - alpha * adjacency, degree / (n - 1))
        # (I - alpha A_c) = B - alpha 1 1^T with B = (1 + alpha) I + alpha A (Sherman-Morrison).
        b_matrix = (1.0 + alpha) * identity + alpha * adjacency
        both = _spd_solve(b_matrix, np.column_stack([degree_c / (n - 1), np.ones(n)]))
        x, y = both[:, 0], both[:, 1]
        complement_c = x + alpha * y * x.sum() / (1.0 - alpha * y.sum())
    else:
        graph_c = _power_series(lambda v: adjacency @ v, degree, alpha, iterations) / (n - 1)
        complement_c = (
            _power_series(lambda v: (v.sum() - v) - adjacency @ v, degree_c, alpha, iterations)
            / (n - 1)
        )
    return _centrality_distribution(graph_c, n), _centrality_distribution(complement_c, n)


def _power_series(matvec, exo: np.ndarray, alpha: float, iterations: int) -> np.ndarray:
    """netrd's truncated series: ``c <- exo + alpha A c`` repeated, starting from ``exo``."""
    c = exo.copy()
    for _ in range(iterations):
        c = exo + alpha * matvec(c)
    return c


def _spd_solve(matrix: sp.csr_array, rhs: np.ndarray) -> np.ndarray:
    """Solve a sparse symmetric positive definite system to round-off.

    Conjugate gradients converge in a handful of steps for sparse graphs (eigenvalues near 1);
    a sparse LU factorisation is the fallback for ill-conditioned (dense) graphs.
    """
    columns = rhs.reshape(len(rhs), -1)
    out = np.empty_like(columns)
    lu = None
    for k in range(columns.shape[1]):
        x, info = cg(matrix, columns[:, k], rtol=1e-14, atol=0.0, maxiter=200)
        if info != 0:
            lu = lu or splu(sp.csc_matrix(matrix))
            x = lu.solve(columns[:, k])
        out[:, k] = x
    return out.reshape(rhs.shape)


def _centrality_distribution(c: np.ndarray, n: int) -> np.ndarray:
    """R code ``alpha``: sorted centralities over ``N^2``, completed by ``max(0, 1 - sum)``.

    Centralities are non-negative (``(I - alpha A)^-1`` is a non-negative matrix for
    ``alpha rho(A) < 1``); the Sherman-Morrison update can leave ``-1e-18`` for an isolated node
    of the complement, which is round-off and is clipped.
    """
    r = np.sort(np.maximum(c, 0.0)) / n**2
    return np.append(r, max(0.0, 1.0 - r.sum()))
