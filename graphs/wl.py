"""The explicit Weisfeiler-Lehman subtree feature map, vectorised, and kernel normalisation.

The computation behind :class:`graphs.kernels.WLFeatureMap` (the scikit-learn transformer) and
behind the WL features of :class:`graphs.index.GraphIndex`. It imports numpy and scipy.sparse
only: a query against a persisted index never pays for scikit-learn's import (about 0.9 s).

Relabelling is vectorised: nodes are grouped by degree, each group's (label, sorted neighbour
labels) rows are compressed with ``np.unique``, and new graphs are matched to the fitted
patterns with ``np.searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse as sp

from graphs.validation import node_values

__all__ = ["wl_features", "normalize_gram"]


@dataclass
class _GraphArrays:
    """A list of graphs as one disjoint union: node labels and neighbour lists in CSR."""

    labels: np.ndarray  # (n_nodes,) str
    graph_of_node: np.ndarray  # (n_nodes,) int64
    indptr: np.ndarray  # (n_nodes + 1,) int64
    neighbors: np.ndarray  # (n_entries,) int64, global node ids
    n_graphs: int


def _graph_arrays(graphs: list[nx.Graph]) -> _GraphArrays:
    labels: list[str] = []
    sizes = np.empty(len(graphs), dtype=np.int64)
    edge_parts = []
    offset = 0
    for i, g in enumerate(graphs):
        index = dict(zip(g, range(len(g))))
        # Labels compare as text: DESIGN.md makes node "label" a str.
        labels.extend(str(v) for v in node_values(g, i, "label"))
        if g.number_of_edges():
            edge_parts.append(
                np.array([(index[u], index[v]) for u, v in g.edges()], dtype=np.int64) + offset
            )
        sizes[i] = len(index)
        offset += len(index)
    edges = np.concatenate(edge_parts) if edge_parts else np.empty((0, 2), np.int64)
    # Kernels see every graph as undirected, as reprs.convert.to_grakel gives them to GraKeL:
    # both directions of each edge, once (a DiGraph's u->v and v->u merge, a self-loop stays
    # single), as the keys of GraKeL's edge dictionary. Sorted keys also give the CSR order.
    both = np.concatenate([edges, edges[:, ::-1]])
    keys = np.unique(both[:, 0] * offset + both[:, 1])
    src, dst = np.divmod(keys, max(offset, 1))
    indptr = np.zeros(offset + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=offset), out=indptr[1:])
    return _GraphArrays(
        labels=np.array(labels, dtype=str),
        graph_of_node=np.repeat(np.arange(len(graphs), dtype=np.int64), sizes),
        indptr=indptr,
        neighbors=dst,
        n_graphs=len(graphs),
    )


def _sortable(*blocks: np.ndarray) -> list[np.ndarray]:
    """1-D keys whose order is the lexicographic order of the rows of the 2-D int ``blocks``.

    Rows pack into one int64 in positional notation (base: the largest entry + 1) when that
    cannot overflow, which sorts several times faster than the structured-dtype fallback. Either
    way equal rows give equal keys and the order is lexicographic, so tables sorted under one
    packing stay sorted under another.
    """
    width = blocks[0].shape[1]
    base = max((int(b.max()) for b in blocks if b.size), default=0) + 1
    if base**width < 2**62:
        packed = []
        for b in blocks:
            key = np.zeros(len(b), dtype=np.int64)
            for col in range(width):
                key = key * base + b[:, col]
            packed.append(key)
        return packed
    dtype = [(f"f{k}", np.int64) for k in range(width)]
    return [np.ascontiguousarray(b).view(dtype).ravel() for b in blocks]


def _assign_ids(
    rows: np.ndarray, known: tuple[np.ndarray, np.ndarray] | None, next_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map each row to the id of an equal known row, or to a fresh id from ``next_id`` on.

    ``rows`` is a 1-D str array (iteration 0) or a 2-D int array (one signature per row);
    ``known`` is (unique rows in sorted order, their ids). Equal new rows share one fresh id.
    Returns the ids of ``rows`` and the new unique rows (sorted) with their fresh ids.
    """
    has_known = known is not None and len(known[0]) > 0
    if rows.ndim == 1:
        keys, known_keys = rows, known[0] if has_known else None
    else:
        keys, *rest = _sortable(rows, *([known[0]] if has_known else []))
        known_keys = rest[0] if has_known else None
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    ids = np.empty(len(uniq), dtype=np.int64)
    found = np.zeros(len(uniq), dtype=bool)
    if has_known:
        pos = np.minimum(np.searchsorted(known_keys, uniq), len(known_keys) - 1)
        found = known_keys[pos] == uniq
        ids[found] = known[1][pos[found]]
    fresh = np.arange(next_id, next_id + int((~found).sum()), dtype=np.int64)
    ids[~found] = fresh
    return ids[inverse.ravel()], rows[first[~found]], fresh


