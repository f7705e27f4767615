"""``matrep train CONFIG RUN`` and ``matrep predict RUN INPUT`` (thin wrappers of :mod:`learners.runs`)."""

from __future__ import annotations

import argparse
import json

from reprs.config import add_progress_flags, progress_wanted

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``predict`` subcommands to the ``matrep`` parser."""
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


def _train(args: argparse.Namespace) -> None:
    from learners.runs import train_run

    print(json.dumps(train_run(args.config, args.run, progress=progress_wanted(args)), indent=1))


def _predict(args: argparse.Namespace) -> None:
    from learners.runs import predict_file

    table = predict_file(args.run, args.input, column=args.column, output=args.output)
    if args.output is None:
        print(table.to_csv(index=False), end="")
