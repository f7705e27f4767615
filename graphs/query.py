"""Similarity queries over lists of graphs: pairwise matrices and top-k, locally or on Dask.

A *metric* is one of

- a callable ``f(G1, G2)`` returning a float, or a result with ``distance`` and ``optimal``
  attributes (a :class:`graphs.ged.GEDResult`), treated as a distance (smaller is closer) and,
  unless told ``symmetric=True``, evaluated for both orders of every pair;
- :class:`PairMetric`, which wraps such a callable and says whether it is symmetric and whether it
  is a similarity;
- a name: ``"ged"`` (:func:`graphs.ged.graph_edit_distance`, its ``distance``; ``metric_params``
  go to it, e.g. ``{"method": "bipartite", "timeout": 1.0}``), ``"dmeasure"``
  (:func:`graphs.dmeasure.d_measure` on the graphs read as undirected; each graph's signature is
  computed once; ``metric_params``: ``weights``, ``alpha_iterations``, ``weight``) or a kernel kind of
  :data:`graphs.kernel_kinds.KERNELS` (``"wl"``, ``"propagation_attr"``, ... ; normalised kernel
  similarity, ``metric_params`` go to :class:`graphs.kernels.GraphKernel`).

Work is cut into rectangular blocks of the matrix (``block`` rows by ``block`` columns); a symmetric
metric computes only the blocks on and above the diagonal, and only ``i <= j`` inside diagonal
blocks, and mirrors them. Blocks run serially, on ``n_jobs`` local processes (joblib), or on a
``dask.distributed.Client``: every path evaluates the same blocks with the same code, so the
matrices are equal to the last bit. A kernel with an explicit feature map (``"wl"``) computes its
sparse features once and its blocks are sparse products; the other GraKeL kernels run as one
block, a single GraKeL call over the dataset (several share relabelling or random hashing across
all graphs, so the Gram matrix is not a union of independent blocks; ``block=`` is refused for
them). Values that are only bounds (GED with ``optimal=False``) are flagged: a
:class:`graphs.errors.NonOptimalWarning`, and a boolean mask with ``return_exact=True``.

Example
-------
>>> import networkx as nx
>>> gs = [nx.path_graph(n) for n in (2, 3, 4)]
>>> for g in gs: nx.set_node_attributes(g, "C", "label")
>>> top_k(gs[1], gs, "wl", k=1).indices.tolist()
[1]
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import networkx as nx
import numpy as np

from graphs.errors import (
    InputError,
    InputTypeError,
    NonOptimalWarning,
    UnknownMetricError,
)
from graphs.validation import check_graphs
from graphs.wl import normalize_gram, wl_features

__all__ = ["PairMetric", "TopK", "pairwise", "top_k", "metric_names"]

_PAIR_BLOCK = 32  # graph pairs are costly (GED): small blocks balance the workers
_PRODUCT_BLOCK = 2048  # sparse products are cheap: large blocks keep the overhead low


# Three metric types share one interface: ``prepare(rows, cols)`` does the per-dataset work once
# (cols None: the matrix of rows against themselves) and returns a picklable state; ``block(state,
# r, c, upper)`` returns (values, exact) for rows r x columns c (only j >= i when ``upper``);
# ``symmetric``, ``similarity`` and ``blockable`` (False: the whole matrix is one block) steer the
# drivers below.


@dataclass(frozen=True)
class PairMetric:
    """A metric evaluated one pair of graphs at a time.

    Parameters
    ----------
    func : callable
        ``func(G1, G2)`` returning a float, or an object with ``distance`` (float) and
        ``optimal`` (bool) attributes such as :class:`graphs.ged.GEDResult`. Must be picklable
        (a module-level function or a ``functools.partial`` of one) to run on processes or Dask.
    symmetric : bool
        ``func(G1, G2) == func(G2, G1)``: only one triangle of a pairwise matrix is computed.
    similarity : bool
        Larger values mean more alike (``top_k`` ranks descending); otherwise a distance.
    name : str
        Shown in progress bars and results.
    """

    func: Callable[[nx.Graph, nx.Graph], object]
    symmetric: bool = False
    similarity: bool = False
    name: str = ""

    blockable = True

    def prepare(self, rows: list[nx.Graph], cols: list[nx.Graph] | None) -> tuple:
        return (rows, rows if cols is None else cols)

    def block(self, state: tuple, r: np.ndarray, c: np.ndarray, upper: bool):
        rows, cols = state
        values = np.full((len(r), len(c)), np.nan)
        exact = np.ones((len(r), len(c)), dtype=bool)
        for a, i in enumerate(r):
            for b, j in enumerate(c):
                if upper and j < i:
                    continue  # mirrored from (j, i)
                out = self.func(rows[i], cols[j])
                if hasattr(out, "distance") and hasattr(out, "optimal"):
                    values[a, b], exact[a, b] = float(out.distance), bool(out.optimal)
                else:
                    values[a, b] = float(out)
        return values, exact


@dataclass(frozen=True)
class _WLMetric:
    """Normalised WL kernel through the explicit feature map: blocks are sparse products."""

    n_iter: int = 5
    normalize: bool = True
    name: str = "wl"
    symmetric = True
    similarity = True
    blockable = True

    def prepare(self, rows: list[nx.Graph], cols: list[nx.Graph] | None) -> tuple:
        phi, _, tables = wl_features(check_graphs(rows), self.n_iter)
        diag = np.asarray(phi.multiply(phi).sum(axis=1)).ravel()
        if cols is None:
            return phi, diag, phi, diag
        # Rows are the dataset the map is fitted on, columns the queries, whose unseen patterns
        # count only in their own norms, as in GraphKernel("wl").fit(dataset).transform(queries).
        psi, norms, _ = wl_features(check_graphs(cols), self.n_iter, tables)
        return phi, diag, psi, norms

    def block(self, state: tuple, r: np.ndarray, c: np.ndarray, upper: bool):
        phi, diag, psi, norms = state
        values = (phi[r] @ psi[c].T).toarray()
        if self.normalize:
            normalize_gram(values, diag[r], norms[c])
        return values, np.ones(values.shape, dtype=bool)


@dataclass(frozen=True)
class _GramMetric:
    """A GraKeL kernel whose Gram matrix is defined over the whole dataset: one block."""

    kind: str
    params: dict = field(default_factory=dict)
    name: str = ""
    symmetric = True
    similarity = True
    blockable = False

    def prepare(self, rows: list[nx.Graph], cols: list[nx.Graph] | None) -> tuple:
        return (rows, cols)

    def block(self, state: tuple, r: np.ndarray, c: np.ndarray, upper: bool):
        from graphs.kernels import GraphKernel

        rows, cols = state
        kernel = GraphKernel(self.kind, **self.params)
        if cols is None:
            values = kernel.fit_transform(rows)
        else:
            # rows are the fitted dataset: transform puts the queries in rows, so transpose.
            values = kernel.fit(rows).transform(cols).T
        return values, np.ones(values.shape, dtype=bool)


@dataclass(frozen=True)
class _DMeasureMetric:
    """D-measure (graphs.dmeasure): each graph's signature once, blocks vectorised over pairs."""

    params: dict = field(default_factory=dict)
    name: str = "dmeasure"
    symmetric = True
    similarity = False
    blockable = True

    def prepare(self, rows: list[nx.Graph], cols: list[nx.Graph] | None) -> tuple:
        from graphs.dmeasure import DMeasureSignature

        iterations = self.params.get("alpha_iterations")
        weight = self.params.get("weight", "weight")

        def signatures(graphs):
            # The D-measure is defined on undirected networks; a DiGraph (a glycan) is read
            # without its directions, as the kernels read it.
            return [
                DMeasureSignature.from_graph(
                    g.to_undirected(as_view=True) if g.is_directed() else g,
                    alpha_iterations=iterations, weight=weight,
                )
                for g in graphs
            ]

        sig_rows = signatures(rows)
        return sig_rows, sig_rows if cols is None else signatures(cols)

    def block(self, state: tuple, r: np.ndarray, c: np.ndarray, upper: bool):
        from graphs.dmeasure import d_measure_matrix

        sig_rows, sig_cols = state
        values = d_measure_matrix(
            [sig_rows[i] for i in r], others=[sig_cols[j] for j in c], **self.params
        )
        return values, np.ones(values.shape, dtype=bool)


