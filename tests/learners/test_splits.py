"""Splits: partitions, stratification against scikit-learn, group integrity, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from learners.errors import InputError
from learners.splits import graph_groups, group_split, kfold, random_split, stratified_split
from reprs.glycans import glycan_graph


def _is_partition(parts, n):
    joined = np.concatenate(parts)
    return len(joined) == n and set(joined.tolist()) == set(range(n))


def test_random_split_sizes_and_seed():
    parts = random_split(1313, (0.6, 0.2, 0.2), seed=108)
    assert [len(p) for p in parts] == [788, 262, 263] and _is_partition(parts, 1313)
    assert all(np.array_equal(a, b) for a, b in zip(parts, random_split(1313, (0.6, 0.2, 0.2), seed=108)))
    assert not np.array_equal(parts[0], random_split(1313, (0.6, 0.2, 0.2), seed=1)[0])


def test_stratified_split_keeps_proportions():
    y = np.repeat(["Eukarya", "Bacteria", "Archaea"], [500, 200, 30])
    parts = stratified_split(y, (0.6, 0.2, 0.2), seed=0)
    assert _is_partition(parts, len(y))
    for part, frac in zip(parts, (0.6, 0.2, 0.2)):
        for label, total in (("Eukarya", 500), ("Bacteria", 200), ("Archaea", 30)):
            assert abs(np.sum(y[part] == label) - frac * total) <= 1


def test_stratified_kfold_class_counts_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.choice(4, size=203, p=[0.5, 0.3, 0.15, 0.05])
    ours = kfold(y, 5, seed=0)
    theirs = list(StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    assert _is_partition([te for _, te in ours], len(y))
    for (tr, te) in ours:
        assert len(np.intersect1d(tr, te)) == 0
    ours_counts = sorted(tuple(np.bincount(y[te], minlength=4)) for _, te in ours)
    sk_counts = sorted(tuple(np.bincount(y[te], minlength=4)) for _, te in theirs)
    # Per class, fold sizes differ by at most one in both: the same multiset per class.
    for c in range(4):
        assert sorted(x[c] for x in ours_counts) == sorted(x[c] for x in sk_counts)


def test_groups_stay_together():
    groups = np.repeat(np.arange(40), np.arange(40) % 4 + 1)
    parts = group_split(groups, (0.8, 0.1, 0.1), seed=3)
    assert _is_partition(parts, len(groups))
    seen = [set(groups[p]) for p in parts]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    for _, te in kfold(groups, 4, groups=groups, seed=0):
        assert set(groups[te]).isdisjoint(set(groups[np.setdiff1d(np.arange(len(groups)), te)]))


def test_graph_groups_by_hash_and_core():
    graphs = [
        glycan_graph("Man(a1-3)[Man(a1-6)]Man(b1-4)GlcNAc"),
        glycan_graph("Man(a1-6)[Man(a1-3)]Man(b1-4)GlcNAc"),  # same glycan, branches swapped
        glycan_graph("Gal(b1-4)Man(a1-3)[Man(a1-6)]Man(b1-4)GlcNAc"),  # same core, larger
        glycan_graph("Gal(b1-4)GlcNAc"),
    ]
    h = graph_groups(graphs, by="hash")
    assert h[0] == h[1] and len({h[0], h[2], h[3]}) == 3
    core = graph_groups(graphs, by="core", core_depth=1)
    assert core[0] == core[1] == core[2] != core[3]


def test_bad_split_input():
    with pytest.raises(InputError, match="one member"):
        stratified_split(["a", "a", "b"], (0.5, 0.5))
    with pytest.raises(InputError, match="sum to 1"):
        random_split(10, (0.5, 0.4))
    with pytest.raises(InputError, match="non-empty"):
        stratified_split([], (0.5, 0.5))
    with pytest.raises(InputError, match="folds"):
        kfold([0, 1], 3)
