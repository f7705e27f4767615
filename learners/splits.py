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

import networkx as nx
import numpy as np
from sklearn import model_selection as skms

from learners.errors import InputError

__all__ = ["random_split", "stratified_split", "group_split", "graph_groups", "kfold", "cluster_split",
           "check_split_labels", "write_split_file", "read_split_file", "PARTS"]

#: Names of the parts in split files, in order.
PARTS = ("train", "val", "test")


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
        If ``y`` is empty, a class has a single member (it cannot be on both sides), a class has
        too few members to leave two for the parts after the first ones (the message names it), or
        a part is too small for the classes left to stratify (sklearn's message says which).
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
    sizes = _sizes(len(y), f)

    def take(rest, size):
        # sklearn needs >= 2 members of every class in what it splits; a rare class can fall below
        # that in the remainder after the first parts, where its message ("only 1 member") names
        # neither the class's real size nor the cause.
        left_classes, left_counts = np.unique(y[rest], return_counts=True)
        if (left_counts < 2).any():
            c = left_classes[left_counts < 2][0].item()
            total = int(counts[classes == c][0])
            done = int(np.searchsorted(np.cumsum(sizes), len(y) - len(rest))) + 1
            names = [PARTS[k] if k < len(PARTS) else f"part {k}" for k in range(len(sizes))]
            need = int(np.ceil(2 / (1 - np.cumsum(f)[done - 1]) - 1e-9))
            raise InputError(
                f"cannot stratify {len(y)} items into fractions {tuple(fractions)}: class {c!r} has {total} "
                f"members, and after the {', '.join(names[:done])} part(s) {int(left_counts[left_counts < 2][0])} "
                f"is left for the {', '.join(names[done:])} part(s), which need >= 2 of every class to split. "
                f"Give every class about {need} or more members (merge or drop rare classes), or use fewer parts "
                f"or random_split") from None
        try:
            return tuple(skms.train_test_split(rest, train_size=size, test_size=len(rest) - size,
                                               stratify=y[rest], random_state=rs))
        except ValueError as err:
            raise InputError(f"cannot stratify {len(y)} items of {len(classes)} classes into fractions "
                             f"{tuple(fractions)}: {err}") from None

    return _peel(len(y), sizes, take)


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


def _root(graph: nx.Graph, index: int) -> Any:
    """The reducing end: ``graph.graph["root"]`` or the one sink of a directed tree.

    A graph without one (a molecule's) is refused: its first node, the old fallback, depends on how
    the input was written, so one molecule written twice got two "cores" and unrelated molecules
    that start alike shared one.
    """
    if "root" in graph.graph:
        return graph.graph["root"]
    sinks = [n for n in graph if graph.is_directed() and graph.out_degree(n) == 0]
    if len(sinks) != 1:
        raise InputError(f"by='core' needs rooted graphs (a glycan's reducing end, graph.graph['root']); graph {index} "
                         f"({graph.graph.get('name')!r}) has none: group such graphs by='hash'")
    return sinks[0]


def graph_groups(graphs: Sequence[nx.Graph], *, by: str = "hash", core_depth: int = 2) -> np.ndarray:
    """A group label per graph for :func:`group_split` / :func:`kfold`.

    Parameters
    ----------
    by : {"hash", "core"}
        ``"hash"``: the Weisfeiler-Lehman hash (networkx) of the labelled graph, so isomorphic
        graphs share a group; edge direction counts (``A(b1-3)B`` is not ``B(b1-3)A``). ``"core"`` (scaffold-like): the hash of the subgraph within
        ``core_depth`` bonds of the reducing end (``graph.graph["root"]`` of glycan graphs, or the
        one sink of a directed tree); graphs without one (molecules) are refused.

    Raises
    ------
    InputError
        ``by="core"`` for a graph without a reducing end.

    Returns
    -------
    numpy.ndarray of str
    """
    if by not in ("hash", "core"):
        raise InputError(f"by must be 'hash' or 'core', got {by!r}")
    labels = []
    for i, g in enumerate(graphs):
        if by == "core":
            near = nx.single_source_shortest_path_length(g.to_undirected(as_view=True), _root(g, i), cutoff=core_depth)
            g = g.subgraph(near)
        labels.append(_wl_hash(g))
    return np.asarray(labels)


def _wl_hash(graph: nx.Graph) -> str:
    """Weisfeiler-Lehman hash of a graph with node and edge ``label``s that sees edge direction.

    networkx's directed hash with edge labels drops its successor / predecessor markers (3.6: the
    ``"s_"`` / ``"p_"`` prefixes are lost to operator precedence), so ``A(b1-3)B`` and
    ``B(b1-3)A`` hashed alike and non-isomorphic glycans shared a group. A directed graph is hashed
    as its subdivision instead: each edge ``u -> v`` a node of its own (labelled with the edge's
    label) joined to ``u`` by an ``out`` edge and to ``v`` by an ``in`` edge, undirected. A DAG of
    longest path ``d`` gets ``2 d + 1`` iterations, enough for every node's colour to cover its
    whole graph (1-WL then tells non-isomorphic trees, glycans, apart); other directed graphs get
    two per node. Iterations depend only on the isomorphism class, so isomorphic graphs still hash
    alike.
    """
    if not graph.is_directed():
        edge_attr = "label" if graph.number_of_edges() else None
        return nx.weisfeiler_lehman_graph_hash(graph, node_attr="label", edge_attr=edge_attr)
    sub = nx.Graph()
    sub.add_nodes_from((("n", node), {"label": f"n:{label}"}) for node, label in graph.nodes(data="label"))
    for u, v, label in graph.edges(data="label"):
        sub.add_node(("e", u, v), label=f"e:{label}")
        sub.add_edge(("n", u), ("e", u, v), label="out")
        sub.add_edge(("e", u, v), ("n", v), label="in")
    depth = nx.dag_longest_path_length(graph) if nx.is_directed_acyclic_graph(graph) else graph.number_of_nodes()
    edge_attr = "label" if sub.number_of_edges() else None
    return nx.weisfeiler_lehman_graph_hash(sub, node_attr="label", edge_attr=edge_attr, iterations=2 * depth + 1)


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


def cluster_split(
    features: np.ndarray, *, k: int = 10, n_val: int = 1, n_test: int = 1, seed: int = 0,
    min_fraction: float = 0.02, max_fraction: float = 0.25,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Structure split after GlycanML: k-means clusters, whole clusters to validation and test.

    The rows of ``features`` (GlycanML: motif-count vectors) are clustered by scikit-learn's
    ``KMeans(k, n_init=10, random_state=seed)``; ``n_val`` clusters go to validation and ``n_test``
    to test, the rest to training, so that test glycans are structurally unlike the training ones.
    Which clusters: drawn in a seeded random order among those holding between ``min_fraction``
    and ``max_fraction`` of the rows (a cluster of half the data, or of three glycans, would make
    a useless test set); GlycanML's paper does not say how it chose (its counts, 11,010 / 1,280 /
    919 of 13,209, are 10% and 7%).

    Parameters
    ----------
    features : array, shape (n, d)
    k, n_val, n_test : int
    seed : int
        Seeds k-means and the draw of clusters.
    min_fraction, max_fraction : float
        Size window of the clusters eligible for validation and test.

    Returns
    -------
    train, val, test : numpy.ndarray
        Sorted row indices.

    Raises
    ------
    InputError
        Non-finite features, fewer rows than clusters, or fewer than ``n_val + n_test`` clusters
        in the size window.

    References
    ----------
    M. Xu et al., "GlycanML: A Multi-Task and Multi-Structure Benchmark for Glycan Machine
    Learning", ICLR 2025, arXiv:2405.16206 (section 3, dataset splits).
    """
    from sklearn.cluster import KMeans

    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise InputError(f"features must be a finite (n, d) array, got shape {x.shape}")
    for name, value in (("k", k), ("n_val", n_val), ("n_test", n_test)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{name} must be a positive int, got {value!r}")
    if n_val + n_test >= k:
        raise InputError(f"n_val + n_test = {n_val + n_test} leaves no training cluster of k = {k}")
    if len(x) < k:
        raise InputError(f"cannot make {k} clusters of {len(x)} rows")
    rs = _random_state(seed)
    labels = KMeans(n_clusters=k, n_init=10, random_state=rs).fit_predict(x)
    sizes = np.bincount(labels, minlength=k) / len(x)
    eligible = np.flatnonzero((sizes >= min_fraction) & (sizes <= max_fraction))
    if len(eligible) < n_val + n_test:
        raise InputError(
            f"only {len(eligible)} of {k} clusters hold between {min_fraction} and {max_fraction} of the rows "
            f"(cluster fractions {np.round(np.sort(sizes), 3).tolist()}); widen the window or change k"
        )
    chosen = rs.permutation(eligible)[:n_val + n_test]
    val, test = np.isin(labels, chosen[:n_val]), np.isin(labels, chosen[n_val:])
    return np.flatnonzero(~(val | test)), np.flatnonzero(val), np.flatnonzero(test)


def check_split_labels(y: Sequence[Any], parts: Sequence[np.ndarray], *, names: Sequence[str] = PARTS,
                       column: str = "label") -> None:
    """Refuse a split in which a part holds a single class (nothing to learn or to rank).

    Raises
    ------
    InputError
        Naming the part, the label column and its one class.
    """
    y = np.asarray(y)
    for name, part in zip(names, parts):
        if len(part) == 0:
            raise InputError(f"the {name} part of the split is empty")
        classes = np.unique(y[part])
        if len(classes) < 2:
            raise InputError(
                f"label column {column!r} has a single class ({classes[0]!r}) in the {name} part of the split "
                f"({len(part)} rows): a classifier cannot be trained or scored there; choose another split or seed"
            )


def write_split_file(path: Any, keys: Sequence[str], splits: dict[str, Sequence[np.ndarray]]) -> None:
    """Write splits as a (gzip-compressed when the name ends ``.gz``) CSV, atomically.

    One row per key (a glycan string, a lectin sequence...), one column per split holding
    ``train`` / ``val`` / ``test``.

    Raises
    ------
    InputError
        Duplicate keys, a split of other than three parts (train, val, test; an empty one is fine),
        or a split whose parts do not partition ``range(len(keys))``.
    """
    import gzip

    import pandas as pd

    from reprs.fileio import atomic_write

    keys = list(keys)
    if len(set(keys)) != len(keys):
        raise InputError("split keys must be unique")
    table = pd.DataFrame({"key": keys})
    for name, parts in splits.items():
        if len(parts) != len(PARTS):
            # parts are named by position: two parts would write the test rows as "val"
            raise InputError(f"split {name!r} has {len(parts)} parts; a split file holds {len(PARTS)} in the order "
                             f"{PARTS} (give an empty array for a part without rows)")
        column = np.full(len(keys), "", dtype=object)
        for part_name, part in zip(PARTS, parts):
            column[np.asarray(part, dtype=int)] = part_name
        together = np.sort(np.concatenate([np.asarray(p, dtype=int) for p in parts]))
        if not np.array_equal(together, np.arange(len(keys))):
            raise InputError(f"split {name!r} does not assign every key exactly once")
        table[name] = column
    text = table.to_csv(index=False, lineterminator="\n")
    data = gzip.compress(text.encode(), mtime=0) if str(path).endswith(".gz") else text.encode()
    atomic_write(path, data)


def read_split_file(path: Any, keys: Sequence[str], split: str, *, subset: bool = False
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (train, val, test) indices into ``keys`` of one split of a :func:`write_split_file` file.

    ``subset=True`` accepts a dataset that is a subset of the file's keys (a subsample); every
    key of the dataset must be in the file all the same.

    Raises
    ------
    InputError
        A missing file or split column, or a file that does not match the dataset: keys of the
        dataset missing from the file or keys of the file missing from the dataset (a dataset
        built with another glycowork or monomer library). The message counts both and names a few.
    """
    from pathlib import Path

    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no split file at {str(path)!r}")
    table = pd.read_csv(path, keep_default_na=False)
    if "key" not in table.columns or split not in table.columns:
        known = [c for c in table.columns if c != "key"]
        raise InputError(f"{path.name} has no split {split!r}; its splits: {known}")
    keys = list(keys)
    in_file = dict(zip(table["key"], table[split]))
    missing = [k for k in keys if k not in in_file]
    extra = 0 if subset else len(set(in_file) - set(keys))
    if missing or extra or len(set(keys)) != len(keys):
        raise InputError(
            f"split file {path.name} does not match the dataset: {len(missing)} of its {len(keys)} keys are not in "
            f"the file (e.g. {missing[:2]}), {extra} of the file's {len(in_file)} are not in the dataset"
            + (", and the dataset repeats keys" if len(set(keys)) != len(keys) else "")
            + "; regenerate the file for this dataset (benchmarks/glycan_splits.py) or load the dataset it was made for"
        )
    labels = np.array([in_file[k] for k in keys])
    bad = sorted(set(labels) - set(PARTS))
    if bad:
        raise InputError(f"{path.name}, split {split!r}: unknown part names {bad}; expected {PARTS}")
    return tuple(np.flatnonzero(labels == name) for name in PARTS)
