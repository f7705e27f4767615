"""Splits (scikit-learn's splitters behind our checks): part sizes, class counts and group
integrity worked out by hand, seeds, global random state, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from learners.errors import InputError
from learners.splits import graph_groups, group_split, kfold, random_split, stratified_split
from reprs.glycans import glycan_graph


def _is_partition(parts, n):
    joined = np.concatenate(parts)
    return len(joined) == n and set(joined.tolist()) == set(range(n))


def test_random_split_sizes_and_seed():
    # round(1313 * 0.6) = 788, round(1313 * 0.8) - 788 = 262, the rest 263.
    parts = random_split(1313, (0.6, 0.2, 0.2), seed=108)
    assert [len(p) for p in parts] == [788, 262, 263] and _is_partition(parts, 1313)
    assert all(np.array_equal(a, b) for a, b in zip(parts, random_split(1313, (0.6, 0.2, 0.2), seed=108)))
    assert not np.array_equal(parts[0], random_split(1313, (0.6, 0.2, 0.2), seed=1)[0])
    assert [len(p) for p in random_split(10, (0.9, 0.1, 0.0))] == [9, 1, 0]


def test_stratified_split_class_counts_by_hand():
    """10 a, 6 b, 4 c into (0.6, 0.2, 0.2): train takes 12 = 6 a + 3.6 -> 4 b + 2.4 -> 2 c (largest
    remainder), the 8 left split evenly: 2 a, 1 b, 1 c each."""
    y = np.repeat(["a", "b", "c"], [10, 6, 4])
    parts = stratified_split(y, (0.6, 0.2, 0.2), seed=0)
    assert _is_partition(parts, len(y))
    counts = [[int(np.sum(y[p] == c)) for c in "abc"] for p in parts]
    assert counts == [[6, 4, 2], [2, 1, 1], [2, 1, 1]]
    assert not np.array_equal(parts[1], stratified_split(y, (0.6, 0.2, 0.2), seed=1)[1])


def test_groups_stay_together():
    groups = np.repeat(np.arange(40), np.arange(40) % 4 + 1)
    parts = group_split(groups, (0.8, 0.1, 0.1), seed=3)
    assert _is_partition(parts, len(groups))
    seen = [set(groups[p].tolist()) for p in parts]
    assert [len(s) for s in seen] == [32, 4, 4]  # fractions of the 40 groups
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    for stratified in (False, True):
        folds = kfold(groups % 2, 4, groups=groups, seed=0, stratified=stratified)
        assert _is_partition([te for _, te in folds], len(groups))
        for tr, te in folds:
            assert set(groups[te].tolist()).isdisjoint(groups[tr].tolist())


def test_kfold_by_hand():
    y = np.array([0] * 10 + [1] * 5)
    folds = kfold(y, 5, seed=0)
    assert _is_partition([te for _, te in folds], len(y))
    for tr, te in folds:
        assert np.bincount(y[te], minlength=2).tolist() == [2, 1] and len(np.intersect1d(tr, te)) == 0
    plain = kfold(y, 5, seed=0, stratified=False)
    assert [len(te) for _, te in plain] == [3] * 5 and _is_partition([te for _, te in plain], len(y))
    assert [te.tolist() for _, te in kfold(y, 5, seed=0)] == [te.tolist() for _, te in folds]


def test_splits_leave_global_random_state_alone():
    before = np.random.get_state()[1].copy()
    random_split(50, seed=1), stratified_split([0, 1] * 25, seed=1), group_split(np.arange(50) // 5, seed=1)
    kfold([0, 1] * 25, 5, seed=1)
    assert np.array_equal(np.random.get_state()[1], before)


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


def test_graph_groups_see_edge_direction():
    # Issue 22: same residues and linkages, different trees; networkx's directed hash took them alike.
    pair = [glycan_graph("Ara(a1-2)[Glc(b1-3)]Rha"), glycan_graph("Glc(b1-3)Rha(a1-2)Ara")]
    assert graph_groups(pair)[0] != graph_groups(pair)[1]
    swapped = [glycan_graph("Gal(b1-4)GlcNAc"), glycan_graph("GlcNAc(b1-4)Gal")]
    assert len(set(graph_groups(swapped))) == 2
    # Against the canonical string (reprs.glycans.glycan_string, branches sorted) as the reference
    # of isomorphism: on glycowork glycans, two share a group exactly when their canonical strings agree.
    from glycowork.glycan_data.loader import df_glycan

    from reprs.glycans import build_glycan_graphs, glycan_string

    built, _ = build_glycan_graphs(df_glycan["glycan"].iloc[::20].tolist(), errors="skip")
    graphs = [g for g in built if g is not None]
    assert len(graphs) > 2000
    groups = graph_groups(graphs)
    canonical = [glycan_string(g) for g in graphs]
    pairs_by_group = {(a, b) for a, b in zip(groups, canonical)}
    assert len({a for a, _ in pairs_by_group}) == len(pairs_by_group) == len(set(canonical))


def test_bad_split_input():
    with pytest.raises(InputError, match="one member"):
        stratified_split(["a", "a", "b"], (0.5, 0.5))
    with pytest.raises(InputError, match="cannot stratify"):
        stratified_split(["a", "a", "b", "b", "c", "c"], (0.5, 0.25, 0.25))
    # A class of 3 in (0.8, 0.1, 0.1) leaves 1 member after the train part: the error names the
    # class and its real size (sklearn's own message said the class had "only 1 member").
    with pytest.raises(InputError, match=r"class 'rare' has 3 members.*train part.*about 10 or more"):
        stratified_split(["rare"] * 3 + ["x"] * 20 + ["y"] * 20, (0.8, 0.1, 0.1))
    assert [len(p) for p in stratified_split(["rare"] * 10 + ["x"] * 20 + ["y"] * 20, (0.8, 0.1, 0.1))] == [40, 5, 5]
    with pytest.raises(InputError, match="sum to 1"):
        random_split(10, (0.5, 0.4))
    with pytest.raises(InputError, match="non-empty"):
        stratified_split([], (0.5, 0.5))
    with pytest.raises(InputError, match="empty"):
        group_split([], (0.5, 0.5))
    with pytest.raises(InputError, match="folds"):
        kfold([0, 1], 3)
    with pytest.raises(InputError, match="groups"):
        kfold([0, 1, 0, 1], 3, groups=[0, 0, 1, 1])
    with pytest.raises(InputError, match="seed"):
        random_split(10, seed=-1)


def test_core_groups_need_a_reducing_end():
    """Molecular graphs have no reducing end: by='core' took each graph's first atom instead, so the
    core hinged on how the SMILES was written (measured: 'c1ccccc1CCO' and 'OCCc1ccccc1', one molecule,
    got two groups, and could land in train and test; 'c1ccccc1CCO' and 'c1ccccc1CCN' shared one).
    Refused now; by='hash' groups the two spellings."""
    from learners.runs import build_graphs

    molecules, _ = build_graphs("molecular_graph", ["c1ccccc1CCO", "OCCc1ccccc1", "c1ccccc1CCN"])
    with pytest.raises(InputError, match=r"by='core' needs rooted graphs.*graph 0 .*by='hash'"):
        graph_groups(molecules, by="core")
    by_hash = graph_groups(molecules, by="hash")
    assert by_hash[0] == by_hash[1] != by_hash[2]
