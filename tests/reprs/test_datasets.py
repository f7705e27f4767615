"""glycowork's taxonomy table as a dataset."""

from __future__ import annotations

import pytest

from reprs.datasets import load_glycans
from reprs.errors import InputError


@pytest.fixture(scope="module")
def kingdom():
    with pytest.warns(UserWarning, match="dropped 3 malformed"):
        return load_glycans(level="Kingdom")


def test_unique_glycans_with_majority_label(kingdom):
    from glycowork.glycan_data.loader import df_species

    assert kingdom["glycan"].is_unique
    # every kept glycan's label is one of its records' labels, and the most frequent one
    records = df_species.dropna(subset=["Kingdom"]).groupby("glycan")["Kingdom"]
    sample = kingdom.sample(200, random_state=0)
    for glycan, label, labels in zip(sample["glycan"], sample["label"], sample["labels"]):
        counts = records.get_group(glycan).value_counts()
        assert set(labels) == set(counts.index)
        assert counts[label] == counts.max()
    assert len(kingdom) == df_species.dropna(subset=["Kingdom"])["glycan"].nunique() - 3


def test_min_class_size_drops_small_classes(kingdom):
    big = load_glycans(level="kingdom", min_class_size=100)
    assert big["label"].value_counts().min() >= 100
    assert set(big["label"]) < set(kingdom["label"])


def test_bad_arguments():
    with pytest.raises(InputError, match="unknown taxonomy level 'Galaxy'"):
        load_glycans(level="Galaxy")
    with pytest.raises(InputError, match="min_class_size"):
        load_glycans(min_class_size=0)