def _ged_pair(g1: nx.Graph, g2: nx.Graph, params: dict) -> object:
    from graphs.ged import graph_edit_distance

    return graph_edit_distance(g1, g2, **params)


def metric_names() -> list[str]:
    """Names accepted as ``metric``: ``"ged"``, ``"dmeasure"`` and the kinds of :data:`KERNELS`."""
    from graphs.kernel_kinds import KERNELS

    return ["ged", "dmeasure", *KERNELS]


def _resolve(metric: object, params: dict | None, symmetric: bool | None):
    params = dict(params or {})
    if isinstance(metric, str):
        if metric == "ged":
            import graphs.ged  # noqa: F401  (fail here, not in the first block, if absent)
            from graphs.costs import ChemicalCosts, UniformCosts

            # GED(G1, G2) = GED(G2, G1) needs symmetric substitution costs and one price for deleting
            # and inserting each element (graphs.ged_bounds, "Metric"): true of these two models. Other
            # costs (CallableCosts, own models) may charge insertions and deletions differently, so
            # both orders of a pair are computed (mirroring gave the lower triangle wrong values).
            costs = params.get("costs")
            proven = costs is None or type(costs) in (ChemicalCosts, UniformCosts)
            resolved = PairMetric(partial(_ged_pair, params=params), symmetric=proven, name="ged")
        elif metric == "dmeasure":
            bad = set(params) - {"weights", "alpha_iterations", "weight"}
            if bad:
                raise InputError(
                    f"dmeasure has no parameter(s) {sorted(bad)}; valid: alpha_iterations, weight, weights"
                )
            resolved = _DMeasureMetric(params)
        elif metric in metric_names():
            from graphs.kernels import GraphKernel

            kernel = GraphKernel(metric, **params)  # validates the parameters
            if kernel.explicit:
                resolved = _WLMetric(kernel.params.get("n_iter", 5), kernel.normalize)
            else:
                resolved = _GramMetric(metric, params, name=metric)
        else:
            raise UnknownMetricError(
                f"unknown metric {metric!r}; known: {', '.join(metric_names())}, or a callable "
                "(G1, G2) -> float"
            )
    elif isinstance(metric, PairMetric):
        resolved = metric
    elif callable(metric):
        resolved = PairMetric(metric, name=getattr(metric, "__name__", "callable"))
    else:
        raise InputTypeError(
            f"metric must be a name, a PairMetric or a callable, got {type(metric).__name__}"
        )
    if params and not isinstance(metric, str):
        raise InputError("metric_params apply to named metrics; bind a callable's options yourself")
    if symmetric is not None:
        if not isinstance(resolved, PairMetric):
            raise InputError(f"symmetric= applies to pair metrics, not to kernel {metric!r}")
        resolved = PairMetric(resolved.func, symmetric, resolved.similarity, resolved.name)
    return resolved


