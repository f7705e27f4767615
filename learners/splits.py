"""Train/validation/test splits and k-fold cross-validation: random, stratified, and by graph group.

Group splits keep every member of a group on one side, so that a model is tested on structures
it has not seen in another guise: :func:`graph_groups` groups isomorphic graphs (one glycan
written with its branches in another order) or, scaffold-like, glycans that share their core
(the residues within ``core_depth`` bonds of the reducing end).
"""

from __future__ import annotations

from typing import Any, Sequence

import warnings

import networkx as nx
import numpy as np

from learners.errors import InputError

__all__ = ["random_split", "stratified_split", "group_split", "graph_groups", "kfold"]


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    f = np.asarray(fractions, dtype=float)
    if f.ndim != 1 or len(f) < 2 or (f < 0).any() or f[0] <= 0:
        raise InputError(f"fractions must be >= 2 non-negative numbers with a positive first one, got {fractions!r}")
    if not np.isclose(f.sum(), 1.0):
        raise InputError(f"fractions must sum to 1, got {fractions!r} (sum {f.sum()})")
    return f / f.sum()


def _cut(indices: np.ndarray, fractions: np.ndarray) -> list[np.ndarray]:
    bounds = np.rint(np.cumsum(fractions) * len(indices)).astype(int)
    return np.split(indices, bounds[:-1])


def random_split(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), *, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Shuffle ``range(n)`` and cut it into parts of the given fractions (sorted index arrays).

    Example
    -------
    >>> train, val, test = random_split(10, (0.6, 0.2, 0.2), seed=108)
    >>> len(train), len(val), len(test)
    (6, 2, 2)
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive int, got {n!r}")
    parts = _cut(np.random.default_rng(seed).permutation(n), _check_fractions(fractions))
    return tuple(np.sort(p) for p in parts)


def stratified_split(y: Sequence[Any], fractions: Sequence[float] = (0.8, 0.1, 0.1), *, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Split so that every part keeps the class proportions of ``y`` (up to rounding per class).

    Raises
    ------
    InputError
        If ``y`` is empty or a class has a single member (it cannot be on both sides).
    """
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise InputError(f"y must be a non-empty 1-D array of class labels, got shape {y.shape}")
    f = _check_fractions(fractions)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    if (counts < 2).any():
        lonely = classes[counts < 2].tolist()
        raise InputError(f"stratified split needs >= 2 members per class; classes with one member: {lonely[:10]}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in f]
    for c in range(len(classes)):
        for part, chunk in zip(parts, _cut(rng.permutation(np.flatnonzero(inverse == c)), f)):
            part.append(chunk)
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def group_split(groups: Sequence[Any], fractions: Sequence[float] = (0.8, 0.1, 0.1), *, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Split whole groups: items sharing a group label land in the same part.

    Groups are shuffled and their items laid end to end; a part ends at the first group
    boundary past its fraction of the items, so part sizes are close to, not exactly, the fractions.
    """
    groups = np.asarray(groups)
    if len(groups) == 0:
        raise InputError("groups is empty")
    f = _check_fractions(fractions)
    _, inverse = np.unique(groups, return_inverse=True)
    n_groups = inverse.max() + 1
    rank = np.empty(n_groups, dtype=int)
    rank[np.random.default_rng(seed).permutation(n_groups)] = np.arange(n_groups)
    items = np.argsort(rank[inverse], kind="stable")
    ends = np.cumsum(np.bincount(rank[inverse], minlength=n_groups))
    at = np.minimum(np.searchsorted(ends, np.cumsum(f)[:-1] * len(groups) - 1e-9), n_groups - 1)
    return tuple(np.sort(p) for p in np.split(items, ends[at]))


def _root(graph: nx.Graph) -> Any:
    if "root" in graph.graph:
        return graph.graph["root"]
    sinks = [n for n in graph if graph.is_directed() and graph.out_degree(n) == 0]
    return sinks[0] if len(sinks) == 1 else next(iter(graph))


def graph_groups(graphs: Sequence[nx.Graph], *, by: str = "hash", core_depth: int = 2) -> np.ndarray:
    """A group label per graph for :func:`group_split` / :func:`kfold`.

    Parameters
    ----------
    by : {"hash", "core"}
        ``"hash"``: the Weisfeiler-Lehman hash (networkx) of the labelled graph, so isomorphic
        graphs share a group. ``"core"`` (scaffold-like): the hash of the subgraph within
        ``core_depth`` bonds of the reducing end (``graph.graph["root"]`` of glycan graphs).

    Returns
    -------
    numpy.ndarray of str
    """
    if by not in ("hash", "core"):
        raise InputError(f"by must be 'hash' or 'core', got {by!r}")
    labels = []
    with warnings.catch_warnings():
        # networkx >= 3.5 warns that directed hashes changed between versions; groups are only
        # compared within one run, so the warning does not apply.
        warnings.filterwarnings("ignore", message="The hashes produced for directed graphs", category=UserWarning)
        for g in graphs:
            if by == "core":
                near = nx.single_source_shortest_path_length(g.to_undirected(as_view=True), _root(g), cutoff=core_depth)
                g = g.subgraph(near)
            edge_attr = "label" if g.number_of_edges() else None
            labels.append(nx.weisfeiler_lehman_graph_hash(g, node_attr="label", edge_attr=edge_attr))
    return np.asarray(labels)


def kfold(
    y: Sequence[Any], k: int = 5, *, seed: int = 0, stratified: bool = True, groups: Sequence[Any] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, test) index pairs whose test parts partition ``range(len(y))``.

    Stratified: each class's shuffled members are dealt round-robin over the folds (starting
    where the previous class stopped), so every fold keeps the class proportions. With
    ``groups``: groups, largest first (ties in seeded random order), go to the fold with the
    fewest items so far (as scikit-learn's ``GroupKFold``). Otherwise a shuffled plain k-fold.
    """
    y = np.asarray(y)
    n = len(y)
    if not isinstance(k, int) or k < 2:
        raise InputError(f"k must be an int >= 2, got {k!r}")
    if n < k:
        raise InputError(f"cannot make {k} folds from {n} items")
    rng = np.random.default_rng(seed)
    fold = np.empty(n, dtype=int)
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != n:
            raise InputError(f"got {len(groups)} group labels for {n} items")
        _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
        if len(sizes) < k:
            raise InputError(f"cannot make {k} folds from {len(sizes)} groups")
        shuffled = rng.permutation(len(sizes))
        load = np.zeros(k, dtype=int)
        group_fold = np.empty(len(sizes), dtype=int)
        for g in shuffled[np.argsort(-sizes[shuffled], kind="stable")]:
            group_fold[g] = int(np.argmin(load))
            load[group_fold[g]] += sizes[g]
        fold = group_fold[inverse]
    elif stratified:
        _, inverse = np.unique(y, return_inverse=True)
        offset = 0
        for c in range(inverse.max() + 1):
            members = rng.permutation(np.flatnonzero(inverse == c))
            fold[members] = (offset + np.arange(len(members))) % k
            offset = (offset + len(members)) % k
    else:
        fold[rng.permutation(n)] = np.arange(n) % k
    return [(np.flatnonzero(fold != i), np.flatnonzero(fold == i)) for i in range(k)]
