"""``matrep train CONFIG RUN``, ``matrep predict RUN INPUT`` (:mod:`learners.runs`), ``matrep active
CONFIG -o OUT`` (:mod:`learners.active_config`) and ``matrep backmap MODEL CG -n N -o OUT``
(:mod:`learners.backmap.model`): thin wrappers."""

from __future__ import annotations

import argparse
import json

from reprs.config import add_progress_flags, int_at_least, progress_wanted

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train``, ``predict``, ``active`` and ``backmap`` subcommands to the ``matrep`` parser."""
    p = subparsers.add_parser(
        "train",
        help="train a GNN from a TOML config into a run folder",
        description="Train the model CONFIG describes (dataset, model, trainer, split) and write RUN "
        "(checkpoint, log, metrics, learning curve). Rerunning the same config into RUN resumes from its "
        "checkpoint; RUN holding another config's run is refused.",
    )
    p.add_argument("config", help="TOML config (see learners.runs)")
    p.add_argument("run", help="run folder to write")
    add_progress_flags(p)
    p.set_defaults(func=_train)
    q = subparsers.add_parser(
        "predict",
        help="predict with a trained run",
        description="Predict labels (with class probabilities) or values for the glycans or SMILES "
        "of INPUT (whichever the run was trained on): a text file with one per line, or a CSV with a "
        "'glycan' or 'smiles' column (or --column).",
    )
    q.add_argument("run", help="run folder written by `matrep train`")
    q.add_argument("input", help=".txt (one glycan or SMILES per line) or .csv")
    q.add_argument("--column", help="CSV column to read (default: the one the run's representation reads, "
                                    "'glycan' or 'smiles')")
    q.add_argument("-o", "--output", help="CSV to write (default: print)")
    q.set_defaults(func=_predict)
    a = subparsers.add_parser(
        "active",
        help="grow an NN-potential committee by active learning from a TOML config",
        description="Train a committee on the config's labelled frames, sample candidates (adversarial "
        "attacks on its uncertainty, MD, or random displacements), label the most uncertain with the "
        "ground truth, retrain; repeat. Writes labels.db, log.json, committee.pt and errors.png into OUT; "
        "rerunning the same config resumes after the last finished generation.",
    )
    a.add_argument("config", help="TOML config (see learners.active_config)")
    a.add_argument("-o", "--output", required=True, help="folder to write")
    add_progress_flags(a)
    a.set_defaults(func=_active)
    b = subparsers.add_parser(
        "backmap",
        help="sample all-atom conformations of coarse-grained frames with a trained CGVAE",
        description="Draw N all-atom samples of every CG frame of CG (xyz/extxyz: one bead per line, in the "
        "order and with the bead symbols of the model's mapping) with a CGVAE saved by "
        "learners.backmap.save_cgvae, and write them to OUTPUT (.extxyz or .db; info frame and sample).",
    )
    b.add_argument("model", help="saved CGVAE (.pt)")
    b.add_argument("cg", help="CG frames (any file ASE reads)")
    b.add_argument("-n", "--samples", type=int_at_least(1), default=10, help="samples per CG frame (default 10)")
    b.add_argument("-o", "--output", required=True, help=".extxyz or .db to write")
    b.add_argument("--seed", type=int_at_least(0), default=None, help="seed of the prior draws (default: fresh)")
    b.set_defaults(func=_backmap)


def _train(args: argparse.Namespace) -> None:
    from learners.runs import train_run

    print(json.dumps(train_run(args.config, args.run, progress=progress_wanted(args)), indent=1))


def _active(args: argparse.Namespace) -> None:
    from learners.active_config import run_active

    print(json.dumps(run_active(args.config, args.output, progress=progress_wanted(args)), indent=1))


def _predict(args: argparse.Namespace) -> None:
    from learners.runs import predict_file

    table = predict_file(args.run, args.input, column=args.column, output=args.output)
    if args.output is None:
        print(table.to_csv(index=False), end="")


def _backmap(args: argparse.Namespace) -> None:
    import sys

    from learners.backmap.model import backmap_file

    n = backmap_file(args.model, args.cg, args.output, n_samples=args.samples, seed=args.seed)
    print(f"wrote {n} frames to {args.output}", file=sys.stderr)
