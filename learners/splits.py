"""Train/validation/test splits and k-fold cross-validation: random, stratified, and by graph group.

The splitting is scikit-learn's (``train_test_split``, ``GroupShuffleSplit``, ``KFold``,
``StratifiedKFold``, ``GroupKFold``, ``StratifiedGroupKFold``), seeded by a local
``numpy.random.RandomState(seed)``; this module adds validation of our inputs, exact part sizes
from fractions, multi-part splits (train/validation/test) and :func:`graph_groups`, which sklearn
lacks. Group splits keep every member of a group on one side, so that a model is tested on
structures it has not seen in another guise: :func:`graph_groups` groups isomorphic graphs (one
glycan written with its branches in another order) or, scaffold-like, glycans that share their core
(the residues within ``core_depth`` bonds of the reducing end).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import warnings

import networkx as nx
import numpy as np
from sklearn import model_selection as skms

from learners.errors import InputError

__all__ = ["random_split", "stratified_split", "group_split", "graph_groups", "kfold"]


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    f = np.asarray(fractions, dtype=float)
    if f.ndim != 1 or len(f) < 2 or (f < 0).any() or f[0] <= 0:
        raise InputError(f"fractions must be >= 2 non-negative numbers with a positive first one, got {fractions!r}")
    if not np.isclose(f.sum(), 1.0):
        raise InputError(f"fractions must sum to 1, got {fractions!r} (sum {f.sum()})")
    return f / f.sum()


def _random_state(seed: int) -> np.random.RandomState:
    # A local generator for sklearn (which takes RandomState, not Generator); never the global one.
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise InputError(f"seed must be an int in [0, 2**32), got {seed!r}")
    return np.random.RandomState(int(seed))


def _sizes(total: int, fractions: np.ndarray) -> np.ndarray:
    """Part sizes summing to ``total``: the rounded cumulative fractions, differenced."""
    return np.diff(np.rint(np.cumsum(fractions) * total).astype(int), prepend=0)


def _peel(n: int, sizes: np.ndarray, take: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
          ) -> tuple[np.ndarray, ...]:
    """Parts of ``sizes`` peeled off ``range(n)`` in turn; ``take(rest, size) -> (part, remainder)``."""
    rest, parts = np.arange(n), []
    for size in sizes[:-1]:
        if size == 0 or size == len(rest):
            part, rest = rest[:size], rest[size:]
        else:
            part, rest = take(rest, int(size))
        parts.append(part)
    return tuple(np.sort(p) for p in [*parts, rest])


def random_split(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), *, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Shuffle ``range(n)`` and cut it into parts of the given fractions (sorted index arrays).

    Part ``k`` holds ``round(n (f_0 + ... + f_k)) - round(n (f_0 + ... + f_{k-1}))`` items.

    Example
    -------
    >>> train, val, test = random_split(10, (0.6, 0.2, 0.2), seed=108)
    >>> len(train), len(val), len(test)
    (6, 2, 2)
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive int, got {n!r}")
    rs = _random_state(seed)
    return _peel(n, _sizes(n, _check_fractions(fractions)),
                 lambda rest, size: tuple(skms.train_test_split(rest, train_size=size, random_state=rs)))


def stratified_split(y: Sequence[Any], fractions: Sequence[float] = (0.8, 0.1, 0.1), *, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Split so that every part keeps the class proportions of ``y`` (``train_test_split(stratify=y)``
    part after part, with the part sizes of :func:`random_split`).

    Raises
    ------
    InputError
        If ``y`` is empty, a class has a single member (it cannot be on both sides), or a part is
        too small for the classes left to stratify (sklearn's message says which).
    """
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise InputError(f"y must be a non-empty 1-D array of class labels, got shape {y.shape}")
    f = _check_fractions(fractions)
    classes, counts = np.unique(y, return_counts=True)
    if (counts < 2).any():
        lonely = classes[counts < 2].tolist()
        raise InputError(f"stratified split needs >= 2 members per class; classes with one member: {lonely[:10]}")
    rs = _random_state(seed)

    def take(rest, size):
        try:
            return tuple(skms.train_test_split(rest, train_size=size, test_size=len(rest) - size,
                                               stratify=y[rest], random_state=rs))
        except ValueError as err:
            raise InputError(f"cannot stratify {len(y)} items of {len(classes)} classes into fractions "
                             f"{tuple(fractions)}: {err}") from None

    return _peel(len(y), _sizes(len(y), f), take)


def group_split(groups: Sequence[Any], fractions: Sequence[float] = (0.8, 0.1, 0.1), *, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Split whole groups: items sharing a group label land in the same part.

    ``fractions`` are of the groups (``GroupShuffleSplit``, part after part, with the part sizes of
    :func:`random_split` counted in groups), so the parts' sizes in items follow the groups' sizes.
    """
    groups = np.asarray(groups)
    if len(groups) == 0:
        raise InputError("groups is empty")
    f = _check_fractions(fractions)
    labels, inverse = np.unique(groups, return_inverse=True)
    rs = _random_state(seed)
    rest, parts = np.arange(len(groups)), []
    for size in _sizes(len(labels), f)[:-1]:  # sizes in groups
        left = len(np.unique(inverse[rest]))
        if size in (0, left):
            part, rest = (rest, rest[:0]) if size else (rest[:0], rest)
        else:
            splitter = skms.GroupShuffleSplit(n_splits=1, train_size=int(size), test_size=int(left - size),
                                              random_state=rs)
            taken, remainder = next(splitter.split(rest, groups=inverse[rest]))
            part, rest = rest[taken], rest[remainder]
        parts.append(part)
    return tuple(np.sort(p) for p in [*parts, rest])


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

    Shuffled, seeded scikit-learn splitters: ``StratifiedKFold`` (``stratified``, ``y`` class
    labels), ``KFold``, and with ``groups`` ``StratifiedGroupKFold`` or ``GroupKFold``, which keep
    each group in one fold.
    """
    y = np.asarray(y)
    n = len(y)
    if not isinstance(k, int) or k < 2:
        raise InputError(f"k must be an int >= 2, got {k!r}")
    if n < k:
        raise InputError(f"cannot make {k} folds from {n} items")
    rs = _random_state(seed)
    if groups is not None:
        groups = np.asarray(groups)
        if len(groups) != n:
            raise InputError(f"got {len(groups)} group labels for {n} items")
        n_groups = len(np.unique(groups))
        if n_groups < k:
            raise InputError(f"cannot make {k} folds from {n_groups} groups")
        splitter = (skms.StratifiedGroupKFold if stratified else skms.GroupKFold)(k, shuffle=True, random_state=rs)
    else:
        splitter = (skms.StratifiedKFold if stratified else skms.KFold)(k, shuffle=True, random_state=rs)
    return [(np.sort(tr), np.sort(te)) for tr, te in splitter.split(np.zeros(n), y, groups)]
