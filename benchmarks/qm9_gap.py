"""QM9 HOMO-LUMO gap regression with the GNNs of :mod:`learners` on 2-D molecular graphs.

Data: QM9 (Ramakrishnan et al., Sci. Data 1, 140022 (2014)) as the ``qm9pack`` wheel ships it
(:func:`reprs.datasets.load_qm9`; install the ``bench`` extra). A fixed subset: molecules are
shuffled once with seed 0 and the first 10,000 train, the next 1,000 validate (early stopping and
the ridge penalty) and the next 1,000 test. Graphs are :class:`reprs.featurizers.MolecularGraph`
(heavy atoms, Chemprop atom and bond features, no coordinates).

Methods: each GNN of :mod:`learners` (:class:`learners.GNNRegressor`: targets standardised,
AdamW, cosine schedule, best validation epoch kept); baselines: the training mean, and ridge
regression on Morgan count fingerprints (radius 2, 2048 bits; penalty chosen on the validation
set). Reported: test MAE, RMSE (eV) and R^2, mean +- std over model seeds (the split is fixed).

The default configuration (width 64, NNConv 32, 3 layers, sum readout, 40 epochs, 1 seed, one
torch thread) is a CPU run of about a quarter of an hour; ``--device cuda`` (or ``auto``) runs the GNNs on a GPU unchanged.

Usage::

    python benchmarks/qm9_gap.py
    python benchmarks/qm9_gap.py --epochs 200 --seeds 3 --device auto --json qm9.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import torch

from learners import GNNRegressor
from learners.metrics import mae, r2, rmse
from learners.models import KIND_OPTIONS
from reprs.datasets import load_qm9
from reprs.featurizers import MolecularGraph, MorganFingerprint
from reprs.fileio import atomic_write

GNN_KINDS = ("gcn", "gin", "gine", "gat", "nnconv", "attentivefp")
BASELINES = ("mean", "morgan-ridge")
SIZES = (10_000, 1_000, 1_000)


def fixed_subset(n_molecules: int, sizes=SIZES, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test rows: one seeded shuffle, cut into ``sizes``."""
    order = np.random.default_rng(seed).permutation(n_molecules)
    cuts = np.cumsum(sizes)
    return order[: cuts[0]], order[cuts[0] : cuts[1]], order[cuts[1] : cuts[2]]


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    return {"mae": mae(y_true, y_pred), "rmse": rmse(y_true, y_pred), "r2": r2(y_true, y_pred)}


def run_gnn(kind, graphs, y, parts, seed, args) -> dict:
    train, val, test = parts
    model = GNNRegressor(
        kind=kind, hidden=args.nnconv_hidden if kind == "nnconv" else args.hidden, layers=args.layers, epochs=args.epochs,
        # --readout for the kinds that read it (attentivefp has its own; the estimator refuses it there)
        **({"readout": args.readout} if kind in KIND_OPTIONS["readout"] else {}),
        batch_size=args.batch_size, lr=args.lr, patience=args.patience, seed=seed, device=args.device,
    )
    model.fit([graphs[i] for i in train], y[train], val=([graphs[i] for i in val], y[val]))
    return _scores(y[test], model.predict([graphs[i] for i in test]))


def run_baseline(method, smiles, y, parts, seed, args) -> dict:
    train, val, test = parts
    if method == "mean":
        return _scores(y[test], np.full(len(test), y[train].mean()))
    from sklearn.linear_model import Ridge

    fp = MorganFingerprint(radius=2, n_bits=2048, counts=True).featurize_many([smiles[i] for i in np.concatenate(parts)], progress=False)
    x_train, x_val, x_test = np.split(fp.astype(float), np.cumsum([len(train), len(val)]))
    alphas = 10.0 ** np.arange(-1, 4)
    fits = [Ridge(alpha=a).fit(x_train, y[train]) for a in alphas]
    best = min(fits, key=lambda m: mae(y[val], m.predict(x_val)))
    return _scores(y[test], best.predict(x_test))


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", nargs="+", default=[*GNN_KINDS, *BASELINES], choices=GNN_KINDS + BASELINES)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--nnconv-hidden", type=int, default=32, help="NNConv's width (its per-edge weight matrices grow as its square)")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--readout", default="sum", choices=("mean", "sum", "max"))
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--json", help="also write the rows here (after every method)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    table = load_qm9(["gap"])
    parts = fixed_subset(len(table))
    rows_used = np.concatenate(parts)
    smiles = dict(zip(rows_used, table["smiles"].to_numpy()[rows_used]))
    y = table["gap"].to_numpy()
    tic = time.perf_counter()
    graphs = dict(zip(rows_used, MolecularGraph().featurize_many([smiles[i] for i in rows_used], progress=False)))
    print(f"QM9 gap: {len(table)} molecules, subset {'/'.join(map(str, SIZES))}; "
          f"{len(rows_used)} graphs in {time.perf_counter() - tic:.1f} s; test-set gap std {y[parts[2]].std():.3f} eV")

    rows = []
    for method in args.methods:
        scores, seconds = [], 0.0
        for seed in range(args.seeds):
            tic = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if method in GNN_KINDS:
                    scores.append(run_gnn(method, graphs, y, parts, seed, args))
                else:
                    scores.append(run_baseline(method, smiles, y, parts, seed, args))
            seconds += time.perf_counter() - tic
        row = {"method": method, "seeds": args.seeds, "epochs": args.epochs, "seconds_per_seed": seconds / args.seeds}
        for metric in ("mae", "rmse", "r2"):
            values = np.array([s[metric] for s in scores])
            row[metric], row[f"{metric}_std"] = float(values.mean()), float(values.std())
        rows.append(row)
        print(f"  {method:13s} MAE {row['mae']:.4f} ± {row['mae_std']:.4f} eV  RMSE {row['rmse']:.4f}  "
              f"R2 {row['r2']:.3f}  ({row['seconds_per_seed']:.0f} s/seed)", flush=True)
        if args.json:  # after every method: a long run that is stopped keeps what it finished
            atomic_write(args.json, json.dumps(rows, indent=1))
    print()
    print("| method | test MAE (eV) | RMSE (eV) | R2 | s/seed |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['mae']:.4f} ± {r['mae_std']:.4f} | {r['rmse']:.4f} | {r['r2']:.3f} | {r['seconds_per_seed']:.0f} |")
    return rows


if __name__ == "__main__":
    main()
