"""featurize_inputs (behind ``matrep featurize``): inputs read, outputs written whole or not at all."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from ase.db import connect
from ase.io import write

from reprs import errors
from reprs.featurizers import MorganFingerprint, SOAP
from reprs.featurizers.files import featurize_inputs
from tests.reprs.featurizer_inputs import copper, quartz_atoms, silicon


@pytest.fixture
def smiles_csv(tmp_path):
    path = tmp_path / "mols.csv"
    path.write_text("name,SMILES,label\naspirin,CC(=O)Oc1ccccc1C(=O)O,1\nbroken,C1CC,0\nphenol,c1ccccc1O,1\n")
    return path


def test_bad_row_stops_before_anything_is_written(smiles_csv, tmp_path):
    out = tmp_path / "fp.npz"
    with pytest.raises(errors.FeaturizationError, match=r"broken \(row 1\): SmilesError.*--skip-errors"):
        featurize_inputs(smiles_csv, "morgan:n_bits=128", out, progress=False)
    assert list(tmp_path.iterdir()) == [smiles_csv]  # no output, no temporary file left


def test_skip_errors_writes_npz_with_ids_and_failures(smiles_csv, tmp_path):
    out = tmp_path / "fp.npz"
    summary = featurize_inputs(smiles_csv, "morgan:n_bits=128", out, progress=False, skip_errors=True)
    assert (summary.n_inputs, summary.n_written, summary.n_features) == (3, 2, 128)
    assert summary.failures[0][0] == "broken" and "unclosed ring" in summary.failures[0][1]
    assert "1 skipped" in str(summary)
    data = np.load(out)
    expected = MorganFingerprint(n_bits=128).featurize_many(["CC(=O)Oc1ccccc1C(=O)O", "c1ccccc1O"], progress=False)
    assert np.array_equal(data["X"], expected) and data["X"].dtype == np.uint8
    assert data["ids"].tolist() == ["aspirin", "phenol"] and data["failed_ids"].tolist() == ["broken"]
    assert data["feature_labels"].shape == (128,) and str(data["spec"]) == "morgan:n_bits=128"


def test_sparse_npz_parquet_and_npy(smiles_csv, tmp_path):
    kwargs = dict(progress=False, skip_errors=True, id_column="name", column="SMILES")
    featurize_inputs(smiles_csv, "maccs", tmp_path / "fp.npz", sparse=True, **kwargs)
    matrix = scipy.sparse.load_npz(tmp_path / "fp.npz")
    featurize_inputs(smiles_csv, "maccs", tmp_path / "fp.npy", **kwargs)
    dense = np.load(tmp_path / "fp.npy")
    assert np.array_equal(matrix.toarray(), dense) and dense.shape == (2, 167)
    featurize_inputs(smiles_csv, "maccs", tmp_path / "fp.parquet", **kwargs)
    frame = pd.read_parquet(tmp_path / "fp.parquet")
    assert frame["id"].tolist() == ["aspirin", "phenol"] and frame.shape == (2, 168)
    assert np.array_equal(frame.iloc[:, 1:].to_numpy(), dense)


def test_structure_folder_per_site_rows_and_unreadable_files(tmp_path):
    folder = tmp_path / "structures"
    folder.mkdir()
    write(folder / "quartz.cif", quartz_atoms())
    write(folder / "si.extxyz", [silicon(), silicon().repeat((1, 1, 2))])
    (folder / "junk.xyz").write_text("not a structure\n")
    spec = "soap:species=Si,O,r_cut=4,n_max=2,l_max=2,periodic=true"
    with pytest.raises(errors.FeaturizationError, match="junk.xyz"):
        featurize_inputs(folder, spec, tmp_path / "soap.npz", progress=False)
    summary = featurize_inputs(folder, spec, tmp_path / "soap.npz", progress=False, skip_errors=True)
    data = np.load(tmp_path / "soap.npz")
    assert data["ids"].tolist() == ["quartz.cif", "si.extxyz@0", "si.extxyz@1"]
    assert data["row_splits"].tolist() == [0, 9, 17, 33] and summary.failures[0][0] == "junk.xyz"
    soap = SOAP(species=["Si", "O"], r_cut=4, n_max=2, l_max=2, periodic=True)
    np.testing.assert_allclose(data["X"][9:17], soap.featurize(silicon()), rtol=1e-6)
    with pytest.raises(errors.InputError, match="row_splits"):
        featurize_inputs(folder, spec, tmp_path / "soap.npy", progress=False, skip_errors=True)


def test_ase_database_and_graph_outputs(tmp_path):
    db_path = tmp_path / "structures.db"
    with connect(db_path) as db:
        db.write(silicon())
        db.write(copper())
    summary = featurize_inputs(db_path, "element_property:properties=Z,stats=mean", tmp_path / "z.npz", progress=False)
    data = np.load(tmp_path / "z.npz")
    assert data["ids"].tolist() == ["1", "2"] and data["X"][:, 0].tolist() == [14.0, 29.0] and summary.n_written == 2
    featurize_inputs(db_path, "crystal_graph:r_cut=3", tmp_path / "g.pkl", progress=False)
    with open(tmp_path / "g.pkl", "rb") as stream:
        graphs = pickle.load(stream)
    assert [g.graph["id"] for g in graphs] == ["1", "2"] and graphs[1].number_of_edges() == 12
    with pytest.raises(errors.InputError, match=r"\.pt \(PyG\), \.pkl or \.jsonl"):
        featurize_inputs(db_path, "crystal_graph", tmp_path / "g.npz", progress=False)
    # column / id_column name table columns: a database (or structure files) was read without them,
    # the ids staying the row ids whatever id_column said
    for option in ({"id_column": "name"}, {"column": "structure"}):
        with pytest.raises(errors.InputError, match="no input is one"):
            featurize_inputs(db_path, "element_property:properties=Z,stats=mean", tmp_path / "n.npz", progress=False,
                             **option)
    assert not (tmp_path / "n.npz").exists()


def test_bad_arguments(smiles_csv, tmp_path):
    with pytest.raises(errors.InputError, match="unknown output format"):
        featurize_inputs(smiles_csv, "maccs", tmp_path / "out.txt", progress=False)
    with pytest.raises(errors.InputError, match="does not exist"):
        featurize_inputs(tmp_path / "missing.csv", "maccs", tmp_path / "out.npz", progress=False)
    with pytest.raises(errors.InputError, match="no column 'smi'"):
        featurize_inputs(smiles_csv, "maccs", tmp_path / "out.npz", column="smi", progress=False)
    table = tmp_path / "nosmiles.csv"
    table.write_text("a,b\n1,2\n")
    with pytest.raises(errors.InputError, match="none of"):
        featurize_inputs(table, "maccs", tmp_path / "out.npz", progress=False)
    with pytest.raises(errors.UnknownFeaturizerError):
        featurize_inputs(smiles_csv, "glycan-graphs", tmp_path / "out.npz", progress=False)
    with pytest.raises(errors.InputError, match="sparse"):  # once silently written dense
        featurize_inputs(smiles_csv, "maccs", tmp_path / "out.npy", sparse=True, progress=False)
    assert not (tmp_path / "out.npy").exists()
