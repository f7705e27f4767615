"""Training runs from a config file, and predictions from a finished run (behind ``matrep train/predict``).

A config (TOML or JSON) names the dataset, the model, the trainer settings and the split::

    task = "classification"          # or "regression"
    seed = 0
    [dataset]
    source = "glycowork"             # glycowork's shipped taxonomy table, or "csv"
    level = "Kingdom"
    min_class_size = 10
    subsample = 2000                 # optional
    # source = "csv": path, glycan_column = "glycan", label_column = "label"
    [model]
    kind = "gine"                    # any GraphModel kind; hidden, layers, readout, dropout
    [trainer]
    epochs = 100                     # batch_size, lr, weight_decay, schedule, patience, device
    [split]
    fractions = [0.8, 0.1, 0.1]
    by = "stratified"                # "random", "hash" (isomorphic glycans together), "core"

The run folder receives ``config.json``, the trainer's ``checkpoint.pt`` / ``best.pt`` /
``log.jsonl``, ``estimator.pt`` (the fitted estimator), ``metrics.json`` (test-set metrics) and
``learning_curve.png``. A rerun into the same folder resumes from the checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from learners.errors import InputError

__all__ = ["load_config", "train_run", "predict_run"]

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


def _dataset(spec: dict, seed: int) -> tuple[list[str], np.ndarray]:
    source = spec.get("source", "glycowork")
    if source == "glycowork":
        from reprs.datasets import load_glycans

        table = load_glycans(spec.get("level", "Kingdom"), min_class_size=int(spec.get("min_class_size", 10)))
        strings, labels = table["glycan"].tolist(), table["label"].to_numpy()
    elif source == "csv":
        if "path" not in spec:
            raise InputError("dataset source 'csv' needs a 'path'")
        table = pd.read_csv(spec["path"])
        g_col, y_col = spec.get("glycan_column", "glycan"), spec.get("label_column", "label")
        missing = {g_col, y_col} - set(table.columns)
        if missing:
            raise InputError(f"columns {sorted(missing)} not in {spec['path']}; it has {list(table.columns)}")
        table = table.dropna(subset=[g_col, y_col])
        strings, labels = table[g_col].astype(str).tolist(), table[y_col].to_numpy()
    else:
        raise InputError(f"unknown dataset source {source!r}; use 'glycowork' or 'csv'")
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
        For unknown config keys or values, or a dataset without usable glycans.
    """
    from learners import GNNClassifier, GNNRegressor
    from learners.metrics import evaluate
    from reprs.glycans import build_glycan_graphs
    from reprs.graphio import atomic_write

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
    strings, labels = _dataset(cfg.get("dataset", {}), seed)
    graphs, failures = build_glycan_graphs(strings, errors="skip")
    keep = [i for i, g in enumerate(graphs) if g is not None]
    if not keep:
        raise InputError("no glycan of the dataset could be turned into a graph")
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


def predict_run(run_dir: str | os.PathLike, glycans: list[str], output: str | os.PathLike | None = None) -> pd.DataFrame:
    """Predictions (and class probabilities) of a finished run for glycan strings.

    Glycans that cannot be parsed get an ``error`` message and no prediction. With ``output``
    the table is also written as CSV.
    """
    from reprs.glycans import build_glycan_graphs

    path = Path(run_dir) / "estimator.pt"
    if not path.is_file():
        raise InputError(f"{str(path)!r} not found: is {str(run_dir)!r} a finished run folder?")
    estimator = torch.load(path, weights_only=False)
    graphs, failures = build_glycan_graphs(list(glycans), errors="skip")
    table = pd.DataFrame({"glycan": list(glycans), "prediction": None, "error": ""})
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
        from reprs.graphio import atomic_write

        atomic_write(output, table.to_csv(index=False))
    return table
