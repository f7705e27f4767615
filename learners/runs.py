"""Training runs from a config file, and predictions from a finished run (behind ``matrep train/predict``).

A config (TOML or JSON) names the dataset, the representation, the model, the trainer settings and
the split::

    task = "classification"          # or "regression"
    seed = 0
    representation = "glycan"        # glycan graphs (default), or a featurizer of SMILES that gives
                                     # graphs: "molecular_graph", "molecular_graph:hydrogens=true"
    [dataset]
    source = "glycowork"             # glycowork's shipped taxonomy table, "qm9" or "csv"
    level = "Kingdom"
    min_class_size = 10
    subsample = 2000                 # optional
    # source = "qm9": target = "gap" (any reprs.datasets.QM9_TARGETS name; install matrep[bench])
    # source = "csv": path, column = "glycan" (default "glycan", or "smiles" for molecules),
    #                 label_column = "label"
    [model]
    kind = "gine"                    # any GraphModel kind; hidden, layers, readout, dropout
    [trainer]
    epochs = 100                     # batch_size, lr, weight_decay, schedule, patience, device
    [split]
    fractions = [0.8, 0.1, 0.1]
    by = "stratified"                # "random", "hash" (isomorphic graphs together), "core"

The run folder receives ``config.json``, the trainer's ``checkpoint.pt`` / ``best.pt`` /
``log.jsonl``, ``estimator.pt`` (the fitted estimator), ``metrics.json`` (test-set metrics) and
``learning_curve.png``. A rerun into the same folder resumes from the checkpoint.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from learners.errors import InputError

__all__ = ["load_config", "train_run", "predict_run", "build_graphs"]

_MODEL_KEYS = {"kind", "hidden", "layers", "readout", "dropout"}
_TRAINER_KEYS = {"epochs", "batch_size", "lr", "weight_decay", "schedule", "patience", "monitor", "clip_norm", "device"}


def load_config(path: str | os.PathLike) -> dict:
    """Read a TOML (``.toml``) or JSON config."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file {str(path)!r} not found")
    if path.suffix == ".toml":
        import tomllib

        return tomllib.loads(path.read_text())
    return json.loads(path.read_text())


def _representation(cfg: dict) -> str:
    spec = cfg.get("representation", "glycan")
    if not isinstance(spec, str):
        raise InputError(f"representation must be 'glycan' or a featurizer spec string, got {spec!r}")
    return spec


def build_graphs(representation: str, strings: list[str]) -> tuple[list, list[tuple[int, str]]]:
    """Graphs of ``strings`` in a run's representation; ``None`` and a reason for those that fail.

    Parameters
    ----------
    representation : str
        ``"glycan"`` (IUPAC-condensed glycans -> :func:`reprs.glycans.glycan_graph`) or the spec of
        a featurizer that turns SMILES into graphs (``"molecular_graph"``).

    Returns
    -------
    graphs : list
        One networkx graph per string, ``None`` where it failed.
    failures : list of (int, str)
        Row and message of each failure.
    """
    if representation == "glycan":
        from reprs.glycans import build_glycan_graphs

        return build_glycan_graphs(strings, errors="skip")
    from reprs.featurizers import FeaturizationWarning, get_featurizer

    featurizer = get_featurizer(representation)
    if featurizer.input_kind != "molecule" or featurizer.fixed_length or featurizer.get_params().get("output") != "networkx":
        raise InputError(
            f"representation {representation!r} does not turn SMILES into networkx graphs; use 'glycan' "
            "or a graph featurizer of molecules such as 'molecular_graph'"
        )
    with warnings.catch_warnings():  # the failures are returned, row by row
        warnings.simplefilter("ignore", FeaturizationWarning)
        graphs, failures = featurizer.featurize_many(strings, progress=False, errors="nan", return_failures=True)
    return graphs, [(f.index, f"{f.error}: {f.message}") for f in failures]


def _dataset(spec: dict, representation: str, seed: int) -> tuple[list[str], np.ndarray]:
    source = spec.get("source", "glycowork")
    if source == "glycowork":
        from reprs.datasets import load_glycans

        table = load_glycans(spec.get("level", "Kingdom"), min_class_size=int(spec.get("min_class_size", 10)))
        strings, labels = table["glycan"].tolist(), table["label"].to_numpy()
    elif source == "qm9":
        from reprs.datasets import load_qm9

        target = spec.get("target", "gap")
        table = load_qm9([target])
        strings, labels = table["smiles"].tolist(), table[target].to_numpy()
    elif source == "csv":
        if "path" not in spec:
            raise InputError("dataset source 'csv' needs a 'path'")
        table = pd.read_csv(spec["path"])
        x_col = spec.get("column", "glycan" if representation == "glycan" else "smiles")
        y_col = spec.get("label_column", "label")
        missing = {x_col, y_col} - set(table.columns)
        if missing:
            raise InputError(f"columns {sorted(missing)} not in {spec['path']}; it has {list(table.columns)}")
        table = table.dropna(subset=[x_col, y_col])
        strings, labels = table[x_col].astype(str).tolist(), table[y_col].to_numpy()
    else:
        raise InputError(f"unknown dataset source {source!r}; use 'glycowork', 'qm9' or 'csv'")
    n = spec.get("subsample")
    if n is not None and n < len(strings):
        pick = np.sort(np.random.default_rng(seed).choice(len(strings), int(n), replace=False))
        strings, labels = [strings[i] for i in pick], labels[pick]
    return strings, labels


