"""Glycan benchmark at GlycanML's breadth (Xu et al., arXiv:2405.16206) on our rebuilt splits.

Tasks (:mod:`reprs.glycan_tasks`): taxonomy at eight levels (one multi-task model for all eight,
``taxonomy-mtl``, and single-level models), glycosylation type (N / O / free), immunogenicity
(GLAMOUR's table, skipped where ``../shared/data/glamour`` is absent) and lectin binding.
Splits: the files of ``benchmarks/glycan_splits/`` (``structure``: GlycanML's motif-count k-means
split rebuilt, ``random``: stratified); they are not GlycanML's own split files, which are not
available offline, so numbers are comparable in protocol, not in test set.

Metrics (mean and std over seeds): accuracy and macro-F1 (taxonomy, glycosylation; macro over the
classes present in the test part or predicted), AUPRC and AUROC (immunogenicity), Spearman's rho
over all test pairs (binding, split by lectin).

Methods: GNNs of :mod:`learners` (``rgcn``, ``compgcn``, ``gin``, ... any :data:`MODEL_KINDS`),
the multi-task RGCN for taxonomy, a fingerprint-bag logistic regression (``fp-logreg``) for the
classification tasks; for binding a per-glycan mean baseline (``glycan-mean``: a test pair is
predicted by the glycan's mean binding over training lectins), a gradient-boosted model of
glycan fingerprint bag + lectin amino-acid / dipeptide composition (``fp-comp-hgb``) and a GNN pair
model (``gnn-rgcn``, :class:`learners.binding.BindingRegressor`: RGCN glycan embedding met by an MLP
of the lectin's composition; the epoch of best Spearman's rho on the validation lectins' pairs is
kept, and ``--patience`` stops early).

Budget: the defaults are a reduced run for 2 shared CPU cores (``--train-subsample`` training
glycans, few epochs); ``--full`` takes GlycanML's training settings (all training data, 50
epochs, batch 256, lr 5e-4, weight decay 1e-3; our architectures at width 128, every GNN kind, all
binding pairs). Every row records the budget it ran under.

Usage::

    python benchmarks/glycan_benchmark.py --tasks glycosylation --json out.json
    python benchmarks/glycan_benchmark.py --full --device auto
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from learners import GNNClassifier
from learners.estimators import GNNMultiTaskClassifier
from learners.metrics import accuracy, macro_f1
from learners.models import KIND_OPTIONS, MODEL_KINDS
from learners.splits import check_split_labels, read_split_file
from reprs.fileio import atomic_write
from reprs.glycan_taxonomy import TAXONOMY_LEVELS
from reprs.glycan_tasks import load_task, sequence_composition, task_graphs

HERE = Path(__file__).resolve().parent
SPLITS = HERE / "glycan_splits"
GLAMOUR_IMMUNO = HERE.parents[1] / "shared" / "data" / "glamour" / "glycobase_immuno.txt"
REPORTED = HERE.parents[1] / "shared" / "data" / "glycan-benchmarks" / "REPORTED.md"
TASKS = ("taxonomy-mtl", *(f"taxonomy-{lv.lower()}" for lv in TAXONOMY_LEVELS), "glycosylation", "immunogenicity",
         "binding")


def _subsample(idx: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    if n is None or n >= len(idx):
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, n, replace=False))


def _bag(graphs) -> np.ndarray:
    return np.stack([np.sum([x for _, x in g.nodes(data="x")], axis=0) for g in graphs])


def _class_scores(y_true: np.ndarray, pred: np.ndarray) -> dict:
    return {"accuracy": accuracy(y_true, pred), "macro_f1": macro_f1(y_true, pred)}


def _binary_scores(y_true: np.ndarray, score: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {"auprc": float(average_precision_score(y_true, score)), "auroc": float(roc_auc_score(y_true, score))}


def _composition(kind: str, args) -> dict:
    """``--composition`` for the kinds that read it (the estimators refuse it on the others)."""
    return {"composition": args.composition} if kind in KIND_OPTIONS["composition"] else {}


def _fit_gnn(kind, graphs, y, train, val, seed, args, multitask=False):
    params = dict(kind=kind, hidden=args.hidden, layers=args.layers, dropout=0.1, epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, patience=args.patience,
                  **_composition(kind, args), seed=seed, device=args.device)
    cls = GNNMultiTaskClassifier if multitask else GNNClassifier
    if multitask:
        model = cls(monitor="accuracy", **params)
        return model.fit([graphs[i] for i in train], y[train], val=([graphs[i] for i in val], y[val]))
    seen = val[np.isin(y[val], np.unique(y[train]))]  # early stopping on the classes training knows
    if len(seen) < 2:
        return cls(monitor="loss", **params).fit([graphs[i] for i in train], y[train])
    model = cls(monitor="balanced_accuracy", **params)
    return model.fit([graphs[i] for i in train], y[train], val=([graphs[i] for i in seen], y[seen]))


def run_classification(task_name, method, graphs, table, parts, seed, args) -> dict:
    train, val, test = parts
    train = _subsample(train, args.train_subsample, seed)
    if task_name == "taxonomy-mtl":
        y = table[list(TAXONOMY_LEVELS)].to_numpy().astype(str)
        model = _fit_gnn(method, graphs, y, train, val, seed, args, multitask=True)
        pred = model.predict([graphs[i] for i in test])
        return {lv: _class_scores(y[test, k], pred[:, k]) for k, lv in enumerate(TAXONOMY_LEVELS)}
    y = table["label"].to_numpy()
    y = y.astype(str) if y.dtype == object else y
    binary = task_name == "immunogenicity"
    check_split_labels(y, (train, val, test) if binary else (train,))
    if method == "fp-logreg":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        bag = _bag(graphs)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, random_state=seed))
        model.fit(bag[train], y[train])
        proba, classes = model.predict_proba(bag[test]), model.classes_
    else:
        model = _fit_gnn(method, graphs, y, train, val, seed, args)
        proba, classes = model.predict_proba([graphs[i] for i in test]), model.classes_
    if binary:
        return _binary_scores(y[test], proba[:, list(classes).index(1)])
    return _class_scores(y[test], classes[proba.argmax(axis=1)])


def run_binding(method, task, graphs, table, parts_by_sequence, seed, args) -> dict:
    from scipy.stats import spearmanr

    train_seq, val_seq, test_seq = parts_by_sequence
    rows_train = np.flatnonzero(table["sequence"].isin(train_seq).to_numpy())
    rows_val = np.flatnonzero(table["sequence"].isin(val_seq).to_numpy())
    rows_test = np.flatnonzero(table["sequence"].isin(test_seq).to_numpy())
    rows_train = _subsample(rows_train, args.pair_subsample, seed)
    y = table["label"].to_numpy()
    gidx = table["graph"].to_numpy()
    if method.startswith("gnn-"):
        from learners.binding import BindingRegressor

        rows_train = _subsample(rows_train, args.gnn_pair_subsample, seed)
        rows_test = _subsample(rows_test, args.gnn_test_subsample, seed)
        rows_val = _subsample(rows_val, args.gnn_test_subsample, seed)
        sequences = sorted(table["sequence"].unique())
        lectin = {s: i for i, s in enumerate(sequences)}
        pairs = np.stack([gidx, table["sequence"].map(lectin).to_numpy()], axis=1)
        # Early stopping on the validation lectins' pairs (the split's validation part), best epoch's weights kept.
        kind = method.removeprefix("gnn-")
        model = BindingRegressor(kind=kind, hidden=args.hidden, layers=args.layers,
                                 **_composition(kind, args), epochs=args.gnn_epochs, batch_size=512, lr=args.lr,
                                 patience=args.patience, monitor="spearman", seed=seed, device=args.device)
        model.fit(graphs, sequence_composition(sequences), pairs[rows_train], y[rows_train],
                  val=(pairs[rows_val], y[rows_val]) if len(rows_val) else None)
        pred = model.predict(pairs[rows_test])
        return {"spearman": float(spearmanr(y[rows_test], pred).statistic),
                "best_epoch": float(model.trainer_.best_epoch_), "epochs_run": float(len(model.history_))}
    elif method == "glycan-mean":
        sums = np.bincount(gidx[rows_train], weights=y[rows_train], minlength=len(graphs))
        counts = np.bincount(gidx[rows_train], minlength=len(graphs))
        means = np.where(counts > 0, sums / np.maximum(counts, 1), y[rows_train].mean())
        pred = means[gidx[rows_test]]
    else:
        from sklearn.ensemble import HistGradientBoostingRegressor

        bag = _bag(graphs)
        sequences = sorted(table["sequence"].unique())
        comp = dict(zip(sequences, sequence_composition(sequences)))

        def features(rows):
            return np.hstack([bag[gidx[rows]], np.stack([comp[s] for s in table["sequence"].to_numpy()[rows]])])

        model = HistGradientBoostingRegressor(max_iter=args.hgb_iter, random_state=seed)
        model.fit(features(rows_train), y[rows_train])
        pred = np.concatenate([model.predict(features(chunk)) for chunk in np.array_split(rows_test, 20)])
    return {"spearman": float(spearmanr(y[rows_test], pred).statistic)}


#: REPORTED.md column -> (our task, our metric, factor to the reported scale)
COLUMNS = {**{lv: (f"taxonomy-{lv.lower()}", "accuracy", 100.0) for lv in TAXONOMY_LEVELS},
           "Immuno (AUPRC)": ("immunogenicity", "auprc", 1.0), "Glycos (acc)": ("glycosylation", "accuracy", 100.0),
           "Interaction (ρ)": ("binding", "spearman", 1.0)}


def reported_best(path: Path, heading: str) -> dict[str, tuple[float, str]] | None:
    """Best mean per column of a table in REPORTED.md (read in place; None where the file is absent)."""
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("## ") and heading in line), None)
    if start is None:
        return None
    first = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("|"))
    end = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    table = lines[first:end]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    best: dict[str, tuple[float, str]] = {}
    for line in table[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        model = cells[0].replace("*", "")
        for name, cell in zip(header[1:], cells[1:]):
            try:
                value = float(cell.replace("*", "").split("(")[0])
            except ValueError:
                continue
            if name not in best or value > best[name][0]:
                best[name] = (value, model)
    return best


def _ours(rows: list[dict], task: str, metric: str, split: str) -> tuple[float, float, str] | None:
    """Our best (mean, std, method) on a task and split; taxonomy levels include the multi-task model."""
    found = []
    for r in rows:
        if r["split"] != split:
            continue
        if r["task"] == task and metric in r:
            found.append((r[metric], r[f"{metric}_std"], r["method"]))
        level = task.removeprefix("taxonomy-").capitalize()
        if r["task"] == "taxonomy-mtl" and task.startswith("taxonomy-") and f"{level}/{metric}" in r:
            found.append((r[f"{level}/{metric}"], r[f"{level}/{metric}_std"], f"mtl-{r['method']}"))
    return max(found) if found else None


def markdown(rows: list[dict]) -> list[str]:
    """Markdown lines of result rows: task, split, method, each metric as mean ± std, seconds per seed."""
    out = ["| task | split | method | metrics (mean ± std over seeds) | s/seed |", "|---|---|---|---|---|"]
    for r in rows:
        keys = [k for k in r if k.endswith("_std")]
        groups = {"": keys}
        if r["task"] == "taxonomy-mtl":  # one line per level of the multi-task model
            groups = {f" ({lv})": [k for k in keys if k.startswith(lv + "/")] for lv in TAXONOMY_LEVELS}
        for suffix, group in groups.items():
            cells = ", ".join(f"{k[:-4].split('/')[-1]} {r[k[:-4]]:.3f} ± {r[k]:.3f}" for k in group)
            out.append(f"| {r['task']}{suffix} | {r['split']} | {r['method']} | {cells} | {r['seconds_per_seed']:.0f} |")
    return out


def compare(rows: list[dict], reported: Path = REPORTED, split: str = "structure") -> list[str]:
    """Markdown lines: our best per GlycanML column beside GlycanML's best reported (different splits)."""
    best = reported_best(reported, "GlycanML single-task results")
    if best is None:
        return [f"(reported numbers not found at {reported}; comparison skipped)"]
    out = [f"| column | GlycanML best (v1 Table 3) | ours, best on our {split} split | ours - theirs |", "|---|---|---|---|"]
    for column, (task, metric, factor) in COLUMNS.items():
        theirs = best.get(column)
        ours = _ours(rows, task, metric, split)
        if theirs is None or ours is None:
            continue
        mean, std, method = ours
        out.append(f"| {column} | {theirs[0]:.3g} ({theirs[1]}) | {mean * factor:.3g} ± {std * factor:.2g} ({method}) | "
                   f"{mean * factor - theirs[0]:+.3g} |")
    best_aa = reported_best(reported, "GlycanAA")
    if best_aa:
        out += ["", f"| column (macro-F1) | best of GlycanAA's table | ours, best on our {split} split | ours - theirs |",
                "|---|---|---|---|"]
        for column, task in [*((lv, f"taxonomy-{lv.lower()}") for lv in TAXONOMY_LEVELS), ("Glycos", "glycosylation")]:
            ours = _ours(rows, task, "macro_f1", split)
            if column in best_aa and ours is not None:
                theirs = best_aa[column]
                out.append(f"| {column} | {theirs[0]:.3f} ({theirs[1]}) | {ours[0]:.3f} ± {ours[1]:.3f} ({ours[2]}) | "
                           f"{ours[0] - theirs[0]:+.3f} |")
    return out


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    p.add_argument("--splits", nargs="+", choices=("structure", "random"), default=["structure", "random"])
    p.add_argument("--methods", nargs="+", default=["rgcn", "compgcn", "gin", "fp-logreg"],
                   help="GNN kinds and fp-logreg (classification); binding always runs glycan-mean and fp-comp-hgb")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--train-subsample", type=int, default=2000, help="training glycans per run (0: all)")
    p.add_argument("--pair-subsample", type=int, default=100000, help="binding training pairs (0: all)")
    p.add_argument("--hgb-iter", type=int, default=100)
    p.add_argument("--binding-methods", nargs="+", default=["glycan-mean", "fp-comp-hgb", "gnn-rgcn"])
    p.add_argument("--gnn-pair-subsample", type=int, default=20000, help="binding GNN training pairs (0: all)")
    p.add_argument("--gnn-test-subsample", type=int, default=20000, help="binding GNN test pairs scored (0: all)")
    p.add_argument("--gnn-epochs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--composition", choices=("mult", "sub", "corr"), default="mult", help="CompGCN's composition")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--full", action="store_true", help="GlycanML's protocol: all data, 50 epochs, batch 256, "
                   "lr 5e-4, weight decay 1e-3, width 128, all GNN kinds")
    p.add_argument("--json", type=Path)
    p.add_argument("--compare", nargs="+", type=Path, help="only print the comparison of these result files "
                   "with the reported numbers")
    p.add_argument("--reported", type=Path, default=REPORTED, help="REPORTED.md of the glycan benchmarks (read in place)")
    p.add_argument("--immuno-table", type=Path, default=GLAMOUR_IMMUNO,
                   help="GLAMOUR's glycobase_immuno.txt (default: ../shared/data/glamour beside the project)")
    args = p.parse_args(argv)
    if args.full:
        p.set_defaults(train_subsample=0, pair_subsample=0, epochs=50, batch_size=256, lr=5e-4, weight_decay=1e-3,
                       hidden=128, hgb_iter=300, gnn_pair_subsample=0, gnn_test_subsample=0, gnn_epochs=20,
                       methods=[*[k for k in MODEL_KINDS if k != "attentivefp"], "fp-logreg"])
        args = p.parse_args(argv)
    if args.compare:
        rows = [r for path in args.compare for r in json.loads(path.read_text())]
        print("\n".join(markdown(rows)))
        for split in args.splits:
            print("\n".join(compare(rows, args.reported, split)))
        return rows
    args.train_subsample = args.train_subsample or None
    args.pair_subsample = args.pair_subsample or None
    args.gnn_pair_subsample = args.gnn_pair_subsample or None
    args.gnn_test_subsample = args.gnn_test_subsample or None
    torch.set_num_threads(args.threads)
    budget = {k: getattr(args, k) for k in ("train_subsample", "pair_subsample", "epochs", "batch_size", "lr",
                                            "weight_decay", "hidden", "layers", "composition", "patience", "seeds",
                                            "hgb_iter",
                                            "gnn_pair_subsample", "gnn_test_subsample", "gnn_epochs")}
    print("budget", json.dumps(budget))
    rows = []
    for task_name in args.tasks:
        base = "taxonomy" if task_name.startswith("taxonomy") else task_name
        if base == "immunogenicity" and not args.immuno_table.is_file():
            print(f"note: immunogenicity skipped, GLAMOUR table not found at {args.immuno_table}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            task = load_task("taxonomy" if base == "taxonomy" else base, immunogenicity_path=args.immuno_table)
            graphs, table, report = task_graphs(task, warn=False)
        print(f"{task_name}: {task.summary()}; graphs {report['n_built']} of {report['n_glycans']} "
              f"({report['n_failed']} unbuildable, {report['rows_dropped']} rows left out)", flush=True)
        if base == "taxonomy" and task_name != "taxonomy-mtl":
            table = table.assign(label=table[task_name.split("-")[1].capitalize()])
        methods = args.binding_methods if base == "binding" else (
            [m for m in args.methods if m in MODEL_KINDS and m not in ("attentivefp",)][:1] if task_name == "taxonomy-mtl"
            else args.methods)
        for split in args.splits:
            if base == "binding":
                sequences = sorted(table["sequence"].unique())
                parts = read_split_file(SPLITS / "binding.csv.gz", sequences, split)
                parts = tuple(np.asarray(sequences)[p] for p in parts)
            else:
                glycans = [g.graph["name"] for g in graphs]
                parts = read_split_file(SPLITS / f"{base}.csv.gz", glycans, split)
                # graphs are in table order of first appearance, one per row for glycan tasks
            for method in methods:
                results, tic = [], time.perf_counter()
                for seed in range(args.seeds):
                    if base == "binding":
                        results.append(run_binding(method, task, graphs, table, parts, seed, args))
                    else:
                        results.append(run_classification(task_name, method, graphs, table, parts, seed, args))
                seconds = (time.perf_counter() - tic) / args.seeds
                flat = [({f"{lv}/{k}": v for lv, d in r.items() for k, v in d.items()} if task_name == "taxonomy-mtl"
                         else r) for r in results]
                row = {"task": task_name, "split": split, "method": method, "n": len(table), "seconds_per_seed": seconds,
                       "budget": budget}
                for key in flat[0]:
                    values = np.array([f[key] for f in flat])
                    row[key], row[f"{key}_std"] = float(values.mean()), float(values.std())
                rows.append(row)
                if args.json:
                    atomic_write(args.json, json.dumps(rows, indent=1))
                shown = ", ".join(f"{k} {row[k]:.3f}±{row[k + '_std']:.3f}" for k in flat[0])
                print(f"  {split:9s} {method:12s} {shown} ({seconds:.0f} s/seed)", flush=True)
    for split in args.splits:
        print("\n".join(compare(rows, args.reported, split)))
    return rows


if __name__ == "__main__":
    main()
