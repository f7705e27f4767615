"""The `matrep` subcommands of reprs, run through the installed console script's main()."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reprs.cli import main
from reprs.graphio import read_graphs


def test_glycan_prints_nodes_edges_and_attributes(capsys):
    assert main(["glycan", "Gal(b1-4)[Fuc(a1-3)]GlcNAc"]) == 0
    out = capsys.readouterr().out
    assert "3 nodes, 2 edges" in out
    assert "label=Fuc" in out and "0 -> 2: label=b1-4" in out and "(128 values" in out


def test_glycan_bad_input_exits_nonzero_with_message(capsys):
    assert main(["glycan", "Gal(b1-4)[Fuc(a1-3)GlcNAc"]) == 2
    assert "unclosed '['" in capsys.readouterr().err
    assert main(["glycan", "Foo(b1-4)Gal"]) == 2
    err = capsys.readouterr().err
    # the hint names the flag of this command, not the Python argument
    assert "unknown glycan monomer 'Foo'" in err and "--on-unknown zero" in err and "on_unknown" not in err
    assert main(["glycan", "Foo(b1-4)Gal", "--on-unknown", "zero"]) == 0


def test_featurize_writes_glycan_graphs_like_any_featurizer(tmp_path, capsys):
    from reprs.glycans import glycan_graph

    table = tmp_path / "glycans.csv"
    pd.DataFrame({"id": [1, 2, 3], "glycan": ["Gal(b1-4)Glc", "Gal(b1-4", "Neu5Ac(a2-6)Gal(b1-4)GlcNAc"]}).to_csv(table, index=False)
    out = tmp_path / "graphs.jsonl"
    assert main(["featurize", str(table), "--repr", "glycan-graph", "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unclosed '('" in err and "--skip-errors" in err  # stops at the first bad row by default
    assert not out.exists()
    assert main(["featurize", str(table), "--repr", "glycan_graph:linkage=anomer", "-o", str(out), "--skip-errors", "-q"]) == 0
    stdout = capsys.readouterr().out
    assert "featurized 2 of 3 objects" in stdout and "2: GlycanParseError" in stdout
    graphs = read_graphs(out)
    assert [g.graph["id"] for g in graphs] == ["1", "3"]
    expected = glycan_graph("Neu5Ac(a2-6)Gal(b1-4)GlcNAc", linkage="anomer")
    assert [d["label"] for *_, d in graphs[1].edges(data=True)] == [d["label"] for *_, d in expected.edges(data=True)]


def test_featurize_rejects_unknown_representation(tmp_path, capsys):
    table = tmp_path / "glycans.csv"
    pd.DataFrame({"glycan": ["Gal(b1-4)Glc"]}).to_csv(table, index=False)
    assert main(["featurize", str(table), "--repr", "nope", "-o", str(tmp_path / "out.npz")]) == 2
    assert "nope" in capsys.readouterr().err


def test_featurize_smiles_table_with_a_catalog_featurizer(tmp_path, capsys):
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    table = tmp_path / "mols.csv"
    pd.DataFrame({"id": ["ethanol", "benzene"], "smiles": ["CCO", "c1ccccc1"]}).to_csv(table, index=False)
    out = tmp_path / "fp.npz"
    assert main(["featurize", str(table), "--repr", "morgan:radius=2,n_bits=256", "-o", str(out), "--quiet"]) == 0
    import numpy as np

    stored = np.load(out, allow_pickle=True)
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=256, includeChirality=True)
    expected = np.stack([generator.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s in ("CCO", "c1ccccc1")])
    np.testing.assert_array_equal(stored["X"], expected)


def test_user_mistakes_end_with_one_message_and_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert main(["predict", str(tmp_path / "run"), str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"matrep predict: error: {empty} is empty") and "Traceback" not in err
    assert main(["featurize", str(empty), "--repr", "soap", "-o", str(tmp_path / "x.npz")]) == 2
    assert "SOAP needs the parameter(s) species, e.g. soap:species=" in capsys.readouterr().err
    assert main(["featurize", str(tmp_path / "missing.csv"), "--repr", "maccs", "-o", str(tmp_path / "x.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    for argv, flag in (
        (["featurize", str(empty), "--repr", "maccs", "-o", "x.npz", "--n-jobs", "0"], "--n-jobs"),
        (["glycan", "Gal(b1-4)Glc", "--width", "-1"], "--width"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and f"argument {flag}: expected an integer" in capsys.readouterr().err


def test_the_console_script_prints_no_traceback(tmp_path):
    # the installed entry point, as a user runs it: a file type ASE cannot read
    bad = tmp_path / "cell.foo"
    bad.write_text("hello\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from reprs.cli import main; sys.exit(main())", "dmeasure", str(bad), str(bad)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"matrep dmeasure: error: {bad}: ASE cannot read files of type 'foo'; give a structure file ase.io.read "
        "knows (extxyz, xyz, cif, POSCAR/vasp, traj, ASE .db, ...)"
    )