def _tiles(n_rows: int, n_cols: int, size: int, upper: bool) -> list[tuple]:
    starts_r, starts_c = range(0, n_rows, size), range(0, n_cols, size)
    return [
        (np.arange(i, min(i + size, n_rows)), np.arange(j, min(j + size, n_cols)), upper and i == j)
        for i in starts_r
        for j in starts_c
        if not upper or j >= i
    ]


def _run_tile(metric, state, tile):
    rows, cols, upper = tile
    return tile, metric.block(state, rows, cols, upper)


def _pairs(tile) -> int:
    """Pairs a tile computes: its upper triangle on the diagonal of a symmetric matrix, else all."""
    rows, cols, upper = tile
    return len(rows) * (len(rows) + 1) // 2 if upper else len(rows) * len(cols)


def _execute(metric, state, tiles, *, n_jobs: int, client, progress: bool | None) -> Iterator:
    """Yield ``(tile, (values, exact))`` as tiles finish, serially, on joblib or on Dask."""
    from tqdm.auto import tqdm

    # counted in pairs, not blocks: a query over a whole dataset can be a handful of large blocks
    bar = tqdm(
        total=sum(_pairs(t) for t in tiles),
        desc=metric.name or "metric",
        unit="pairs",
        disable=None if progress is None else not progress,
        leave=False,
    )
    try:
        if client is not None:
            from dask.distributed import as_completed

            # Graphs and features travel once per worker, not once per block.
            [state_future] = client.scatter([state], broadcast=True, hash=False)
            futures = [client.submit(_run_tile, metric, state_future, t, pure=False) for t in tiles]
            try:
                for future in as_completed(futures):
                    tile, out = future.result()
                    yield tile, out
                    bar.update(_pairs(tile))
            finally:
                client.cancel([*futures, state_future])
        elif n_jobs != 1 and len(tiles) > 1:
            from joblib import Parallel, delayed

            run = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
            for tile, out in run(delayed(_run_tile)(metric, state, t) for t in tiles):
                yield tile, out
                bar.update(_pairs(tile))
        else:
            for t in tiles:
                yield _run_tile(metric, state, t)
                bar.update(_pairs(t))
    finally:
        bar.close()


