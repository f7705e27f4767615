"""GlycanML-breadth task loaders, split files and their bad-input errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from learners.splits import check_split_labels, cluster_split, read_split_file, write_split_file
from reprs.errors import InputError
from reprs.glycan_tasks import (
    AMINO_ACIDS, GlycanTask, glycosylation_task, immunogenicity_task, load_task, sequence_composition, task_graphs,
    taxonomy_task,
)


def test_taxonomy_task_counts_against_glycowork_directly():
    from glycowork.glycan_data.loader import df_species

    task = taxonomy_task()
    assert task.label_columns == ("Domain", "Kingdom", "Phylum", "Class", "Order", "Family", "Genus", "Species")
    # Independent count: glycans with a record free of 'undetermined', minus the malformed strings
    # and the second spellings of one glycan.
    clean = df_species[~(df_species.iloc[:, 1:9].astype(str).apply(lambda c: c.str.lower()) == "undetermined").any(axis=1)]
    assert task.n == (clean["glycan"].nunique() - task.dropped["malformed glycan strings"]
                      - task.dropped["spellings merged into another of the same glycan"])
    assert task.dropped["records 'undetermined' at some level"] == len(df_species) - len(clean)
    assert not task.table[list(task.label_columns)].isna().any().any()
    kingdom = taxonomy_task("kingdom")
    assert kingdom.name == "taxonomy-kingdom" and kingdom.n == task.n
    assert (kingdom.table["glycan"].to_numpy() == task.table["glycan"].to_numpy()).all()
    # the level's own vote and the majority lineage's kingdom agree but for a few per cent
    assert (kingdom.table["label"].to_numpy() == task.table["Kingdom"].to_numpy()).mean() > 0.97
    assert "Animalia" in kingdom.class_counts()["label"]


def _graph_identity(glycans):
    """Canonical string of each glycan through its graph (reprs.glycans), None if it does not build."""
    from reprs.glycans import build_glycan_graphs, glycan_string

    graphs, _ = build_glycan_graphs(list(glycans), errors="skip")
    return [None if g is None else glycan_string(g) for g in graphs]


def test_two_spellings_of_one_glycan_are_one_row_with_the_labels_voted_over_both():
    from glycowork.glycan_data.loader import df_species

    # The example of issue 22: one glycan written with and without a bracketed first branch.
    spellings = ["[Abe(a1-3)]Man(a1-4)Rha(a1-3)Gal(a1-2)Man", "Abe(a1-3)Man(a1-4)Rha(a1-3)Gal(a1-2)Man"]
    assert len(set(_graph_identity(spellings))) == 1
    kingdom = taxonomy_task("kingdom").table
    rows = kingdom[kingdom["glycan"].isin(spellings)]
    assert len(rows) == 1
    records = df_species[df_species["glycan"].isin(spellings)]
    counts = records["Kingdom"].value_counts()
    assert rows["label"].iloc[0] == sorted(counts[counts == counts.max()].index)[0]
    # Over the whole table: no two rows are the same glycan (sample of 3000 rows, built as graphs).
    for task in (kingdom, glycosylation_task().table):
        sample = task["glycan"].sample(3000, random_state=0) if len(task) > 3000 else task["glycan"]
        ids = [i for i in _graph_identity(sample) if i is not None]
        assert len(ids) == len(set(ids)) > 2500


def test_spellings_merge_by_majority_and_ties_are_left_out(tmp_path):
    table = tmp_path / "immuno.txt"
    pd.DataFrame({"Glycan": ["Fuc(a1-2)[Gal(a1-3)]Gal", "Gal(a1-3)[Fuc(a1-2)]Gal",  # one glycan, same label
                             "Man(a1-3)[Man(a1-6)]Man", "Man(a1-6)[Man(a1-3)]Man",  # one glycan, labels tie
                             "[Glc(b1-4)]Glc(b1-3)Gal", "Glc(b1-4)Glc(b1-3)Gal", "[Glc(b1-4)Glc(b1-3)]Gal"],
                  "Immunogenic": ["Yes", "Yes", "Yes", "No", "No", "No", "Yes"]}).to_csv(table)
    task = immunogenicity_task(table)
    assert dict(zip(task.table["glycan"], task.table["label"])) == {
        "Fuc(a1-2)[Gal(a1-3)]Gal": 1, "Glc(b1-4)Glc(b1-3)Gal": 0}
    assert task.dropped == {"spellings merged into another of the same glycan": 4,
                            "glycans whose spellings tie between labels": 1}


def test_every_multitask_row_is_a_lineage_recorded_for_its_glycan():
    from collections import Counter

    from glycowork.glycan_data.loader import df_species

    from reprs.glycan_taxonomy import TAXONOMY_LEVELS

    levels = list(TAXONOMY_LEVELS)
    task = taxonomy_task()
    table = task.table
    records = df_species.dropna(subset=levels)
    records = records[~(records[levels].astype(str).apply(lambda c: c.str.lower()) == "undetermined").any(axis=1)]
    identity = dict(zip(pd.unique(records["glycan"]), _graph_identity(pd.unique(records["glycan"]))))
    key = records["glycan"].map(identity)
    recorded = Counter(zip(key, *(records[lv].str.strip() for lv in levels)))  # "Actinomycetales " is Actinomycetales
    by_glycan: dict = {}
    for (k, *lineage), n in recorded.items():
        by_glycan.setdefault(k, []).append((-n, tuple(lineage)))
    rows = list(zip(table["glycan"].map(identity), *(table[lv] for lv in levels)))
    built = [r for r in rows if r[0] is not None]
    assert len(built) > 0.98 * len(rows)
    assert all(r in recorded for r in built)  # no mix of two lineages' levels
    # and it is the lineage of most records, ties to the alphabetically first
    assert all(tuple(r[1:]) == min(by_glycan[r[0]])[1] for r in built)


def test_glycosylation_task_keeps_three_classes_and_counts_lipid_and_repeat():
    from glycowork.glycan_data.loader import df_glycan

    task = glycosylation_task()
    assert set(task.table["label"]) == {"N", "O", "free"}
    # lipid rows, less the second spellings of one glycan (counted among the merged ones)
    lipid = (df_glycan["glycan_type"] == "lipid").sum()
    merged = task.dropped["spellings merged into another of the same glycan"]
    assert lipid - merged <= task.dropped["lipid glycans"] <= lipid
    wider = glycosylation_task(include=("lipid",))
    assert set(wider.table["label"]) == {"N", "O", "free", "lipid"}
    with pytest.raises(InputError, match="include"):
        glycosylation_task(include=("glycolipid",))


def test_immunogenicity_task_reads_and_checks_a_table(tmp_path):
    good = tmp_path / "immuno.txt"
    pd.DataFrame({"Glycan": ["Gal(b1-4)GlcNAc", "Man(a1-3)Man", "Gal(b1-4)GlcNAc", "Gal(b1-4"],
                  "Immunogenic": ["Yes", "No", "Yes", "No"]}).to_csv(good)
    task = immunogenicity_task(good)
    assert task.table["label"].tolist() == [1, 0]
    assert task.dropped == {"duplicate glycans": 1, "malformed glycan strings": 1}
    bad = tmp_path / "bad.txt"
    pd.DataFrame({"Glycan": ["Man"], "Immunogenic": ["maybe"]}).to_csv(bad)
    with pytest.raises(InputError, match="Yes or No"):
        immunogenicity_task(bad)
    with pytest.raises(InputError, match="no immunogenicity table"):
        immunogenicity_task(tmp_path / "absent.txt")
    with pytest.raises(InputError, match="immunogenicity_path"):
        load_task("immunogenicity")


def test_binding_task_long_form_matches_the_wide_table():
    from glycowork.glycan_data.loader import glycan_binding

    task = load_task("binding")
    row = task.table.iloc[123]
    assert glycan_binding.loc[row["lectin"], row["glycan"]] == pytest.approx(row["label"])
    assert glycan_binding.loc[row["lectin"], "target"] == row["sequence"]
    measured = np.isfinite(glycan_binding.drop(columns=["target", "protein"]).to_numpy(dtype=float)).sum()
    assert task.n + task.dropped.get("pairs of malformed glycan strings", 0) + \
        task.dropped["pairs averaged with another spelling's value"] == measured


def test_task_graphs_count_every_failure():
    table = pd.DataFrame({"glycan": ["Gal(b1-4)GlcNAc", "Foo(a1-3)Man", "Gal(b1-4)GlcNAc", "Man"], "label": [0, 1, 0, 1]})
    task = GlycanTask("toy", "multiclass", table, ("label",), 4, {}, "test")
    with pytest.warns(UserWarning, match="1 of 3 glycans could not"):
        graphs, kept, report = task_graphs(task)
    assert len(graphs) == 2 and kept["graph"].tolist() == [0, 0, 1]
    assert report["n_failed"] == 1 and report["rows_dropped"] == 1 and "Foo(a1-3)Man" in report["failures"]
    with pytest.raises(InputError, match="no glycan"):
        task_graphs(GlycanTask("toy", "multiclass", table.iloc[[1]], ("label",), 1, {}, "test"), warn=False)


def test_sequence_composition_by_hand():
    comp = sequence_composition(["ACAX", "WW"])
    a, c, w = (AMINO_ACIDS.index(k) for k in "ACW")
    assert comp[0, a] == pytest.approx(2 / 3) and comp[0, c] == pytest.approx(1 / 3)
    assert comp[0, 20 + a * 20 + c] == pytest.approx(0.5) and comp[0, 20 + c * 20 + a] == pytest.approx(0.5)
    assert comp[1, w] == 1.0 and comp[1, 20 + w * 20 + w] == 1.0
    with pytest.raises(InputError, match="none of the 20"):
        sequence_composition(["XXX"])


def test_cluster_split_keeps_clusters_whole():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=20, size=(10, 3))
    members = np.repeat(np.arange(10), 30)
    x = centres[members] + rng.normal(size=(300, 3))
    train, val, test = cluster_split(x, k=10, seed=0)
    assert len(train) + len(val) + len(test) == 300 and len(val) == len(test) == 30
    # the well-separated blobs are the clusters: each held-out part is exactly one blob
    assert len(set(members[val])) == 1 and len(set(members[test])) == 1
    assert not set(members[train]) & set(members[np.concatenate([val, test])])
    again = cluster_split(x, k=10, seed=0)
    assert all(np.array_equal(p, q) for p, q in zip((train, val, test), again))
    with pytest.raises(InputError, match="clusters hold between"):
        cluster_split(x, k=10, seed=0, min_fraction=0.2)


def test_split_file_round_trip_and_mismatch(tmp_path):
    keys = [f"g{i}" for i in range(10)]
    parts = (np.arange(8), np.array([8]), np.array([9]))
    path = tmp_path / "s.csv.gz"
    write_split_file(path, keys, {"structure": parts})
    got = read_split_file(path, keys[::-1], "structure")
    assert [sorted(np.array(keys[::-1])[p]) for p in got] == [sorted(np.array(keys)[p]) for p in parts]
    with pytest.raises(InputError, match="does not match the dataset: 1 of its 11 keys"):
        read_split_file(path, keys + ["new"], "structure")
    with pytest.raises(InputError, match="does not match the dataset: 0 of its 9 keys.*1 of the file"):
        read_split_file(path, keys[:9], "structure")
    with pytest.raises(InputError, match="no split 'random'"):
        read_split_file(path, keys, "random")
    with pytest.raises(InputError, match="exactly once"):
        write_split_file(path, keys, {"bad": (np.arange(8), np.array([8]), np.array([8]))})
    # (train, test) only: the test rows were written as "val" without a word
    with pytest.raises(InputError, match="has 2 parts"):
        write_split_file(path, keys, {"two": (np.arange(8), np.array([8, 9]))})


def test_single_class_in_a_split_part_is_refused():
    y = np.array([0, 1, 0, 1, 1, 1])
    check_split_labels(y, (np.array([0, 1]), np.array([2, 3]), np.array([0, 5])))
    with pytest.raises(InputError, match="single class .* in the test part"):
        check_split_labels(y, (np.array([0, 1]), np.array([2, 3]), np.array([4, 5])))


def test_shipped_split_files_match_the_tasks():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "benchmarks" / "glycan_splits"
    path = folder / "glycosylation.csv.gz"
    if not path.is_file():
        pytest.skip("split files not generated")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = glycosylation_task()
    keys = pd.read_csv(path)["key"]
    # The file's keys are the task's glycans whose graphs build: a subset, all of them known.
    assert set(keys) <= set(task.table["glycan"]) and len(keys) > 0.95 * task.n
    train, val, test = read_split_file(path, keys.tolist(), "structure")
    assert len(train) > 3 * len(test) > 0 and len(val) > 0  # eight clusters of ten in training
    # The taxonomy file: made from the current table (one row per glycan, not per spelling).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        taxonomy = taxonomy_task()
    keys = pd.read_csv(folder / "taxonomy.csv.gz")["key"]
    assert set(keys) <= set(taxonomy.table["glycan"]) and len(keys) > 0.98 * taxonomy.n
