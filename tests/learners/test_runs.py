"""Config-driven runs (behind `matrep train` / `matrep predict`): run folder, resume, predictions."""

from __future__ import annotations

import argparse
import json

import pandas as pd
import pytest

from learners.cli import register
from learners.errors import InputError
from learners.runs import predict_run, train_run

from .conftest import random_glycans


@pytest.fixture(scope="module")
def csv_dataset(tmp_path_factory):
    strings, y = random_glycans(60, seed=5)
    path = tmp_path_factory.mktemp("data") / "fuc.csv"
    pd.DataFrame({"glycan": strings, "label": ["fuc" if v else "plain" for v in y]}).to_csv(path, index=False)
    return path


def _config(csv_dataset, epochs=6):
    return {
        "task": "classification",
        "seed": 0,
        "dataset": {"source": "csv", "path": str(csv_dataset)},
        "model": {"kind": "gine", "hidden": 16, "layers": 2},
        "trainer": {"epochs": epochs, "batch_size": 16, "lr": 5e-3},
        "split": {"fractions": [0.6, 0.2, 0.2]},
    }


def _main(argv):
    parser = argparse.ArgumentParser(prog="matrep")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.func(args)


def test_train_writes_the_run_folder_and_predict_reads_it(csv_dataset, tmp_path, capsys):
    config = tmp_path / "run.json"
    config.write_text(json.dumps(_config(csv_dataset)))
    _main(["train", str(config), str(tmp_path / "run"), "--quiet"])
    metrics = json.loads(capsys.readouterr().out)
    run = tmp_path / "run"
    for name in ("config.json", "checkpoint.pt", "best.pt", "log.jsonl", "estimator.pt", "metrics.json", "learning_curve.png"):
        assert (run / name).is_file(), name
    assert metrics["n_test"] == 12 and 0.0 <= metrics["accuracy"] <= 1.0
    assert len((run / "log.jsonl").read_text().splitlines()) == 6
    glycans = tmp_path / "query.txt"
    glycans.write_text("Fuc(a1-2)Gal(b1-4)GlcNAc\nGal(b1-4)GlcNAc\nNotAGlycan((\n")
    _main(["predict", str(run), str(glycans), "-o", str(tmp_path / "pred.csv")])
    table = pd.read_csv(tmp_path / "pred.csv")
    assert list(table["prediction"][:2].isin(["fuc", "plain"])) == [True, True]
    assert table["error"].isna().tolist()[:2] == [True, True] and isinstance(table["error"][2], str)
    assert (table[["proba_fuc", "proba_plain"]][:2].sum(axis=1) - 1).abs().max() < 1e-5


def test_rerun_resumes_from_the_checkpoint(csv_dataset, tmp_path):
    first = train_run(_config(csv_dataset, epochs=6), tmp_path / "a", progress=False)
    again = train_run(_config(csv_dataset, epochs=6), tmp_path / "a", progress=False)
    assert again == first  # nothing left to train: the same final model


def test_bad_run_input(csv_dataset, tmp_path):
    with pytest.raises(InputError, match="unknown \\[model\\] keys"):
        train_run({**_config(csv_dataset), "model": {"kind": "gine", "width": 3}}, tmp_path / "b")
    with pytest.raises(InputError, match="not in"):
        train_run({**_config(csv_dataset), "dataset": {"source": "csv", "path": str(csv_dataset), "label_column": "y"}}, tmp_path / "c")
    with pytest.raises(InputError, match="finished run"):
        predict_run(tmp_path / "nothing", ["Gal"])
