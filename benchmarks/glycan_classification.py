"""Glycan classification benchmark after GLAMOUR (Mohapatra, An & Gomez-Bombarelli, arXiv:2103.02565).

Tasks
-----
- ``glycowork-domain``, ``glycowork-kingdom``: taxonomy (multiclass) of glycowork's shipped unique
  glycans (:func:`reprs.datasets.load_glycans`; a newer, larger release than the paper's GlycoBase).
- ``paper-immuno``: the paper's own 1313 glycans with immunogenicity labels (binary);
  ``paper-domain``, ``paper-kingdom``: its 8898 taxonomy glycans (``glycobase_taxonomy_multiclass``).
  Read in place from ``../shared/data/glamour`` (skipped with a note where absent).

Methods
-------
Each GNN of :mod:`learners` (GCN, GIN, GINE, GAT, NNConv, AttentiveFP) on the glycan macromolecule
graphs (128-bit Morgan fingerprints of monomers, 40-dim linkage encodings); a WL-subtree kernel SVM
(:class:`graphs.kernels.GraphKernel`, monomer labels); a fingerprint-bag baseline (sum of monomer
fingerprints -> standardised logistic regression).

Protocol: stratified 0.6/0.2/0.2 split per seed (split seed ``108 + seed``; GLAMOUR used one random
0.6/0.2/0.2 split with seed 108), early stopping on validation balanced accuracy, test metrics
accuracy, macro-F1 and one-vs-rest macro ROC-AUC as mean +- std over seeds.

The default is a quick run (subsample of 1000 glycans per task, width 32, 25 epochs, 3 seeds, one
torch thread: a few minutes on 2 shared CPU cores). ``--full`` uses every glycan, width 32,
60 epochs with patience 30, batch 256 (GLAMOUR's patience and batch size) and 5 seeds: about 90
minutes per glycowork task on one CPU core, NNConv's per-edge weight matrices the largest part.
Explicit options override ``--full``'s; ``--device cuda`` (or ``auto``) runs the GNNs on a GPU
unchanged.

Usage::

    python benchmarks/glycan_classification.py                # quick
    python benchmarks/glycan_classification.py --full --device auto --json results.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from learners import GNNClassifier
from learners.metrics import accuracy, macro_f1, roc_auc
from learners.splits import stratified_split
from reprs.datasets import load_glycans
from reprs.glycans import build_glycan_graphs
from reprs.fileio import atomic_write

GLAMOUR_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "glamour"
TASKS = ("glycowork-domain", "glycowork-kingdom", "paper-immuno", "paper-domain", "paper-kingdom")
GNN_KINDS = ("gcn", "gin", "gine", "gat", "nnconv", "attentivefp")
BASELINES = ("fp-logreg", "wl-svm")


def load_task(name: str) -> tuple[list[str], np.ndarray] | None:
    """Glycan strings and labels of a task; None where the paper's tables are absent."""
    if name.startswith("glycowork-"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = load_glycans(name.split("-")[1].capitalize(), min_class_size=5)
        return table["glycan"].tolist(), table["label"].to_numpy()
    if not GLAMOUR_DIR.is_dir():
        return None
    if name == "paper-immuno":
        table = pd.read_csv(GLAMOUR_DIR / "glycobase_immuno.txt")
        return table["Glycan"].tolist(), table["Immunogenic"].to_numpy()
    table = pd.read_csv(GLAMOUR_DIR / "glycobase_taxonomy_multiclass.txt")
    column = name.split("-")[1]
    table = table.dropna(subset=[column])
    return table["Glycan"].tolist(), table[column].to_numpy()


def prepare(name: str, subsample: int | None, seed: int = 0):
    """Graphs and labels of a task: unparseable glycans and classes under 5 members dropped."""
    loaded = load_task(name)
    if loaded is None:
        return None
    strings, labels = loaded
    if subsample is not None and subsample < len(strings):
        pick = np.sort(np.random.default_rng(seed).choice(len(strings), subsample, replace=False))
        strings, labels = [strings[i] for i in pick], labels[pick]
    graphs, failures = build_glycan_graphs(strings, errors="skip")
    keep = np.array([g is not None for g in graphs])
    classes, counts = np.unique(labels[keep], return_counts=True)
    keep &= np.isin(labels, classes[counts >= 5])
    return [g for g, k in zip(graphs, keep) if k], labels[keep], len(failures)


def _metrics(y_true: np.ndarray, scores: np.ndarray) -> dict:
    """Accuracy and macro-F1 of the top-scoring class; ROC-AUC one-vs-rest of each class's score.

    ``scores`` is ``(n, n_classes)``: probabilities, or an SVM's decision values. AUC is taken
    over the classes present in ``y_true`` (a rare class may be missing from a test split).
    """
    pred = scores.argmax(axis=1)
    present = np.unique(y_true)
    out = {"accuracy": accuracy(y_true, pred), "macro_f1": macro_f1(y_true, pred)}
    if len(present) == 2:
        out["roc_auc"] = roc_auc(y_true, scores[:, present[1]], classes=present)
    elif len(present) > 2:
        out["roc_auc"] = roc_auc(y_true, scores[:, present], classes=present)
    return out


def _full(scores: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Scores over the fitted ``classes`` -> columns of all ``n_classes`` (absent: -inf)."""
    out = np.full((len(scores), n_classes), -np.inf)
    out[:, classes] = scores
    return out


def run_gnn(kind, graphs, codes, parts, seed, args) -> dict:
    train, val, test = parts
    clf = GNNClassifier(
        kind=kind, hidden=args.hidden, layers=args.layers, dropout=0.1, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, patience=args.patience, monitor="balanced_accuracy", seed=seed, device=args.device,
    )
    clf.fit([graphs[i] for i in train], codes[train], val=([graphs[i] for i in val], codes[val]))
    return _metrics(codes[test], _full(clf.predict_proba([graphs[i] for i in test]), clf.classes_, codes.max() + 1))


def run_fp_logreg(graphs, codes, parts, seed, args) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, _, test = parts
    bag = np.stack([np.sum([x for _, x in g.nodes(data="x")], axis=0) for g in graphs])
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000, random_state=seed))
    model.fit(bag[train], codes[train])
    return _metrics(codes[test], _full(model.predict_proba(bag[test]), model.classes_, codes.max() + 1))


def run_wl_svm(graphs, codes, parts, seed, args) -> dict:
    from sklearn.svm import SVC

    from graphs.kernels import GraphKernel

    train, _, test = parts
    kernel = GraphKernel(kind="wl", n_iter=3)
    svm = SVC(kernel="precomputed", C=1.0).fit(kernel.fit_transform([graphs[i] for i in train]), codes[train])
    decision = svm.decision_function(kernel.transform([graphs[i] for i in test]))
    if decision.ndim == 1:  # binary: the score of classes_[1]
        decision = np.stack([-decision, decision], axis=1)
    return _metrics(codes[test], _full(decision, svm.classes_, codes.max() + 1))


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", choices=TASKS, help="default: glycowork-domain glycowork-kingdom paper-immuno (--full: all)")
    p.add_argument("--methods", nargs="+", default=["gcn", "gine", "gat", "nnconv", "attentivefp", *BASELINES], choices=GNN_KINDS + BASELINES)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--subsample", type=int, default=1000, help="glycans per task (0: all)")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (more oversubscribes a shared machine)")
    p.add_argument("--full", action="store_true", help="all glycans, 5 seeds, 60 epochs, patience 30, batch 256")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    if args.full:  # new defaults; options given explicitly still win
        p.set_defaults(seeds=5, subsample=0, epochs=60, patience=30, batch_size=256)
        args = p.parse_args(argv)
    if args.tasks is None:
        args.tasks = list(TASKS) if args.full else ["glycowork-domain", "glycowork-kingdom", "paper-immuno"]
    torch.set_num_threads(args.threads)
    methods = args.methods
    rows = []
    for task in args.tasks:
        prepared = prepare(task, args.subsample or None)
        if prepared is None:
            print(f"note: {task} skipped, GLAMOUR tables not found at {GLAMOUR_DIR}")
            continue
        graphs, labels, n_failed = prepared
        classes, codes = np.unique(labels, return_inverse=True)
        print(f"{task}: {len(graphs)} glycans ({n_failed} unparseable dropped), classes "
              + ", ".join(f"{c}={n}" for c, n in zip(classes, np.bincount(codes))))
        for method in methods:
            scores, seconds = [], 0.0
            for seed in range(args.seeds):
                parts = stratified_split(codes, (0.6, 0.2, 0.2), seed=108 + seed)
                tic = time.perf_counter()
                if method in GNN_KINDS:
                    scores.append(run_gnn(method, graphs, codes, parts, seed, args))
                else:
                    scores.append({"fp-logreg": run_fp_logreg, "wl-svm": run_wl_svm}[method](graphs, codes, parts, seed, args))
                seconds += time.perf_counter() - tic
            row = {"task": task, "method": method, "n": len(graphs), "seeds": args.seeds, "seconds_per_seed": seconds / args.seeds}
            for metric in ("accuracy", "macro_f1", "roc_auc"):
                values = np.array([s.get(metric, np.nan) for s in scores])
                row[metric], row[f"{metric}_std"] = float(np.nanmean(values)), float(np.nanstd(values))
            rows.append(row)
            if args.json:  # after every row: a long run that is stopped keeps what it finished
                atomic_write(args.json, json.dumps(rows, indent=1))
            print(f"  {method:12s} acc {row['accuracy']:.3f}  f1 {row['macro_f1']:.3f}  auc {row['roc_auc']:.3f}  ({row['seconds_per_seed']:.1f} s/seed)", flush=True)
    print()
    print("| task | method | n | accuracy | macro-F1 | ROC-AUC | s/seed |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['task']} | {r['method']} | {r['n']} | {r['accuracy']:.3f} ± {r['accuracy_std']:.3f} | "
            f"{r['macro_f1']:.3f} ± {r['macro_f1_std']:.3f} | {r['roc_auc']:.3f} ± {r['roc_auc_std']:.3f} | {r['seconds_per_seed']:.1f} |"
        )
    return rows


if __name__ == "__main__":
    main()