def _split(spec: dict, graphs: list, y: np.ndarray, classification: bool, seed: int):
    from learners.splits import graph_groups, group_split, random_split, stratified_split

    fractions = tuple(spec.get("fractions", (0.8, 0.1, 0.1)))
    if len(fractions) != 3:
        raise InputError(f"split fractions must be (train, val, test), got {fractions}")
    by = spec.get("by", "stratified" if classification else "random")
    seed = int(spec.get("seed", seed))
    if by == "stratified":
        return stratified_split(y, fractions, seed=seed)
    if by == "random":
        return random_split(len(y), fractions, seed=seed)
    if by in ("hash", "core"):
        return group_split(graph_groups(graphs, by=by), fractions, seed=seed)
    raise InputError(f"unknown split {by!r}; use 'stratified', 'random', 'hash' or 'core'")


def _plot_history(history: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    epochs = [r["epoch"] for r in history]
    for key in ("train_loss", "val_loss"):
        if key in history[0]:
            ax.plot(epochs, [r[key] for r in history], label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def train_run(config: dict | str | os.PathLike, run_dir: str | os.PathLike, *, progress: bool = True) -> dict:
    """Train the model a config describes; write the run folder; return the test metrics.

    Raises
    ------
    InputError
        For unknown config keys or values, or a dataset without usable inputs.
    """
    from learners import GNNClassifier, GNNRegressor
    from learners.metrics import evaluate
    from reprs.fileio import atomic_write

    cfg = load_config(config) if not isinstance(config, dict) else config
    task = cfg.get("task", "classification")
    if task not in ("classification", "regression"):
        raise InputError(f"task must be 'classification' or 'regression', got {task!r}")
    model_cfg, trainer_cfg = dict(cfg.get("model", {})), dict(cfg.get("trainer", {}))
    for name, got, allowed in (("model", model_cfg, _MODEL_KEYS), ("trainer", trainer_cfg, _TRAINER_KEYS)):
        unknown = set(got) - allowed
        if unknown:
            raise InputError(f"unknown [{name}] keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    seed = int(cfg.get("seed", 0))
    run_dir = Path(run_dir)
    representation = _representation(cfg)
    strings, labels = _dataset(cfg.get("dataset", {}), representation, seed)
    graphs, failures = build_graphs(representation, strings)
    keep = [i for i, g in enumerate(graphs) if g is not None]
    if not keep:
        raise InputError(f"no input of the dataset could be turned into a {representation!r} graph")
    graphs, y = [graphs[i] for i in keep], labels[keep]
    classification = task == "classification"
    train, val, test = _split(cfg.get("split", {}), graphs, y, classification, seed)
    cls = GNNClassifier if classification else GNNRegressor
    estimator = cls(**model_cfg, **trainer_cfg, seed=seed, run_dir=str(run_dir), resume=True, progress=progress)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(run_dir / "config.json", json.dumps(cfg, indent=1))
    pick = lambda idx: [graphs[i] for i in idx]  # noqa: E731
    estimator.fit(pick(train), y[train], val=(pick(val), y[val]) if len(val) else None)
    torch.save(estimator, run_dir / "estimator.pt")
    metrics: dict[str, Any] = {"n_train": len(train), "n_val": len(val), "n_test": len(test), "n_unparsed": len(failures)}
    if len(test):
        out = estimator._outputs(pick(test))
        target = np.searchsorted(estimator.classes_, y[test]) if classification and estimator.task_ == "multiclass" else y[test]
        if not classification:
            out = out * estimator.y_std_ + estimator.y_mean_
        metrics.update(evaluate(estimator.task_, target, out))
    atomic_write(run_dir / "metrics.json", json.dumps(metrics, indent=1))
    _plot_history(estimator.history_, run_dir / "learning_curve.png")
    return metrics


def predict_run(run_dir: str | os.PathLike, inputs: list[str], output: str | os.PathLike | None = None) -> pd.DataFrame:
    """Predictions (and class probabilities) of a finished run for glycan or SMILES strings.

    The strings are read in the run's representation (its ``config.json``). Those that cannot be
    read get an ``error`` message and no prediction. With ``output`` the table is also written as
    CSV.
    """
    path = Path(run_dir) / "estimator.pt"
    if not path.is_file():
        raise InputError(f"{str(path)!r} not found: is {str(run_dir)!r} a finished run folder?")
    estimator = torch.load(path, weights_only=False)
    representation = _representation(load_config(Path(run_dir) / "config.json"))
    graphs, failures = build_graphs(representation, list(inputs))
    table = pd.DataFrame({"input": list(inputs), "prediction": None, "error": ""})
    for row, message in failures:
        table.loc[row, "error"] = message
    ok = [i for i, g in enumerate(graphs) if g is not None]
    if ok:
        chosen = [graphs[i] for i in ok]
        pred = estimator.predict(chosen)
        table.loc[ok, "prediction"] = list(pred) if pred.ndim == 1 else [list(p) for p in pred]
        if hasattr(estimator, "predict_proba"):
            proba = estimator.predict_proba(chosen)
            for j, c in enumerate(estimator.classes_):
                table.loc[ok, f"proba_{c}"] = proba[:, j]
    if output is not None:
        from reprs.fileio import atomic_write

        atomic_write(output, table.to_csv(index=False))
    return table