def _signature_rows(labels: np.ndarray, indptr: np.ndarray, sorted_nbr: np.ndarray, nodes, d):
    """(label, sorted neighbour labels) of the nodes of degree ``d``, one row each."""
    rows = np.empty((len(nodes), d + 1), dtype=np.int64)
    rows[:, 0] = labels[nodes]
    if d:
        rows[:, 1:] = sorted_nbr[indptr[nodes][:, None] + np.arange(d)]
    return rows


def wl_features(
    graphs: list[nx.Graph], n_iter: int, tables: list | None = None
) -> tuple[sp.csr_matrix, np.ndarray, list]:
    """Weisfeiler-Lehman subtree pattern counts of ``graphs``, fitting the pattern tables or using them.

    Iteration 0 counts node labels; iteration ``h`` gives each node the pair (its label at
    ``h-1``, the sorted multiset of its neighbours' labels at ``h-1``), compressed to an integer
    per distinct pair, and counts those (Shervashidze et al., JMLR 12, 2539, 2011).

    Parameters
    ----------
    graphs : list of networkx graphs
        Already checked (:func:`graphs.validation.check_graphs`); nodes need a ``"label"``.
    n_iter : int
        Relabelling iterations; ``n_iter + 1`` blocks of columns.
    tables : list or None
        The pattern tables of a fit (the third value returned by a call without ``tables``), one
        ``(table, size)`` per iteration, ``table`` mapping a degree (None at iteration 0) to the
        sorted known signatures and their ids. None fits them on ``graphs``.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_graphs, n_patterns)
        Counts (float64) of the fitted patterns; patterns unseen in the fit get no column.
    numpy.ndarray, shape (n_graphs,)
        Each graph's squared norm over all its patterns, fitted or not (the kernel diagonal).
    list
        The tables (new ones when fitting, else ``tables`` itself).
    """
    fit = tables is None
    if fit:
        tables = []
    arrays = _graph_arrays(graphs)
    n_nodes = len(arrays.labels)
    degree = np.diff(arrays.indptr)
    row = np.repeat(np.arange(n_nodes), degree)
    degrees = np.unique(degree)
    blocks, norms = [], np.zeros(arrays.n_graphs)
    labels = None
    for h in range(n_iter + 1):
        table, size = tables[h] if not fit else ({}, 0)
        new_labels = np.empty(n_nodes, dtype=np.int64)
        if h == 0:
            groups = [(None, np.arange(n_nodes), arrays.labels)]
        else:
            # Sort neighbour labels within each node's CSR slice: one sort of row * L + label.
            span = np.int64(labels.max() + 1)
            sorted_nbr = np.sort(row * span + labels[arrays.neighbors]) - row * span
            groups = []
            for d in degrees:
                nodes = np.flatnonzero(degree == d)
                keys = _signature_rows(labels, arrays.indptr, sorted_nbr, nodes, int(d))
                groups.append((int(d), nodes, keys))
        next_id = size
        for d, nodes, keys in groups:
            ids, new_keys, new_ids = _assign_ids(keys, table.get(d), next_id)
            new_labels[nodes] = ids
            next_id += len(new_ids)
            if fit:
                table[d] = (new_keys, new_ids)
        if fit:
            size = next_id
            tables.append((table, size))
        labels = new_labels
        counts = sp.csr_matrix(
            (np.ones(n_nodes), (arrays.graph_of_node, labels)),
            shape=(arrays.n_graphs, max(next_id, size)),
        )
        norms += np.asarray(counts.multiply(counts).sum(axis=1)).ravel()
        blocks.append(counts[:, :size])
    return sp.hstack(blocks, format="csr"), norms, tables


def normalize_gram(k: np.ndarray, diag_rows: np.ndarray, diag_cols: np.ndarray) -> np.ndarray:
    """Cosine-normalise a kernel block in place: ``k / sqrt(outer(diag_rows, diag_cols))``.

    GraKeL's expression, so values agree to the last bit. For diagonals that are never 0 (WL:
    every graph has a node); avoids GraKeL's extra N x N temporaries.

    Parameters
    ----------
    k : numpy.ndarray of float64, shape (n, m)
        Unnormalised kernel values, overwritten.
    diag_rows, diag_cols : numpy.ndarray, shapes (n,) and (m,)
        ``k(G, G)`` of the row and column graphs.
    """
    scale = np.outer(diag_rows, diag_cols)
    np.sqrt(scale, out=scale)
    return np.divide(k, scale, out=k)