def _check_block(block: int | None, metric, n: int) -> int:
    """Rows (and columns) per block: ``block``, the metric's default, or ``n`` for a metric computed as one block."""
    if not metric.blockable:
        if block is not None:
            # silently running one block instead would hide that the setting did nothing
            raise InputError(f"block={block!r} does not apply to metric {metric.name!r}: GraKeL computes its Gram "
                             "matrix in one call over the whole dataset (relabelling and hashing are shared across "
                             "all graphs), so it is not cut into blocks; leave block unset (blocks apply to "
                             "'wl' on its explicit backend, 'dmeasure', 'ged' and callables)")
        return n
    if block is None:
        return _PRODUCT_BLOCK if isinstance(metric, _WLMetric) else _PAIR_BLOCK
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise InputError(f"block must be a positive integer, got {block!r}")
    return int(block)


def _warn_inexact(exact: np.ndarray, name: str) -> None:
    n_bad = int((~exact).sum())
    if n_bad:
        warnings.warn(
            f"{n_bad} of {exact.size} {name} values are bounds, not proven optimal (pass "
            "return_exact=True for the mask, or give the solver more time)",
            NonOptimalWarning,
            stacklevel=3,
        )


def pairwise(
    graphs: Sequence[nx.Graph],
    metric: str | PairMetric | Callable,
    *,
    metric_params: dict | None = None,
    symmetric: bool | None = None,
    n_jobs: int = 1,
    client=None,
    block: int | None = None,
    progress: bool | None = None,
    return_exact: bool = False,
    out: str | os.PathLike | None = None,
    knn: int | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray] | dict:
    """Matrix of a metric between all pairs of ``graphs``, in memory or out of core.

    Parameters
    ----------
    graphs : sequence of networkx graphs
        The dataset (at least one graph).
    metric : str, PairMetric or callable
        See the module docstring; names are listed by :func:`metric_names`.
    metric_params : dict, optional
        Keyword arguments of the named metric (GED options or kernel parameters).
    symmetric : bool, optional
        Override whether a pair metric is symmetric (``"ged"`` is symmetric under the default
        :class:`~graphs.costs.ChemicalCosts` and under :class:`~graphs.costs.UniformCosts`, and
        computed in both orders under other costs; a bare callable is assumed not symmetric).
    n_jobs : int
        Local worker processes (joblib) when no ``client`` is given; ``-1`` for all cores.
    client : dask.distributed.Client, optional
        Run the blocks on this cluster.
    block : int, optional
        Rows (and columns) per block, the unit of work: 32 for pair metrics, 2048 for the WL
        feature products by default. Refused for the GraKeL kernels other than ``"wl"``, which are
        computed as one block.
    progress : bool, optional
        Show a tqdm bar (in pairs computed) on stderr; by default only when stderr is a terminal.
    return_exact : bool
        Also return a boolean matrix, False where a value is a bound (GED not proven optimal).
    out : path, optional
        Write the matrix block by block to this ``.npy`` file (memory-mapped; its mask of proven
        values beside it, ``*.exact.npy``), resumably: run the same call again after a crash and
        the finished blocks are skipped (:mod:`graphs.blockstore`). The result is then the
        read-only memory map, never a matrix in memory.
    knn : int, optional
        With ``out=PATH.npz``: keep only the ``knn`` nearest other graphs of every graph (most
        similar, for kernels), merged block by block; returns a dict with ``indices``, ``scores``
        and ``exact``, each of shape (n, knn), best first, ties by index. The dense matrix is never
        held.

    Returns
    -------
    numpy.ndarray, shape (n, n)
        ``M[i, j] = metric(graphs[i], graphs[j])`` (float64); for kernels, the normalised Gram
        matrix, equal to ``GraphKernel(kind).fit_transform(graphs)``. GED under symmetric costs
        (the default, ``ChemicalCosts``, ``UniformCosts``) is computed for ``i < j`` and mirrored:
        where the value is a bound, not proven (``return_exact``), ``M[j, i]`` is the bound found
        for ``(i, j)``, which may differ from the bound a search from ``graphs[j]`` finds (both bound
        the same distance).
    numpy.ndarray of bool, shape (n, n)
        Only with ``return_exact``.
    dict
        Only with ``knn`` (see above).

    Raises
    ------
    UnknownMetricError
        ``metric`` is a name that is not known.
    EmptyDatasetError
        ``graphs`` is empty.

    Warns
    -----
    NonOptimalWarning
        Some values are bounds (and ``return_exact`` is False).

    Example
    -------
    >>> import networkx as nx
    >>> gs = [nx.path_graph(n) for n in (2, 3)]
    >>> pairwise(gs, lambda a, b: abs(len(a) - len(b))).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    graphs = check_graphs(graphs, "graphs", kernel=False)
    named = isinstance(metric, str)
    metric = _resolve(metric, metric_params, symmetric)
    n = len(graphs)
    state = metric.prepare(graphs, None)
    size = _check_block(block, metric, n)
    triangle = metric.symmetric and metric.blockable
    tiles = _tiles(n, n, size, triangle)
    if knn is not None and out is None:
        raise InputError("knn=k writes a nearest-neighbour graph: give out=PATH.npz as well")
    if out is not None:
        return _pairwise_out(graphs, metric, metric_params, named, state, tiles, size, triangle, out,
                             knn, return_exact, n_jobs=n_jobs, client=client, progress=progress)
    values = np.full((n, n), np.nan)
    exact = np.ones((n, n), dtype=bool)
    for (r, c, upper), (v, e) in _execute(
        metric, state, tiles, n_jobs=n_jobs, client=client, progress=progress
    ):
        keep = np.triu(np.ones(v.shape, dtype=bool)) if upper else np.ones(v.shape, dtype=bool)
        sub_v, sub_e = values[np.ix_(r, c)], exact[np.ix_(r, c)]
        sub_v[keep], sub_e[keep] = v[keep], e[keep]
        values[np.ix_(r, c)], exact[np.ix_(r, c)] = sub_v, sub_e
    if triangle:
        lower = np.tril_indices(n, -1)
        values[lower] = values.T[lower]
        exact[lower] = exact.T[lower]
    if return_exact:
        return values, exact
    _warn_inexact(exact, metric.name)
    return values


def _pairwise_out(graphs, metric, metric_params, named, state, tiles, size, triangle, out, knn,
                  return_exact, **execute):
    """:func:`pairwise` into a resumable on-disk store (:mod:`graphs.blockstore`)."""
    from graphs.blockstore import KnnStore, MatrixStore, dataset_fingerprint, metric_fingerprint, params_fingerprint

    n = len(graphs)
    key = {"dataset": dataset_fingerprint(graphs), "metric": metric.name or repr(metric),
           "params": params_fingerprint(metric_params), "block": size, "n": n}
    if not named:  # a user's callable is known by its name only: add what it computes
        key["code"] = metric_fingerprint(metric.func)
    if knn is None:
        store = MatrixStore(out, n, key, len(tiles))
    else:
        store = KnnStore(out, n, knn, metric.similarity, key, len(tiles))
    ids = {(int(r[0]), int(c[0])): i for i, (r, c, _) in enumerate(tiles)}
    todo = [t for i, t in enumerate(tiles) if not store.done[i]]
    inexact = 0
    for (r, c, upper), (v, e) in _execute(metric, state, todo, **execute):
        keep = np.triu(np.ones(v.shape, dtype=bool)) if upper else np.ones(v.shape, dtype=bool)
        inexact += int((keep & ~e).sum())
        store.write(ids[int(r[0]), int(c[0])], r, c, upper, triangle, v, e)
    if knn is not None:
        with np.load(out) as saved:
            result = {name: saved[name] for name in ("indices", "scores", "exact")}
        if not return_exact:
            _warn_inexact(result["exact"], metric.name)
        return result
    values = np.load(out, mmap_mode="r")
    if return_exact:
        return values, np.load(store.exact_path, mmap_mode="r")
    if inexact:
        warnings.warn(f"{inexact} {metric.name} values written by this run are bounds, not proven "
                      f"optimal; their mask is {store.exact_path}", NonOptimalWarning, stacklevel=3)
    return values


@dataclass(frozen=True)
class TopK:
    """The ``k`` graphs of a dataset closest to a query, best first.

    Attributes
    ----------
    indices : numpy.ndarray of int
        Positions in the dataset.
    scores : numpy.ndarray of float
        Metric values (a distance: ascending; a similarity: descending). Ties keep dataset order.
    exact : numpy.ndarray of bool
        False where a score is a bound (GED not proven optimal).
    metric : str
        Name of the metric.
    similarity : bool
        Whether larger scores mean more alike.
    """

    indices: np.ndarray
    scores: np.ndarray
    exact: np.ndarray
    metric: str
    similarity: bool


def top_k(
    query: nx.Graph,
    graphs: Sequence[nx.Graph],
    metric: str | PairMetric | Callable,
    k: int = 10,
    *,
    metric_params: dict | None = None,
    n_jobs: int = 1,
    client=None,
    block: int | None = None,
    progress: bool | None = None,
    exact: bool = True,
    time_budget: float | None = None,
) -> TopK:
    """The ``k`` graphs most similar to ``query`` (all of them if ``k`` exceeds the dataset).

    ``graphs`` may also be a :class:`graphs.index.GraphIndex`: the query then goes to
    :func:`graphs.search.index_top_k` (``"ged"`` certified by filter-and-verify, or ``"wl"``), which
    reads ``exact`` and ``time_budget`` and ignores the options of the plain path; on a sequence of
    graphs ``exact`` and ``time_budget`` are refused (use ``metric_params``).

    Parameters
    ----------
    query : networkx graph
    graphs : sequence of networkx graphs
        The dataset (at least one graph).
    metric, metric_params, n_jobs, client, block, progress
        As in :func:`pairwise`; a pair metric is called as ``metric(query, G)``.
    k : int
        Number of results (at least 1).

    Returns
    -------
    TopK

    Notes
    -----
    Kernels are fitted on the dataset and the query transformed, as
    ``GraphKernel(kind).fit(graphs).transform([query])``. With ``"wl"`` this is one sparse
    product of the dataset's feature matrix with the query's feature vector: no N x N matrix.
    Results that are bounds raise a :class:`NonOptimalWarning` and are marked in ``exact``; their
    rank is provisional.

    Raises
    ------
    UnknownMetricError, EmptyDatasetError, InputError
        Unknown metric, empty dataset, ``k < 1``, ``exact`` or ``time_budget`` on a sequence of graphs.
    """
    from graphs.index import GraphIndex

    if isinstance(graphs, GraphIndex):
        from graphs.search import index_top_k

        if metric_params:
            raise InputError("metric_params do not apply to an index: its settings are fixed at build")
        return index_top_k(query, graphs, metric, k, exact=exact, time_budget=time_budget)
    if exact is not True or time_budget is not None:
        # the plain path has no certified search to steer: ignoring them would hide that
        raise InputError("exact= and time_budget= apply to a GraphIndex (the certified search); on a list of graphs "
                         "set the GED's method and timeout through metric_params, e.g. "
                         "{'method': 'bipartite', 'timeout': 1.0}")
    if not isinstance(query, nx.Graph):
        raise InputTypeError(f"query must be a networkx graph, got {type(query).__name__}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    graphs = check_graphs(graphs, "graphs", kernel=False)
    metric = _resolve(metric, metric_params, None)
    n = len(graphs)
    if isinstance(metric, PairMetric):
        # One row: the query; columns: the dataset.
        state = metric.prepare([query], graphs)
        tiles = _tiles(1, n, _check_block(block, metric, n), False)
    else:
        # Kernels: the dataset is fitted (rows), the query transformed (one column).
        state = metric.prepare(graphs, [query])
        size = _check_block(block, metric, n)
        tiles = [(r, np.arange(1), False) for r, _, _ in _tiles(n, 1, size, False)]
    scores = np.full(n, np.nan)
    exact = np.ones(n, dtype=bool)
    for (r, c, _), (v, e) in _execute(
        metric, state, tiles, n_jobs=n_jobs, client=client, progress=progress
    ):
        if isinstance(metric, PairMetric):
            scores[c], exact[c] = v[0], e[0]
        else:
            scores[r], exact[r] = v[:, 0], e[:, 0]
    key = -scores if metric.similarity else scores
    order = np.lexsort((np.arange(n), key, np.isnan(key)))[:k]
    _warn_inexact(exact[order], metric.name)
    return TopK(order, scores[order], exact[order], metric.name, metric.similarity)
