"""glycowork's taxonomy table and qm9pack's QM9 as datasets."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from reprs.datasets import QM9_TARGETS, load_glycans, load_qm9
from reprs.errors import InputError, MissingDependencyError


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


# The first two molecules of QM9 as qm9pack writes them (Ramakrishnan et al., Sci. Data 1, 140022
# (2014), molecules 1 and 2), with the large per-atom columns shortened: the loader never reads them.
QM9_HEADER = (
    "XYZ_file,Index,SMILES,InChi,N_atoms,Stoichiometry,Elements,XYZ_Ang,Mulliken_pop,Harmonic_Freq_cmi,"
    "RotA_GHz,RotB_GHz,RotC_GHz,Dipole_debye,Polarizability_bohr3,HOMO_au,LUMO_au,HOMO_LUMO_gap_au,R2_bohr2,"
    "ZPVE_au,InternalEnergy_0K_au,InternalEnergy_298K_au,Enthalphy_298K_au,GibbsFreeEnergy_298K_au,"
    "Heatcapacity_Cv_cal_mol_K"
)
QM9_ROWS = [
    '"dsgdb9nsd_000002.xyz",2,"N","InChI=1S/H3N/h1H3",4,"[3,0,1,0,0]","[]","[]","[]","[]",293.60975,293.54111,'
    "191.39397,1.6256,9.46,-0.257,0.0829,0.3399,26.1563,0.034358,-56.525887,-56.523026,-56.522082,-56.544961,6.316",
    '"dsgdb9nsd_000001.xyz",1,"C","InChI=1S/CH4/h1H4",5,"[4,1,0,0,0]","[]","[]","[]","[]",157.7118,157.70997,'
    "157.70699,0.,13.21,-0.3877,0.1171,0.5048,35.3641,0.044749,-40.47893,-40.476062,-40.475117,-40.498597,6.469",
]


def test_glycan_graph_dataset_says_which_glycans_it_leaves_out(tmp_path):
    from reprs.datasets import glycan_graph_dataset
    from reprs.featurizers import FeaturizationWarning

    csv = tmp_path / "glycans.csv"
    rows = ["Gal(b1-4)GlcNAc", "Gal(b1-4", "Xyz(a1-3)Gal", "Man(a1-3)Man"]
    csv.write_text("glycan,label\n" + "".join(f"{g},{k}\n" for k, g in enumerate(rows)))
    with pytest.warns(FeaturizationWarning, match=r"2 of 4 glycans .* left out: row 1: .*; row 2: .*Xyz"):
        graphs, table = glycan_graph_dataset(str(csv))
    assert table["glycan"].tolist() == [rows[0], rows[3]] and table["label"].tolist() == [0, 3]
    assert [g.graph["name"] for g in graphs] == table["glycan"].tolist()


def test_glycan_graph_dataset_keeps_labels_that_pandas_would_read_as_missing(tmp_path):
    # pandas' default NA strings made the classes 'NA', 'None' and 'null' one label 'nan' (the matrix's
    # labels.csv); the csv module reads what the file says. Fails on the old code (checked).
    import csv as csv_module

    from reprs.datasets import glycan_graph_dataset

    path = tmp_path / "g.csv"
    path.write_text("glycan,label\nGal(b1-4)GlcNAc,NA\nMan(a1-3)Man,None\nFuc(a1-2)Gal,EU\nGlc,null\nGal,\n")
    with path.open() as f:
        expected = [row["label"] for row in csv_module.DictReader(f)][:4]
    table = glycan_graph_dataset(str(path))[1]
    assert table["label"][:4].tolist() == expected == ["NA", "None", "EU", "null"]
    assert np.isnan(table["label"][4])  # an empty cell is still missing


def test_glycan_graph_dataset_refuses_settings_a_source_cannot_use(tmp_path):
    """A .jsonl file holds graphs already built: glycan_graph options (here linkage="anomer") and a
    CSV column were dropped without a word, and the graphs came back as written."""
    from reprs import glycan_graph
    from reprs.datasets import glycan_graph_dataset
    from reprs.graphio import write_graphs

    path = write_graphs([glycan_graph("Gal(b1-4)GlcNAc")], tmp_path / "g.jsonl")
    with pytest.raises(InputError, match=r"linkage set how glycan strings become graphs, but .*g\.jsonl holds"):
        glycan_graph_dataset(str(path), linkage="anomer")
    with pytest.raises(InputError, match=r"column='glycan' names the glycan column of a CSV source"):
        glycan_graph_dataset(str(path), column="glycan")
    with pytest.raises(InputError, match=r"column='name' names the glycan column of a CSV source, not of 'glycans'"):
        glycan_graph_dataset("glycans", column="name")
    # a taxonomy level was ignored by file sources (whose labels are their own columns)
    csv = tmp_path / "g.csv"
    csv.write_text("glycan,label\nGal(b1-4)GlcNAc,a\n")
    for source in (path, csv):
        with pytest.raises(InputError, match=r"level='Species' is a taxonomy level of the bundled set 'glycans'; "
                                             r".*g\.(jsonl|csv)' is a file whose labels are its own columns"):
            glycan_graph_dataset(str(source), level="Species")
    assert glycan_graph_dataset(str(csv))[1]["label"].tolist() == ["a"]
    graphs, table = glycan_graph_dataset(str(path))
    assert table["glycan"].tolist() == ["Gal(b1-4)GlcNAc"] and graphs[0].number_of_nodes() == 2


def test_qm9_loader_converts_units(tmp_path):
    (tmp_path / "qm9_part1.csv").write_text("\n".join([QM9_HEADER, QM9_ROWS[0]]) + "\n")
    (tmp_path / "qm9_part2.csv").write_text("\n".join([QM9_HEADER, QM9_ROWS[1]]) + "\n")
    (tmp_path / "qm9_part3.csv").write_text(QM9_HEADER + "\n")
    table = load_qm9(data_dir=tmp_path)
    assert list(table.columns) == ["index", "smiles", "n_atoms", *QM9_TARGETS]
    assert table["index"].tolist() == [1, 2] and table["smiles"].tolist() == ["C", "N"]
    # 1 hartree = 27.211386 eV (CODATA); methane's gap is 0.5048 hartree in the paper's table
    assert table["gap"][0] == pytest.approx(0.5048 * 27.211386, rel=1e-7)
    assert table["u0"][1] == pytest.approx(-56.525887 * 27.211386, rel=1e-7)
    assert table["mu"][1] == 1.6256 and table["cv"][0] == 6.469
    only = load_qm9(["gap"], data_dir=tmp_path)
    assert list(only.columns) == ["index", "smiles", "n_atoms", "gap"]


def test_qm9_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="unknown QM9 target"):
        load_qm9(["bandgap"], data_dir=tmp_path)
    with pytest.raises(InputError, match="unknown QM9 target"):
        load_qm9("gap", data_dir=tmp_path)
    with pytest.raises(InputError, match="lacks qm9_part1.csv"):
        load_qm9(data_dir=tmp_path)
    if importlib.util.find_spec("qm9pack") is None:
        with pytest.raises(MissingDependencyError, match=r"matrep\[bench\]"):
            load_qm9()


@pytest.mark.skipif(importlib.util.find_spec("qm9pack") is None, reason="qm9pack (the bench extra) not installed")
def test_qm9_from_the_qm9pack_wheel():
    table = load_qm9(["homo", "lumo", "gap"])
    # 133,885 molecules less the 3,054 whose relaxation failed (Ramakrishnan et al. 2014)
    assert len(table) == 130_831 and table["index"].is_unique
    # the gap is LUMO - HOMO up to the file's 4 decimals of a hartree
    assert np.abs(table["gap"] - (table["lumo"] - table["homo"])).max() <= 1e-4 * 27.2114 + 1e-9


def test_undetermined_is_a_missing_label_not_a_class():
    from glycowork.glycan_data.loader import df_species

    with pytest.warns(UserWarning, match=r"\d+ glycans recorded only as 'undetermined' at Species are left out"):
        species = load_glycans(level="Species")
    assert not species["label"].str.lower().eq("undetermined").any()
    assert not any(x.lower() == "undetermined" for labels in species["labels"] for x in labels)
    # The glycans kept: those with a determined species in some record (less the 3 malformed strings).
    known = df_species.dropna(subset=["Species"])
    known = known[~known["Species"].str.strip().str.lower().isin(["", "undetermined"])]
    assert len(species) == known["glycan"].nunique() - 3


def test_labels_are_read_without_surrounding_blanks():
    # glycowork writes a few taxa with a trailing blank too ("Actinomycetales " beside
    # "Actinomycetales"): they were two classes, and a glycan's records were split between them.
    from glycowork.glycan_data.loader import df_species

    from reprs.glycan_tasks import taxonomy_task

    with pytest.warns(UserWarning):
        order = load_glycans(level="Order")
    assert all(x == x.strip() for labels in order["labels"] for x in labels)
    blank = set(df_species.loc[df_species["Order"] == "Actinomycetales ", "glycan"])
    rows = order[order["glycan"].isin(blank)]
    assert len(rows) and all("Actinomycetales" in labels for labels in rows["labels"])
    table = taxonomy_task().table
    for level in ("Order", "Family", "Species"):
        assert table[level].eq(table[level].str.strip()).all()
